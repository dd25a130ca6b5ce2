//! Killing the real binary mid-sweep and resuming it: the result must be byte
//! for byte the uninterrupted run's. Also the output directory's guards: a
//! different sweep is refused without --force, and concurrent runs do not mix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// About 0.6 s of work on one core, in 600 chunks of 200 trajectories: the
/// chaotic step sizes keep many trajectories running to max_iters. It must
/// outlast the 250 ms in which `killed_at_random_moments…` kills it, which
/// 6000 trajectories a step size stopped doing once the CPU engine refilled
/// its lanes (0.19 s).
const LONG: &str = r#"
trajectories = 30000
max_iters = 20000
seed = 7
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
values = [0.3, 0.32, 0.35, 0.38]
"#;

const CHUNK: &str = "200";

struct Sweep {
    _dir: tempfile::TempDir,
    root: PathBuf,
    spec: PathBuf,
    backend: &'static str,
    chunk: &'static str,
}

impl Sweep {
    fn new(text: &str) -> Sweep {
        Sweep::on(text, "cpu", CHUNK)
    }

    fn on(text: &str, backend: &'static str, chunk: &'static str) -> Sweep {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let spec = root.join("long.toml");
        std::fs::write(&spec, text).unwrap();
        Sweep {
            _dir: dir,
            root,
            spec,
            backend,
            chunk,
        }
    }

    fn command(&self, out: &Path, extra: &[&str]) -> std::process::Command {
        let mut c = common::bin();
        c.arg("run")
            .arg(&self.spec)
            .arg("--out")
            .arg(out)
            .args(["--backend", self.backend, "--threads", "1"])
            .args(["--chunk-size", self.chunk])
            .args(["--write-trajectories", "-q"])
            .args(extra);
        c
    }

    fn run(&self, out: &Path, extra: &[&str]) -> Output {
        self.command(out, extra).output().unwrap()
    }

    fn spawn(&self, out: &Path, extra: &[&str]) -> Child {
        self.command(out, extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The uninterrupted run's cells.csv and trajectories.csv.
    fn reference(&self) -> (Vec<u8>, Vec<u8>) {
        let out = self.root.join("reference");
        let o = self.run(&out, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outputs(&out)
    }
}

fn outputs(out: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        std::fs::read(out.join("cells.csv")).unwrap(),
        std::fs::read(out.join("trajectories.csv")).unwrap(),
    )
}

/// The journal's next trajectory id, once it has recorded a finished chunk.
fn journaled_progress(out: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(out.join("journal.json")).ok()?;
    let j: serde_json::Value = serde_json::from_str(&text).ok()?;
    let next = j["progress"]["next_id"].as_u64()?;
    (next > j["ids"]["start"].as_u64()?).then_some(next)
}

/// Waits until `child` has journaled a chunk; false if it ended first.
fn wait_for_progress(child: &mut Child, out: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if journaled_progress(out).is_some() {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no chunk was journaled within a minute");
}

fn assert_same(out: &Path, reference: &(Vec<u8>, Vec<u8>)) {
    let (cells, rows) = outputs(out);
    assert!(
        cells == reference.0,
        "cells.csv differs from the uninterrupted run's"
    );
    assert!(
        rows == reference.1,
        "trajectories.csv differs from the uninterrupted run's"
    );
    assert!(
        !out.join("journal.json").exists(),
        "the journal outlived the sweep"
    );
}

#[test]
fn resume_after_kill_9_is_byte_identical() {
    let sweep = Sweep::new(LONG);
    let reference = sweep.reference();
    let out = sweep.root.join("killed");
    let mut child = sweep.spawn(&out, &[]);
    assert!(
        wait_for_progress(&mut child, &out),
        "the sweep ended before it could be killed"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done = journaled_progress(&out).expect("the journal survives kill -9");
    assert!(
        !out.join("cells.csv").exists(),
        "killed after {done} trajectories, yet cells.csv exists"
    );

    // Without --resume the unfinished run is refused, and left as it was.
    let o = sweep.run(&out, &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("unfinished run of this sweep") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert_eq!(journaled_progress(&out), Some(done));

    let o = sweep.run(&out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&out, &reference);
}

#[test]
fn killed_at_random_moments_and_resumed_each_time_it_ends_byte_identical() {
    let sweep = Sweep::new(LONG);
    let reference = sweep.reference();
    let out = sweep.root.join("battered");
    let seed: u64 = rand::random();
    eprintln!("kill schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut killed_mid_run = 0;
    for _ in 0..6 {
        let mut child = sweep.spawn(&out, &["--resume"]);
        // Somewhere in the next 250 ms: before, during or after a chunk, or
        // while the journal or an output is being written.
        std::thread::sleep(Duration::from_micros(rng.random_range(0..250_000)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed_mid_run += 1;
        }
        let status = child.wait().unwrap();
        assert!(
            status.code() != Some(2) && status.code() != Some(1),
            "a resume failed: {status}"
        );
    }
    assert!(killed_mid_run > 0, "no kill landed while the sweep ran");
    let o = sweep.run(&out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&out, &reference);
}

#[test]
fn ctrl_c_saves_the_journal_and_says_how_to_resume() {
    let sweep = Sweep::new(LONG);
    let reference = sweep.reference();
    let out = sweep.root.join("interrupted");
    let mut child = sweep.spawn(&out, &[]);
    assert!(
        wait_for_progress(&mut child, &out),
        "the sweep ended before Ctrl-C"
    );
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("rerun the same command with --resume"),
        "{stderr}"
    );
    assert!(journaled_progress(&out).is_some());
    assert!(!out.join("cells.csv").exists());
    let o = sweep.run(&out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&out, &reference);
}

#[test]
fn a_directory_of_another_sweep_is_refused_without_force() {
    let small = LONG.replace("trajectories = 6000", "trajectories = 100");
    let sweep = Sweep::new(&small);
    let out = sweep.root.join("taken");
    assert!(sweep.run(&out, &[]).status.success());
    let before = outputs(&out);
    for flags in [
        &["--seed", "8"][..],
        &["--seed", "8", "--resume"],
        &["--shard", "0/2"],
    ] {
        let o = sweep.run(&out, flags);
        assert_eq!(o.status.code(), Some(2), "{flags:?}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("holds the outputs of") && stderr.contains("--force"),
            "{flags:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(outputs(&out) == before, "{flags:?} changed the directory");
    }
    // The same sweep again is no conflict, and --force replaces another.
    assert!(sweep.run(&out, &[]).status.success());
    let o = sweep.run(&out, &["--seed", "8", "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let other = sweep.root.join("seed8");
    assert!(sweep.run(&other, &["--seed", "8"]).status.success());
    assert!(outputs(&out) == outputs(&other));
}

#[test]
fn sweeps_at_once_keep_to_their_own_directories() {
    let sweep = Sweep::new(LONG);
    let (a, b) = (sweep.root.join("a"), sweep.root.join("b"));
    let mut first = sweep.spawn(&a, &[]);
    let mut second = sweep.spawn(&b, &["--seed", "8"]);
    assert!(
        wait_for_progress(&mut first, &a),
        "the sweep ended before a rival started"
    );
    // A third run into a directory in use is turned away, and harms nothing.
    let o = sweep.run(&a, &["--resume"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("in use by another stepsweep run"),
        "{stderr}"
    );
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    assert_same(&a, &sweep.reference());
    let alone = sweep.root.join("b-alone");
    assert!(sweep.run(&alone, &["--seed", "8"]).status.success());
    assert!(outputs(&b) == outputs(&alone));
}

/// Signals a child this test started and still owns.
fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child that has not been reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// Whether `out` holds a finished sweep: its cells, and no journal.
fn finished(out: &Path) -> bool {
    out.join("cells.csv").exists() && !out.join("journal.json").exists()
}

/// Runs killed at random moments, by SIGKILL or SIGTERM at random, each
/// resumed by the next: every sweep that finishes this way must equal the
/// uninterrupted one byte for byte. A finished sweep starts a new round in a
/// fresh directory, so every kill lands on work.
fn soak(sweep: &Sweep, reference: &(Vec<u8>, Vec<u8>), kills: usize, window_us: u64) {
    let seed: u64 = rand::random();
    eprintln!("soak seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut landed, mut rounds, mut terms) = (0, 0, 0);
    let mut out = sweep.root.join("soak0");
    while landed < kills {
        let mut child = sweep.spawn(&out, &["--resume"]);
        std::thread::sleep(Duration::from_micros(rng.random_range(0..window_us)));
        if child.try_wait().unwrap().is_none() {
            if rng.random_bool(0.5) {
                signal(&child, libc::SIGTERM);
                terms += 1;
            } else {
                child.kill().unwrap();
            }
            landed += 1;
        }
        let o = child.wait_with_output().unwrap();
        assert!(
            !matches!(o.status.code(), Some(1) | Some(2)),
            "a resume failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        if finished(&out) {
            assert_same(&out, reference);
            rounds += 1;
            out = sweep.root.join(format!("soak{rounds}"));
        }
    }
    let o = sweep.run(&out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&out, reference);
    eprintln!(
        "soak: {landed} kills ({terms} SIGTERM), {} sweeps finished",
        rounds + 1
    );
    // Over 50 kills both signals land but for a chance of 2⁻⁴⁹.
    if kills >= 50 {
        assert!(terms > 0 && terms < landed, "both signals must land");
    }
}

#[test]
fn soak_fifty_random_kills_each_resumed_ends_byte_identical() {
    let sweep = Sweep::new(LONG);
    let reference = sweep.reference();
    soak(&sweep, &reference, 50, 250_000);
}

/// A sweep sized for lavapipe: 16 chunks of 10 000 (about 0.4 s of work
/// here, in a run of 0.6 s).
const GPU_SWEEP: &str = r#"
trajectories = 40000
max_iters = 5000
seed = 7
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
values = [0.3, 0.32, 0.35, 0.38]
"#;

#[test]
fn soak_on_the_gpu_ends_byte_identical() {
    if common::gpu_or_skip("the GPU soak test").is_none() {
        return;
    }
    let sweep = Sweep::on(GPU_SWEEP, "gpu", "10000");
    let reference = sweep.reference();
    soak(&sweep, &reference, 10, 600_000);
}

/// The device reported lost as chunk 3 starts: the run stops with one
/// sentence, the journal holds chunks 0–2, and a resume completes the sweep
/// byte for byte.
#[test]
fn a_device_lost_mid_sweep_stops_and_resumes_whole() {
    if common::gpu_or_skip("the lost-device test").is_none() {
        return;
    }
    let sweep = Sweep::on(GPU_SWEEP, "gpu", "10000");
    let reference = sweep.reference();
    let out = sweep.root.join("lost");
    let o = sweep
        .command(&out, &[])
        .env(stepsweep::backend::gpu::LOSE_DEVICE_ENV, "3")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("device was lost") && stderr.contains("--backend cpu"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert_eq!(journaled_progress(&out), Some(3 * 10000));
    assert!(!out.join("cells.csv").exists());
    let o = sweep.run(&out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&out, &reference);
}

/// Once the results are saved, the first SIGTERM stops the run at once, in
/// the middle of its figures (a grid of 320 000 cells takes seconds to
/// draw), with status 130; each figure is whole or absent.
#[test]
fn sigterm_while_figures_are_drawn_stops_at_once() {
    let grid = r#"
trajectories = 1
max_iters = 20
seed = 7
[model]
kind = "poly"
[init]
kind = "point"
x0 = 0.0
[steps]
linspace = [0.01, 0.6, 800]
[axis]
param = "init.x0"
linspace = [-1.0, 4.0, 400]
"#;
    let sweep = Sweep::on(grid, "cpu", "100000");
    let out = sweep.root.join("drawing");
    let mut child = sweep
        .command(&out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !out.join("summary.json").exists() {
        assert!(
            Instant::now() < deadline,
            "the sweep never saved its summary"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Past the moment the run marks its results saved.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the figures were done before the signal; draw a larger grid"
    );
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped while drawing figures"), "{stderr}");
    let figures: Vec<String> = std::fs::read_dir(out.join("figures"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        figures.len() < 10,
        "every figure was drawn, so the signal waited for them: {figures:?}"
    );
    assert!(
        figures
            .iter()
            .all(|f| f.ends_with(".png") || f.ends_with(".svg")),
        "a partial file was left: {figures:?}"
    );
    assert!(out.join("cells.csv").exists() && out.join("summary.json").exists());
}

/// The Parquet tables of a finished run: cells and trajectories, by value.
fn parquet_outputs(out: &Path) -> (common::Table, common::Table) {
    (
        common::parquet_table(&out.join("cells.parquet")),
        common::parquet_table(&out.join("trajectories.parquet")),
    )
}

/// With Parquet, a kill -9 leaves the journaled chunks as synced part
/// files; the resume drops the part in flight and ends with the tables of
/// the uninterrupted run, byte for byte, which hold the CSV run's values.
#[test]
fn parquet_resume_after_kill_9_has_the_uninterrupted_tables() {
    let sweep = Sweep::new(LONG);
    let parquet = ["--format", "parquet"];
    let reference = sweep.root.join("reference");
    assert!(sweep.run(&reference, &parquet).status.success());
    let expected = parquet_outputs(&reference);
    // The same values as the CSV run's, column by column.
    let csv = sweep.root.join("csv");
    assert!(sweep.run(&csv, &[]).status.success());
    assert_eq!(
        common::csv_table(&csv.join("cells.csv"), &expected.0),
        expected.0
    );
    assert_eq!(
        common::csv_table(&csv.join("trajectories.csv"), &expected.1),
        expected.1
    );

    let out = sweep.root.join("killed");
    let mut child = sweep.spawn(&out, &parquet);
    assert!(
        wait_for_progress(&mut child, &out),
        "the sweep ended before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("journal.json")).unwrap()).unwrap();
    let parts = journal["progress"]["trajectories_parts"]
        .as_u64()
        .expect("the journal counts the synced parts");
    assert!(parts > 0);
    assert!(!out.join("trajectories.parquet").exists());
    let o = sweep.run(&out, &[&["--resume"][..], &parquet[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(parquet_outputs(&out), expected);
    // With the same chunks, the encoder writes the same bytes too.
    for file in ["cells.parquet", "trajectories.parquet"] {
        assert!(
            std::fs::read(out.join(file)).unwrap() == std::fs::read(reference.join(file)).unwrap(),
            "the resumed {file} differs in bytes from the uninterrupted run's"
        );
    }
    assert!(
        !out.join("journal.json").exists() && !out.join(".trajectories.parquet.parts").exists()
    );
    assert!(!out.join("cells.csv").exists() && !out.join("trajectories.csv").exists());
    // One row group per chunk of 200.
    let file = std::fs::File::open(out.join("trajectories.parquet")).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
    )
    .clone();
    assert_eq!(meta.num_row_groups(), 30000 * 4 / 200);
}

/// Peak memory (the kernel's count of the child's resident set) of a
/// `run` writing trajectories.parquet. The child is reaped by wait4, which
/// gives its usage, not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn peak_rss_bytes(args: &[&str]) -> u64 {
    let child = common::bin()
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid, with valid out-pointers; the
    // Child is not waited on again.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the run failed: {status}"
    );
    usage.ru_maxrss as u64 * 1024
}

/// 10⁷ trajectories written to trajectories.parquet: peak memory stays
/// within the chunk's budget above what a run of one chunk takes, so it is
/// bounded by the chunk and not by the sweep (all rows held would be over
/// 600 MB more).
#[test]
fn ten_million_parquet_rows_keep_memory_within_the_chunk_budget() {
    let dir = tempfile::tempdir().unwrap();
    let chunk: u64 = 1 << 17;
    let run = |trajectories: u64, name: &str| {
        let out = dir.path().join(name);
        let (n, c) = (trajectories.to_string(), chunk.to_string());
        let args = [
            "run",
            "poly",
            "--backend",
            "cpu",
            "--steps",
            "0.1",
            "--max-iters",
            "100",
            "--trajectories",
            &n,
            "--chunk-size",
            &c,
            "--write-trajectories",
            "--format",
            "parquet",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ];
        let peak = peak_rss_bytes(&args);
        (peak, out)
    };
    let (one_chunk, _) = run(chunk, "one");
    let (peak, out) = run(10_000_000, "ten-million");
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(
            std::fs::File::open(out.join("trajectories.parquet")).unwrap(),
        )
        .unwrap(),
    )
    .clone();
    assert_eq!(meta.file_metadata().num_rows(), 10_000_000);
    let budget = stepsweep::memory::CHUNKS_IN_FLIGHT
        * stepsweep::memory::bytes_per_trajectory(1, true)
        * chunk;
    eprintln!(
        "peak memory: {} MB for one chunk, {} MB for 10^7 trajectories (budget {} MB above one chunk)",
        one_chunk >> 20,
        peak >> 20,
        budget >> 20
    );
    assert!(
        peak <= one_chunk + budget,
        "10^7 trajectories peaked at {} MB, over one chunk's {} MB plus the budget {} MB",
        peak >> 20,
        one_chunk >> 20,
        budget >> 20
    );
}
