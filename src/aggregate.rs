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
    /// Σ log10(iterations) over converged and over diverged trajectories,
    /// in units of 2^-32 (`LOG_UNIT`): integers, so the sums are exact and
    /// their order does not matter.
    #[serde(default)]
    pub log10_iterations_converged: u128,
    #[serde(default)]
    pub log10_iterations_diverged: u128,
    /// Final losses by bin of `LOSS_BINS_PER_DECADE`-th of a decade (see
    /// `loss_bin`): enough for the median, in little memory where the
    /// losses of a cell span few decades.
    #[serde(default)]
    pub loss_bins: BTreeMap<i32, u64>,
}

/// The unit of the log10 sums of iterations.
pub const LOG_UNIT: f64 = 4_294_967_296.0;

/// Bins of the final-loss histogram per decade: a median is known to within
/// half a bin, a factor 10^(1/200), 1.2%.
pub const LOSS_BINS_PER_DECADE: f64 = 100.0;

/// The bin of a final loss: ⌊100·log10(loss)⌋; `i32::MIN` for a loss at or
/// below zero (a fit, or rounding just below one), `i32::MAX` for a loss that
/// is not finite (a divergence).
pub fn loss_bin(loss: f64) -> i32 {
    if loss.is_nan() || loss == f64::INFINITY {
        i32::MAX
    } else if loss <= 0.0 {
        i32::MIN
    } else {
        // log10 of a positive f64 is within ±324, so the bin fits an i32.
        (loss.log10() * LOSS_BINS_PER_DECADE).floor() as i32
    }
}

/// A bin's representative loss: its geometric centre, 0 or +∞.
pub fn bin_loss(bin: i32) -> f64 {
    match bin {
        i32::MIN => 0.0,
        i32::MAX => f64::INFINITY,
        b => 10f64.powf((f64::from(b) + 0.5) / LOSS_BINS_PER_DECADE),
    }
}

/// log10(iterations) in `LOG_UNIT`s.
fn log_units(iterations: u64) -> u128 {
    ((iterations.max(1) as f64).log10() * LOG_UNIT).round() as u128
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

    /// Counts one trajectory: its end, its assessment where it has one, the
    /// cell's bound, and its final loss f(θ).
    pub fn add(
        &mut self,
        end: &TrajectoryEnd,
        assessment: Option<&Assessment>,
        bound: f64,
        loss: f64,
    ) {
        self.trajectories += 1;
        self.iterations_sum += end.iterations;
        *self.loss_bins.entry(loss_bin(loss)).or_default() += 1;
        match end.outcome {
            Outcome::Converged => self.log10_iterations_converged += log_units(end.iterations),
            Outcome::Diverged => self.log10_iterations_diverged += log_units(end.iterations),
            _ => {}
        }
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
        self.log10_iterations_converged += other.log10_iterations_converged;
        self.log10_iterations_diverged += other.log10_iterations_diverged;
        for (b, n) in &other.loss_bins {
            *self.loss_bins.entry(*b).or_default() += n;
        }
    }

    /// The mean log10 of the iterations converged trajectories took to be
    /// seen converged; NaN where none converged.
    pub fn log10_iterations_converged_mean(&self) -> f64 {
        mean_units(self.log10_iterations_converged, self.converged)
    }

    /// The mean log10 of the iterations diverged trajectories took to be
    /// seen diverged; NaN where none diverged.
    pub fn log10_iterations_diverged_mean(&self) -> f64 {
        mean_units(self.log10_iterations_diverged, self.diverged)
    }

    /// The median final loss over every trajectory of the cell (diverged
    /// ones count as +∞), to within half a bin; NaN for an empty cell or
    /// one recorded before the histogram existed.
    pub fn loss_median(&self) -> f64 {
        let total: u64 = self.loss_bins.values().sum();
        if total == 0 {
            return f64::NAN;
        }
        // The lower median: the ⌈total/2⌉-th smallest.
        let rank = total.div_ceil(2);
        let mut seen = 0;
        for (&b, &n) in &self.loss_bins {
            seen += n;
            if seen >= rank {
                return bin_loss(b);
            }
        }
        f64::NAN
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

/// A trajectory's final loss: its assessment's where it has one (the same
/// number, already computed), else f(θ) at its final iterate.
pub fn final_loss(
    cell: &crate::sweep::Cell,
    assessment: Option<&Assessment>,
    theta: &[f64],
) -> f64 {
    assessment.map_or_else(|| cell.model.loss(theta), |a| a.loss)
}

fn mean_units(sum: u128, count: u64) -> f64 {
    if count == 0 {
        f64::NAN
    } else {
        sum as f64 / LOG_UNIT / count as f64
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
        s.add(&end, Some(&a(9.99)), 10.0, 0.0);
        s.add(&end, Some(&a(10.2)), 10.0, 0.0);
        assert_eq!((s.violations, s.converged_min[1]), (1, 2));
        assert_eq!(s.metric_max, Some(10.2));
    }

    /// The readouts: the mean log10 iterations of converged and of diverged
    /// trajectories, and the median final loss (to within half a bin, with
    /// zero and +∞ losses in place), come out the same whatever order and
    /// split the trajectories are counted in, and survive the journal.
    #[test]
    fn readouts_do_not_depend_on_order_or_split() {
        let end = |outcome, iterations| TrajectoryEnd {
            outcome,
            period: 0,
            iterations,
        };
        let items = [
            (end(Outcome::Converged, 64), 1e-3),
            (end(Outcome::Converged, 640), 0.0),
            (end(Outcome::Diverged, 128), f64::INFINITY),
            (end(Outcome::Undecided, 1000), 0.5),
            (end(Outcome::Diverged, 64), f64::NAN),
            (end(Outcome::Converged, 6400), 2e-3),
            (end(Outcome::Undecided, 1000), 0.25),
        ];
        let mut whole = CellStats::new(0);
        for (e, loss) in &items {
            whole.add(e, None, 1.0, *loss);
        }
        let (mut a, mut b) = (CellStats::new(0), CellStats::new(0));
        for (i, (e, loss)) in items.iter().enumerate().rev() {
            if i % 2 == 0 { &mut a } else { &mut b }.add(e, None, 1.0, *loss);
        }
        b.merge(&a);
        assert_eq!(b, whole);
        let converged = (64f64.log10() + 640f64.log10() + 6400f64.log10()) / 3.0;
        assert!((whole.log10_iterations_converged_mean() - converged).abs() < 1e-9);
        let diverged = (128f64.log10() + 64f64.log10()) / 2.0;
        assert!((whole.log10_iterations_diverged_mean() - diverged).abs() < 1e-9);
        // Sorted: 0, 1e-3, 2e-3, 0.25, 0.5, ∞, ∞: the median is 0.25.
        let median = whole.loss_median();
        assert!((median / 0.25 - 1.0).abs() < 0.012, "{median}");
        let json = serde_json::to_string(&whole).unwrap();
        assert_eq!(serde_json::from_str::<CellStats>(&json).unwrap(), whole);
        assert!(CellStats::new(0).loss_median().is_nan());
        assert!(CellStats::new(0).log10_iterations_diverged_mean().is_nan());
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
