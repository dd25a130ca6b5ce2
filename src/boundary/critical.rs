//! `stepsweep boundary --critical`: for each start, the critical step size
//! δ* found by bisection instead of a dense grid of step sizes.
//!
//! Which crossing is found: a start's class at the grid's smallest step size
//! is the class it reaches with small steps (its minimizer, or "a
//! minimum"). δ* is where that class is first lost going up the grid: the
//! grid is scanned for the first step size whose class differs, and the
//! bracket between it and the step size below is bisected. The step sizes
//! that reach the start's class need not form an interval: larger step sizes
//! may reach it again (a start in x = 2's basin of the default polynomial
//! may reach x = 2 again after a detour), and those later crossings are not
//! reported. Where one grid interval holds several crossings, bisection
//! finds one of them. A start that reaches no minimum at the smallest step
//! size, or that keeps its class over the whole grid, has no δ*.

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use super::figures as figure;
use super::files::{outcome_labels, BoundaryOptions, Finished};
use super::{seconds, Evaluator};
use crate::error::{Error, Result};
use crate::files::{prepare_dir, write_atomic};
use crate::real::Precision;
use crate::spec::Spec;
use crate::sweep::{Point, Sweep};

/// One start's critical step size.
#[derive(Clone, Debug, PartialEq)]
pub struct Critical {
    pub axis_value: Option<f64>,
    pub start: u64,
    /// The class at the grid's smallest step size.
    pub class_below: u8,
    /// The bracket: `lo` reaches `class_below`, `hi` does not.
    pub lo: f64,
    pub hi: f64,
    /// The class at `hi`.
    pub class_above: u8,
    pub crossing: Crossing,
    pub bisections: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossing {
    /// Bisected to the tolerance.
    Found,
    /// No minimum at the grid's smallest step size: nothing to lose.
    NoMinimum,
    /// The class holds over the whole grid: δ* lies above its largest step size.
    BeyondGrid,
}

impl Crossing {
    pub fn name(self) -> &'static str {
        match self {
            Crossing::Found => "first",
            Crossing::NoMinimum => "no-minimum",
            Crossing::BeyondGrid => "beyond-grid",
        }
    }
}

impl Critical {
    /// δ*: the bracket's midpoint, where one was found.
    pub fn step_size(&self) -> Option<f64> {
        (self.crossing == Crossing::Found).then_some(0.5 * (self.lo + self.hi))
    }
}

/// The critical step size of every start: each value of the second axis
/// (one row without an axis) times `spec.trajectories` starts, each start
/// one trajectory from its own stream (or its replicate's, with
/// `common_starts`), bisected to relative tolerance `rtol`.
pub fn bisect(
    spec: &Spec,
    eval_chunk: Option<u64>,
    rtol: f64,
    criterion: super::Criterion,
) -> Result<(Vec<Critical>, Evaluator)> {
    let grid = spec.steps.resolve("steps")?;
    if grid.len() < 2 {
        return Err(Error::spec(
            "--critical scans the spec's step sizes for a first crossing, but it holds one; give at least two step sizes",
        ));
    }
    let axis_values: Vec<Option<f64>> = match &spec.axis {
        Some(a) => a
            .axis_values()
            .resolve("axis")?
            .into_iter()
            .map(Some)
            .collect(),
        None => vec![None],
    };
    let layer = match &spec.axis {
        Some(_) => Sweep::layer_of_axis(
            spec,
            &axis_values.iter().filter_map(|v| *v).collect::<Vec<_>>(),
        )?,
        None => None,
    };
    let starts = spec.trajectories;
    let rows = axis_values.len() as u64 * starts;
    if rows > 1 << 24 {
        return Err(Error::spec(format!(
            "--critical would bisect {rows} starts; give at most 16777216 (fewer axis values or --replicates)"
        )));
    }
    // Each evaluation is one trajectory of one start.
    let mut one = spec.clone();
    one.trajectories = 1;
    one.common_starts = false;
    let mut eval = Evaluator::with_criterion(&one, layer, eval_chunk, criterion)?;
    let eps = match eval.precision {
        Precision::F32 => f64::from(f32::EPSILON),
        Precision::F64 => f64::EPSILON,
    };
    if !(rtol.is_finite() && rtol < 0.5 && rtol >= 8.0 * eps) {
        return Err(Error::spec(format!(
            "--rtol is {rtol}; give a relative tolerance from {:.1e} (8 ulps of {}) to 0.5",
            8.0 * eps,
            eval.precision.name()
        )));
    }
    let stream = |k: u64| if spec.common_starts { k % starts } else { k };
    let row_axis = |k: u64| axis_values[(k / starts) as usize];
    let point = |k: u64, step_size: f64| Point {
        step_size,
        axis_value: row_axis(k),
        stream: stream(k),
    };
    // The scan: every start at every step size of the grid.
    let scan: Vec<Point> = (0..rows)
        .flat_map(|k| grid.iter().map(move |&d| (k, d)))
        .map(|(k, d)| point(k, d))
        .collect();
    let classes: Vec<u8> = eval.evaluate(&scan)?.iter().map(|v| v.class).collect();
    let mut out: Vec<Critical> = (0..rows)
        .map(|k| {
            let c = &classes[(k * grid.len() as u64) as usize..][..grid.len()];
            let mut row = Critical {
                axis_value: row_axis(k),
                start: k % starts,
                class_below: c[0],
                lo: grid[0],
                hi: grid[0],
                class_above: c[0],
                crossing: Crossing::NoMinimum,
                bisections: 0,
            };
            if c[0] == 0 {
                return row;
            }
            match c.iter().position(|&x| x != c[0]) {
                Some(g) => {
                    row.lo = grid[g - 1];
                    row.hi = grid[g];
                    row.class_above = c[g];
                    row.crossing = Crossing::Found;
                }
                None => {
                    row.lo = grid[grid.len() - 1];
                    row.hi = f64::INFINITY;
                    row.crossing = Crossing::BeyondGrid;
                }
            }
            row
        })
        .collect();
    loop {
        let active: Vec<u64> = (0..rows)
            .filter(|&k| {
                let r = &out[k as usize];
                r.crossing == Crossing::Found && r.hi - r.lo > rtol * r.hi
            })
            .collect();
        if active.is_empty() {
            break;
        }
        let mids: Vec<Point> = active
            .iter()
            .map(|&k| {
                let r = &out[k as usize];
                point(k, 0.5 * (r.lo + r.hi))
            })
            .collect();
        let verdicts = eval.evaluate(&mids)?;
        for ((&k, p), v) in active.iter().zip(&mids).zip(verdicts) {
            let r = &mut out[k as usize];
            r.bisections += 1;
            // A midpoint that rounds onto an end cannot narrow the bracket further.
            if p.step_size <= r.lo || p.step_size >= r.hi {
                r.hi = r.lo;
                continue;
            }
            if v.class == r.class_below {
                r.lo = p.step_size;
            } else {
                r.hi = p.step_size;
                r.class_above = v.class;
            }
        }
    }
    Ok((out, eval))
}

/// Runs `--critical` and writes critical.csv, critical.json, the figure and report.html.
pub fn run(
    spec: &Spec,
    name: &str,
    out: &Path,
    opts: &BoundaryOptions,
    rtol: f64,
) -> Result<Finished> {
    let started = Instant::now();
    let (rows, eval) = bisect(spec, opts.chunk, rtol, opts.criterion)?;
    let elapsed = seconds(started);
    prepare_dir(out)?;
    let _lock = crate::journal::lock(out)?;
    let column = spec.axis.as_ref().map(|a| a.column());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = Vec::new();
    if let Some(c) = &column {
        header.push(c.clone());
    }
    header.extend(
        [
            "start",
            "class_below",
            "step_size_critical",
            "step_size_lo",
            "step_size_hi",
            "class_above",
            "crossing",
            "bisections",
        ]
        .map(String::from),
    );
    w.write_record(&header).expect("writing to memory");
    for r in &rows {
        let mut rec: Vec<String> = Vec::new();
        if column.is_some() {
            rec.push(r.axis_value.map_or(String::new(), |v| v.to_string()));
        }
        let found = r.crossing == Crossing::Found;
        rec.extend([
            r.start.to_string(),
            r.class_below.to_string(),
            r.step_size().map_or(String::new(), |d| d.to_string()),
            if r.crossing == Crossing::NoMinimum {
                String::new()
            } else {
                r.lo.to_string()
            },
            if found {
                r.hi.to_string()
            } else {
                String::new()
            },
            if found {
                r.class_above.to_string()
            } else {
                String::new()
            },
            r.crossing.name().to_string(),
            r.bisections.to_string(),
        ]);
        w.write_record(&rec).expect("writing to memory");
    }
    write_atomic(
        &out.join("critical.csv"),
        &w.into_inner().expect("writing to memory"),
    )?;
    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).map_err(|e| Error::io("cannot create", &figures, e))?;
    let edges = spec.model.build().map(|m| m.edges()).unwrap_or_default();
    let drawn = figure::critical_figure(&rows, column.as_deref(), &edges, name, &figures)?;
    let found = rows
        .iter()
        .filter(|r| r.crossing == Crossing::Found)
        .count();
    let summary = json!({
        "stepsweep": env!("CARGO_PKG_VERSION"),
        "name": name,
        "spec": spec,
        "backend": eval.backend_name,
        "precision": eval.precision.name(),
        "rtol": rtol,
        "crossing": "the first step size, going up the spec's grid from its smallest, at which the start stops reaching the class it reaches there; bisected between that grid step size and the one below. Larger step sizes may reach the class again, and are not reported.",
        "outcomes": outcome_labels(spec, opts.criterion),
        "starts": rows.len(),
        "found": found,
        "no_minimum": rows.iter().filter(|r| r.crossing == Crossing::NoMinimum).count(),
        "beyond_grid": rows.iter().filter(|r| r.crossing == Crossing::BeyondGrid).count(),
        "trajectories": eval.trajectories,
        "seconds": elapsed,
        "figures": drawn.iter().map(|p| format!("figures/{}", p.file_name().unwrap_or_default().to_string_lossy())).collect::<Vec<_>>(),
    });
    write_atomic(
        &out.join("critical.json"),
        serde_json::to_string_pretty(&summary)
            .expect("JSON of plain data")
            .as_bytes(),
    )?;
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}: critical step sizes</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}</style></head><body>\n\
         <h1>{0}: critical step sizes</h1>\n\
         <p>{1} starts, {2} with a critical step size found to relative tolerance {3:e}, from {4} trajectories in {5:.2} s on {6} ({7}).</p>\n\
         <p>Which crossing: {8}</p>\n<p><img src=\"figures/critical.png\" alt=\"critical step sizes\"></p>\n</body></html>\n",
        crate::labels::html_escape(name),
        rows.len(),
        found,
        rtol,
        eval.trajectories,
        elapsed,
        crate::labels::html_escape(&eval.backend_name),
        eval.precision.name(),
        summary["crossing"].as_str().unwrap_or("")
    );
    write_atomic(&out.join("report.html"), html.as_bytes())?;
    Ok(Finished {
        out: out.to_path_buf(),
        trajectories: eval.trajectories,
        dense_trajectories: 0,
        boundary_boxes: 0,
        dimension: None,
        seconds: elapsed,
        lines: vec![format!(
            "critical step sizes of {} starts: {} found to relative tolerance {rtol:e}, {} with no minimum at the smallest step size, {} beyond the grid; {} trajectories in {:.2} s on {}",
            rows.len(),
            found,
            summary["no_minimum"],
            summary["beyond_grid"],
            eval.trajectories,
            elapsed,
            eval.backend_name
        )],
    })
}
