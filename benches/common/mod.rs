//! What the CPU benchmarks share: one pack of trajectories given once each.

use std::hint::black_box;

use stepsweep::lanes::LaneSource;
use stepsweep::real::{Pack, Real};
use stepsweep::stopping::TrajectoryEnd;
use stepsweep::sweep::Sweep;

/// N trajectories of `sweep`, spread over its cells: their initial points
/// (coordinate i in element i) and step sizes.
pub fn first_pack<R: Real, const N: usize>(sweep: &Sweep) -> (Vec<Pack<R, N>>, [R; N]) {
    let dim = sweep.cells[0].model.dim();
    let mut start = vec![0.0f64; dim];
    let mut initial = vec![Pack::splat(R::zero()); dim];
    let mut steps = [R::zero(); N];
    for (lane, step) in steps.iter_mut().enumerate() {
        let id = (lane as u64 * sweep.trajectories_per_cell / 2) % sweep.total();
        sweep.initial(id, &mut start);
        for (s, &v) in initial.iter_mut().zip(&start) {
            s.0[lane] = R::of(v);
        }
        *step = R::of(sweep.cell_of(id).step_size);
    }
    (initial, steps)
}

/// One pack's N trajectories, given once each; counts the ends.
pub struct OnePack<'a, R, const N: usize> {
    initial: &'a [Pack<R, N>],
    steps: &'a [R; N],
    loaded: usize,
    pub ended: usize,
}

impl<'a, R, const N: usize> OnePack<'a, R, N> {
    pub fn new(initial: &'a [Pack<R, N>], steps: &'a [R; N]) -> Self {
        OnePack {
            initial,
            steps,
            loaded: 0,
            ended: 0,
        }
    }
}

impl<R: Real, const N: usize> LaneSource<R, N> for OnePack<'_, R, N> {
    fn load(&mut self, lane: usize, theta: &mut [Pack<R, N>]) -> Option<R> {
        if self.loaded == N {
            return None;
        }
        self.loaded += 1;
        for (t, s) in theta.iter_mut().zip(self.initial) {
            t.0[lane] = s.0[lane];
        }
        Some(self.steps[lane])
    }

    fn end(&mut self, _: usize, end: TrajectoryEnd, _: &[Pack<R, N>]) {
        black_box(end);
        self.ended += 1;
    }
}
