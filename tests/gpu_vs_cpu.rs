//! The poly kernel against its CPU twin in f32 and f64, trajectory by
//! trajectory, and the GPU's precision as the command line chooses it.

mod common;

use stepsweep::backend::{Backend, ChunkResult, GpuContext};
use stepsweep::spec::Precision;
use stepsweep::stopping::Outcome;
use stepsweep::sweep::Sweep;

/// The whole sweep as one chunk on the GPU and on the CPU in `precision`.
fn gpu_and_cpu(sweep: &Sweep, ctx: GpuContext, precision: Precision) -> (ChunkResult, ChunkResult) {
    let rule = sweep.rule(precision);
    let ids = 0..sweep.total();
    let run = |engine: Backend| engine.run(sweep, &rule, ids.clone(), |_| {}).unwrap();
    (
        run(Backend::new(sweep, Some(ctx), precision, &rule).unwrap()),
        run(Backend::new(sweep, None, precision, &rule).unwrap()),
    )
}

/// The GPU in `precision` where the adapter has it, with the test's name.
fn gpu_in(test: &str, precision: Precision) -> Option<GpuContext> {
    common::with_precision(common::gpu_or_skip(test)?, precision, test)
}

/// In f64 on a CPU adapter (lavapipe, which fuses no multiply and add) every
/// trajectory ends as on the CPU, bit for bit: outcome, period, iteration and
/// final iterate.
fn assert_bit_for_bit(gpu: &ChunkResult, cpu: &ChunkResult, what: &str) {
    assert_eq!(gpu.ends.len(), cpu.ends.len());
    for (i, (g, c)) in gpu.ends.iter().zip(&cpu.ends).enumerate() {
        assert_eq!(g, c, "{what}: trajectory {i}'s end");
        let (tg, tc) = (gpu.theta[i], cpu.theta[i]);
        assert!(
            tg.to_bits() == tc.to_bits() || (tg.is_nan() && tc.is_nan()),
            "{what}: trajectory {i} ended at {tg} on the GPU and {tc} on the CPU"
        );
    }
}

#[test]
fn poly_kernel_matches_cpu_f32_trajectory_by_trajectory() {
    poly_kernel_matches_cpu(Precision::F32);
}

#[test]
fn poly_kernel_matches_cpu_f64_trajectory_by_trajectory() {
    poly_kernel_matches_cpu(Precision::F64);
}

fn poly_kernel_matches_cpu(precision: Precision) {
    let test = format!("poly_kernel_matches_cpu_{}", precision.name());
    let Some(ctx) = gpu_in(&test, precision) else {
        return;
    };
    let exact = precision == Precision::F64 && !stepsweep::backend::gpu::is_hardware(&ctx.info);
    // 60 step sizes × 1100 trajectories = 66 000 trajectories over δ ∈ [0.01, 0.6].
    let sweep = Sweep::new(common::spec(
        r#"
        trajectories = 1100
        max_iters = 20000
        seed = 7
        backend = "gpu"
        [model]
        kind = "poly"
        [init]
        kind = "uniform"
        low = -1.0
        high = 4.0
        [steps]
        linspace = [0.01, 0.6, 60]
        "#,
    ))
    .unwrap();
    let (gpu, cpu) = gpu_and_cpu(&sweep, ctx, precision);
    if exact {
        assert_bit_for_bit(&gpu, &cpu, &test);
    }

    let n = gpu.ends.len();
    let same_class = gpu
        .ends
        .iter()
        .zip(&cpu.ends)
        .filter(|(g, c)| g.outcome == c.outcome)
        .count();
    let agreement = same_class as f64 / n as f64;
    assert!(
        agreement >= 0.999,
        "outcome classes agree on {agreement:.5} of {n}"
    );

    let stepsweep::models::Model::Poly(poly) = &sweep.cells[0].model else {
        panic!("a poly sweep builds a poly model");
    };
    let mut both_converged = 0;
    for (i, (g, c)) in gpu.ends.iter().zip(&cpu.ends).enumerate() {
        if g.outcome == Outcome::Converged && c.outcome == Outcome::Converged {
            both_converged += 1;
            let (xg, xc) = (gpu.theta[i], cpu.theta[i]);
            assert_eq!(
                poly.nearest_minimizer(xg),
                poly.nearest_minimizer(xc),
                "trajectory {i}: GPU ended at {xg}, CPU at {xc}"
            );
            let tol = match precision {
                Precision::F32 => 1e-5,
                Precision::F64 => 1e-10,
            };
            assert!(
                (xg - xc).abs() <= tol,
                "trajectory {i}: GPU x = {xg}, CPU x = {xc}"
            );
        }
    }
    assert!(
        both_converged > n / 4,
        "only {both_converged} converged on both"
    );
}

/// Momentum and Nesterov on the default polynomial, β on the second axis:
/// in f64 on a CPU adapter, bit for bit as on the CPU (velocity, look-ahead
/// point and residual in the same order of operations); elsewhere, the
/// same classes for all but 0.1%.
#[test]
fn poly_kernel_with_momentum_matches_cpu() {
    for kind in ["momentum", "nesterov"] {
        let test = format!("poly_kernel_with_{kind}_matches_cpu");
        let Some(ctx) = gpu_in(&test, Precision::F64) else {
            return;
        };
        let exact = !stepsweep::backend::gpu::is_hardware(&ctx.info);
        let sweep = Sweep::new(common::spec(&format!(
            r#"
            trajectories = 200
            max_iters = 20000
            seed = 11
            [model]
            kind = "poly"
            [init]
            kind = "uniform"
            low = -1.0
            high = 4.0
            [optimizer]
            kind = "{kind}"
            [steps]
            linspace = [0.02, 0.6, 15]
            [axis]
            param = "optimizer.beta"
            values = [0.0, 0.3, 0.6, 0.9]
            "#
        )))
        .unwrap();
        let (gpu, cpu) = gpu_and_cpu(&sweep, ctx, Precision::F64);
        if exact {
            assert_bit_for_bit(&gpu, &cpu, &test);
        }
        let same = gpu
            .ends
            .iter()
            .zip(&cpu.ends)
            .filter(|(g, c)| g.outcome == c.outcome)
            .count();
        assert!(
            same * 1000 >= gpu.ends.len() * 999,
            "{test}: classes agree on {same} of {}",
            gpu.ends.len()
        );
    }
}

/// With early exit off only the check at max_iters reads fingerprints, and
/// the kernels compute only the ones it reads (`first_fingerprint_read`):
/// the last min(block + 1, ring) iterates of the last block. Period-2 orbits
/// and their doublings up to period 16 (δ from 0.5 to 0.71; a period p is
/// seen in the last 2p fingerprints), convergence (a zero last step) and
/// divergence must come out as on the CPU, whether the last block is shorter
/// than the ring (1037 = 16·64 + 13) or longer (1088 = 17·64).
#[test]
fn poly_kernel_keeps_the_fingerprints_the_last_check_reads() {
    // The last check sees periods up to half the iterates it reads: 7 after a
    // block of 13 steps, 16 after 64.
    for (max_iters, long_period, precision) in [
        (1037, 4, Precision::F32),
        (1088, 8, Precision::F32),
        (1037, 4, Precision::F64),
        (1088, 8, Precision::F64),
    ] {
        let test = "poly_kernel_keeps_the_fingerprints_the_last_check_reads";
        let Some(ctx) = gpu_in(test, precision) else {
            continue;
        };
        let exact = precision == Precision::F64 && !stepsweep::backend::gpu::is_hardware(&ctx.info);
        let sweep = Sweep::new(common::spec(&format!(
            r#"
            trajectories = 256
            max_iters = {max_iters}
            seed = 5
            [model]
            kind = "poly"
            [init]
            kind = "uniform"
            low = 0.5
            high = 2.5
            [steps]
            values = [0.3, 0.45, 0.52, 0.6, 0.62, 0.636, 0.64, 0.685, 0.71]
            [stop]
            early_exit = false
            "#
        )))
        .unwrap();
        let (gpu, cpu) = gpu_and_cpu(&sweep, ctx, precision);
        if exact {
            assert_bit_for_bit(&gpu, &cpu, &format!("{test} at {max_iters}"));
        }
        let n = gpu.ends.len();
        let same = gpu
            .ends
            .iter()
            .zip(&cpu.ends)
            .filter(|(g, c)| g.outcome == c.outcome && g.period == c.period)
            .count();
        assert!(
            same as f64 >= 0.999 * n as f64,
            "max_iters {max_iters}: classes and periods agree on {same} of {n}"
        );
        let count = |o: Outcome| gpu.ends.iter().filter(|e| e.outcome == o).count();
        let long = gpu.ends.iter().filter(|e| e.period >= long_period).count();
        assert!(
            count(Outcome::Oscillating) >= 500 && count(Outcome::Converged) >= 200 && long >= 50,
            "max_iters {max_iters}: {} oscillating ({long} with periods of {long_period} or more) and {} converged on the GPU",
            count(Outcome::Oscillating),
            count(Outcome::Converged)
        );
        assert!(gpu.ends.iter().all(|e| e.iterations == max_iters));
    }
}

#[test]
fn gpu_cells_match_cpu_f32_cells_through_the_cli() {
    if common::gpu_or_skip("gpu_cells_match_cpu_f32_cells_through_the_cli").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |backend: &str, out: &str| {
        let out = dir.path().join(out);
        common::run_ok(
            &[
                "run",
                "poly",
                "--trajectories",
                "500",
                "--max-iters",
                "20000",
                "--steps",
                "0.05,0.15,0.21,0.25,0.3,0.45,0.55",
                "--backend",
                backend,
                "--precision",
                "f32",
            ],
            &out,
        );
        std::fs::read_to_string(out.join("cells.csv")).unwrap()
    };
    // Both in f32, rechecked alike.
    let gpu = run("gpu", "gpu");
    let cpu = run("cpu", "cpu");
    let counts = |csv: &str| -> Vec<Vec<String>> {
        csv.lines()
            .map(|l| l.split(',').take(6).map(String::from).collect())
            .collect()
    };
    let (g, c) = (counts(&gpu), counts(&cpu));
    for (rg, rc) in g.iter().zip(&c).skip(1) {
        for k in 2..6 {
            let (a, b): (i64, i64) = (rg[k].parse().unwrap(), rc[k].parse().unwrap());
            assert!((a - b).abs() <= 1, "cell {}: gpu {rg:?} cpu {rc:?}", rg[0]);
        }
    }
}

/// Without --precision the GPU runs f64 where the adapter has it, says so in
/// summary.json, and gives the CPU's cells: on a CPU adapter (lavapipe) the
/// very same cells.csv.
#[test]
fn gpu_runs_f64_by_default_and_gives_the_cpus_cells() {
    let test = "gpu_runs_f64_by_default_and_gives_the_cpus_cells";
    let Some(ctx) = gpu_in(test, Precision::F64) else {
        return;
    };
    let exact = !stepsweep::backend::gpu::is_hardware(&ctx.info);
    drop(ctx);
    let dir = tempfile::tempdir().unwrap();
    let run = |backend: &str| {
        let out = dir.path().join(backend);
        common::run_ok(
            &[
                "run",
                "poly",
                "--trajectories",
                "300",
                "--backend",
                backend,
                "--steps",
                "0.05,0.19,0.21,0.3,0.45,0.55",
            ],
            &out,
        );
        let summary = common::summary(&out);
        assert_eq!(summary["backend"]["precision"], "f64", "{backend}");
        assert!(summary["recheck"].is_null(), "an f64 run rechecks nothing");
        std::fs::read_to_string(out.join("cells.csv")).unwrap()
    };
    let (gpu, cpu) = (run("gpu"), run("cpu"));
    if exact {
        assert_eq!(gpu, cpu);
    }
    for (g, c) in gpu.lines().zip(cpu.lines()).skip(1) {
        let counts = |l: &str| -> Vec<i64> {
            l.split(',')
                .skip(2)
                .take(4)
                .map(|v| v.parse().unwrap())
                .collect()
        };
        for (a, b) in counts(g).iter().zip(counts(c)) {
            assert!((a - b).abs() <= 1, "gpu {g} cpu {c}");
        }
    }
}

/// On an adapter without f64 (simulated by STEPSWEEP_GPU_NO_F64) the GPU runs
/// f32 and says so in one line, rechecking its suspect verdicts in f64; an
/// explicit --precision f64 there is refused in one sentence, with nothing
/// written.
#[test]
fn an_adapter_without_f64_runs_f32_with_a_notice_and_refuses_f64() {
    if common::gpu_or_skip("an_adapter_without_f64_runs_f32_with_a_notice_and_refuses_f64")
        .is_none()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f32");
    let run = |extra: &[&str], out: &std::path::Path| {
        common::bin()
            .env(stepsweep::backend::gpu::NO_F64_ENV, "1")
            .args(["run", "poly", "--trajectories", "200", "--backend", "gpu"])
            .args(["--steps", "0.1,0.3"])
            .args(extra)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let fallback = run(&[], &out);
    assert!(
        fallback.status.success(),
        "{}",
        String::from_utf8_lossy(&fallback.stderr)
    );
    let stderr = String::from_utf8_lossy(&fallback.stderr);
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no f64 arithmetic"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(
        notices[0].contains("this run is f32") && notices[0].contains("rechecked in f64"),
        "{stderr}"
    );
    let summary = common::summary(&out);
    assert_eq!(summary["backend"]["precision"], "f32");
    assert!(
        summary["backend"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("no f64 arithmetic")),
        "{}",
        summary["backend"]
    );
    // The first 4 (⌈200/64⌉) replicates of each of the 2 cells at least.
    assert!(
        summary["recheck"]["rechecked"].as_u64().unwrap() >= 8,
        "{}",
        summary["recheck"]
    );
    let cells = std::fs::read_to_string(out.join("cells.csv")).unwrap();
    assert!(
        cells
            .lines()
            .next()
            .unwrap()
            .contains(",rechecked,overturned,"),
        "{cells}"
    );

    let refused_dir = dir.path().join("f64");
    let refused = run(&["--precision", "f64"], &refused_dir);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    // One sentence of ours (Mesa's loader may add its own complaint about
    // XDG_RUNTIME_DIR where the environment lacks it).
    let ours = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("XDG_RUNTIME_DIR"))
        .count();
    assert_eq!(ours, 1, "{stderr}");
    assert!(
        stderr.contains("no f64 arithmetic") && stderr.contains("--backend cpu"),
        "{stderr}"
    );
    assert!(!refused_dir.join("cells.csv").exists());
}

/// From x0 = 1.8148614168167114 (an f32) at δ = 0.2525, GD in f32 lands
/// exactly on x = 2 within its first block, where f'(2) = 0, and reports a
/// convergence to x = 2, whose threshold 2/f''(2) = 0.2 is below δ. In f64
/// the same start is repelled from x = 2, as the theory says. An f32 run
/// rechecks the verdict, f64 overturns it, and the cell counts f64's
/// verdict: on the CPU, and on the GPU in f32.
#[test]
fn an_f32_landing_on_x2_past_its_threshold_is_rechecked_and_overturned() {
    let spec_text = r#"
        trajectories = 3
        max_iters = 20000
        seed = 1
        [model]
        kind = "poly"
        [init]
        kind = "point"
        x0 = 1.8148614168167114
        [steps]
        values = [0.2525]
        "#;
    // The f32 verdict itself, before any recheck: converged, at exactly 2.
    let sweep = Sweep::new(common::spec(spec_text)).unwrap();
    let rule = sweep.rule(Precision::F32);
    let f32_run = Backend::new(&sweep, None, Precision::F32, &rule)
        .unwrap()
        .run(&sweep, &rule, 0..3, |_| {})
        .unwrap();
    for (end, &x) in f32_run.ends.iter().zip(&f32_run.theta) {
        assert_eq!((end.outcome, x), (Outcome::Converged, 2.0), "{end:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cell = |backend: &str| -> std::collections::HashMap<String, String> {
        let spec = dir.path().join("spec.toml");
        std::fs::write(&spec, spec_text).unwrap();
        let out = dir.path().join(backend);
        let o = common::bin()
            .arg("run")
            .arg(&spec)
            .args(["--precision", "f32", "--backend", backend, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            stdout.contains("f32 verdicts rechecked in f64: 3 ")
                && stdout.contains("f64 overturned 3"),
            "{stdout}"
        );
        let csv = std::fs::read_to_string(out.join("cells.csv")).unwrap();
        let mut lines = csv.lines();
        let header = lines.next().unwrap().split(',');
        header
            .zip(lines.next().unwrap().split(','))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut backends = vec!["cpu"];
    if common::gpu_or_skip("an_f32_landing_on_x2_past_its_threshold_is_rechecked_and_overturned")
        .is_some()
    {
        backends.push("gpu");
    }
    for backend in backends {
        let row = cell(backend);
        assert_eq!(row["rechecked"], "3", "{backend}: {row:?}");
        assert_eq!(row["overturned"], "3", "{backend}: {row:?}");
        // x = 2 is the second minimizer; f64 never reaches it at δ > 0.2.
        assert_eq!(row["converged_min_1"], "0", "{backend}: {row:?}");
        assert_eq!(row["violations"], "0", "{backend}: {row:?}");
    }
}

/// `--trace K` on the GPU traces the iterates the GPU hands back, in
/// dispatches that end on every check: in f64 on a CPU adapter they are the
/// CPU's bit for bit, so trace.csv is the same file on both backends, for
/// the polynomial (with momentum) and for an mlp whose check_every is not a
/// power of two.
#[test]
fn gpu_traces_are_the_cpus() {
    let Some(ctx) = gpu_in("gpu_traces_are_the_cpus", Precision::F64) else {
        return;
    };
    if stepsweep::backend::gpu::is_hardware(&ctx.info) {
        eprintln!("skipping the byte comparison of traces: a hardware GPU may fuse operations");
        return;
    }
    drop(ctx);
    let dir = tempfile::tempdir().unwrap();
    let specs = [
        "trajectories = 30\nmax_iters = 3000\nseed = 2\n[model]\nkind = \"poly\"\n\
         [init]\nkind = \"uniform\"\nlow = -1.0\nhigh = 4.0\n[optimizer]\nkind = \"momentum\"\nbeta = 0.5\n\
         [steps]\nvalues = [0.05, 0.25, 0.32]\n"
            .to_string(),
        "trajectories = 4\nmax_iters = 500\nseed = 2\n[model]\nkind = \"mlp\"\ninput_size = 3\n\
         hidden = [5]\noutput_size = 1\nsamples = 6\n\
         inputs = { kind = \"gaussian\", std = 1.0, seed = 1 }\n\
         targets = { kind = \"teacher\", std = 0.7, seed = 2 }\n\
         [init]\nkind = \"gaussian\"\nmean = 0.0\nstd = 0.5\n[steps]\nvalues = [0.1, 0.6]\n\
         [stop]\ncheck_every = 48\n"
            .to_string(),
    ];
    for (i, text) in specs.iter().enumerate() {
        let spec = dir.path().join(format!("s{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let mut traces = Vec::new();
        for backend in ["cpu", "gpu"] {
            let out = dir.path().join(format!("{i}-{backend}"));
            common::run_ok(
                &[
                    "run",
                    spec.to_str().unwrap(),
                    "--backend",
                    backend,
                    "--precision",
                    "f64",
                    "--trace",
                    "2",
                ],
                &out,
            );
            traces.push(std::fs::read_to_string(out.join("trace.csv")).unwrap());
        }
        assert!(traces[0].lines().count() > 10, "{}", traces[0]);
        assert_eq!(traces[0], traces[1], "spec {i}");
    }
}
