//! Backends run chunks of trajectories: `cpu` (rayon, f64 or f32) and `gpu`
//! (wgpu + WGSL, f64 where the adapter has it, or f32). Both return the same
//! thing for the same ids.

pub mod cpu;
pub mod gpu;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;

use crate::aggregate::PartialTally;
use crate::error::{Error, Result};
use crate::spec::{BackendChoice, Precision};
use crate::stopping::{StopRule, TrajectoryEnd};
use crate::sweep::Sweep;

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

/// The backend a sweep runs on, with its precision and, where the choice
/// was not the obvious one, a line that says why.
pub struct Selection {
    pub gpu: Option<GpuContext>,
    pub precision: Precision,
    pub note: Option<String>,
}

/// Picks the backend and its precision. `auto` takes a hardware GPU when one
/// exists and otherwise the CPU, and says so; `gpu` takes any adapter,
/// lavapipe included. Without `--precision` every backend runs f64, except a
/// GPU without f64 arithmetic, which runs f32 and says so in one line (its
/// suspect verdicts are rechecked in f64: see `recheck`). `--precision f64`
/// on such a GPU is refused with `gpu`, and runs on the CPU with `auto`.
pub fn select(choice: BackendChoice, precision: Option<Precision>) -> Result<Selection> {
    let cpu = |note: Option<String>| Selection {
        gpu: None,
        precision: precision.unwrap_or(Precision::F64),
        note,
    };
    let ctx = match choice {
        BackendChoice::Cpu => return Ok(cpu(None)),
        BackendChoice::Gpu => match GpuContext::open(false)? {
            Some(ctx) => ctx,
            None => return Err(Error::Gpu(
                "no GPU adapter found; install a Vulkan driver (for example mesa-vulkan-drivers) or use --backend cpu".into(),
            )),
        },
        BackendChoice::Auto => match GpuContext::open(true) {
            Ok(Some(ctx)) => ctx,
            Ok(None) => {
                return Ok(cpu(Some(
                    "no hardware GPU found, so the CPU backend runs".into(),
                )))
            }
            Err(e) => return Ok(cpu(Some(format!("{e}; the CPU backend runs instead")))),
        },
    };
    let adapter = gpu::describe(&ctx.info);
    match (precision, ctx.f64) {
        (Some(p), _) => {
            if p == Precision::F64 && !ctx.f64 {
                if choice == BackendChoice::Gpu {
                    return Err(Error::spec(format!(
                        "the GPU {adapter} has no f64 arithmetic (SHADER_F64), so --precision f64 cannot run on it; drop --precision to run f32 with f64 rechecks of its suspect verdicts, or use --backend cpu"
                    )));
                }
                return Ok(cpu(Some(format!(
                    "the GPU {adapter} has no f64 arithmetic and f64 was asked for, so the CPU backend runs"
                ))));
            }
            Ok(Selection {
                gpu: Some(ctx),
                precision: p,
                note: None,
            })
        }
        (None, true) => Ok(Selection {
            gpu: Some(ctx),
            precision: Precision::F64,
            note: None,
        }),
        (None, false) => Ok(Selection {
            gpu: Some(ctx),
            precision: Precision::F32,
            note: Some(format!(
                "the GPU {adapter} has no f64 arithmetic, so this run is f32; its verdicts near the thresholds are rechecked in f64 on the CPU"
            )),
        }),
    }
}

/// A kernel's identity: its source and the bits of its constants buffer (two
/// targets of one size compile to the same source but bind different constants).
type KernelKey = (String, Vec<u64>);

/// A backend prepared for one sweep.
pub enum Backend {
    CpuF64 {
        constants: Vec<Vec<f64>>,
    },
    CpuF32 {
        constants: Vec<Vec<f32>>,
    },
    Gpu {
        ctx: Box<GpuContext>,
        precision: Precision,
        /// Compiled kernels by source and constants: cells that share a model share one.
        kernels: Mutex<HashMap<KernelKey, std::sync::Arc<gpu::StateKernel>>>,
        max_chunk: u64,
    },
}

impl Backend {
    pub fn new(
        sweep: &Sweep,
        gpu: Option<GpuContext>,
        precision: Precision,
        rule: &StopRule,
    ) -> Result<Backend> {
        let Some(ctx) = gpu else {
            return Ok(match precision {
                Precision::F64 => Backend::CpuF64 {
                    constants: cpu::constants(sweep),
                },
                Precision::F32 => Backend::CpuF32 {
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
                    &c.model.kernel(rule, ctx.device_limits(), precision),
                    c.model.dim(),
                )
            })
            .min()
            .unwrap_or(1);
        if precision == Precision::F64 && !ctx.f64 {
            return Err(Error::spec(format!(
                "the GPU {} has no f64 arithmetic (SHADER_F64); run f32 on it, or use --backend cpu",
                gpu::describe(&ctx.info)
            )));
        }
        Ok(Backend::Gpu {
            ctx: Box::new(ctx),
            precision,
            kernels: Mutex::new(HashMap::new()),
            max_chunk,
        })
    }

    /// Makes a backend built for one sweep ready for another over the same
    /// spec (a batch of points of a plane, as boundary runs use), keeping
    /// the GPU's device and compiled kernels.
    pub fn refit(&mut self, sweep: &Sweep, rule: &StopRule) {
        match self {
            Backend::CpuF64 { constants } => *constants = cpu::constants(sweep),
            Backend::CpuF32 { constants } => *constants = cpu::constants(sweep),
            Backend::Gpu {
                ctx,
                precision,
                max_chunk,
                ..
            } => {
                // A batch of points runs one model (the caller's contract).
                let model = &sweep.cells[0].model;
                *max_chunk = ctx.max_chunk(
                    &model.kernel(rule, ctx.device_limits(), *precision),
                    model.dim(),
                );
            }
        }
    }

    /// GPU kernel time from timestamp queries, where the adapter has them.
    pub fn kernel_seconds(&self) -> Option<f64> {
        match self {
            Backend::Gpu { ctx, .. } => ctx.kernel_seconds(),
            _ => None,
        }
    }

    /// The largest chunk this engine takes.
    pub fn max_chunk(&self) -> u64 {
        match self {
            Backend::Gpu { max_chunk, .. } => *max_chunk,
            _ => u64::MAX,
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Backend::CpuF64 { .. } => Precision::F64,
            Backend::CpuF32 { .. } => Precision::F32,
            Backend::Gpu { precision, .. } => *precision,
        }
    }

    pub fn describe(&self) -> (String, Option<String>) {
        match self {
            Backend::CpuF64 { .. } | Backend::CpuF32 { .. } => (
                "cpu".into(),
                Some(format!("{} rayon threads", rayon::current_num_threads())),
            ),
            Backend::Gpu { ctx, .. } => ("gpu".into(), Some(gpu::describe(&ctx.info))),
        }
    }

    /// The iterates of trajectories `ids` (one cell's) at the start and at
    /// every check, as the GPU computes them: for each trajectory, its
    /// (iteration, θ in f64) pairs; None on the CPU backend, where
    /// `stopping::descend_observed` hands them back directly.
    #[allow(clippy::type_complexity)]
    pub fn gpu_iterates(
        &self,
        sweep: &Sweep,
        rule: &StopRule,
        ids: Range<u64>,
    ) -> Result<Option<Vec<Vec<(u64, Vec<f64>)>>>> {
        let Backend::Gpu { ctx, precision, .. } = self else {
            return Ok(None);
        };
        let ChunkInputs::Gpu { kernel, uploaded } = self.prepare(sweep, rule, ids.clone())? else {
            unreachable!("a GPU backend prepares GPU inputs");
        };
        let dim = sweep.cell_of(ids.start).model.dim();
        let n = (ids.end - ids.start) as usize;
        // The start, as the device holds it (rounded to its precision).
        let mut start = vec![0.0; n * dim];
        sweep.initials(ids, &mut start, &mut Vec::new());
        let round = |v: f64| match precision {
            Precision::F32 => f64::from(v as f32),
            Precision::F64 => v,
        };
        let mut out: Vec<Vec<(u64, Vec<f64>)>> = start
            .chunks(dim)
            .map(|s| vec![(0, s.iter().map(|&v| round(v)).collect())])
            .collect();
        let mut last = vec![0u32; n];
        let check = rule.check_every;
        let mut keep = |status: &[u32], iterations: &[u32], theta: &[f64]| {
            for t in 0..n {
                let k = iterations[t];
                let ended = status[t] & 0xff != crate::stopping::RUNNING;
                if k != last[t] && (k.is_multiple_of(check) || ended) {
                    out[t].push((u64::from(k), theta[t * dim..(t + 1) * dim].to_vec()));
                }
                last[t] = k;
            }
        };
        let steps = kernel.steps_to_each_check();
        kernel.run_observed(ctx, *uploaded, |_| {}, Some((steps, &mut keep)))?;
        Ok(Some(out))
    }

    /// Draws a chunk's inputs on every core and copies them to the device
    /// (the GPU's; the CPU backend draws inside its packs).
    pub fn prepare(&self, sweep: &Sweep, rule: &StopRule, ids: Range<u64>) -> Result<ChunkInputs> {
        use rayon::prelude::*;
        let Backend::Gpu {
            ctx,
            kernels,
            precision,
            ..
        } = self
        else {
            return Ok(ChunkInputs::Cpu);
        };
        let model = &sweep.cell_of(ids.start).model;
        let plan = model.kernel(rule, ctx.device_limits(), *precision);
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
        // Drawn in f64 a block of trajectories at a time (see
        // `Sweep::initials`); the upload rounds them to the kernel's precision.
        let mut theta = vec![0.0f64; n * dim];
        const DRAWN: usize = 1024;
        theta.par_chunks_mut(DRAWN * dim).enumerate().for_each_init(
            Vec::new,
            |blocks, (b, slots)| {
                let first = ids.start + (b * DRAWN) as u64;
                sweep.initials(first..first + (slots.len() / dim) as u64, slots, blocks);
            },
        );
        let slots = rule.step_slots as usize;
        let mut step_sizes = vec![0.0; n * slots];
        if slots > 1 {
            sweep.layer_step_sizes(ids.clone(), &mut step_sizes);
        } else {
            sweep.step_sizes(ids.clone(), &mut step_sizes);
        }
        let betas = plan.keeps_velocity.then(|| {
            let mut betas = vec![0.0; n];
            sweep.betas(ids, &mut betas);
            betas
        });
        let uploaded = kernel.upload(ctx, &theta, &step_sizes, betas.as_deref())?;
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
            (Backend::CpuF64 { constants }, _) if tally_only => {
                Ok(tallied(cpu::tally_chunk(sweep, constants, rule, ids)))
            }
            (Backend::CpuF32 { constants }, _) if tally_only => {
                Ok(tallied(cpu::tally_chunk(sweep, constants, rule, ids)))
            }
            (Backend::CpuF64 { constants }, _) => {
                let (ends, theta) = cpu::run_chunk(sweep, constants, rule, ids);
                Ok(ChunkResult {
                    ends,
                    theta,
                    dim,
                    tally: None,
                })
            }
            (Backend::CpuF32 { constants }, _) => {
                let (ends, theta) = cpu::run_chunk(sweep, constants, rule, ids);
                Ok(ChunkResult {
                    ends,
                    theta,
                    dim,
                    tally: None,
                })
            }
            (Backend::Gpu { ctx, .. }, ChunkInputs::Gpu { kernel, uploaded }) => {
                let (ends, theta) = kernel.run(ctx, *uploaded, progress)?;
                Ok(ChunkResult {
                    ends,
                    theta,
                    dim,
                    tally: None,
                })
            }
            (Backend::Gpu { .. }, ChunkInputs::Cpu) => {
                unreachable!("a GPU chunk is prepared by the GPU engine")
            }
        }
    }
}
