// The state every descent kernel shares with the host driver. Its bindings
// are declared from the table in src/shaders/bindings.rs, which the host's
// bind group layouts are made from too: the model constants where the plan
// has any (MODEL_CONSTANTS), the per-trajectory scratch always, and the layer
// of each parameter where the layers' step sizes differ (PER_LAYER: then
// `step_size` holds STEP_SLOTS step sizes per trajectory, layer l's at
// l·stride + t, and β, where the optimizer has one, at STEP_SLOTS·stride + t).
struct Params {
    // Iterations per dispatch, at most (≥ 1; kernels may stop inside a block).
    steps: u32,
    // Running trajectories listed in `index` (after compaction, fewer than stride).
    count: u32,
    // Trajectories in the chunk: the structure-of-arrays stride.
    stride: u32,
    pad: u32,
}

#bindings state
#ifdef MODEL_CONSTANTS
#bindings model_constants
#endif
#bindings scratch
#ifdef PER_LAYER
#bindings layer_of
#endif
