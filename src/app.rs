//! What each subcommand does, so that `main.rs` only parses and maps errors.

use std::path::{Path, PathBuf};

use crate::backend::gpu;
use crate::cli::{PlotArgs, ReproduceArgs, RunArgs};
use crate::error::{Error, Result};
use crate::output::{figures, table};
use crate::presets;
use crate::reproduce;
use crate::spec::Spec;
use crate::sweep::{self, RunOptions};

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

pub fn run(args: &RunArgs) -> Result<()> {
    let (mut spec, name) = load_spec(&args.spec)?;
    spec.apply(&args.overrides())?;
    if args.write_trajectories {
        spec.output.trajectories = true;
    }
    if args.chunk_size == Some(0) {
        return Err(Error::spec("--chunk-size is 0; give at least 1"));
    }
    let out: PathBuf = args
        .out
        .clone()
        .unwrap_or_else(|| sweep::default_out(&name));
    let opts = RunOptions {
        chunk_size: args.chunk_size,
        quiet: args.quiet,
    };
    let report = match args.threads {
        Some(0) => return Err(Error::spec("--threads is 0; give at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::spec(format!("cannot start {n} threads: {e}")))?
            .install(|| sweep::run(spec, &name, &out, &opts))?,
        None => sweep::run(spec, &name, &out, &opts)?,
    };
    print!("{}", table::render(&report));
    let figures = figures::plot_dir(&out)?;
    println!("wrote {} ({} figures)", out.display(), figures.len());
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
    if adapters.is_empty() {
        println!("no GPU adapters found; sweeps run on the CPU (install a Vulkan driver such as mesa-vulkan-drivers for lavapipe)");
        return Ok(());
    }
    for (info, limits) in adapters {
        println!("{}", gpu::describe(&info));
        println!("  driver: {} {}", info.driver, info.driver_info);
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
    let rows = crate::bench::run(args.quick, runs, |what| {
        eprintln!("stepsweep bench: {what}")
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("JSON of plain data")
        );
    } else {
        print!("{}", crate::bench::render(&rows));
    }
    Ok(())
}
