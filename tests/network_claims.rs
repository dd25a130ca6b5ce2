//! docs/theory.md §2 and §3 on the CPU reference (f64): the step size bounds the
//! sharpness of the minima GD can reach in deep linear networks.

mod common;

use stepsweep::aggregate::CellStats;
use stepsweep::runner::{execute, RunOptions, SweepReport};

fn run(text: &str) -> SweepReport {
    let opts = RunOptions {
        chunk_size: None,
        quiet: true,
        watch: None,
    };
    execute(common::spec(text), "claims", &opts, None).unwrap()
}

/// Converged at a minimum (not stalled at a saddle).
fn at_minimum(s: &CellStats) -> u64 {
    s.converged - s.converged_other
}

fn scalar_deep(layers: u32, lambda: f64, factors: &[f64]) -> (f64, SweepReport) {
    let d = 2.0 / (f64::from(layers) * lambda.abs().powf(2.0 - 2.0 / f64::from(layers)));
    let steps: Vec<String> = factors.iter().map(|f| format!("{}", f * d)).collect();
    let report = run(&format!(
        r#"
        trajectories = 2000
        max_iters = 20000
        seed = 11
        backend = "cpu"
        [model]
        kind = "scalar-deep"
        layers = {layers}
        lambda = {lambda}
        [init]
        kind = "balanced"
        noise = 0.2
        [steps]
        values = [{}]
        "#,
        steps.join(", ")
    ));
    (d, report)
}

#[test]
fn scalar_deep_converges_below_step_size_max_and_never_above() {
    for (layers, lambda) in [(5, 2.0), (3, -3.0), (16, 1.5)] {
        let (d, report) = scalar_deep(layers, lambda, &[0.98, 1.02, 1.05, 1.2, 1.5]);
        let summary = report.sweep.cells[0].model.theory();
        assert!((summary["step_size_max"].as_f64().unwrap() - d).abs() < 1e-12 * d);
        let cells: Vec<(f64, &CellStats)> = report
            .sweep
            .cells
            .iter()
            .map(|c| c.step_size)
            .zip(&report.cells)
            .collect();
        assert!(
            at_minimum(cells[0].1) > 0,
            "L={layers} λ={lambda}: none converged at 0.98 δ_max"
        );
        for (step, s) in &cells[1..] {
            assert!(*step >= 1.02 * d * (1.0 - 1e-12));
            assert_eq!(
                at_minimum(s),
                0,
                "L={layers} λ={lambda}: converged at δ = {step}"
            );
        }
        // No converged trajectory has S = Σ(λ/ŵᵢ)² above 2/δ (beyond 1e-3 relative).
        assert_eq!(report.cells.iter().map(|s| s.violations).sum::<u64>(), 0);
        for (step, s) in &cells {
            if let Some(m) = s.metric_max {
                assert!(m <= 2.0 / step * (1.0 + 1e-3), "S = {m} at δ = {step}");
            }
        }
    }
}

const TARGET: &str = r#"target = { kind = "psd", spectrum = [2.0, 1.0, 0.5, 0.25], seed = 1 }"#;

fn deep_linear(init: &str, factors: &[f64], trajectories: u32) -> (f64, SweepReport) {
    // L = 3, σ_max(R) = 2: δ_max(R) = 2/(3·2^(4/3)).
    let d = 2.0 / (3.0 * 2f64.powf(4.0 / 3.0));
    let steps: Vec<String> = factors.iter().map(|f| format!("{}", f * d)).collect();
    let report = run(&format!(
        r#"
        trajectories = {trajectories}
        max_iters = 20000
        seed = 12
        backend = "cpu"
        [model]
        kind = "deep-linear"
        layers = 3
        size = 4
        {TARGET}
        [init]
        {init}
        [steps]
        values = [{}]
        "#,
        steps.join(", ")
    ));
    (d, report)
}

#[test]
fn deep_linear_identity_start_on_a_psd_target_is_tight() {
    let (d, report) = deep_linear("kind = \"identity\"\nscale = 0.0", &[0.98, 1.02], 2);
    assert!((report.sweep.cells[0].model.step_size_max().unwrap() - d).abs() < 1e-12);
    assert_eq!(
        at_minimum(&report.cells[0]),
        2,
        "converges at 0.98 δ_max(R)"
    );
    assert_eq!(
        report.cells[1].converged, 0,
        "does not converge at 1.02 δ_max(R)"
    );
}

#[test]
fn deep_linear_random_starts_obey_the_bound_and_stop_at_step_size_max() {
    let factors = [0.3, 0.6, 0.9, 0.98, 1.02, 1.1, 1.5];
    for init in [
        "kind = \"gaussian\"\nmean = 0.0\nstd = 0.5",
        "kind = \"orthogonal\"\nscale = 1.0",
    ] {
        let (_, report) = deep_linear(init, &factors, 150);
        let mut converged = 0;
        for (cell, s) in report.sweep.cells.iter().zip(&report.cells) {
            // σ_max(R̂) ≤ (2/(Lδ))^(L/(2L−2)) for every converged estimate.
            assert_eq!(
                s.violations, 0,
                "{init}: violation at δ = {}",
                cell.step_size
            );
            if let Some(m) = s.metric_max {
                assert!(m <= cell.model.bound(cell.step_size) * (1.0 + 1e-3));
                // The spectral radius never exceeds σ_max, so it obeys the bound too.
                let radius = s.spectral_radius_max.unwrap();
                assert!(
                    radius <= m * (1.0 + 1e-9),
                    "radius {radius} above σ_max {m}"
                );
            }
            if cell.step_size > cell.model.step_size_max().unwrap() {
                assert_eq!(
                    at_minimum(s),
                    0,
                    "{init}: converged at δ = {}",
                    cell.step_size
                );
            } else {
                converged += at_minimum(s);
            }
        }
        assert!(converged > 0, "{init}: nothing converged below δ_max");
        // The sharpness at convergence, from power iteration, stays within 2/δ.
        for (cell, s) in report.sweep.cells.iter().zip(&report.cells) {
            if let Some(sharp) = s.sharpness_max {
                assert!(
                    sharp <= 2.0 / cell.step_size * (1.0 + 1e-3),
                    "sharpness {sharp} at δ = {}",
                    cell.step_size
                );
            }
        }
    }
}

/// docs/theory.md "Per-layer step sizes": with a step size per layer, a
/// minimum is stable only if its preconditioned sharpness λ_max(D^½HD^½) is
/// at most 2. Over a plane of layer-1 × layer-2 step sizes (log-spaced, as
/// the fractal-boundary study sweeps them) every fit keeps within it, fits
/// exist where one layer's step is past the plain δ_max, and nothing
/// converges where both are far past it. For ½(w₂w₁ − λ)² at the balanced
/// minimum, λ_max(D^½HD^½) = λ(δ₁ + δ₂), so δ₁ = δ₂ = 0.5 with λ = 2 is
/// exactly the edge.
#[test]
fn per_layer_step_sizes_bound_the_preconditioned_sharpness() {
    let report = run(r#"
        trajectories = 200
        max_iters = 20000
        seed = 12
        backend = "cpu"
        [model]
        kind = "scalar-deep"
        layers = 2
        lambda = 2.0
        [init]
        kind = "balanced"
        noise = 0.1
        [steps]
        logspace = [0.05, 2.0, 9]
        [axis]
        param = "steps.layer2"
        logspace = [0.05, 2.0, 9]
        "#);
    let mut fits_past_plain = 0;
    let mut converged = 0;
    for (cell, s) in report.sweep.cells.iter().zip(&report.cells) {
        let (d1, d2) = (cell.step_size, cell.axis_value.unwrap());
        assert_eq!(cell.layer_step_sizes(), vec![d1, d2]);
        assert_eq!(s.violations, 0, "δ = ({d1}, {d2}): {s:?}");
        assert_eq!(cell.bound(), 2.0);
        if let Some(m) = s.metric_max {
            assert!(
                m <= 2.0 * (1.0 + 1e-3),
                "δ = ({d1}, {d2}): λ_max(D^½HD^½) = {m}"
            );
        }
        converged += at_minimum(s);
        // Plain GD's δ_max here is 2/(Lλ) = 0.5.
        if d1.max(d2) > 0.6 && at_minimum(s) > 0 {
            fits_past_plain += 1;
        }
        if d1.min(d2) > 1.1 {
            assert_eq!(at_minimum(s), 0, "δ = ({d1}, {d2}) converged");
        }
    }
    assert!(converged > 1000, "{converged}");
    assert!(fits_past_plain >= 3, "{fits_past_plain}");
}
