//! Nothing to build: this script exists so that Cargo.toml's
//! build-dependencies (which give every build of the workspace one feature
//! set) take effect.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
}
