//! Helpers shared by the integration tests.
#![allow(dead_code)]

use stepsweep::backend::gpu::REQUIRE_GPU_ENV;
use stepsweep::backend::GpuContext;
use stepsweep::spec::Spec;

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

pub fn spec(text: &str) -> Spec {
    Spec::from_toml(text, "test spec").expect("test spec parses")
}

pub fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_stepsweep"))
}
