//! What each subcommand does, so that `main.rs` only parses and maps errors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::backend::gpu;
use crate::boundary::{BoundaryOptions, ZoomSpec};
use crate::cli::{BoundaryArgs, MergeArgs, PlotArgs, ReproduceArgs, RunArgs};
use crate::error::{Error, Result};
use crate::memory;
use crate::output::{figures, table};
use crate::presets;
use crate::reproduce;
use crate::runner::{self, DirOptions, RunOptions};
use crate::spec::Spec;
use crate::sweep::Sweep;

/// Reads a spec from a file, or from the embedded presets by name.
pub fn load_spec(arg: &str) -> Result<(Spec, String)> {
    let path = Path::new(arg);
    let (text, name) = if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        (text, stem)
    } else if let Some(text) = presets::find(arg) {
        (text.to_string(), arg.to_string())
    } else {
        let names: Vec<&str> = presets::PRESETS.iter().map(|(n, _)| *n).collect();
        return Err(Error::spec(format!(
            "'{arg}' is neither a spec file nor a preset; give a TOML file or one of: {}",
            names.join(", ")
        )));
    };
    let spec = Spec::from_toml(&text, arg)?;
    let name = spec.name.clone().unwrap_or(name);
    Ok((spec, name))
}

/// Most CPU threads `--threads` may ask for.
pub const MAX_THREADS: usize = 1024;

/// A run with every input checked, before anything touches the disk.
pub struct RunPlan {
    pub spec: Spec,
    pub name: String,
    pub out: PathBuf,
    pub opts: RunOptions,
    pub dir_opts: DirOptions,
    pub threads: Option<usize>,
}

/// Checks a `run` command's spec and flags; reads the spec file, writes nothing.
pub fn plan_run(args: &RunArgs) -> Result<RunPlan> {
    let (spec, name) = load_spec(&args.spec)?;
    plan_run_spec(spec, name, args)
}

/// Checks a `run`'s flags against a spec already loaded (the Python
/// package's dict specs), exactly as `plan_run` does; writes nothing.
pub fn plan_run_spec(mut spec: Spec, name: String, args: &RunArgs) -> Result<RunPlan> {
    spec.apply(&args.overrides())?;
    if args.write_trajectories {
        spec.output.trajectories = true;
    }
    if let Some(format) = args.format {
        spec.output.format = format;
    }
    if let Some(k) = args.trace {
        spec.output.trace = k;
    }
    match args.threads {
        Some(0) => return Err(Error::spec("--threads is 0; give at least 1")),
        Some(n) if n > MAX_THREADS => {
            return Err(Error::spec(format!(
                "--threads is {n}; give at most {MAX_THREADS}"
            )))
        }
        _ => {}
    }
    let sweep = Sweep::new(spec.clone())?;
    match args.chunk_size {
        Some(0) => return Err(Error::spec("--chunk-size is 0; give at least 1")),
        Some(c) => memory::check_chunk(c, sweep.max_dim(), spec.output.trajectories)?,
        None => {}
    }
    if args.resume && args.force {
        return Err(Error::spec(
            "--resume and --force contradict each other; give one",
        ));
    }
    let out: PathBuf = args
        .out
        .clone()
        .unwrap_or_else(|| runner::default_out(&name));
    Ok(RunPlan {
        spec,
        name,
        out,
        opts: RunOptions {
            chunk_size: args.chunk_size,
            quiet: args.quiet,
            watch: None,
        },
        dir_opts: DirOptions {
            resume: args.resume,
            force: args.force,
            shard: args.shard,
            stop: None,
        },
        threads: args.threads,
    })
}

/// Set once a sweep's results (cells.csv, summary.json and the journal) are
/// on disk: what is left (figures) may be cut short at once.
static RESULTS_SAVED: AtomicBool = AtomicBool::new(false);

/// The first Ctrl-C (or SIGTERM, as SLURM sends before a time limit) asks
/// the run to stop after the chunk in flight; a second one stops at once,
/// which is safe because the journal on disk is always whole. Once the
/// results are saved, the first one stops at once: each figure is written
/// whole or not at all, and `stepsweep plot DIR` draws them again.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let installed = ctrlc::set_handler(move || {
        if RESULTS_SAVED.load(Ordering::SeqCst) {
            eprintln!(
                "stepsweep: stopped while drawing figures; the sweep's results are saved, and 'stepsweep plot DIR' draws its figures"
            );
            std::process::exit(130);
        }
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("stepsweep: stopped; rerun the same command with --resume to finish");
            std::process::exit(130);
        }
        eprintln!(
            "stepsweep: stopping after the current chunk (press Ctrl-C again to stop at once)"
        );
    });
    if let Err(e) = installed {
        eprintln!(
            "stepsweep: Ctrl-C will not stop cleanly here ({e}); the journal still allows --resume"
        );
    }
    stop
}

/// Runs a planned sweep on its own thread pool where `--threads` asks for
/// one; None when the directory already holds it finished. The command line
/// and the Python package both run sweeps through this.
pub fn run_plan(plan: &RunPlan) -> Result<Option<runner::SweepReport>> {
    let go = || {
        runner::run(
            plan.spec.clone(),
            &plan.name,
            &plan.out,
            &plan.opts,
            &plan.dir_opts,
        )
    };
    match plan.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::spec(format!("cannot start {n} threads ({e}); give fewer")))?
            .install(go),
        None => go(),
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    let mut plan = plan_run(args)?;
    plan.dir_opts.stop = Some(stop_on_signal());
    let report = run_plan(&plan)?;
    RESULTS_SAVED.store(true, Ordering::SeqCst);
    let out = plan.out.display();
    // A whole sweep's figures are drawn from its outputs, like `stepsweep plot`.
    let drawn = match (&report, plan.dir_opts.shard) {
        (Some(_), None) => Some(figures::plot_dir(&plan.out)?.len()),
        _ => None,
    };
    match (report, plan.dir_opts.shard) {
        (None, _) => println!("{out} already holds this finished sweep; nothing to resume"),
        (Some(r), Some(shard)) => {
            let ids = shard.ids(r.sweep.total());
            println!(
                "shard {shard}: {} of {} trajectories on {} ({}) in {:.2} s; merge the {} shard directories with `stepsweep merge DIR… --out DIR`",
                ids.end - ids.start,
                r.sweep.total(),
                r.backend,
                r.precision.name(),
                r.seconds,
                shard.count
            );
            println!("wrote {out}");
        }
        (Some(r), None) => {
            print!("{}", table::render(&r));
            println!("wrote {out} ({} figures)", drawn.unwrap_or(0));
        }
    }
    Ok(())
}

/// A boundary run with every input checked, before anything touches the disk.
pub struct BoundaryPlan {
    pub spec: Spec,
    pub name: String,
    pub out: PathBuf,
    pub opts: BoundaryOptions,
}

/// Parses `a:b`, two whole numbers.
fn sizes(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once(':')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Checks a `boundary` command's spec and flags; reads the spec file, writes nothing.
pub fn plan_boundary(args: &BoundaryArgs) -> Result<BoundaryPlan> {
    let (mut spec, name) = load_spec(&args.spec)?;
    spec.apply(&args.overrides())?;
    let depth = match (args.depth, args.resolution) {
        (Some(d), _) => d,
        (None, Some(r)) => {
            let fits = args.coarse > 0
                && r.is_multiple_of(args.coarse.max(1))
                && (r / args.coarse.max(1)).is_power_of_two();
            if !fits {
                return Err(Error::spec(format!(
                    "--resolution {r} is not --coarse {} times a power of two; give for example {}",
                    args.coarse,
                    args.coarse.max(1) * (r / args.coarse.max(1)).max(1).next_power_of_two()
                )));
            }
            (r / args.coarse).trailing_zeros()
        }
        (None, None) => 6,
    };
    let fit = match &args.fit_sizes {
        Some(t) => Some(sizes(t).ok_or_else(|| {
            Error::spec(format!(
                "--fit-sizes '{t}' is not two box sizes a:b; give for example 2:128"
            ))
        })?),
        None => None,
    };
    let zoom = match &args.zoom {
        Some(text) => {
            let parsed = text
                .split_once(',')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
            let Some(center) = parsed else {
                return Err(Error::spec(format!(
                    "--zoom '{text}' is not a point STEP,AXIS; give for example --zoom 0.2,1.5"
                )));
            };
            Some(ZoomSpec {
                center,
                factor: args.factor,
                frames: args.frames,
            })
        }
        None => None,
    };
    if args.resume && args.force {
        return Err(Error::spec(
            "--resume and --force contradict each other; give one",
        ));
    }
    if args.chunk_size == Some(0) {
        return Err(Error::spec("--chunk-size is 0; give at least 1"));
    }
    let suffix = if args.critical {
        "critical"
    } else {
        "boundary"
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| runner::default_out(&format!("{name}-{suffix}")));
    Ok(BoundaryPlan {
        spec,
        name,
        out,
        opts: BoundaryOptions {
            coarse: args.coarse,
            depth,
            halo: args.halo,
            replicates: args.replicates,
            fit,
            chunk: args.chunk_size,
            quiet: args.quiet,
            resume: args.resume,
            force: args.force,
            stop: None,
            zoom,
            critical: args.critical.then_some(args.rtol),
            criterion: args.outcome,
        },
    })
}

pub fn boundary(args: &BoundaryArgs) -> Result<()> {
    let mut plan = plan_boundary(args)?;
    plan.opts.stop = Some(stop_on_signal());
    let done = crate::boundary::run(&plan.spec, &plan.name, &plan.out, &plan.opts)?;
    RESULTS_SAVED.store(true, Ordering::SeqCst);
    for line in &done.lines {
        println!("{line}");
    }
    println!("wrote {}", done.out.display());
    Ok(())
}

pub fn merge(args: &MergeArgs) -> Result<()> {
    let report = crate::merge::merge(&args.dirs, &args.out, args.force)?;
    print!("{}", table::render(&report));
    let figures = figures::plot_dir(&args.out)?;
    println!("wrote {} ({} figures)", args.out.display(), figures.len());
    Ok(())
}

pub fn plot(args: &PlotArgs) -> Result<()> {
    let written = figures::plot_dir(&args.dir)?;
    for f in &written {
        println!("{}", f.display());
    }
    Ok(())
}

pub fn reproduce(args: &ReproduceArgs) -> Result<()> {
    let opts = reproduce::Options {
        quick: args.quick,
        backend: args.backend,
        quiet: args.quiet,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| reproduce::default_out(args.quick));
    let report = reproduce::run(&reproduce::paper(), &out, &opts)?;
    print!("{}", report.table());
    println!("wrote {}", out.join("report.html").display());
    report.verdict()
}

pub fn devices() -> Result<()> {
    let adapters = gpu::adapters();
    println!(
        "probed: every wgpu backend built in (Vulkan), {} adapter(s){}",
        adapters.len(),
        gpu::quiet_runtime_dir().map_or(String::new(), |d| format!(
            "; XDG_RUNTIME_DIR named no directory, so the drivers were given {}",
            d.display()
        ))
    );
    if adapters.is_empty() {
        println!("no GPU adapters found; sweeps run on the CPU (install a Vulkan driver such as mesa-vulkan-drivers for lavapipe)");
        return Ok(());
    }
    for (info, limits, f64) in adapters {
        println!("{}", gpu::describe(&info));
        println!("  driver: {} {}", info.driver, info.driver_info);
        println!(
            "  f64 in shaders: {}",
            if f64 {
                "yes (sweeps run f64)"
            } else {
                "no (sweeps run f32, rechecked in f64 on the CPU)"
            }
        );
        println!("  max_buffer_size: {}", limits.max_buffer_size);
        println!(
            "  max_storage_buffer_binding_size: {}",
            limits.max_storage_buffer_binding_size
        );
        println!(
            "  max_compute_workgroups_per_dimension: {}",
            limits.max_compute_workgroups_per_dimension
        );
        println!(
            "  max_compute_invocations_per_workgroup: {}",
            limits.max_compute_invocations_per_workgroup
        );
        println!(
            "  max_compute_workgroup_storage_size: {}",
            limits.max_compute_workgroup_storage_size
        );
    }
    Ok(())
}

pub fn list_presets() {
    for (name, text) in presets::PRESETS {
        let about = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches('#')
            .trim();
        println!("{name:16} {about}");
    }
}

pub fn bench(args: &crate::cli::BenchArgs) -> Result<()> {
    if args.runs == Some(0) {
        return Err(Error::spec("--runs is 0; give at least 1"));
    }
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let mut known: Vec<&str> = crate::bench::workloads(true).iter().map(|w| w.id).collect();
    known.push("W7");
    if let Some(bad) = args.workloads.iter().find(|w| !known.contains(&w.as_str())) {
        return Err(Error::spec(format!(
            "--workload {bad} is not a workload; give one of {}",
            known.join(", ")
        )));
    }
    let wants = |id: &str| args.workloads.is_empty() || args.workloads.iter().any(|w| w == id);
    let others = known.iter().any(|&id| id != "W7" && wants(id));
    let rows = if others {
        crate::bench::run(args.quick, runs, &args.workloads, args.backend, |what| {
            eprintln!("stepsweep bench: {what}")
        })?
    } else {
        Vec::new()
    };
    let boundary = if wants("W7") {
        crate::bench::run_boundary(args.quick, args.backend, |what| {
            eprintln!("stepsweep bench: {what}")
        })?
    } else {
        Vec::new()
    };
    if args.json {
        // One array: W7's rows carry their own fields.
        let mut all: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::to_value(r).expect("JSON of plain data"))
            .collect();
        all.extend(
            boundary
                .iter()
                .map(|r| serde_json::to_value(r).expect("JSON of plain data")),
        );
        println!(
            "{}",
            serde_json::to_string_pretty(&all).expect("JSON of plain data")
        );
    } else {
        if !rows.is_empty() {
            print!("{}", crate::bench::render(&rows));
        }
        print!("{}", crate::bench::render_boundary(&boundary));
    }
    Ok(())
}
