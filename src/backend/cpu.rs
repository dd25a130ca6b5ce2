//! The CPU backend, f64 or f32: every rayon thread streams trajectories
//! through a pack of SIMD lanes with `lanes::descend_lanes`, which is
//! bit-identical to the one-trajectory reference `stopping::descend` that
//! every kernel is held against.

use std::ops::Range;

use std::sync::Mutex;

use crate::aggregate::{needs_assessment, CellStats, PartialTally};
use crate::lanes::{descend_lanes, load_each, LaneScratch, LaneSource, PackGradient};
use crate::models::{Family, Model};
use crate::real::{Pack, Real};
use crate::stopping::{fingerprint_weights, Outcome, Record, StopRule, TrajectoryEnd};
use crate::sweep::Sweep;

pub use crate::isa::Isa;

/// The lanes per pack of the engine that runs `model` in R on a processor
/// that has `isa`: one compiled copy of the lane engine per family,
/// precision and instruction set, each of the width `Family::LANES` gives.
/// The results are the same bits whichever runs, since every lane follows
/// the one-trajectory reference.
pub fn lanes<R: Real>(model: &Model, isa: Isa) -> usize {
    model.lanes(isa, std::mem::size_of::<R>() == 4)
}

/// Runs trajectories `ids` to the end; returns their ends and final iterates
/// (ids.len() × dim, in f64).
pub fn run_chunk<R: Engines>(
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
    use crate::stopping::{descend_with, Scratch};
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
            let steps: Option<Vec<R>> = cell
                .parameter_step_sizes()
                .map(|s| s.into_iter().map(R::of).collect());
            let end = descend_with(
                &mut theta,
                R::of(cell.step_size),
                steps.as_deref(),
                R::of(cell.optimizer.beta),
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
pub fn tally_chunk<R: Engines>(
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> PartialTally {
    tally_chunk_on(Isa::detect(), sweep, constants, rule, ids)
}

/// `run_chunk` with the engines of a processor that has `available`.
fn run_chunk_on<R: Engines>(
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
    let lanes = lanes::<R>(&sweep.cell_of(ids.start).model, available);
    // Each batch's slots for ends and final iterates go with it.
    let slots = ends
        .chunks_mut(lanes)
        .zip(theta.chunks_mut(lanes * dim))
        .map(|(ends, finals)| Slots { ends, finals })
        .collect();
    let job = Job::new(available, sweep, constants, rule, ids, Some(slots));
    R::run(&job);
    drop(job);
    (ends, theta)
}

/// `tally_chunk` with the engines of a processor that has `available`.
fn tally_chunk_on<R: Engines>(
    available: Isa,
    sweep: &Sweep,
    constants: &[Vec<R>],
    rule: &StopRule,
    ids: Range<u64>,
) -> PartialTally {
    let job = Job::new(available, sweep, constants, rule, ids, None);
    let mut parts = R::run(&job).into_iter().map(|sink| match sink {
        Sink::Tally(t) => t.finish(),
        Sink::Keep => unreachable!("a tallied job tallies"),
    });
    let mut total = parts.next().expect("a thread ran");
    for part in parts {
        total.merge(&part);
    }
    total
}

/// A chunk on its way through the pack engines: one model, with one set of
/// constants (see `Sweep::chunks`), handed out a batch of a pack's worth of
/// trajectories at a time.
pub struct Job<'a, R> {
    isa: Isa,
    sweep: &'a Sweep,
    constants: &'a [R],
    rule: &'a StopRule,
    ids: Range<u64>,
    /// The next batch: its first trajectory (counted from `ids.start`), and
    /// the slots of the batches still to come where the job keeps its ends
    /// (None where each thread tallies them as they come).
    next: Mutex<(usize, Option<std::vec::IntoIter<Slots<'a>>>)>,
}

/// A batch's slots for ends and final iterates, in the chunk's output.
struct Slots<'a> {
    ends: &'a mut [TrajectoryEnd],
    finals: &'a mut [f64],
}

impl<'a, R: Real> Job<'a, R> {
    fn new(
        isa: Isa,
        sweep: &'a Sweep,
        constants: &'a [Vec<R>],
        rule: &'a StopRule,
        ids: Range<u64>,
        slots: Option<Vec<Slots<'a>>>,
    ) -> Self {
        // (`Packs::run` refuses an instruction set the processor lacks.)
        Job {
            isa,
            sweep,
            constants: &constants[sweep.cell_of(ids.start).index],
            rule,
            ids,
            next: Mutex::new((0, slots.map(Vec::into_iter))),
        }
    }

    /// The next batch of up to `lanes` trajectories (the lanes the slots were
    /// cut for, where the job keeps its ends): its first (counted from
    /// `ids.start`), its size and its slots; None when none is left.
    fn batch(&self, lanes: usize) -> Option<(usize, usize, Option<Slots<'a>>)> {
        let n = (self.ids.end - self.ids.start) as usize;
        let mut next = self.next.lock().expect("the batches");
        let first = next.0;
        if first >= n {
            return None;
        }
        next.0 += lanes;
        let slots = next.1.as_mut().map(|s| s.next().expect("a batch's slots"));
        Some((first, lanes.min(n - first), slots))
    }

    /// A thread's sink for the ends of its trajectories.
    fn sink(&self) -> Sink<'a> {
        if self.next.lock().expect("the batches").1.is_some() {
            Sink::Keep
        } else {
            let first_cell = self.sweep.cell_of(self.ids.start).index;
            let cells = self.sweep.cell_of(self.ids.end - 1).index + 1 - first_cell;
            Sink::Tally(Tally::new(self.sweep, first_cell, cells))
        }
    }
}

/// `Avx2` or `Avx512`, a copy of the lane engine whose code is compiled
/// with the instruction set's features on x86-64 (and is the baseline
/// elsewhere, where `Isa::detect` never picks it). (Written out because the
/// `multiversion` crate's safe wrapper moves the body into a closure that
/// does not get the target features.)
macro_rules! copy_for {
    (Avx2) => {
        copy_for!(Avx2, "avx2");
    };
    (Avx512) => {
        copy_for!(Avx512, "avx512f,avx512vl,avx512bw,avx512dq,avx2");
    };
    ($isa:ident, $features:literal) => {
        #[doc = concat!("The engine compiled for ", stringify!($isa), ".")]
        pub enum $isa {}

        impl $crate::backend::cpu::IsaCopy for $isa {
            const ISA: $crate::backend::cpu::Isa = $crate::backend::cpu::Isa::$isa;

            #[inline(always)]
            unsafe fn run<R: $crate::real::Real, const N: usize, F: $crate::models::Family>(
                packs: &$crate::backend::cpu::Packs<'_, R, N, F, Self>,
                scratch: &mut $crate::lanes::LaneScratch<R, N>,
                source: &mut impl $crate::lanes::LaneSource<R, N>,
            ) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the caller's promise.
                unsafe {
                    run(packs, scratch, source)
                }
                #[cfg(not(target_arch = "x86_64"))]
                packs.run_inline(scratch, source)
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn run<
            R: $crate::real::Real,
            const N: usize,
            F: $crate::models::Family,
            C: $crate::backend::cpu::IsaCopy,
        >(
            packs: &$crate::backend::cpu::Packs<'_, R, N, F, C>,
            scratch: &mut $crate::lanes::LaneScratch<R, N>,
            source: &mut impl $crate::lanes::LaneSource<R, N>,
        ) {
            packs.run_inline(scratch, source)
        }
    };
}

/// The working precisions the pack engines are compiled for. Each has one
/// table of engines, generated from the family registry, so that the
/// engines are compiled once, in this crate, whatever calls them.
pub trait Engines: Real {
    /// Runs the job on every thread, through the engine for its model on
    /// its instruction set; returns each thread's sink.
    fn run<'a>(job: &Job<'a, Self>) -> Vec<Sink<'a>>;
}

/// `Engines` for one precision (`$index` 0 for f32, 1 for f64): for every
/// registered family, its engine on each instruction set, of the width
/// `Family::LANES` gives.
///
/// Each family's AVX2 and AVX-512 copies are compiled in a module of their
/// own, `$copies::$variant::{avx2, avx512}`. rustc places every instance of
/// a generic function in the codegen unit of the module that defines it, so
/// with one module for all the copies, one unit held every engine: LLVM
/// spent 44 s on it on one core, the other idle for the last 30 s of it,
/// and 19 s more in ThinLTO's second round, of the library's 124 s in a
/// fresh build. Apart, they are optimized side by side.
macro_rules! engine_table {
    ($real:ty, $index:literal, $copies:ident, ; $($(#[$doc:meta])* $variant:ident($family:ty, $spec:ty)),* $(,)?) => {
        mod $copies {
            $(
                #[allow(non_snake_case)]
                pub mod $variant {
                    pub mod avx512 {
                        copy_for!(Avx512);
                    }
                    pub mod avx2 {
                        copy_for!(Avx2);
                    }
                }
            )*
        }

        impl Engines for $real {
            fn run<'a>(job: &Job<'a, $real>) -> Vec<Sink<'a>> {
                match &job.sweep.cell_of(job.ids.start).model {
                    // The pack engines take plain GD steps of one step size;
                    // an optimizer with a velocity, or per-layer step sizes,
                    // run one trajectory at a time, in the batches the job's
                    // slots are cut for.
                    $(Model::$variant(model) if !job.rule.plain() => {
                        let lanes = <$family as Family>::LANES.of(job.isa, $index == 0);
                        run_reference(job, model, lanes)
                    })*
                    $(Model::$variant(model) => match job.isa {
                        Isa::Avx512 => run_packs::<
                            $real,
                            { <$family as Family>::LANES.avx512[$index] },
                            $family,
                            $copies::$variant::avx512::Avx512,
                        >(job, model),
                        Isa::Avx2 => run_packs::<
                            $real,
                            { <$family as Family>::LANES.avx2[$index] },
                            $family,
                            $copies::$variant::avx2::Avx2,
                        >(job, model),
                        Isa::Baseline => baseline::<
                            $real,
                            { <$family as Family>::LANES.baseline[$index] },
                            $family,
                        >(job, model),
                    },)*
                }
            }
        }
    };
}

crate::for_each_family!(engine_table, f32, 0, copies_f32);
crate::for_each_family!(engine_table, f64, 1, copies_f64);

/// The engine for a processor without the vector instructions the other
/// copies are compiled for. On x86-64 that is a processor without AVX2, rare
/// enough that it runs the one-trajectory reference, in batches of N, rather
/// than a pack engine compiled for it: those copies were the largest code in
/// the library, and a fresh build spent half a minute on them. Elsewhere it
/// is the pack engine.
#[cfg(target_arch = "x86_64")]
fn baseline<'a, R: Real, const N: usize, F: Family>(job: &Job<'a, R>, model: &F) -> Vec<Sink<'a>> {
    run_reference(job, model, N)
}

#[cfg(not(target_arch = "x86_64"))]
fn baseline<'a, R: Real, const N: usize, F: Family>(job: &Job<'a, R>, model: &F) -> Vec<Sink<'a>> {
    run_packs::<R, N, F, copies::Baseline>(job, model)
}

/// Runs a job on every thread, a batch of `batch` trajectories at a time,
/// each trajectory alone through the one-trajectory reference
/// `stopping::descend_with`, which every pack engine matches bit for bit.
fn run_reference<'a, R: Real, F: Family>(
    job: &Job<'a, R>,
    model: &F,
    batch: usize,
) -> Vec<Sink<'a>> {
    use crate::stopping::{descend_with, Scratch};
    let dim = model.dim();
    let weights = fingerprint_weights::<R>(dim);
    rayon::broadcast(|_| {
        let mut sink = job.sink();
        let mut scratch = Scratch::<R>::new(dim, model.work_len(), job.rule);
        let (mut starts, mut blocks) = (Vec::new(), Vec::new());
        let mut step_sizes = vec![0.0; batch];
        let mut betas = vec![0.0; batch];
        // The step size of each parameter, of the cell `steps_of`, where
        // the layers' differ.
        let (mut steps, mut steps_of) = (Vec::<R>::new(), None);
        let mut theta = vec![R::zero(); dim];
        let mut last = vec![0.0; dim];
        while let Some((first, count, mut slots)) = job.batch(batch) {
            let start = job.ids.start + first as u64;
            let ids = start..start + count as u64;
            starts.clear();
            starts.resize(count * dim, 0.0);
            job.sweep.initials(ids.clone(), &mut starts, &mut blocks);
            job.sweep.step_sizes(ids.clone(), &mut step_sizes[..count]);
            job.sweep.betas(ids, &mut betas[..count]);
            for place in 0..count {
                for (t, &v) in theta
                    .iter_mut()
                    .zip(&starts[place * dim..(place + 1) * dim])
                {
                    *t = R::of(v);
                }
                let cell = job.sweep.cell_of(start + place as u64);
                if steps_of != Some(cell.index) {
                    steps.clear();
                    if let Some(s) = cell.parameter_step_sizes() {
                        steps.extend(s.into_iter().map(R::of));
                    }
                    steps_of = Some(cell.index);
                }
                let end = descend_with(
                    &mut theta,
                    R::of(step_sizes[place]),
                    (!steps.is_empty()).then_some(&steps[..]),
                    R::of(betas[place]),
                    job.rule,
                    &weights,
                    &mut scratch,
                    |t, g, w| model.gradient(job.constants, t, g, w),
                );
                for (l, t) in last.iter_mut().zip(&theta) {
                    *l = t.to_f64_lossless();
                }
                sink.end(slots.as_mut(), place, start + place as u64, end, &last);
            }
        }
        sink
    })
}

/// Runs a job through packs of N lanes of family F's engine compiled for
/// instruction set C, on every thread.
fn run_packs<'a, R: Real, const N: usize, F: Family, C: IsaCopy>(
    job: &Job<'a, R>,
    model: &F,
) -> Vec<Sink<'a>> {
    let (dim, work) = (model.dim(), model.work_len());
    let weights: Vec<Pack<R, N>> = fingerprint_weights::<R>(dim)
        .into_iter()
        .map(Pack::splat)
        .collect();
    let packs = Packs::<R, N, F, C>::new(model, job.constants, &weights, job.rule);
    // Every thread streams trajectories through one pack, taking the next
    // unstarted batch of a pack's worth as lanes free up, so no thread waits
    // on a slow pack while trajectories remain. Which lane runs a trajectory
    // changes none of its bits.
    rayon::broadcast(|_| {
        let mut source = Feed::<R, N> {
            job,
            taken: Vec::new(),
            count: 0,
            loaded: 0,
            in_lane: [(0, 0); N],
            dim,
            starts: Vec::with_capacity(N * dim),
            step_sizes: vec![0.0; N],
            blocks: Vec::new(),
            last: vec![0.0; dim],
            sink: job.sink(),
        };
        let mut scratch = LaneScratch::<R, N>::new(dim, work, job.rule);
        packs.run(&mut scratch, &mut source);
        source.sink
    })
}

/// What becomes of a thread's trajectories as they end.
pub enum Sink<'a> {
    /// Every end and final iterate into its batch's slots.
    Keep,
    /// Every end assessed and counted as it comes.
    Tally(Tally<'a>),
}

impl Sink<'_> {
    /// Trajectory `id`, at `place` in its batch, whose slots are `slots`,
    /// ended at `last` (in f64).
    #[inline(always)]
    fn end(
        &mut self,
        slots: Option<&mut Slots<'_>>,
        place: usize,
        id: u64,
        end: TrajectoryEnd,
        last: &[f64],
    ) {
        match (self, slots) {
            (Sink::Keep, Some(slots)) => {
                slots.ends[place] = end;
                let dim = last.len();
                slots.finals[place * dim..(place + 1) * dim].copy_from_slice(last);
            }
            (Sink::Tally(tally), _) => tally.end(id, end, last),
            (Sink::Keep, None) => unreachable!("a job that keeps its ends has slots"),
        }
    }
}

/// Ends needing an assessment kept until this many wait, then assessed
/// together (see `Model::assess_many`).
const ASSESSED_TOGETHER: usize = 64;

/// One thread's tally of a chunk's cells, each trajectory counted as it ends.
pub struct Tally<'a> {
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
            bounds: sweep.cells[range].iter().map(|c| c.bound()).collect(),
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
            cell.assess_many(
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
                self.part.cells[c].add(&end, Some(a), self.bounds[c], a.loss);
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

    /// Counts trajectory `id`'s end, or keeps it for an assessment.
    #[inline(always)]
    fn end(&mut self, id: u64, end: TrajectoryEnd, last: &[f64]) {
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
            let loss = self.sweep.cells[self.part.first_cell + c].model.loss(last);
            self.part.cells[c].add(&end, None, self.bounds[c], loss);
        }
    }
}

/// One thread's share of a job: batches taken in turn from those all
/// threads share, each trajectory's end given to the thread's sink.
struct Feed<'a, 'j, R, const N: usize> {
    job: &'j Job<'a, R>,
    /// The batches taken: each one's first trajectory (counted from the
    /// chunk's first) and its slots.
    taken: Vec<(usize, Option<Slots<'a>>)>,
    /// The size of the last batch taken, and how many of it were loaded.
    count: usize,
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
    sink: Sink<'a>,
}

impl<R: Real, const N: usize> Feed<'_, '_, R, N> {
    /// Takes the next batch, drawing its initial parameters and step sizes;
    /// None when none is left.
    #[inline(never)]
    fn take(&mut self) -> Option<()> {
        let (first, count, slots) = self.job.batch(N)?;
        let start = self.job.ids.start + first as u64;
        let ids = start..start + count as u64;
        self.starts.clear();
        self.starts.resize(count * self.dim, 0.0);
        self.job
            .sweep
            .initials(ids.clone(), &mut self.starts, &mut self.blocks);
        self.job
            .sweep
            .step_sizes(ids, &mut self.step_sizes[..count]);
        self.taken.push((first, slots));
        (self.count, self.loaded) = (count, 0);
        Some(())
    }
}

impl<R: Real, const N: usize> LaneSource<R, N> for Feed<'_, '_, R, N> {
    /// Always inlined, into the engine's copy for its instruction set.
    #[inline(always)]
    fn load(&mut self, lane: usize, theta: &mut [Pack<R, N>]) -> Option<R> {
        if self.loaded == self.count {
            self.take()?;
        }
        let place = self.loaded;
        let start = &self.starts[place * self.dim..(place + 1) * self.dim];
        for (t, &v) in theta.iter_mut().zip(start) {
            t.0[lane] = R::of(v);
        }
        self.in_lane[lane] = (self.taken.len() - 1, place);
        self.loaded += 1;
        Some(R::of(self.step_sizes[place]))
    }

    /// A fresh batch of N goes into the lanes together, converted as a
    /// pack; otherwise lane by lane.
    #[inline(always)]
    fn load_all(&mut self, theta: &mut [Pack<R, N>], step_size: &mut Pack<R, N>) -> usize {
        let dim = self.dim;
        if self.loaded == self.count {
            if self.take().is_none() {
                return 0;
            }
            if self.count == N {
                for (i, t) in theta.iter_mut().enumerate() {
                    for (l, v) in t.0.iter_mut().enumerate() {
                        *v = R::of(self.starts[l * dim + i]);
                    }
                }
                for (d, &s) in step_size.0.iter_mut().zip(&self.step_sizes) {
                    *d = R::of(s);
                }
                let batch = self.taken.len() - 1;
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
        let id = self.job.ids.start + (*first + place) as u64;
        self.sink.end(slots.as_mut(), place, id, end, &self.last);
    }
}

/// What every pack of a job shares: the model, its constants and the
/// fingerprint weights (splatted), and the stopping rule; run by the copy of
/// the lane engine compiled for instruction set C.
pub struct Packs<'a, R, const N: usize, F, C> {
    model: &'a F,
    constants: &'a [R],
    weights: &'a [Pack<R, N>],
    rule: &'a StopRule,
    copy: std::marker::PhantomData<C>,
}

impl<'a, R: Real, const N: usize, F: Family, C: IsaCopy> Packs<'a, R, N, F, C> {
    pub fn new(
        model: &'a F,
        constants: &'a [R],
        weights: &'a [Pack<R, N>],
        rule: &'a StopRule,
    ) -> Self {
        Packs {
            model,
            constants,
            weights,
            rule,
            copy: std::marker::PhantomData,
        }
    }

    /// One pack to its end. The lane engine and the gradient are always
    /// inlined into the copy, so one binary stays portable and uses the
    /// vectors it finds. Rust never fuses a multiply and an add on its own,
    /// so every copy computes the same bits.
    ///
    /// Panics where the processor lacks C's instruction set.
    pub fn run(&self, scratch: &mut LaneScratch<R, N>, source: &mut impl LaneSource<R, N>) {
        assert!(
            Isa::available().contains(&C::ISA),
            "this processor cannot run the {:?} engines",
            C::ISA
        );
        // SAFETY: the processor has every feature the copy is compiled for.
        unsafe { C::run(self, scratch, source) }
    }

    #[inline(always)]
    fn run_inline(&self, scratch: &mut LaneScratch<R, N>, source: &mut impl LaneSource<R, N>) {
        descend_lanes(self.rule, self.weights, scratch, self, source)
    }
}

impl<R: Real, const N: usize, F: Family, C: IsaCopy> PackGradient<R, N> for &Packs<'_, R, N, F, C> {
    #[inline(always)]
    fn write(
        &mut self,
        theta: &[Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
    ) {
        self.model.gradient(self.constants, theta, gradient, work)
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
        if F::ROLLED_ON_AVX512 && C::ISA == Isa::Avx512 {
            // SAFETY: only the AVX-512 copy of the engine, which `run` runs
            // only on a processor that has the features, comes here.
            return unsafe {
                copies::advance_avx512::<R, N, F>(
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
        self.model
            .advance(self.constants, theta, gradient, work, delta, steps, record)
    }
}

/// An instruction set a copy of the lane engine is compiled for.
pub trait IsaCopy: Sized + Send + Sync + 'static {
    const ISA: Isa;

    /// `Packs::run_inline`, compiled for `ISA`.
    ///
    /// # Safety
    /// The processor must have `ISA`.
    unsafe fn run<R: Real, const N: usize, F: Family>(
        packs: &Packs<'_, R, N, F, Self>,
        scratch: &mut LaneScratch<R, N>,
        source: &mut impl LaneSource<R, N>,
    );
}

/// The copies of the lane engine, one per instruction set, for any family.
/// The engine table has its own, a module per family and precision (see
/// `engine_table!`); these serve callers outside it, such as the benches.
pub mod copies {
    use super::*;

    /// Whatever the build targets.
    pub enum Baseline {}

    impl IsaCopy for Baseline {
        const ISA: Isa = Isa::Baseline;

        #[inline(always)]
        unsafe fn run<R: Real, const N: usize, F: Family>(
            packs: &Packs<'_, R, N, F, Self>,
            scratch: &mut LaneScratch<R, N>,
            source: &mut impl LaneSource<R, N>,
        ) {
            packs.run_inline(scratch, source)
        }
    }

    mod avx512 {
        copy_for!(Avx512);
    }
    mod avx2 {
        copy_for!(Avx2);
    }
    pub use avx2::Avx2;
    pub use avx512::Avx512;

    /// `Family::advance_rolled` compiled with AVX-512, as a function of its
    /// own (see `Family::ROLLED_ON_AVX512`).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn advance_avx512<R: Real, const N: usize, F: Family>(
        model: &F,
        constants: &[R],
        theta: &mut [Pack<R, N>],
        gradient: &mut [Pack<R, N>],
        work: &mut [Pack<R, N>],
        // (By reference: a pack passed by value was copied at every call.)
        delta: &Pack<R, N>,
        steps: u64,
        record: Option<Record<'_, Pack<R, N>>>,
    ) {
        model.advance_rolled(constants, theta, gradient, work, *delta, steps, record)
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
    use crate::stopping::{descend_with, Scratch};

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
    fn matches_reference<R: Engines>(model: &str, init: &str, steps: &str, precision: Precision) {
        for early_exit in [true, false] {
            let text = format!(
                "trajectories = 301\nmax_iters = 713\nseed = 3\n[model]\n{model}\n[init]\n{init}\n\
                 [steps]\nvalues = [{steps}]\n[stop]\ncheck_every = 50\nearly_exit = {early_exit}\n"
            );
            let sweep = Sweep::new(Spec::from_toml(&text, "test").unwrap()).unwrap();
            let rule = sweep.rule(precision);
            let constants = constants::<R>(&sweep);
            // Every engine this processor can run, the baseline included.
            for isa in Isa::available() {
                held_to_reference::<R>(&sweep, &rule, &constants, isa);
                tally_matches_one_by_one::<R>(&sweep, &rule, &constants, isa);
            }
        }
    }

    /// The tally the backend makes as trajectories end is the one that
    /// assessing and adding each end, one at a time, gives: over chunks that
    /// start and end inside cells, on every engine.
    fn tally_matches_one_by_one<R: Engines>(
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
                    .then(|| cell.assess(last, sweep.replicate_of(id)));
                expected.cells[cell.index - first_cell].add(
                    &ends[i],
                    assessment.as_ref(),
                    cell.bound(),
                    crate::aggregate::final_loss(cell, assessment.as_ref(), last),
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

    fn held_to_reference<R: Engines>(
        sweep: &Sweep,
        rule: &StopRule,
        constants: &[Vec<R>],
        isa: Isa,
    ) {
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
            let end = descend_with(
                &mut theta,
                R::of(cell.step_size),
                None,
                R::of(cell.optimizer.beta),
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

    fn every_model<R: Engines>(precision: Precision) {
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
        for activation in ["tanh", "relu", "identity"] {
            matches_reference::<R>(
                &format!(
                    "kind = \"mlp\"\ninput_size = 1\nhidden = [4, 3]\noutput_size = 1\nsamples = 2\n\
                     activation = \"{activation}\"\n\
                     inputs = {{ kind = \"gaussian\", std = 1.0, seed = 1 }}\n\
                     targets = {{ kind = \"teacher\", std = 0.5, seed = 2 }}"
                ),
                "kind = \"gaussian\"\nmean = 0.0\nstd = 0.5",
                "0.2, 0.5, 8.0",
                precision,
            );
        }
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
