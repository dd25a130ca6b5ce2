// Compaction: lists the trajectories of `index_in` that are still running in
// `index_out`, so later dispatches launch only those. The order of the list
// does not matter: every trajectory is advanced independently.

struct CompactParams {
    count: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

const RUNNING: u32 = 0u;

#bindings compact


@compute @workgroup_size(64)
fn compact_main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= cparams.count) {
        return;
    }
    let t = index_in[gid.x];
    if (status[t] == RUNNING) {
        index_out[atomicAdd(&listed, 1u)] = t;
    }
}
