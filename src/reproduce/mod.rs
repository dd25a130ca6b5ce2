//! `stepsweep reproduce`: runs the sweep of every experiment in `paper()`,
//! draws its figures, judges each claim against its sweep, and writes
//! report.md and a self-contained report.html. A failing claim makes
//! `ReproduceReport::verdict` an error, so the exit status is non-zero.

mod paper;
mod prediction;
mod report;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::output::{self, figures};
use crate::presets;
use crate::runner::{self, RunOptions};
use crate::spec::{BackendChoice, Overrides, Spec};

pub use paper::paper;
pub use prediction::{Prediction, Verdict};

/// One sweep, from an embedded preset, and the claims judged on it.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The embedded preset; its outputs go to OUT/<preset>/.
    pub preset: &'static str,
    /// What `--quick` changes.
    pub quick: Overrides,
    pub claims: Vec<Claim>,
}

#[derive(Clone, Debug)]
pub struct Claim {
    pub id: String,
    /// The claim in one sentence, as the paper makes it.
    pub statement: String,
    /// Why it holds and how the sweep tests it.
    pub explanation: String,
    pub prediction: Prediction,
    /// The figure shown with it: a path below OUT without extension, such as
    /// `poly/figures/outcomes` (the PNG is embedded, the SVG linked).
    pub figure: String,
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub quick: bool,
    /// None: the CPU in f64, where the claims are sharpest.
    pub backend: Option<BackendChoice>,
    pub quiet: bool,
}

/// A judged claim, with the experiment it came from.
#[derive(Clone, Debug)]
pub struct Row {
    pub preset: &'static str,
    pub claim: Claim,
    pub verdict: Verdict,
}

pub struct ReproduceReport {
    pub rows: Vec<Row>,
    pub out: PathBuf,
    pub quick: bool,
    /// Backend and precision per experiment, as the sweeps reported them.
    pub backends: Vec<(String, String)>,
    pub seconds: f64,
}

/// Where `reproduce` writes by default.
pub fn default_out(quick: bool) -> PathBuf {
    runner::default_out(if quick {
        "reproduce-quick"
    } else {
        "reproduce"
    })
}

/// The spec an experiment runs: its preset, shrunk by `--quick`, on the backend asked for.
pub fn experiment_spec(e: &Experiment, opts: &Options) -> Result<Spec> {
    let text = presets::find(e.preset).ok_or_else(|| {
        Error::spec(format!(
            "the claims name preset '{}', which is not embedded",
            e.preset
        ))
    })?;
    let mut spec = Spec::from_toml(text, e.preset)?;
    if opts.quick {
        spec.apply(&e.quick)?;
    }
    spec.backend = opts.backend.unwrap_or(BackendChoice::Cpu);
    // The claims are checked in f64 on every backend: a GPU without f64
    // arithmetic runs f32, says so, and rechecks its suspect verdicts in f64.
    spec.precision = None;
    Ok(spec)
}

/// Runs every experiment into OUT/<preset>/ and writes OUT/report.md and
/// OUT/report.html. Returns the report whether or not the claims hold.
pub fn run(experiments: &[Experiment], out: &Path, opts: &Options) -> Result<ReproduceReport> {
    // Every spec is checked before anything runs or is written.
    let specs = experiments
        .iter()
        .map(|e| experiment_spec(e, opts))
        .collect::<Result<Vec<_>>>()?;
    for spec in &specs {
        crate::sweep::Sweep::new(spec.clone())?;
    }
    for claim in experiments.iter().flat_map(|e| &e.claims) {
        let folder = claim.figure.split('/').next().unwrap_or_default();
        if !experiments.iter().any(|e| e.preset == folder) {
            return Err(Error::spec(format!(
                "claim {} shows figure {}, which no experiment in this run draws; name one under {}",
                claim.id,
                claim.figure,
                experiments.iter().map(|e| e.preset).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    output::prepare_dir(out)?;
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut backends = Vec::new();
    for (i, (e, spec)) in experiments.iter().zip(specs).enumerate() {
        if !opts.quiet {
            eprintln!(
                "stepsweep: [{}/{}] {} ({} claims)",
                i + 1,
                experiments.len(),
                e.preset,
                e.claims.len()
            );
        }
        let dir = out.join(e.preset);
        if let Some(depth) = e
            .claims
            .iter()
            .find_map(|c| c.prediction.boundary_depth(opts.quick))
        {
            let b = crate::boundary::BoundaryOptions {
                coarse: 16,
                depth,
                halo: 1,
                replicates: 1,
                fit: None,
                chunk: None,
                quiet: opts.quiet,
                resume: false,
                force: true,
                stop: None,
                zoom: None,
                critical: None,
                criterion: crate::boundary::Criterion::Minimum,
            };
            let done = crate::boundary::run(&spec, e.preset, &dir, &b)?;
            backends.push((
                e.preset.to_string(),
                format!("boundary, {} trajectories", done.trajectories),
            ));
            for claim in &e.claims {
                rows.push(Row {
                    preset: e.preset,
                    claim: claim.clone(),
                    verdict: prediction::judge_boundary(&spec, &dir),
                });
            }
            continue;
        }
        let run_opts = RunOptions {
            chunk_size: None,
            quiet: opts.quiet,
            watch: None,
        };
        // Each reproduction rewrites its own sweeps, quick or full.
        let dir_opts = runner::DirOptions {
            force: true,
            ..runner::DirOptions::default()
        };
        let report = runner::run(spec, e.preset, &dir, &run_opts, &dir_opts)?
            .expect("a run without --resume always runs");
        figures::plot_dir(&dir)?;
        let recheck = report
            .recheck_totals()
            .map_or(String::new(), |(rechecked, overturned)| {
                format!(", f64 overturned {overturned} of {rechecked} rechecked f32 verdicts")
            });
        backends.push((
            e.preset.to_string(),
            format!("{} ({}{recheck})", report.backend, report.precision.name()),
        ));
        for claim in &e.claims {
            rows.push(Row {
                preset: e.preset,
                claim: claim.clone(),
                verdict: claim.prediction.judge(&report),
            });
        }
    }
    let report = ReproduceReport {
        rows,
        out: out.to_path_buf(),
        quick: opts.quick,
        backends,
        seconds: started.elapsed().as_secs_f64(),
    };
    report::write(&report)?;
    Ok(report)
}

impl ReproduceReport {
    pub fn failed(&self) -> usize {
        self.rows.iter().filter(|r| !r.verdict.pass).count()
    }

    /// Ok if every claim holds; otherwise an error naming how many failed.
    pub fn verdict(&self) -> Result<()> {
        match self.failed() {
            0 => Ok(()),
            n => Err(Error::ClaimsFailed(format!(
                "{n} of {} claims failed; see {}",
                self.rows.len(),
                self.out.join("report.md").display()
            ))),
        }
    }

    /// The table printed on stdout.
    pub fn table(&self) -> String {
        report::text_table(self)
    }
}
