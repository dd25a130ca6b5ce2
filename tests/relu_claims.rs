//! docs/theory.md §4 on the CPU in f64: the bound on random data, its tightness with
//! one sample, and what the notebook setup really does with stepsweep's draws.

mod common;

use stepsweep::backend::Backend;
use stepsweep::models::Model;
use stepsweep::runner::{self, RunOptions};
use stepsweep::spec::Precision;
use stepsweep::stopping::Outcome;
use stepsweep::sweep::Sweep;

fn run(text: &str) -> stepsweep::runner::SweepReport {
    let dir = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        chunk_size: None,
        quiet: true,
        watch: None,
    };
    runner::run(
        common::spec(text),
        "relu",
        dir.path(),
        &opts,
        &Default::default(),
    )
    .unwrap()
    .expect("a fresh run runs")
}

#[test]
fn converged_fits_on_random_data_obey_the_bound() {
    let report = run(r#"
        trajectories = 48
        max_iters = 20000
        seed = 11
        backend = "cpu"
        [model]
        kind = "relu"
        input_size = 2
        hidden = 16
        output_size = 2
        samples = 4
        inputs = { kind = "gaussian", std = 1.0, seed = 3 }
        targets = { kind = "teacher", std = 0.7, seed = 4 }
        bias_std = 0.3
        [init]
        kind = "gaussian"
        mean = 0.0
        std = 0.3
        [steps]
        logspace = [0.01, 0.6, 8]
    "#);
    let fits: u64 = report
        .cells
        .iter()
        .map(|s| s.converged - s.converged_other)
        .sum();
    let violations: u64 = report.cells.iter().map(|s| s.violations).sum();
    assert!(fits >= 50, "only {fits} fits");
    assert_eq!(violations, 0);
    // The bound is approached, not only met loosely: the largest metric·δ.
    let closest = report
        .sweep
        .cells
        .iter()
        .zip(&report.cells)
        .filter_map(|(c, s)| s.metric_max.map(|m| m * c.step_size))
        .fold(0.0, f64::max);
    assert!(closest > 0.3 && closest <= 1.0 + 1e-9, "{closest}");
}

#[test]
fn one_sample_edge_is_tight() {
    // x = 1.5, ‖y‖ = 0.8: the edge is δ = 1/1.2.
    let edge = 1.0 / 1.2;
    let report = run(&format!(
        r#"
        trajectories = 128
        max_iters = 20000
        seed = 12
        backend = "cpu"
        [model]
        kind = "relu"
        input_size = 1
        hidden = 20
        output_size = 1
        inputs = {{ kind = "given", samples = [[1.5]] }}
        targets = {{ kind = "constant" }}
        target_norm = 0.8
        bias_std = 0.1
        [init]
        kind = "gaussian"
        mean = 0.0
        std = 0.2
        [steps]
        values = [{}, {}, {}, {}, {}]
        "#,
        0.95 * edge,
        1.02 * edge,
        1.05 * edge,
        1.2 * edge,
        1.6 * edge
    ));
    let fits: Vec<u64> = report
        .cells
        .iter()
        .map(|s| s.converged - s.converged_other)
        .collect();
    assert!(fits[0] > 0, "{fits:?}");
    assert_eq!(&fits[1..], &[0, 0, 0, 0], "{fits:?}");
    let Model::Relu(r) = &report.sweep.cells[0].model else {
        panic!()
    };
    assert!((r.step_size_max().unwrap() - edge).abs() < 1e-12);
}

/// The embedded notebook preset, trajectory by trajectory: replicate 0 of each cell.
#[test]
fn notebook_setup_oscillates_at_six_e_minus_four_and_still_descends_at_two_e_minus_four() {
    let spec = stepsweep::spec::Spec::from_toml(
        stepsweep::presets::find("relu-notebook").unwrap(),
        "relu-notebook",
    )
    .unwrap();
    let sweep = Sweep::new(spec).unwrap();
    let rule = sweep.rule(Precision::F64);
    let engine = Backend::new(&sweep, None, Precision::F64, &rule).unwrap();
    let t = sweep.trajectories_per_cell;
    let Model::Relu(model) = &sweep.cells[0].model else {
        panic!()
    };
    for (cell, step_size) in [(0, 2e-4), (1, 6e-4)] {
        let id = cell * t;
        assert_eq!(sweep.cell_of(id).step_size, step_size);
        let end = engine.run(&sweep, &rule, id..id + 1, |_| {}).unwrap().ends[0];
        // The estimate over the 20 001 steps, replayed from the same start.
        let mut theta = vec![0.0; model.dim()];
        sweep.initial(id, &mut theta);
        let mut last = Vec::new();
        for k in 0..20_001 {
            let g = model.gradient_f64(&theta);
            theta
                .iter_mut()
                .zip(&g)
                .for_each(|(p, g)| *p -= step_size * g);
            if k >= 20_001 - 3 {
                last.push(model.estimate(&theta));
            }
        }
        let gap = |a: &Vec<Vec<f64>>, b: &Vec<Vec<f64>>| {
            a.iter()
                .zip(b)
                .map(|(u, v)| (u[0] - v[0]).abs())
                .fold(0.0, f64::max)
        };
        let (step, orbit) = (gap(&last[2], &last[1]), gap(&last[2], &last[0]));
        if cell == 1 {
            // Period 2: f̂ flips between two curves that repeat every other step.
            assert_eq!((end.outcome, end.period), (Outcome::Oscillating, 2));
            assert!(step > 0.5 && orbit < 1e-3 * step, "{step} {orbit}");
        } else {
            // Still descending smoothly after 20 001 steps: no orbit, a small
            // loss, but a gradient above the stopping tolerance.
            assert_eq!(end.outcome, Outcome::Undecided);
            assert!(step < 1e-4 && orbit > step, "{step} {orbit}");
            let loss = model.loss(&theta);
            assert!(loss < 0.2, "{loss}");
        }
    }
}
