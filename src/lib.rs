//! stepsweep: Monte Carlo sweeps of gradient descent over step sizes and
//! initializations, on the GPU (wgpu + WGSL) and the CPU, checking the claims of
//! Nar & Sastry, "Step Size Matters in Deep Learning" (NeurIPS 2018).

pub mod aggregate;
pub mod app;
pub mod backend;
pub mod bench;
pub mod boundary;
pub mod cli;
pub mod error;
pub mod files;
pub mod isa;
pub mod journal;
pub mod labels;
pub mod lanes;
pub mod memory;
pub mod merge;
pub mod models;
pub mod optimizer;
pub mod output;
pub mod presets;
pub mod real;
pub mod recheck;
pub mod reproduce;
pub mod rng;
pub mod runner;
pub mod shaders;
pub mod shard;
pub mod spec;
pub mod stopping;
pub mod sweep;
pub mod trace;

pub use error::{Error, Result};
