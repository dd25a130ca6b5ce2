//! `stepsweep boundary`: adaptive refinement against the dense grid of the
//! same lattice, bisection against the theory's critical step sizes, a
//! killed run's resume, a zoom's frames, and bad input refused in one
//! sentence. (The box-counting estimator's own tests, on sets of known
//! dimension, are in `boundary::dimension`.)

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use stepsweep::boundary::critical::{bisect, Crossing};
use stepsweep::boundary::{
    agreement, dense, refine, Criterion, Evaluator, Fate, Plane, Refined, Sink, Verdict,
};
use stepsweep::spec::{BackendChoice, Spec};

fn preset(name: &str, backend: BackendChoice) -> Spec {
    let mut spec = Spec::from_toml(stepsweep::presets::find(name).unwrap(), name).unwrap();
    spec.backend = backend;
    spec
}

/// Adaptive refinement and the dense grid of one plane.
fn both(spec: &Spec, coarse: u64, depth: u32) -> (Refined, Refined, u64, u64) {
    let plane = Plane::new(spec, coarse, depth).unwrap();
    let mut sink = Sink::discard();
    let mut eval = Evaluator::new(spec, plane.layer, None).unwrap();
    let adaptive = refine(&plane, &mut eval, 1, Default::default(), &mut sink).unwrap();
    let adaptive_runs = eval.trajectories;
    let full = dense(&plane, &mut eval, 1, &mut sink).unwrap();
    (
        adaptive,
        full,
        adaptive_runs,
        eval.trajectories - adaptive_runs,
    )
}

/// On the default polynomial's δ × x₀ plane and on the scalar network's
/// δ × λ plane, refinement finds the dense grid's boundary boxes (every box
/// it reports is one of them, and it misses at most 1% on the basin map,
/// none on the smooth curve) with fewer trajectories; and each point's
/// verdict is the dense grid's, since both draw the same starts.
#[test]
fn refinement_finds_the_dense_grids_boundary_boxes() {
    for (name, least_recall) in [("poly-basin", 0.99), ("scalar-deep-boundary", 1.0)] {
        let spec = preset(name, BackendChoice::Cpu);
        let (adaptive, full, adaptive_runs, dense_runs) = both(&spec, 8, 4);
        let a = agreement(&adaptive.finest, &full.finest);
        assert!(a.dense_boxes > 100, "{name}: {a:?}");
        assert_eq!(
            a.farthest, 0,
            "{name}: a box beyond the dense boundary: {a:?}"
        );
        assert!(a.recall >= least_recall, "{name}: {a:?}");
        assert!(
            adaptive_runs * 3 < dense_runs,
            "{name}: {adaptive_runs} adaptive trajectories against {dense_runs} dense"
        );
        let key = |v: &Verdict| (v.class, v.fate, v.converged, v.speed.to_bits());
        for (k, v) in &adaptive.verdicts {
            assert_eq!(key(&full.verdicts[k]), key(v), "{name}: point {k}");
        }
    }
}

/// `--outcome bounded` judges a point by whether it diverges, as the
/// fractal-boundary study does: class 0 exactly where the trajectory
/// diverged, and both classes on the basin map.
#[test]
fn the_bounded_outcome_separates_divergence_from_the_rest() {
    let spec = preset("poly-basin", BackendChoice::Cpu);
    let plane = Plane::new(&spec, 8, 2).unwrap();
    let mut sink = Sink::discard();
    let mut eval = Evaluator::with_criterion(&spec, None, None, Criterion::Bounded).unwrap();
    let full = dense(&plane, &mut eval, 1, &mut sink).unwrap();
    let mut seen = [0; 2];
    for v in full.verdicts.values() {
        assert_eq!(v.class == 0, v.fate == Fate::Diverged, "{v:?}");
        seen[v.class as usize] += 1;
    }
    assert!(seen[0] > 10 && seen[1] > 10, "{seen:?}");
    assert!(!full.finest.is_empty());
}

/// The smooth boundary of the scalar network is the curve δ_max(λ) =
/// 2/(L λ^(2−2/L)): every boundary box lies within one lattice cell of it.
#[test]
fn the_scalar_networks_boundary_is_the_theorys_curve() {
    let spec = preset("scalar-deep-boundary", BackendChoice::Cpu);
    let plane = Plane::new(&spec, 16, 4).unwrap();
    let (adaptive, _, _, _) = both(&spec, 16, 4);
    let at = |log_d: f64| {
        let (lo, hi) = (plane.steps.lo.log10(), plane.steps.hi.log10());
        (log_d - lo) / (hi - lo) * plane.size() as f64
    };
    for b in &adaptive.finest {
        let lam = [plane.axis.value(b.j), plane.axis.value(b.j + 1)];
        let cells: Vec<f64> = lam
            .iter()
            .map(|l| at((2.0 / (5.0 * l.powf(2.0 - 2.0 / 5.0))).log10()))
            .collect();
        let (lo, hi) = (cells[0].min(cells[1]), cells[0].max(cells[1]));
        let i = b.i as f64;
        assert!(
            hi >= i - 1.0 && lo <= i + 2.0,
            "box {b:?} lies beyond one cell of δ_max (cells {lo}..{hi})"
        );
    }
    assert!(adaptive.finest.len() as u64 >= plane.size() / 2);
}

/// Starts in x = 2's basin of the default polynomial lose x = 2 at its
/// stability edge 2/f''(2) = 0.2: bisection finds δ* within 1e-6 of it.
#[test]
fn bisection_finds_the_stability_edge_of_x_2() {
    let spec = common::spec(
        "trajectories = 1\nmax_iters = 10000000\nseed = 3\nbackend = \"cpu\"\n\
         [model]\nkind = \"poly\"\n[init]\nkind = \"point\"\nx0 = 2.0\n\
         [steps]\nlinspace = [0.05, 0.3, 11]\n[axis]\nparam = \"init.x0\"\nvalues = [1.8, 1.95, 2.05, 2.15]\n",
    );
    let (rows, _) = bisect(&spec, None, 1e-9, Criterion::Minimum).unwrap();
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(r.crossing, Crossing::Found, "{r:?}");
        // Class 2 (the second minimizer, x = 2) is lost to no minimum
        // (an orbit about x = 2): the crossing is x = 2's stability edge.
        assert_eq!((r.class_below, r.class_above), (2, 0), "{r:?}");
        let d = r.step_size().unwrap();
        assert!((d - 0.2).abs() <= 1e-6, "δ* = {d} for {r:?}");
    }
}

/// Balanced starts of the scalar network (every layer at w = 1) lose the
/// balanced minimum at δ_max(λ) = 2/(L λ^(2−2/L)).
#[test]
fn bisection_gives_the_scalar_networks_delta_max() {
    let spec = common::spec(
        "trajectories = 1\nmax_iters = 2000000\nseed = 3\nbackend = \"cpu\"\n\
         [model]\nkind = \"scalar-deep\"\nlayers = 5\nlambda = 2.0\n[init]\nkind = \"point\"\nx0 = 1.0\n\
         [steps]\nlogspace = [0.02, 0.4, 12]\n[axis]\nparam = \"model.lambda\"\nvalues = [1.5, 2.0, 3.0, 4.0]\n",
    );
    let (rows, _) = bisect(&spec, None, 1e-8, Criterion::Minimum).unwrap();
    for r in &rows {
        let lambda = r.axis_value.unwrap();
        let delta_max = 2.0 / (5.0 * lambda.powf(2.0 - 2.0 / 5.0));
        let d = r.step_size().unwrap_or(f64::NAN);
        assert!(
            ((d - delta_max) / delta_max).abs() <= 1e-4,
            "λ = {lambda}: δ* = {d}, δ_max = {delta_max}"
        );
    }
}

fn boundary_args(out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = common::bin();
    c.args(["boundary", "poly-basin", "--backend", "cpu", "-q", "--out"])
        .arg(out)
        .args(extra);
    c
}

/// A run killed (SIGKILL) in the middle, then resumed, writes the
/// boundary.csv an uninterrupted run writes, byte for byte.
#[test]
fn a_killed_boundary_run_resumes_to_the_same_boundary_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let args = ["--depth", "4", "--chunk-size", "16"];
    let o = boundary_args(&whole, &args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let killed = tmp.path().join("killed");
    let journal = killed.join("boundary-journal.json");
    for round in 0..2 {
        let mut child = boundary_args(&killed, &args)
            .args(if round > 0 {
                &["--resume"][..]
            } else {
                &[][..]
            })
            .spawn()
            .unwrap();
        // Wait for the journal to hold some points (a fresh one, after a resume).
        let start = Instant::now();
        let before = std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0);
        while std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) <= before + 2000
            && start.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            journal.is_file(),
            "round {round}: the run ended before it was killed; give it more work"
        );
        assert!(!killed.join("boundary.csv").exists());
    }
    let o = boundary_args(&killed, &args)
        .arg("--resume")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!journal.exists(), "a finished run removes its journal");
    let a = std::fs::read(whole.join("boundary.csv")).unwrap();
    let b = std::fs::read(killed.join("boundary.csv")).unwrap();
    assert!(a.len() > 1000);
    assert!(
        a == b,
        "the resumed boundary.csv differs from the uninterrupted one"
    );
    // Without --resume the unfinished run is refused rather than overwritten.
    let again = tmp.path().join("again");
    let mut child = boundary_args(&again, &args).spawn().unwrap();
    let j = again.join("boundary-journal.json");
    let start = Instant::now();
    while !j.is_file() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    if j.is_file() {
        let o = boundary_args(&again, &args).output().unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("add --resume"), "{err}");
    }
}

/// A zoom writes one image per frame, each frame's boundary, and the
/// frames as an animated GIF that the report shows.
#[test]
fn a_zoom_writes_its_frames_and_the_gif() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("zoom");
    let o = boundary_args(
        &out,
        &[
            "--depth", "2", "--zoom", "0.45,0.6", "--factor", "2", "--frames", "3",
        ],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for k in 0..3 {
        assert!(out.join(format!("zoom/frame-{k:03}.png")).is_file());
        assert!(out.join(format!("zoom/boundary-{k:03}.csv")).is_file());
    }
    let gif = std::fs::File::open(out.join("figures/zoom.gif")).unwrap();
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(gif))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 3);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("figures/zoom.gif"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("boundary.json")).unwrap()).unwrap();
    let frames = summary["zoom"]["frames"].as_array().unwrap();
    let width = |k: usize| {
        let r = &frames[k]["step_size"];
        r[1].as_f64().unwrap() - r[0].as_f64().unwrap()
    };
    assert!((width(1) / width(2) - 2.0).abs() < 1e-9);
}

/// The same boundary on a GPU adapter (lavapipe in CI) as on the CPU, in f64.
#[test]
fn the_gpu_finds_the_cpus_boundary() {
    let Some(_) = common::gpu_or_skip("the_gpu_finds_the_cpus_boundary") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut csv = Vec::new();
    for backend in ["cpu", "gpu"] {
        let out = tmp.path().join(backend);
        let o = common::bin()
            .args([
                "boundary",
                "poly-basin",
                "--depth",
                "2",
                "--precision",
                "f64",
                "-q",
            ])
            .args(["--backend", backend, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        csv.push(std::fs::read(out.join("boundary.csv")).unwrap());
    }
    assert!(
        csv[0] == csv[1],
        "the GPU's boundary.csv differs from the CPU's"
    );
}

/// Bad input gets one sentence, exit status 2, and no output directory.
#[test]
fn bad_input_is_refused_in_one_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["boundary", "poly"], "has no second axis"),
        (
            &[
                "boundary",
                "poly-basin",
                "--zoom",
                "0.3,1.5",
                "--factor",
                "1e6",
                "--frames",
                "4",
            ],
            "tells apart",
        ),
        (
            &["boundary", "poly-basin", "--depth", "17"],
            "give a smaller depth",
        ),
        (
            &["boundary", "poly-basin", "--depth", "15"],
            "give a depth of at most",
        ),
        (
            &["boundary", "poly-basin", "--resolution", "1000"],
            "not --coarse 16 times a power of two",
        ),
        (
            &["boundary", "poly-basin", "--zoom", "9,1.5"],
            "outside the plane",
        ),
    ];
    for (k, (args, expected)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("case{k}"));
        let o = common::bin()
            .args(*args)
            .args(["--backend", "cpu", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} left {}", out.display());
    }
}
