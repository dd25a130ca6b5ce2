//! The WGSL Philox stream is bit-identical to the Rust one.

mod common;

use rand_core::RngCore;
use stepsweep::rng::TrajectoryRng;
use stepsweep::shaders;
use wgpu::util::DeviceExt;

#[test]
fn wgsl_streams_match_rust_streams_bit_for_bit() {
    let Some(ctx) = common::gpu_or_skip("wgsl_streams_match_rust_streams_bit_for_bit") else {
        return;
    };
    let seed: u64 = 0x1234_5678_9abc_def0;
    let first_trajectory = 4_000_000_000u32;
    let (trajectories, words) = (1024u32, 128u32);
    let total = (trajectories * words) as usize; // 131 072 draws
    let pipeline = ctx
        .pipeline(
            &shaders::rng_stream_kernel(),
            "rng_main",
            &shaders::bindings::rng_stream::ALL,
            4,
        )
        .unwrap();
    let params: [u32; 4] = [seed as u32, (seed >> 32) as u32, first_trajectory, words];
    let params_buf = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let out = ctx.storage("rng_out", &vec![0u8; total * 4]);
    let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params_buf.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
        ],
    });
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups((total as u32).div_ceil(64), 1, 1);
    }
    ctx.queue.submit([encoder.finish()]);
    let gpu: Vec<u32> = ctx.read(&out, (total * 4) as u64).unwrap();

    let mut mismatches = 0;
    for t in 0..trajectories {
        let mut rng = TrajectoryRng::new(seed, u64::from(first_trajectory + t));
        for i in 0..words {
            let expected = rng.next_u32();
            if gpu[(t * words + i) as usize] != expected {
                mismatches += 1;
            }
        }
    }
    assert_eq!(mismatches, 0, "{mismatches} of {total} words differ");
}
