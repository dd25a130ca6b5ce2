//! The CPU backend, f64 or f32: every rayon thread streams trajectories
//! through a pack of SIMD lanes with `lanes::descend_lanes`, which is
//! bit-identical to the one-trajectory reference `stopping::descend` that
//! every kernel is held against.

use std::ops::Range;

use std::sync::Mutex;

use crate::aggregate::{needs_assessment, CellStats, PartialTally};
use crate::grid::Sweep;

use crate::lanes::{descend_lanes, load_each, LaneScratch, LaneSource, PackGradient};
use crate::models::kernels::{DeepLinear, Kernel, Poly, Relu, ScalarDeep};
use crate::models::Model;
use crate::real::{Pack, Real};
use crate::stopping::{fingerprint_weights, Outcome, Record, StopRule, TrajectoryEnd};

/// The instruction set a pack engine is compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, VL, BW, DQ): 32 vector registers of 16 f32.
    Avx512,
    /// x86-64 with AVX2: 16 registers of 8 f32.
    Avx2,
    /// Whatever the build targets (SSE2 on x86-64).
    Baseline,
}

impl Isa {
    /// The widest this processor has.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") {
                return Isa::Avx512;
            }
            if has!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

/// The pack engine for a model on this processor, for lanes of type R: its
/// instruction set and its lanes per pack. Each is a separately compiled copy
/// of the lane engine, and the results are the same bits whichever runs,
/// since every lane follows the one-trajectory reference.
///
/// Every step is a chain of dependent operations (Horner's rule, prefix
/// products), so a pack needs enough independent lanes to hide the chain's
/// latency, and few enough that its values stay in registers. Narrow AVX-512
/// packs run slowly: LLVM vectorizes them across parameters, with gathers,
/// instead of across lanes. Measured with `cargo bench --bench engines` (one
/// pack on one thread of a Zen 5 core; the engine picked in bold; AVX2 is
/// what a processor without AVX-512 runs), in trajectory-steps/s:
///
/// | model | precision | engine | lanes: trajectory-steps/s |
/// | --- | --- | --- | --- |
/// | W1 poly | f32 | Avx2 | 32: 3.71e9 · 64: 1.28e9 · 128: **7.41e9** · 256: 7.41e9 |
/// | W2 scalar-deep | f32 | Avx2 | 16: 9.94e8 · 32: **1.27e9** · 64: 5.05e8 · 128: 8.36e8 |
/// | W3 deep-linear | f32 | Avx2 | 16: 3.31e7 · 32: **3.19e7** · 64: 3.26e7 · 128: 2.90e7 |
/// | W4 relu | f32 | Avx2 | 8: 1.84e6 · 16: **2.93e6** · 32: 2.14e6 · 64: 1.89e6 |
/// | W1 poly | f32 | Avx512 | 32: 3.71e9 · 64: 1.31e9 · 128: 1.41e10 · 256: **1.97e10** |
/// | W2 scalar-deep | f32 | Avx512 | 16: 1.67e8 · 32: 1.73e8 · 64: 7.89e8 · 128: **2.27e9** |
/// | W3 deep-linear | f32 | Avx512 | 16: 1.58e7 · 32: 1.58e7 · 64: **5.50e7** · 128: 4.91e7 |
/// | W4 relu | f32 | Avx512 | 8: 1.68e6 · 16: **3.03e6** · 32: 2.36e6 · 64: 2.16e6 |
/// | W1 poly | f64 | Avx2 | 32: 3.58e9 · 64: 9.15e8 · 128: **3.78e9** · 256: 4.81e8 |
/// | W2 scalar-deep | f64 | Avx2 | 16: 6.67e8 · 32: **5.53e8** · 64: 2.50e8 · 128: 3.36e8 |
/// | W3 deep-linear | f64 | Avx2 | 16: 1.70e7 · 32: **1.57e7** · 64: 1.45e7 · 128: 1.26e7 |
/// | W4 relu | f64 | Avx2 | 8: 1.47e6 · 16: **1.67e6** · 32: 1.23e6 · 64: 9.33e5 |
/// | W1 poly | f64 | Avx512 | 32: 3.71e9 · 64: 1.18e9 · 128: **1.02e10** · 256: 4.37e9 |
/// | W2 scalar-deep | f64 | Avx512 | 16: 1.53e8 · 32: 1.54e8 · 64: 5.20e8 · 128: **1.05e9** |
/// | W3 deep-linear | f64 | Avx512 | 16: 1.26e7 · 32: 1.25e7 · 64: **2.48e7** · 128: 2.28e7 |
/// | W4 relu | f64 | Avx512 | 8: 1.55e6 · 16: **2.04e6** · 32: 1.47e6 · 64: 1.40e6 |
///
/// On AVX2, scalar-deep and deep-linear keep 32 lanes although 16 measured up
/// to a fifth faster in f64: each width is one more compiled copy per model.
/// Poly on AVX2 takes 128 lanes in f64 too: with Horner's loop unrolled for
/// the paper's degree it measured 1.5 times the 32 it had before. Poly on
/// AVX-512 runs its steps rolled and out of line (`Kernel::ROLLED_ON_AVX512`),
/// which keeps 256 lanes of f32 in registers but not 256 of f64.
pub fn engine<R: Real>(model: &Model, isa: Isa) -> (Isa, usize) {
    let single = std::mem::size_of::<R>() == 4;
    match (model, isa) {
        (Model::Poly(_), Isa::Avx512) => (isa, if single { 256 } else { 128 }),
        (Model::Poly(_), Isa::Avx2) => (isa, 128),
        (Model::Poly(_), _) => (isa, if single { 128 } else { 32 }),
        (Model::ScalarDeep(_), Isa::Avx512) => (isa, 128),
        (Model::DeepLinear(_), Isa::Avx512) => (isa, 64),
        (Model::ScalarDeep(_) | Model::DeepLinear(_), _) => (isa, 32),
        (Model::Relu(_), _) => (isa, 16),
    }
}

/// Runs trajectories `ids` to the end; returns their ends and final iterates
/// (ids.len() × dim, in f64).
pub fn run_chunk<R: Real>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> (Vec<TrajectoryEnd>, Vec<f64>) {
    run_chunk_on(Isa::detect(), sweep, constants, rule, ids)
}

/// Runs each of `ids` (any ids, in any order) alone with the one-trajectory
/// reference `stopping::descend`, which every pack engine matches bit for
/// bit; returns each one's end and final iterate (in f64). For the f64
/// rechecks of scattered trajectories (`recheck`), where packs would idle.
pub fn run_each<R: Real>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: &[u64],
) -> Vec<(TrajectoryEnd, Vec<f64>)> {
    use crate::stopping::{descend, Scratch};
    use rayon::prelude::*;
    ids.par_iter()
        .map(|&id| {
            let cell = sweep.cell_of(id);
            let model = &cell.model;
            let dim = model.dim();
            let mut start = vec![0.0; dim];
            sweep.initial(id, &mut start);
            let mut theta: Vec<R> = start.iter().map(|&v| R::of(v)).collect();
            let mut scratch = Scratch::<R>::new(dim, model.work_len(), rule);
            let end = descend(
                &mut theta,
                R::of(cell.step_size),
                rule,
                &fingerprint_weights::<R>(dim),
                &mut scratch,
                |t, g, w| model.gradient(&constants[cell.index], t, g, w),
            );
            (end, theta.iter().map(|t| t.to_f64_lossless()).collect())
        })
        .collect()
}

/// Runs trajectories `ids` to the end and returns their tally alone: each
/// trajectory is assessed and counted by the thread that ran it, as it ends,
/// so no end or final iterate is kept. What `run_chunk` and a tally of its
/// results give, since every statistic is a count, a sum of integers or a
/// maximum; for a run that writes no rows.
pub fn tally_chunk<R: Real>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> PartialTally {
    tally_chunk_on(Isa::detect(), sweep, constants, rule, ids)
}

/// `run_chunk` with the engines of a processor that has `available`.
fn run_chunk_on<R: Real>(
    available: Isa,
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> (Vec<TrajectoryEnd>, Vec<f64>) {
    let dim = sweep.cell_of(ids.start).model.dim();
    let n = (ids.end - ids.start) as usize;
    let blank = TrajectoryEnd {
        outcome: Outcome::Undecided,
        period: 0,
        iterations: 0,
    };
    let mut ends = vec![blank; n];
    let mut theta = vec![0.0f64; n * dim];
    let lanes = engine::<R>(&sweep.cell_of(ids.start).model, available).1;
    // Each batch's slots for ends and final iterates go with it.
    let batches = ends
        .chunks_mut(lanes)
        .zip(theta.chunks_mut(lanes * dim))
        .enumerate()
        .map(|(b, (ends, finals))| (b * lanes, ends.len(), Slots { ends, finals }));
    dispatch(available, sweep, constants, rule, ids, batches, || Keep);
    (ends, theta)
}

/// `tally_chunk` with the engines of a processor that has `available`.
fn tally_chunk_on<R: Real>(
    available: Isa,
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> PartialTally {
    let n = (ids.end - ids.start) as usize;
    let lanes = engine::<R>(&sweep.cell_of(ids.start).model, available).1;
    let batches = (0..n)
        .step_by(lanes)
        .map(|first| (first, lanes.min(n - first), ()));
    let first_cell = sweep.cell_of(ids.start).index;
    let cells = sweep.cell_of(ids.end - 1).index + 1 - first_cell;
    let parts = dispatch(
        available,
        sweep,
        constants,
        rule,
        ids.clone(),
        batches,
        || Tally::new(sweep, first_cell, cells),
    );
    let mut parts = parts.into_iter().map(Tally::finish);
    let mut total = parts.next().expect("a thread ran");
    for part in parts {
        total.merge(&part);
    }
    total
}

/// Runs a chunk's batches through the engine `engine` picks for its model,
/// every thread with its own sink; returns the sinks.
fn dispatch<'a, R: Real, S: Sink<'a>>(
    available: Isa,
    sweep: &'a Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
    batches: impl Iterator<Item = (usize, usize, S::Slots)> + Send,
    sink: impl Fn() -> S + Sync,
) -> Vec<S> {
    // A chunk runs one model, with one set of constants (see `Sweep::chunks`).
    let (isa, lanes) = engine::<R>(&sweep.cell_of(ids.start).model, available);
    let model = &sweep.cell_of(ids.start).model;
    let b = (isa, sweep, constants, rule, ids, batches, sink);
    // Only the engines `engine` picks are compiled, each for one model.
    match (model, lanes) {
        (Model::Poly(_), 256) => run_chunk_lanes::<R, 256, Poly, S>(b),
        (Model::Poly(_), 128) => run_chunk_lanes::<R, 128, Poly, S>(b),
        (Model::Poly(_), 32) => run_chunk_lanes::<R, 32, Poly, S>(b),
        (Model::ScalarDeep(_), 128) => run_chunk_lanes::<R, 128, ScalarDeep, S>(b),
        (Model::ScalarDeep(_), 32) => run_chunk_lanes::<R, 32, ScalarDeep, S>(b),
        (Model::DeepLinear(_), 64) => run_chunk_lanes::<R, 64, DeepLinear, S>(b),
        (Model::DeepLinear(_), 32) => run_chunk_lanes::<R, 32, DeepLinear, S>(b),
        (Model::Relu(_), 16) => run_chunk_lanes::<R, 16, Relu, S>(b),
        (_, n) => unreachable!("no engine of {n} lanes for this model"),
    }
}

/// `dispatch`'s arguments, passed on together.
type Chunk<'a, 'c, R, I, F> = (Isa, &'a Sweep, &'c [Vec<R>], &'c StopRule, Range<u64>, I, F);

fn run_chunk_lanes<'a, 'c, R: Real, const N: usize, K: Kernel, S: Sink<'a>>(
    (isa, sweep, constants, rule, ids, batches, sink): Chunk<
        'a,
        'c,
        R,
        impl Iterator<Item = (usize, usize, S::Slots)> + Send,
        impl Fn() -> S + Sync,
    >,
) -> Vec<S> {
    let first = sweep.cell_of(ids.start);
    let model = &first.model;
    let (dim, work) = (model.dim(), model.work_len());
    let weights: Vec<Pack<R, N>> = fingerprint_weights::<R>(dim)
        .into_iter()
        .map(Pack::splat)
        .collect();
    let packs = Packs::<R, N, K>::new(isa, model, &constants[first.index], &weights, rule);
    // Every thread streams trajectories through one pack, taking the next
    // unstarted batch of a pack's worth as lanes free up, so no thread waits
    // on a slow pack while trajectories remain. Which lane runs a trajectory
    // changes none of its bits.
    let batches = Mutex::new(batches);
    rayon::broadcast(|_| {
        let mut source = Stream {
            sweep,
            base: ids.start,
            batches: &batches,
            taken: Vec::new(),
            loaded: 0,
            in_lane: [(0, 0); N],
            dim,
            starts: vec![0.0; N * dim],
            step_sizes: vec![0.0; N],
            blocks: Vec::new(),
            last: vec![0.0; dim],
            sink: sink(),
        };
        let mut scratch = LaneScratch::<R, N>::new(dim, work, rule);
        packs.run(&mut scratch, &mut source);
        source.sink
    })
}

/// What becomes of a thread's trajectories as they end.
trait Sink<'a>: Send {
    /// The part of the chunk's output that goes with a batch.
    type Slots: Send + 'a;
    /// Trajectory `id`, at `place` in its batch, ended at `last` (in f64).
    fn end(
        &mut self,
        slots: &mut Self::Slots,
        place: usize,
        id: u64,
        end: TrajectoryEnd,
        last: &[f64],
    );
}

/// A batch's slots for ends and final iterates.
struct Slots<'a> {
    ends: &'a mut [TrajectoryEnd],
    finals: &'a mut [f64],
}

/// Every end and final iterate into its batch's slots.
struct Keep;

impl<'a> Sink<'a> for Keep {
    type Slots = Slots<'a>;

    #[inline(always)]
    fn end(
        &mut self,
        slots: &mut Slots<'a>,
        place: usize,
        _: u64,
        end: TrajectoryEnd,
        last: &[f64],
    ) {
        slots.ends[place] = end;
        let dim = last.len();
        slots.finals[place * dim..(place + 1) * dim].copy_from_slice(last);
    }
}

/// Ends needing an assessment kept until this many wait, then assessed
/// together (see `Model::assess_many`).
const ASSESSED_TOGETHER: usize = 64;

/// One thread's tally of a chunk's cells, each trajectory counted as it ends.
struct Tally<'a> {
    sweep: &'a Sweep,
    part: PartialTally,
    /// Each cell's bound, looked up once.
    bounds: Vec<f64>,
    /// Converged trajectories (every one that needs an assessment here):
    /// id and iterations, with their final iterates in `finals` (dim
    /// apiece), waiting to be assessed together. (Kept as the two numbers:
    /// a whole `TrajectoryEnd` was written field by field and read back as
    /// one, which stalled every end.)
    waiting: Vec<(u64, u64)>,
    finals: Vec<f64>,
    assessed: Vec<crate::models::Assessment>,
    /// The ids of the cell last looked up, and its place in `part.cells`:
    /// a thread's trajectories come a batch at a time, so mostly from one
    /// cell, and the lookup divides.
    cell_ids: Range<u64>,
    cell: usize,
}

impl<'a> Tally<'a> {
    fn new(sweep: &'a Sweep, first_cell: usize, cells: usize) -> Self {
        let minimizers = sweep.cells[0].model.minimizers().len();
        let range = first_cell..first_cell + cells;
        Tally {
            sweep,
            part: PartialTally {
                first_cell,
                cells: vec![CellStats::new(minimizers); cells],
                trajectory_steps: 0,
            },
            bounds: sweep.cells[range]
                .iter()
                .map(|c| c.model.bound(c.step_size))
                .collect(),
            waiting: Vec::with_capacity(ASSESSED_TOGETHER),
            finals: Vec::new(),
            assessed: Vec::with_capacity(ASSESSED_TOGETHER),
            cell_ids: 0..0,
            cell: 0,
        }
    }

    /// The place in `part.cells` of trajectory `id`'s cell.
    #[inline(always)]
    fn cell_of(&mut self, id: u64) -> usize {
        if !self.cell_ids.contains(&id) {
            let index = self.sweep.cell_of(id).index;
            let per = self.sweep.trajectories_per_cell;
            self.cell_ids = index as u64 * per..(index as u64 + 1) * per;
            self.cell = index - self.part.first_cell;
        }
        self.cell
    }

    /// Assesses and counts the waiting ends, cell by cell.
    fn assess_waiting(&mut self) {
        let dim = self.finals.len() / self.waiting.len().max(1);
        let mut from = 0;
        while from < self.waiting.len() {
            let c = self.cell_of(self.waiting[from].0);
            let cell = &self.sweep.cells[self.part.first_cell + c];
            let ids = &self.cell_ids;
            let to = from
                + self.waiting[from..]
                    .iter()
                    .take_while(|(id, _)| ids.contains(id))
                    .count();
            self.assessed.clear();
            cell.model.assess_many(
                self.waiting[from..to]
                    .iter()
                    .enumerate()
                    .map(|(i, (id, _))| {
                        let k = from + i;
                        (
                            &self.finals[k * dim..(k + 1) * dim],
                            self.sweep.replicate_of(*id),
                        )
                    }),
                &mut self.assessed,
            );
            for (&(_, iterations), a) in self.waiting[from..to].iter().zip(&self.assessed) {
                let end = TrajectoryEnd {
                    outcome: Outcome::Converged,
                    period: 0,
                    iterations,
                };
                self.part.cells[c].add(&end, Some(a), self.bounds[c]);
            }
            from = to;
        }
        self.waiting.clear();
        self.finals.clear();
    }

    fn finish(mut self) -> PartialTally {
        self.assess_waiting();
        self.part
    }
}

impl<'a> Sink<'a> for Tally<'a> {
    type Slots = ();

    #[inline(always)]
    fn end(&mut self, _: &mut (), _: usize, id: u64, end: TrajectoryEnd, last: &[f64]) {
        self.part.trajectory_steps += end.iterations;
        if needs_assessment(&end, last, false) {
            debug_assert_eq!(end.outcome, Outcome::Converged);
            self.waiting.push((id, end.iterations));
            self.finals.extend_from_slice(last);
            if self.waiting.len() == ASSESSED_TOGETHER {
                self.assess_waiting();
            }
        } else {
            let c = self.cell_of(id);
            self.part.cells[c].add(&end, None, self.bounds[c]);
        }
    }
}

/// A batch a thread took: its first index in the chunk and its slots.
type Batch<T> = (usize, T);

/// One thread's share of a chunk: batches taken in order from those all
/// threads share, each trajectory's end given to the thread's sink.
struct Stream<'a, 'b, const N: usize, I, S: Sink<'a>> {
    sweep: &'a Sweep,
    base: u64,
    batches: &'b Mutex<I>,
    taken: Vec<Batch<S::Slots>>,
    /// Trajectories of the last batch taken that were loaded, and its size.
    loaded: usize,
    /// The batch (in `taken`) and place in it of each lane's trajectory.
    in_lane: [(usize, usize); N],
    dim: usize,
    /// The initial parameters of the last batch taken, drawn together.
    starts: Vec<f64>,
    /// Their step sizes.
    step_sizes: Vec<f64>,
    /// Scratch for `Sweep::initials`.
    blocks: Vec<[u32; 4]>,
    /// An ended trajectory's final iterate, in f64.
    last: Vec<f64>,
    sink: S,
}

impl<'a, const N: usize, I, S> Stream<'a, '_, N, I, S>
where
    I: Iterator<Item = (usize, usize, S::Slots)>,
    S: Sink<'a>,
{
    /// Takes the next batch, drawing its initial parameters and step sizes;
    /// None when none is left.
    #[inline(never)]
    fn take(&mut self) -> Option<()> {
        let (first, count, slots) = self.batches.lock().expect("the batches").next()?;
        let start = self.base + first as u64;
        let ids = start..start + count as u64;
        self.starts.truncate(count * self.dim);
        self.starts.resize(count * self.dim, 0.0);
        self.sweep
            .initials(ids.clone(), &mut self.starts, &mut self.blocks);
        self.sweep.step_sizes(ids, &mut self.step_sizes[..count]);
        self.taken.push((first, slots));
        self.loaded = 0;
        Some(())
    }
}

impl<'a, R: Real, const N: usize, I, S> LaneSource<R, N> for Stream<'a, '_, N, I, S>
where
    I: Iterator<Item = (usize, usize, S::Slots)>,
    S: Sink<'a>,
{
    /// Always inlined, into the engine's copy for its instruction set.
    #[inline(always)]
    fn load(&mut self, lane: usize, theta: &mut [Pack<R, N>]) -> Option<R> {
        if self.taken.is_empty() || self.loaded * self.dim == self.starts.len() {
            self.take()?;
        }
        let batch = self.taken.len() - 1;
        let place = self.loaded;
        let start = &self.starts[place * self.dim..(place + 1) * self.dim];
        for (t, &v) in theta.iter_mut().zip(start) {
            t.0[lane] = R::of(v);
        }
        self.in_lane[lane] = (batch, place);
        self.loaded += 1;
        Some(R::of(self.step_sizes[place]))
    }

    /// A fresh batch of N goes into the lanes together, converted as a
    /// pack; otherwise lane by lane.
    #[inline(always)]
    fn load_all(&mut self, theta: &mut [Pack<R, N>], step_size: &mut Pack<R, N>) -> usize {
        let dim = self.dim;
        let fresh = self.taken.is_empty() || self.loaded * dim == self.starts.len();
        if fresh {
            if self.take().is_none() {
                return 0;
            }
            if self.starts.len() == N * dim {
                let batch = self.taken.len() - 1;
                for (i, t) in theta.iter_mut().enumerate() {
                    for (l, v) in t.0.iter_mut().enumerate() {
                        *v = R::of(self.starts[l * dim + i]);
                    }
                }
                for (d, &s) in step_size.0.iter_mut().zip(&self.step_sizes) {
                    *d = R::of(s);
                }
                for (l, place) in self.in_lane.iter_mut().enumerate() {
                    *place = (batch, l);
                }
                self.loaded = N;
                return N;
            }
        }
        load_each(self, theta, step_size)
    }

    #[inline(always)]
    fn end(&mut self, lane: usize, end: TrajectoryEnd, theta: &[Pack<R, N>]) {
        let (batch, place) = self.in_lane[lane];
        let (first, slots) = &mut self.taken[batch];
        for (f, t) in self.last.iter_mut().zip(theta) {
            *f = t.0[lane].to_f64_lossless();
        }
        let id = self.base + (*first + place) as u64;
        self.sink.end(slots, place, id, end, &self.last);
    }
}

/// What every pack of a chunk shares: the model, its constants and the
/// fingerprint weights (splatted), the stopping rule, and the instruction set
/// of the engine that runs them (see `engine`).
pub struct Packs<'a, R, const N: usize, K> {
    isa: Isa,
    model: &'a Model,
    constants: &'a [R],
    weights: &'a [Pack<R, N>],
    rule: &'a StopRule,
    kernel: std::marker::PhantomData<K>,
}

impl<'a, R: Real, const N: usize, K: Kernel> Packs<'a, R, N, K> {
    pub fn new(
        isa: Isa,
        model: &'a Model,
        constants: &'a [R],
        weights: &'a [Pack<R, N>],
        rule: &'a StopRule,
    ) -> Self {
        Packs {
            isa,
            model,
            constants,
            weights,
            rule,
            kernel: std::marker::PhantomData,
        }
    }

    /// One pack to its end, by the copy of the lane engine compiled for the
    /// instruction set: the lane engine and the gradient are always inlined
    /// into each copy, so one binary stays portable and uses the vectors it
    /// finds. Rust never fuses a multiply and an add on its own, so every copy
    /// computes the same bits. (Written out because the `multiversion` crate's
    /// safe wrapper moves the body into a closure that does not get the
    /// target features.)
    pub fn run(&self, scratch: &mut LaneScratch<R, N>, source: &mut impl LaneSource<R, N>) {
        #[cfg(target_arch = "x86_64")]
        {
            let have = Isa::detect();
            match self.isa {
                // SAFETY: the processor has every feature the copy is compiled for.
                Isa::Avx512 if have == Isa::Avx512 => {
                    return unsafe { simd::run_avx512(self, scratch, source) }
                }
                // SAFETY: as above.
                Isa::Avx2 | Isa::Avx512 if have != Isa::Baseline => {
                    return unsafe { simd::run_avx2(self, scratch, source) }
                }
                _ => {}
            }
        }
        self.run_inline(scratch, source)
    }

    #[inline(always)]
    fn run_inline(&self, scratch: &mut LaneScratch<R, N>, source: &mut impl LaneSource<R, N>) {
        descend_lanes(self.rule, self.weights, scratch, self, source)
    }
}

impl<R: Real, const N: usize, K: Kernel> PackGradient<R, N> for &Packs<'_, R, N, K> {
    #[inline(always)]
    fn write(
        &mut self,
        theta: &[Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
    ) {
        K::gradient(self.model, self.constants, theta, gradient, work)
    }

    #[inline(always)]
    fn advance(
        &mut self,
        theta: &mut [Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
        delta: Pack<R, N>,
        steps: u64,
        record: Option<Record<'_, Pack<R, N>>>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if K::ROLLED_ON_AVX512 && self.isa == Isa::Avx512 {
            // SAFETY: `run` ran the AVX-512 copy of the engine, which this
            // is inlined into, only on a processor that has the features.
            return unsafe {
                simd::advance_avx512::<R, N, K>(
                    self.model,
                    self.constants,
                    theta,
                    gradient,
                    work,
                    &delta,
                    steps,
                    record,
                )
            };
        }
        K::advance(
            self.model,
            self.constants,
            theta,
            gradient,
            work,
            delta,
            steps,
            record,
        )
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::*;

    /// A copy of the pack engine compiled with `$features`.
    macro_rules! copy_for {
        ($name:ident, $features:literal) => {
            #[target_feature(enable = $features)]
            pub unsafe fn $name<R: Real, const N: usize, K: Kernel>(
                packs: &Packs<'_, R, N, K>,
                scratch: &mut LaneScratch<R, N>,
                source: &mut impl LaneSource<R, N>,
            ) {
                packs.run_inline(scratch, source)
            }
        };
    }

    copy_for!(run_avx512, "avx512f,avx512vl,avx512bw,avx512dq,avx2");
    copy_for!(run_avx2, "avx2");

    /// `Kernel::advance_rolled` compiled with AVX-512, as a function of its
    /// own (see `Kernel::ROLLED_ON_AVX512`).
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn advance_avx512<R: Real, const N: usize, K: Kernel>(
        model: &Model,
        constants: &[R],
        theta: &mut [Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
        // (By reference: a pack passed by value was copied at every call.)
        delta: &Pack<R, N>,
        steps: u64,
        record: Option<Record<'_, Pack<R, N>>>,
    ) {
        K::advance_rolled(
            model, constants, theta, gradient, work, *delta, steps, record,
        )
    }
}

/// Each cell's model constants in the working precision.
pub fn constants<R: Real>(sweep: &Sweep) -> Vec<Vec<R>> {
    sweep
        .cells
        .iter()
        .map(|c| c.model.constants::<R>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Precision, Spec};
    use crate::stopping::{descend, Scratch};

    /// Every trajectory the backend runs ends exactly where the
    /// one-trajectory reference ends: lanes of every engine the processor
    /// has, each thread's pack refilled as trajectories end (several times
    /// the lanes per cell), last blocks that end inside a pack's block
    /// (max_iters = 14·50 + 13), fingerprints skipped where no check reads
    /// them; and the tally made as trajectories end is the tally of those
    /// ends.
    ///
    /// And so with early exit off (as in `stepsweep bench`'s fixed-work
    /// workloads), where every lane of a pack ends at the one check of its
    /// last block.
    fn matches_reference<R: Real>(model: &str, init: &str, steps: &str, precision: Precision) {
        for early_exit in [true, false] {
            let text = format!(
                "trajectories = 301\nmax_iters = 713\nseed = 3\n[model]\n{model}\n[init]\n{init}\n\
                 [steps]\nvalues = [{steps}]\n[stop]\ncheck_every = 50\nearly_exit = {early_exit}\n"
            );
            let sweep = Sweep::new(Spec::from_toml(&text, "test").unwrap()).unwrap();
            let rule = sweep.spec.stop.rule(precision, sweep.spec.max_iters);
            let constants = constants::<R>(&sweep);
            // Every engine this processor can run, the baseline included.
            let mut isas = vec![Isa::Baseline];
            if Isa::detect() != Isa::Baseline {
                isas.push(Isa::Avx2);
            }
            if Isa::detect() == Isa::Avx512 {
                isas.push(Isa::Avx512);
            }
            for isa in isas {
                held_to_reference::<R>(&sweep, &rule, &constants, isa);
                tally_matches_one_by_one::<R>(&sweep, &rule, &constants, isa);
            }
        }
    }

    /// The tally the backend makes as trajectories end is the one that
    /// assessing and adding each end, one at a time, gives: over chunks that
    /// start and end inside cells, on every engine.
    fn tally_matches_one_by_one<R: Real>(
        sweep: &Sweep,
        rule: &StopRule,
        constants: &[Vec<R>],
        isa: Isa,
    ) {
        let model = &sweep.cells[0].model;
        let dim = model.dim();
        let minimizers = model.minimizers().len();
        for ids in [0..sweep.total(), 37..sweep.total() - 50] {
            let (ends, finals) = run_chunk_on::<R>(isa, sweep, constants, rule, ids.clone());
            let first_cell = sweep.cell_of(ids.start).index;
            let cells = sweep.cell_of(ids.end - 1).index + 1 - first_cell;
            let mut expected = PartialTally {
                first_cell,
                cells: vec![CellStats::new(minimizers); cells],
                trajectory_steps: 0,
            };
            for (i, id) in ids.clone().enumerate() {
                let cell = sweep.cell_of(id);
                let last = &finals[i * dim..(i + 1) * dim];
                let assessment = needs_assessment(&ends[i], last, false)
                    .then(|| cell.model.assess(last, sweep.replicate_of(id)));
                expected.cells[cell.index - first_cell].add(
                    &ends[i],
                    assessment.as_ref(),
                    cell.model.bound(cell.step_size),
                );
                expected.trajectory_steps += ends[i].iterations;
            }
            let got = tally_chunk_on::<R>(isa, sweep, constants, rule, ids.clone());
            assert_eq!(got, expected, "{isa:?} {model:?}: ids {ids:?}");
            let converged: u64 = got.cells.iter().map(|c| c.converged).sum();
            assert!(
                converged > 0,
                "{model:?}: some trajectories should converge"
            );
        }
    }

    fn held_to_reference<R: Real>(sweep: &Sweep, rule: &StopRule, constants: &[Vec<R>], isa: Isa) {
        let (ends, finals) = run_chunk_on::<R>(isa, sweep, constants, rule, 0..sweep.total());
        let model = &sweep.cells[0].model;
        let dim = model.dim();
        let weights = fingerprint_weights::<R>(dim);
        let mut scratch = Scratch::<R>::new(dim, model.work_len(), rule);
        let mut start = vec![0.0; dim];
        let mut outcomes = std::collections::HashSet::new();
        for id in 0..sweep.total() {
            sweep.initial(id, &mut start);
            let mut theta: Vec<R> = start.iter().map(|&v| R::of(v)).collect();
            let cell = sweep.cell_of(id);
            let end = descend(
                &mut theta,
                R::of(cell.step_size),
                rule,
                &weights,
                &mut scratch,
                |t, g, w| model.gradient(&constants[cell.index], t, g, w),
            );
            let i = id as usize;
            assert_eq!(ends[i], end, "{isa:?} {model:?}: trajectory {id}");
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let reference: Vec<f64> = theta.iter().map(|t| t.to_f64_lossless()).collect();
            assert_eq!(
                bits(&finals[i * dim..(i + 1) * dim]),
                bits(&reference),
                "{isa:?} {model:?}: trajectory {id}"
            );
            outcomes.insert(end.outcome);
        }
        assert!(
            outcomes.len() >= 2,
            "the step sizes should give different outcomes: {outcomes:?}"
        );
    }

    fn every_model<R: Real>(precision: Precision) {
        matches_reference::<R>(
            "kind = \"poly\"",
            "kind = \"uniform\"\nlow = 0.5\nhigh = 2.5",
            "0.1, 0.3, 0.6",
            precision,
        );
        // Another degree than the paper's, which takes the general Horner loop.
        matches_reference::<R>(
            "kind = \"poly\"\ncoefficients = [1.0, 0.0, -2.0, 0.0, 1.0]",
            "kind = \"uniform\"\nlow = 0.2\nhigh = 1.8",
            "0.1, 0.3",
            precision,
        );
        matches_reference::<R>(
            "kind = \"scalar-deep\"\nlayers = 4\nlambda = 2.0",
            "kind = \"balanced\"\nnoise = 0.3",
            "0.05, 0.3",
            precision,
        );
        matches_reference::<R>(
            "kind = \"deep-linear\"\nlayers = 3\nsize = 3\ntarget = { kind = \"psd\", seed = 1 }",
            "kind = \"identity\"\nscale = 0.5",
            "0.05, 0.9",
            precision,
        );
        matches_reference::<R>(
            "kind = \"relu\"\ninput_size = 2\nhidden = 5\noutput_size = 1\nsamples = 8\n\
             inputs = { kind = \"gaussian\", std = 1.0, seed = 1 }\n\
             targets = { kind = \"teacher\", std = 0.5, seed = 2 }\nbias_std = 0.5",
            "kind = \"gaussian\"\nmean = 0.0\nstd = 0.5",
            "0.02, 2.0",
            precision,
        );
    }

    #[test]
    fn packs_match_the_reference_in_f32() {
        every_model::<f32>(Precision::F32);
    }

    #[test]
    fn packs_match_the_reference_in_f64() {
        every_model::<f64>(Precision::F64);
    }
}
