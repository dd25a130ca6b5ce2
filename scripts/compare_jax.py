#!/usr/bin/env python3
"""Side-by-side comparison of stepsweep's CPU backend with a JAX vmap + jit script.

Runs `stepsweep bench --json` and the JAX equivalents of its workloads on the
same machine, in one run, and prints the ratios:

- W1-W4, fixed work: every trajectory runs exactly 1000 gradient steps in f32,
  with the same model, sizes, trajectory counts and step-size spread as the
  bench, and an initialization drawn from the same distribution (by numpy, so
  not the same numbers). Ratio = stepsweep throughput / JAX throughput.
- W5, time to answer: the poly preset. A vmap script has no early exit, so
  every trajectory runs max_iters steps and is classified at the end
  (converged to which minimizer, diverged, neither). When that would take too
  long, a fraction of the trajectories of every cell runs the full max_iters
  and the time is extrapolated linearly; the table says so.
  Ratio = JAX seconds / stepsweep seconds.

Each JAX workload is written in several forms: the gradient from `jax.grad`
of the loss (what a researcher writes), the model's hand-written gradient (the
formulas stepsweep evaluates) and, for the matrix model, small matrix products
written as broadcast sums, trajectories first or last. The fastest form on a
probe of 1024 trajectories is the baseline timed at full size.

Before timing, a few trajectories per model are run by `stepsweep run` (CPU,
f32, given initial parameters) and by the JAX code, and their iterates after
1000 steps are compared, so both sides compute the same math.

Run it through scripts/compare_jax.sh, which makes a throwaway virtual
environment with jax and numpy. JAX is not a dependency of the crate.
"""

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

try:
    import numpy as np
    import jax
    import jax.numpy as jnp
except ImportError as e:  # pragma: no cover
    sys.exit(
        f"compare_jax.py: {e}. Run scripts/compare_jax.sh, which installs jax and numpy "
        "into a throwaway virtual environment."
    )

jax.config.update("jax_enable_x64", False)
jax.config.update("jax_platform_name", "cpu")

REPO = Path(__file__).resolve().parent.parent
ITERATIONS = 1000  # W1-W4
CELLS = 16  # W1-W4: step sizes per workload, as in src/bench.rs
# Iterates after 1000 f32 steps agree to a few ulps when the arithmetic is the same.
SAME_MATH_TOLERANCE = 1e-4
F32 = np.float32

# ---------------------------------------------------------------------------
# Models (docs/theory.md §1-§4), each as a loss for jax.grad and as the hand-written
# gradient in the order of operations of src/models/*.rs.
# ---------------------------------------------------------------------------

# f(x) = (x²+1)(x−1)²(x−2)², ascending powers.
POLY = [4.0, -12.0, 17.0, -18.0, 14.0, -6.0, 1.0]
POLY_DERIV = [k * c for k, c in enumerate(POLY)][1:]


def horner(coefficients, x):
    acc = jnp.zeros_like(x)
    for c in reversed(coefficients):
        acc = acc * x + F32(c)
    return acc


def poly_loss(x):
    return horner(POLY, x)


def poly_grad(x):
    return horner(POLY_DERIV, x)


SCALAR_DEEP_LAMBDA = 2.0


def scalar_deep_loss(w):
    return 0.5 * (jnp.prod(w) - F32(SCALAR_DEEP_LAMBDA)) ** 2


def scalar_deep_grad(w):
    # src/models/scalar_deep.rs: prefix products, then suffix products.
    layers = w.shape[0]
    prefix = [None] * layers
    p = jnp.ones((), w.dtype)
    for i in range(layers):
        prefix[i] = p
        p = p * w[i]
    residual = p - F32(SCALAR_DEEP_LAMBDA)
    grad = [None] * layers
    suffix = jnp.ones((), w.dtype)
    for j in reversed(range(layers)):
        grad[j] = residual * (prefix[j] * suffix)
        suffix = suffix * w[j]
    return jnp.stack(grad)


def deep_linear_loss(target):
    def loss(w):  # w: (L, n, n); P = W_L ⋯ W_1
        p = w[0]
        for j in range(1, w.shape[0]):
            p = w[j] @ p
        return 0.5 * jnp.sum((p - target) ** 2)

    return loss


def broadcast_matmul(a, b):
    """a @ b as broadcast products summed over the inner index: for tiny
    matrices under vmap, XLA fuses this into vectorized loops over the batch,
    where a batched dot is far slower."""
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def deep_linear_grad(target, matmul=jnp.matmul):
    def grad(w):
        # src/models/deep_linear.rs: ∂f/∂W_j = S_jᵀ (P − R) P_{j−1}ᵀ.
        layers, n = w.shape[0], w.shape[1]
        prefix = [w[0]]
        for j in range(1, layers):
            prefix.append(matmul(w[j], prefix[-1]))
        e = prefix[-1] - target
        suffix = [None] * layers
        suffix[-1] = jnp.eye(n, dtype=w.dtype)
        for j in reversed(range(1, layers)):
            suffix[j - 1] = matmul(suffix[j], w[j])
        out = [matmul(suffix[0].T, e)]
        for j in range(1, layers):
            out.append(matmul(matmul(suffix[j].T, e), prefix[j - 1].T))
        return jnp.stack(out)

    return grad


class Relu:
    """f̂(x) = W (V x − b)_+ with b fixed; f = ½ Σ_i ‖f̂(x_i) − y_i‖² (docs/theory.md §4).
    Parameters: V (h×n) then W (m×h), flattened."""

    def __init__(self, n, h, m, samples, seed=963):
        rng = np.random.default_rng(seed)
        self.n, self.h, self.m = n, h, m
        self.x = jnp.asarray(rng.uniform(0, 1, (samples, n)), F32)
        self.b = jnp.asarray(rng.normal(size=h), F32)
        v0, w0 = rng.normal(size=(h, n)), rng.normal(size=(m, h))
        hidden = np.maximum(np.asarray(self.x) @ v0.T - np.asarray(self.b), 0)
        self.y = jnp.asarray(hidden @ w0.T, F32)

    def split(self, theta):
        hn = self.h * self.n
        return theta[:hn].reshape(self.h, self.n), theta[hn:].reshape(self.m, self.h)

    def loss(self, theta):
        v, w = self.split(theta)
        r = jnp.maximum(self.x @ v.T - self.b, 0) @ w.T - self.y
        return 0.5 * jnp.sum(r * r)

    def grad(self, theta):
        # (Small products as broadcast sums, as for W3, measured 25× slower here.)
        v, w = self.split(theta)
        z = self.x @ v.T - self.b
        a = jnp.maximum(z, 0)
        r = a @ w.T - self.y
        gw = r.T @ a
        gv = ((r @ w) * (z > 0)).T @ self.x
        return jnp.concatenate([gv.ravel(), gw.ravel()])


# ---------------------------------------------------------------------------
# Fixed-work descent: vmap over trajectories, fori_loop over steps, jit.
# ---------------------------------------------------------------------------


def descent(gradient, iterations):
    """θ ↦ θ after `iterations` GD steps, vmapped over trajectories (not jitted)."""

    def one(theta, step_size):
        return jax.lax.fori_loop(
            0, iterations, lambda _, t: t - step_size * gradient(t), theta
        )

    return jax.vmap(one)


def make_descent(gradient, iterations, batch_last=False):
    """Jitted descent; with `batch_last` the trajectories run along the last
    axis of θ (structure of arrays), else along the first."""
    if not batch_last:
        return jax.jit(descent(gradient, iterations))

    def one(theta, step_size):
        return jax.lax.fori_loop(
            0, iterations, lambda _, t: t - step_size * gradient(t), theta
        )

    return jax.jit(jax.vmap(one, in_axes=(-1, 0), out_axes=-1))


def time_compiled(fn, args, runs):
    """Compiles first (not timed), then times `runs` executions."""
    compiled = fn.lower(*args).compile()
    compiled(*args).block_until_ready()  # warm-up
    times = []
    out = None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = compiled(*args)
        out.block_until_ready()
        times.append(time.perf_counter() - t0)
    return times, out


def step_sizes(lo, hi, cells, per_cell):
    return np.repeat(np.linspace(lo, hi, cells), per_cell).astype(F32)


def forms(loss, gradient):
    """The ways a JAX script may write one workload: (name, gradient, batch_last)."""
    return [("jax.grad", jax.grad(loss), False), ("hand-written", gradient, False)]


def fixed_workload(wid, trajectories, seed=1):
    """Model, both gradients, initial parameters and step sizes for W1-W4, as in src/bench.rs."""
    rng = np.random.default_rng(seed)
    per_cell = trajectories // CELLS
    total = per_cell * CELLS
    if wid == "W1":
        theta = rng.uniform(0.5, 2.5, total).astype(F32)
        return dict(forms=forms(poly_loss, poly_grad), theta=theta,
                    steps=step_sizes(0.01, 0.15, CELLS, per_cell))
    if wid == "W2":
        layers = 8
        base = SCALAR_DEEP_LAMBDA ** (1 / layers)
        theta = (base + 0.2 * rng.normal(size=(total, layers))).astype(F32)
        return dict(forms=forms(scalar_deep_loss, scalar_deep_grad), theta=theta,
                    steps=step_sizes(0.005, 0.05, CELLS, per_cell))
    if wid == "W3":
        layers, n = 4, 4
        target = jnp.asarray(psd_target(n, np.random.default_rng(seed + 1)), F32)
        theta = (np.eye(n) + 0.1 * rng.normal(size=(total, layers, n, n))).astype(F32)
        by_broadcast = deep_linear_grad(target, broadcast_matmul)
        return dict(
            forms=forms(deep_linear_loss(target), deep_linear_grad(target)) + [
                ("hand-written, broadcast matmul", by_broadcast, False),
                ("hand-written, broadcast matmul, batch last", by_broadcast, True),
            ],
            theta=theta, steps=step_sizes(0.01, 0.2, CELLS, per_cell))
    if wid == "W4":
        model = Relu(1, 20, 1, 64)
        theta = rng.normal(size=(total, 40)).astype(F32)
        return dict(forms=forms(model.loss, model.grad), theta=theta,
                    steps=step_sizes(1e-4, 1e-3, CELLS, per_cell))
    raise ValueError(wid)


def psd_target(n, rng):
    """Q diag(1, (n−1)/n, …, 1/n) Qᵀ with Q a Haar rotation: stepsweep's default PSD target."""
    q, r = np.linalg.qr(rng.normal(size=(n, n)))
    q = q * np.sign(np.diag(r))
    return q @ np.diag([(n - i) / n for i in range(n)]) @ q.T


def run_fixed(wid, trajectories, runs, log, probe=1024):
    """Picks the fastest JAX form on a probe of `probe` trajectories, then
    times that form on the full workload."""
    w = fixed_workload(wid, trajectories)
    chosen = None
    small = fixed_workload(wid, min(trajectories, probe))
    for name, gradient, batch_last in small["forms"]:
        theta = np.moveaxis(small["theta"], 0, -1) if batch_last else small["theta"]
        times, _ = time_compiled(
            make_descent(gradient, ITERATIONS, batch_last),
            (jnp.asarray(theta), jnp.asarray(small["steps"])), 1,
        )
        log(f"  {wid} JAX probe, {small['theta'].shape[0]} trajectories, {name}: "
            f"{times[0] * 1e3:.1f} ms")
        if chosen is None or times[0] < chosen[0]:
            chosen = (times[0], name, gradient, batch_last)
    _, name, gradient, batch_last = chosen
    theta = np.moveaxis(w["theta"], 0, -1) if batch_last else w["theta"]
    times, _ = time_compiled(
        make_descent(gradient, ITERATIONS, batch_last),
        (jnp.asarray(theta), jnp.asarray(w["steps"])), runs,
    )
    mean = sum(times) / len(times)
    log(f"  {wid} JAX {name}: {mean:.3f} s (mean of {len(times)})")
    steps = w["theta"].shape[0] * ITERATIONS
    return dict(seconds=mean, form=name, runs=len(times), trajectory_steps=steps,
                traj_steps_per_s=steps / mean)


# ---------------------------------------------------------------------------
# W5: the poly preset to an answer, the vmap way: max_iters steps for all.
# ---------------------------------------------------------------------------


def preset_steps(preset):
    # As stepsweep resolves an axis: values from every part, rounded to 12
    # significant digits, sorted, duplicates dropped (132 cells for poly).
    values = []
    for lo, hi, count in preset["steps"]["linspace"]:
        values.extend(np.linspace(lo, hi, int(count)))
    values.extend(preset["steps"].get("values", []))
    rounded = {float(f"{v:.11e}") for v in values}
    return np.array(sorted(rounded))


def run_w5(per_cell, fraction_budget_s, probe_rate, log, fraction=None):
    preset = tomllib.loads((REPO / "presets" / "poly.toml").read_text())
    steps = preset_steps(preset)
    max_iters = int(preset["max_iters"])
    low, high = preset["init"]["low"], preset["init"]["high"]
    full_steps = len(steps) * per_cell * max_iters
    if fraction is None:
        fraction = min(1.0, fraction_budget_s * probe_rate / full_steps)
    run_per_cell = max(1, min(per_cell, int(per_cell * fraction)))
    fraction = run_per_cell / per_cell
    rng = np.random.default_rng(20181203)
    theta = jnp.asarray(rng.uniform(low, high, len(steps) * run_per_cell), F32)
    step = jnp.asarray(np.repeat(steps, run_per_cell), F32)

    def answer(theta, step):
        x = descent(poly_grad, max_iters)(theta, step)
        g = poly_grad(x)
        # The f32 rule: converged if |f'| ≤ 1e-3; then to the nearest critical point.
        finite = jnp.isfinite(x) & (jnp.abs(x) <= 1e6)
        converged = finite & (jnp.abs(g) <= 1e-3)
        nearest = jnp.argmin(jnp.abs(x[:, None] - jnp.asarray([1.0, 1.5561, 2.0], F32)), axis=1)
        return jnp.stack([
            converged & (nearest == 0),
            converged & (nearest == 2),
            ~finite,
        ]).sum(axis=1)

    counts_fn = jax.jit(answer)
    compiled = counts_fn.lower(theta, step).compile()
    t0 = time.perf_counter()
    counts = np.asarray(compiled(theta, step).block_until_ready())
    measured = time.perf_counter() - t0
    total = len(steps) * run_per_cell
    log(
        f"  W5 JAX: {run_per_cell} of {per_cell} trajectories per cell × {len(steps)} cells × "
        f"{max_iters} steps in {measured:.2f} s; converged to x=1: {counts[0] / total:.3f}, "
        f"to x=2: {counts[1] / total:.3f}, diverged: {counts[2] / total:.3f}"
    )
    return dict(
        seconds=measured / fraction,
        measured_seconds=measured,
        fraction=fraction,
        trajectory_steps=full_steps,
        traj_steps_per_s=total * max_iters / measured,
        form="hand-written",
        runs=1,
    )


# ---------------------------------------------------------------------------
# Same math: a few trajectories through `stepsweep run` and through JAX.
# ---------------------------------------------------------------------------


def check_same_math(binary, log):
    """Runs 1000 f32 steps from given initial parameters on a few step sizes in
    both; returns the largest relative difference of the final iterates per model."""
    rng = np.random.default_rng(7)
    n = 4
    target = psd_target(n, rng)
    t32 = jnp.asarray(target, F32)
    cases = {
        "poly": ('kind = "poly"', [1.3], [0.01, 0.05, 0.1, 0.15], forms(poly_loss, poly_grad)),
        "scalar-deep": (
            'kind = "scalar-deep"\nlayers = 8\nlambda = 2.0',
            list(SCALAR_DEEP_LAMBDA ** 0.125 + 0.2 * rng.normal(size=8)),
            [0.005, 0.02, 0.05],
            forms(scalar_deep_loss, scalar_deep_grad),
        ),
        "deep-linear": (
            'kind = "deep-linear"\nlayers = 4\nsize = 4\ntarget = { kind = "given", matrix = '
            + json.dumps(target.astype(F32).astype(float).tolist()) + " }",
            list((np.eye(n) + 0.1 * rng.normal(size=(4, n, n))).ravel()),
            [0.01, 0.1, 0.2],
            forms(deep_linear_loss(t32), deep_linear_grad(t32))
            + [("broadcast matmul", deep_linear_grad(t32, broadcast_matmul), True)],
        ),
    }
    worst = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, init, steps, variants) in cases.items():
            init = [float(F32(v)) for v in init]
            spec = Path(tmp) / f"{name}.toml"
            spec.write_text(
                f"trajectories = 1\nmax_iters = {ITERATIONS}\nseed = 1\nprecision = \"f32\"\n"
                f"backend = \"cpu\"\n[model]\n{model}\n[init]\nkind = \"given\"\n"
                f"values = {json.dumps(init)}\n[steps]\nvalues = {json.dumps(steps)}\n"
                "[stop]\nearly_exit = false\ndivergence_cap = 1e30\n"
            )
            out = Path(tmp) / name
            subprocess.run(
                [binary, "run", str(spec), "--out", str(out), "--write-trajectories", "-q"],
                check=True, stdout=subprocess.DEVNULL,
            )
            with open(out / "trajectories.csv") as f:
                rows = list(csv.DictReader(f))
            theirs = np.array(
                [[float(r[f"theta_{k}"]) for k in range(len(init))] for r in rows]
            )
            shape = (4, n, n) if name == "deep-linear" else (len(init),)
            start = np.tile(np.array(init, F32).reshape(shape), (len(steps),) + (1,) * len(shape))
            if name == "poly":
                start = start[:, 0]
            for form, gradient, batch_last in variants:
                theta = np.moveaxis(start, 0, -1) if batch_last else start
                ours = make_descent(gradient, ITERATIONS, batch_last)(
                    jnp.asarray(theta), jnp.asarray(np.array(steps, F32))
                )
                ours = np.asarray(ours, np.float64)
                if batch_last:
                    ours = np.moveaxis(ours, -1, 0)
                ours = ours.reshape(len(steps), -1)
                diff = float(np.max(np.abs(ours - theirs) / (1 + np.abs(theirs))))
                worst[f"{name} ({form})"] = diff
    for name, diff in worst.items():
        log(f"  same math, {name}: largest |Δθ|/(1+|θ|) after {ITERATIONS} steps = {diff:.2e}")
    return worst


# ---------------------------------------------------------------------------


def run_stepsweep_bench(binary, quick, runs, with_gpu, log):
    cmd = [binary, "bench", "--json"]
    if quick:
        cmd.append("--quick")
    if runs is not None:
        cmd += ["--runs", str(runs)]
    env = dict(os.environ)
    if not with_gpu:
        # The comparison is CPU against CPU: keep wgpu from finding any adapter.
        env["WGPU_BACKEND"] = "noop"
    log("running: " + " ".join(cmd))
    result = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"compare_jax.py: `{' '.join(cmd)}` failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stepsweep", default=str(REPO / "target" / "release" / "stepsweep"),
                    help="the stepsweep binary (release build)")
    ap.add_argument("--quick", action="store_true", help="the bench's smaller sizes")
    ap.add_argument("--runs", type=int, help="runs per workload (both sides) [bench default]")
    ap.add_argument("--w5-budget", type=float, default=None,
                    help="seconds of JAX time for W5; a fraction of the trajectories runs "
                         "and the time is extrapolated [60, or 20 with --quick]")
    ap.add_argument("--w5-fraction", type=float, default=None,
                    help="run this fraction of W5's trajectories instead of using the budget")
    ap.add_argument("--with-gpu", action="store_true",
                    help="let `stepsweep bench` also time GPU adapters (not compared)")
    ap.add_argument("--skip-check", action="store_true", help="skip the same-math check")
    ap.add_argument("--json-out", help="also write the table's rows to this JSON file")
    args = ap.parse_args()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if not os.access(args.stepsweep, os.X_OK):
        sys.exit(f"compare_jax.py: no stepsweep binary at {args.stepsweep}; "
                 "build it with `cargo build --release` or pass --stepsweep")
    log(f"jax {jax.__version__}, numpy {np.__version__}, devices {jax.devices()}, "
        f"{os.cpu_count()} CPUs")

    check = None if args.skip_check else check_same_math(args.stepsweep, log)

    bench = run_stepsweep_bench(args.stepsweep, args.quick, args.runs, args.with_gpu, log)
    cpu = {r["workload"]: r for r in bench if r["backend"].startswith("cpu") and r.get("precision", "f32") == "f32"}
    runs = args.runs or (1 if args.quick else 3)
    rows = []
    for wid in ("W1", "W2", "W3", "W4"):
        if wid not in cpu:
            log(f"  {wid}: not in `stepsweep bench`; skipped")
            continue
        trajectories = cpu[wid]["trajectory_steps"] // ITERATIONS
        log(f"{wid}: {trajectories} trajectories × {ITERATIONS} steps")
        rows.append((wid, run_fixed(wid, trajectories, runs, log), cpu[wid]))
    if "W5" in cpu:
        m = re.search(r"(\d+) trajectories per cell", cpu["W5"]["description"])
        per_cell = int(m.group(1)) if m else (1000 if args.quick else 10_000)
        probe = next((j["traj_steps_per_s"] for w, j, _ in rows if w == "W1"), 1e9)
        budget = args.w5_budget or (20.0 if args.quick else 60.0)
        log(f"W5: poly preset, {per_cell} trajectories per cell")
        rows.append(("W5", run_w5(per_cell, budget, probe, log, args.w5_fraction), cpu["W5"]))

    header = ["workload", "JAX s", "JAX traj-steps/s", "JAX form",
              "stepsweep cpu s", "traj-steps/s", "GFLOP/s", "ratio"]
    table = [header]
    out_rows = []
    for wid, j, s in rows:
        if wid == "W5":
            ratio = j["seconds"] / s["seconds"]
            note = "" if j["fraction"] >= 1 else f" (extrapolated from {j['fraction']:.3g})"
            ratio_text = f"{ratio:.2f}× faster (time)"
        else:
            ratio = s["traj_steps_per_s"] / j["traj_steps_per_s"]
            note = ""
            ratio_text = f"{ratio:.2f}× (throughput)"
        table.append([
            wid, f"{j['seconds']:.3f}{note}", f"{j['traj_steps_per_s']:.3e}", j["form"],
            f"{s['seconds']:.3f}", f"{s['traj_steps_per_s']:.3e}", f"{s['gflops']:.2f}",
            ratio_text,
        ])
        out_rows.append(dict(workload=wid, jax=j, stepsweep=s, ratio=ratio))
    widths = [max(len(r[c]) for r in table) for c in range(len(header))]
    print()
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    print("\nratio: stepsweep throughput / JAX throughput for W1-W4; "
          "JAX seconds / stepsweep seconds for W5.")
    if any(w == "W5" and j["fraction"] < 1 for w, j, _ in rows):
        print("W5 JAX time: a fraction of every cell's trajectories ran all max_iters steps; "
              "the time is scaled linearly to the full count.")
    if check is not None:
        print("same math (1000 f32 steps from the same start, JAX vs `stepsweep run`, "
              "largest |Δθ|/(1+|θ|)): " + ", ".join(f"{k} {v:.1e}" for k, v in check.items()))
        bad = [k for k, v in check.items() if not v <= SAME_MATH_TOLERANCE]
        if bad:
            print(f"MISMATCH: {', '.join(bad)} differ from stepsweep by more than "
                  f"{SAME_MATH_TOLERANCE:g}; the JAX side does not compute the same math")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(dict(rows=out_rows, check=check), indent=2))
    if check is not None and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
