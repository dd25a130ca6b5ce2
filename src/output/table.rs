//! The readable summary printed on stdout after a sweep.

use std::fmt::Write;

use crate::aggregate::SweepReport;

fn short(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub fn render(report: &SweepReport) -> String {
    let sweep = &report.sweep;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} cells × {} trajectories on {} ({}, {}) in {:.2} s, {:.3e} trajectory-steps/s",
        report.name,
        sweep.cells.len(),
        sweep.trajectories_per_cell,
        report.backend,
        report.adapter.as_deref().unwrap_or("-"),
        report.precision.name(),
        report.seconds,
        report.trajectory_steps as f64 / report.seconds.max(1e-9),
    );
    if let Some((rechecked, overturned)) = report.recheck_totals() {
        let _ = writeln!(
            out,
            "f32 verdicts rechecked in f64: {rechecked} (the suspect ones, and the first 1 in {} replicates of each cell); f64 overturned {overturned}, and the counts below hold its verdicts",
            crate::recheck::SAMPLE_EVERY
        );
    }
    let minimizers = sweep.cells[0].model.minimizers();
    let mut header = vec!["step_size".to_string()];
    if let Some(a) = &sweep.spec.axis {
        header.push(a.column());
    }
    header.push("p_converged [95% CI]".into());
    for m in minimizers {
        header.push(format!("x={:.4}", m.x));
    }
    header.extend(
        [
            "diverged",
            "oscillating",
            "undecided",
            "metric_max",
            "bound",
            "violations",
        ]
        .map(String::from),
    );
    let mut rows = vec![header];
    for (cell, s) in sweep.cells.iter().zip(&report.cells) {
        let n = s.trajectories.max(1) as f64;
        let (p, lo, hi) = s.p_converged();
        let mut row = vec![format!("{}", cell.step_size)];
        if let Some(v) = cell.axis_value {
            row.push(format!("{v}"));
        }
        row.push(format!("{p:.4} [{lo:.4}, {hi:.4}]"));
        for c in &s.converged_min {
            row.push(format!("{:.4}", *c as f64 / n));
        }
        let osc = if s.oscillating > 0 {
            format!("{:.4} (p={})", s.oscillating as f64 / n, s.modal_period())
        } else {
            "0".into()
        };
        row.extend([
            format!("{:.4}", s.diverged as f64 / n),
            osc,
            format!("{:.4}", s.undecided as f64 / n),
            short(s.metric_max),
            format!("{:.4}", cell.bound()),
            s.violations.to_string(),
        ]);
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
