//! Property tests: hostile spec files and command lines get errors, never a
//! panic, and never a hang or an allocation beyond the machine. The case
//! counts are fixed, so the time in CI is bounded (a few seconds).
//!
//! Covered: `Spec::from_toml` on arbitrary text and on TOML documents built
//! from the spec's own keys with values of every type and extreme (NaN, ±inf,
//! 1e308, i64 limits, empty and huge ranges, unknown kinds), then validation
//! and resolution into cells (`Sweep::new`) and the spec's round trip through
//! spec.toml; and the command line: random argument lists over every
//! subcommand and flag, parsed by clap and checked by `app::plan_run`.

use clap::Parser;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use stepsweep::app;
use stepsweep::cli::{Cli, Command};
use stepsweep::spec::Spec;
use stepsweep::sweep::Sweep;

/// A TOML value of any kind, biased towards the edges.
fn toml_value() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1".to_string()),
        Just("3".to_string()),
        Just("64".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("4294967295".to_string()),
        Just("10000001".to_string()),
        Just("0.5".to_string()),
        Just("-0.0".to_string()),
        Just("1e308".to_string()),
        Just("1e-320".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        (-1000i64..1000).prop_map(|v| v.to_string()),
        (-10.0f64..10.0).prop_map(|v| format!("{v:?}")),
    ];
    let number = number.boxed();
    let word = prop_oneof![
        Just("\"poly\"".to_string()),
        Just("\"uniform\"".to_string()),
        Just("\"gaussian\"".to_string()),
        Just("\"grid\"".to_string()),
        Just("\"point\"".to_string()),
        Just("\"auto\"".to_string()),
        Just("\"gpu\"".to_string()),
        Just("\"f32\"".to_string()),
        Just("\"init.x0\"".to_string()),
        Just("\"model.coefficients\"".to_string()),
        Just("\"init.\"".to_string()),
        Just("\".\"".to_string()),
        "\"[a-z.é]{0,10}\"",
    ];
    prop_oneof![
        4 => number.clone(),
        2 => word,
        1 => any::<bool>().prop_map(|b| b.to_string()),
        2 => prop::collection::vec(number.clone(), 0..8).prop_map(|v| format!("[{}]", v.join(", "))),
        1 => prop::collection::vec(
            prop::collection::vec(number, 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            0..3
        )
        .prop_map(|v| format!("[{}]", v.join(", "))),
        1 => Just("{ a = 1 }".to_string()),
    ]
}

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "name",
            "trajectories",
            "max_iters",
            "seed",
            "backend",
            "precision",
            "extra",
        ],
    ),
    ("model", &["kind", "coefficients"]),
    // [init] is drawn whole by `init_section`, its fields matching its kind.
    ("init", &[]),
    ("steps", &["values", "linspace", "logspace"]),
    ("axis", &["param", "values", "linspace", "logspace"]),
    (
        "stop",
        &[
            "check_every",
            "tol_grad",
            "osc_rel_tol",
            "max_period",
            "divergence_cap",
        ],
    ),
    ("output", &["trajectories"]),
];

fn float() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (-5.0f64..5.0).prop_map(|v| format!("{v:?}")),
        1 => prop::sample::select(vec!["nan", "inf", "-inf", "1e308", "-0.0", "5e-324", "0.0"])
            .prop_map(str::to_string),
    ]
    .boxed()
}

/// Mostly a valid step size.
fn step_size() -> BoxedStrategy<String> {
    prop_oneof![6 => (0.001f64..0.6).prop_map(|v| format!("{v:?}")), 1 => float()].boxed()
}

fn unsigned() -> BoxedStrategy<String> {
    prop_oneof![
        8 => (0u64..3000).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["0", "-1", "9223372036854775807", "4294967296"])
            .prop_map(str::to_string),
    ]
    .boxed()
}

fn list(item: BoxedStrategy<String>, len: std::ops::Range<usize>) -> BoxedStrategy<String> {
    prop::collection::vec(item, len)
        .prop_map(|v| format!("[{}]", v.join(", ")))
        .boxed()
}

/// `[start, stop, count]` with counts from empty to past the limit.
fn range() -> BoxedStrategy<String> {
    let count = prop_oneof![
        6 => (0u32..40).prop_map(|v| format!("{v}.0")),
        1 => prop::sample::select(vec!["2.5", "-3.0", "10000001.0", "1e300", "nan"]).prop_map(str::to_string),
    ];
    (float(), float(), count)
        .prop_map(|(a, b, n)| format!("[{a}, {b}, {n}]"))
        .boxed()
}

fn ranges() -> BoxedStrategy<String> {
    prop_oneof![3 => range(), 1 => list(range(), 0..3)].boxed()
}

fn word(words: &[&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(words.to_vec())
        .prop_map(|w| format!("\"{w}\""))
        .boxed()
}

/// A value of the type the key expects, now and then one of any type.
fn value_for(section: &str, key: &str) -> BoxedStrategy<String> {
    let typed = match (section, key) {
        ("", "name") => "\"[a-z]{0,6}\"".boxed(),
        ("", "backend") => word(&["cpu", "cpu", "cpu", "cpu", "cpu", "auto", "gpu", "tpu"]),
        ("", "precision") => word(&["f32", "f64", "f64", "f64", "f64", "f64", "f16"]),
        ("", "extra") => toml_value().boxed(),
        ("init", "kind") => word(&["uniform", "gaussian", "grid", "point", "cauchy"]),
        ("model", "kind") => word(&["poly", "poly", "poly", "poly", "poly", "quartic"]),
        ("model", "coefficients") => list(float(), 0..18),
        ("axis", "param") => word(&[
            "init.x0",
            "init.low",
            "init.std",
            "model.coefficients",
            "steps.x",
            "init.nope",
            "x0",
        ]),
        (_, "values") => list(step_size(), 0..6),
        (_, "linspace" | "logspace") => ranges(),
        ("output", "trajectories") => any::<bool>().prop_map(|b| b.to_string()).boxed(),
        (_, "trajectories" | "max_iters" | "seed" | "check_every" | "max_period") => unsigned(),
        _ => float(),
    };
    prop_oneof![40 => typed, 1 => toml_value()].boxed()
}

/// A spec-shaped TOML document: each section and key present or not, each
/// value mostly of the right type, sometimes of any.
fn spec_document() -> impl Strategy<Value = String> {
    let keys: Vec<BoxedStrategy<Option<String>>> = SECTIONS
        .iter()
        .flat_map(|(section, keys)| {
            keys.iter().map(move |key| {
                let weight = match *key {
                    "trajectories" | "max_iters" | "seed" | "kind" | "values" | "param" => 0.95,
                    "extra" => 0.05,
                    _ => 0.3,
                };
                prop::option::weighted(weight, value_for(section, key)).boxed()
            })
        })
        .collect();
    let sections = prop::collection::vec(prop::bool::weighted(0.6), SECTIONS.len());
    (keys, sections, init_section()).prop_map(|(values, present, init)| {
        let mut text = String::new();
        let mut values = values.into_iter();
        for ((section, keys), present) in SECTIONS.iter().zip(present) {
            let lines: Vec<String> = keys
                .iter()
                .filter_map(|k| values.next().flatten().map(|v| format!("{k} = {v}\n")))
                .collect();
            let required = matches!(*section, "" | "model" | "steps");
            if !present && !required {
                continue;
            }
            if !section.is_empty() {
                text.push_str(&format!("[{section}]\n"));
            }
            if *section == "init" {
                text.push_str(&init);
            }
            text.extend(lines);
        }
        text
    })
}

/// The fields of one `init.kind`, or now and then a mix of any.
fn init_section() -> BoxedStrategy<String> {
    let field = |k: &'static str| (Just(k), float()).prop_map(|(k, v)| format!("{k} = {v}\n"));
    let block = |kind: &'static str, fields: &[&'static str]| {
        let fields: Vec<_> = fields.iter().map(|k| field(k)).collect();
        fields
            .prop_map(move |lines| format!("kind = \"{kind}\"\n{}", lines.concat()))
            .boxed()
    };
    let mix = prop::collection::vec(
        prop::sample::select(vec!["kind", "low", "high", "mean", "std", "x0"])
            .prop_flat_map(|k| value_for("init", k).prop_map(move |v| format!("{k} = {v}\n"))),
        0..4,
    )
    .prop_map(|lines| lines.concat());
    prop_oneof![
        3 => block("uniform", &["low", "high"]),
        2 => block("gaussian", &["mean", "std"]),
        2 => block("grid", &["low", "high"]),
        2 => block("point", &["x0"]),
        1 => mix,
    ]
    .boxed()
}

/// Parses, validates and resolves a spec as `stepsweep run` does; only errors.
fn resolve(text: &str) {
    let Ok(spec) = Spec::from_toml(text, "fuzz.toml") else {
        return;
    };
    if let Ok(sweep) = Sweep::new(spec.clone()) {
        // What spec.toml holds must read back as the same sweep.
        let again =
            Spec::from_toml(&sweep.spec.to_toml(), "spec.toml").expect("spec.toml reads back");
        assert_eq!(again.to_toml(), sweep.spec.to_toml());
        assert!(sweep.total() > 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_is_never_a_panic(text in "\\PC{0,200}") {
        resolve(&text);
    }

    #[test]
    fn spec_shaped_documents_give_a_sweep_or_an_error(text in spec_document()) {
        resolve(&text);
        if let Err(e) = Spec::from_toml(&text, "fuzz.toml").and_then(|s| Sweep::new(s).map(|_| ())) {
            let message = e.to_string();
            prop_assert!(!message.contains('\n'), "more than one line: {}", message);
        }
    }
}

/// The generator is only worth its cases if it reaches valid sweeps as well
/// as every kind of error.
#[test]
fn spec_documents_reach_valid_sweeps_and_errors() {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let (mut valid, mut invalid_toml, mut invalid_sweep) = (0, 0, 0);
    for _ in 0..2000 {
        let text = spec_document().new_tree(&mut runner).unwrap().current();
        match Spec::from_toml(&text, "fuzz.toml") {
            Err(_) => invalid_toml += 1,
            Ok(spec) => match Sweep::new(spec) {
                Ok(_) => valid += 1,
                Err(_) => invalid_sweep += 1,
            },
        }
    }
    eprintln!("{valid} valid, {invalid_toml} refused by the parser, {invalid_sweep} by validation");
    assert!(valid >= 20 && invalid_toml >= 20 && invalid_sweep >= 20);
}

/// A command-line argument: a subcommand, a flag, or a value for one.
fn argument() -> impl Strategy<Value = String> {
    let flags = [
        "run",
        "merge",
        "presets",
        "--out",
        "--steps",
        "--trajectories",
        "--seed",
        "--max-iters",
        "--backend",
        "--precision",
        "--chunk-size",
        "--threads",
        "--write-trajectories",
        "-q",
        "--resume",
        "--force",
        "--shard",
        "--help",
        "poly",
        "cpu",
        "gpu",
        "f64",
        "0",
        "1",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "1000000000000",
        "0/1",
        "3/2",
        "1/0",
        "0.1:0.5:5",
        "0.1,0.2",
        "1:2:9e9",
        "nan",
        "",
    ];
    prop_oneof![
        3 => prop::sample::select(flags.to_vec()).prop_map(str::to_string),
        1 => "[0-9.:,/-]{0,8}",
        1 => "\\PC{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn command_lines_are_parsed_and_checked_without_a_panic(
        args in prop::collection::vec(argument(), 0..8),
        run_first in any::<bool>(),
    ) {
        let mut argv = vec!["stepsweep".to_string()];
        if run_first {
            argv.extend(["run".to_string(), "poly".to_string()]);
        }
        argv.extend(args);
        // Checks only: nothing runs and nothing is written.
        if let Ok(Cli { command: Command::Run(run) }) = Cli::try_parse_from(&argv) {
            if let Err(e) = app::plan_run(&run) {
                prop_assert!(!e.to_string().contains('\n'));
            }
        }
    }
}

/// An argument of `stepsweep boundary`: a flag, or a value for one.
fn boundary_argument() -> impl Strategy<Value = String> {
    let flags = [
        "--depth",
        "--resolution",
        "--coarse",
        "--halo",
        "--replicates",
        "--fit-sizes",
        "--critical",
        "--rtol",
        "--zoom",
        "--factor",
        "--frames",
        "--chunk-size",
        "--resume",
        "--force",
        "0",
        "1",
        "2",
        "16",
        "30",
        "64",
        "1000",
        "1024",
        "4294967296",
        "18446744073709551615",
        "-1",
        "1e-300",
        "1e300",
        "nan",
        "inf",
        "2:128",
        "9:3",
        "0.2,1.5",
        "0.3,nan",
        "1e9,1e9",
        ",",
        "",
    ];
    prop_oneof![
        3 => prop::sample::select(flags.to_vec()).prop_map(str::to_string),
        1 => "[0-9.:,e-]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// `boundary`'s flags are parsed and checked, and the plane, its zoom
    /// frames and their precision built from them, without a panic, a hang
    /// or an allocation the size of the lattice; every refusal is one line.
    #[test]
    fn boundary_command_lines_are_checked_without_a_panic(
        args in prop::collection::vec(boundary_argument(), 0..8),
    ) {
        let mut argv = vec!["stepsweep".to_string(), "boundary".into(), "poly-basin".into()];
        argv.extend(args);
        if let Ok(Cli { command: Command::Boundary(b) }) = Cli::try_parse_from(&argv) {
            let checked = app::plan_boundary(&b).and_then(|plan| {
                let plane = stepsweep::boundary::Plane::new(&plan.spec, plan.opts.coarse, plan.opts.depth)?;
                if let Some(z) = &plan.opts.zoom {
                    for f in stepsweep::boundary::zoom_frames(&plane, z)? {
                        f.check_precision(stepsweep::spec::Precision::F64, "a frame")?;
                    }
                }
                Ok(())
            });
            if let Err(e) = checked {
                prop_assert!(!e.to_string().contains('\n'), "{e}");
            }
        }
    }
}
