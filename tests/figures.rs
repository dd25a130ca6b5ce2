//! Figures: every file is written with the expected pixel size, the heatmap
//! puts the right colour in a known cell, and `stepsweep plot` redraws a run.

mod common;

use std::path::Path;

use stepsweep::output::figures::{self, data::CellRow, heatmap, Figure, RunData};
use stepsweep::runner::{self, RunOptions};
use stepsweep::sweep::Sweep;

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
        watch: None,
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
    runner::run(
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
    runner::run(
        common::spec(BASIN),
        "basin",
        &two,
        &quiet(),
        &Default::default(),
    )
    .unwrap();
    let written = figures::plot_dir(&two).unwrap();
    let figs = two.join(figures::FOLDER);
    for stem in ["outcomes", "metric_bound", "heatmap", "speed", "basin"] {
        check_figure(&figs, stem, (960, 600));
    }
    // No bifurcation diagram for a two-axis sweep; no temp file left behind.
    assert_eq!(written.len(), 10, "{written:?}");
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
        trace: None,
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
    runner::run(
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

/// Runs `cmd` to its end, failing the test if it is still running after
/// `limit` (a hang must fail the test, not stall CI): the child is killed.
fn finish_within(
    mut cmd: std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on threads, so a chatty child never blocks on a full pipe.
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipes.0.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipes.1.read_to_end(&mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} still ran after {limit:?}, and was killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Step sizes no axis arithmetic expects (beyond f32, near f64's ends) and
/// a single cell: the run finishes, with its figures.
#[test]
fn extreme_step_sizes_and_a_single_cell_finish_with_figures() {
    let dir = tempfile::tempdir().unwrap();
    for (i, steps) in [
        "1e30",
        "1e308",
        "1e-300",
        "0.1",
        "1e-300,1e308",
        "0.1,0.1000000000001",
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("run{i}"));
        let mut cmd = common::bin();
        cmd.args(["run", "poly", "--steps", steps, "--trajectories", "10"])
            .args(["--max-iters", "100", "--backend", "cpu", "-q", "--out"])
            .arg(&out);
        let o = finish_within(cmd, DEADLINE);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "--steps {steps}: {stderr}");
        for stem in ["outcomes", "metric_bound", "bifurcation"] {
            assert!(
                out.join("figures").join(format!("{stem}.png")).is_file(),
                "--steps {steps}: no {stem}.png; {stderr}"
            );
        }
    }
}

/// The numbers written as text in an SVG (the tick labels among them).
fn numbers_in_svg(svg: &str) -> Vec<String> {
    svg.split('>')
        .filter_map(|piece| piece.split('<').next())
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.parse::<f64>().is_ok())
        .map(String::from)
        .collect()
}

/// Step sizes 10⁻¹³ apart: the table prints each with the digits that tell
/// it apart, and the figure's ticks do too (four decimals made them all
/// read 0.1000).
#[test]
fn step_sizes_that_differ_late_are_labelled_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("close");
    let stdout = common::run_ok(
        &[
            "run",
            "poly",
            "--steps",
            "0.1,0.1000000000001",
            "--trajectories",
            "10",
        ],
        &out,
    );
    let labels: Vec<&str> = stdout
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        labels.contains(&"0.1") && labels.contains(&"0.1000000000001"),
        "{stdout}"
    );
    let svg = std::fs::read_to_string(out.join("figures/outcomes.svg")).unwrap();
    // The x ticks between the two (the y axis has a tick at 0.1 too): four
    // decimals would print every one as 0.1, and none would be found.
    let ticks: Vec<String> = numbers_in_svg(&svg)
        .into_iter()
        .filter(|t| t.starts_with("0.1") && t.len() > 3)
        .collect();
    assert!(ticks.len() >= 2, "{ticks:?}");
    let mut distinct = ticks.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ticks.len(), "ticks repeat: {ticks:?}");
}

mod random_runs {
    use super::*;
    use proptest::prelude::*;

    /// A value a cell's metric or bound may hold, the degenerate ones
    /// weighted up: none, zero, subnormal, huge, negative, ordinary.
    fn real() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(0.0)),
            Just(Some(5e-324)),
            Just(Some(1e308)),
            Just(Some(-1.0)),
            (1e-300f64..1e300).prop_map(Some),
            (0.0f64..10.0).prop_map(Some),
        ]
    }

    /// Step sizes: one, a constant run, a log range over f64's span, or
    /// values a few ulps apart.
    fn steps() -> impl Strategy<Value = String> {
        prop_oneof![
            (1e-300f64..1e308).prop_map(|v| format!("values = [{v:e}]")),
            (1e-300f64..1e300, 2usize..40)
                .prop_map(|(v, n)| format!("logspace = [{v:e}, {:e}, {n}]", v * 1e8)),
            (1e-3f64..1.0).prop_map(|v| format!(
                "values = [{v:e}, {:e}, {:e}]",
                f64::from_bits(v.to_bits() + 1),
                f64::from_bits(v.to_bits() + 2)
            )),
            (2usize..3000).prop_map(|n| format!("linspace = [0.01, 0.6, {n}]")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever a run's cells hold, `stepsweep plot` finishes within the
        /// deadline, drawing what can be drawn.
        #[test]
        fn figures_of_any_cells_finish(
            steps in steps(),
            axis in prop::option::of(1usize..100),
            metrics in prop::collection::vec((real(), real(), 0u64..5, 0u64..4), 1..64),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let spec = dir.path().join("spec.toml");
            let axis_text = axis.map_or(String::new(), |n| {
                format!("[axis]\nparam = \"init.x0\"\nlinspace = [-1.0, 4.0, {n}]\n")
            });
            std::fs::write(
                &spec,
                format!(
                    "trajectories = 1\nmax_iters = 20\nseed = 1\n[model]\nkind = \"poly\"\n\
                     [init]\nkind = \"point\"\nx0 = 0.5\n[steps]\n{steps}\n{axis_text}"
                ),
            )
            .unwrap();
            let out = dir.path().join("run");
            let mut cmd = common::bin();
            cmd.arg("run").arg(&spec).args(["--backend", "cpu", "-q", "--out"]).arg(&out);
            let o = finish_within(cmd, DEADLINE);
            let stderr = String::from_utf8_lossy(&o.stderr).to_string();
            // A spec the tool refuses is refused in one sentence (status 2);
            // anything it accepts it must finish and draw.
            if o.status.code() == Some(2) {
                prop_assert_eq!(stderr.trim().lines().count(), 1, "{}", stderr);
                return Ok(());
            }
            prop_assert!(o.status.success(), "{}", stderr);

            // Rewrite every cell with counts and metrics a run can produce.
            let path = out.join("summary.json");
            let mut summary: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            for (i, cell) in summary["cells"].as_array_mut().unwrap().iter_mut().enumerate() {
                let (metric, bound, converged, other) = metrics[i % metrics.len()];
                let other = other.min(converged);
                let diverged = (i as u64) % 3;
                cell["trajectories"] = (converged + diverged).into();
                cell["converged"] = converged.into();
                cell["diverged"] = diverged.into();
                cell["oscillating"] = 0.into();
                cell["undecided"] = 0.into();
                cell["converged_other"] = other.into();
                cell["converged_min_0"] = (converged - other).into();
                cell["converged_min_1"] = 0.into();
                cell["metric_max"] = metric.into();
                cell["bound"] = bound.unwrap_or(0.0).into();
            }
            std::fs::write(&path, summary.to_string()).unwrap();
            let mut cmd = common::bin();
            cmd.arg("plot").arg(&out);
            let o = finish_within(cmd, DEADLINE);
            let stderr = String::from_utf8_lossy(&o.stderr).to_string();
            prop_assert!(o.status.success(), "{}", stderr);
            // Whatever could not be drawn is said in one line each.
            for line in stderr.lines() {
                prop_assert!(line.starts_with("stepsweep: figure "), "{}", stderr);
            }
        }
    }
}
