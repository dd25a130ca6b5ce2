#!/usr/bin/env bash
# Times what a new user waits for on first contact: on a fresh clone of this
# repository with an empty target/ and an empty cargo home (so every crate is
# downloaded and compiled), the build of the main command, then a fresh
# `cargo test --release` (build and run) on another such clone.
#
#   bash scripts/first_contact.sh [WORKDIR]
#
# Run it on an otherwise idle machine; it prints one line per step. The
# README's figures ran the tests as a user without a Vulkan driver has them:
#
#   VK_ICD_FILENAMES=/nonexistent.json bash scripts/first_contact.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"

fresh() {
    rm -rf "$work/$1" "$work/$1-cargo"
    git clone -q "$repo" "$work/$1"
    mkdir -p "$work/$1-cargo"
}

seconds() {
    local start=$SECONDS
    "$@" >"$work/last.log" 2>&1 || { tail -30 "$work/last.log"; return 1; }
    echo $((SECONDS - start))
}

fresh build
cd "$work/build"
echo "main command build (cargo build --release): $(CARGO_HOME="$work/build-cargo" seconds cargo build --release) s"

fresh test
cd "$work/test"
echo "tests (cargo test --release, build and run): $(CARGO_HOME="$work/test-cargo" seconds cargo test --release) s"
