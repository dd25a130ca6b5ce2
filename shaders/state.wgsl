// The bindings every descent kernel shares with the host driver
// (`StateKernel` in src/backend/gpu.rs). Bindings 6 (model constants) and 7
// (per-trajectory scratch) are declared by the kernels that use them.
struct Params {
    // Iterations per dispatch, at most (≥ 1; kernels may stop inside a block).
    steps: u32,
    // Running trajectories listed in `index` (after compaction, fewer than stride).
    count: u32,
    // Trajectories in the chunk: the structure-of-arrays stride.
    stride: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> theta: array<real>;
@group(0) @binding(2) var<storage, read> step_size: array<real>;
@group(0) @binding(3) var<storage, read_write> status: array<u32>;
@group(0) @binding(4) var<storage, read_write> iterations: array<u32>;
@group(0) @binding(5) var<storage, read_write> active_count: atomic<u32>;
@group(0) @binding(8) var<storage, read> index: array<u32>;
