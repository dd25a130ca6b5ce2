//! Progress on stderr: a bar on a terminal, a plain line now and then otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: Instant,
    quiet: bool,
    watch: Option<Arc<Watch>>,
}

/// Progress read from another thread (the Python package's progress bar):
/// trajectories done of the total, updated as the bar is.
#[derive(Debug, Default)]
pub struct Watch {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

const PLAIN_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(total: u64, quiet: bool, watch: Option<Arc<Watch>>) -> Progress {
        if let Some(w) = &watch {
            w.total.store(total, Ordering::Relaxed);
            w.done.store(0, Ordering::Relaxed);
        }
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} trajectories ({eta} left)",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar
        });
        Progress {
            bar,
            total,
            last_line: Instant::now(),
            quiet,
            watch,
        }
    }

    pub fn set(&mut self, done: u64) {
        if let Some(w) = &self.watch {
            w.done.store(done, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if !self.quiet && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            eprintln!(
                "stepsweep: {done}/{} trajectories ({:.0}%)",
                self.total,
                100.0 * done as f64 / self.total.max(1) as f64
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
