//! The command line, defined in one place with each flag's documentation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::shard::Shard;
use crate::spec::{BackendChoice, Overrides, Precision};

#[derive(Parser, Debug)]
#[command(
    name = "stepsweep",
    version,
    about = "Monte Carlo sweeps of gradient descent over step sizes and initializations (Nar & Sastry, NeurIPS 2018)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a sweep from a spec file (or a preset name such as `poly`).
    Run(RunArgs),
    /// Merge the output directories of every shard of a sweep into one.
    Merge(MergeArgs),
    /// List the GPU adapters wgpu sees, with their limits.
    Devices,
    /// List the embedded presets.
    Presets,
    /// Redraw the figures of a finished run into DIR/figures/.
    Plot(PlotArgs),
    /// Check every claim of the paper: run its sweeps, draw its figures, and
    /// write report.md and report.html. Exits non-zero if a claim fails.
    Reproduce(ReproduceArgs),
    /// Time the standard workloads on every backend present, side by side.
    Bench(BenchArgs),
    /// Find the boundary between convergence and divergence on a sweep's two
    /// axes by adaptive refinement, and measure its box-counting dimension;
    /// or, with --critical, bisect each start's critical step size.
    Boundary(BoundaryArgs),
}

#[derive(Args, Debug)]
pub struct BoundaryArgs {
    /// A spec TOML file with a second axis, or the name of an embedded preset.
    pub spec: String,
    /// Output directory [default: runs/<spec name>-boundary, or -critical].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Halvings of the coarse grid's boxes: the finest level has
    /// coarse·2^depth boxes per axis [default: 6].
    #[arg(long, conflicts_with = "resolution")]
    pub depth: Option<u32>,
    /// Boxes per axis at the finest level, instead of --depth: the coarse
    /// grid's boxes per axis times a power of two (1024 from 16 is depth 6).
    #[arg(long)]
    pub resolution: Option<u64>,
    /// Boxes per axis of the coarse grid refinement starts from.
    #[arg(long, default_value_t = 16)]
    pub coarse: u64,
    /// What counts as success at a point: converging to a minimum (and
    /// which), or not diverging, as the fractal-boundary study colours.
    #[arg(long, value_enum, default_value_t = crate::boundary::Criterion::Minimum)]
    pub outcome: crate::boundary::Criterion,
    /// Boxes around each boundary box (at its level) split with it: more
    /// finds more of a rough boundary's islands, at more trajectories.
    #[arg(long, default_value_t = 1)]
    pub halo: u64,
    /// Trajectories per point; with more than one, a point counts as
    /// converging where at least half of them converge to a minimum.
    #[arg(long, default_value_t = 1)]
    pub replicates: u64,
    /// The box sizes (in lattice cells) the dimension's fit keeps, as a:b
    /// [default: 2 to an eighth of the boxes per axis].
    #[arg(long, value_name = "A:B")]
    pub fit_sizes: Option<String>,
    /// Instead of the plane: for each start (each value of the second axis,
    /// times --replicates starts), the critical step size δ*, the first
    /// step size going up the spec's grid that loses the class the start
    /// reaches at the smallest one, bisected to --rtol.
    #[arg(long)]
    pub critical: bool,
    /// The relative tolerance of --critical's bisection.
    #[arg(long, default_value_t = 1e-7)]
    pub rtol: f64,
    /// Zoom into the plane around STEP,AXIS: --frames frames, each
    /// --factor times narrower than the last, each refined, assembled into
    /// figures/zoom.gif.
    #[arg(long, value_name = "STEP,AXIS", allow_hyphen_values = true)]
    pub zoom: Option<String>,
    /// How much narrower each zoom frame is than the last.
    #[arg(long, default_value_t = 4.0)]
    pub factor: f64,
    /// Zoom frames, the first the whole plane.
    #[arg(long, default_value_t = 6)]
    pub frames: u32,
    #[command(flatten)]
    pub sweep: SweepFlags,
    /// Trajectories per backend call; the journal is saved after each.
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Finish the unfinished boundary run in --out from its journal.
    #[arg(long)]
    pub resume: bool,
    /// Start over even if --out holds another run.
    #[arg(long)]
    pub force: bool,
}

/// The spec overrides `run` and `boundary` share.
#[derive(Args, Debug, Default)]
pub struct SweepFlags {
    /// Step sizes: a linspace `a:b:n` or a list `v1,v2,…`; replaces the spec's.
    #[arg(long, allow_hyphen_values = true)]
    pub steps: Option<String>,
    /// Seed of the counter-based RNG.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Iteration limit per trajectory.
    #[arg(long)]
    pub max_iters: Option<u64>,
    /// Where trajectories run: a hardware GPU if present (auto), the CPU, or any GPU adapter.
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// Working precision, on either backend [default: f64, or f32 on a GPU without f64 arithmetic].
    #[arg(long, value_enum)]
    pub precision: Option<Precision>,
}

impl SweepFlags {
    pub fn overrides(&self, trajectories: Option<u64>) -> Overrides {
        Overrides {
            steps: self.steps.clone(),
            trajectories,
            seed: self.seed,
            max_iters: self.max_iters,
            backend: self.backend,
            precision: self.precision,
        }
    }
}

impl BoundaryArgs {
    pub fn overrides(&self) -> Overrides {
        self.sweep.overrides(None)
    }
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Smaller workloads (a factor of 16 or more), one run each.
    #[arg(long)]
    pub quick: bool,
    /// Print the rows as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Runs per workload and backend [default: 3, or 1 with --quick].
    #[arg(long)]
    pub runs: Option<usize>,
    /// Run on this backend only [default: the CPU, and the GPU where an adapter exists].
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// Run only this workload (W1 … W7); repeat for several [default: all].
    #[arg(long = "workload", value_name = "ID")]
    pub workloads: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// The output directory of a `stepsweep run`.
    pub dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Fewer trajectories, cells and iterations: every claim in under two minutes on two cores.
    #[arg(long)]
    pub quick: bool,
    /// Output directory [default: runs/reproduce, or runs/reproduce-quick with --quick].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where trajectories run; the claims are checked in f64 on the CPU unless `gpu` is asked for.
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Args, Debug, Default)]
pub struct RunArgs {
    /// A spec TOML file, or the name of an embedded preset.
    pub spec: String,
    /// Output directory [default: runs/<spec name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub sweep: SweepFlags,
    /// Trajectories per cell.
    #[arg(long)]
    pub trajectories: Option<u64>,
    /// Trajectories per chunk; memory is bounded by it.
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// CPU threads [default: every core].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also write trajectories.csv (or .parquet), one row per trajectory.
    #[arg(long)]
    pub write_trajectories: bool,
    /// The tables' format: cells.csv and trajectories.csv, or
    /// cells.parquet and trajectories.parquet in their place
    /// [default: the spec's, else csv].
    #[arg(long, value_enum)]
    pub format: Option<crate::spec::Format>,
    /// Trace the top Hessian eigenvalue of the first K replicates of every
    /// cell at every check into trace.csv, with a figure.
    #[arg(long, value_name = "K")]
    pub trace: Option<u64>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Finish the unfinished run of this sweep in --out from its journal
    /// (after a crash or Ctrl-C); starts afresh when there is none.
    #[arg(long)]
    pub resume: bool,
    /// Start over even if --out holds a different sweep or an unfinished run.
    #[arg(long)]
    pub force: bool,
    /// Run shard I of N (0 ≤ I < N): a contiguous 1/N share of the trajectory
    /// ids; combine the shards with `stepsweep merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The output directories of every shard, in any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged sweep goes.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace a different sweep in --out.
    #[arg(long)]
    pub force: bool,
}

impl RunArgs {
    pub fn overrides(&self) -> Overrides {
        self.sweep.overrides(self.trajectories)
    }
}
