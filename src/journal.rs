//! The output directory of a run: its lock, what it already holds, and the
//! journal that lets a killed run resume.
//!
//! A run saves journal.json after every chunk: the next trajectory id to run,
//! the per-cell statistics of every id before it, and how long the partial
//! trajectories.csv was then (or, with Parquet, how many of its part files
//! were synced). Chunks run in id order, so "every id before
//! `next_id`" is the whole record. The statistics are order-independent
//! (`CellStats::merge`), so a resumed run ends with the same cells.csv as one
//! that never stopped. A kill -9 loses at most the chunk in flight: the
//! journal is replaced atomically, and rows of trajectories.csv past the
//! recorded length are cut off on resume.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aggregate::CellStats;
use crate::error::{Error, Result};
use crate::files as output;
use crate::shard::{Shard, ShardFile, SHARD_FILE};
use crate::spec::{Precision, Spec};

pub const JOURNAL: &str = "journal.json";

/// Held with flock(2) for as long as a run writes in the directory.
const LOCK: &str = ".stepsweep.lock";

/// What makes two runs the same sweep: the resolved spec (as spec.toml
/// holds it) and the shard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub spec: String,
    pub shard: Option<Shard>,
}

/// What never changes over a run, whatever its interruptions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalHeader {
    pub stepsweep: String,
    pub identity: Identity,
    /// The trajectory ids this run covers: the sweep, or the shard's share.
    pub ids: Range<u64>,
    /// Trajectories per chunk, kept so a resumed run cuts the same chunks.
    pub chunk_size: u64,
    pub backend: String,
    pub precision: Precision,
}

/// How far a run got.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every id in `ids.start..next_id` is counted in `cells`.
    pub next_id: u64,
    pub seconds: f64,
    pub trajectory_steps: u64,
    /// The length of the partial trajectories.csv when `next_id` was reached.
    pub trajectories_bytes: Option<u64>,
    /// With Parquet: the part files of trajectories.parquet, one per chunk,
    /// synced when `next_id` was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectories_parts: Option<u64>,
    pub cells: Vec<CellStats>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Journal {
    #[serde(flatten)]
    pub header: JournalHeader,
    pub progress: Checkpoint,
}

#[derive(Serialize)]
struct JournalView<'a> {
    #[serde(flatten)]
    header: &'a JournalHeader,
    progress: &'a Checkpoint,
}

/// Replaces the journal in `dir` atomically.
pub fn save(dir: &Path, header: &JournalHeader, progress: &Checkpoint) -> Result<()> {
    let bytes = serde_json::to_vec(&JournalView { header, progress }).expect("JSON of plain data");
    output::write_atomic(&dir.join(JOURNAL), &bytes)
}

fn load(dir: &Path) -> Result<Option<Journal>> {
    let path = dir.join(JOURNAL);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::spec(format!(
            "{} is not a journal of this stepsweep ({e}); add --force to start the sweep over",
            path.display()
        ))
    })
}

/// What a directory holds before a run starts.
enum Holds {
    Nothing,
    Unfinished(Journal),
    Finished(Identity),
}

fn inspect(dir: &Path) -> Result<Holds> {
    if let Some(journal) = load(dir)? {
        return Ok(Holds::Unfinished(journal));
    }
    let spec_path = dir.join("spec.toml");
    if !spec_path.is_file() {
        return Ok(Holds::Nothing);
    }
    let text =
        std::fs::read_to_string(&spec_path).map_err(|e| Error::io("cannot read", &spec_path, e))?;
    // Compared in canonical form, so a reformatted spec.toml is still the same sweep.
    let spec = Spec::from_toml(&text, &spec_path.display().to_string())
        .map(|s| s.to_toml())
        .unwrap_or(text);
    let shard = if dir.join(SHARD_FILE).is_file() {
        Some(read_shard(dir)?.shard)
    } else {
        None
    };
    Ok(Holds::Finished(Identity { spec, shard }))
}

fn other_sweep(ours: &Identity, theirs: &Identity) -> String {
    match theirs.shard {
        Some(s) if theirs.spec == ours.spec => format!("shard {s} of this sweep"),
        _ if theirs.spec == ours.spec => "the whole of this sweep".into(),
        _ => "a different sweep".into(),
    }
}

/// How a run starts in its directory.
pub enum Start {
    Fresh,
    Resume(Box<Journal>),
    /// The directory already holds this sweep, finished; nothing to do.
    Finished,
}

/// An output directory, locked against other runs for as long as this lives.
pub struct OutputDir {
    path: PathBuf,
    created: bool,
    _lock: Option<File>,
    pub start: Start,
}

impl OutputDir {
    /// Creates or checks `dir`, locks it, and decides how to start: a
    /// directory of a different sweep, or an unfinished run without
    /// `--resume`, is refused unless `force`.
    pub fn open(dir: &Path, ours: &Identity, resume: bool, force: bool) -> Result<OutputDir> {
        let created = output::prepare_dir(dir)?;
        // A refused run leaves everything as it found it; only a directory it
        // created itself is removed again.
        let refused = |e: Error| {
            if created {
                let _ = std::fs::remove_file(dir.join(LOCK));
                let _ = std::fs::remove_dir(dir);
            }
            e
        };
        let lock = lock(dir).map_err(refused)?;
        // With --force what the directory holds does not matter, even unreadable.
        let holds = if force {
            Holds::Nothing
        } else {
            inspect(dir).map_err(refused)?
        };
        let mut out = OutputDir {
            path: dir.to_path_buf(),
            created,
            _lock: lock,
            start: Start::Fresh,
        };
        let shown = dir.display();
        out.start = match holds {
            Holds::Nothing => Start::Fresh,
            Holds::Unfinished(j) if j.header.identity == *ours => {
                if resume {
                    Start::Resume(Box::new(j))
                } else {
                    let ids = &j.header.ids;
                    return Err(Error::spec(format!(
                        "{shown} holds an unfinished run of this sweep ({} of {} trajectories done); add --resume to finish it, or --force to start over",
                        j.progress.next_id - ids.start,
                        ids.end - ids.start
                    )));
                }
            }
            Holds::Unfinished(j) => {
                return Err(Error::spec(format!(
                    "{shown} holds an unfinished run of {}; choose another --out, or add --force to discard it",
                    other_sweep(ours, &j.header.identity)
                )))
            }
            Holds::Finished(theirs) if theirs == *ours => {
                if resume {
                    Start::Finished
                } else {
                    Start::Fresh
                }
            }
            Holds::Finished(theirs) => {
                return Err(Error::spec(format!(
                    "{shown} holds the outputs of {}; choose another --out, or add --force to replace them",
                    other_sweep(ours, &theirs)
                )))
            }
        };
        Ok(out)
    }

    /// After a failed run: removes the journal unless it is kept for a
    /// resume, and the directory itself if this run created it and it is
    /// empty again.
    pub fn abandon(&self, keep_journal: bool) {
        if !keep_journal {
            // The caller has removed its partial files (the rows files'
            // formats are the writers' business, a layer up).
            let _ = std::fs::remove_file(self.path.join(JOURNAL));
            if self.created {
                let _ = std::fs::remove_file(self.path.join(LOCK));
                // Only succeeds when nothing else is left in it.
                let _ = std::fs::remove_dir(&self.path);
            }
        }
    }

    /// Ends a run that does not journal (a merge): cleans up after a failure.
    pub fn finish(self, ok: bool) {
        if !ok {
            self.abandon(false);
        }
    }
}

/// Takes the directory's lock, which the kernel releases when this process
/// ends however it ends, so a killed run never leaves a stale lock.
#[cfg(unix)]
pub fn lock(dir: &Path) -> Result<Option<File>> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("cannot write in the output directory", dir, e))?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::spec(format!(
            "{} is in use by another stepsweep run; wait for it to end, or choose another --out",
            dir.display()
        )));
    }
    Ok(Some(file))
}

#[cfg(not(unix))]
pub fn lock(_dir: &Path) -> Result<Option<File>> {
    Ok(None)
}

/// A finished shard's shard.json, refused in one sentence where `dir` holds none.
pub fn read_shard(dir: &Path) -> Result<ShardFile> {
    let path = dir.join(SHARD_FILE);
    if !path.is_file() {
        let why = if dir.join(JOURNAL).is_file() {
            "is an unfinished shard; finish it with `stepsweep run … --resume` before merging"
        } else {
            "holds no shard.json; give directories written by `stepsweep run … --shard i/N`"
        };
        return Err(Error::spec(format!("{} {why}", dir.display())));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::spec(format!(
            "{} is not a shard file of this stepsweep ({e}); rerun that shard",
            path.display()
        ))
    })
}
