//! What a claim predicts, and how a finished sweep is judged against it. Each
//! kind is worded in the sweep's own terms (step sizes, outcome counts,
//! minimizers, metric and bound), so a model's claims are entries, not code.

use crate::aggregate::{wilson, CellStats};
use crate::runner::SweepReport;

#[derive(Clone, Debug, PartialEq)]
pub enum Prediction {
    /// GD converges (to minimizer `minimizer`, ascending in x, or to anything
    /// when None) only at step sizes up to `threshold`. Measured: the largest
    /// swept δ where some trajectory converged there, and the next swept δ;
    /// the prediction holds if the threshold lies between them.
    ConvergesOnlyUpTo {
        minimizer: Option<usize>,
        threshold: f64,
    },
    /// At `step_size`, every converged trajectory ends at `minimizer`.
    OnlyMinimizer { step_size: f64, minimizer: usize },
    /// No converged trajectory anywhere in the sweep has its metric above the bound.
    MetricWithinBound,
    /// Near a minimizer past its threshold, the orbit's period at each step
    /// size: Some(p) when most trajectories oscillate with period p, None when
    /// most stay bounded but undecided (chaos; a rare start may still land on
    /// a periodic window, as in the logistic map).
    Periods { expected: Vec<(f64, Option<u32>)> },
    /// Fits (trajectories converged to a minimum) happen only up to each
    /// cell's step_size_max: some cell at δ ≥ `below`·δ_max has a fit, and no
    /// cell at δ ≥ `above`·δ_max has one (which the sweep must reach).
    FitEdge { below: f64, above: f64 },
    /// At `step_size`, some trajectories end in an orbit, all of period
    /// `period`, and none reaches a fit.
    OrbitInstead { step_size: f64, period: u32 },
    /// Judged on a boundary run of the preset's plane rather than a sweep
    /// (see `judge_boundary`): the boundary is the smooth curve of each
    /// axis value's `step_size_max`, so its box-counting dimension is 1
    /// within its 95% interval and every boundary box lies within one
    /// lattice cell of the curve. `depth` and `quick_depth` refine the
    /// preset's plane from 16 boxes per axis.
    SmoothBoundary { depth: u32, quick_depth: u32 },
}

/// A claim's outcome: what was predicted, what was measured, and whether they agree.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub predicted: String,
    pub measured: String,
    pub pass: bool,
}

fn num(v: f64) -> String {
    crate::output::figures::canvas::tick_label(v)
}

/// "p [lo, hi]" with three decimals.
fn share(count: u64, n: u64) -> String {
    let (p, lo, hi) = wilson(count, n);
    format!("{p:.3} [{lo:.3}, {hi:.3}]")
}

/// Cells summed over any second axis, ascending in δ.
fn by_step(report: &SweepReport) -> Vec<(f64, CellStats)> {
    let mut out: Vec<(f64, CellStats)> = Vec::new();
    for (cell, stats) in report.sweep.cells.iter().zip(&report.cells) {
        match out.iter_mut().find(|(d, _)| *d == cell.step_size) {
            Some((_, s)) => s.merge(stats),
            None => out.push((cell.step_size, stats.clone())),
        }
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

fn at_step(report: &SweepReport, step_size: f64) -> Option<CellStats> {
    by_step(report)
        .into_iter()
        .find(|(d, _)| (d - step_size).abs() <= 1e-12 * step_size.abs())
        .map(|(_, s)| s)
}

fn target_name(report: &SweepReport, minimizer: Option<usize>) -> String {
    match minimizer {
        Some(k) => match report.sweep.cells[0].model.minimizers().get(k) {
            Some(m) => format!("x = {}", num(m.x)),
            None => format!("minimizer {k}"),
        },
        None => "a minimum".into(),
    }
}

impl Prediction {
    pub fn judge(&self, report: &SweepReport) -> Verdict {
        match self {
            Prediction::ConvergesOnlyUpTo {
                minimizer,
                threshold,
            } => converges_only_up_to(report, *minimizer, *threshold),
            Prediction::OnlyMinimizer {
                step_size,
                minimizer,
            } => only_minimizer(report, *step_size, *minimizer),
            Prediction::MetricWithinBound => metric_within_bound(report),
            Prediction::Periods { expected } => periods(report, expected),
            Prediction::FitEdge { below, above } => fit_edge(report, *below, *above),
            Prediction::OrbitInstead { step_size, period } => {
                orbit_instead(report, *step_size, *period)
            }
            Prediction::SmoothBoundary { .. } => Verdict {
                predicted: "a boundary of dimension 1".into(),
                measured: "this claim is judged on a boundary run, not on a sweep".into(),
                pass: false,
            },
        }
    }

    /// The refinement depth a boundary claim runs at, where it is one.
    pub fn boundary_depth(&self, quick: bool) -> Option<u32> {
        match self {
            Prediction::SmoothBoundary { depth, quick_depth } => {
                Some(if quick { *quick_depth } else { *depth })
            }
            _ => None,
        }
    }
}

/// `SmoothBoundary`'s verdict on the finished boundary run in `dir`.
pub fn judge_boundary(spec: &crate::spec::Spec, dir: &std::path::Path) -> Verdict {
    let predicted = "the boundary is the curve δ_max of the second axis: dimension 1 within its 95% interval, every boundary box within one cell of the curve".to_string();
    let fail = |measured: String| Verdict {
        predicted: predicted.clone(),
        measured,
        pass: false,
    };
    let summary: serde_json::Value = match std::fs::read_to_string(dir.join("boundary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(v) => v,
        None => return fail(format!("{} has no boundary.json", dir.display())),
    };
    let d = &summary["dimension"];
    let (Some(est), Some(lo), Some(hi)) = (
        d["estimate"].as_f64(),
        d["interval_95"][0].as_f64(),
        d["interval_95"][1].as_f64(),
    ) else {
        return fail("too few boundary boxes for a dimension".into());
    };
    let plane = &summary["plane"];
    let (Some(size), Some(s_lo), Some(s_hi), Some(log)) = (
        plane["boxes_per_axis"].as_f64(),
        plane["step_size"]["lo"].as_f64(),
        plane["step_size"]["hi"].as_f64(),
        plane["step_size"]["log"].as_bool(),
    ) else {
        return fail("boundary.json has no plane".into());
    };
    let to_cell = |d: f64| {
        let f = |v: f64| if log { v.log10() } else { v };
        (f(d) - f(s_lo)) / (f(s_hi) - f(s_lo)) * size
    };
    let Some(param) = spec.axis.as_ref().map(|a| a.param.clone()) else {
        return fail("the preset has no second axis".into());
    };
    let column = spec.axis.as_ref().map(|a| a.column()).unwrap_or_default();
    let mut reader = match csv::Reader::from_path(dir.join("boundary.csv")) {
        Ok(r) => r,
        Err(e) => return fail(format!("boundary.csv cannot be read ({e})")),
    };
    let header = reader.headers().cloned().unwrap_or_default();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(ci), Some(ca), Some(cb)) = (
        col("step_index"),
        col(&format!("{column}_lo")),
        col(&format!("{column}_hi")),
    ) else {
        return fail("boundary.csv lacks its columns".into());
    };
    let step_size_max = |v: f64| {
        spec.with_param(&param, v)
            .ok()
            .and_then(|s| s.model.build().ok())
            .and_then(|m| m.step_size_max())
    };
    let (mut boxes, mut off) = (0u64, 0u64);
    for rec in reader.records().flatten() {
        let num = |c: usize| rec.get(c).and_then(|v| v.parse::<f64>().ok());
        let (Some(i), Some(a), Some(b)) = (num(ci), num(ca), num(cb)) else {
            continue;
        };
        boxes += 1;
        let cells: Vec<f64> = [a, b]
            .iter()
            .filter_map(|&v| step_size_max(v))
            .map(to_cell)
            .collect();
        let near = cells.len() == 2
            && cells[0].max(cells[1]) >= i - 1.0
            && cells[0].min(cells[1]) <= i + 2.0;
        if !near {
            off += 1;
        }
    }
    let contains = lo <= 1.0 && 1.0 <= hi;
    Verdict {
        predicted,
        measured: format!(
            "dimension {} (95% interval {} to {}); {off} of {boxes} boundary boxes beyond one cell of the curve",
            num(est),
            num(lo),
            num(hi)
        ),
        pass: contains && off == 0 && boxes > 0,
    }
}

fn converges_only_up_to(report: &SweepReport, minimizer: Option<usize>, threshold: f64) -> Verdict {
    let target = target_name(report, minimizer);
    let reached = |s: &CellStats| match minimizer {
        Some(k) => s.converged_min.get(k).copied().unwrap_or(0),
        // Convergence at a minimum; a stall at a saddle is not what the theory bounds.
        None => s.converged - s.converged_other,
    };
    let cells = by_step(report);
    let predicted = format!("reaches {target} only for δ ≤ {}", num(threshold));
    let Some(last) = cells.iter().rposition(|(_, s)| reached(s) > 0) else {
        return Verdict {
            predicted,
            measured: format!("no trajectory reached {target} at any swept δ"),
            pass: false,
        };
    };
    let (last_step, last_stats) = &cells[last];
    let beyond: u64 = cells[last + 1..].iter().map(|(_, s)| s.trajectories).sum();
    let mut measured = format!(
        "last δ reaching {target}: {} (P = {})",
        num(*last_step),
        share(reached(last_stats), last_stats.trajectories)
    );
    let slack = 1e-9 * threshold.abs();
    let pass = match cells.get(last + 1) {
        Some((next, _)) => {
            let (_, _, hi) = wilson(0, beyond);
            measured.push_str(&format!(
                "; none of {beyond} beyond it (P ≤ {hi:.1e}); cut-off in ({}, {}]",
                num(*last_step),
                num(*next)
            ));
            *last_step <= threshold + slack && threshold <= *next + slack
        }
        None => {
            measured.push_str("; the sweep ends there, so the cut-off is not bracketed");
            false
        }
    };
    Verdict {
        predicted,
        measured,
        pass,
    }
}

fn only_minimizer(report: &SweepReport, step_size: f64, minimizer: usize) -> Verdict {
    let target = target_name(report, Some(minimizer));
    let predicted = format!(
        "at δ = {}, every converged trajectory ends at {target}",
        num(step_size)
    );
    let Some(s) = at_step(report, step_size) else {
        return Verdict {
            predicted,
            measured: format!("δ = {} was not swept", num(step_size)),
            pass: false,
        };
    };
    let at = s.converged_min.get(minimizer).copied().unwrap_or(0);
    Verdict {
        predicted,
        measured: format!(
            "{at} of {} converged trajectories at {target} (share {}); {} of {} trajectories converged",
            s.converged,
            share(at, s.converged),
            s.converged,
            s.trajectories
        ),
        pass: s.converged > 0 && at == s.converged,
    }
}

fn metric_within_bound(report: &SweepReport) -> Verdict {
    let theory = report.sweep.cells[0].model.theory();
    let bound = theory["bound"].as_str().unwrap_or("metric <= bound");
    let converged: u64 = report.cells.iter().map(|s| s.converged).sum();
    let violations: u64 = report.cells.iter().map(|s| s.violations).sum();
    let ratio = report
        .sweep
        .cells
        .iter()
        .zip(&report.cells)
        .filter_map(|(c, s)| s.metric_max.map(|m| m / c.bound()))
        .reduce(f64::max);
    let (_, _, hi) = wilson(violations, converged);
    // Under an optimizer with momentum the theorem holds at its effective
    // step size (see `crate::optimizer`).
    let optimizer = report.sweep.cells[0].optimizer;
    let bound = if optimizer.kind.has_velocity() {
        format!(
            "{} with δ_eff = {}·δ ({}, β = {})",
            bound.replace("step_size", "δ_eff"),
            num(optimizer.step_scale()),
            optimizer.kind.name(),
            num(optimizer.beta)
        )
    } else {
        bound.replace("step_size", "δ")
    };
    Verdict {
        predicted: format!("{} for every converged trajectory", bound.replace("<=", "≤")),
        measured: format!(
            "{violations} violations among {converged} converged trajectories (rate ≤ {hi:.1e}); largest metric/bound {}",
            ratio.map_or("-".into(), |r| format!("{r:.4}"))
        ),
        pass: converged > 0 && violations == 0,
    }
}

fn periods(report: &SweepReport, expected: &[(f64, Option<u32>)]) -> Verdict {
    let mut predicted = Vec::new();
    let mut measured = Vec::new();
    let mut pass = !expected.is_empty();
    for &(step_size, period) in expected {
        predicted.push(match period {
            Some(p) => format!("period {p} at δ = {}", num(step_size)),
            None => format!("aperiodic at δ = {}", num(step_size)),
        });
        let Some(s) = at_step(report, step_size) else {
            measured.push(format!("δ = {} not swept", num(step_size)));
            pass = false;
            continue;
        };
        match period {
            Some(p) => {
                let with_p = s.periods.get(&p).copied().unwrap_or(0);
                measured.push(format!(
                    "δ = {}: period {p} in {} (modal period {})",
                    num(step_size),
                    share(with_p, s.trajectories),
                    s.modal_period()
                ));
                pass &= 2 * with_p > s.trajectories;
            }
            None => {
                measured.push(format!(
                    "δ = {}: periodic in {}, undecided in {}",
                    num(step_size),
                    share(s.oscillating, s.trajectories),
                    share(s.undecided, s.trajectories)
                ));
                pass &= 2 * s.undecided > s.trajectories;
            }
        }
    }
    Verdict {
        predicted: predicted.join("; "),
        measured: measured.join("; "),
        pass,
    }
}

/// Trajectories that converged to a minimum the bound speaks of.
fn fits(s: &CellStats) -> u64 {
    s.converged - s.converged_other
}

fn fit_edge(report: &SweepReport, below: f64, above: f64) -> Verdict {
    let ratio = |c: &crate::sweep::Cell| c.step_size_max().map_or(f64::NAN, |m| c.step_size / m);
    let cells: Vec<(f64, &CellStats)> = report
        .sweep
        .cells
        .iter()
        .zip(&report.cells)
        .map(|(c, s)| (ratio(c), s))
        .collect();
    let largest = cells
        .iter()
        .filter(|(_, s)| fits(s) > 0)
        .map(|(r, _)| *r)
        .reduce(f64::max);
    let beyond: Vec<&(f64, &CellStats)> = cells.iter().filter(|(r, _)| *r >= above).collect();
    let (tried, fitted) = beyond
        .iter()
        .fold((0, 0), |(t, f), (_, s)| (t + s.trajectories, f + fits(s)));
    let near: Vec<&(f64, &CellStats)> = cells
        .iter()
        .filter(|(r, _)| *r >= below && *r < 1.0)
        .collect();
    let (near_tried, near_fitted) = near
        .iter()
        .fold((0, 0), |(t, f), (_, s)| (t + s.trajectories, f + fits(s)));
    let (_, _, hi) = wilson(0, tried);
    Verdict {
        predicted: format!(
            "fits at some δ in [{below}, 1)·δ_max, none at δ ≥ {above}·δ_max"
        ),
        measured: format!(
            "largest δ/δ_max with a fit {}; fits in {} at δ/δ_max in [{below}, 1); {fitted} fits among {tried} trajectories at δ ≥ {above}·δ_max (P ≤ {hi:.1e})",
            largest.map_or("-".into(), |r| format!("{r:.4}")),
            share(near_fitted, near_tried),
        ),
        pass: near_fitted > 0 && tried > 0 && fitted == 0,
    }
}

fn orbit_instead(report: &SweepReport, step_size: f64, period: u32) -> Verdict {
    let predicted = format!(
        "at δ = {}, orbits of period {period} and no fit",
        num(step_size)
    );
    let Some(s) = at_step(report, step_size) else {
        return Verdict {
            predicted,
            measured: format!("δ = {} was not swept", num(step_size)),
            pass: false,
        };
    };
    let with_p = s.periods.get(&period).copied().unwrap_or(0);
    Verdict {
        predicted,
        measured: format!(
            "period {period} in {} of {} trajectories (other periods {}), fits {}, undecided {}, converged elsewhere {}",
            with_p,
            s.trajectories,
            s.oscillating - with_p,
            fits(&s),
            s.undecided,
            s.converged_other
        ),
        pass: with_p > 0 && with_p == s.oscillating && fits(&s) == 0,
    }
}
