// Writes the first `words` words of the streams of trajectories
// first_trajectory.., for the test that holds `shaders/shared/rng.wgsl`
// against src/rng.rs bit for bit.

#import shared/rng

struct RngParams {
    seed: vec2<u32>,
    first_trajectory: u32,
    words: u32,
}

#bindings rng_stream

@compute @workgroup_size(64)
fn rng_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = rng_params.first_trajectory + gid.x / rng_params.words;
    let i = gid.x % rng_params.words;
    if (gid.x < arrayLength(&rng_out)) {
        rng_out[gid.x] = trajectory_rng_word(rng_params.seed, vec2<u32>(t, 0u), i);
    }
}
