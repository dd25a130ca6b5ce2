//! `stepsweep bench`: the standard workloads on every backend present, timed
//! side by side (hyperfine-like: mean ± σ over runs, and the ratio to the CPU).
//!
//! W1–W4 run exactly `iterations` steps per trajectory (early exit off, the
//! work a vmap script does); W5 is time to answer: the poly preset with early
//! exit and oscillation detection.

use std::fmt::Write;

use serde::Serialize;

use crate::backend::gpu;
use crate::error::Result;
use crate::runner::{execute, RunOptions};
use crate::spec::{BackendChoice, Precision, Spec};

pub struct Workload {
    pub id: &'static str,
    pub what: String,
    pub spec: Spec,
}

/// A fixed-work spec: 2^log2 trajectories over `cells` step sizes, every one
/// run for exactly `iterations` steps (in the precision each bench row sets).
fn fixed(log2: u32, cells: u32, iterations: u32, model: &str, init: &str, steps: &str) -> Spec {
    let per_cell = (1u64 << log2) / u64::from(cells);
    let text = format!(
        "trajectories = {per_cell}\nmax_iters = {iterations}\nseed = 1\nprecision = \"f32\"\n\
         [model]\n{model}\n[init]\n{init}\n[steps]\nlinspace = [{steps}, {cells}]\n\
         [stop]\nearly_exit = false\ndivergence_cap = 1e30\n"
    );
    Spec::from_toml(&text, "workload").expect("the workloads are valid specs")
}

/// The workloads; `quick` shrinks each by a factor of 16 or more.
pub fn workloads(quick: bool) -> Vec<Workload> {
    let s = if quick { 4 } else { 0 };
    let w = |id, what: String, spec| Workload { id, what, spec };
    vec![
        w(
            "W1",
            format!("poly, 2^{} trajectories × 1000 steps", 20 - s),
            fixed(20 - s, 16, 1000, "kind = \"poly\"", "kind = \"uniform\"\nlow = 0.5\nhigh = 2.5", "0.01, 0.15"),
        ),
        w(
            "W2",
            format!("scalar-deep L=8 λ=2, 2^{} trajectories × 1000 steps", 18 - s),
            fixed(
                18 - s,
                16,
                1000,
                "kind = \"scalar-deep\"\nlayers = 8\nlambda = 2.0",
                "kind = \"balanced\"\nnoise = 0.2",
                "0.005, 0.05",
            ),
        ),
        w(
            "W3",
            format!("deep-linear n=4 L=4, 2^{} trajectories × 1000 steps", 14 - s),
            fixed(
                14 - s,
                16,
                1000,
                "kind = \"deep-linear\"\nlayers = 4\nsize = 4\ntarget = { kind = \"psd\", seed = 1 }",
                "kind = \"identity\"\nscale = 0.1",
                "0.01, 0.2",
            ),
        ),
        w(
            "W4",
            format!("relu (n,h,m,N)=(1,20,1,64), 2^{} trajectories × 1000 steps", 12 - s),
            fixed(
                12 - s,
                16,
                1000,
                "kind = \"relu\"\ninput_size = 1\nhidden = 20\noutput_size = 1\nsamples = 64\n\
                 inputs = { kind = \"grid\" }\ntargets = { kind = \"teacher\", std = 1.0, seed = 2 }\nbias_std = 1.0",
                "kind = \"gaussian\"\nmean = 0.0\nstd = 1.0",
                "0.0002, 0.002",
            ),
        ),
        w(
            "W5",
            format!(
                "poly preset to an answer, {} trajectories per cell, max_iters 1e5",
                if quick { 1000 } else { 10_000 }
            ),
            {
                let preset = crate::presets::find("poly").expect("the poly preset");
                let mut spec = Spec::from_toml(preset, "poly").expect("the poly preset parses");
                spec.trajectories = if quick { 1000 } else { 10_000 };
                spec.precision = Some(crate::spec::Precision::F32);
                spec
            },
        ),
    ]
}

#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    pub workload: String,
    pub description: String,
    pub backend: String,
    pub adapter: Option<String>,
    /// The working precision, f32 or f64.
    pub precision: String,
    pub runs: usize,
    pub seconds: f64,
    pub seconds_std: f64,
    pub trajectory_steps: u64,
    pub traj_steps_per_s: f64,
    pub gflops: f64,
    /// This backend's time relative to the CPU's at the same precision: CPU
    /// seconds / seconds.
    pub speedup_vs_cpu: Option<f64>,
    /// Processor time the whole process spent per run (user + system, every
    /// thread, setup included): on a shared machine it moves less than the
    /// wall time when other work competes for the cores.
    pub process_cpu_seconds: f64,
    /// Device time of the descent kernels per run, from timestamp queries,
    /// where the adapter has them (GPU rows): the rest of `seconds` is the
    /// host's share (draws, transfers, assessment).
    pub kernel_seconds: Option<f64>,
    /// Trajectory-steps per second of kernel time.
    pub kernel_traj_steps_per_s: Option<f64>,
}

/// User + system time of this process so far, every thread.
fn process_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage only writes the struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0 {
            let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
            return seconds(usage.ru_utime) + seconds(usage.ru_stime);
        }
    }
    0.0
}

/// Runs every workload (or those in `only`) on the CPU and, when an adapter
/// exists, on the GPU, each in f32 and in f64 (the GPU in f64 where the
/// adapter has it).
pub fn run(
    quick: bool,
    runs: usize,
    only: &[String],
    choice: Option<BackendChoice>,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BenchRow>> {
    let backends = backends(choice);
    let mut rows: Vec<BenchRow> = Vec::new();
    for work in workloads(quick) {
        if !only.is_empty() && !only.iter().any(|id| id == work.id) {
            continue;
        }
        let mut cpu_seconds = [None, None];
        let runs_of = backends
            .iter()
            .flat_map(|&b| [(b, Precision::F32), (b, Precision::F64)]);
        for (backend, precision) in runs_of {
            progress(&format!(
                "{} on {:?} in {}",
                work.id,
                backend,
                precision.name()
            ));
            let mut spec = work.spec.clone();
            spec.backend = backend;
            spec.precision = Some(precision);
            let same_precision = usize::from(precision == Precision::F64);
            let opts = RunOptions {
                chunk_size: None,
                quiet: true,
                watch: None,
            };
            // An untimed first run on the GPU: drivers compile a kernel at
            // its first dispatch (llvmpipe took seconds for deep-linear's),
            // which a sweep pays once, not per run.
            if backend == BackendChoice::Gpu {
                if let Err(e) = execute(spec.clone(), work.id, &opts, None) {
                    progress(&format!("{} is not run on the GPU: {e}", work.id));
                    continue;
                }
            }
            let mut times = Vec::new();
            let mut kernel_times = Vec::new();
            let mut last = None;
            let cpu_before = process_cpu_seconds();
            for _ in 0..runs.max(1) {
                match execute(spec.clone(), work.id, &opts, None) {
                    Ok(report) => {
                        times.push(report.seconds);
                        kernel_times.extend(report.kernel_seconds);
                        last = Some(report);
                    }
                    // A workload the GPU cannot run (over the adapter's
                    // limits, refused by a driver) is left out, saying why,
                    // so the other rows still come.
                    Err(e) if backend == BackendChoice::Gpu => {
                        progress(&format!("{} is not run on the GPU: {e}", work.id));
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            let Some(report) = last else {
                continue;
            };
            let process_seconds = (process_cpu_seconds() - cpu_before) / times.len() as f64;
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            let std = (times.iter().map(|t| (t - mean).powi(2)).sum::<f64>()
                / times.len().max(2).saturating_sub(1) as f64)
                .sqrt();
            let flops = report.sweep.cells[0].model.flops_per_step();
            let steps = report.trajectory_steps;
            if backend == BackendChoice::Cpu {
                cpu_seconds[same_precision] = Some(mean);
            }
            let kernel_seconds = (!kernel_times.is_empty() && kernel_times.len() == times.len())
                .then(|| kernel_times.iter().sum::<f64>() / kernel_times.len() as f64);
            rows.push(BenchRow {
                workload: work.id.to_string(),
                description: work.what.clone(),
                backend: report.backend.clone(),
                adapter: report.adapter.clone(),
                precision: report.precision.name().to_string(),
                runs: times.len(),
                seconds: mean,
                seconds_std: std,
                trajectory_steps: steps,
                traj_steps_per_s: steps as f64 / mean,
                gflops: steps as f64 * flops / mean / 1e9,
                speedup_vs_cpu: cpu_seconds[same_precision].map(|c| c / mean),
                process_cpu_seconds: process_seconds,
                kernel_seconds,
                kernel_traj_steps_per_s: kernel_seconds
                    .filter(|&k| k > 0.0)
                    .map(|k| steps as f64 / k),
            });
        }
    }
    Ok(rows)
}

/// The table printed on stdout.
pub fn render(rows: &[BenchRow]) -> String {
    let mut table = vec![[
        "workload".to_string(),
        "backend precision (adapter)".into(),
        "time (mean ± σ)".into(),
        "traj-steps/s".into(),
        "GFLOP/s".into(),
        "vs cpu".into(),
        "kernel traj-steps/s".into(),
    ]];
    for r in rows {
        table.push([
            format!("{} {}", r.workload, r.description),
            format!(
                "{} {} ({})",
                r.backend,
                r.precision,
                r.adapter.as_deref().unwrap_or("-")
            ),
            format!(
                "{:.3} s ± {:.3} ({} runs)",
                r.seconds, r.seconds_std, r.runs
            ),
            format!("{:.3e}", r.traj_steps_per_s),
            format!("{:.2}", r.gflops),
            r.speedup_vs_cpu.map_or("-".into(), |x| format!("{x:.2}×")),
            r.kernel_traj_steps_per_s
                .map_or("-".into(), |x| format!("{x:.3e}")),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// W7: adaptive refinement of a plane against the dense grid of the same
/// lattice, on one backend: the trajectories and seconds each takes, and
/// how many of the dense grid's boundary boxes refinement finds.
#[derive(Clone, Debug, Serialize)]
pub struct BoundaryRow {
    pub workload: String,
    pub description: String,
    pub backend: String,
    pub precision: String,
    /// Boxes per axis at the finest level.
    pub resolution: u64,
    pub adaptive_trajectories: u64,
    pub adaptive_seconds: f64,
    pub dense_trajectories: u64,
    pub dense_seconds: f64,
    /// Dense trajectories / adaptive trajectories.
    pub fewer_trajectories: f64,
    /// Dense seconds / adaptive seconds.
    pub faster: f64,
    pub agreement: crate::boundary::Agreement,
}

/// The planes of W7, their resolutions, and whether a GPU adapter that is
/// the CPU emulating one runs them: the default polynomial's δ × x₀ basin
/// map, and mlp-lr-plane. On the CPU the MLP's dense grid at 1024² would
/// take hours, so the CPU runs it at 256². On lavapipe, whose workgroup
/// barriers are coroutine switches, even `--quick`'s 64² took about an hour
/// (734 s adaptive, 3228 s dense), where the CPU backend took a minute, so
/// a CPU adapter skips it.
fn boundary_planes(quick: bool, gpu: bool) -> Vec<(&'static str, u64, bool)> {
    let mlp = match (quick, gpu) {
        (true, _) => 64,
        (false, true) => 1024,
        (false, false) => 256,
    };
    let only = std::env::var("W7_ONLY").unwrap_or_default();
    vec![
        ("poly-basin", if quick { 256 } else { 1024 }, true),
        ("mlp-lr-plane", mlp, false),
    ]
    .into_iter()
    .filter(|p| only.is_empty() || p.0 == only)
    .collect()
}

/// The backends a bench runs on: the one asked for, or the CPU and, where
/// an adapter exists, the GPU (`auto` is the GPU where one exists, as `run` takes it).
fn backends(choice: Option<BackendChoice>) -> Vec<BackendChoice> {
    let gpu_present = || !gpu::adapters().is_empty();
    match choice {
        Some(BackendChoice::Cpu) => vec![BackendChoice::Cpu],
        Some(BackendChoice::Gpu) => vec![BackendChoice::Gpu],
        Some(BackendChoice::Auto) if gpu_present() => vec![BackendChoice::Gpu],
        Some(BackendChoice::Auto) => vec![BackendChoice::Cpu],
        None if gpu_present() => vec![BackendChoice::Cpu, BackendChoice::Gpu],
        None => vec![BackendChoice::Cpu],
    }
}

/// Runs W7 on each backend (see `backends`), in f64.
pub fn run_boundary(
    quick: bool,
    choice: Option<BackendChoice>,
    mut progress: impl FnMut(&str),
) -> Result<Vec<BoundaryRow>> {
    use crate::boundary::{agreement, dense, refine, Evaluator, Plane, Sink};
    let mut rows = Vec::new();
    for backend in backends(choice) {
        for (preset, resolution, cpu_adapter_runs) in
            boundary_planes(quick, backend == BackendChoice::Gpu)
        {
            progress(&format!("W7 {preset} at {resolution}² on {backend:?}"));
            let text = crate::presets::find(preset).expect("W7's presets exist");
            let mut spec = Spec::from_toml(text, preset).expect("the presets parse");
            spec.backend = backend;
            spec.precision = Some(Precision::F64);
            let env = |k: &str, d: u64| {
                std::env::var(k)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(d)
            };
            let coarse = env("W7_COARSE", 16);
            let depth = (resolution / coarse).trailing_zeros();
            let mut plane = Plane::new(&spec, coarse, depth)?;
            plane.halo = env("W7_HALO", 1);
            let mut sink = Sink::discard();
            let mut eval = match Evaluator::new(&spec, plane.layer, None) {
                Ok(e) => e,
                Err(e) if backend == BackendChoice::Gpu => {
                    progress(&format!("W7 is not run on the GPU: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            if eval.on_cpu_adapter() && !cpu_adapter_runs {
                progress(&format!(
                    "W7 {preset} is not run on {}: on a CPU adapter it takes about an hour even at --quick's 64², so run it with --backend cpu",
                    eval.backend_name
                ));
                continue;
            }
            // An untimed coarse pass compiles the GPU's kernels first.
            let warm = Plane::new(&spec, coarse, 0)?;
            dense(&warm, &mut eval, 1, &mut sink)?;
            let start = std::time::Instant::now();
            let before = eval.trajectories;
            let adaptive = refine(&plane, &mut eval, 1, Default::default(), &mut sink)?;
            let adaptive_seconds = start.elapsed().as_secs_f64();
            let adaptive_trajectories = eval.trajectories - before;
            let start = std::time::Instant::now();
            let before = eval.trajectories;
            let full = dense(&plane, &mut eval, 1, &mut sink)?;
            let dense_seconds = start.elapsed().as_secs_f64();
            let dense_trajectories = eval.trajectories - before;
            rows.push(BoundaryRow {
                workload: "W7".into(),
                description: format!(
                    "{preset} boundary at {resolution}×{resolution}, adaptive vs dense"
                ),
                backend: eval.backend_name.clone(),
                precision: eval.precision.name().into(),
                resolution,
                adaptive_trajectories,
                adaptive_seconds,
                dense_trajectories,
                dense_seconds,
                fewer_trajectories: dense_trajectories as f64 / adaptive_trajectories.max(1) as f64,
                faster: dense_seconds / adaptive_seconds.max(1e-9),
                agreement: agreement(&adaptive.finest, &full.finest),
            });
        }
    }
    Ok(rows)
}

/// W7's table.
pub fn render_boundary(rows: &[BoundaryRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = writeln!(
            out,
            "{} {} on {} {}: adaptive {} trajectories in {:.2} s, dense {} in {:.2} s ({:.1}× fewer trajectories, {:.1}× faster); {} of {} dense boundary boxes found ({:.2}%), farthest adaptive box {} cells from a dense one",
            r.workload,
            r.description,
            r.backend,
            r.precision,
            r.adaptive_trajectories,
            r.adaptive_seconds,
            r.dense_trajectories,
            r.dense_seconds,
            r.fewer_trajectories,
            r.faster,
            (r.agreement.recall * r.agreement.dense_boxes as f64).round(),
            r.agreement.dense_boxes,
            100.0 * r.agreement.recall,
            r.agreement.farthest
        );
    }
    out
}
