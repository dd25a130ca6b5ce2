// Philox4x32-10, the WGSL twin of src/rng.rs. WGSL has no 64-bit integers, so
// the 32x32 -> 64 multiply is assembled from 16-bit halves.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// Returns (hi, lo) of the 64-bit product a * b.
fn philox_mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xFFFFu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xFFFFu;
    let b_hi = b >> 16u;
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    let mid = (ll >> 16u) + (lh & 0xFFFFu) + (hl & 0xFFFFu);
    let hi = hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
    var ctr = counter;
    var key = key_in;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            key = key + vec2<u32>(PHILOX_W0, PHILOX_W1);
        }
        let p0 = philox_mulhilo(PHILOX_M0, ctr.x);
        let p1 = philox_mulhilo(PHILOX_M1, ctr.z);
        ctr = vec4<u32>(p1.x ^ ctr.y ^ key.x, p1.y, p0.x ^ ctr.w ^ key.y, p0.y);
    }
    return ctr;
}

// Word `i` of the stream of trajectory `t` under `seed`, as TrajectoryRng::next_u32 yields it.
fn trajectory_rng_word(seed: vec2<u32>, trajectory: vec2<u32>, i: u32) -> u32 {
    let block = philox4x32_10(vec4<u32>(trajectory.x, trajectory.y, i / 4u, 0u), seed);
    return block[i % 4u];
}
