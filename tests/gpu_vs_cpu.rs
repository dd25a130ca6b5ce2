//! The poly kernel against its CPU twin in f32, trajectory by trajectory.

mod common;

use stepsweep::backend::{ChunkResult, Engine, GpuContext};
use stepsweep::grid::Sweep;
use stepsweep::spec::Precision;
use stepsweep::stopping::Outcome;

/// The whole sweep as one chunk on the GPU and on the CPU in f32.
fn gpu_and_cpu(sweep: &Sweep, ctx: GpuContext) -> (ChunkResult, ChunkResult) {
    let rule = sweep.spec.stop.rule(Precision::F32, sweep.spec.max_iters);
    let ids = 0..sweep.total();
    let run = |engine: Engine| engine.run(sweep, &rule, ids.clone(), |_| {}).unwrap();
    (
        run(Engine::new(sweep, Some(ctx), Precision::F32, &rule).unwrap()),
        run(Engine::new(sweep, None, Precision::F32, &rule).unwrap()),
    )
}

#[test]
fn poly_kernel_matches_cpu_f32_trajectory_by_trajectory() {
    let Some(ctx) = common::gpu_or_skip("poly_kernel_matches_cpu_f32_trajectory_by_trajectory")
    else {
        return;
    };
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
    let (gpu, cpu) = gpu_and_cpu(&sweep, ctx);

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
            assert!(
                (xg - xc).abs() <= 1e-5,
                "trajectory {i}: GPU x = {xg}, CPU x = {xc}"
            );
        }
    }
    assert!(
        both_converged > n / 4,
        "only {both_converged} converged on both"
    );
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
    for (max_iters, long_period) in [(1037, 4), (1088, 8)] {
        let Some(ctx) =
            common::gpu_or_skip("poly_kernel_keeps_the_fingerprints_the_last_check_reads")
        else {
            return;
        };
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
        let (gpu, cpu) = gpu_and_cpu(&sweep, ctx);
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
        let status = common::bin()
            .args([
                "run",
                "poly",
                "--trajectories",
                "500",
                "--max-iters",
                "20000",
                "-q",
            ])
            .args([
                "--steps",
                "0.05,0.15,0.21,0.25,0.3,0.45,0.55",
                "--backend",
                backend,
            ])
            .args(["--precision", "f32", "--out"])
            .arg(dir.path().join(out))
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        std::fs::read_to_string(dir.path().join(out).join("cells.csv")).unwrap()
    };
    // The GPU always runs f32; --precision f32 is accepted with it.
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
