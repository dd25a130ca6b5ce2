//! Benchmarks of the CPU kernels, for development: `cargo bench --bench kernels`.
//!
//! - `pack`: one pack of trajectories through the CPU backend's pack engine
//!   (at the lane count it uses for the model, AVX2 where present) on one
//!   thread, a fixed number of f32 steps with early exit off (the inner loop
//!   of `stepsweep bench` W1–W3);
//! - `chunk`: a chunk of trajectories through the CPU backend (rayon over
//!   packs, initialization included), as a sweep runs it.
//!
//! Throughput is reported in trajectory-steps. Each benchmark is kept short;
//! `stepsweep bench` times the full workloads.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use stepsweep::backend::cpu::{self, copies, IsaCopy};
use stepsweep::lanes::LaneScratch;
use stepsweep::models::Family;
use stepsweep::real::Pack;
use stepsweep::spec::{Precision, Spec};
use stepsweep::stopping::{fingerprint_weights, StopRule};
use stepsweep::sweep::Sweep;

mod common;

use common::OnePack;

fn main() {
    divan::main();
}

const POLY: &str = "kind = \"poly\"";
const POLY_INIT: &str = "kind = \"uniform\"\nlow = 0.5\nhigh = 2.5";
const SCALAR_DEEP: &str = "kind = \"scalar-deep\"\nlayers = 8\nlambda = 2.0";
const SCALAR_DEEP_INIT: &str = "kind = \"balanced\"\nnoise = 0.2";
const DEEP_LINEAR: &str =
    "kind = \"deep-linear\"\nlayers = 4\nsize = 4\ntarget = { kind = \"psd\", seed = 1 }";
const DEEP_LINEAR_INIT: &str = "kind = \"identity\"\nscale = 0.1";

/// A fixed-work f32 sweep: `trajectories` per step size, early exit off.
fn sweep(model: &str, init: &str, steps: &str, trajectories: u64, iterations: u64) -> Sweep {
    let text = format!(
        "trajectories = {trajectories}\nmax_iters = {iterations}\nseed = 1\nprecision = \"f32\"\n\
         backend = \"cpu\"\n[model]\n{model}\n[init]\n{init}\n[steps]\nlinspace = [{steps}, 4]\n\
         [stop]\nearly_exit = false\ndivergence_cap = 1e30\n"
    );
    Sweep::new(Spec::from_toml(&text, "bench").expect("a valid spec")).expect("a valid sweep")
}

fn rule(sweep: &Sweep) -> StopRule {
    sweep.rule(Precision::F32)
}

/// One pack of N trajectories of `sweep` through the pack engine.
fn bench_pack<const N: usize, F: Family>(bencher: Bencher, sweep: &Sweep) {
    match cpu::Isa::detect() {
        cpu::Isa::Avx512 => bench_pack_on::<N, F, copies::Avx512>(bencher, sweep),
        cpu::Isa::Avx2 => bench_pack_on::<N, F, copies::Avx2>(bencher, sweep),
        cpu::Isa::Baseline => bench_pack_on::<N, F, copies::Baseline>(bencher, sweep),
    }
}

fn bench_pack_on<const N: usize, F: Family, C: IsaCopy>(bencher: Bencher, sweep: &Sweep) {
    let model = &sweep.cells[0].model;
    let lanes = cpu::lanes::<f32>(model, C::ISA);
    assert_eq!(lanes, N, "the backend's lane count for this model");
    let family: &F = model.family().expect("the sweep runs this family");
    let (dim, work) = (model.dim(), model.work_len());
    let rule = rule(sweep);
    let splat = |v: Vec<f32>| v.into_iter().map(Pack::splat).collect::<Vec<_>>();
    let consts = model.constants::<f32>();
    let weights = splat(fingerprint_weights::<f32>(dim));
    let (initial, steps) = common::first_pack::<f32, N>(sweep);
    let mut scratch = LaneScratch::<f32, N>::new(dim, work, &rule);
    let packs = cpu::Packs::<f32, N, F, C>::new(family, &consts, &weights, &rule);
    bencher
        .counter(ItemsCount::new(N as u64 * rule.max_iters))
        .bench_local(|| {
            let mut source = OnePack::new(&initial, &steps);
            packs.run(&mut scratch, black_box(&mut source));
            assert_eq!(source.ended, N);
        });
}

/// Trajectories 0..total of `sweep` through the CPU backend (every core).
fn bench_chunk(bencher: Bencher, sweep: &Sweep) {
    let rule = rule(sweep);
    let constants = cpu::constants::<f32>(sweep);
    bencher
        .counter(ItemsCount::new(sweep.total() * rule.max_iters))
        .bench_local(|| {
            black_box(cpu::run_chunk::<f32>(
                sweep,
                &constants,
                &rule,
                0..sweep.total(),
            ))
        });
}

mod pack {
    use super::*;
    use stepsweep::models::{DeepLinear, Poly, ScalarDeep};

    fn lanes(sweep: &Sweep) -> usize {
        cpu::lanes::<f32>(&sweep.cells[0].model, cpu::Isa::detect())
    }

    #[divan::bench(sample_count = 20)]
    fn poly(bencher: Bencher) {
        let sweep = sweep(POLY, POLY_INIT, "0.01, 0.15", 8, 4096);
        match lanes(&sweep) {
            256 => bench_pack::<256, Poly>(bencher, &sweep),
            _ => bench_pack::<128, Poly>(bencher, &sweep),
        }
    }

    #[divan::bench(sample_count = 20)]
    fn scalar_deep_l8(bencher: Bencher) {
        let sweep = sweep(SCALAR_DEEP, SCALAR_DEEP_INIT, "0.005, 0.05", 8, 1024);
        match lanes(&sweep) {
            128 => bench_pack::<128, ScalarDeep>(bencher, &sweep),
            _ => bench_pack::<32, ScalarDeep>(bencher, &sweep),
        }
    }

    #[divan::bench(sample_count = 20)]
    fn deep_linear_n4_l4(bencher: Bencher) {
        let sweep = sweep(DEEP_LINEAR, DEEP_LINEAR_INIT, "0.01, 0.2", 8, 256);
        match lanes(&sweep) {
            64 => bench_pack::<64, DeepLinear>(bencher, &sweep),
            _ => bench_pack::<32, DeepLinear>(bencher, &sweep),
        }
    }
}

mod chunk {
    use super::*;

    #[divan::bench(sample_count = 10)]
    fn poly(bencher: Bencher) {
        bench_chunk(bencher, &sweep(POLY, POLY_INIT, "0.01, 0.15", 4096, 1000));
    }

    #[divan::bench(sample_count = 10)]
    fn scalar_deep_l8(bencher: Bencher) {
        bench_chunk(
            bencher,
            &sweep(SCALAR_DEEP, SCALAR_DEEP_INIT, "0.005, 0.05", 1024, 1000),
        );
    }

    #[divan::bench(sample_count = 10)]
    fn deep_linear_n4_l4(bencher: Bencher) {
        bench_chunk(
            bencher,
            &sweep(DEEP_LINEAR, DEEP_LINEAR_INIT, "0.01, 0.2", 64, 1000),
        );
    }
}
