#!/usr/bin/env bash
# Compares stepsweep's CPU backend with a JAX vmap + jit script on the standard
# workloads of `stepsweep bench` (see scripts/compare_jax.py), on this machine.
#
#   scripts/compare_jax.sh [--quick] [--runs N] [other compare_jax.py flags]
#
# Builds stepsweep in release, makes a throwaway virtual environment with jax
# (CPU) and numpy from PyPI, runs the comparison and removes the environment.
# JAX is never a dependency of the crate. Set PYTHON to pick the interpreter
# (3.11 or newer) and JAX_SPEC to pin a version (for example "jax[cpu]==0.4.35").
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
jax_spec="${JAX_SPEC:-jax[cpu]}"

die() {
    echo "compare_jax.sh: $*" >&2
    exit 1
}

command -v "$python" >/dev/null || die "no $python; install Python 3.11 or newer (apt-get install python3 python3-venv)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$python" --version 2>&1) is too old; the comparison needs Python 3.11 or newer (tomllib)"
"$python" -c 'import venv, ensurepip' 2>/dev/null ||
    die "$python cannot make virtual environments; install python3-venv (apt-get install python3-venv)"
command -v cargo >/dev/null || die "no cargo; install Rust (https://rustup.rs) to build stepsweep"

venv="$(mktemp -d "${TMPDIR:-/tmp}/stepsweep-jax.XXXXXX")"
trap 'rm -rf "$venv"' EXIT

echo "compare_jax.sh: building stepsweep (release)" >&2
(cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
binary="$target_dir/release/stepsweep"
[ -x "$binary" ] || die "no binary at $binary after the build"

echo "compare_jax.sh: installing $jax_spec and numpy into $venv" >&2
"$python" -m venv "$venv" || die "cannot create a virtual environment in $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$jax_spec" numpy ||
    die "pip could not install $jax_spec and numpy; the comparison needs access to PyPI"

"$venv/bin/python" "$repo/scripts/compare_jax.py" --stepsweep "$binary" "$@"
