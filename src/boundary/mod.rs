//! `stepsweep boundary`: the edge between step sizes that train and step
//! sizes that do not, found directly instead of by a dense grid, and
//! measured.
//!
//! The plane is the spec's two axes (the step size and the second axis),
//! over the ranges their values span, laid out as a lattice of
//! `resolution + 1` points per axis (log-spaced where the spec's axis is).
//! Refinement starts from a coarse grid of boxes and splits only the boxes
//! whose four corners disagree in outcome, down to boxes one lattice cell
//! wide: those are the boundary boxes. A point's outcome is its class (see
//! `eval::Verdict`): whether it converges to a minimum, and to which of the
//! family's minimizers. Every point draws its start from a stream keyed by
//! its lattice index, so its outcome does not depend on which level or
//! batch ran it, and adaptive refinement sees exactly what a dense grid of
//! the same lattice sees wherever it looks.
//!
//! Refinement misses a boundary that enters and leaves a box between its
//! corners (a thin island, a fold). So a box is split not only where its
//! corners disagree in class but also where they disagree in fate
//! (converging, diverging, neither: islands sit where the dynamics
//! change), its neighbours are split with it (a halo, one box by default),
//! and at the finest level the boundary is followed from box to box.

pub mod critical;
pub mod dimension;
pub mod eval;
mod figures;
mod files;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::memory;
use crate::real::Precision;
use crate::spec::Spec;
use crate::sweep::{Point, Sweep};

pub use eval::{Criterion, Evaluator, Fate, Verdict};
pub use files::{run, zoom_frames, BoundaryOptions, ZoomSpec};

/// One axis of the lattice: `points` values from `lo` to `hi`, evenly
/// spaced, in log10 where `log`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LatticeAxis {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    pub points: u64,
}

impl LatticeAxis {
    pub fn value(&self, i: u64) -> f64 {
        let last = self.points - 1;
        if i == 0 {
            return self.lo;
        }
        if i == last {
            return self.hi;
        }
        let t = i as f64 / last as f64;
        if self.log {
            let (a, b) = (self.lo.log10(), self.hi.log10());
            10f64.powf(a + (b - a) * t)
        } else {
            self.lo + (self.hi - self.lo) * t
        }
    }

    /// The smallest gap between neighbouring values relative to their size:
    /// how finely the working precision must resolve them.
    pub fn relative_spacing(&self) -> f64 {
        let last = self.points - 1;
        [(0, 1), (last - 1, last)]
            .into_iter()
            .map(|(a, b)| {
                let (x, y) = (self.value(a), self.value(b));
                (y - x).abs() / x.abs().max(y.abs()).max(f64::MIN_POSITIVE)
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The same axis over [lo, hi] (a zoom's window).
    pub fn window(&self, lo: f64, hi: f64) -> LatticeAxis {
        LatticeAxis {
            lo,
            hi,
            ..self.clone()
        }
    }
}

/// Most boxes per axis at the finest level: lattice indices, and a point's
/// stream (index × replicates), stay far inside 2^50.
pub const MAX_RESOLUTION: u64 = 1 << 20;

/// Bytes one evaluated point holds (its verdict in a hash map, its key in
/// the journal), for the memory check.
const BYTES_PER_POINT: u64 = 96;

/// The plane a boundary run refines.
#[derive(Clone, Debug)]
pub struct Plane {
    pub spec: Spec,
    pub steps: LatticeAxis,
    pub axis: LatticeAxis,
    /// The second axis's parameter, and the column it takes in outputs.
    pub param: String,
    pub column: String,
    /// Boxes per axis at the coarsest level, and the levels of halving below it.
    pub coarse: u64,
    pub depth: u32,
    /// The layer a `steps.layerK` axis sets.
    pub layer: Option<usize>,
    /// Boxes within this many of a boundary box (Chebyshev distance, at
    /// its level) are split too.
    pub halo: u64,
}

impl Plane {
    /// The plane of `spec`'s two axes, refined from `coarse` boxes per axis
    /// down to `coarse · 2^depth`. Refuses a spec without a second axis, and
    /// a depth whose lattice could not be held in memory.
    pub fn new(spec: &Spec, coarse: u64, depth: u32) -> Result<Plane> {
        let Some(axis) = &spec.axis else {
            return Err(Error::spec(
                "boundary refines a plane, but this spec has no second axis; add an [axis] table (for example param = \"init.x0\") to the spec",
            ));
        };
        if !(2..=4096).contains(&coarse) {
            return Err(Error::spec(format!(
                "--coarse is {coarse}; give from 2 to 4096 boxes per axis"
            )));
        }
        let size = 1u64
            .checked_shl(depth)
            .and_then(|s| s.checked_mul(coarse))
            .filter(|&s| s <= MAX_RESOLUTION)
            .ok_or_else(|| {
                Error::spec(format!(
                    "--depth {depth} from {coarse} coarse boxes is more than {MAX_RESOLUTION} boxes per axis; give a smaller depth"
                ))
            })?;
        let points = size + 1;
        // The worst case: a boundary that fills the plane evaluates every point.
        let need = u128::from(points) * u128::from(points) * u128::from(BYTES_PER_POINT);
        let budget = memory::budget_bytes();
        if need > u128::from(budget) {
            let fits = (0..=depth)
                .rev()
                .find(|&d| {
                    let p = u128::from((coarse << d) + 1);
                    p * p * u128::from(BYTES_PER_POINT) <= u128::from(budget)
                })
                .unwrap_or(0);
            return Err(Error::spec(format!(
                "--depth {depth} makes a lattice of {points}×{points} points, which needs about {:.1} GiB of memory where the boundary fills the plane but {:.1} GiB is available; give a depth of at most {fits}",
                need as f64 / (1u64 << 30) as f64,
                budget as f64 / (1u64 << 30) as f64
            )));
        }
        let steps = spec.steps.resolve("steps")?;
        let values = axis.axis_values().resolve("axis")?;
        let layer = Sweep::layer_of_axis(spec, &values)?;
        let lattice = |name: &str, v: &[f64], log: bool| -> Result<LatticeAxis> {
            let (lo, hi) = (v[0], v[v.len() - 1]);
            if lo >= hi {
                return Err(Error::spec(format!(
                    "the {name} axis holds one value ({lo}); boundary needs a range, so give it at least two values"
                )));
            }
            Ok(LatticeAxis {
                name: name.to_string(),
                lo,
                hi,
                log,
                points,
            })
        };
        let column = axis.column();
        Ok(Plane {
            steps: lattice("step size", &steps, spec.steps.is_log())?,
            axis: lattice(&column, &values, axis.axis_values().is_log())?,
            param: axis.param.clone(),
            column,
            coarse,
            depth,
            layer,
            halo: 1,
            spec: spec.clone(),
        })
    }

    /// Boxes per axis at the finest level.
    pub fn size(&self) -> u64 {
        self.coarse << self.depth
    }

    pub fn points(&self) -> u64 {
        self.size() + 1
    }

    /// The lattice index of point (i, j): i along the step size, j along the axis.
    pub fn index(&self, i: u64, j: u64) -> u64 {
        j * self.points() + i
    }

    /// Point `index`, drawing replicate r's start from stream
    /// index · replicates + r: the trajectory id a dense sweep of this
    /// lattice would give it.
    pub fn point(&self, index: u64, replicates: u64) -> Point {
        let n = self.points();
        Point {
            step_size: self.steps.value(index % n),
            axis_value: Some(self.axis.value(index / n)),
            stream: index * replicates,
        }
    }

    /// Refuses a plane whose neighbouring lattice values the working
    /// precision cannot tell apart.
    pub fn check_precision(&self, precision: Precision, what: &str) -> Result<()> {
        let eps = match precision {
            Precision::F32 => f64::from(f32::EPSILON),
            Precision::F64 => f64::EPSILON,
        };
        for axis in [&self.steps, &self.axis] {
            let spacing = axis.relative_spacing();
            if spacing.is_nan() || spacing < 8.0 * eps {
                return Err(Error::spec(format!(
                    "{what} spaces its {} values {spacing:.1e} apart relative to their size, closer than {} tells apart (8 ulps, {:.1e}); zoom less deep (fewer --frames or a smaller --factor) or lower the resolution",
                    axis.name,
                    precision.name(),
                    8.0 * eps
                )));
            }
        }
        Ok(())
    }
}

/// A box of the lattice: its lower corner and its side, in lattice cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Square {
    pub i: u64,
    pub j: u64,
    pub side: u64,
}

impl Square {
    fn corners(self) -> [(u64, u64); 4] {
        let s = self.side;
        [
            (self.i, self.j),
            (self.i + s, self.j),
            (self.i, self.j + s),
            (self.i + s, self.j + s),
        ]
    }

    fn children(self) -> [Square; 4] {
        let h = self.side / 2;
        [(0, 0), (h, 0), (0, h), (h, h)].map(|(di, dj)| Square {
            i: self.i + di,
            j: self.j + dj,
            side: h,
        })
    }
}

/// What refinement found.
#[derive(Debug, Default)]
pub struct Refined {
    /// Every evaluated point's verdict, by lattice index.
    pub verdicts: HashMap<u64, Verdict>,
    /// The boxes that were split, at every level.
    pub split: HashSet<Square>,
    /// Boundary boxes (corners disagreeing) at each level, coarsest first:
    /// (side in lattice cells, count).
    pub levels: Vec<(u64, u64)>,
    /// The boundary boxes of side 1, sorted by (j, i).
    pub finest: Vec<Square>,
}

impl Refined {
    pub fn class(&self, plane: &Plane, (i, j): (u64, u64)) -> Option<u8> {
        self.verdicts.get(&plane.index(i, j)).map(|v| v.class)
    }

    fn disagrees(&self, plane: &Plane, sq: Square) -> bool {
        let classes = sq.corners().map(|c| self.class(plane, c));
        classes.iter().any(|c| *c != classes[0])
    }

    /// Whether the dynamics change inside `sq`: its corners disagree in
    /// class, or in fate (converging, diverging, neither), which the classes
    /// lump together where no minimum is reached. Islands of one class sit
    /// where the dynamics change, so refinement splits these boxes too.
    fn changes(&self, plane: &Plane, sq: Square) -> bool {
        let fates = sq
            .corners()
            .map(|c| self.verdicts.get(&plane.index(c.0, c.1)).map(|v| v.fate));
        self.disagrees(plane, sq) || fates.iter().any(|f| *f != fates[0])
    }
}

/// What receives each batch of evaluated points: (lattice index, verdict).
pub type Commit<'a> = dyn FnMut(&[(u64, Verdict)]) -> Result<()> + 'a;

/// Where evaluated points go as they arrive (the journal), and whether to stop.
pub struct Sink<'a> {
    pub commit: Box<Commit<'a>>,
    pub stop: Option<Arc<AtomicBool>>,
    pub progress: Box<dyn FnMut(u64) + 'a>,
}

impl Sink<'_> {
    /// A sink that keeps nothing and never stops: for runs without a journal.
    pub fn discard() -> Sink<'static> {
        Sink {
            commit: Box::new(|_| Ok(())),
            stop: None,
            progress: Box::new(|_| {}),
        }
    }
}

/// Evaluates the points of `indices` not yet known, in batches, each
/// committed before the next runs.
fn evaluate(
    plane: &Plane,
    eval: &mut Evaluator,
    replicates: u64,
    indices: impl IntoIterator<Item = u64>,
    known: &mut HashMap<u64, Verdict>,
    sink: &mut Sink,
) -> Result<()> {
    let mut todo: Vec<u64> = indices
        .into_iter()
        .filter(|k| !known.contains_key(k))
        .collect();
    todo.sort_unstable();
    todo.dedup();
    for batch in todo.chunks(eval.batch_points()) {
        if sink.stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)) {
            return Err(Error::Interrupted(
                "stopped; the journal keeps every point evaluated, so add --resume to finish"
                    .into(),
            ));
        }
        let points: Vec<Point> = batch.iter().map(|&k| plane.point(k, replicates)).collect();
        let verdicts = eval.evaluate(&points)?;
        let done: Vec<(u64, Verdict)> = batch.iter().copied().zip(verdicts).collect();
        (sink.commit)(&done)?;
        known.extend(done);
        (sink.progress)(batch.len() as u64);
    }
    Ok(())
}

/// Refines `plane` adaptively from its coarse grid, starting from the
/// points already `known` (a resumed run's).
pub fn refine(
    plane: &Plane,
    eval: &mut Evaluator,
    replicates: u64,
    known: HashMap<u64, Verdict>,
    sink: &mut Sink,
) -> Result<Refined> {
    let mut out = Refined {
        verdicts: known,
        ..Refined::default()
    };
    let top = 1u64 << plane.depth;
    let mut boxes: Vec<Square> = (0..plane.coarse)
        .flat_map(|j| {
            (0..plane.coarse).map(move |i| Square {
                i: i * top,
                j: j * top,
                side: top,
            })
        })
        .collect();
    loop {
        let corners = boxes
            .iter()
            .flat_map(|b| b.corners())
            .map(|(i, j)| plane.index(i, j));
        evaluate(plane, eval, replicates, corners, &mut out.verdicts, sink)?;
        let boundary: Vec<Square> = boxes
            .iter()
            .copied()
            .filter(|&b| out.disagrees(plane, b))
            .collect();
        let side = boxes.first().map_or(1, |b| b.side);
        if side == 1 {
            out.finest = trace(plane, eval, replicates, &boxes, boundary, &mut out, sink)?;
            out.levels.push((1, out.finest.len() as u64));
            return Ok(out);
        }
        out.levels.push((side, boundary.len() as u64));
        let changing: Vec<Square> = boxes
            .iter()
            .copied()
            .filter(|&b| out.changes(plane, b))
            .collect();
        // The boxes where the dynamics change and their neighbours, each
        // split in four.
        let size = plane.size();
        let mut next: HashSet<Square> = HashSet::new();
        for b in &changing {
            let h = plane.halo as i64;
            for dj in -h..=h {
                for di in -h..=h {
                    let (i, j) = (b.i as i64 + di * side as i64, b.j as i64 + dj * side as i64);
                    if i < 0 || j < 0 || i as u64 >= size || j as u64 >= size {
                        continue;
                    }
                    let sq = Square {
                        i: i as u64,
                        j: j as u64,
                        side,
                    };
                    if out.split.insert(sq) {
                        next.extend(sq.children());
                    }
                }
            }
        }
        boxes = next.into_iter().collect();
        boxes.sort();
    }
}

/// Follows the boundary at the finest level from the boxes refinement
/// found: the unit boxes next to a boundary box are examined, wave after
/// wave, until no new boundary box turns up. A boundary that is connected
/// at the finest scale is then found whole, even where it strays from the
/// boxes the coarser levels split (thin features, a boundary that crosses a
/// coarse box's edge twice); islands that no coarser box caught stay
/// missed. Waves are sorted, so the result does not depend on batching.
fn trace(
    plane: &Plane,
    eval: &mut Evaluator,
    replicates: u64,
    examined: &[Square],
    boundary: Vec<Square>,
    out: &mut Refined,
    sink: &mut Sink,
) -> Result<Vec<Square>> {
    let size = plane.size();
    let mut examined: HashSet<Square> = examined.iter().copied().collect();
    let mut found: Vec<Square> = boundary.clone();
    let mut frontier = boundary;
    while !frontier.is_empty() {
        let mut next: Vec<Square> = Vec::new();
        for b in &frontier {
            for dj in -1i64..=1 {
                for di in -1i64..=1 {
                    let (i, j) = (b.i as i64 + di, b.j as i64 + dj);
                    if i < 0 || j < 0 || i as u64 >= size || j as u64 >= size {
                        continue;
                    }
                    let sq = Square {
                        i: i as u64,
                        j: j as u64,
                        side: 1,
                    };
                    if examined.insert(sq) {
                        next.push(sq);
                    }
                }
            }
        }
        next.sort();
        let corners = next
            .iter()
            .flat_map(|b| b.corners())
            .map(|(i, j)| plane.index(i, j));
        evaluate(plane, eval, replicates, corners, &mut out.verdicts, sink)?;
        frontier = next
            .into_iter()
            .filter(|&b| out.disagrees(plane, b))
            .collect();
        found.extend(&frontier);
    }
    found.sort_by_key(|b| (b.j, b.i));
    Ok(found)
}

/// Every point of the lattice evaluated, and the boundary boxes of side 1
/// among all boxes: what a dense grid gives, for comparison.
pub fn dense(
    plane: &Plane,
    eval: &mut Evaluator,
    replicates: u64,
    sink: &mut Sink,
) -> Result<Refined> {
    let n = plane.points();
    let mut out = Refined::default();
    evaluate(plane, eval, replicates, 0..n * n, &mut out.verdicts, sink)?;
    let size = plane.size();
    out.finest = (0..size)
        .flat_map(|j| (0..size).map(move |i| Square { i, j, side: 1 }))
        .filter(|&b| out.disagrees(plane, b))
        .collect();
    out.levels.push((1, out.finest.len() as u64));
    Ok(out)
}

/// How adaptive boundary boxes compare with a dense grid's.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Agreement {
    pub dense_boxes: u64,
    pub adaptive_boxes: u64,
    /// The share of the dense grid's boundary boxes refinement found.
    pub recall: f64,
    /// The farthest an adaptive box lies from every dense one, in lattice
    /// cells (Chebyshev distance).
    pub farthest: u64,
}

pub fn agreement(adaptive: &[Square], dense: &[Square]) -> Agreement {
    let dense_set: HashSet<(u64, u64)> = dense.iter().map(|b| (b.i, b.j)).collect();
    let found = adaptive
        .iter()
        .filter(|b| dense_set.contains(&(b.i, b.j)))
        .count();
    let farthest = if dense.is_empty() {
        if adaptive.is_empty() {
            0
        } else {
            u64::MAX
        }
    } else {
        adaptive
            .iter()
            .map(|b| {
                (0u64..)
                    .find(|&r| {
                        let r = r as i64;
                        (-r..=r).any(|dj| {
                            (-r..=r).any(|di| {
                                let (i, j) = (b.i as i64 + di, b.j as i64 + dj);
                                i >= 0 && j >= 0 && dense_set.contains(&(i as u64, j as u64))
                            })
                        })
                    })
                    .unwrap_or(u64::MAX)
            })
            .max()
            .unwrap_or(0)
    };
    Agreement {
        dense_boxes: dense.len() as u64,
        adaptive_boxes: adaptive.len() as u64,
        recall: if dense.is_empty() {
            1.0
        } else {
            found as f64 / dense.len() as f64
        },
        farthest,
    }
}

/// Seconds since `start`.
fn seconds(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}
