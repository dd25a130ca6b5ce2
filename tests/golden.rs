//! Every preset, at reduced trajectory counts, on the CPU in f64 and f32 and
//! on a GPU adapter in f32 and f64, writes cells.csv and trajectories.csv
//! whose SHA-256 is the one recorded in `tests/golden/presets.sha256`: a
//! restructuring of the code changes no byte of any result.
//!
//! The hashes were recorded before the model families were restructured,
//! and before cells.csv gained its readout columns and trajectories.csv the
//! final loss of every trajectory (not only the converged ones): both are
//! taken out again before hashing (`without_later_columns`,
//! `with_loss_of_converged_only`), so every byte that was recorded is still
//! compared.
//! On lavapipe the GPU's outputs are the CPU's, byte for byte, in both
//! precisions; a hardware GPU may contract f32 operations its own way, so
//! there the GPU rows are not compared (the GPU tests hold them to the CPU
//! within their tolerances instead).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

const PRESETS: [&str; 9] = [
    "deep-linear-identity",
    "deep-linear-random",
    "poly-basin",
    "poly-cascade",
    "poly",
    "relu-notebook",
    "relu-single",
    "scalar-deep-threshold",
    "scalar-deep",
];

/// The recorded hashes, by `preset-backend-precision/file`.
fn recorded() -> BTreeMap<String, String> {
    include_str!("golden/presets.sha256")
        .lines()
        .filter_map(|line| line.split_once("  "))
        .map(|(hash, name)| (name.to_string(), hash.to_string()))
        .collect()
}

/// The columns cells.csv gained after the hashes were recorded (the
/// readouts, last in every row); they are dropped before hashing, so the
/// recorded hashes still hold every earlier column byte for byte.
const LATER_COLUMNS: [&str; 3] = [
    "log10_iterations_converged_mean",
    "log10_iterations_diverged_mean",
    "loss_median",
];

/// cells.csv as it was recorded: every row without `LATER_COLUMNS`.
fn without_later_columns(text: &str) -> String {
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.ends_with(&LATER_COLUMNS.join(",")),
        "cells.csv ends its rows with the readouts: {header}"
    );
    text.split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches(['\r', '\n']);
            let ending = &line[body.len()..];
            let fields: Vec<&str> = body.split(',').collect();
            format!(
                "{}{ending}",
                fields[..fields.len() - LATER_COLUMNS.len()].join(",")
            )
        })
        .collect()
}

/// trajectories.csv as it was recorded, when only converged trajectories
/// (those with a metric) reported their final loss: the loss of every other
/// row blanked.
fn with_loss_of_converged_only(text: &str) -> String {
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (loss, metric) = (at("loss"), at("metric"));
    text.split_inclusive('\n')
        .enumerate()
        .map(|(row, line)| {
            let body = line.trim_end_matches(['\r', '\n']);
            let ending = &line[body.len()..];
            let mut fields: Vec<&str> = body.split(',').collect();
            if row > 0 && fields[metric].is_empty() {
                fields[loss] = "";
            }
            format!("{}{ending}", fields.join(","))
        })
        .collect()
}

fn sha256(path: &Path) -> String {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.ends_with("cells.csv") {
        bytes = without_later_columns(&String::from_utf8(bytes).unwrap()).into_bytes();
    }
    if path.ends_with("trajectories.csv") {
        bytes = with_loss_of_converged_only(&String::from_utf8(bytes).unwrap()).into_bytes();
    }
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs every preset on `backend` in `precision` and compares its outputs'
/// hashes with the recorded ones; returns how many it compared.
fn compare(backend: &str, precision: &str) -> usize {
    let recorded = recorded();
    let dir = tempfile::tempdir().unwrap();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for preset in PRESETS {
        let name = format!("{preset}-{backend}-{precision}");
        let out = dir.path().join(&name);
        let mut args = vec![
            "run",
            preset,
            "--trajectories",
            "8",
            "--backend",
            backend,
            "--precision",
            precision,
            "--write-trajectories",
        ];
        // The notebook's 20 001 steps over 1000 samples, shortened.
        if preset == "relu-notebook" {
            args.extend(["--max-iters", "500"]);
        }
        common::run_ok(&args, &out);
        for file in ["cells.csv", "trajectories.csv"] {
            let key = format!("{name}/{file}");
            let expected = recorded
                .get(&key)
                .unwrap_or_else(|| panic!("no recorded hash for {key}"));
            if sha256(&out.join(file)) != *expected {
                mismatches.push(key);
            }
            compared += 1;
        }
    }
    assert!(
        mismatches.is_empty(),
        "outputs that differ from the recorded ones: {mismatches:?}"
    );
    compared
}

#[test]
fn every_preset_on_the_cpu_gives_the_recorded_bytes() {
    assert_eq!(compare("cpu", "f64") + compare("cpu", "f32"), 36);
}

#[test]
fn every_preset_on_lavapipe_gives_the_recorded_bytes() {
    let Some(ctx) = common::gpu_or_skip("golden GPU outputs") else {
        return;
    };
    if stepsweep::backend::gpu::is_hardware(&ctx.info) {
        eprintln!("skipping the GPU golden outputs: they were recorded on lavapipe, and a hardware GPU rounds f32 its own way");
        return;
    }
    if common::with_precision(ctx, stepsweep::spec::Precision::F64, "golden GPU outputs").is_none()
    {
        return;
    }
    assert_eq!(compare("gpu", "f32") + compare("gpu", "f64"), 36);
}
