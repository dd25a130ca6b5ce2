//! Library errors. Each message is one sentence that says what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec or a command-line override is invalid.
    #[error("{0}")]
    Spec(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The GPU backend could not run.
    #[error("{0}")]
    Gpu(String),
    /// A figure could not be drawn.
    #[error("{0}")]
    Figure(String),
    /// `reproduce` ran, and some of the paper's claims did not hold.
    #[error("{0}")]
    ClaimsFailed(String),
    /// Ctrl-C (or SIGTERM) stopped a run; its journal keeps what was done.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    pub fn spec(message: impl Into<String>) -> Self {
        Error::Spec(message.into())
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl Error {
    /// The process exit status for this error: 2 for bad input, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Spec(_) => 2,
            // The shell's status for a run ended by SIGINT.
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
