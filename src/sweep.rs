//! From a validated spec to cells, trajectory ids and chunks.
//!
//! Cell c holds trajectories c·T .. (c+1)·T − 1, where T is the trajectories per
//! cell. Cells are laid out second axis first, then step size:
//! c = axis_index · S + step_index, so that the cells sharing one model (one
//! axis value, when the axis is a model parameter) are contiguous and a chunk
//! never mixes models of different sizes. A trajectory's id keys its random
//! stream, so its initialization never depends on how the ids are chunked or
//! sharded.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::memory;
use crate::models::Model;
use crate::optimizer::{Optimizer, OptimizerKind};
use crate::real::Precision;
use crate::rng::TrajectoryRng;
use crate::spec::{InitSpec, Spec};
use crate::stopping::StopRule;

#[derive(Clone, Debug)]
pub struct Cell {
    pub index: usize,
    pub step_size: f64,
    pub axis_value: Option<f64>,
    pub init: InitSpec,
    pub model: Model,
    /// The optimizer, whose β the second axis may set.
    pub optimizer: Optimizer,
    /// A layer (0-based) whose step size is not `step_size` but this one:
    /// where the second axis is `steps.layerK`.
    pub layer_step: Option<(usize, f64)>,
}

impl Cell {
    /// The theorem's bound on the cell's metric: the family's bound at the
    /// optimizer's effective step size (see `crate::optimizer`); with
    /// per-layer step sizes, the optimizer's bound on the preconditioned
    /// sharpness λ_max(D^½HD^½), 2 for GD.
    pub fn bound(&self) -> f64 {
        if self.layer_step.is_some() {
            return 2.0 / self.optimizer.step_scale();
        }
        self.model
            .bound(self.optimizer.effective_step(self.step_size))
    }

    /// The largest step size of this cell's optimizer at which a trajectory
    /// can converge to a minimum, where the theory gives one (not with
    /// per-layer step sizes, where no one step size decides).
    pub fn step_size_max(&self) -> Option<f64> {
        if self.layer_step.is_some() {
            return None;
        }
        self.model
            .step_size_max()
            .map(|d| self.optimizer.step_for(d))
    }

    /// The step size of each layer (see `Family::layers`).
    pub fn layer_step_sizes(&self) -> Vec<f64> {
        let mut steps = vec![self.step_size; self.model.layers().len()];
        if let Some((layer, step)) = self.layer_step {
            steps[layer] = step;
        }
        steps
    }

    /// The step size of each parameter, where the layers' differ.
    pub fn parameter_step_sizes(&self) -> Option<Vec<f64>> {
        self.layer_step?;
        let steps = self.layer_step_sizes();
        Some(
            self.model
                .layer_of()
                .iter()
                .map(|&l| steps[l as usize])
                .collect(),
        )
    }

    /// The family's assessment of a final iterate; with per-layer step
    /// sizes the metric is the preconditioned sharpness, which the bound
    /// then speaks of.
    pub fn assess(&self, theta: &[f64], replicate: u64) -> crate::models::Assessment {
        let mut a = self.model.assess(theta, replicate);
        self.precondition(theta, &mut a);
        a
    }

    /// `assess` of many final iterates, in order, into `out`.
    pub fn assess_many<'a>(
        &self,
        items: impl Iterator<Item = (&'a [f64], u64)> + Clone,
        out: &mut Vec<crate::models::Assessment>,
    ) {
        let first = out.len();
        self.model.assess_many(items.clone(), out);
        if self.layer_step.is_some() {
            for ((theta, _), a) in items.zip(&mut out[first..]) {
                self.precondition(theta, a);
            }
        }
    }

    fn precondition(&self, theta: &[f64], a: &mut crate::models::Assessment) {
        if let Some(steps) = self.parameter_step_sizes() {
            if a.at_minimum && theta.iter().all(|t| t.is_finite()) {
                a.metric = crate::models::hessian::preconditioned_sharpness(
                    theta,
                    &steps,
                    self.model.gradient_f64(),
                );
            }
        }
    }

    /// The step sizes the figures mark for this cell's optimizer, named as
    /// GD's edge times the optimizer's factor ("(1+β)·2/f''(2)").
    pub fn edges(&self) -> Vec<crate::models::Edge> {
        if self.layer_step.is_some() {
            // No one step size decides where the layers' differ.
            return Vec::new();
        }
        let mut edges = self.model.edges();
        let factor = match self.optimizer.kind {
            OptimizerKind::Gd => return edges,
            OptimizerKind::Momentum => "(1+β)·",
            OptimizerKind::Nesterov => "(1+β)/(1+2β)·",
        };
        for e in &mut edges {
            e.step_size = self.optimizer.step_for(e.step_size);
            e.name = format!("{factor}{}", e.name);
            e.curve = e.curve.replace("δ = ", &format!("δ = {factor}"));
        }
        edges
    }
}

#[derive(Clone, Debug)]
pub struct Sweep {
    pub spec: Spec,
    pub steps: Vec<f64>,
    /// The second axis: its parameter and values.
    pub axis: Option<(String, Vec<f64>)>,
    pub cells: Vec<Cell>,
    pub trajectories_per_cell: u64,
    /// For a sweep over chosen points rather than a grid (`at_points`): the
    /// first random stream of each cell's replicates, so that a point draws
    /// the same starts whichever batch it is run in.
    pub streams: Option<Vec<u64>>,
}

/// One point of a plane sweep (see `Sweep::at_points`): a step size, the
/// second axis's value, and the stream of its first replicate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub step_size: f64,
    pub axis_value: Option<f64>,
    pub stream: u64,
}

/// What cells with one value of the second axis share: the initialization,
/// the model and the optimizer (the value may set any of them), built once.
#[derive(Clone, Debug)]
pub struct Setting {
    pub init: InitSpec,
    pub model: Model,
    pub optimizer: Optimizer,
}

impl Setting {
    /// The setting at `value` of the spec's second axis (none without one);
    /// `layer` is the layer a `steps.layerK` axis sets, which leaves the
    /// spec as it is.
    pub fn of(spec: &Spec, layer: Option<usize>, value: Option<f64>) -> Result<Setting> {
        let cell_spec = match (value, &spec.axis) {
            (Some(v), Some(axis)) if layer.is_none() => spec.with_param(&axis.param, v)?,
            _ => spec.clone(),
        };
        Ok(Setting {
            model: cell_spec.model.build()?,
            optimizer: cell_spec.optimizer.resolve()?,
            init: cell_spec.init,
        })
    }
}

/// Largest sweep accepted: ids stay exact in f64 and in the progress counters.
const MAX_TRAJECTORIES: u64 = 1 << 50;

impl Sweep {
    pub fn new(spec: Spec) -> Result<Sweep> {
        spec.validate()?;
        let steps = spec.steps.resolve("steps")?;
        let axis = match &spec.axis {
            Some(a) => Some((a.param.clone(), a.axis_values().resolve("axis")?)),
            None => None,
        };
        // Cells are held whole, so a grid too large for memory is refused
        // here, before a model is built for each axis value.
        memory::check_cells(steps.len(), axis.as_ref().map_or(1, |(_, v)| v.len()))?;
        let axis_values: Vec<Option<f64>> = match &axis {
            Some((_, values)) => values.iter().map(|&v| Some(v)).collect(),
            None => vec![None],
        };
        // A second axis over one layer's step size leaves the spec as it is.
        let layer = match &axis {
            Some((param, values)) => layer_axis(param, &spec, values)?,
            None => None,
        };
        // Cells that share an axis value share a model; build each once.
        let mut per_axis = Vec::with_capacity(axis_values.len());
        for value in &axis_values {
            per_axis.push(Setting::of(&spec, layer, *value)?);
        }
        let mut cells = Vec::with_capacity(steps.len() * axis_values.len());
        for (value, setting) in axis_values.iter().zip(&per_axis) {
            for &step_size in &steps {
                cells.push(Cell {
                    index: cells.len(),
                    step_size,
                    axis_value: *value,
                    init: setting.init.clone(),
                    model: setting.model.clone(),
                    optimizer: setting.optimizer,
                    layer_step: layer.zip(*value),
                });
            }
        }
        let total = (cells.len() as u64).checked_mul(spec.trajectories);
        if total.is_none_or(|t| t > MAX_TRAJECTORIES) {
            return Err(Error::spec(format!(
                "{} cells × {} trajectories is more than 2^50 trajectories; sweep fewer cells or trajectories",
                cells.len(),
                spec.trajectories
            )));
        }
        Ok(Sweep {
            trajectories_per_cell: spec.trajectories,
            spec,
            steps,
            axis,
            cells,
            streams: None,
        })
    }

    /// The layer a `steps.layerK` second axis sets (0-based), checked
    /// against `values`; None for any other axis or none.
    pub fn layer_of_axis(spec: &Spec, values: &[f64]) -> Result<Option<usize>> {
        match &spec.axis {
            Some(a) => layer_axis(&a.param, spec, values),
            None => Ok(None),
        }
    }

    /// A sweep over chosen points of the spec's plane rather than its grid:
    /// one cell per point, `spec.trajectories` replicates each, replicate r
    /// of a point drawing its start from stream `point.stream + r` (or from
    /// r with `common_starts`). `setting` gives the initialization, model
    /// and optimizer at an axis value, which the caller builds once per
    /// value. Where the axis changes the model, every point must share one
    /// axis value, so that the sweep runs one model.
    pub fn at_points(
        spec: &Spec,
        points: &[Point],
        layer: Option<usize>,
        mut setting: impl FnMut(Option<f64>) -> Result<Setting>,
    ) -> Result<Sweep> {
        let mut cells = Vec::with_capacity(points.len());
        for p in points {
            let s = setting(p.axis_value)?;
            cells.push(Cell {
                index: cells.len(),
                step_size: p.step_size,
                axis_value: p.axis_value,
                init: s.init,
                model: s.model,
                optimizer: s.optimizer,
                layer_step: layer.zip(p.axis_value),
            });
        }
        let axis = spec.axis.as_ref().map(|a| {
            let mut values: Vec<f64> = points.iter().filter_map(|p| p.axis_value).collect();
            values.sort_by(f64::total_cmp);
            values.dedup();
            (a.param.clone(), values)
        });
        Ok(Sweep {
            trajectories_per_cell: spec.trajectories,
            spec: spec.clone(),
            // One "step size" per cell, so that `chunks` never cuts the
            // points at a model segment: the caller keeps one model per sweep.
            steps: points.iter().map(|p| p.step_size).collect(),
            axis,
            cells,
            streams: Some(points.iter().map(|p| p.stream).collect()),
        })
    }

    /// The stopping rule at `precision`, with the spec's optimizer and its
    /// step sizes per layer.
    pub fn rule(&self, precision: Precision) -> StopRule {
        let mut rule = self.spec.stop.rule(precision, self.spec.max_iters);
        rule.optimizer = self.spec.optimizer.kind;
        if self.per_layer() {
            rule.step_slots = self.cells[0].model.layers().len() as u32;
        }
        rule
    }

    /// Whether the second axis sets one layer's step size.
    pub fn per_layer(&self) -> bool {
        self.cells[0].layer_step.is_some()
    }

    /// The step size of each layer of each trajectory of `ids`, layer by
    /// layer: `out[l · n + i]` for the i-th id (n ids); what a GPU kernel with
    /// per-layer step sizes reads.
    pub fn layer_step_sizes(&self, ids: Range<u64>, out: &mut [f64]) {
        let n = (ids.end - ids.start) as usize;
        let base = ids.start;
        for (cell, run) in self.cell_runs(ids) {
            for (l, step) in cell.layer_step_sizes().into_iter().enumerate() {
                out[l * n + (run.start - base) as usize..l * n + (run.end - base) as usize]
                    .fill(step);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.cells.len() as u64 * self.trajectories_per_cell
    }

    pub fn cell_of(&self, id: u64) -> &Cell {
        &self.cells[(id / self.trajectories_per_cell) as usize]
    }

    pub fn replicate_of(&self, id: u64) -> u64 {
        id % self.trajectories_per_cell
    }

    /// The most parameters any cell's model has.
    pub fn max_dim(&self) -> usize {
        self.cells.iter().map(|c| c.model.dim()).max().unwrap_or(1)
    }

    /// Whether the second axis changes the model, so that cells with different
    /// axis values may differ in size or in their compiled kernel.
    fn axis_changes_model(&self) -> bool {
        self.spec
            .axis
            .as_ref()
            .is_some_and(|a| a.param.starts_with("model."))
    }

    /// The random stream trajectory `id` draws its start from: its own, or
    /// with `common_starts` its replicate's, the same in every cell (a run
    /// of ids within one cell keeps consecutive streams either way).
    pub fn stream_of(&self, id: u64) -> u64 {
        if self.spec.common_starts {
            self.replicate_of(id)
        } else if let Some(streams) = &self.streams {
            streams[(id / self.trajectories_per_cell) as usize] + self.replicate_of(id)
        } else {
            id
        }
    }

    /// The initial parameters of trajectory `id`, in f64.
    pub fn initial(&self, id: u64, out: &mut [f64]) {
        let cell = self.cell_of(id);
        let mut rng = TrajectoryRng::new(self.spec.seed, self.stream_of(id));
        cell.model.initial(
            &cell.init,
            &mut rng,
            self.replicate_of(id),
            self.trajectories_per_cell,
            out,
        );
    }

    /// `ids` cut where the cell changes: each run's cell and its ids, in
    /// order, so a cell is looked up once for all its trajectories.
    pub fn cell_runs(&self, ids: Range<u64>) -> impl Iterator<Item = (&Cell, Range<u64>)> + '_ {
        let mut id = ids.start;
        std::iter::from_fn(move || {
            (id < ids.end).then(|| {
                let cell = self.cell_of(id);
                let end = ((cell.index as u64 + 1) * self.trajectories_per_cell).min(ids.end);
                let run = id..end;
                id = end;
                (cell, run)
            })
        })
    }

    /// The step size of each trajectory of `ids`, into `out`.
    pub fn step_sizes(&self, ids: Range<u64>, out: &mut [f64]) {
        let base = ids.start;
        for (cell, run) in self.cell_runs(ids) {
            out[(run.start - base) as usize..(run.end - base) as usize].fill(cell.step_size);
        }
    }

    /// The momentum coefficient β of each trajectory of `ids`, into `out`.
    pub fn betas(&self, ids: Range<u64>, out: &mut [f64]) {
        let base = ids.start;
        for (cell, run) in self.cell_runs(ids) {
            out[(run.start - base) as usize..(run.end - base) as usize].fill(cell.optimizer.beta);
        }
    }

    /// The initial parameters of trajectories `ids` (of one model), in f64:
    /// `out[i · dim ..]` is what `initial` gives for ids.start + i. Their
    /// random blocks are computed beforehand for many trajectories at once,
    /// in `blocks` (scratch kept by the caller).
    pub fn initials(&self, ids: Range<u64>, out: &mut [f64], blocks: &mut Vec<[u32; 4]>) {
        let dim = self.cell_of(ids.start).model.dim();
        let base = ids.start;
        // Cell by cell: the blocks drawn depend on the cell's initialization.
        for (cell, run) in self.cell_runs(ids) {
            let id = run.start;
            let count = (run.end - id) as usize;
            let slots = &mut out[(id - base) as usize * dim..][..count * dim];
            if let InitSpec::Uniform { low, high } = cell.init {
                // What `draw_scalar` draws: coordinate j is the stream's
                // uniform j.
                crate::rng::stream_uniforms(self.spec.seed, self.stream_of(id), dim, slots);
                for x in slots.iter_mut() {
                    *x = crate::models::uniform_init(low, high, *x);
                }
                continue;
            }
            let per = cell.model.init_blocks(&cell.init);
            blocks.clear();
            blocks.resize(count * per, [0; 4]);
            crate::rng::stream_blocks(self.spec.seed, self.stream_of(id), per, blocks);
            for (t, slot) in slots.chunks_mut(dim).enumerate() {
                let given = &blocks[t * per..(t + 1) * per];
                let stream = self.stream_of(id) + t as u64;
                let mut rng = TrajectoryRng::with_blocks(self.spec.seed, stream, given);
                cell.model.initial(
                    &cell.init,
                    &mut rng,
                    self.replicate_of(id + t as u64),
                    self.trajectories_per_cell,
                    slot,
                );
            }
        }
    }

    /// Consecutive ranges of at most `chunk` ids covering `ids`, cut at
    /// `ids.start + k·chunk`. When the second axis is a model parameter, a
    /// range also never crosses from one axis value to the next, so every
    /// chunk runs one model. Outputs do not depend on where chunks are cut.
    pub fn chunks(&self, ids: Range<u64>, chunk: u64) -> Vec<Range<u64>> {
        let chunk = chunk.max(1);
        let segment = if self.axis_changes_model() {
            self.steps.len() as u64 * self.trajectories_per_cell
        } else {
            self.total()
        };
        let mut out = Vec::new();
        let mut start = ids.start;
        while start < ids.end {
            let segment_end = (start / segment + 1) * segment;
            let end = start.saturating_add(chunk).min(segment_end).min(ids.end);
            out.push(start..end);
            start = end;
        }
        out
    }
}

/// The layer (0-based) a second axis `steps.layerK` sets the step size of,
/// refused in one sentence where the model has no such layer or a value is
/// not a step size; None for any other axis.
fn layer_axis(param: &str, spec: &Spec, values: &[f64]) -> Result<Option<usize>> {
    let Some(k) = param.strip_prefix("steps.layer") else {
        return Ok(None);
    };
    let layers = spec.model.build()?.layers().len();
    let k: usize = k.parse().ok().filter(|&k| k >= 1).ok_or_else(|| {
        Error::spec(format!(
            "axis.param '{param}' does not name a layer; write steps.layerK with K from 1 to {layers}"
        ))
    })?;
    if layers < 2 {
        return Err(Error::spec(format!(
            "axis.param '{param}' sets one layer's step size, but a {} model has one parameter group; sweep the step size itself",
            spec.model.build()?.name()
        )));
    }
    if k > layers {
        return Err(Error::spec(format!(
            "axis.param '{param}' names layer {k}, but this model has {layers} layers; give K from 1 to {layers}"
        )));
    }
    if let Some(bad) = values.iter().find(|&&v| v <= 0.0) {
        return Err(Error::spec(format!(
            "axis value {bad} is not a step size; every value of {param} must be above zero"
        )));
    }
    Ok(Some(k - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(axis: &str) -> Sweep {
        let text = format!(
            "trajectories = 10\nmax_iters = 10\nseed = 1\n[model]\nkind = \"scalar-deep\"\nlayers = 2\nlambda = 1.0\n\
             [init]\nkind = \"balanced\"\nnoise = 0.1\n[steps]\nvalues = [0.1, 0.2, 0.3]\n{axis}"
        );
        Sweep::new(Spec::from_toml(&text, "t").unwrap()).unwrap()
    }

    /// `initials` gives every trajectory what `initial` gives it, bit for bit,
    /// for every initialization, over ranges that cross cells (with an axis
    /// over the initialization, so cells draw differently); and where
    /// `init_blocks` gives a count, one trajectory's draws take exactly that
    /// many blocks.
    #[test]
    fn initials_drawn_together_are_each_trajectorys_own() {
        let cases = [
            ("kind = \"poly\"", "kind = \"uniform\"\nlow = 0.5\nhigh = 2.5", 1),
            ("kind = \"poly\"", "kind = \"gaussian\"\nmean = 1.0\nstd = 0.5", 1),
            ("kind = \"poly\"", "kind = \"grid\"\nlow = 0.5\nhigh = 2.5", 0),
            ("kind = \"scalar-deep\"\nlayers = 5\nlambda = 2.0", "kind = \"balanced\"\nnoise = 0.3", 5),
            ("kind = \"scalar-deep\"\nlayers = 5\nlambda = 2.0", "kind = \"uniform\"\nlow = 0.5\nhigh = 1.5", 3),
            (
                "kind = \"deep-linear\"\nlayers = 2\nsize = 3\ntarget = { kind = \"psd\", seed = 1 }",
                "kind = \"identity\"\nscale = 0.1",
                18,
            ),
            (
                "kind = \"deep-linear\"\nlayers = 2\nsize = 3\ntarget = { kind = \"psd\", seed = 1 }",
                "kind = \"orthogonal\"\nscale = 1.0",
                0,
            ),
        ];
        for (model, init, blocks) in cases {
            let text = format!(
                "trajectories = 37\nmax_iters = 10\nseed = 5\n[model]\n{model}\n[init]\n{init}\n\
                 [steps]\nvalues = [0.1, 0.2, 0.3]\n"
            );
            let s = Sweep::new(Spec::from_toml(&text, "t").unwrap()).unwrap();
            let dim = s.cells[0].model.dim();
            assert_eq!(
                s.cells[0].model.init_blocks(&s.cells[0].init),
                blocks,
                "{init}"
            );
            let ids = 5..100;
            let mut together = vec![0.0; 95 * dim];
            s.initials(ids.clone(), &mut together, &mut Vec::new());
            let mut own = vec![0.0; dim];
            for id in ids.clone() {
                s.initial(id, &mut own);
                let i = (id - ids.start) as usize;
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&together[i * dim..(i + 1) * dim]),
                    bits(&own),
                    "{init}: {id}"
                );
            }
            let mut steps = vec![0.0; 95];
            s.step_sizes(ids.clone(), &mut steps);
            for id in ids.clone() {
                assert_eq!(steps[(id - ids.start) as usize], s.cell_of(id).step_size);
            }
            if blocks > 0 {
                let mut rng = TrajectoryRng::new(5, 0);
                s.cells[0]
                    .model
                    .initial(&s.cells[0].init, &mut rng, 0, 37, &mut own);
                assert_eq!(rng.blocks_drawn(), blocks as u64, "{init}");
            }
        }
        // An axis over the initialization: a range across cells that draw differently.
        let s = sweep("[axis]\nparam = \"init.noise\"\nvalues = [0.1, 0.2]");
        let mut together = vec![0.0; 60 * 2];
        s.initials(0..60, &mut together, &mut Vec::new());
        let mut own = vec![0.0; 2];
        for id in 0..60 {
            s.initial(id, &mut own);
            let i = id as usize;
            assert_eq!(together[2 * i..2 * i + 2], own[..], "{id}");
        }
    }

    /// `optimizer.beta` on the second axis gives each cell its β, and each
    /// cell's thresholds and bound move with it: x = 2's edge at 0.2(1 + β)
    /// under momentum; gd refuses a β in one sentence.
    #[test]
    fn a_beta_axis_moves_each_cells_edges() {
        let text = "trajectories = 4\nmax_iters = 10\nseed = 1\n[model]\nkind = \"poly\"\n\
                    [optimizer]\nkind = \"momentum\"\n[steps]\nvalues = [0.1, 0.3]\n\
                    [axis]\nparam = \"optimizer.beta\"\nvalues = [0.0, 0.5, 0.9]\n";
        let s = Sweep::new(Spec::from_toml(text, "t").unwrap()).unwrap();
        assert_eq!(s.rule(Precision::F64).optimizer, OptimizerKind::Momentum);
        for cell in &s.cells {
            let beta = cell.axis_value.unwrap();
            assert_eq!(cell.optimizer.beta, beta);
            let edges: Vec<f64> = cell.edges().iter().map(|e| e.step_size).collect();
            assert!(
                edges.iter().any(|e| (e - 0.2 * (1.0 + beta)).abs() < 1e-12),
                "{edges:?}"
            );
            assert!((cell.bound() - 2.0 * (1.0 + beta) / cell.step_size).abs() < 1e-12);
        }
        let mut betas = vec![0.0; 8];
        // Ids 14, 15 end the second β's cells; 16 on are the third's.
        s.betas(14..22, &mut betas);
        assert_eq!(betas, [0.5, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]);
        let gd = text.replace("kind = \"momentum\"", "kind = \"gd\"");
        let e = Sweep::new(Spec::from_toml(&gd, "t").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("optimizer.kind is gd"), "{e}");
    }

    /// `steps.layerK` sets layer K's step size alone, per cell; a model
    /// without such a layer, or one parameter group, is refused in one
    /// sentence.
    #[test]
    fn a_layer_axis_sets_that_layers_step_size() {
        let s = sweep("[axis]\nparam = \"steps.layer2\"\nvalues = [0.01, 0.02]");
        assert!(s.per_layer());
        assert_eq!(s.cells[4].layer_step_sizes(), vec![0.2, 0.02]);
        assert_eq!(s.cells[4].parameter_step_sizes(), Some(vec![0.2, 0.02]));
        assert_eq!(s.rule(Precision::F64).step_slots, 2);
        let mut out = vec![0.0; 2 * 20];
        s.layer_step_sizes(25..45, &mut out);
        // ids 25..30 are cell 2 (δ = 0.3, axis 0.01), 40..45 cell 4.
        assert_eq!((out[0], out[20]), (0.3, 0.01));
        assert_eq!((out[15], out[35]), (0.2, 0.02));
        let refused = |axis: &str, model: &str| {
            let text = format!(
                "trajectories = 10\nmax_iters = 10\nseed = 1\n[model]\n{model}\n\
                 [steps]\nvalues = [0.1]\n[axis]\n{axis}"
            );
            Sweep::new(Spec::from_toml(&text, "t").unwrap())
                .unwrap_err()
                .to_string()
        };
        let two = "kind = \"scalar-deep\"\nlayers = 2\nlambda = 1.0";
        let e = refused("param = \"steps.layer3\"\nvalues = [0.1]", two);
        assert!(e.contains("this model has 2 layers"), "{e}");
        let e = refused("param = \"steps.layerx\"\nvalues = [0.1]", two);
        assert!(e.contains("does not name a layer"), "{e}");
        let e = refused(
            "param = \"steps.layer1\"\nvalues = [0.1]",
            "kind = \"poly\"",
        );
        assert!(e.contains("one parameter group"), "{e}");
        let e = refused("param = \"steps.layer2\"\nvalues = [-0.1]", two);
        assert!(e.contains("not a step size"), "{e}");
    }

    #[test]
    fn chunks_cover_the_ids_and_never_mix_models() {
        // An axis over the depth: 3 cells of 10 per model.
        let s = sweep("[axis]\nparam = \"model.layers\"\nvalues = [2, 3]");
        assert_eq!(s.chunks(0..60, 25), vec![0..25, 25..30, 30..55, 55..60]);
        assert_eq!(s.chunks(12..60, u64::MAX), vec![12..30, 30..60]);
        // An axis over the initialization keeps one model: chunks run across it.
        let s = sweep("[axis]\nparam = \"init.noise\"\nvalues = [0.1, 0.2]");
        assert_eq!(s.chunks(0..60, 25), vec![0..25, 25..50, 50..60]);
    }
}
