//! The GPU backend: wgpu plumbing in one place, so no model file has to know
//! about staging buffers. Kernels follow one binding layout (see
//! `shaders/poly.wgsl`): params, θ, step sizes, status, iterations, active count.

use std::sync::{mpsc, Arc, Mutex};

use wgpu::util::DeviceExt;

use crate::error::{Error, Result};
use crate::stopping::{Outcome, TrajectoryEnd, RUNNING};

/// Set this variable to make a missing adapter a failure instead of a skip (CI sets it).
pub const REQUIRE_GPU_ENV: &str = "STEPSWEEP_REQUIRE_GPU";

pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// The first validation or device error the driver reported, if any.
    error: Arc<Mutex<Option<String>>>,
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// Every adapter wgpu sees, with its limits.
pub fn adapters() -> Vec<(wgpu::AdapterInfo, wgpu::Limits)> {
    pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|a| (a.get_info(), a.limits()))
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
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("stepsweep"),
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
            device,
            queue,
            info,
            limits,
            error,
        }))
    }

    fn check(&self) -> Result<()> {
        match self.error.lock().unwrap().take() {
            Some(e) => Err(Error::Gpu(explain(&e))),
            None => Ok(()),
        }
    }

    fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        self.check()
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
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(source, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("the GPU never answered a readback".into()))?
            .map_err(|e| Error::Gpu(format!("reading back from the GPU failed: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Gpu(format!("reading back from the GPU failed: {e}")))?;
        let out = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    pub fn pipeline(&self, source: &str, entry: &str) -> Result<wgpu::ComputePipeline> {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        self.check()?;
        Ok(pipeline)
    }

    /// Most trajectories one dispatch of a state kernel can hold, given the
    /// adapter's limits on buffer sizes and workgroup counts.
    pub fn max_chunk(&self, dim: usize, workgroup_size: u32) -> u64 {
        let per_binding = self
            .limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
            / (4 * dim as u64);
        let per_dispatch =
            u64::from(self.limits.max_compute_workgroups_per_dimension) * u64::from(workgroup_size);
        per_binding.min(per_dispatch)
    }
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
    blocks: u32,
    count: u32,
    pad: [u32; 2],
}

/// A compiled kernel that advances per-trajectory states in place.
pub struct StateKernel {
    pipeline: wgpu::ComputePipeline,
    workgroup_size: u32,
    /// Blocks of `check_every` iterations per dispatch: bounds each submit, so
    /// OS watchdogs stay quiet and progress can be shown.
    blocks_per_dispatch: u32,
}

impl StateKernel {
    pub fn new(
        ctx: &GpuContext,
        source: &str,
        entry: &str,
        workgroup_size: u32,
        check_every: u32,
    ) -> Result<Self> {
        Ok(StateKernel {
            pipeline: ctx.pipeline(source, entry)?,
            workgroup_size,
            blocks_per_dispatch: (1024 / check_every).max(1),
        })
    }

    /// Runs trajectories with initial parameters `theta` (count × dim, overwritten
    /// with the final iterates) and step sizes `step_size` (count) to the end.
    /// `progress` is told how many have finished after each dispatch.
    pub fn run(
        &self,
        ctx: &GpuContext,
        theta: &mut [f32],
        step_size: &[f32],
        mut progress: impl FnMut(u64),
    ) -> Result<Vec<TrajectoryEnd>> {
        let count = step_size.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        // Chunks are sized to the limits (`max_chunk`); this guards a caller
        // that was not, before wgpu turns it into a validation error.
        let bytes = std::mem::size_of_val(theta) as u64;
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        if bytes > limit || count > u32::MAX as usize {
            return Err(Error::Gpu(format!(
                "a chunk of {count} trajectories needs a {bytes}-byte GPU buffer, over the adapter's limit of {limit} bytes; give a smaller --chunk-size"
            )));
        }
        let theta_buf = ctx.storage("theta", bytemuck::cast_slice(theta));
        let step_buf = ctx.storage("step_size", bytemuck::cast_slice(step_size));
        let zeros = vec![0u32; count];
        let status_buf = ctx.storage("status", bytemuck::cast_slice(&zeros));
        let iter_buf = ctx.storage("iterations", bytemuck::cast_slice(&zeros));
        let active_buf = ctx.storage("active", bytemuck::bytes_of(&0u32));
        let params = StateParams {
            blocks: self.blocks_per_dispatch,
            count: count as u32,
            pad: [0; 2],
        };
        let params_buf = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let layout = self.pipeline.get_bind_group_layout(0);
        let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("state"),
            layout: &layout,
            entries: &[
                (0, &params_buf),
                (1, &theta_buf),
                (2, &step_buf),
                (3, &status_buf),
                (4, &iter_buf),
                (5, &active_buf),
            ]
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }),
        });
        let groups = (count as u32).div_ceil(self.workgroup_size);
        loop {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            encoder.clear_buffer(&active_buf, 0, None);
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            ctx.queue.submit([encoder.finish()]);
            let active = ctx.read::<u32>(&active_buf, 4)?[0];
            progress(count as u64 - u64::from(active));
            if active == 0 {
                break;
            }
        }
        let bytes = |n: usize| (n * 4) as u64;
        theta.copy_from_slice(&ctx.read::<f32>(&theta_buf, bytes(theta.len()))?);
        let status = ctx.read::<u32>(&status_buf, bytes(count))?;
        let iterations = ctx.read::<u32>(&iter_buf, bytes(count))?;
        status
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
                Ok(TrajectoryEnd {
                    outcome,
                    period: s >> 8,
                    iterations: u64::from(k),
                })
            })
            .collect()
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
