//! The scalar-deep, deep-linear and relu kernels against their CPU twins, in
//! f32 and in f64, trajectory by trajectory.

mod common;

use stepsweep::backend::{Backend, ChunkResult};
use stepsweep::models::Model;
use stepsweep::shaders::{DeviceLimits, KernelPlan, Layout};
use stepsweep::spec::Precision;
use stepsweep::stopping::{Outcome, StopRule};
use stepsweep::sweep::Sweep;

/// The kernel plan the backend makes for `model`.
fn kernel(
    model: &Model,
    rule: &StopRule,
    limits: DeviceLimits,
    precision: Precision,
) -> KernelPlan {
    model.kernel(rule, limits, precision)
}

/// Final parameters of trajectories that converged on both backends agree to
/// this, relative to the parameters' scale: f32 runs whose kernels may fuse a
/// multiply and an add that the CPU rounds twice. When such a rounding puts
/// the gradient norm on the other side of tol_grad at a check, one backend
/// stops a block later; the stated tolerance adds what θ can move in that
/// block, at most check_every · δ · tol_grad.
const PARAM_TOL: f64 = 2e-3;

fn compare(name: &str, spec_text: &str) {
    compare_ends(name, spec_text, false);
}

/// With `every_end`, the final iterates of every finite trajectory must agree,
/// not only of the converged ones: for fixed-length runs of models that
/// converge too slowly to test in CI time. Each comparison runs in f32 and
/// in f64 (`compare_at`).
fn compare_ends(name: &str, spec_text: &str, every_end: bool) {
    for precision in [Precision::F32, Precision::F64] {
        let Some(ctx) = common::gpu_or_skip(name) else {
            return;
        };
        let Some(ctx) = common::with_precision(ctx, precision, name) else {
            return;
        };
        compare_at(name, spec_text, every_end, ctx, precision);
    }
}

/// In f32 the kernels may fuse a multiply and an add that the CPU rounds
/// twice, so final iterates agree to `PARAM_TOL`. In f64 they agree to 1e-9
/// of the parameters' scale, and on a CPU adapter (lavapipe) every finite end
/// of the same class is compared, to 1e-12: the per-invocation deep-linear
/// kernel ends a few ulps from the CPU there (its compiler fuses some
/// products into the sums), the others bit for bit (`tests/gpu_vs_cpu.rs`).
fn compare_at(
    name: &str,
    spec_text: &str,
    every_end: bool,
    ctx: stepsweep::backend::GpuContext,
    precision: Precision,
) {
    let name = &format!("{name} in {}", precision.name());
    let cpu_adapter = !stepsweep::backend::gpu::is_hardware(&ctx.info);
    let every_end = every_end || (precision == Precision::F64 && cpu_adapter);
    let param_tol = match (precision, cpu_adapter) {
        (Precision::F32, _) => PARAM_TOL,
        (Precision::F64, true) => 1e-12,
        (Precision::F64, false) => 1e-9,
    };
    let sweep = Sweep::new(common::spec(spec_text)).unwrap();
    let rule = sweep.rule(precision);
    let run = |engine: Backend| -> Vec<ChunkResult> {
        sweep
            .chunks(0..sweep.total(), u64::MAX)
            .into_iter()
            .map(|ids| engine.run(&sweep, &rule, ids, |_| {}).unwrap())
            .collect()
    };
    let gpu = run(Backend::new(&sweep, Some(ctx), precision, &rule).unwrap());
    let cpu = run(Backend::new(&sweep, None, precision, &rule).unwrap());
    let (mut n, mut same, mut both_converged) = (0usize, 0usize, 0usize);
    let mut base = 0u64;
    for (g, c) in gpu.iter().zip(&cpu) {
        for (i, (eg, ec)) in g.ends.iter().zip(&c.ends).enumerate() {
            let step_size = sweep.cell_of(base + i as u64).step_size;
            let block_drift = f64::from(rule.check_every) * step_size * rule.tol_grad;
            n += 1;
            if eg.outcome == ec.outcome {
                same += 1;
            }
            let tg = &g.theta[i * g.dim..(i + 1) * g.dim];
            let tc = &c.theta[i * c.dim..(i + 1) * c.dim];
            let finite = tc.iter().all(|v| v.is_finite());
            let both = eg.outcome == Outcome::Converged && ec.outcome == Outcome::Converged;
            if both || (every_end && eg.outcome == ec.outcome && finite) {
                both_converged += 1;
                let scale = tc.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                let worst = tg
                    .iter()
                    .zip(tc)
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
                assert!(
                    worst <= param_tol * scale + block_drift,
                    "{name}: trajectory {i} differs by {worst} (iterations: gpu {}, cpu {})",
                    eg.iterations,
                    ec.iterations
                );
            }
        }
        base += g.ends.len() as u64;
    }
    let agreement = same as f64 / n as f64;
    assert!(
        agreement >= 0.999,
        "{name}: classes agree on {agreement:.4} of {n}"
    );
    assert!(
        both_converged * 5 >= n,
        "{name}: only {both_converged} of {n} compared (converged on both, or finite ends)"
    );
}

fn scalar_deep(layers: u32) -> String {
    format!(
        r#"
        trajectories = 1000
        max_iters = 20000
        seed = 5
        [model]
        kind = "scalar-deep"
        layers = {layers}
        lambda = 2.0
        [init]
        kind = "balanced"
        noise = 0.2
        [steps]
        linspace = [0.005, 0.3, 8]
        "#
    )
}

fn deep_linear(size: u32, layers: u32, trajectories: u32) -> String {
    format!(
        r#"
        trajectories = {trajectories}
        max_iters = 4000
        seed = 6
        [model]
        kind = "deep-linear"
        layers = {layers}
        size = {size}
        target = {{ kind = "psd", seed = 1 }}
        sigma_max = 1.2
        [init]
        kind = "identity"
        scale = 0.1
        [steps]
        values = [0.05, 0.2, 0.6]
        "#
    )
}

#[test]
fn scalar_deep_kernel_matches_cpu() {
    for layers in [2, 5, 16] {
        compare(&format!("scalar-deep L={layers}"), &scalar_deep(layers));
    }
}

#[test]
fn deep_linear_kernel_matches_cpu() {
    for (size, layers, trajectories) in [(2, 2, 400), (4, 4, 200), (8, 3, 64), (16, 2, 24)] {
        compare(
            &format!("deep-linear n={size} L={layers}"),
            &deep_linear(size, layers, trajectories),
        );
    }
}

#[test]
fn kernels_follow_a_second_axis_that_changes_the_model() {
    compare(
        "scalar-deep over L",
        r#"
        trajectories = 300
        max_iters = 20000
        seed = 8
        [model]
        kind = "scalar-deep"
        layers = 2
        lambda = 2.0
        [init]
        kind = "balanced"
        noise = 0.2
        [steps]
        values = [0.02, 0.1, 0.2]
        [axis]
        param = "model.layers"
        values = [2, 3, 6]
        "#,
    );
    compare(
        "deep-linear over sigma_max",
        r#"
        trajectories = 40
        max_iters = 4000
        seed = 9
        [model]
        kind = "deep-linear"
        layers = 2
        size = 3
        target = { kind = "psd", seed = 3 }
        [init]
        kind = "orthogonal"
        scale = 1.0
        [steps]
        values = [0.05, 0.2]
        [axis]
        param = "model.sigma_max"
        values = [0.5, 1.5]
        "#,
    );
}

/// A two-layer ReLU network on Gaussian inputs with a teacher's targets; the
/// step sizes span converging and diverging cells. The gradient tolerance
/// `tol` (on a sum over N samples) is loose enough for many to converge in a
/// short run; both backends must still agree on every class and final iterate.
#[allow(clippy::too_many_arguments)]
fn relu(
    n: u32,
    h: u32,
    m: u32,
    samples: u32,
    trajectories: u32,
    steps: &str,
    max_iters: u32,
    tol: f64,
) -> String {
    format!(
        r#"
        trajectories = {trajectories}
        max_iters = {max_iters}
        seed = 7
        [model]
        kind = "relu"
        input_size = {n}
        hidden = {h}
        output_size = {m}
        samples = {samples}
        inputs = {{ kind = "gaussian", std = {x_std}, seed = 1 }}
        targets = {{ kind = "teacher", std = 0.5, seed = 2 }}
        bias_std = 0.5
        [init]
        kind = "gaussian"
        mean = 0.0
        std = 0.5
        [steps]
        values = [{steps}]
        [stop]
        tol_grad = {tol}
        "#,
        x_std = 1.0 / f64::from(n).sqrt(),
    )
}

#[test]
fn relu_kernel_matches_cpu() {
    for (n, h, m, samples, trajectories, steps, max_iters, tol) in [
        (1, 20, 1, 1, 1000, "0.02, 0.1, 0.3", 2000, 1e-3),
        // S = 4 partial sums and their tree, one invocation per trajectory
        // on any adapter (asserted below).
        (2, 8, 1, 6, 100, "0.02, 0.1, 0.3", 2000, 0.01),
        (1, 20, 1, 64, 200, "0.004, 0.006, 0.01", 1500, 0.08),
        // A step runs more loop iterations than lavapipe allows a dispatch
        // 64 of (see `LLVMPIPE_LOOP_LIMIT`), so blocks span dispatches there;
        // δ = 0.0006 converges (in about 600 steps), δ = 0.001 diverges.
        (4, 64, 2, 256, 16, "0.0006, 0.001", 1000, 3.0),
    ] {
        compare(
            &format!("relu (n,h,m,N)=({n},{h},{m},{samples})"),
            &relu(n, h, m, samples, trajectories, steps, max_iters, tol),
        );
    }
    let sweep = Sweep::new(common::spec(&relu(2, 8, 1, 6, 1, "0.1", 10, 0.01))).unwrap();
    let model = &sweep.cell_of(0).model;
    let rule = sweep.rule(Precision::F64);
    let cpu_adapter = DeviceLimits {
        loop_budget: Some(stepsweep::shaders::LLVMPIPE_LOOP_LIMIT / 2),
        ..DeviceLimits::DEFAULT
    };
    for limits in [DeviceLimits::DEFAULT, cpu_adapter] {
        let plan = kernel(model, &rule, limits, Precision::F64);
        assert_eq!(plan.layout, Layout::PerInvocation);
    }
    let stepsweep::models::Model::Relu(r) = model else {
        panic!("a relu spec builds a relu model");
    };
    assert_eq!(r.shape.slices, 4);
}
/// On a CPU adapter (lavapipe), a size of which one step runs more loop
/// iterations than the driver leaves a dispatch is refused with a message
/// rather than computed wrong (see `LLVMPIPE_LOOP_LIMIT`).
#[test]
fn relu_beyond_the_loop_limit_is_refused_on_a_cpu_adapter() {
    let Some(ctx) = common::gpu_or_skip("relu beyond the loop limit") else {
        return;
    };
    if stepsweep::backend::gpu::is_hardware(&ctx.info) {
        return;
    }
    let sweep = Sweep::new(common::spec(&relu(
        64, 256, 16, 4096, 1, "0.0001", 100, 1.0,
    )))
    .unwrap();
    let rule = sweep.rule(Precision::F32);
    let engine = Backend::new(&sweep, Some(ctx), Precision::F32, &rule).unwrap();
    let Err(e) = engine.run(&sweep, &rule, 0..1, |_| {}) else {
        panic!("a relu step of (64, 256, 16, 4096) ran on a CPU adapter");
    };
    assert!(e.to_string().contains("--backend cpu"), "{e}");
}

/// Sizes whose workspace spills from workgroup memory into the scratch buffer,
/// and long layer stacks: fixed-length runs (these take thousands of steps to
/// converge), every final iterate compared.
#[test]
fn deep_linear_kernel_matches_cpu_at_large_sizes() {
    for (size, layers, trajectories, steps) in [(16, 4, 4, 128), (8, 16, 2, 128), (32, 2, 2, 64)] {
        let spec = format!(
            r#"
            trajectories = {trajectories}
            max_iters = {steps}
            seed = 4
            [model]
            kind = "deep-linear"
            layers = {layers}
            size = {size}
            target = {{ kind = "psd", seed = 1 }}
            sigma_max = 1.0
            [init]
            kind = "identity"
            scale = 0.01
            [steps]
            values = [0.01]
            [stop]
            early_exit = false
            "#
        );
        compare_ends(&format!("deep-linear n={size} L={layers}"), &spec, true);
    }
}

/// The one-invocation-per-trajectory kernels within lavapipe's loop limit
/// (see `LLVMPIPE_LOOP_LIMIT`): at L = 64 a scalar-deep step runs about 330
/// loop iterations, so 1024 steps per dispatch ran past the limit there and
/// trajectories came back stopped between checks (at iteration 201). A CPU
/// adapter now runs fewer whole blocks per dispatch; with blocks of 200 steps,
/// more than a dispatch allows, blocks span dispatches, and the last dispatch
/// of a block runs fewer steps than the check reads fingerprints, so the check
/// reads some from the ring an earlier dispatch left in scratch.
#[test]
fn scalar_deep_kernel_matches_cpu_with_64_layers() {
    use stepsweep::shaders::{steps_per_dispatch, LLVMPIPE_LOOP_LIMIT};
    for check_every in [64, 200] {
        let spec = format!(
            r#"
            trajectories = 16
            max_iters = 3000
            seed = 11
            [model]
            kind = "scalar-deep"
            layers = 64
            lambda = 2.0
            [init]
            kind = "balanced"
            noise = 0.02
            [steps]
            values = [0.002, 0.005, 0.009]
            [stop]
            check_every = {check_every}
            "#
        );
        let sweep = Sweep::new(common::spec(&spec)).unwrap();
        let rule = sweep.rule(Precision::F32);
        let plan = kernel(
            &sweep.cells[0].model,
            &rule,
            DeviceLimits::DEFAULT,
            Precision::F32,
        );
        let steps = steps_per_dispatch(
            plan.layout,
            &plan.loop_trips,
            check_every,
            1024,
            LLVMPIPE_LOOP_LIMIT / 2,
        );
        let tail = u64::from(check_every) % steps;
        if check_every == 64 {
            assert!(tail == 0 && steps < 1024, "{steps} steps per dispatch");
        } else {
            assert!(
                (1..rule.history_len() as u64 - 1).contains(&tail),
                "{steps} steps per dispatch"
            );
        }
        compare(
            &format!("scalar-deep L=64 check_every={check_every}"),
            &spec,
        );
    }
}

/// The largest deep-linear sizes that run one invocation per trajectory on
/// a CPU adapter (workspaces of (4L + 2)·n² = 450 reals, within 512), for fixed runs of 2048 steps: one step's loops leave room for only
/// a few steps per dispatch there, so blocks span dispatches, which must
/// change nothing. (A hardware adapter runs them per invocation where the
/// workspace is within 2 KB, so in f32.)
#[test]
fn deep_linear_invocation_kernel_matches_cpu_at_its_largest_sizes() {
    for (size, layers) in [(5, 4), (3, 12)] {
        let spec = format!(
            r#"
            trajectories = 8
            max_iters = 2048
            seed = 12
            [model]
            kind = "deep-linear"
            layers = {layers}
            size = {size}
            target = {{ kind = "psd", seed = 1 }}
            sigma_max = 1.0
            [init]
            kind = "identity"
            scale = 0.1
            [steps]
            values = [0.01, 0.05]
            [stop]
            early_exit = false
            "#
        );
        let sweep = Sweep::new(common::spec(&spec)).unwrap();
        let rule = sweep.rule(Precision::F64);
        let model = &sweep.cell_of(0).model;
        let cpu_adapter = DeviceLimits {
            loop_budget: Some(stepsweep::shaders::LLVMPIPE_LOOP_LIMIT / 2),
            ..DeviceLimits::DEFAULT
        };
        let plan = kernel(model, &rule, cpu_adapter, Precision::F64);
        assert_eq!(plan.layout, Layout::PerInvocation, "n={size} L={layers}");
        compare_ends(&format!("deep-linear n={size} L={layers}"), &spec, true);
    }
}

/// poly of degree 16 (a derivative of 16 coefficients) with blocks of 4096
/// steps, more than the count of its loops lets a dispatch on a CPU adapter
/// run, so blocks span dispatches (the driver unrolls the short loops, so
/// 4096 steps per dispatch were within the limit before; spanning must change
/// nothing).
#[test]
fn poly_kernel_matches_cpu_with_a_long_derivative_and_long_blocks() {
    let mut coefficients = vec![0.0; 17];
    coefficients[2] = 1.0;
    coefficients[3] = -0.3;
    coefficients[16] = 0.1;
    compare(
        "poly degree 16",
        &format!(
            r#"
            trajectories = 64
            max_iters = 20000
            seed = 13
            [model]
            kind = "poly"
            coefficients = {coefficients:?}
            [init]
            kind = "uniform"
            low = -1.5
            high = 1.5
            [steps]
            values = [0.05, 0.3, 0.6]
            [stop]
            check_every = 4096
            "#
        ),
    );
}

/// Momentum and Nesterov, whose velocity a kernel keeps in scratch between
/// dispatches and whose β follows the step sizes, against the CPU: for every
/// family with a kernel here, in both layouts (the plans of these sizes
/// include each, asserted below), with β on the second axis so that cells of
/// one chunk differ in β.
#[test]
fn optimizers_with_momentum_match_cpu_in_both_layouts() {
    let Some(ctx) = common::gpu_or_skip("optimizers_with_momentum_match_cpu") else {
        return;
    };
    let limits = ctx.device_limits();
    drop(ctx);
    let beta_axis = "[axis]\nparam = \"optimizer.beta\"\nvalues = [0.0, 0.4, 0.8]\n";
    let cases = [
        (
            "scalar-deep L=5",
            scalar_deep(5).replace("trajectories = 1000", "trajectories = 20"),
        ),
        ("deep-linear n=2 L=2", deep_linear(2, 2, 20)),
        ("deep-linear n=16 L=2", deep_linear(16, 2, 2)),
        (
            "relu (n,h,m,N)=(2,8,1,6)",
            relu(2, 8, 1, 6, 20, "0.02, 0.1, 0.3", 2000, 0.01),
        ),
    ];
    let mut layouts = std::collections::HashSet::new();
    for kind in ["momentum", "nesterov"] {
        for (name, text) in &cases {
            let text = format!("{text}\n[optimizer]\nkind = \"{kind}\"\n{beta_axis}");
            let sweep = Sweep::new(common::spec(&text)).unwrap();
            let rule = sweep.rule(Precision::F64);
            layouts.insert(format!(
                "{:?}",
                kernel(&sweep.cells[0].model, &rule, limits, Precision::F64).layout
            ));
            compare_ends(&format!("{name} with {kind}"), &text, true);
        }
    }
    assert_eq!(layouts.len(), 2, "both layouts: {layouts:?}");
}

/// A step size per layer (the second axis `steps.layerK`), with GD and with
/// momentum: the kernels read each parameter's layer and its step size as
/// the CPU's reference does, in both layouts.
#[test]
fn per_layer_step_sizes_match_cpu_in_both_layouts() {
    let Some(ctx) = common::gpu_or_skip("per_layer_step_sizes_match_cpu") else {
        return;
    };
    let limits = ctx.device_limits();
    drop(ctx);
    let cases = [
        (
            "scalar-deep L=3",
            scalar_deep(3).replace("trajectories = 1000", "trajectories = 20")
                + "[axis]\nparam = \"steps.layer2\"\nvalues = [0.01, 0.1, 0.4]\n",
        ),
        (
            "deep-linear n=16 L=2",
            deep_linear(16, 2, 2) + "[axis]\nparam = \"steps.layer1\"\nvalues = [0.02, 0.3]\n",
        ),
        (
            "relu (n,h,m,N)=(2,8,1,6)",
            relu(2, 8, 1, 6, 20, "0.02, 0.1, 0.3", 2000, 0.01)
                + "[axis]\nparam = \"steps.layer2\"\nvalues = [0.01, 0.2]\n",
        ),
    ];
    let mut layouts = std::collections::HashSet::new();
    for optimizer in ["", "[optimizer]\nkind = \"momentum\"\nbeta = 0.5\n"] {
        for (name, text) in &cases {
            let text = format!("{text}{optimizer}");
            let sweep = Sweep::new(common::spec(&text)).unwrap();
            let rule = sweep.rule(Precision::F64);
            assert!(rule.step_slots > 1, "{name}");
            layouts.insert(format!(
                "{:?}",
                kernel(&sweep.cells[0].model, &rule, limits, Precision::F64).layout
            ));
            compare_ends(&format!("{name} per layer {optimizer}"), &text, true);
        }
    }
    assert_eq!(layouts.len(), 2, "both layouts: {layouts:?}");
}

fn mlp(hidden: &str, activation: &str, samples: u32, trajectories: u32) -> String {
    format!(
        r#"
        trajectories = {trajectories}
        max_iters = 1500
        seed = 9
        [model]
        kind = "mlp"
        input_size = 4
        hidden = {hidden}
        output_size = 2
        activation = "{activation}"
        samples = {samples}
        inputs = {{ kind = "gaussian", std = 1.0, seed = 1 }}
        targets = {{ kind = "teacher", std = 0.7, seed = 2 }}
        [init]
        kind = "gaussian"
        mean = 0.0
        std = 0.5
        [steps]
        values = [0.05, 0.5, 4.0]
        [stop]
        tol_grad = 1e-4
        "#
    )
}

/// The mlp kernels against the CPU, for every activation (tanh computed
/// from + − × ÷ on both sides), in both layouts: a small network runs one
/// invocation per trajectory, a wider one a workgroup; and with per-layer
/// step sizes and momentum.
#[test]
fn mlp_kernel_matches_cpu_in_both_layouts() {
    let Some(ctx) = common::gpu_or_skip("mlp_kernel_matches_cpu") else {
        return;
    };
    let limits = ctx.device_limits();
    drop(ctx);
    let mut cases = Vec::new();
    for activation in ["tanh", "relu", "identity"] {
        cases.push((
            format!("mlp [5, 3] {activation}"),
            mlp("[5, 3]", activation, 6, 20),
        ));
    }
    cases.push(("mlp [16, 16] tanh".into(), mlp("[16, 16]", "tanh", 8, 3)));
    cases.push((
        "mlp [5, 3] per layer with momentum".into(),
        mlp("[5, 3]", "tanh", 6, 10)
            + "[axis]\nparam = \"steps.layer3\"\nvalues = [0.01, 0.3]\n\
               [optimizer]\nkind = \"momentum\"\nbeta = 0.5\n",
    ));
    let mut layouts = std::collections::HashSet::new();
    for (name, text) in &cases {
        let sweep = Sweep::new(common::spec(text)).unwrap();
        let rule = sweep.rule(Precision::F64);
        layouts.insert(format!(
            "{:?}",
            kernel(&sweep.cells[0].model, &rule, limits, Precision::F64).layout
        ));
        compare_ends(name, text, true);
    }
    assert_eq!(layouts.len(), 2, "both layouts: {layouts:?}");
}
