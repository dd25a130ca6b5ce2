//! The binary as a user types it: outputs, determinism, and bad input.

mod common;

use std::path::Path;

const SMALL: &str = r#"
trajectories = 400
max_iters = 5000
seed = 99
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
values = [0.05, 0.15, 0.21, 0.3, 0.45, 0.55]
"#;

fn write_spec(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_run_writes_every_output_with_the_named_columns() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let out = dir.path().join("out");
    let stdout = common::run_ok(
        &[
            "run",
            spec.to_str().unwrap(),
            "--backend",
            "cpu",
            "--write-trajectories",
        ],
        &out,
    );
    assert!(stdout.contains("p_converged"), "{stdout}");
    let cells = std::fs::read_to_string(out.join("cells.csv")).unwrap();
    let header: Vec<&str> = cells.lines().next().unwrap().split(',').collect();
    for col in [
        "step_size",
        "trajectories",
        "converged",
        "diverged",
        "oscillating",
        "undecided",
        "p_converged",
        "p_converged_lo",
        "p_converged_hi",
        "metric_max",
        "bound",
        "violations",
        "sharpness_max",
        "converged_min_0",
        "converged_min_1",
    ] {
        assert!(header.contains(&col), "cells.csv lacks {col}: {header:?}");
    }
    assert_eq!(cells.lines().count(), 7);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let minimizers = summary["minimizers"].as_array().unwrap();
    assert!((minimizers[0]["x"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!((minimizers[1]["threshold"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    let trajectories = std::fs::read_to_string(out.join("trajectories.csv")).unwrap();
    assert_eq!(trajectories.lines().count(), 1 + 6 * 400);
    // spec.toml reruns the same sweep.
    let again = dir.path().join("again");
    common::run_ok(&["run", out.join("spec.toml").to_str().unwrap()], &again);
    assert_eq!(
        cells,
        std::fs::read_to_string(again.join("cells.csv")).unwrap()
    );
    // No temp files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn same_seed_same_cells_whatever_the_chunk_size_and_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "small.toml", SMALL);
    let s = spec.to_str().unwrap();
    let mut results = Vec::new();
    for (i, extra) in [
        vec!["--chunk-size", "1000000", "--threads", "2"],
        vec!["--chunk-size", "37", "--threads", "1"],
        vec!["--chunk-size", "1024", "--threads", "3"],
        // With rows, every trajectory's end is kept and tallied after its
        // chunk; without, the CPU tallies each as it ends.
        vec![
            "--chunk-size",
            "1000",
            "--threads",
            "2",
            "--write-trajectories",
        ],
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("o{i}"));
        let mut args = vec!["run", s, "--backend", "cpu"];
        args.extend(extra);
        common::run_ok(&args, &out);
        results.push(std::fs::read_to_string(out.join("cells.csv")).unwrap());
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0], results[2]);
    assert_eq!(results[0], results[3]);
    // A different seed gives a different sweep.
    let out = dir.path().join("other-seed");
    common::run_ok(&["run", s, "--backend", "cpu", "--seed", "100"], &out);
    assert_ne!(
        results[0],
        std::fs::read_to_string(out.join("cells.csv")).unwrap()
    );
}

#[test]
fn f64_and_f32_agree_on_outcome_classes_away_from_the_thresholds() {
    use stepsweep::backend::Backend;
    use stepsweep::spec::Precision;
    use stepsweep::sweep::Sweep;
    let sweep = Sweep::new(common::spec(
        &SMALL.replace("trajectories = 400", "trajectories = 2000"),
    ))
    .unwrap();
    let ids = 0..sweep.total();
    let run = |p| {
        let rule = sweep.rule(p);
        Backend::new(&sweep, None, p, &rule)
            .unwrap()
            .run(&sweep, &rule, ids.clone(), |_| {})
            .unwrap()
    };
    let (a, b) = (run(Precision::F64), run(Precision::F32));
    let same = a
        .ends
        .iter()
        .zip(&b.ends)
        .filter(|(x, y)| x.outcome == y.outcome)
        .count();
    // Only starts on a basin boundary may differ.
    assert!(
        same as f64 >= 0.998 * a.ends.len() as f64,
        "{same} of {}",
        a.ends.len()
    );
}

fn run_err(args: &[&str]) -> (String, bool) {
    let o = common::bin().args(args).output().unwrap();
    assert!(!o.status.success(), "{args:?} succeeded");
    assert!(
        o.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let stderr = String::from_utf8(o.stderr).unwrap();
    (stderr, o.status.code() != Some(0))
}

#[test]
fn bad_input_gets_one_sentence_a_failing_status_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_spec(dir.path(), "good.toml", SMALL);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--steps".into(), "0.1,-0.2".into()],
            "step size -0.2 is not positive",
        ),
        (
            vec!["--steps".into(), "0,0.1".into()],
            "step size 0 is not positive",
        ),
        (vec!["--steps".into(), "NaN".into()], "finite"),
        (vec!["--steps".into(), ",".into()], "steps is empty"),
        (vec!["--steps".into(), "0.1:0.2:0".into()], "count is 0"),
        (
            vec!["--trajectories".into(), "0".into()],
            "trajectories is 0",
        ),
        (
            vec!["--backend".into(), "tpu".into()],
            "invalid value 'tpu'",
        ),
    ];
    for (i, (extra, expect)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("bad{i}"));
        let mut args = vec![
            "run".to_string(),
            good.to_str().unwrap().to_string(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ];
        args.extend(extra.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (stderr, failed) = run_err(&args);
        assert!(failed);
        assert!(stderr.contains(expect), "{extra:?}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{extra:?}: more than one line: {stderr}"
        );
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }

    let spec_cases = [
        (
            "unknown.toml",
            SMALL.replace("\"poly\"", "\"quartic\""),
            "unknown variant `quartic`",
        ),
        (
            "malformed.toml",
            SMALL.replace("seed = 99", "seed = = 99"),
            "line 4",
        ),
        (
            "empty-axis.toml",
            SMALL.replace(
                "values = [0.05, 0.15, 0.21, 0.3, 0.45, 0.55]",
                "values = []",
            ),
            "steps is empty",
        ),
    ];
    for (name, text, expect) in spec_cases {
        let spec = write_spec(dir.path(), name, &text);
        let out = dir.path().join(format!("out-{name}"));
        let (stderr, _) = run_err(&[
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(!out.exists());
    }

    // An --out that cannot be created: a path below a regular file.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("out");
    let (stderr, _) = run_err(&[
        "run",
        good.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--backend",
        "cpu",
    ]);
    assert!(
        stderr.contains("cannot create the output directory"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let (stderr, _) = run_err(&["run", "no-such-spec"]);
    assert!(
        stderr.contains("neither a spec file nor a preset"),
        "{stderr}"
    );

    for (args, expect) in [
        (
            &["bench", "--workload", "W9"][..],
            "--workload W9 is not a workload; give one of W1, W2, W3, W4, W5",
        ),
        (&["bench", "--runs", "0"][..], "--runs is 0"),
    ] {
        let (stderr, _) = run_err(args);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
}

/// `bench --workload` runs only the workloads named, in f32 and in f64, and
/// `--json` gives each row's time, throughput and processor time.
#[test]
fn bench_runs_the_workloads_asked_for() {
    let o = common::bin()
        .args(["bench", "--quick", "--json", "--workload", "W2"])
        .env("WGPU_BACKEND", "noop")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, precision) in rows.iter().zip(["f32", "f64"]) {
        assert_eq!(row["workload"], "W2");
        assert_eq!(row["backend"], "cpu");
        assert_eq!(row["precision"], precision);
        // 2^14 trajectories × 1000 steps.
        assert_eq!(row["trajectory_steps"], 16_384_000u64);
        let seconds = row["seconds"].as_f64().unwrap();
        let rate = row["traj_steps_per_s"].as_f64().unwrap();
        assert!((rate * seconds / 16_384_000.0 - 1.0).abs() < 1e-9, "{row}");
        assert!(row["process_cpu_seconds"].as_f64().unwrap() > 0.0, "{row}");
    }
}

/// On a GPU, a bench row also gives the descent kernels' device time, from
/// timestamp queries where the adapter has them, which is part of the row's
/// wall time; without them it says none was measured.
#[test]
fn bench_gives_the_kernel_time_of_gpu_rows() {
    let Some(ctx) = common::gpu_or_skip("bench_gives_the_kernel_time_of_gpu_rows") else {
        return;
    };
    let o = common::bin()
        .args(["bench", "--quick", "--json", "--workload", "W1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let cpu = rows.iter().find(|r| r["backend"] == "cpu").unwrap();
    assert!(cpu["kernel_seconds"].is_null(), "{cpu}");
    // A row in f64 where the adapter has it.
    let precisions: Vec<&str> = rows
        .iter()
        .filter(|r| r["backend"] == "gpu")
        .map(|r| r["precision"].as_str().unwrap())
        .collect();
    let expected: &[&str] = if ctx.f64 { &["f32", "f64"] } else { &["f32"] };
    assert_eq!(precisions, expected, "{rows:?}");
    for gpu in rows.iter().filter(|r| r["backend"] == "gpu") {
        if ctx.has_timestamps() {
            let kernel = gpu["kernel_seconds"].as_f64().unwrap();
            let seconds = gpu["seconds"].as_f64().unwrap();
            assert!(kernel > 0.0 && kernel <= seconds, "{gpu}");
            let rate = gpu["kernel_traj_steps_per_s"].as_f64().unwrap();
            assert!((rate * kernel / 65_536_000.0 - 1.0).abs() < 1e-9, "{gpu}");
        } else {
            assert!(gpu["kernel_seconds"].is_null(), "{gpu}");
        }
    }
}

/// W7's MLP plane, which a CPU adapter would take about an hour over even
/// at `--quick`'s size, is skipped there with a line saying to use the CPU
/// backend; a hardware GPU runs it.
#[test]
fn bench_skips_the_mlp_plane_on_a_cpu_adapter() {
    let Some(ctx) = common::gpu_or_skip("bench_skips_the_mlp_plane_on_a_cpu_adapter") else {
        return;
    };
    let o = common::bin()
        .args([
            "bench",
            "--quick",
            "--json",
            "--workload",
            "W7",
            "--backend",
            "gpu",
        ])
        .env("W7_ONLY", "mlp-lr-plane")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    if stepsweep::backend::gpu::is_hardware(&ctx.info) {
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["workload"], "W7");
    } else {
        assert!(rows.is_empty(), "{rows:?}");
        let line = stderr
            .lines()
            .find(|l| l.contains("W7 mlp-lr-plane is not run on gpu"))
            .unwrap_or_else(|| panic!("no line says the plane was skipped: {stderr}"));
        assert!(line.contains("--backend cpu"), "{line}");
    }
}

#[test]
fn a_second_axis_over_the_starting_point_draws_a_basin_map() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
trajectories = 1
max_iters = 20000
seed = 1
[model]
kind = "poly"
[init]
kind = "point"
x0 = 0.0
[steps]
values = [0.1, 0.3]
[axis]
param = "init.x0"
linspace = [1.7, 2.1, 5]
"#;
    let spec = write_spec(dir.path(), "basin.toml", text);
    let out = dir.path().join("basin");
    common::run_ok(&["run", spec.to_str().unwrap(), "--backend", "cpu"], &out);
    let cells = std::fs::read_to_string(out.join("cells.csv")).unwrap();
    let mut rows = cells.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    assert_eq!(&header[..2], &["step_size", "x0"]);
    let min1 = header.iter().position(|h| *h == "converged_min_1").unwrap();
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    assert_eq!(rows.len(), 10);
    // From x0 = 2.1, δ = 0.1 reaches x = 2 and δ = 0.3 cannot.
    let at = |d: f64, x: f64| {
        let row = rows
            .iter()
            .find(|r| r[0].parse::<f64>() == Ok(d) && r[1].parse::<f64>() == Ok(x));
        row.unwrap()[min1]
    };
    assert_eq!(at(0.1, 2.1), "1");
    assert_eq!(at(0.3, 2.1), "0");
}

#[test]
fn bad_network_sizes_get_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let deep = |model: &str| {
        format!(
            "trajectories = 1\nmax_iters = 10\nseed = 1\n[model]\n{model}\n[init]\nkind = \"gaussian\"\nmean = 0.0\nstd = 1.0\n[steps]\nvalues = [0.1]\n"
        )
    };
    let cases = [
        ("l0", deep("kind = \"scalar-deep\"\nlayers = 0\nlambda = 1.0"), "model.layers is 0"),
        ("lambda0", deep("kind = \"scalar-deep\"\nlayers = 3\nlambda = 0.0"), "model.lambda is 0"),
        (
            "n0",
            deep("kind = \"deep-linear\"\nlayers = 2\nsize = 0\ntarget = { kind = \"gaussian\" }"),
            "model.size is 0",
        ),
        (
            "n33",
            deep("kind = \"deep-linear\"\nlayers = 2\nsize = 33\ntarget = { kind = \"gaussian\" }"),
            "give n from 1 to 32",
        ),
        (
            "dl0",
            deep("kind = \"deep-linear\"\nlayers = 0\nsize = 2\ntarget = { kind = \"gaussian\" }"),
            "model.layers is 0",
        ),
        (
            "shape",
            deep("kind = \"deep-linear\"\nlayers = 2\nsize = 2\ntarget = { kind = \"given\", matrix = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] }"),
            "must be 2 × 2",
        ),
    ];
    for (name, text, expect) in cases {
        let spec = write_spec(dir.path(), &format!("{name}.toml"), &text);
        let out = dir.path().join(name);
        let (stderr, _) = run_err(&[
            "run",
            spec.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(stderr.contains(expect), "{name}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(!out.exists());
    }
}

#[test]
fn a_second_axis_over_the_depth_runs_models_of_different_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
trajectories = 50
max_iters = 5000
seed = 2
[model]
kind = "scalar-deep"
layers = 2
lambda = 2.0
[init]
kind = "balanced"
noise = 0.1
[steps]
values = [0.05, 0.3]
[axis]
param = "model.layers"
values = [1, 2, 4, 8]
"#;
    let spec = write_spec(dir.path(), "depth.toml", text);
    let out = dir.path().join("depth");
    common::run_ok(
        &[
            "run",
            spec.to_str().unwrap(),
            "--backend",
            "cpu",
            "--write-trajectories",
        ],
        &out,
    );
    let cells = std::fs::read_to_string(out.join("cells.csv")).unwrap();
    let rows: Vec<Vec<&str>> = cells
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 8);
    // δ_max = 2/(L·2^(2−2/L)): 0.5, 0.5, 0.177, 0.0630 for L = 1, 2, 4, 8, so δ = 0.3
    // converges for L ≤ 2 only, and δ = 0.05 everywhere.
    let converged = |layers: f64, step: f64| {
        let num = |s: &str| s.parse::<f64>().unwrap();
        let r = rows
            .iter()
            .find(|r| num(r[1]) == layers && num(r[0]) == step)
            .unwrap();
        r[3].parse::<u64>().unwrap()
    };
    assert_eq!(converged(1.0, 0.3), 50);
    assert_eq!(converged(2.0, 0.3), 50);
    assert_eq!(converged(4.0, 0.3), 0);
    assert_eq!(converged(8.0, 0.05), 50);
    // trajectories.csv has a column per parameter of the deepest model.
    let header = std::fs::read_to_string(out.join("trajectories.csv")).unwrap();
    assert!(header.lines().next().unwrap().ends_with("theta_7"));
}

/// `--backend gpu` takes relu like any other model (where an adapter exists).
#[test]
fn relu_runs_on_the_gpu() {
    if common::gpu_or_skip("relu_runs_on_the_gpu").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("relu-gpu");
    common::run_ok(
        &[
            "run",
            "relu-single",
            "--backend",
            "gpu",
            "--trajectories",
            "2",
        ],
        &out,
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["backend"]["kind"], "gpu", "{}", summary["backend"]);
}

/// Mesa's drivers complain on stderr when XDG_RUNTIME_DIR names no
/// directory; a run that probes for a GPU gives them a private one, and a
/// CPU run never loads them. `devices` says what it probed.
#[test]
fn gpu_probing_leaves_stderr_quiet_without_a_runtime_directory() {
    let dir = tempfile::tempdir().unwrap();
    for backend in ["cpu", "auto"] {
        let o = common::bin()
            .args(["run", "poly", "--steps", "0.1", "--trajectories", "10"])
            .args(["--max-iters", "100", "--backend", backend, "--out"])
            .arg(dir.path().join(backend))
            .env_remove("XDG_RUNTIME_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{backend}: {stderr}");
        assert!(!stderr.contains("XDG_RUNTIME_DIR"), "{backend}: {stderr}");
    }
    let o = common::bin()
        .arg("devices")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stderr.contains("XDG_RUNTIME_DIR is invalid"), "{stderr}");
    assert!(stdout.starts_with("probed: "), "{stdout}");
}

/// `--trace K` writes trace.csv: for the first K replicates of every cell,
/// the iterate's sharpness at the start and at every check, with the bound
/// of the optimizer in use (2/δ, or 2(1+β)/δ with momentum), and draws it.
/// For the polynomial the sharpness is f''(x), so a trajectory that
/// converges ends its trace at f'' of the minimizer it reached, within the
/// bound; and a run of one mlp trajectory at δ = 0.3 shows the edge of
/// stability: its sharpness rises past 2/δ and comes back to it.
#[test]
fn trace_writes_the_sharpness_of_the_first_k_replicates() {
    let dir = tempfile::tempdir().unwrap();
    let read = |out: &Path| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(out.join("trace.csv")).unwrap();
        text.lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect()
    };
    for (optimizer, factor) in [("", 1.0), ("--momentum", 1.5)] {
        let out = dir.path().join(format!("poly{optimizer}"));
        let spec = if optimizer.is_empty() {
            "poly".to_string()
        } else {
            let text = format!(
                "{}\n[optimizer]\nkind = \"momentum\"\nbeta = 0.5\n",
                include_str!("../presets/poly.toml")
            );
            write_spec(dir.path(), "poly-momentum.toml", &text)
                .to_string_lossy()
                .into_owned()
        };
        common::run_ok(
            &[
                "run",
                &spec,
                "--backend",
                "cpu",
                "--trajectories",
                "20",
                "--steps",
                "0.1,0.15",
                "--trace",
                "3",
            ],
            &out,
        );
        let rows = read(&out);
        assert_eq!(
            rows[0],
            [
                "trajectory",
                "cell",
                "replicate",
                "step_size",
                "iteration",
                "sharpness",
                "bound",
                "loss"
            ]
        );
        let mut traced = std::collections::BTreeSet::new();
        let mut last: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
        for r in &rows[1..] {
            traced.insert((r[1].clone(), r[2].clone()));
            let (step, k): (f64, u64) = (r[3].parse().unwrap(), r[4].parse().unwrap());
            assert_eq!(k % 64, 0, "checks come every 64 iterations: {r:?}");
            let bound: f64 = r[6].parse().unwrap();
            assert!((bound - factor * 2.0 / step).abs() < 1e-9 * bound, "{r:?}");
            last.insert(r[0].clone(), (r[5].parse().unwrap(), bound));
        }
        // Replicates 0, 1 and 2 of both cells, no others.
        assert_eq!(traced.len(), 6, "{traced:?}");
        assert!(traced
            .iter()
            .all(|(_, rep)| ["0", "1", "2"].contains(&rep.as_str())));
        for (id, (sharpness, bound)) in &last {
            if sharpness.is_finite() {
                let at_minimizer = [4.0, 10.0].iter().any(|m| (sharpness - m).abs() < 1e-3);
                assert!(
                    at_minimizer && *sharpness <= bound * 1.001,
                    "{id}: {sharpness}"
                );
            }
        }
        assert!(out.join("figures/trace.png").is_file());
    }
    let out = dir.path().join("eos");
    let spec = write_spec(
        dir.path(),
        "eos.toml",
        r#"
        trajectories = 1
        max_iters = 3000
        seed = 5
        [model]
        kind = "mlp"
        input_size = 3
        hidden = [5, 4]
        output_size = 2
        samples = 7
        inputs = { kind = "gaussian", std = 1.0, seed = 1 }
        targets = { kind = "teacher", std = 0.7, seed = 2 }
        [init]
        kind = "gaussian"
        mean = 0.0
        std = 0.5
        [steps]
        values = [0.3]
        [stop]
        tol_grad = 1e-5
        "#,
    );
    common::run_ok(
        &[
            "run",
            spec.to_str().unwrap(),
            "--backend",
            "cpu",
            "--trace",
            "1",
        ],
        &out,
    );
    let sharpness: Vec<f64> = read(&out)[1..]
        .iter()
        .map(|r| r[5].parse().unwrap())
        .collect();
    let bound = 2.0 / 0.3;
    assert!(sharpness[0] < 0.8 * bound, "starts below: {sharpness:?}");
    assert!(
        sharpness.iter().any(|&s| s > 1.05 * bound),
        "rises past 2/δ: {sharpness:?}"
    );
    let end = *sharpness.last().unwrap();
    assert!(
        (end / bound - 1.0).abs() < 0.02,
        "hovers at 2/δ: {end} vs {bound}"
    );
}
