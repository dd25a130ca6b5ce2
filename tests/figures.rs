//! Figures: every file is written with the expected pixel size, the heatmap
//! puts the right colour in a known cell, and `stepsweep plot` redraws a run.

mod common;

use std::path::Path;

use stepsweep::grid::Sweep;
use stepsweep::output::figures::{self, data::CellRow, heatmap, Figure, RunData};
use stepsweep::sweep::{self, RunOptions};

const ONE_AXIS: &str = r#"
trajectories = 200
max_iters = 5000
seed = 7
backend = "cpu"
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
logspace = [0.01, 0.6, 12]
[output]
trajectories = true
"#;

const BASIN: &str = r#"
trajectories = 1
max_iters = 5000
seed = 7
backend = "cpu"
[model]
kind = "poly"
[init]
kind = "point"
x0 = 0.0
[steps]
linspace = [0.05, 0.6, 12]
[axis]
param = "init.x0"
linspace = [-1.0, 4.0, 20]
"#;

fn quiet() -> RunOptions {
    RunOptions {
        chunk_size: None,
        quiet: true,
    }
}

/// Decodes a PNG and checks its size; checks the SVG declares the same size.
fn check_figure(dir: &Path, stem: &str, (w, h): (u32, u32)) -> image::RgbImage {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    assert!(!bytes.is_empty(), "{stem}.png is empty");
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (w, h), "{stem}.png");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains(&format!("width=\"{w}\"")) && text.contains(&format!("height=\"{h}\"")),
        "{stem}.svg does not declare {w}×{h}"
    );
    // Something was drawn: not one flat colour.
    let first = *img.get_pixel(0, 0);
    assert!(img.pixels().any(|p| *p != first), "{stem}.png is blank");
    img
}

#[test]
fn every_figure_is_written_with_its_pixel_size() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    sweep::run(
        common::spec(ONE_AXIS),
        "one",
        &one,
        &quiet(),
        &Default::default(),
    )
    .unwrap();
    let written = figures::plot_dir(&one).unwrap();
    let figs = one.join(figures::FOLDER);
    for stem in ["outcomes", "metric_bound", "bifurcation"] {
        check_figure(&figs, stem, (960, 600));
    }
    assert_eq!(written.len(), 6, "{written:?}");

    let two = dir.path().join("two");
    sweep::run(
        common::spec(BASIN),
        "basin",
        &two,
        &quiet(),
        &Default::default(),
    )
    .unwrap();
    let written = figures::plot_dir(&two).unwrap();
    let figs = two.join(figures::FOLDER);
    for stem in ["outcomes", "metric_bound", "heatmap", "basin"] {
        check_figure(&figs, stem, (960, 600));
    }
    // No bifurcation diagram for a two-axis sweep; no temp file left behind.
    assert_eq!(written.len(), 8, "{written:?}");
    assert!(std::fs::read_dir(&figs).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn the_heatmap_paints_each_cell_in_its_probability_colour() {
    let spec = common::spec(
        r#"
        trajectories = 4
        max_iters = 10
        seed = 1
        [model]
        kind = "poly"
        [init]
        kind = "point"
        x0 = 0.0
        [steps]
        logspace = [0.01, 1.0, 3]
        [axis]
        param = "init.x0"
        values = [0.0, 1.0]
        "#,
    );
    let sweep = Sweep::new(spec).unwrap();
    // Cell c converged c mod 5 of 4 trajectories: p = 0, 0.25, 0.5, 0.75, 1, 0.
    // Cells run second axis first: c = axis · 3 + step.
    let cells: Vec<CellRow> = sweep
        .cells
        .iter()
        .map(|c| {
            let converged = (c.index % 5) as u64;
            CellRow {
                step_size: c.step_size,
                axis_value: c.axis_value,
                trajectories: 4,
                converged,
                diverged: 4 - converged,
                converged_min: vec![converged, 0],
                bound: 2.0 / c.step_size,
                ..CellRow::default()
            }
        })
        .collect();
    let run = RunData {
        name: "synthetic".into(),
        sweep,
        cells,
        trajectories: None,
    };
    // Viridis: dark purple at 0, yellow at 1.
    assert_eq!(
        heatmap::colour_of(0.0),
        plotters::style::RGBColor(68, 1, 84)
    );
    assert_eq!(
        heatmap::colour_of(1.0),
        plotters::style::RGBColor(254, 232, 37)
    );
    let map = heatmap::Heatmap::new(&run).unwrap();
    let dir = tempfile::tempdir().unwrap();
    figures::render(&map, dir.path()).unwrap();
    let img = check_figure(dir.path(), "heatmap", map.size());
    let mut seen = Vec::new();
    for step in 0..3 {
        for axis in 0..2 {
            let p = ((axis * 3 + step) % 5) as f64 / 4.0;
            let (x, y) = map.pixel_of(step, axis);
            let got = img.get_pixel(x as u32, y as u32).0;
            let want = heatmap::colour_of(p);
            assert_eq!(
                got,
                [want.0, want.1, want.2],
                "cell (δ #{step}, x0 #{axis}) with p = {p} at pixel ({x}, {y})"
            );
            seen.push(got);
        }
    }
    // The log-spaced δ axis puts the middle step size in the middle of the plot.
    let (left, _) = map.pixel_of(0, 0);
    let (mid, _) = map.pixel_of(1, 0);
    let (right, _) = map.pixel_of(2, 0);
    assert!(
        (mid - left - (right - mid)).abs() <= 1,
        "{left} {mid} {right}"
    );
    seen.dedup();
    assert!(seen.len() >= 5, "the cells are not told apart: {seen:?}");
}

#[test]
fn plot_redraws_a_run_and_refuses_a_directory_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    sweep::run(
        common::spec(ONE_AXIS),
        "one",
        &run,
        &quiet(),
        &Default::default(),
    )
    .unwrap();
    let o = common::bin().arg("plot").arg(&run).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(run.join("figures/outcomes.png").is_file());

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = common::bin().arg("plot").arg(&empty).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert!(
        stderr.contains("is not a stepsweep run directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        !empty.join("figures").exists(),
        "figures written for a bad run"
    );
}
