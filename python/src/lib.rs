//! The native half of the Python package: the library's own run, plan and
//! error handling behind a few functions. The Python half (stepsweep/) turns
//! the files a run writes into DataFrames.
//!
//! A sweep runs on a thread of its own with the GIL released. The calling
//! thread wakes every tenth of a second to report progress and to check for
//! signals: a KeyboardInterrupt sets the same stop flag the command line's
//! first Ctrl-C sets, so the run ends after the chunk in flight and its
//! directory resumes like the command line's.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use stepsweep::app;
use stepsweep::cli::{RunArgs, SweepFlags};
use stepsweep::output::figures;
use stepsweep::output::progress::Watch;
use stepsweep::shard::Shard;
use stepsweep::spec::Spec;
use stepsweep::Error;

/// The library's errors as Python's: bad input is a ValueError carrying the
/// command line's sentence, an interrupted run a KeyboardInterrupt, and the
/// rest (the GPU, the disk) RuntimeError.
fn to_py(e: Error) -> PyErr {
    match e {
        Error::Spec(m) => PyValueError::new_err(m),
        Error::Interrupted(m) => PyKeyboardInterrupt::new_err(m),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// A keyword's value among a clap enum's, refused in the command line's words.
fn choice<T: ValueEnum>(flag: &str, value: Option<&str>) -> PyResult<Option<T>> {
    let Some(value) = value else {
        return Ok(None);
    };
    T::from_str(value, true).map(Some).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        PyValueError::new_err(format!(
            "{flag} '{value}' is not one of {}; give one of them",
            names.join(", ")
        ))
    })
}

/// A spec from a preset name or a file path, or from a dict (as JSON) with
/// the TOML's structure.
fn load(spec: Option<&str>, spec_json: Option<&str>) -> PyResult<(Spec, String)> {
    match (spec, spec_json) {
        (Some(s), None) => app::load_spec(s).map_err(to_py),
        (None, Some(json)) => {
            let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
                PyValueError::new_err(format!(
                    "the spec dict is not plain data ({e}); give strings, numbers, lists and dicts"
                ))
            })?;
            let table = toml::Value::try_from(value).map_err(|e| {
                PyValueError::new_err(format!(
                    "the spec dict has no TOML form ({e}); leave out None values"
                ))
            })?;
            let text = toml::to_string(&table).map_err(|e| {
                PyValueError::new_err(format!(
                    "the spec dict has no TOML form ({e}); give a dict of tables"
                ))
            })?;
            let spec = Spec::from_toml(&text, "the spec dict").map_err(to_py)?;
            let name = spec.name.clone().unwrap_or_else(|| "sweep".into());
            Ok((spec, name))
        }
        _ => Err(PyValueError::new_err(
            "give the spec as a preset name, a path or a dict",
        )),
    }
}

/// Runs a sweep into `out` and draws its figures; returns a dict with the
/// directory, whether the run did anything, and the figures drawn.
#[pyfunction]
#[pyo3(signature = (
    out, spec=None, spec_json=None, *, steps=None, trajectories=None, seed=None,
    max_iters=None, backend=None, precision=None, chunk_size=None, threads=None,
    write_trajectories=false, trace=None, resume=false, force=false, shard=None,
    format=None, figures=true, quiet=true, progress=None
))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    out: PathBuf,
    spec: Option<String>,
    spec_json: Option<String>,
    steps: Option<String>,
    trajectories: Option<u64>,
    seed: Option<u64>,
    max_iters: Option<u64>,
    backend: Option<String>,
    precision: Option<String>,
    chunk_size: Option<u64>,
    threads: Option<usize>,
    write_trajectories: bool,
    trace: Option<u64>,
    resume: bool,
    force: bool,
    shard: Option<String>,
    format: Option<String>,
    figures: bool,
    quiet: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Py<PyAny>> {
    let (loaded, name) = load(spec.as_deref(), spec_json.as_deref())?;
    let shard = match shard {
        Some(s) => Some(Shard::from_str(&s).map_err(|e| PyValueError::new_err(e.to_string()))?),
        None => None,
    };
    let args = RunArgs {
        spec: spec.unwrap_or_default(),
        out: Some(out.clone()),
        sweep: SweepFlags {
            steps,
            seed,
            max_iters,
            backend: choice("--backend", backend.as_deref())?,
            precision: choice("--precision", precision.as_deref())?,
        },
        trajectories,
        chunk_size,
        threads,
        write_trajectories,
        format: choice("--format", format.as_deref())?,
        trace,
        quiet,
        resume,
        force,
        shard,
    };
    let mut plan = app::plan_run_spec(loaded, name, &args).map_err(to_py)?;
    let stop = Arc::new(AtomicBool::new(false));
    let watch = Arc::new(Watch::default());
    plan.dir_opts.stop = Some(stop.clone());
    plan.opts.watch = Some(watch.clone());
    let whole = plan.dir_opts.shard.is_none();
    let (tx, rx) = mpsc::channel();
    // Behind a lock only so the receiver may cross into `detach`.
    let rx = Mutex::new(rx);
    std::thread::spawn(move || {
        let result = (|| {
            let report = app::run_plan(&plan)?;
            let drawn = match (&report, whole && figures) {
                (Some(_), true) => figures::plot_dir(&plan.out)?,
                _ => Vec::new(),
            };
            Ok((report.is_some(), drawn))
        })();
        let _ = tx.send(result);
    });
    let report_progress = |py: Python<'_>| -> PyResult<()> {
        if let Some(p) = &progress {
            let (done, total) = (
                watch.done.load(Ordering::Relaxed),
                watch.total.load(Ordering::Relaxed),
            );
            p.call1(py, (done, total))?;
        }
        Ok(())
    };
    let result = loop {
        match py.detach(|| {
            rx.lock()
                .expect("one waiter")
                .recv_timeout(Duration::from_millis(100))
        }) {
            Ok(result) => break result,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(PyRuntimeError::new_err(
                    "the sweep's thread ended without a result; rerun with resume=True",
                ))
            }
        }
        // Ctrl-C, or an exception from the progress callback: the run stops
        // after the chunk in flight, then the exception goes on.
        if let Err(e) = report_progress(py).and_then(|()| py.check_signals()) {
            stop.store(true, Ordering::SeqCst);
            let ended = py.detach(|| rx.lock().expect("one waiter").recv());
            return Err(match ended {
                Ok(Err(Error::Interrupted(m))) if e.is_instance_of::<PyKeyboardInterrupt>(py) => {
                    PyKeyboardInterrupt::new_err(m)
                }
                _ => e,
            });
        }
    };
    report_progress(py)?;
    let (ran, drawn) = result.map_err(to_py)?;
    let dict = PyDict::new(py);
    dict.set_item("out", out)?;
    dict.set_item("ran", ran)?;
    dict.set_item("figures", PyList::new(py, drawn)?)?;
    Ok(dict.into_any().unbind())
}

/// The embedded presets: name, first comment line, and TOML text.
#[pyfunction]
fn presets(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let list = PyList::empty(py);
    for (name, text) in stepsweep::presets::PRESETS {
        let about = text
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches('#')
            .trim();
        let d = PyDict::new(py);
        d.set_item("name", name)?;
        d.set_item("about", about)?;
        d.set_item("toml", text)?;
        list.append(d)?;
    }
    Ok(list.into_any().unbind())
}

/// The GPU adapters wgpu sees, probed quietly, with their limits.
#[pyfunction]
fn devices(py: Python<'_>) -> PyResult<Py<PyAny>> {
    let adapters = py.detach(stepsweep::backend::gpu::adapters);
    let list = PyList::empty(py);
    for (info, limits, f64) in adapters {
        let d = PyDict::new(py);
        d.set_item("name", &info.name)?;
        d.set_item("backend", format!("{:?}", info.backend))?;
        d.set_item("device_type", format!("{:?}", info.device_type))?;
        d.set_item(
            "driver",
            format!("{} {}", info.driver, info.driver_info).trim(),
        )?;
        d.set_item("f64", f64)?;
        d.set_item("max_buffer_size", limits.max_buffer_size)?;
        d.set_item(
            "max_storage_buffer_binding_size",
            limits.max_storage_buffer_binding_size,
        )?;
        list.append(d)?;
    }
    Ok(list.into_any().unbind())
}

/// Checks every claim of the paper into `out`; returns the report's rows
/// and paths. Unlike the command line, failing claims do not raise: the
/// rows say which failed.
#[pyfunction]
#[pyo3(signature = (out, *, quick=false, backend=None, quiet=true))]
fn reproduce(
    py: Python<'_>,
    out: PathBuf,
    quick: bool,
    backend: Option<String>,
    quiet: bool,
) -> PyResult<Py<PyAny>> {
    let opts = stepsweep::reproduce::Options {
        quick,
        backend: choice("--backend", backend.as_deref())?,
        quiet,
    };
    let dir = out.clone();
    let report = py
        .detach(move || stepsweep::reproduce::run(&stepsweep::reproduce::paper(), &dir, &opts))
        .map_err(to_py)?;
    let rows = PyList::empty(py);
    for row in &report.rows {
        let d = PyDict::new(py);
        d.set_item("claim", &row.claim.id)?;
        d.set_item("preset", row.preset)?;
        d.set_item("statement", &row.claim.statement)?;
        d.set_item("predicted", &row.verdict.predicted)?;
        d.set_item("measured", &row.verdict.measured)?;
        d.set_item("passed", row.verdict.pass)?;
        d.set_item("figure", out.join(format!("{}.png", row.claim.figure)))?;
        rows.append(d)?;
    }
    let dict = PyDict::new(py);
    dict.set_item("rows", rows)?;
    dict.set_item("out", &out)?;
    dict.set_item("report_md", out.join("report.md"))?;
    dict.set_item("report_html", out.join("report.html"))?;
    dict.set_item("seconds", report.seconds)?;
    Ok(dict.into_any().unbind())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(reproduce, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
