// Where a workgroup kernel keeps its region (θ, the gradient and the model's
// workspace, REGION_LEN reals): in workgroup memory when it fits, otherwise in
// the trajectory's slice of `scratch` (SCRATCH_LEN reals from
// t·SCRATCH_LEN, the region first, then the fingerprint ring). The model file
// and the descent loop reach it only through `region_get` and `region_set`,
// and meet at `sync()`.

#ifdef REGION_IN_SCRATCH
var<private> region_base: u32;

fn sync() {
    storageBarrier();
    workgroupBarrier();
}

fn set_region_base(t: u32) {
    region_base = t * SCRATCH_LEN;
}

fn region_get(i: u32) -> real {
    return scratch[region_base + i];
}

fn region_set(i: u32, v: real) {
    scratch[region_base + i] = v;
}
#else
var<workgroup> region: array<real, REGION_LEN>;

fn sync() {
    workgroupBarrier();
}

fn set_region_base(t: u32) {}

fn region_get(i: u32) -> real {
    return region[i];
}

fn region_set(i: u32, v: real) {
    region[i] = v;
}
#endif
