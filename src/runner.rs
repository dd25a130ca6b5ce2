//! Running a sweep: chunks through a backend, post-processing on the CPU,
//! streaming aggregation, then the writers. Memory is bounded by the chunk,
//! not by the sweep. A run into a directory journals every chunk (see
//! `journal.rs`), so it can be resumed after a crash or a Ctrl-C.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;

use crate::aggregate::{needs_assessment, CellStats, PartialTally};
use crate::backend::{self, Backend, ChunkResult};
use crate::error::{Error, Result};
use crate::journal::{self, Checkpoint, Identity, JournalHeader, OutputDir, Start};
use crate::memory;
use crate::models::Assessment;
pub use crate::output::files::{summary_json, write_outputs};
use crate::output::progress::{Progress, Watch};
use crate::output::trajectories::{self, CsvStream, Rows};
use crate::recheck::Rechecker;
use crate::shard::Shard;
use crate::spec::{Precision, Spec};
use crate::stopping::StopRule;
use crate::sweep::Sweep;

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Trajectories per chunk; defaults per backend.
    pub chunk_size: Option<u64>,
    /// Quiet: no progress on stderr.
    pub quiet: bool,
    /// Progress for another thread to read.
    pub watch: Option<Arc<Watch>>,
}

/// How a run treats its output directory, and which share of the sweep it runs.
#[derive(Clone, Debug, Default)]
pub struct DirOptions {
    /// Continue the directory's unfinished run of this sweep, if it has one.
    pub resume: bool,
    /// Start over in a directory that holds another sweep or an unfinished run.
    pub force: bool,
    pub shard: Option<Shard>,
    /// Once set (by Ctrl-C), the run stops after the chunk in flight.
    pub stop: Option<Arc<AtomicBool>>,
}

pub use crate::aggregate::SweepReport;

const CPU_CHUNK: u64 = 1 << 18;
const GPU_CHUNK: u64 = 1 << 22;

/// A sweep with its backend ready.
struct Prepared {
    sweep: Sweep,
    engine: Backend,
    rule: StopRule,
    note: Option<String>,
    /// The chunk size when none is asked for: the backend's, within memory.
    default_chunk: u64,
}

fn prepare(sweep: Sweep, quiet: bool) -> Result<Prepared> {
    let backend::Selection {
        gpu,
        precision,
        note,
    } = backend::select(sweep.spec.backend, sweep.spec.precision)?;
    if let (Some(n), false) = (&note, quiet) {
        eprintln!("stepsweep: {n}");
    }
    let rule = sweep.rule(precision);
    let engine = Backend::new(&sweep, gpu, precision, &rule)?;
    let backend_chunk = if matches!(engine, Backend::Gpu { .. }) {
        GPU_CHUNK
    } else {
        CPU_CHUNK
    };
    let default_chunk = backend_chunk.min(memory::max_chunk(
        sweep.max_dim(),
        sweep.spec.output.trajectories,
    ));
    Ok(Prepared {
        sweep,
        engine,
        rule,
        note,
        default_chunk,
    })
}

/// Runs ids `tally.next_id..ids.end` in chunks of `chunk`, folding them into `tally` and writing their rows to
/// `rows`; `checkpoint` runs after every chunk. Returns false when `stop`
/// ended it early.
///
/// Three stages overlap, each on its own thread and each taking chunks in
/// order: the next chunk's inputs are drawn (and, for the GPU, copied to the
/// device) while this chunk runs on the backend, and the previous chunk is
/// assessed, tallied, written and journaled meanwhile. So at most three chunks are in memory, and the device
/// never waits for the host's bookkeeping.
#[allow(clippy::too_many_arguments)]
fn drive<R: Rows + ?Sized>(
    p: &Prepared,
    ids: Range<u64>,
    chunk: u64,
    tally: &mut Checkpoint,
    mut rows: Option<&mut R>,
    opts: &RunOptions,
    stop: Option<&AtomicBool>,
    mut checkpoint: impl FnMut(&mut Checkpoint, Option<&mut R>) -> Result<()> + Send,
) -> Result<bool> {
    let quiet = opts.quiet;
    let sweep = &p.sweep;
    let progress = std::sync::Mutex::new(Progress::new(
        ids.end - ids.start,
        quiet,
        opts.watch.clone(),
    ));
    let started = Instant::now();
    let seconds_before = tally.seconds;
    let stopped = || stop.is_some_and(|s| s.load(Ordering::SeqCst));
    // Counted from next_id, which is a chunk boundary unless a resumed run's
    // backend takes smaller chunks; either way no id runs twice.
    let ranges = sweep.chunks(tally.next_id..ids.end, chunk);
    let (to_run, runnable) = std::sync::mpsc::sync_channel(1);
    let (to_post, postable) = std::sync::mpsc::sync_channel::<(Range<u64>, ChunkResult)>(1);
    // Without rows, only the tally is wanted, which the CPU backend makes as
    // its trajectories end; f32 verdicts are rechecked from the ends first.
    let rechecker = (p.engine.precision() == Precision::F32).then(|| Rechecker::new(sweep));
    let tally_only = rows.is_none() && rechecker.is_none();
    let (ran, posted) = std::thread::scope(|scope| {
        scope.spawn(move || {
            for range in ranges {
                if stopped() {
                    break;
                }
                let inputs = p.engine.prepare(sweep, &p.rule, range.clone());
                // An error goes to the run stage, which reports it.
                let failed = inputs.is_err();
                if to_run.send((range, inputs)).is_err() || failed {
                    break;
                }
            }
        });
        let progress = &progress;
        let tally = &mut *tally;
        let rechecker = rechecker.as_ref();
        let poster = scope.spawn(move || -> Result<()> {
            for (range, mut result) in postable {
                let base = range.start;
                // An f32 chunk's assessments, made for its rechecks and kept
                // for its tally.
                let mut rechecked_assessments = None;
                if let Some(r) = rechecker {
                    let (counts, assessed) = r.apply(sweep, base, &mut result);
                    for (cell, counts) in counts {
                        tally.cells[cell].rechecked += counts.rechecked;
                        tally.cells[cell].overturned += counts.overturned;
                    }
                    rechecked_assessments = Some(assessed);
                }
                if let Some(part) = &result.tally {
                    fold(tally, part);
                } else if let Some(w) = rows.as_deref_mut() {
                    // Rows need every trajectory's assessment, so they are kept.
                    let assessments: Vec<Option<Assessment>> = result
                        .ends
                        .par_iter()
                        .zip(result.theta.par_chunks(result.dim))
                        .enumerate()
                        .map(|(i, (end, theta))| assess(sweep, base + i as u64, end, theta, true))
                        .collect();
                    tally_results(sweep, base, &result, Some(&assessments), tally);
                    w.write(sweep, base, &result, &assessments)?;
                } else {
                    tally_results(
                        sweep,
                        base,
                        &result,
                        rechecked_assessments.as_deref(),
                        tally,
                    );
                }
                tally.next_id = range.end;
                tally.seconds = seconds_before + started.elapsed().as_secs_f64();
                checkpoint(tally, rows.as_deref_mut())?;
                progress
                    .lock()
                    .expect("progress")
                    .set(range.end - ids.start);
            }
            Ok(())
        });
        let mut ran = Ok(());
        for (range, inputs) in runnable {
            // A stop leaves the chunks drawn but not yet run.
            if stopped() {
                break;
            }
            let base = range.start;
            let result = inputs.and_then(|inputs| {
                p.engine
                    .run_prepared(sweep, &p.rule, range.clone(), inputs, tally_only, |done| {
                        progress
                            .lock()
                            .expect("progress")
                            .set(base + done - ids.start)
                    })
            });
            match result {
                Ok(result) => {
                    // The poster has stopped on an error, which its join reports.
                    if to_post.send((range, result)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    ran = Err(e);
                    break;
                }
            }
        }
        drop(to_post);
        (ran, poster.join().expect("the post-processing thread"))
    });
    progress.lock().expect("progress").finish();
    ran?;
    posted?;
    Ok(tally.next_id == ids.end)
}

/// The assessment of a trajectory's final iterate, where one is needed: for a
/// converged trajectory, or for every one when rows are written (`all`);
/// never for a non-finite iterate.
fn assess(
    sweep: &Sweep,
    id: u64,
    end: &crate::stopping::TrajectoryEnd,
    theta: &[f64],
    all: bool,
) -> Option<Assessment> {
    needs_assessment(end, theta, all)
        .then(|| sweep.cell_of(id).assess(theta, sweep.replicate_of(id)))
}

/// Trajectories per block of `tally_results`: small enough that a chunk of
/// deep-linear trajectories, each assessed with an SVD and a Hessian's top
/// eigenvalue, spreads over every core rather than leaving one core to
/// assess a whole chunk while the others wait.
const TALLY_BLOCK: usize = 1 << 10;

/// Folds a chunk into `tally`, block by block on every core, with the
/// chunk's `assessed` trajectories or, without them, assessing each as it
/// goes (so none is held): each block tallies its own cells (ids run
/// through cells in order, so a block's cells are consecutive) and the
/// partial tallies are merged. Every statistic is a count, a sum or a
/// maximum, so this gives what adding the trajectories one by one gives.
fn tally_results(
    sweep: &Sweep,
    base: u64,
    result: &ChunkResult,
    assessed: Option<&[Option<Assessment>]>,
    tally: &mut Checkpoint,
) {
    let minimizers = sweep.cells[0].model.minimizers().len();
    let partials: Vec<PartialTally> = result
        .ends
        .par_chunks(TALLY_BLOCK)
        .zip(result.theta.par_chunks(TALLY_BLOCK * result.dim))
        .enumerate()
        .map(|(b, (ends, thetas))| {
            let first_id = base + (b * TALLY_BLOCK) as u64;
            let first_cell = sweep.cell_of(first_id).index;
            let mut cells = Vec::new();
            let mut steps = 0;
            let (mut own, mut needs) = (Vec::new(), Vec::new());
            // Cell by cell: the cell and its bound are looked up once for
            // all its trajectories in the block.
            let ids = first_id..first_id + ends.len() as u64;
            for (cell, run) in sweep.cell_runs(ids) {
                let j = (run.start - first_id) as usize;
                let count = (run.end - run.start) as usize;
                let bound = cell.bound();
                let mut stats = CellStats::new(minimizers);
                let theta = |k: usize| &thetas[k * result.dim..(k + 1) * result.dim];
                match assessed {
                    Some(all) => {
                        for k in j..j + count {
                            let a = all[b * TALLY_BLOCK + k].as_ref();
                            let loss = crate::aggregate::final_loss(cell, a, theta(k));
                            stats.add(&ends[k], a, bound, loss);
                        }
                    }
                    None => {
                        // The cell's trajectories that need one are assessed
                        // together (see `Model::assess_many`), then added in
                        // order.
                        // (Whether each needs one is found once, and kept.)
                        needs.clear();
                        needs.extend(
                            (j..j + count).map(|k| needs_assessment(&ends[k], theta(k), false)),
                        );
                        own.clear();
                        cell.assess_many(
                            (j..j + count)
                                .filter(|&k| needs[k - j])
                                .map(|k| (theta(k), sweep.replicate_of(first_id + k as u64))),
                            &mut own,
                        );
                        let mut made = own.iter();
                        for (k, (end, &need)) in ends[j..j + count].iter().zip(&needs).enumerate() {
                            let a = if need { made.next() } else { None };
                            let loss = crate::aggregate::final_loss(cell, a, theta(j + k));
                            stats.add(end, a, bound, loss);
                        }
                    }
                }
                steps += ends[j..j + count].iter().map(|e| e.iterations).sum::<u64>();
                cells.push(stats);
            }
            PartialTally {
                first_cell,
                cells,
                trajectory_steps: steps,
            }
        })
        .collect();
    for part in &partials {
        fold(tally, part);
    }
}

/// Adds part of a tally to the whole.
fn fold(tally: &mut Checkpoint, part: &PartialTally) {
    for (k, c) in part.cells.iter().enumerate() {
        tally.cells[part.first_cell + k].merge(c);
    }
    tally.trajectory_steps += part.trajectory_steps;
}

fn blank_tally(sweep: &Sweep, ids: &Range<u64>) -> Checkpoint {
    let minimizers = sweep.cells[0].model.minimizers().len();
    Checkpoint {
        next_id: ids.start,
        seconds: 0.0,
        trajectory_steps: 0,
        trajectories_bytes: None,
        trajectories_parts: None,
        cells: vec![CellStats::new(minimizers); sweep.cells.len()],
    }
}

/// The report of a finished run, and the backend that ran it (for a trace).
fn report(p: Prepared, name: &str, tally: Checkpoint) -> (SweepReport, Backend) {
    let (backend, adapter) = p.engine.describe();
    let report = SweepReport {
        name: name.to_string(),
        cells: tally.cells,
        backend,
        adapter,
        precision: p.engine.precision(),
        rule: p.rule,
        seconds: tally.seconds,
        trajectory_steps: tally.trajectory_steps,
        kernel_seconds: p.engine.kernel_seconds(),
        note: p.note,
        sweep: p.sweep,
    };
    (report, p.engine)
}

/// Runs a whole sweep in memory, writing trajectories.csv rows to
/// `trajectories` if given; nothing is journaled.
pub fn execute(
    spec: Spec,
    name: &str,
    opts: &RunOptions,
    trajectories: Option<&mut (dyn Write + Send)>,
) -> Result<SweepReport> {
    let p = prepare(Sweep::new(spec)?, opts.quiet)?;
    let chunk = opts
        .chunk_size
        .unwrap_or(p.default_chunk)
        .min(p.engine.max_chunk())
        .max(1);
    let mut rows = match trajectories {
        Some(w) => {
            trajectories::write_header(w, &p.sweep)?;
            Some(CsvStream(w))
        }
        None => None,
    };
    let ids = 0..p.sweep.total();
    let mut tally = blank_tally(&p.sweep, &ids);
    drive(
        &p,
        ids,
        chunk,
        &mut tally,
        rows.as_mut(),
        opts,
        None,
        |_, _| Ok(()),
    )?;
    Ok(report(p, name, tally).0)
}

/// Runs a sweep (or a shard of it) into `out`: spec.toml, then cells.csv and
/// summary.json for a whole sweep or shard.json for a shard, and
/// trajectories.csv when the spec asks. Nothing is written for a spec that
/// fails validation, and no file is ever half-written. Returns `None` when
/// `--resume` finds the sweep already finished there.
pub fn run(
    spec: Spec,
    name: &str,
    out: &Path,
    opts: &RunOptions,
    dir_opts: &DirOptions,
) -> Result<Option<SweepReport>> {
    // Everything about the input is checked before the directory is touched.
    let sweep = Sweep::new(spec)?;
    let with_rows = sweep.spec.output.trajectories;
    if let Some(c) = opts.chunk_size {
        memory::check_chunk(c, sweep.max_dim(), with_rows)?;
    }
    let ids = dir_opts
        .shard
        .map_or(0..sweep.total(), |s| s.ids(sweep.total()));
    let identity = Identity {
        spec: sweep.spec.to_toml(),
        shard: dir_opts.shard,
    };
    let mut dir = OutputDir::open(out, &identity, dir_opts.resume, dir_opts.force)?;
    let resumed = match std::mem::replace(&mut dir.start, Start::Fresh) {
        Start::Finished => return Ok(None),
        Start::Resume(j) => Some(*j),
        Start::Fresh => None,
    };
    let resuming = resumed.is_some();
    let mut journaled = resumed
        .as_ref()
        .is_some_and(|j| j.progress.next_id > j.header.ids.start);
    let result = (|| {
        let p = prepare(sweep, opts.quiet)?;
        let (backend, _) = p.engine.describe();
        let precision = p.engine.precision();
        let (header, mut tally) = match resumed {
            Some(j) => {
                let h = &j.header;
                if (h.backend.as_str(), h.precision) != (backend.as_str(), precision) {
                    // The journal's statistics came from that backend and
                    // precision; mixing in another's would change the result.
                    return Err(Error::spec(format!(
                        "{} was started on the {} backend in {}, but this run got {backend} in {}; resume it where that backend is available, or add --force to start over",
                        out.display(),
                        h.backend,
                        h.precision.name(),
                        precision.name()
                    )));
                }
                if let (Some(c), false) = (opts.chunk_size, opts.quiet) {
                    if c != h.chunk_size {
                        eprintln!(
                            "stepsweep: resuming with the journal's chunk size {}, not {c}",
                            h.chunk_size
                        );
                    }
                }
                (j.header, j.progress)
            }
            None => {
                let chunk = opts
                    .chunk_size
                    .unwrap_or(p.default_chunk)
                    .min(p.engine.max_chunk())
                    .max(1);
                let header = JournalHeader {
                    stepsweep: env!("CARGO_PKG_VERSION").into(),
                    identity: identity.clone(),
                    ids: ids.clone(),
                    chunk_size: chunk,
                    backend,
                    precision,
                };
                (header, blank_tally(&p.sweep, &ids))
            }
        };
        let format = p.sweep.spec.output.format;
        // A run killed after its rows file was moved into place but before
        // its journal was removed has nothing partial left to extend.
        let rows_in_place =
            resuming && tally.next_id == ids.end && trajectories::in_place(out, format);
        let mut rows = if with_rows && !rows_in_place {
            Some(trajectories::open(out, &p.sweep, &mut tally)?)
        } else {
            None
        };
        journal::save(out, &header, &tally)?;
        let chunk = header.chunk_size.min(p.engine.max_chunk()).max(1);
        let finished = drive(
            &p,
            ids.clone(),
            chunk,
            &mut tally,
            rows.as_deref_mut(),
            opts,
            dir_opts.stop.as_deref(),
            |tally, rows| {
                if let Some(w) = rows {
                    w.commit(tally)?;
                }
                journal::save(out, &header, tally)?;
                journaled = true;
                Ok(())
            },
        )?;
        if !finished && tally.next_id == ids.start {
            return Err(Error::Interrupted(
                "interrupted before the first chunk finished; nothing was kept".into(),
            ));
        }
        if !finished {
            return Err(Error::Interrupted(format!(
                "interrupted after {} of {} trajectories; the journal in {} keeps them, so rerun the same command with --resume to finish",
                tally.next_id - ids.start,
                ids.end - ids.start,
                out.display()
            )));
        }
        if let Some(w) = rows {
            w.finish(out)?;
        }
        let (report, engine) = report(p, name, tally);
        write_outputs(&report, out, dir_opts.shard, Some(&engine))?;
        // The journal goes last: a kill before this leaves a finished journal,
        // and --resume then only writes the outputs again.
        let _ = std::fs::remove_file(out.join(journal::JOURNAL));
        Ok(report)
    })();
    match result {
        Ok(report) => Ok(Some(report)),
        Err(e) => {
            if !journaled {
                trajectories::remove_partial(out);
            }
            dir.abandon(journaled);
            Err(match e {
                Error::Gpu(m) if journaled => Error::Gpu(format!(
                    "{m}; the finished chunks are journaled in {}, so --resume continues from them",
                    out.display()
                )),
                e => e,
            })
        }
    }
}

/// Where a spec's outputs go by default: runs/<name>.
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("runs").join(name)
}
