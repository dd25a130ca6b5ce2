//! `stepsweep reproduce --quick`: every claim passes, every row is in the
//! report, report.html renders in a real headless browser, and a claim made
//! wrong through the library API fails with a non-zero exit status.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use stepsweep::reproduce::{self, Options, Prediction};

/// One quick reproduction through the binary, shared by the tests that read it.
fn quick_run() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, out) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reproduce");
        let o = common::bin()
            .args(["reproduce", "--quick", "-q", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "reproduce --quick failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        (dir, out)
    });
    out
}

#[test]
fn quick_reproduction_passes_every_claim_with_every_row_reported() {
    let out = quick_run();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let claims: Vec<_> = reproduce::paper()
        .into_iter()
        .flat_map(|e| e.claims)
        .collect();
    assert!(claims.len() >= 5);
    for claim in &claims {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", claim.statement)))
            .unwrap_or_else(|| panic!("report.md has no row for {}", claim.id));
        assert!(row.ends_with("| pass |"), "{row}");
        assert!(html.contains(&format!("<tr id=\"row-{}\">", claim.id)));
        assert!(md.contains(&format!("## {}: ", claim.id)));
        assert!(out.join(format!("{}.png", claim.figure)).is_file());
    }
    assert!(!md.contains("FAIL") && !html.contains("class=\"fail\""));
    // Self-contained: figures embedded, nothing fetched from elsewhere.
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        claims.len()
    );
    assert!(!html.contains("http://") && !html.contains("https://"));
}

/// On the GPU (lavapipe in CI) the reproduction runs f64 and every claim
/// holds there too; the report names the backend and precision of each
/// experiment.
#[test]
fn quick_reproduction_on_the_gpu_runs_f64_and_passes_every_claim() {
    let test = "quick_reproduction_on_the_gpu_runs_f64_and_passes_every_claim";
    let Some(ctx) = common::gpu_or_skip(test) else {
        return;
    };
    if common::with_precision(ctx, stepsweep::spec::Precision::F64, test).is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reproduce");
    let o = common::bin()
        .args(["reproduce", "--quick", "-q", "--backend", "gpu", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let md = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
    assert!(
        o.status.success(),
        "reproduce --quick --backend gpu failed:\n{}\n{}\n{md}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let claims = reproduce::paper()
        .into_iter()
        .flat_map(|e| e.claims)
        .count();
    assert_eq!(
        md.lines().filter(|l| l.ends_with("| pass |")).count(),
        claims,
        "{md}"
    );
    assert!(md.contains("gpu (f64)") && !md.contains("(f32"), "{md}");
}

const REQUIRE_BROWSER: &str = "STEPSWEEP_REQUIRE_BROWSER";

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn report_html_renders_in_headless_chromium_with_every_figure_and_no_console_error() {
    let Some(browser) = chromium() else {
        if std::env::var_os(REQUIRE_BROWSER).is_some() {
            panic!(
                "chromium is not installed and {REQUIRE_BROWSER} is set; apt-get install chromium"
            );
        }
        eprintln!("skipping the browser test: chromium is not installed (set {REQUIRE_BROWSER}=1 to make this a failure)");
        return;
    };
    let out = quick_run();
    let profile = tempfile::tempdir().unwrap();
    let page = format!(
        "file://{}",
        out.join("report.html").canonicalize().unwrap().display()
    );
    let o = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&page)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chromium failed: {log}");
    // The page's own script counts the images that decoded, after load.
    let figures = reproduce::paper()
        .iter()
        .map(|e| e.claims.len())
        .sum::<usize>();
    let loaded = format!("data-figures-loaded=\"{figures}/{figures}\"");
    assert!(
        dom.contains(&loaded),
        "expected {loaded} in the rendered page; log:\n{log}"
    );
    assert!(
        dom.contains("<table id=\"claims\">"),
        "the claims table did not render"
    );
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
}

#[test]
fn a_claim_made_wrong_through_the_api_fails_with_a_non_zero_status() {
    let mut experiments = reproduce::paper();
    // Only the polynomial sweep, with x = 2's threshold moved to 0.3.
    experiments.truncate(1);
    let claim = experiments[0]
        .claims
        .iter_mut()
        .find(|c| c.id == "poly-threshold-x2")
        .unwrap();
    let Prediction::ConvergesOnlyUpTo { threshold, .. } = &mut claim.prediction else {
        panic!("the x = 2 claim is a threshold");
    };
    *threshold = 0.3;
    // Its figure lives in another experiment's folder; show one this run draws.
    claim.figure = "poly/figures/outcomes".into();
    for c in &mut experiments[0].claims {
        c.figure = "poly/figures/outcomes".into();
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        quick: true,
        backend: None,
        quiet: true,
    };
    let report = reproduce::run(&experiments, dir.path(), &opts).unwrap();
    let failed: Vec<&str> = report
        .rows
        .iter()
        .filter(|r| !r.verdict.pass)
        .map(|r| r.claim.id.as_str())
        .collect();
    assert_eq!(failed, ["poly-threshold-x2"]);
    let err = report.verdict().unwrap_err();
    assert_ne!(err.exit_code(), 0);
    assert!(err.to_string().contains("1 of 4 claims failed"), "{err}");
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("only for δ ≤ 0.3 |") && md.contains("| FAIL |"),
        "{md}"
    );
}
