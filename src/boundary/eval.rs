//! The outcome at a point of a plane: its trajectories run through a
//! backend, in batches of points that never mix models, and each point's
//! replicates folded into one verdict.

use std::collections::HashMap;

use crate::backend::{self, Backend};
use crate::error::Result;
use crate::models::Assessment;
use crate::real::Precision;
use crate::spec::Spec;
use crate::stopping::{Outcome, StopRule};
use crate::sweep::{Point, Setting, Sweep};

/// Where most of a point's trajectories went, for the image's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fate {
    Converged,
    Diverged,
    /// Oscillating, or undecided at the iteration limit.
    Neither,
}

/// A point's verdict.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// 0: the point does not converge to a minimum (fewer than half its
    /// replicates do); 1 + k: it converges to a minimum, where k numbers the
    /// family's minimizers (0 for families whose minima are not numbered),
    /// the most common among its replicates.
    pub class: u8,
    pub fate: Fate,
    /// Mean log10 of the iterations the replicates of its fate took (to
    /// converge or to diverge); NaN for `Neither`.
    pub speed: f32,
    /// How many replicates converged to a minimum.
    pub converged: u32,
}

/// What counts as a point's success.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// Converging to a minimum, and to which of the family's minimizers.
    #[default]
    Minimum,
    /// Not diverging (converging, orbiting, or still training at
    /// `max_iters`): the trainability the fractal-boundary study colours.
    Bounded,
}

/// The class one trajectory earns: 0 unless it succeeds by `criterion`.
fn class_of(criterion: Criterion, outcome: Outcome, assessment: Option<&Assessment>) -> u8 {
    match criterion {
        Criterion::Bounded => u8::from(outcome != Outcome::Diverged),
        Criterion::Minimum => match (outcome, assessment) {
            (Outcome::Converged, Some(a)) if a.at_minimum => {
                1 + a.minimizer.map_or(0, |k| k.min(250) as u8)
            }
            _ => 0,
        },
    }
}

/// Runs the points of a plane on one backend, reusing its device and
/// compiled kernels from batch to batch.
pub struct Evaluator {
    spec: Spec,
    layer: Option<usize>,
    settings: HashMap<Option<u64>, Setting>,
    backend: Backend,
    rule: StopRule,
    pub precision: Precision,
    /// Trajectories per backend call.
    chunk: u64,
    /// Whether the second axis changes the model, so a batch must hold one axis value.
    changes_model: bool,
    pub criterion: Criterion,
    /// Trajectories run so far, and their gradient steps.
    pub trajectories: u64,
    pub steps: u64,
    pub backend_name: String,
    pub note: Option<String>,
}

/// Default trajectories per backend call: enough to fill every core or the
/// GPU, few enough that the journal is saved often.
const CPU_CHUNK: u64 = 1 << 14;
const GPU_CHUNK: u64 = 1 << 20;

impl Evaluator {
    /// `spec.trajectories` is the replicates per point.
    pub fn new(spec: &Spec, layer: Option<usize>, chunk: Option<u64>) -> Result<Evaluator> {
        Evaluator::with_criterion(spec, layer, chunk, Criterion::Minimum)
    }

    /// `new`, judging points by `criterion`.
    pub fn with_criterion(
        spec: &Spec,
        layer: Option<usize>,
        chunk: Option<u64>,
        criterion: Criterion,
    ) -> Result<Evaluator> {
        let backend::Selection {
            gpu,
            precision,
            note,
        } = backend::select(spec.backend, spec.precision)?;
        // A first sweep of one point builds the backend; later batches refit it.
        let axis_value = spec
            .axis
            .as_ref()
            .map(|a| a.axis_values().resolve("axis"))
            .transpose()?
            .map(|v| v[0]);
        let first = Sweep::at_points(
            spec,
            &[Point {
                step_size: spec.steps.resolve("steps")?[0],
                axis_value,
                stream: 0,
            }],
            layer,
            |v| Setting::of(spec, layer, v),
        )?;
        let rule = first.rule(precision);
        let backend = Backend::new(&first, gpu, precision, &rule)?;
        let is_gpu = matches!(backend, Backend::Gpu { .. });
        let (name, adapter) = backend.describe();
        Ok(Evaluator {
            spec: spec.clone(),
            layer,
            settings: HashMap::new(),
            rule,
            precision,
            chunk: chunk.unwrap_or(if is_gpu { GPU_CHUNK } else { CPU_CHUNK }),
            changes_model: spec
                .axis
                .as_ref()
                .is_some_and(|a| a.param.starts_with("model.")),
            backend,
            criterion,
            trajectories: 0,
            steps: 0,
            backend_name: match adapter {
                Some(a) => format!("{name} ({a})"),
                None => name,
            },
            note,
        })
    }

    /// Whether the trajectories run on a GPU adapter that is the CPU
    /// emulating one (such as Mesa's lavapipe).
    pub fn on_cpu_adapter(&self) -> bool {
        matches!(&self.backend, Backend::Gpu { ctx, .. } if !crate::backend::gpu::is_hardware(&ctx.info))
    }

    fn setting(&mut self, value: Option<f64>) -> Result<Setting> {
        let key = value.map(f64::to_bits);
        if let Some(s) = self.settings.get(&key) {
            return Ok(s.clone());
        }
        let s = Setting::of(&self.spec, self.layer, value)?;
        self.settings.insert(key, s.clone());
        Ok(s)
    }

    /// Points per batch, so that a batch is at most one chunk of trajectories.
    pub fn batch_points(&self) -> usize {
        (self.chunk / self.spec.trajectories.max(1)).max(1) as usize
    }

    /// The verdict of every point, in order. Points are run in batches of
    /// one model, each of at most a chunk of trajectories.
    pub fn evaluate(&mut self, points: &[Point]) -> Result<Vec<Verdict>> {
        let mut order: Vec<usize> = (0..points.len()).collect();
        if self.changes_model {
            order.sort_by(|&a, &b| {
                points[a]
                    .axis_value
                    .unwrap_or(0.0)
                    .total_cmp(&points[b].axis_value.unwrap_or(0.0))
            });
        }
        let mut out = vec![None; points.len()];
        let per = self.batch_points();
        let mut start = 0;
        while start < order.len() {
            let mut end = (start + per).min(order.len());
            if self.changes_model {
                let v = points[order[start]].axis_value.map(f64::to_bits);
                end = start
                    + order[start..end]
                        .iter()
                        .take_while(|&&i| points[i].axis_value.map(f64::to_bits) == v)
                        .count();
            }
            let batch: Vec<Point> = order[start..end].iter().map(|&i| points[i]).collect();
            for (&i, v) in order[start..end].iter().zip(self.run_batch(&batch)?) {
                out[i] = Some(v);
            }
            start = end;
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every point ran"))
            .collect())
    }

    fn run_batch(&mut self, points: &[Point]) -> Result<Vec<Verdict>> {
        let mut settings = Vec::with_capacity(points.len());
        for p in points {
            settings.push(self.setting(p.axis_value)?);
        }
        let mut given = settings.into_iter();
        let sweep = Sweep::at_points(&self.spec, points, self.layer, |_| {
            Ok(given.next().expect("one setting per point"))
        })?;
        self.backend.refit(&sweep, &self.rule);
        let total = sweep.total();
        let result = self.backend.run(&sweep, &self.rule, 0..total, |_| {})?;
        let replicates = sweep.trajectories_per_cell;
        let dim = result.dim;
        let mut verdicts = Vec::with_capacity(points.len());
        for (c, cell) in sweep.cells.iter().enumerate() {
            let mut classes = [0u32; 256];
            let (mut converged, mut diverged, mut neither) = (0u32, 0u32, 0u32);
            let (mut log_converged, mut log_diverged) = (0.0f64, 0.0f64);
            for r in 0..replicates {
                let id = c as u64 * replicates + r;
                let end = &result.ends[id as usize];
                let theta = &result.theta[id as usize * dim..][..dim];
                self.steps += end.iterations;
                let assessment = (self.criterion == Criterion::Minimum
                    && end.outcome == Outcome::Converged
                    && theta.iter().all(|t| t.is_finite()))
                .then(|| cell.assess(theta, r));
                let class = class_of(self.criterion, end.outcome, assessment.as_ref());
                classes[class as usize] += 1;
                let log_iters = (end.iterations.max(1) as f64).log10();
                match end.outcome {
                    Outcome::Converged => {
                        converged += 1;
                        log_converged += log_iters;
                    }
                    Outcome::Diverged => {
                        diverged += 1;
                        log_diverged += log_iters;
                    }
                    _ => neither += 1,
                }
            }
            let at_minimum = replicates as u32 - classes[0];
            // The most common minimum, the first on ties; none unless at
            // least half the replicates reached a minimum.
            let class = if 2 * u64::from(at_minimum) >= replicates {
                (1..256)
                    .max_by_key(|&k| (classes[k], std::cmp::Reverse(k)))
                    .unwrap_or(0) as u8
            } else {
                0
            };
            let (fate, speed) = if converged >= diverged && converged >= neither {
                (Fate::Converged, log_converged / f64::from(converged.max(1)))
            } else if diverged > converged && diverged >= neither {
                (Fate::Diverged, log_diverged / f64::from(diverged))
            } else {
                (Fate::Neither, f64::NAN)
            };
            verdicts.push(Verdict {
                class,
                fate,
                speed: speed as f32,
                converged: at_minimum,
            });
        }
        self.trajectories += total;
        Ok(verdicts)
    }
}
