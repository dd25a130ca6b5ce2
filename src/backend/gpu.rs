//! The GPU backend: wgpu plumbing in one place, so no model file has to know
//! about staging buffers. Every pipeline's bind group layout is made from the
//! table in `shaders::bindings`, which the kernels' WGSL declarations come
//! from too: params, θ, step sizes, status, iterations, active count, the
//! running list, and the model's constants and scratch. θ, step sizes,
//! constants and scratch hold the kernel's working precision, f32 or f64.

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::shaders::bindings::{self, Access, Binding};
use crate::shaders::{real_bytes, DeviceLimits, KernelPlan, Layout};
use crate::spec::Precision;
use crate::stopping::{Outcome, StopRule, TrajectoryEnd, RUNNING};

/// Set this variable to make a missing adapter a failure instead of a skip (CI sets it).
pub const REQUIRE_GPU_ENV: &str = "STEPSWEEP_REQUIRE_GPU";

/// Set this variable to open adapters as if they had no f64 arithmetic
/// (`SHADER_F64`), as Metal and many mobile GPUs have none: the tests of the
/// f32 fallback and its rechecks use it on adapters that do have f64.
pub const NO_F64_ENV: &str = "STEPSWEEP_GPU_NO_F64";

/// For tests: the device is reported lost when the chunk after this many
/// chunks of the process starts on it, as a driver reports a GPU that fell
/// off the bus; the run must stop with its message and resume whole.
pub const LOSE_DEVICE_ENV: &str = "STEPSWEEP_TEST_LOSE_DEVICE_AFTER";

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Whether the device was opened with f64 arithmetic in its shaders.
    pub f64: bool,
    /// The first validation or device error the driver reported, if any.
    error: Arc<Mutex<Option<String>>>,
    /// Nanoseconds per timestamp tick, when the adapter has timestamp queries.
    timestamp_period: Option<f32>,
    /// Kernel time measured by timestamp queries, summed over dispatches.
    kernel_ns: std::sync::atomic::AtomicU64,
    /// Chunks started on the device, and after how many it is reported lost
    /// (`LOSE_DEVICE_ENV`).
    chunks: std::sync::atomic::AtomicU64,
    lose_after: Option<u64>,
    /// Pipelines compiled on this device, by source and entry point. A
    /// sweep whose cells differ only in their model constants, and every
    /// kernel's compaction, then compile once: on a CPU adapter a compile
    /// takes longer than many of the dispatches it serves.
    pipelines: Mutex<HashMap<(String, String), wgpu::ComputePipeline>>,
}

/// The runtime directory the GPU stack was given, when stepsweep gave it one
/// (see `quiet_runtime_dir`).
static PRIVATE_RUNTIME_DIR: std::sync::OnceLock<Option<std::path::PathBuf>> =
    std::sync::OnceLock::new();

/// Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set"
/// on stderr while the adapters are listed, when the variable names no
/// directory (a batch job, a container). Their windowing code looks for its
/// sockets there, which a compute sweep never uses, so such a process gets a
/// private empty directory, made once, before the loader first runs, and the
/// user's terminal stays quiet. Returns that directory, if one was made.
pub fn quiet_runtime_dir() -> Option<&'static std::path::Path> {
    PRIVATE_RUNTIME_DIR
        .get_or_init(|| {
            let current = std::env::var_os("XDG_RUNTIME_DIR");
            if current.is_some_and(|d| !d.is_empty() && std::path::Path::new(&d).is_dir()) {
                return None;
            }
            let dir = std::env::temp_dir().join(format!("stepsweep-runtime-{}", user_id()));
            let mut builder = std::fs::DirBuilder::new();
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            match builder.create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
                Err(_) => return None,
            }
            // Set before the Vulkan loader is loaded, so no C code reads the
            // environment meanwhile.
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
            Some(dir)
        })
        .as_deref()
}

fn user_id() -> u32 {
    #[cfg(unix)]
    {
        // SAFETY: getuid has no preconditions and cannot fail.
        unsafe { libc::getuid() }
    }
    #[cfg(not(unix))]
    {
        0
    }
}

fn instance() -> wgpu::Instance {
    quiet_runtime_dir();
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter wgpu sees, with its limits and whether its shaders have
/// f64 arithmetic (as stepsweep would open it: see `NO_F64_ENV`).
pub fn adapters() -> Vec<(wgpu::AdapterInfo, wgpu::Limits, bool)> {
    let f64_allowed = std::env::var_os(NO_F64_ENV).is_none();
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| {
            let f64 = f64_allowed && a.features().contains(wgpu::Features::SHADER_F64);
            (a.get_info(), a.limits(), f64)
        })
        .collect()
}

pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    !matches!(info.device_type, wgpu::DeviceType::Cpu)
}

/// One line naming an adapter, for summaries and `devices`.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

impl GpuContext {
    /// Opens an adapter: a hardware GPU if there is one, else (unless
    /// `hardware_only`) any adapter, such as Mesa's lavapipe. `Ok(None)` when
    /// there is none to open.
    pub fn open(hardware_only: bool) -> Result<Option<GpuContext>> {
        let instance = instance();
        let mut candidates = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        // WGPU_ADAPTER_NAME picks an adapter by name, as wgpu's own tools do.
        if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
            let name = name.to_lowercase();
            candidates.retain(|a| a.get_info().name.to_lowercase().contains(&name));
        }
        candidates.sort_by_key(|a| match a.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        });
        let Some(adapter) = candidates
            .into_iter()
            .find(|a| !hardware_only || is_hardware(&a.get_info()))
        else {
            return Ok(None);
        };
        let info = adapter.get_info();
        let limits = adapter.limits();
        // Kernel time comes from timestamp queries where the adapter has them,
        // and f64 kernels run where it has f64 arithmetic.
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY;
        if std::env::var_os(NO_F64_ENV).is_none() {
            wanted |= wgpu::Features::SHADER_F64;
        }
        let features = adapter.features() & wanted;
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("stepsweep"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::Gpu(format!("could not open {}: {e}", describe(&info))))?;
        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().get_or_insert(e.to_string());
        }));
        let lost = error.clone();
        device.set_device_lost_callback(move |reason, message| {
            lost.lock()
                .unwrap()
                .get_or_insert(format!("the GPU device was lost ({reason:?}): {message}"));
        });
        Ok(Some(GpuContext {
            timestamp_period: features
                .contains(wgpu::Features::TIMESTAMP_QUERY)
                .then(|| queue.get_timestamp_period()),
            kernel_ns: std::sync::atomic::AtomicU64::new(0),
            chunks: std::sync::atomic::AtomicU64::new(0),
            lose_after: std::env::var(LOSE_DEVICE_ENV)
                .ok()
                .and_then(|v| v.parse().ok()),
            f64: features.contains(wgpu::Features::SHADER_F64),
            pipelines: Mutex::new(HashMap::new()),
            device,
            queue,
            info,
            limits,
            error,
        }))
    }

    /// Whether the adapter has timestamp queries, so kernel time is measured.
    pub fn has_timestamps(&self) -> bool {
        self.timestamp_period.is_some()
    }

    /// Kernel time so far, from timestamp queries; None without them.
    pub fn kernel_seconds(&self) -> Option<f64> {
        self.timestamp_period
            .map(|_| self.kernel_ns.load(std::sync::atomic::Ordering::Relaxed) as f64 * 1e-9)
    }

    fn check(&self) -> Result<()> {
        match self.error.lock().unwrap().take() {
            Some(e) => Err(Error::Gpu(explain(&e))),
            None => Ok(()),
        }
    }

    pub fn storage(&self, label: &str, contents: &[u8]) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// Copies `bytes` of `source` back to the host.
    pub fn read<T: bytemuck::Pod>(&self, source: &wgpu::Buffer, bytes: u64) -> Result<Vec<T>> {
        let mut reads = self.read_all::<T>(&[(source, bytes)])?;
        Ok(reads.pop().expect("one readback"))
    }

    /// Copies each (buffer, bytes) back to the host in one submission, with
    /// one wait for all of them.
    pub fn read_all<T: bytemuck::Pod>(
        &self,
        sources: &[(&wgpu::Buffer, u64)],
    ) -> Result<Vec<Vec<T>>> {
        let mut encoder = self.device.create_command_encoder(&Default::default());
        let staging: Vec<wgpu::Buffer> = sources
            .iter()
            .map(|&(source, bytes)| {
                let staging = self.staging("readback", bytes);
                encoder.copy_buffer_to_buffer(source, 0, &staging, 0, bytes);
                staging
            })
            .collect();
        let submission = self.queue.submit([encoder.finish()]);
        let pending: Vec<Readback> = staging
            .into_iter()
            .map(|b| self.start_read(b, submission.clone()))
            .collect();
        pending.into_iter().map(|r| self.finish_read(r)).collect()
    }

    /// A buffer the host can map, for copies back from the device.
    fn staging(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Asks for `staging` to be mapped once `submission`, which copies into
    /// it, has run; the host goes on meanwhile.
    fn start_read(&self, staging: wgpu::Buffer, submission: wgpu::SubmissionIndex) -> Readback {
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        Readback {
            staging,
            submission,
            mapped: rx,
        }
    }

    /// Waits for a readback's submission (not for any submitted after it) and
    /// copies the words out.
    fn finish_read<T: bytemuck::Pod>(&self, read: Readback) -> Result<Vec<T>> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(read.submission),
                timeout: None,
            })
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()?;
        read.mapped
            .recv()
            .map_err(|_| Error::Gpu("the GPU never answered a readback".into()))?
            .map_err(|e| Error::Gpu(format!("reading back from the GPU failed: {e}")))?;
        let view = read
            .staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading back from the GPU failed: {e}")))?;
        let out = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        read.staging.unmap();
        Ok(out)
    }

    /// Compiles `entry` of `source` with the bind group layout of
    /// `bindings` (group 0), which must be the bindings the source declares,
    /// or returns the pipeline compiled for them before. `real_bytes` is the
    /// size of the source's `real` (which the source declares too).
    pub fn pipeline(
        &self,
        source: &str,
        entry: &str,
        bindings: &[Binding],
        real_bytes: usize,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (source.to_string(), entry.to_string());
        if let Some(p) = self.pipelines.lock().expect("pipeline cache").get(&key) {
            return Ok(p.clone());
        }
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(entry),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = self.device.create_shader_module(desc);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .map(|b| layout_entry(b, real_bytes as u64))
            .collect();
        let group = self
            .device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(entry),
                entries: &entries,
            });
        let layout = self
            .device
            .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(&group)],
                immediate_size: 0,
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.check()?;
        self.pipelines
            .lock()
            .expect("pipeline cache")
            .insert(key, pipeline.clone());
        Ok(pipeline)
    }

    pub fn device_limits(&self) -> DeviceLimits {
        DeviceLimits {
            workgroup_storage: self.limits.max_compute_workgroup_storage_size,
            max_invocations: self.limits.max_compute_invocations_per_workgroup,
            // Half the limit: the trips are counted from the WGSL, and the
            // driver's compiler may add loops of its own.
            loop_budget: (!is_hardware(&self.info))
                .then_some(crate::shaders::LLVMPIPE_LOOP_LIMIT / 2),
            layout: crate::shaders::layout_from_env(),
        }
    }

    /// Most trajectories one dispatch of a kernel can hold, given the
    /// adapter's limits on buffer sizes and workgroup counts.
    pub fn max_chunk(&self, plan: &KernelPlan, dim: usize) -> u64 {
        // A per-invocation kernel needs its scratch only where a dispatch
        // may stop inside a block, which a hardware adapter never asks.
        let scratch = if plan.layout == Layout::PerInvocation && is_hardware(&self.info) {
            0
        } else {
            plan.scratch_per_trajectory
        };
        let per_trajectory = dim.max(scratch) as u64;
        let per_binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            / (real_bytes(plan.precision) as u64 * per_trajectory);
        let groups = u64::from(self.limits.max_compute_workgroups_per_dimension);
        let per_dispatch = match plan.layout {
            Layout::PerInvocation => groups * u64::from(plan.workgroup_size),
            Layout::PerWorkgroup => groups * groups,
        };
        per_binding.min(per_dispatch)
    }
}

/// A chunk's buffers on the device, ready to run (`StateKernel::upload`).
pub struct Uploaded {
    count: usize,
    dim: usize,
    /// θ is stored structure-of-arrays (a per-invocation kernel).
    soa: bool,
    theta: wgpu::Buffer,
    step_size: wgpu::Buffer,
    status: wgpu::Buffer,
    iterations: wgpu::Buffer,
    /// Two lists of running trajectories: compaction reads one, writes the other.
    index: [wgpu::Buffer; 2],
}

/// A copy back to the host in flight (`GpuContext::start_read`).
struct Readback {
    staging: wgpu::Buffer,
    submission: wgpu::SubmissionIndex,
    mapped: mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// One sentence for what the driver reported, saying what to do about it.
fn explain(report: &str) -> String {
    let first = report.lines().next().unwrap_or("").trim_end_matches('.');
    let lower = report.to_lowercase();
    if lower.contains("device was lost") || lower.contains("device lost") {
        format!("{first}; rerun on a healthy GPU, or with --backend cpu")
    } else if lower.contains("out of memory") || lower.contains("not enough memory") {
        format!("the GPU ran out of memory ({first}); give a smaller --chunk-size, or use --backend cpu")
    } else if lower.contains("limit") && (lower.contains("buffer") || lower.contains("size")) {
        format!("a GPU buffer is over the adapter's limit ({first}); give a smaller --chunk-size")
    } else {
        format!("the GPU reported an error; rerun with --backend cpu or report it: {first}")
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct StateParams {
    /// Iterations per dispatch, at most.
    steps: u32,
    count: u32,
    stride: u32,
    pad: u32,
}

/// Compact the list of running trajectories once at most this fraction of
/// the listed ones still run: launching finished ones costs a wave each.
const COMPACT_BELOW: f64 = 0.5;

/// Iterations one dispatch advances a trajectory by. A workgroup kernel does
/// far more work per iteration, so it takes fewer; on a CPU adapter
/// (lavapipe) fewer still, as llvmpipe's loop limit allows (see
/// `LLVMPIPE_LOOP_LIMIT`): past it, deep-linear workgroups that ran several
/// blocks of 64 iterations in one dispatch, relu at (4, 64, 2, 256) within
/// one block, and scalar-deep at L = 64 in 1024 iterations ended in a
/// corrupted state.
fn iterations_per_dispatch(layout: Layout) -> u32 {
    match layout {
        Layout::PerInvocation => 1024,
        Layout::PerWorkgroup => 64,
    }
}

/// A compiled kernel that advances per-trajectory states in place.
pub struct StateKernel {
    pipeline: wgpu::ComputePipeline,
    compact: wgpu::ComputePipeline,
    layout: Layout,
    workgroup_size: u32,
    precision: Precision,
    /// The model's constants, in the working precision's bytes.
    constants: Vec<u8>,
    /// The layer of each parameter, where the layers' step sizes differ.
    layer_of: Vec<u32>,
    /// Step sizes per trajectory: 1, or one per layer.
    step_slots: usize,
    /// Reals of scratch per trajectory, bound when `binds_scratch`
    /// (0: a placeholder, which a per-invocation kernel whose dispatches end
    /// on block boundaries never touches).
    scratch_per_trajectory: usize,
    binds_scratch: bool,
    check_every: u32,
    max_iters: u64,
    /// Iterations per dispatch, at most: whole blocks of `check_every` on a
    /// hardware adapter, which bounds each submit, so OS watchdogs stay quiet
    /// and progress can be shown; on a CPU adapter possibly fewer, and then a
    /// dispatch may stop inside a block.
    steps_per_dispatch: u32,
}

impl StateKernel {
    pub fn new(ctx: &GpuContext, plan: &KernelPlan, rule: &StopRule) -> Result<Self> {
        let check_every = rule.check_every;
        let blocks_per_dispatch = (iterations_per_dispatch(plan.layout) / check_every).max(1);
        let mut steps = u64::from(blocks_per_dispatch) * u64::from(check_every);
        if let Some(budget) = ctx.device_limits().loop_budget {
            let trips = plan.loop_trips;
            steps =
                crate::shaders::steps_per_dispatch(plan.layout, &trips, check_every, steps, budget);
            if steps == 0 {
                return Err(Error::Gpu(format!(
                    "one iteration of this model runs up to {} loop iterations per invocation, more than {} leaves a dispatch (it ends every loop once {} have run, all loops together, and stepsweep keeps within half of that); use --backend cpu or a hardware GPU",
                    trips.per_step + trips.per_block,
                    describe(&ctx.info),
                    crate::shaders::LLVMPIPE_LOOP_LIMIT
                )));
            }
        }
        // Dispatches that may stop inside a block keep the fingerprint ring
        // in scratch; a workgroup kernel's scratch holds its region too.
        let inside_blocks = steps % u64::from(check_every) != 0;
        let scratch_per_trajectory = match plan.layout {
            Layout::PerWorkgroup => plan.scratch_per_trajectory,
            Layout::PerInvocation if inside_blocks || plan.keeps_velocity => {
                plan.scratch_per_trajectory
            }
            Layout::PerInvocation => 0,
        };
        Ok(StateKernel {
            steps_per_dispatch: steps.min(u64::from(u32::MAX)) as u32,
            binds_scratch: plan.scratch_per_trajectory > 0,
            check_every,
            max_iters: rule.max_iters,
            pipeline: ctx.pipeline(
                &plan.source,
                plan.entry,
                &plan.bindings(),
                real_bytes(plan.precision),
            )?,
            compact: ctx.pipeline(
                &crate::shaders::compact(),
                "compact_main",
                &bindings::compact::ALL,
                4,
            )?,
            layout: plan.layout,
            workgroup_size: plan.workgroup_size,
            precision: plan.precision,
            constants: to_device(&plan.constants, plan.precision),
            layer_of: plan.layer_of.clone(),
            step_slots: rule.step_slots as usize,
            scratch_per_trajectory,
        })
    }

    /// Copies a chunk's inputs to the device in the kernel's precision:
    /// initial parameters `theta` (count × dim, trajectory-major, drawn in
    /// f64), step sizes (count, or count for each layer in turn where the
    /// layers' differ) and, for an optimizer with momentum, each
    /// trajectory's β (count), which follow the step sizes in their buffer.
    /// Done on the host thread that drew them, so the copies overlap the
    /// previous chunk's descent.
    pub fn upload(
        &self,
        ctx: &GpuContext,
        theta: &[f64],
        step_size: &[f64],
        beta: Option<&[f64]>,
    ) -> Result<Uploaded> {
        let count = step_size.len() / self.step_slots;
        // Chunks are sized to the limits (`max_chunk`); this guards a caller
        // that was not, before wgpu turns it into a validation error.
        let bytes = (theta.len() * real_bytes(self.precision)) as u64;
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        if bytes > limit || count > u32::MAX as usize {
            return Err(Error::Gpu(format!(
                "a chunk of {count} trajectories needs a {bytes}-byte GPU buffer, over the adapter's limit of {limit} bytes; give a smaller --chunk-size"
            )));
        }
        let dim = theta.len() / count.max(1);
        let soa = self.layout == Layout::PerInvocation && dim > 1;
        let theta_buf = if soa {
            ctx.storage(
                "theta",
                &to_device(&transpose(theta, count, dim), self.precision),
            )
        } else {
            ctx.storage("theta", &to_device(theta, self.precision))
        };
        // Buffers made without contents start zeroed (statuses RUNNING,
        // iteration counts 0); the second index list is written by
        // compaction before it is read.
        let zeroed = |label: &str, bytes: usize| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4) as u64,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let identity: Vec<u32> = (0..count as u32).collect();
        Ok(Uploaded {
            count,
            dim,
            soa,
            theta: theta_buf,
            step_size: match beta {
                Some(beta) => {
                    let both: Vec<f64> = step_size.iter().chain(beta).copied().collect();
                    ctx.storage("step_size", &to_device(&both, self.precision))
                }
                None => ctx.storage("step_size", &to_device(step_size, self.precision)),
            },
            status: zeroed("status", 4 * count),
            iterations: zeroed("iterations", 4 * count),
            index: [
                ctx.storage("index_a", bytemuck::cast_slice(&identity)),
                zeroed("index_b", 4 * count),
            ],
        })
    }

    /// Runs an uploaded chunk to the end; returns the ends and the final
    /// iterates (count × dim, trajectory-major, widened to f64 exactly).
    /// `progress` is told how many have finished after each dispatch.
    pub fn run(
        &self,
        ctx: &GpuContext,
        uploaded: Uploaded,
        progress: impl FnMut(u64),
    ) -> Result<(Vec<TrajectoryEnd>, Vec<f64>)> {
        self.run_observed(ctx, uploaded, progress, None)
    }

    /// The iterations a dispatch may run when every check must be seen: the
    /// largest divisor of check_every within `steps_per_dispatch`, so that
    /// dispatches end on every check.
    pub fn steps_to_each_check(&self) -> u32 {
        let most = self.steps_per_dispatch.min(self.check_every).max(1);
        (1..=most)
            .rev()
            .find(|d| self.check_every.is_multiple_of(*d))
            .unwrap_or(1)
    }

    /// `run`, and with `observe` = (steps, f) dispatches of `steps`
    /// iterations one at a time, without compaction, each followed by
    /// f(statuses, iterations, θ) read back from the device (θ count × dim,
    /// trajectory-major, widened to f64): the iterates a trace follows.
    #[allow(clippy::type_complexity)]
    pub fn run_observed(
        &self,
        ctx: &GpuContext,
        uploaded: Uploaded,
        mut progress: impl FnMut(u64),
        mut observe: Option<(u32, &mut dyn FnMut(&[u32], &[u32], &[f64]))>,
    ) -> Result<(Vec<TrajectoryEnd>, Vec<f64>)> {
        let Uploaded {
            count,
            dim,
            soa,
            theta: theta_buf,
            step_size: step_buf,
            status: status_buf,
            iterations: iter_buf,
            index: index_bufs,
        } = uploaded;
        let started = ctx.chunks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if ctx.lose_after.is_some_and(|k| started >= k) {
            ctx.error.lock().unwrap().get_or_insert(format!(
                "the GPU device was lost (injected by {LOSE_DEVICE_ENV} after {started} chunks)"
            ));
            ctx.check()?;
        }
        if count == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let active_buf = ctx.storage("active", bytemuck::bytes_of(&0u32));
        let params = StateParams {
            steps: observe
                .as_ref()
                .map_or(self.steps_per_dispatch, |(steps, _)| *steps),
            count: count as u32,
            stride: count as u32,
            pad: 0,
        };
        let params_buf = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            });
        let constants_buf =
            (!self.constants.is_empty()).then(|| ctx.storage("model_constants", &self.constants));
        let layer_buf = (!self.layer_of.is_empty())
            .then(|| ctx.storage("layer_of", bytemuck::cast_slice(&self.layer_of)));
        let scratch_buf = self.binds_scratch.then(|| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("scratch"),
                size: ((count * self.scratch_per_trajectory).max(1) * real_bytes(self.precision))
                    as u64,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        let bind = |pipeline: &wgpu::ComputePipeline, buffers: &[(Binding, &wgpu::Buffer)]| {
            let entries: Vec<wgpu::BindGroupEntry> = buffers
                .iter()
                .map(|&(binding, buffer)| wgpu::BindGroupEntry {
                    binding: binding.slot,
                    resource: buffer.as_entire_binding(),
                })
                .collect();
            ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.get_bind_group_layout(0),
                entries: &entries,
            })
        };
        let state_groups: Vec<wgpu::BindGroup> = index_bufs
            .iter()
            .map(|index| {
                use bindings::state::*;
                let mut buffers = vec![
                    (PARAMS, &params_buf),
                    (THETA, &theta_buf),
                    (STEP_SIZE, &step_buf),
                    (STATUS, &status_buf),
                    (ITERATIONS, &iter_buf),
                    (ACTIVE_COUNT, &active_buf),
                    (INDEX, index),
                ];
                if let Some(b) = &constants_buf {
                    buffers.push((MODEL_CONSTANTS, b));
                }
                if let Some(b) = &scratch_buf {
                    buffers.push((SCRATCH, b));
                }
                if let Some(b) = &layer_buf {
                    buffers.push((LAYER_OF, b));
                }
                bind(&self.pipeline, &buffers)
            })
            .collect();
        let compact_params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("compact_params"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let listed_buf = ctx.storage("listed", bytemuck::bytes_of(&0u32));
        let compact_groups = [
            bind(
                &self.compact,
                &[
                    (bindings::compact::PARAMS, &compact_params),
                    (bindings::compact::STATUS, &status_buf),
                    (bindings::compact::INDEX_IN, &index_bufs[0]),
                    (bindings::compact::INDEX_OUT, &index_bufs[1]),
                    (bindings::compact::LISTED, &listed_buf),
                ],
            ),
            bind(
                &self.compact,
                &[
                    (bindings::compact::PARAMS, &compact_params),
                    (bindings::compact::STATUS, &status_buf),
                    (bindings::compact::INDEX_IN, &index_bufs[1]),
                    (bindings::compact::INDEX_OUT, &index_bufs[0]),
                    (bindings::compact::LISTED, &listed_buf),
                ],
            ),
        ];
        let timestamps = ctx.timestamp_period.map(|_| {
            let set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("kernel_time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel_time"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, resolve)
        });
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
        let groups_for = |listed: u32| match self.layout {
            Layout::PerInvocation => (listed.div_ceil(self.workgroup_size), 1),
            Layout::PerWorkgroup => {
                let x = listed.min(max_groups);
                (x, listed.div_ceil(x))
            }
        };
        // One dispatch over the first `listed` entries of index list
        // `current`; its report (the active count and, with timestamps, the
        // pass's start and end ticks) comes back without blocking the host.
        let dispatch = |listed: u32, current: usize| {
            let report = ctx.staging("dispatch_report", 24);
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&active_buf, 0, None);
            {
                let writes = timestamps
                    .as_ref()
                    .map(|(set, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("descend"),
                    timestamp_writes: writes,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &state_groups[current], &[]);
                let (x, y) = groups_for(listed);
                pass.dispatch_workgroups(x, y, 1);
            }
            encoder.copy_buffer_to_buffer(&active_buf, 0, &report, 0, 4);
            if let Some((set, resolve)) = &timestamps {
                encoder.resolve_query_set(set, 0..2, resolve, 0);
                encoder.copy_buffer_to_buffer(resolve, 0, &report, 8, 16);
            }
            let submission = ctx.queue.submit([encoder.finish()]);
            ctx.start_read(report, submission)
        };
        // The count of trajectories still running after a dispatch, adding
        // its kernel time.
        let active_after = |report: Readback| -> Result<u32> {
            let report = ctx.finish_read::<u32>(report)?;
            if let Some(period) = ctx.timestamp_period {
                let tick = |i: usize| u64::from(report[i]) | (u64::from(report[i + 1]) << 32);
                let ns = (tick(4).saturating_sub(tick(2)) as f64 * f64::from(period)) as u64;
                ctx.kernel_ns
                    .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(report[0])
        };
        let (mut listed, mut current) = (count as u32, 0usize);
        let mut queued = std::collections::VecDeque::from([dispatch(listed, current)]);
        loop {
            // The next dispatch is queued before this one's count is read, so
            // the device does not idle through the round trip. One queued
            // after the last trajectory finished finds none running, and its
            // invocations return at once.
            // Observed, one dispatch at a time, so each read sees its own.
            if queued.len() < 2 && (observe.is_none() || queued.is_empty()) {
                queued.push_back(dispatch(listed, current));
            }
            let mut active = active_after(queued.pop_front().expect("a dispatch in flight"))?;
            progress(count as u64 - u64::from(active));
            if let Some((_, f)) = observe.as_mut() {
                let mut reads = ctx
                    .read_all::<u32>(&[
                        (
                            &theta_buf,
                            (count * dim * real_bytes(self.precision)) as u64,
                        ),
                        (&status_buf, (count * 4) as u64),
                        (&iter_buf, (count * 4) as u64),
                    ])?
                    .into_iter();
                let mut next = || reads.next().expect("three readbacks");
                let theta = from_device(bytemuck::cast_slice(&next()), self.precision);
                let theta = if soa {
                    transpose(&theta, dim, count)
                } else {
                    theta
                };
                let (status, iterations) = (next(), next());
                f(&status, &iterations, &theta);
            }
            if active == 0 {
                break;
            }
            if observe.is_none() && f64::from(active) <= COMPACT_BELOW * f64::from(listed) {
                // The list is cut to the trajectories that run after the
                // queued dispatch, so compaction waits for its count.
                active = active_after(queued.pop_front().expect("a dispatch in flight"))?;
                progress(count as u64 - u64::from(active));
                if active == 0 {
                    break;
                }
                ctx.queue.write_buffer(
                    &compact_params,
                    0,
                    bytemuck::cast_slice(&[listed, 0, 0, 0]),
                );
                let mut encoder = ctx.device.create_command_encoder(&Default::default());
                encoder.clear_buffer(&listed_buf, 0, None);
                {
                    let mut pass = encoder.begin_compute_pass(&Default::default());
                    pass.set_pipeline(&self.compact);
                    pass.set_bind_group(0, &compact_groups[current], &[]);
                    pass.dispatch_workgroups(listed.div_ceil(64), 1, 1);
                }
                ctx.queue.submit([encoder.finish()]);
                current = 1 - current;
                listed = active;
                let params = StateParams {
                    count: listed,
                    ..params
                };
                ctx.queue
                    .write_buffer(&params_buf, 0, bytemuck::bytes_of(&params));
                queued.push_back(dispatch(listed, current));
            }
        }
        let words = |n: usize| (n * 4) as u64;
        // θ, statuses and iteration counts come back in one round trip.
        let mut reads = ctx
            .read_all::<u32>(&[
                (
                    &theta_buf,
                    (count * dim * real_bytes(self.precision)) as u64,
                ),
                (&status_buf, words(count)),
                (&iter_buf, words(count)),
            ])?
            .into_iter();
        let mut next = || reads.next().expect("three readbacks");
        let finals = from_device(bytemuck::cast_slice(&next()), self.precision);
        let (status, iterations) = (next(), next());
        let finals = if soa {
            transpose(&finals, dim, count)
        } else {
            finals
        };
        let ends = status
            .iter()
            .zip(&iterations)
            .map(|(&s, &k)| {
                let code = s & 0xff;
                let outcome = Outcome::from_code(code).ok_or_else(|| {
                    Error::Gpu(format!(
                        "the GPU returned outcome code {code}{}; rerun with --backend cpu",
                        if code == RUNNING {
                            " (still running)"
                        } else {
                            ""
                        }
                    ))
                })?;
                // A trajectory stops only at a check: after a whole block, or
                // at max_iters. One that stopped anywhere else was corrupted
                // on the device (seen on lavapipe; see README, "GPU kernels").
                let k = u64::from(k);
                if k % u64::from(self.check_every) != 0 && k != self.max_iters {
                    return Err(Error::Gpu(format!(
                        "the GPU returned a trajectory that stopped between checks (at iteration {k}), so its results cannot be trusted; rerun with --backend cpu"
                    )));
                }
                Ok(TrajectoryEnd {
                    outcome,
                    period: s >> 8,
                    iterations: k,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((ends, finals))
    }
}

/// Values as the device holds them in `precision`: f64 rounded to f32, or
/// kept. On every core, as `transpose`.
fn to_device(values: &[f64], precision: Precision) -> Vec<u8> {
    use rayon::prelude::*;
    match precision {
        Precision::F32 => {
            let narrow: Vec<f32> = values.par_iter().map(|&v| v as f32).collect();
            bytemuck::cast_slice(&narrow).to_vec()
        }
        Precision::F64 => bytemuck::cast_slice(values).to_vec(),
    }
}

/// Values read back from the device in `precision`, widened to f64 (exactly).
fn from_device(bytes: &[u8], precision: Precision) -> Vec<f64> {
    use rayon::prelude::*;
    match precision {
        Precision::F32 => bytes
            .par_chunks_exact(4)
            .map(|b| f64::from(f32::from_ne_bytes(b.try_into().expect("4 bytes"))))
            .collect(),
        Precision::F64 => bytes
            .par_chunks_exact(8)
            .map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .collect(),
    }
}

/// A rows × cols row-major matrix transposed: trajectory-major θ to
/// structure-of-arrays and back.
/// On every core: a chunk's θ is millions of words, and this is on the path
/// between the device's runs.
fn transpose<T: Copy + Default + Send + Sync>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    use rayon::prelude::*;
    const BLOCK: usize = 1 << 14;
    let mut out = vec![T::default(); values.len()];
    out.par_chunks_mut(rows.max(1))
        .enumerate()
        .for_each(|(c, column)| {
            column
                .par_chunks_mut(BLOCK)
                .enumerate()
                .for_each(|(b, block)| {
                    for (k, v) in block.iter_mut().enumerate() {
                        *v = values[(b * BLOCK + k) * cols + c];
                    }
                });
        });
    out
}

/// A binding's entry in a compute pipeline's bind group layout.
fn layout_entry(binding: &Binding, real_bytes: u64) -> wgpu::BindGroupLayoutEntry {
    let ty = match binding.access {
        Access::Uniform => wgpu::BufferBindingType::Uniform,
        Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
        Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
    };
    wgpu::BindGroupLayoutEntry {
        binding: binding.slot,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: wgpu::BufferSize::new(binding.min_bytes(real_bytes)),
        },
        count: None,
    }
}

#[cfg(test)]
mod tests {
    use super::explain;

    #[test]
    fn driver_reports_become_one_sentence_with_a_remedy() {
        let lost = explain("the GPU device was lost (Unknown): VK_ERROR_DEVICE_LOST\nmore");
        assert!(
            lost.contains("was lost") && lost.contains("--backend cpu"),
            "{lost}"
        );
        assert!(!lost.contains('\n'));
        let oom = explain("Not enough memory left.");
        assert!(
            oom.contains("ran out of memory") && oom.contains("--chunk-size"),
            "{oom}"
        );
        let big = explain(
            "Buffer size 9000000000 is greater than the maximum buffer size limit (268435456)",
        );
        assert!(
            big.contains("over the adapter's limit") && big.contains("--chunk-size"),
            "{big}"
        );
        let other = explain("Shader validation failed");
        assert!(other.contains("--backend cpu"), "{other}");
    }
}
