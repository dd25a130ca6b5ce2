//! The files of a finished run: spec.toml, then cells.csv and summary.json
//! for a whole sweep, or shard.json for a shard.

use std::path::Path;

use serde_json::json;

use crate::aggregate::SweepReport;
use crate::error::Result;
use crate::output::{self, columnar, trajectories};
use crate::shard::{Shard, ShardFile, SHARD_FILE};
use crate::spec::Format;

/// summary.json: the spec, backend, timings, theory and cells.
pub fn summary_json(report: &SweepReport) -> serde_json::Value {
    let sweep = &report.sweep;
    json!({
        "stepsweep": env!("CARGO_PKG_VERSION"),
        "name": report.name,
        "spec": sweep.spec,
        "backend": {
            "kind": report.backend,
            "adapter": report.adapter,
            "precision": report.precision.name(),
            "note": report.note,
        },
        "stop_rule": report.rule,
        "timings": {
            "seconds": report.seconds,
            "trajectory_steps": report.trajectory_steps,
            "traj_steps_per_s": report.trajectory_steps as f64 / report.seconds.max(1e-9),
        },
        "trajectories": sweep.total(),
        "theory": sweep.cells[0].model.theory(),
        "minimizers": sweep.cells[0].model.minimizers(),
        "optimizer": optimizer_json(sweep),
        "cells": output::cells_json(sweep, &report.cells),
        "recheck": report.recheck_totals().map(|(rechecked, overturned)| json!({
            "rechecked": rechecked,
            "overturned": overturned,
            "sample_every": crate::recheck::SAMPLE_EVERY,
            "rule": "f32 verdicts rerun in f64 on the CPU: every converged trajectory whose metric is above the bound or whose minimizer's threshold is below its step size, and the first 1 in 64 replicates of every cell; the counts hold the f64 verdicts",
        })),
    })
}

/// The optimizer and what it does to the theory: its stability bound, and
/// each threshold of the theory (`Family::edges`) at its own step size. With
/// β on the second axis, the first cell's β.
fn optimizer_json(sweep: &crate::sweep::Sweep) -> serde_json::Value {
    let cell = &sweep.cells[0];
    let mut out = cell.optimizer.summary();
    out["thresholds"] = cell
        .edges()
        .iter()
        .map(|e| json!({ "name": e.name, "step_size": e.step_size }))
        .collect();
    out
}

/// Writes spec.toml, then cells.csv (or cells.parquet) and summary.json for
/// a whole sweep or shard.json for a shard, and removes the files of the
/// other kind or format (and a trajectories file the spec no longer asks
/// for) that a replaced run left.
/// A trace (`[output] trace`) runs on `backend`, the CPU where None.
pub fn write_outputs(
    report: &SweepReport,
    out: &Path,
    shard: Option<Shard>,
    backend: Option<&crate::backend::Backend>,
) -> Result<()> {
    output::write_atomic(
        &out.join("spec.toml"),
        report.sweep.spec.to_toml().as_bytes(),
    )?;
    let mut stale = vec![];
    match shard {
        Some(shard) => {
            let file = serde_json::to_vec(&shard_file(report, shard)).expect("JSON of plain data");
            output::write_atomic(&out.join(SHARD_FILE), &file)?;
            stale.extend(["cells.csv", columnar::CELLS, "summary.json"]);
        }
        None => {
            match report.sweep.spec.output.format {
                Format::Csv => {
                    output::write_atomic(
                        &out.join("cells.csv"),
                        &output::cells_csv(&report.sweep, &report.cells),
                    )?;
                    stale.push(columnar::CELLS);
                }
                Format::Parquet => {
                    output::write_atomic(
                        &out.join(columnar::CELLS),
                        &columnar::cells(&report.sweep, &report.cells)?,
                    )?;
                    stale.push("cells.csv");
                }
            }
            let summary =
                serde_json::to_vec_pretty(&summary_json(report)).expect("JSON of plain data");
            output::write_atomic(&out.join("summary.json"), &summary)?;
            stale.push(SHARD_FILE);
            let k = report.sweep.spec.output.trace;
            if k > 0 {
                crate::trace::write(&report.sweep, report.precision, k, out, backend)?;
            } else {
                stale.push(crate::trace::TRACE_FILE);
            }
        }
    }
    // The rows file of the other format, or of either where none is asked for.
    for format in [Format::Csv, Format::Parquet] {
        let spec = &report.sweep.spec.output;
        if !spec.trajectories || spec.format != format {
            stale.push(trajectories::file_name(format));
        }
    }
    for name in stale {
        let _ = std::fs::remove_file(out.join(name));
    }
    Ok(())
}

/// What a shard's shard.json holds, from its report.
fn shard_file(report: &SweepReport, shard: Shard) -> ShardFile {
    ShardFile {
        stepsweep: env!("CARGO_PKG_VERSION").into(),
        name: report.name.clone(),
        shard,
        ids: shard.ids(report.sweep.total()),
        spec: report.sweep.spec.to_toml(),
        backend: report.backend.clone(),
        adapter: report.adapter.clone(),
        precision: report.precision,
        seconds: report.seconds,
        trajectory_steps: report.trajectory_steps,
        trajectories_csv: report.sweep.spec.output.trajectories,
        cells: report.cells.clone(),
    }
}
