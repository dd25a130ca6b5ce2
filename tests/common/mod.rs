//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stepsweep::backend::gpu::{NO_F64_ENV, REQUIRE_GPU_ENV};
use stepsweep::backend::GpuContext;
use stepsweep::spec::{Precision, Spec};

/// Any GPU adapter (lavapipe included). Without one the test is skipped with a
/// message, unless STEPSWEEP_REQUIRE_GPU is set (as CI does), when it fails.
pub fn gpu_or_skip(test: &str) -> Option<GpuContext> {
    match GpuContext::open(false) {
        Ok(Some(ctx)) => Some(ctx),
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                _ => "no GPU adapter found".to_string(),
            };
            if std::env::var_os(REQUIRE_GPU_ENV).is_some() {
                panic!("{test}: {why}, and {REQUIRE_GPU_ENV} is set; install mesa-vulkan-drivers for lavapipe");
            }
            eprintln!("skipping {test}: {why} (set {REQUIRE_GPU_ENV}=1 to make this a failure)");
            None
        }
    }
}

/// `ctx` where it can run `precision`; an adapter without f64 skips the f64
/// half of a test with a message, unless STEPSWEEP_REQUIRE_GPU is set (CI's
/// lavapipe has f64), when it fails.
pub fn with_precision(ctx: GpuContext, precision: Precision, test: &str) -> Option<GpuContext> {
    if precision == Precision::F32 || ctx.f64 {
        return Some(ctx);
    }
    if std::env::var_os(REQUIRE_GPU_ENV).is_some() && std::env::var_os(NO_F64_ENV).is_none() {
        panic!("{test}: the adapter has no f64 arithmetic, and {REQUIRE_GPU_ENV} is set");
    }
    eprintln!("skipping {test} in f64: the adapter has no f64 arithmetic");
    None
}

pub fn spec(text: &str) -> Spec {
    Spec::from_toml(text, "test spec").expect("test spec parses")
}

pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_stepsweep"))
}

/// Runs the binary with `args`, `--out out` and `-q`, asserts it succeeded,
/// and returns its stdout.
pub fn run_ok(args: &[&str], out: &std::path::Path) -> String {
    let o = bin()
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("-q")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A finished run's summary.json.
pub fn summary(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}
