#!/usr/bin/env bash
# One pass on a machine with a GPU: build, run the GPU tests against the CPU
# twins in f32 and f64 (the reproduction on the GPU in f64 among them), then
# `stepsweep bench` (every workload, CPU and GPU rows in f32 and f64, with
# kernel time from timestamp queries where the adapter has them).
#
#   scripts/gpu_check.sh [OUT_DIR]
#
# Writes OUT_DIR/gpu_tests.log, OUT_DIR/bench.json and
# OUT_DIR/layout-{invocation,workgroup}.json (W3 and W4 in each kernel
# layout, forced by STEPSWEEP_GPU_LAYOUT: the measurement that settles which
# layout suits the hardware); OUT_DIR defaults to target/gpu_check. Prints
# them all. Meant for a hardware GPU: on lavapipe
# the full W3 and W4 take minutes a run (use `stepsweep bench --quick`). A
# missing adapter fails the GPU tests instead of skipping them. Each step is
# bounded, so a hung driver cannot eat a borrowed machine's time.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-target/gpu_check}"
mkdir -p "$out"
export STEPSWEEP_REQUIRE_GPU=1
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null | tee "$out/gpu.txt" || true
timeout 400 cargo build --release --locked
timeout 400 cargo test --release --locked --test gpu_vs_cpu --test gpu_models --test gpu_rng \
    --test reproduce \
    2>&1 | tee "$out/gpu_tests.log" | grep -E "^test |test result"
timeout 300 target/release/stepsweep bench --runs 3 --json | tee "$out/bench.json"
for layout in invocation workgroup; do
    STEPSWEEP_GPU_LAYOUT=$layout timeout 200 target/release/stepsweep bench --runs 3 --json \
        --workload W3 --workload W4 | tee "$out/layout-$layout.json"
done
