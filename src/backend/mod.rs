//! Backends run chunks of trajectories: `cpu` (rayon, f64 or f32) and `gpu`
//! (wgpu + WGSL, f32). Both return the same thing for the same ids.

pub mod cpu;
pub mod gpu;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use crate::aggregate::PartialTally;
use crate::error::{Error, Result};
use crate::grid::Sweep;
use crate::shaders;
use crate::spec::{BackendChoice, Precision};
use crate::stopping::{StopRule, TrajectoryEnd};

pub use gpu::GpuContext;

/// The result of one chunk, in id order: ends, and final iterates as f64
/// (ids × dim, where dim is the chunk's model's; a chunk runs one model).
pub struct ChunkResult {
    pub ends: Vec<TrajectoryEnd>,
    pub theta: Vec<f64>,
    pub dim: usize,
    /// The chunk's tally instead, where only that was asked for and the
    /// backend made it as the trajectories ended (the CPU's); `ends` and
    /// `theta` are then empty.
    pub tally: Option<PartialTally>,
}

/// A chunk's inputs, drawn on the host (and for the GPU copied to the
/// device) ahead of its run, so that this overlaps the previous chunk's run.
/// The CPU backend draws inside its packs instead.
pub enum ChunkInputs {
    Cpu,
    Gpu {
        kernel: std::sync::Arc<gpu::StateKernel>,
        uploaded: Box<gpu::Uploaded>,
    },
}

/// Picks the backend. `auto` takes a hardware GPU when one exists and otherwise
/// the CPU, and says so; `gpu` takes any adapter, lavapipe included.
pub fn select(
    choice: BackendChoice,
    precision: Option<Precision>,
) -> Result<(Option<GpuContext>, Option<String>)> {
    match choice {
        BackendChoice::Cpu => Ok((None, None)),
        BackendChoice::Gpu => match GpuContext::open(false)? {
            Some(ctx) => Ok((Some(ctx), None)),
            None => Err(Error::Gpu(
                "no GPU adapter found; install a Vulkan driver (for example mesa-vulkan-drivers) or use --backend cpu".into(),
            )),
        },
        BackendChoice::Auto => {
            if precision == Some(Precision::F64) {
                return Ok((
                    None,
                    Some("f64 was asked for, so the CPU backend runs".into()),
                ));
            }
            match GpuContext::open(true) {
                Ok(Some(ctx)) => Ok((Some(ctx), None)),
                Ok(None) => Ok((
                    None,
                    Some("no hardware GPU found, so the CPU backend runs".into()),
                )),
                Err(e) => Ok((None, Some(format!("{e}; the CPU backend runs instead")))),
            }
        }
    }
}

/// A kernel's identity: its source and the bits of its constants buffer (two
/// targets of one size compile to the same source but bind different constants).
type KernelKey = (String, Vec<u32>);

/// A backend prepared for one sweep.
pub enum Engine {
    CpuF64 {
        constants: Vec<Vec<f64>>,
    },
    CpuF32 {
        constants: Vec<Vec<f32>>,
    },
    Gpu {
        ctx: Box<GpuContext>,
        /// Compiled kernels by source and constants: cells that share a model share one.
        kernels: Mutex<HashMap<KernelKey, std::sync::Arc<gpu::StateKernel>>>,
        max_chunk: u64,
    },
}

impl Engine {
    pub fn new(
        sweep: &Sweep,
        gpu: Option<GpuContext>,
        precision: Precision,
        rule: &StopRule,
    ) -> Result<Engine> {
        let Some(ctx) = gpu else {
            return Ok(match precision {
                Precision::F64 => Engine::CpuF64 {
                    constants: cpu::constants(sweep),
                },
                Precision::F32 => Engine::CpuF32 {
                    constants: cpu::constants(sweep),
                },
            });
        };
        if rule.max_iters > u64::from(u32::MAX - rule.check_every) {
            return Err(Error::spec(format!(
                "max_iters {} is beyond the GPU's 32-bit iteration counter; give at most {} or use --backend cpu",
                rule.max_iters,
                u32::MAX - rule.check_every
            )));
        }
        let max_chunk = sweep
            .cells
            .iter()
            .map(|c| {
                ctx.max_chunk(
                    &shaders::kernel(&c.model, rule, ctx.device_limits()),
                    c.model.dim(),
                )
            })
            .min()
            .unwrap_or(1);
        Ok(Engine::Gpu {
            ctx: Box::new(ctx),
            kernels: Mutex::new(HashMap::new()),
            max_chunk,
        })
    }

    /// GPU kernel time from timestamp queries, where the adapter has them.
    pub fn kernel_seconds(&self) -> Option<f64> {
        match self {
            Engine::Gpu { ctx, .. } => ctx.kernel_seconds(),
            _ => None,
        }
    }

    /// The largest chunk this engine takes.
    pub fn max_chunk(&self) -> u64 {
        match self {
            Engine::Gpu { max_chunk, .. } => *max_chunk,
            _ => u64::MAX,
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Engine::CpuF64 { .. } => Precision::F64,
            _ => Precision::F32,
        }
    }

    pub fn describe(&self) -> (String, Option<String>) {
        match self {
            Engine::CpuF64 { .. } | Engine::CpuF32 { .. } => (
                "cpu".into(),
                Some(format!("{} rayon threads", rayon::current_num_threads())),
            ),
            Engine::Gpu { ctx, .. } => ("gpu".into(), Some(gpu::describe(&ctx.info))),
        }
    }

    /// Draws a chunk's inputs on every core and copies them to the device
    /// (the GPU's; the CPU backend draws inside its packs).
    pub fn prepare(&self, sweep: &Sweep, rule: &StopRule, ids: Range<u64>) -> Result<ChunkInputs> {
        use rayon::prelude::*;
        let Engine::Gpu { ctx, kernels, .. } = self else {
            return Ok(ChunkInputs::Cpu);
        };
        let model = &sweep.cell_of(ids.start).model;
        let plan = shaders::kernel(model, rule, ctx.device_limits());
        let kernel = {
            let mut cache = kernels.lock().expect("kernel cache");
            let key: KernelKey = (
                plan.source.clone(),
                plan.constants.iter().map(|c| c.to_bits()).collect(),
            );
            match cache.get(&key) {
                Some(k) => k.clone(),
                None => {
                    let k = std::sync::Arc::new(gpu::StateKernel::new(ctx, &plan, rule)?);
                    cache.insert(key, k.clone());
                    k
                }
            }
        };
        let dim = model.dim();
        let n = (ids.end - ids.start) as usize;
        let mut theta = vec![0.0f32; n * dim];
        // Drawn a block of trajectories at a time (see `Sweep::initials`).
        const DRAWN: usize = 1024;
        theta.par_chunks_mut(DRAWN * dim).enumerate().for_each_init(
            || (vec![0.0f64; DRAWN * dim], Vec::new()),
            |(starts, blocks), (b, slots)| {
                let first = ids.start + (b * DRAWN) as u64;
                let starts = &mut starts[..slots.len()];
                sweep.initials(first..first + (slots.len() / dim) as u64, starts, blocks);
                for (s, &v) in slots.iter_mut().zip(starts.iter()) {
                    *s = v as f32;
                }
            },
        );
        let mut step_sizes = vec![0.0; n];
        sweep.step_sizes(ids, &mut step_sizes);
        let step_size: Vec<f32> = step_sizes.iter().map(|&s| s as f32).collect();
        let uploaded = kernel.upload(ctx, &theta, &step_size)?;
        Ok(ChunkInputs::Gpu {
            kernel,
            uploaded: Box::new(uploaded),
        })
    }

    /// Runs a chunk to its end.
    pub fn run(
        &self,
        sweep: &Sweep,
        rule: &StopRule,
        ids: Range<u64>,
        progress: impl FnMut(u64),
    ) -> Result<ChunkResult> {
        let inputs = self.prepare(sweep, rule, ids.clone())?;
        self.run_prepared(sweep, rule, ids, inputs, false, progress)
    }

    /// Runs a chunk whose inputs `prepare` drew.
    pub fn run_prepared(
        &self,
        sweep: &Sweep,
        rule: &StopRule,
        ids: Range<u64>,
        inputs: ChunkInputs,
        tally_only: bool,
        progress: impl FnMut(u64),
    ) -> Result<ChunkResult> {
        let dim = sweep.cell_of(ids.start).model.dim();
        let tallied = |tally| ChunkResult {
            ends: Vec::new(),
            theta: Vec::new(),
            dim,
            tally: Some(tally),
        };
        match (self, inputs) {
            (Engine::CpuF64 { constants }, _) if tally_only => {
                Ok(tallied(cpu::tally_chunk(sweep, constants, rule, ids)))
            }
            (Engine::CpuF32 { constants }, _) if tally_only => {
                Ok(tallied(cpu::tally_chunk(sweep, constants, rule, ids)))
            }
            (Engine::CpuF64 { constants }, _) => {
                let (ends, theta) = cpu::run_chunk(sweep, constants, rule, ids);
                Ok(ChunkResult {
                    ends,
                    theta,
                    dim,
                    tally: None,
                })
            }
            (Engine::CpuF32 { constants }, _) => {
                let (ends, theta) = cpu::run_chunk(sweep, constants, rule, ids);
                Ok(ChunkResult {
                    ends,
                    theta,
                    dim,
                    tally: None,
                })
            }
            (Engine::Gpu { ctx, .. }, ChunkInputs::Gpu { kernel, uploaded }) => {
                use rayon::prelude::*;
                let (ends, theta) = kernel.run(ctx, *uploaded, progress)?;
                Ok(ChunkResult {
                    ends,
                    theta: theta.par_iter().map(|&v| f64::from(v)).collect(),
                    dim,
                    tally: None,
                })
            }
            (Engine::Gpu { .. }, ChunkInputs::Cpu) => {
                unreachable!("a GPU chunk is prepared by the GPU engine")
            }
        }
    }
}
