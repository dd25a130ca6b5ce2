//! docs/theory.md §1 on the CPU reference (f64): GD reaches x = 2 only for δ ≤ 0.2
//! and x = 1 only for δ ≤ 0.5, and past 0.2 the orbit near x = 2 doubles its period.

mod common;

use stepsweep::runner::{execute, RunOptions};
use stepsweep::sweep::Sweep;

const SPEC: &str = r#"
    trajectories = 10000
    max_iters = 20000
    seed = 20181203
    backend = "cpu"
    [model]
    kind = "poly"
    [init]
    kind = "uniform"
    low = -1.0
    high = 4.0
    [steps]
    values = [0.19, 0.195, 0.199, 0.3, 0.49, 0.495, 0.499]
    linspace = [[0.205, 0.6, 80]]
"#;

#[test]
fn thresholds_two_over_curvature_hold_with_ten_thousand_trajectories_per_cell() {
    let report = execute(
        common::spec(SPEC),
        "claims",
        &RunOptions {
            chunk_size: None,
            quiet: true,
            watch: None,
        },
        None,
    )
    .unwrap();
    let cells: Vec<_> = report.sweep.cells.iter().zip(&report.cells).collect();
    let p = |min: usize, pred: &dyn Fn(f64) -> bool| -> Vec<(f64, u64)> {
        cells
            .iter()
            .filter(|(c, _)| pred(c.step_size))
            .map(|(c, s)| (c.step_size, s.converged_min[min]))
            .collect()
    };
    // x = 2 (minimizer 1): reached just below 0.2, never from 0.205 on.
    assert!(p(1, &|d| (0.19..0.2).contains(&d))
        .iter()
        .any(|&(_, n)| n > 0));
    let past = p(1, &|d| d >= 0.205);
    assert!(past.len() >= 80);
    assert!(
        past.iter().all(|&(_, n)| n == 0),
        "x=2 reached past 0.205: {past:?}"
    );
    // x = 1 (minimizer 0): reached just below 0.5, never from 0.505 on.
    assert!(p(0, &|d| (0.49..0.5).contains(&d))
        .iter()
        .any(|&(_, n)| n > 0));
    let past = p(0, &|d| d >= 0.505);
    assert!(past.len() >= 10);
    assert!(
        past.iter().all(|&(_, n)| n == 0),
        "x=1 reached past 0.505: {past:?}"
    );
    // δ = 0.3: every converged trajectory is at x = 1, and some converge.
    let (_, at3) = cells.iter().find(|(c, _)| c.step_size == 0.3).unwrap();
    assert!(at3.converged > 0);
    assert_eq!(at3.converged, at3.converged_min[0]);
    // No converged trajectory anywhere has f''(x̂) > 2/δ.
    let violations: u64 = report.cells.iter().map(|s| s.violations).sum();
    assert_eq!(violations, 0);
    assert!(cells
        .iter()
        .all(|(c, s)| s.metric_max.is_none_or(|m| m <= 2.0 / c.step_size * 1.001)));
}

/// Runs trajectories from a point near x = 2 and returns the modal outcome.
fn near_two(step: f64) -> (u64, u64, u64, u32) {
    let spec = common::spec(&format!(
        r#"
        trajectories = 64
        max_iters = 100000
        seed = 1
        backend = "cpu"
        [model]
        kind = "poly"
        [init]
        kind = "uniform"
        low = 1.9
        high = 2.1
        [steps]
        values = [{step}]
        "#
    ));
    let report = execute(
        spec,
        "cascade",
        &RunOptions {
            chunk_size: None,
            quiet: true,
            watch: None,
        },
        None,
    )
    .unwrap();
    let s = &report.cells[0];
    (s.oscillating, s.undecided, s.converged, s.modal_period())
}

#[test]
fn period_doubling_cascade_past_the_threshold_of_x_two() {
    let (osc, _, _, period) = near_two(0.21);
    assert_eq!((osc, period), (64, 2), "δ = 0.21");
    let (osc, _, _, period) = near_two(0.25);
    assert_eq!((osc, period), (64, 4), "δ = 0.25");
    // By 0.3 the orbit is bounded but aperiodic: none periodic, none converged to x=2.
    let (osc, undecided, converged, _) = near_two(0.3);
    assert_eq!(osc, 0, "δ = 0.3 found a period");
    assert!(
        undecided > 0 && undecided + converged == 64,
        "undecided {undecided}, converged {converged}"
    );
}

#[test]
fn steps_merge_sorted_and_deduplicated() {
    let sweep = Sweep::new(common::spec(SPEC)).unwrap();
    // The linspace already holds 0.3, 0.49 and 0.495; duplicates merge.
    assert_eq!(sweep.cells.len(), 84);
    assert_eq!(sweep.total(), 840_000);
    assert!(sweep.steps.windows(2).all(|w| w[0] < w[1]));
}

/// Momentum and Nesterov move each minimizer's threshold 2/f''(x*) to the
/// optimizer's own (δS ≤ 2(1+β), and δS ≤ (2+2β)/(1+2β)): with β = 0.5, x = 2
/// is reached just below 0.3 (momentum) and 0.15 (Nesterov) and never above,
/// and x = 1 just below 0.75 and 0.375. summary.json states the thresholds.
#[test]
fn momentum_and_nesterov_move_the_thresholds_to_their_own() {
    for (kind, x2, x1) in [("momentum", 0.3, 0.75), ("nesterov", 0.15, 0.375)] {
        let steps: Vec<String> = [x2, x1]
            .iter()
            .flat_map(|&t| [0.97 * t, 0.99 * t, 1.01 * t, 1.03 * t, 1.1 * t])
            .map(|d: f64| format!("{d:.6}"))
            .collect();
        let text = format!(
            r#"
            trajectories = 3000
            max_iters = 50000
            seed = 4
            backend = "cpu"
            [model]
            kind = "poly"
            [init]
            kind = "uniform"
            low = -1.0
            high = 4.0
            [optimizer]
            kind = "{kind}"
            beta = 0.5
            [steps]
            values = [{}]
            "#,
            steps.join(", ")
        );
        let report = execute(
            common::spec(&text),
            "claims",
            &RunOptions {
                chunk_size: None,
                quiet: true,
                watch: None,
            },
            None,
        )
        .unwrap();
        for (minimizer, threshold) in [(1, x2), (0, x1)] {
            let counts: Vec<(f64, u64)> = report
                .sweep
                .cells
                .iter()
                .zip(&report.cells)
                .filter(|(c, _)| (c.step_size / threshold - 1.0).abs() < 0.2)
                .map(|(c, s)| (c.step_size, s.converged_min[minimizer]))
                .collect();
            assert!(
                counts.iter().any(|&(d, n)| d < threshold && n > 0),
                "{kind}: minimizer {minimizer} never reached below {threshold}: {counts:?}"
            );
            assert!(
                counts.iter().all(|&(d, n)| d < threshold || n == 0),
                "{kind}: minimizer {minimizer} reached past {threshold}: {counts:?}"
            );
        }
        let cell = &report.sweep.cells[0];
        let edges: Vec<f64> = cell.edges().iter().map(|e| e.step_size).collect();
        assert!(
            edges.iter().any(|e| (e - x2).abs() < 1e-12)
                && edges.iter().any(|e| (e - x1).abs() < 1e-12),
            "{kind}: edges {edges:?}"
        );
    }
}
