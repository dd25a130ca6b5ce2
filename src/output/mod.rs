//! Writers: cells.csv, summary.json, trajectories.csv and the stdout table.
//! Every file goes through a temp file and a rename, so a killed run leaves
//! either the old file or the new one, never half of one.

pub mod columnar;
pub mod figures;
pub mod files;
pub mod progress;
pub mod table;
pub mod trajectories;

use serde_json::{json, Value};

use crate::aggregate::CellStats;
use crate::sweep::Sweep;

/// One cell's row: (column, value) pairs, shared by cells.csv and summary.json.
pub fn cell_row(sweep: &Sweep, index: usize, stats: &CellStats) -> Vec<(String, Value)> {
    let cell = &sweep.cells[index];
    let (p, lo, hi) = stats.p_converged();
    let mut row: Vec<(String, Value)> = vec![("step_size".into(), json!(cell.step_size))];
    if let (Some(axis), Some(v)) = (&sweep.spec.axis, cell.axis_value) {
        row.push((axis.column(), json!(v)));
    }
    let opt = |v: Option<f64>| v.map_or(Value::Null, |v| json!(v));
    row.extend([
        ("trajectories".into(), json!(stats.trajectories)),
        ("converged".into(), json!(stats.converged)),
        ("diverged".into(), json!(stats.diverged)),
        ("oscillating".into(), json!(stats.oscillating)),
        ("undecided".into(), json!(stats.undecided)),
        ("p_converged".into(), json!(p)),
        ("p_converged_lo".into(), json!(lo)),
        ("p_converged_hi".into(), json!(hi)),
        ("metric_max".into(), opt(stats.metric_max)),
        ("bound".into(), json!(cell.bound())),
        ("violations".into(), json!(stats.violations)),
        ("sharpness_max".into(), opt(stats.sharpness_max)),
        ("spectral_radius_max".into(), opt(stats.spectral_radius_max)),
        ("iterations_mean".into(), json!(stats.iterations_mean())),
        ("modal_period".into(), json!(stats.modal_period())),
    ]);
    for (k, n) in stats.converged_min.iter().enumerate() {
        row.push((format!("converged_min_{k}"), json!(n)));
    }
    row.push(("converged_other".into(), json!(stats.converged_other)));
    row.push(("rechecked".into(), json!(stats.rechecked)));
    row.push(("overturned".into(), json!(stats.overturned)));
    // The readouts: how fast trajectories converge or diverge, and where
    // the losses end (empty where no trajectory gives one; "inf" where most
    // diverged).
    let readout = |v: f64| {
        if v.is_nan() {
            Value::Null
        } else if v.is_infinite() {
            json!(if v > 0.0 { "inf" } else { "-inf" })
        } else {
            json!(v)
        }
    };
    row.extend([
        (
            "log10_iterations_converged_mean".into(),
            readout(stats.log10_iterations_converged_mean()),
        ),
        (
            "log10_iterations_diverged_mean".into(),
            readout(stats.log10_iterations_diverged_mean()),
        ),
        ("loss_median".into(), readout(stats.loss_median())),
    ]);
    row
}

fn csv_field(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn cells_csv(sweep: &Sweep, stats: &[CellStats]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for (i, s) in stats.iter().enumerate() {
        let row = cell_row(sweep, i, s);
        if i == 0 {
            w.write_record(row.iter().map(|(k, _)| k.as_str()))
                .expect("writing to memory");
        }
        w.write_record(row.iter().map(|(_, v)| csv_field(v)))
            .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

pub fn cells_json(sweep: &Sweep, stats: &[CellStats]) -> Value {
    Value::Array(
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| Value::Object(cell_row(sweep, i, s).into_iter().collect()))
            .collect(),
    )
}

pub use crate::files::{prepare_dir, temp_path, write_atomic};
