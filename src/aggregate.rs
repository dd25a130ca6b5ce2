//! Per-cell streaming statistics. Every field is a count, a sum of integers or
//! a maximum, so the result does not depend on the order trajectories arrive
//! in: the same seed gives the same cells.csv whatever the chunk size, thread
//! count or backend ordering.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::Assessment;
use crate::real::Precision;
use crate::stopping::{Outcome, StopRule, TrajectoryEnd};
use crate::sweep::Sweep;

/// Relative slack before a metric above its bound counts as a violation; it
/// absorbs the rounding of an f32 final iterate.
pub const VIOLATION_REL_TOL: f64 = 1e-3;

/// Serializable losslessly (journals and shard files hold partial aggregates):
/// counts are exact JSON integers and the maxima go through `exact_f64`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CellStats {
    pub trajectories: u64,
    pub converged: u64,
    pub diverged: u64,
    pub oscillating: u64,
    pub undecided: u64,
    /// Converged trajectories per minimizer (the polynomial).
    pub converged_min: Vec<u64>,
    /// Converged, but not at a minimum the bound speaks of (a saddle or a maximum).
    pub converged_other: u64,
    #[serde(with = "exact_f64")]
    pub metric_max: Option<f64>,
    #[serde(with = "exact_f64")]
    pub sharpness_max: Option<f64>,
    /// The largest spectral radius of the estimate (deep-linear), which the
    /// bound on σ_max also bounds.
    #[serde(with = "exact_f64", default)]
    pub spectral_radius_max: Option<f64>,
    pub violations: u64,
    pub iterations_sum: u64,
    pub periods: BTreeMap<u32, u64>,
    /// f32 verdicts rerun in f64 (`recheck`), and how many f64 overturned;
    /// the counts above hold the f64 verdicts of these.
    #[serde(default)]
    pub rechecked: u64,
    #[serde(default)]
    pub overturned: u64,
}

/// An optional f64 as the string of its shortest round-trip decimal form:
/// Rust's formatting and parsing of f64 are exact, where JSON numbers would
/// lose NaN and infinities and may be parsed to a neighbouring float.
mod exact_f64 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) => s.serialize_some(&format!("{x:?}")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                text.parse::<f64>()
                    .map_err(|_| D::Error::custom(format!("'{text}' is not a number")))
            })
            .transpose()
    }
}

/// Keeps the largest value seen; NaN (a quantity not computed for this
/// trajectory) is skipped.
fn fold_max(slot: &mut Option<f64>, v: f64) {
    if !v.is_nan() {
        *slot = Some(slot.map_or(v, |m| m.max(v)));
    }
}

impl CellStats {
    pub fn new(minimizers: usize) -> Self {
        CellStats {
            converged_min: vec![0; minimizers],
            ..Default::default()
        }
    }

    pub fn add(&mut self, end: &TrajectoryEnd, assessment: Option<&Assessment>, bound: f64) {
        self.trajectories += 1;
        self.iterations_sum += end.iterations;
        match end.outcome {
            Outcome::Converged => {
                self.converged += 1;
                match assessment {
                    Some(a) if a.at_minimum => {
                        if let Some(i) = a.minimizer {
                            self.converged_min[i] += 1;
                        }
                    }
                    _ => {
                        self.converged_other += 1;
                        return;
                    }
                }
                if let Some(a) = assessment {
                    fold_max(&mut self.metric_max, a.metric);
                    fold_max(&mut self.sharpness_max, a.sharpness);
                    fold_max(&mut self.spectral_radius_max, a.spectral_radius);
                    if a.metric > bound * (1.0 + VIOLATION_REL_TOL) {
                        self.violations += 1;
                    }
                }
            }
            Outcome::Diverged => self.diverged += 1,
            Outcome::Oscillating => {
                self.oscillating += 1;
                *self.periods.entry(end.period).or_default() += 1;
            }
            Outcome::Undecided => self.undecided += 1,
        }
    }

    /// Adds another partial aggregate of the same cell.
    pub fn merge(&mut self, other: &CellStats) {
        self.trajectories += other.trajectories;
        self.converged += other.converged;
        self.diverged += other.diverged;
        self.oscillating += other.oscillating;
        self.undecided += other.undecided;
        for (a, b) in self.converged_min.iter_mut().zip(&other.converged_min) {
            *a += b;
        }
        self.converged_other += other.converged_other;
        if let Some(m) = other.metric_max {
            fold_max(&mut self.metric_max, m);
        }
        if let Some(s) = other.sharpness_max {
            fold_max(&mut self.sharpness_max, s);
        }
        if let Some(r) = other.spectral_radius_max {
            fold_max(&mut self.spectral_radius_max, r);
        }
        self.violations += other.violations;
        self.iterations_sum += other.iterations_sum;
        for (p, n) in &other.periods {
            *self.periods.entry(*p).or_default() += n;
        }
        self.rechecked += other.rechecked;
        self.overturned += other.overturned;
    }

    pub fn p_converged(&self) -> (f64, f64, f64) {
        wilson(self.converged, self.trajectories)
    }

    /// The most common period among oscillating trajectories (the smaller on ties), or 0.
    pub fn modal_period(&self) -> u32 {
        self.periods
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or(0, |(p, _)| *p)
    }

    pub fn iterations_mean(&self) -> f64 {
        if self.trajectories == 0 {
            0.0
        } else {
            self.iterations_sum as f64 / self.trajectories as f64
        }
    }
}

/// Whether a trajectory's final iterate is assessed: a converged one, or
/// every one where rows are written (`all`); never a non-finite iterate.
pub fn needs_assessment(end: &TrajectoryEnd, theta: &[f64], all: bool) -> bool {
    (end.outcome == Outcome::Converged || all) && theta.iter().all(|t| t.is_finite())
}

/// Part of a sweep's tally: the statistics of the consecutive cells from
/// `first_cell` on, and the gradient steps their trajectories took.
#[derive(Clone, Debug, PartialEq)]
pub struct PartialTally {
    pub first_cell: usize,
    pub cells: Vec<CellStats>,
    pub trajectory_steps: u64,
}

impl PartialTally {
    /// Adds another part over the same cells.
    pub fn merge(&mut self, other: &PartialTally) {
        debug_assert_eq!(
            (self.first_cell, self.cells.len()),
            (other.first_cell, other.cells.len())
        );
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.merge(b);
        }
        self.trajectory_steps += other.trajectory_steps;
    }
}

/// The estimate and 95% Wilson score interval of a binomial proportion.
pub fn wilson(successes: u64, n: u64) -> (f64, f64, f64) {
    if n == 0 {
        return (0.0, 0.0, 1.0);
    }
    const Z: f64 = 1.959_963_984_540_054;
    let n_f = n as f64;
    let p = successes as f64 / n_f;
    let z2 = Z * Z;
    let denom = 1.0 + z2 / n_f;
    let centre = (p + z2 / (2.0 * n_f)) / denom;
    let half = Z * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt() / denom;
    // At 0 or n successes the interval touches 0 or 1 exactly; rounding would
    // leave a 1e-18 residue there.
    let lo = if successes == 0 {
        0.0
    } else {
        (centre - half).max(0.0)
    };
    let hi = if successes == n {
        1.0
    } else {
        (centre + half).min(1.0)
    };
    (p, lo, hi)
}

pub struct SweepReport {
    pub name: String,
    pub sweep: Sweep,
    pub cells: Vec<CellStats>,
    pub backend: String,
    pub adapter: Option<String>,
    pub precision: Precision,
    pub rule: StopRule,
    pub seconds: f64,
    /// Gradient steps taken, summed over trajectories.
    pub trajectory_steps: u64,
    /// GPU kernel time from timestamp queries (this session's part of a
    /// resumed run), where the adapter has them.
    pub kernel_seconds: Option<f64>,
    /// Why `auto` chose what it chose, when it fell back.
    pub note: Option<String>,
}

impl SweepReport {
    /// Over every cell, the f32 verdicts rechecked in f64 and how many f64
    /// overturned; None for a run in f64, which has nothing to recheck.
    pub fn recheck_totals(&self) -> Option<(u64, u64)> {
        (self.precision == Precision::F32).then(|| {
            self.cells
                .iter()
                .fold((0, 0), |(r, o), c| (r + c.rechecked, o + c.overturned))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_reference_values() {
        // 10 of 100: the 95% Wilson interval is [0.0552, 0.1744].
        let (p, lo, hi) = wilson(10, 100);
        assert_eq!(p, 0.1);
        assert!(
            (lo - 0.05523).abs() < 1e-4 && (hi - 0.17437).abs() < 1e-4,
            "{lo} {hi}"
        );
        // 0 of 50: the lower end is 0 and the upper end 0.0713.
        let (_, lo, hi) = wilson(0, 50);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.07135).abs() < 1e-4, "{hi}");
    }

    #[test]
    fn a_metric_over_its_bound_is_a_violation() {
        let mut s = CellStats::new(2);
        let end = TrajectoryEnd {
            outcome: Outcome::Converged,
            period: 0,
            iterations: 10,
        };
        let a = |metric| Assessment {
            loss: 0.0,
            metric,
            sharpness: metric,
            spectral_radius: f64::NAN,
            minimizer: Some(1),
            at_minimum: true,
        };
        s.add(&end, Some(&a(9.99)), 10.0);
        s.add(&end, Some(&a(10.2)), 10.0);
        assert_eq!((s.violations, s.converged_min[1]), (1, 2));
        assert_eq!(s.metric_max, Some(10.2));
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let mut s = CellStats::new(2);
        s.trajectories = u64::MAX;
        s.metric_max = Some(0.1 + 0.2);
        s.sharpness_max = Some(f64::MIN_POSITIVE / 3.0);
        s.periods.insert(4, 7);
        let back: CellStats = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(
            back.sharpness_max.unwrap().to_bits(),
            s.sharpness_max.unwrap().to_bits()
        );
        s.metric_max = Some(f64::NAN);
        let back: CellStats = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert!(back.metric_max.unwrap().is_nan());
    }
}
