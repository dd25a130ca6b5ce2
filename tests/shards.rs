//! Sharded sweeps: `run --shard i/N` then `merge` must equal the unsharded run
//! byte for byte, and a merge of shards that do not belong together is refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

const SPEC: &str = r#"
trajectories = 700
max_iters = 5000
seed = 3
[model]
kind = "poly"
[init]
kind = "uniform"
low = -1.0
high = 4.0
[steps]
values = [0.05, 0.15, 0.199, 0.21, 0.26, 0.3, 0.45, 0.55]
"#;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    spec: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let spec = root.join("sharded.toml");
    std::fs::write(&spec, SPEC).unwrap();
    Setup {
        _dir: dir,
        root,
        spec,
    }
}

fn stepsweep(args: &[&str]) -> Output {
    common::bin().args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Setup {
    fn run(&self, out: &str, extra: &[&str]) -> PathBuf {
        let dir = self.root.join(out);
        let mut args = vec![
            "run",
            s(&self.spec),
            "--backend",
            "cpu",
            "-q",
            "--out",
            s(&dir),
        ];
        args.extend(extra);
        let o = stepsweep(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dir
    }

    /// A merge that must fail: exit 2, one line containing `expect`, no --out.
    fn merge_refused(&self, shards: &[&Path], expect: &str) {
        let out = self.root.join("refused");
        let mut args = vec!["merge"];
        args.extend(shards.iter().map(|p| s(p)));
        args.extend(["--out", s(&out)]);
        let o = stepsweep(&args);
        assert_eq!(
            o.status.code(),
            Some(2),
            "merge of {shards:?} was not refused"
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(expect), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out.exists(), "a refused merge wrote {}", out.display());
    }
}

#[test]
fn shards_merged_in_any_order_equal_the_unsharded_run_byte_for_byte() {
    let t = setup();
    let whole = t.run("whole", &["--write-trajectories"]);
    // Three shards cut the 5600 ids unevenly and across cells; each with its
    // own chunk size and thread count.
    let shards: Vec<PathBuf> = [
        ("0/3", "64", "1"),
        ("1/3", "1000", "2"),
        ("2/3", "333", "1"),
    ]
    .iter()
    .map(|(shard, chunk, threads)| {
        let name = format!("shard-{}", &shard[..1]);
        let args = [
            "--shard",
            shard,
            "--chunk-size",
            chunk,
            "--threads",
            threads,
        ];
        let dir = t.run(&name, &[&args[..], &["--write-trajectories"]].concat());
        assert!(dir.join("shard.json").is_file());
        assert!(
            !dir.join("cells.csv").exists(),
            "a shard wrote a partial cells.csv"
        );
        dir
    })
    .collect();
    let merged = t.root.join("merged");
    let o = stepsweep(&[
        "merge",
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&merged),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["cells.csv", "trajectories.csv", "spec.toml"] {
        assert!(
            std::fs::read(whole.join(file)).unwrap() == std::fs::read(merged.join(file)).unwrap(),
            "merged {file} differs from the unsharded run's"
        );
    }
    // The merged directory counts as the unsharded sweep: rerunning it there is no conflict.
    t.run("merged", &["--write-trajectories"]);
}

#[test]
fn mismatched_or_incomplete_shards_are_refused() {
    let t = setup();
    let a0 = t.run("a0", &["--shard", "0/2"]);
    let a1 = t.run("a1", &["--shard", "1/2"]);
    let other_seed = t.run("b1", &["--shard", "1/2", "--seed", "4"]);
    let other_split = t.run("c1", &["--shard", "1/3"]);
    // `--backend auto` may find a GPU on one node and not on another: the
    // same spec, run in another precision.
    let gpu_node = t.run("d1", &["--shard", "1/2"]);
    let file = gpu_node.join("shard.json");
    let text = std::fs::read_to_string(&file).unwrap();
    let text = text.replace("\"backend\":\"cpu\"", "\"backend\":\"gpu\"");
    std::fs::write(
        &file,
        text.replace("\"precision\":\"f64\"", "\"precision\":\"f32\""),
    )
    .unwrap();
    t.merge_refused(&[&a0, &other_seed], "are shards of different sweeps");
    t.merge_refused(&[&a0, &other_split], "different numbers of shards");
    t.merge_refused(
        &[&a0, &gpu_node],
        "ran on different backends (cpu f64 and gpu f32)",
    );
    t.merge_refused(&[&a0], "shard 1/2 is missing");
    t.merge_refused(&[&a0, &a0], "shard 0/2 is given twice");
    let whole = t.run("whole", &[]);
    t.merge_refused(&[&a0, &whole], "holds no shard.json");
    // And the matching pair merges.
    let merged = t.root.join("merged");
    let o = stepsweep(&["merge", s(&a1), s(&a0), "--out", s(&merged)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(whole.join("cells.csv")).unwrap()
            == std::fs::read(merged.join("cells.csv")).unwrap()
    );
}

#[test]
fn bad_shard_arguments_are_input_errors() {
    let t = setup();
    for bad in ["2/2", "0/0", "x/4", "1"] {
        let out = t.root.join("never");
        let o = stepsweep(&["run", s(&t.spec), "--shard", bad, "--out", s(&out)]);
        assert_eq!(o.status.code(), Some(2), "--shard {bad}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("i/N"), "{stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out.exists());
    }
}

/// Parquet shards merge row group by row group into what the unsharded run
/// writes: the same values, whatever the split and the chunking (the row
/// groups differ, so the bytes may).
#[test]
fn parquet_shards_merge_into_the_unsharded_tables() {
    let t = setup();
    let parquet = ["--write-trajectories", "--format", "parquet"];
    let whole = t.run("whole", &parquet);
    let shards: Vec<PathBuf> = [("0/2", "100"), ("1/2", "777")]
        .iter()
        .map(|(shard, chunk)| {
            let name = format!("shard-{}", &shard[..1]);
            t.run(
                &name,
                &[&["--shard", shard, "--chunk-size", chunk][..], &parquet[..]].concat(),
            )
        })
        .collect();
    let merged = t.root.join("merged");
    let o = stepsweep(&["merge", s(&shards[1]), s(&shards[0]), "--out", s(&merged)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["cells.parquet", "trajectories.parquet"] {
        assert_eq!(
            common::parquet_table(&whole.join(file)),
            common::parquet_table(&merged.join(file)),
            "merged {file} differs from the unsharded run's"
        );
    }
    assert!(!merged.join("cells.csv").exists() && !merged.join("trajectories.csv").exists());
    assert_eq!(
        common::parquet_table(&merged.join("trajectories.parquet")).1[0].len(),
        5600
    );
}

/// A shard that holds no trajectory (more shards than trajectories) still
/// writes a trajectories.parquet, with the sweep's columns and no rows, and
/// merges with the others into the unsharded run's tables.
#[test]
fn a_parquet_shard_of_no_trajectories_has_the_columns_and_merges() {
    let t = setup();
    let one = [
        "--trajectories",
        "1",
        "--steps",
        "0.1",
        "--write-trajectories",
        "--format",
        "parquet",
    ];
    let whole = t.run("whole", &one);
    let empty = t.run("empty", &[&one[..], &["--shard", "0/2"]].concat());
    let full = t.run("full", &[&one[..], &["--shard", "1/2"]].concat());
    let file = "trajectories.parquet";
    let (names, columns) = common::parquet_table(&empty.join(file));
    assert_eq!(names, common::parquet_table(&whole.join(file)).0);
    assert!(columns.iter().all(Vec::is_empty), "{columns:?}");
    let merged = t.root.join("merged");
    let o = stepsweep(&["merge", s(&empty), s(&full), "--out", s(&merged)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        common::parquet_table(&whole.join(file)),
        common::parquet_table(&merged.join(file))
    );
}
