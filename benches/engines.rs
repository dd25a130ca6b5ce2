//! Which pack engine to run, for development: `cargo bench --bench engines`.
//!
//! Times one pack of every width and instruction set this processor has, per
//! model and precision, through the lane engine on one thread (fixed work,
//! early exit off), and prints a markdown table of trajectory-steps per second
//! with the width `Family::LANES` picks marked. The tables in
//! docs/performance.md come from this.

mod common;

use std::time::Instant;

use common::OnePack;

use stepsweep::backend::cpu::{self, copies, Isa, IsaCopy};
use stepsweep::lanes::LaneScratch;
use stepsweep::models::{DeepLinear, Family, Poly, Relu, ScalarDeep};
use stepsweep::real::{Pack, Real};
use stepsweep::spec::{Precision, Spec};
use stepsweep::stopping::fingerprint_weights;
use stepsweep::sweep::Sweep;

/// The models of `stepsweep bench` W1–W4, with the steps each pack runs.
const MODELS: [(&str, &str, &str, &str, u64); 4] = [
    ("W1 poly", "kind = \"poly\"", "kind = \"uniform\"\nlow = 0.5\nhigh = 2.5", "0.01, 0.15", 4096),
    (
        "W2 scalar-deep",
        "kind = \"scalar-deep\"\nlayers = 8\nlambda = 2.0",
        "kind = \"balanced\"\nnoise = 0.2",
        "0.005, 0.05",
        1024,
    ),
    (
        "W3 deep-linear",
        "kind = \"deep-linear\"\nlayers = 4\nsize = 4\ntarget = { kind = \"psd\", seed = 1 }",
        "kind = \"identity\"\nscale = 0.1",
        "0.01, 0.2",
        256,
    ),
    (
        "W4 relu",
        "kind = \"relu\"\ninput_size = 1\nhidden = 20\noutput_size = 1\nsamples = 64\n\
         inputs = { kind = \"grid\" }\ntargets = { kind = \"teacher\", std = 1.0, seed = 2 }\nbias_std = 1.0",
        "kind = \"gaussian\"\nmean = 0.0\nstd = 1.0",
        "0.0002, 0.002",
        64,
    ),
];

fn sweep(index: usize, precision: &str) -> Sweep {
    let (_, model, init, steps, iterations) = MODELS[index];
    let text = format!(
        "trajectories = 64\nmax_iters = {iterations}\nseed = 1\nprecision = \"{precision}\"\n\
         backend = \"cpu\"\n[model]\n{model}\n[init]\n{init}\n[steps]\nlinspace = [{steps}, 4]\n\
         [stop]\nearly_exit = false\ndivergence_cap = 1e30\n"
    );
    Sweep::new(Spec::from_toml(&text, "engines").expect("a valid spec")).expect("a valid sweep")
}

/// Trajectory-steps per second of one pack of N lanes, best of several runs.
fn rate<R: Real, const N: usize, F: Family>(isa: Isa, sweep: &Sweep) -> f64 {
    match isa {
        Isa::Avx512 => rate_on::<R, N, F, copies::Avx512>(sweep),
        Isa::Avx2 => rate_on::<R, N, F, copies::Avx2>(sweep),
        Isa::Baseline => rate_on::<R, N, F, copies::Baseline>(sweep),
    }
}

fn rate_on<R: Real, const N: usize, F: Family, C: IsaCopy>(sweep: &Sweep) -> f64 {
    let model = &sweep.cells[0].model;
    let family: &F = model.family().expect("the sweep runs this family");
    let (dim, work) = (model.dim(), model.work_len());
    let precision = if std::mem::size_of::<R>() == 4 {
        Precision::F32
    } else {
        Precision::F64
    };
    let rule = sweep.rule(precision);
    let constants = model.constants::<R>();
    let weights: Vec<Pack<R, N>> = fingerprint_weights::<R>(dim)
        .into_iter()
        .map(Pack::splat)
        .collect();
    let (initial, steps) = common::first_pack::<R, N>(sweep);
    let mut scratch = LaneScratch::<R, N>::new(dim, work, &rule);
    let packs = cpu::Packs::<R, N, F, C>::new(family, &constants, &weights, &rule);
    let mut best = f64::MAX;
    for _ in 0..15 {
        let started = Instant::now();
        let mut source = OnePack::new(&initial, &steps);
        packs.run(&mut scratch, &mut source);
        assert_eq!(source.ended, N);
        best = best.min(started.elapsed().as_secs_f64());
    }
    (N as u64 * rule.max_iters) as f64 / best
}

/// One table cell: the rate of (isa, N) for model `index`, bold where it is
/// the engine the backend picks.
fn cell<R: Real, const N: usize, F: Family>(isa: Isa, index: usize) -> String {
    let precision = if std::mem::size_of::<R>() == 4 {
        "f32"
    } else {
        "f64"
    };
    let sweep = sweep(index, precision);
    let picked = cpu::lanes::<R>(&sweep.cells[0].model, isa) == N;
    let r = format!("{:.2e}", rate::<R, N, F>(isa, &sweep));
    if picked {
        format!("**{r}**")
    } else {
        r
    }
}

fn row<R: Real>(isa: Isa) {
    let precision = if std::mem::size_of::<R>() == 4 {
        "f32"
    } else {
        "f64"
    };
    let cells: [(usize, [String; 4]); 4] = [
        (
            0,
            [
                cell::<R, 32, Poly>(isa, 0),
                cell::<R, 64, Poly>(isa, 0),
                cell::<R, 128, Poly>(isa, 0),
                cell::<R, 256, Poly>(isa, 0),
            ],
        ),
        (
            1,
            [
                cell::<R, 16, ScalarDeep>(isa, 1),
                cell::<R, 32, ScalarDeep>(isa, 1),
                cell::<R, 64, ScalarDeep>(isa, 1),
                cell::<R, 128, ScalarDeep>(isa, 1),
            ],
        ),
        (
            2,
            [
                cell::<R, 16, DeepLinear>(isa, 2),
                cell::<R, 32, DeepLinear>(isa, 2),
                cell::<R, 64, DeepLinear>(isa, 2),
                cell::<R, 128, DeepLinear>(isa, 2),
            ],
        ),
        (
            3,
            [
                cell::<R, 8, Relu>(isa, 3),
                cell::<R, 16, Relu>(isa, 3),
                cell::<R, 32, Relu>(isa, 3),
                cell::<R, 64, Relu>(isa, 3),
            ],
        ),
    ];
    let widths = [
        [32, 64, 128, 256],
        [16, 32, 64, 128],
        [16, 32, 64, 128],
        [8, 16, 32, 64],
    ];
    for (index, rates) in cells {
        let parts: Vec<String> = widths[index]
            .iter()
            .zip(&rates)
            .map(|(n, r)| format!("{n}: {r}"))
            .collect();
        println!(
            "| {} | {precision} | {isa:?} | {} |",
            MODELS[index].0,
            parts.join(" · ")
        );
    }
}

fn main() {
    // The baseline where the processor has nothing wider.
    let mut isas = Isa::available();
    if isas.len() > 1 {
        isas.remove(0);
    }
    println!("| model | precision | engine | lanes: trajectory-steps/s |");
    println!("| --- | --- | --- | --- |");
    for &isa in &isas {
        row::<f32>(isa);
    }
    for &isa in &isas {
        row::<f64>(isa);
    }
}
