//! Files written whole or not at all: what every output and the journal are
//! written through.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temp file beside it and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("cannot write", path, e))
}

/// The temp file a file is written through: hidden, beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Creates the output directory, or checks an existing one is writable.
/// Returns whether it was created, so a failed run can remove it again.
pub fn prepare_dir(dir: &Path) -> Result<bool> {
    let existed = dir.is_dir();
    if !existed {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io("cannot create the output directory", dir, e))?;
    }
    let probe = dir.join(".stepsweep-probe.tmp");
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(!existed)
        }
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir(dir);
            }
            Err(Error::io("cannot write in the output directory", dir, e))
        }
    }
}

/// Syncs a directory, so the files created in it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("cannot write", dir, e))
}
