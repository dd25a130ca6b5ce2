//! A boundary run in its output directory: the journal that lets a killed
//! run resume, and the files it leaves.
//!
//! The journal (boundary-journal.json) holds every point evaluated so far:
//! a header line, then one line appended (and synced) per batch, so saving
//! a batch costs the batch, not the run. A kill can leave the last line
//! partial; a resume drops it and runs that batch again. Refinement is a function
//! of the points' verdicts, which do not depend on when a point ran, so a
//! resumed run makes the choices an uninterrupted one makes and writes the
//! same boundary.csv byte for byte.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dimension;
use super::figures as figure;
use super::{critical, refine, seconds, Criterion, Evaluator, Fate, Plane, Refined, Sink, Verdict};
use crate::error::{Error, Result};
use crate::files::{prepare_dir, write_atomic};
use crate::spec::Spec;

pub const JOURNAL: &str = "boundary-journal.json";

/// A zoom: frames each `factor` times narrower than the last, around `center`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ZoomSpec {
    /// (step size, second-axis value).
    pub center: (f64, f64),
    pub factor: f64,
    pub frames: u32,
}

/// Most frames a zoom may have.
pub const MAX_FRAMES: u32 = 256;

#[derive(Clone, Debug)]
pub struct BoundaryOptions {
    /// Boxes per axis at the coarsest level.
    pub coarse: u64,
    /// Halvings below the coarse grid.
    pub depth: u32,
    /// Boxes around a boundary box split with it (see `Plane::halo`).
    pub halo: u64,
    /// Trajectories per point; with more than one, a point's outcome is the
    /// class at least half of them reach (else "no minimum").
    pub replicates: u64,
    /// The box sizes (in lattice cells) the dimension's fit keeps.
    pub fit: Option<(u64, u64)>,
    /// Trajectories per backend call.
    pub chunk: Option<u64>,
    pub quiet: bool,
    pub resume: bool,
    pub force: bool,
    pub stop: Option<Arc<AtomicBool>>,
    pub zoom: Option<ZoomSpec>,
    /// `--critical`: bisect each start's critical step size to this relative tolerance.
    pub critical: Option<f64>,
    /// What counts as success at a point.
    pub criterion: Criterion,
}

/// Most replicates per point.
pub const MAX_REPLICATES: u64 = 1 << 20;

/// The journal's first line.
#[derive(Serialize, Deserialize)]
struct Header {
    stepsweep: String,
    identity: String,
}

/// A point as the journal's batch lines hold it: (key, class, fate, speed,
/// converged), key = frame · points² + index; a speed of −1 stands for
/// none (NaN, which JSON cannot hold).
type Entry = (u64, u8, u8, f32, u32);

fn fate_code(f: Fate) -> u8 {
    match f {
        Fate::Converged => 0,
        Fate::Diverged => 1,
        Fate::Neither => 2,
    }
}

fn fate_of(code: u8) -> Fate {
    match code {
        0 => Fate::Converged,
        1 => Fate::Diverged,
        _ => Fate::Neither,
    }
}

/// The output directory, locked, with what a resumed run already knows.
struct Dir {
    path: PathBuf,
    _lock: Option<std::fs::File>,
    identity: String,
    /// What a resumed run found in the journal.
    points: Vec<Entry>,
}

impl Dir {
    fn open(path: &Path, identity: String, resume: bool, force: bool) -> Result<Dir> {
        let created = prepare_dir(path)?;
        let lock = crate::journal::lock(path)?;
        let journal_path = path.join(JOURNAL);
        let shown = path.display();
        let mut points = Vec::new();
        if journal_path.is_file() && !force {
            let text = std::fs::read_to_string(&journal_path)
                .map_err(|e| Error::io("cannot read", &journal_path, e))?;
            let mut lines = text.split_inclusive('\n');
            let header: Header = lines
                .next()
                .and_then(|l| serde_json::from_str(l).ok())
                .ok_or_else(|| {
                    Error::spec(format!(
                        "{} is not a boundary journal of this stepsweep; add --force to start over",
                        journal_path.display()
                    ))
                })?;
            if header.identity != identity {
                return Err(Error::spec(format!(
                    "{shown} holds an unfinished boundary run of a different plane; choose another --out, or add --force to discard it"
                )));
            }
            // Whole lines only: a kill may have cut the last one short.
            let mut whole = text.split_inclusive('\n').next().map_or(0, str::len);
            for line in lines {
                let batch = line
                    .strip_suffix('\n')
                    .and_then(|l| serde_json::from_str::<Vec<Entry>>(l).ok());
                let Some(batch) = batch else { break };
                points.extend(batch);
                whole += line.len();
            }
            if !resume {
                return Err(Error::spec(format!(
                    "{shown} holds an unfinished run of this boundary ({} points done); add --resume to finish it, or --force to start over",
                    points.len()
                )));
            }
            std::fs::OpenOptions::new()
                .write(true)
                .open(&journal_path)
                .and_then(|f| f.set_len(whole as u64))
                .map_err(|e| Error::io("cannot write", &journal_path, e))?;
        } else if !force && !created && path.join("boundary.json").is_file() {
            let text = std::fs::read_to_string(path.join("boundary.json")).unwrap_or_default();
            let same = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["identity"].as_str().map(|s| s == identity))
                .unwrap_or(false);
            if !same {
                return Err(Error::spec(format!(
                    "{shown} holds the outputs of a different boundary run; choose another --out, or add --force to replace them"
                )));
            }
        }
        if points.is_empty() {
            let header = Header {
                stepsweep: env!("CARGO_PKG_VERSION").into(),
                identity: identity.clone(),
            };
            let mut line = serde_json::to_vec(&header).expect("JSON of plain data");
            line.push(b'\n');
            write_atomic(&journal_path, &line)?;
        }
        Ok(Dir {
            path: path.to_path_buf(),
            _lock: lock,
            identity,
            points,
        })
    }

    /// Appends one batch to the journal and syncs it.
    fn append(&self, batch: &[Entry]) -> Result<()> {
        use std::io::Write;
        let path = self.path.join(JOURNAL);
        let mut line = serde_json::to_vec(batch).expect("JSON of plain data");
        line.push(b'\n');
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&line).and_then(|_| f.sync_data()))
            .map_err(|e| Error::io("cannot write", &path, e))
    }

    /// The verdicts a resumed run already has for `frame`.
    fn known(&self, frame: u64, per_frame: u64) -> HashMap<u64, Verdict> {
        self.points
            .iter()
            .filter(|p| p.0 / per_frame == frame)
            .map(|&(key, class, fate, speed, converged)| {
                (
                    key % per_frame,
                    Verdict {
                        class,
                        fate: fate_of(fate),
                        speed: if speed < 0.0 { f32::NAN } else { speed },
                        converged,
                    },
                )
            })
            .collect()
    }
}

/// What a boundary run found, for the caller's summary line.
pub struct Finished {
    pub out: PathBuf,
    pub trajectories: u64,
    pub dense_trajectories: u64,
    pub boundary_boxes: u64,
    pub dimension: Option<dimension::Fit>,
    pub seconds: f64,
    pub lines: Vec<String>,
}

/// The frames of a zoom: frame 0 is the plane itself, frame k a window
/// factor^k times narrower around the centre (in log10 along a log axis).
pub fn zoom_frames(plane: &Plane, zoom: &ZoomSpec) -> Result<Vec<Plane>> {
    if !(zoom.factor.is_finite() && zoom.factor > 1.0) {
        return Err(Error::spec(format!(
            "--factor is {}; give a number above 1 (each frame that many times narrower)",
            zoom.factor
        )));
    }
    if !(1..=MAX_FRAMES).contains(&zoom.frames) {
        return Err(Error::spec(format!(
            "--frames is {}; give from 1 to {MAX_FRAMES}",
            zoom.frames
        )));
    }
    let (cx, cy) = zoom.center;
    for (axis, c) in [(&plane.steps, cx), (&plane.axis, cy)] {
        let inside = c.is_finite() && c >= axis.lo.min(axis.hi) && c <= axis.hi.max(axis.lo);
        if !inside {
            return Err(Error::spec(format!(
                "--zoom's {} {c} lies outside the plane's [{}, {}]; give a centre inside it",
                axis.name, axis.lo, axis.hi
            )));
        }
    }
    let mut frames = vec![plane.clone()];
    for k in 1..zoom.frames {
        let shrink = zoom.factor.powi(k as i32);
        let window = |axis: &super::LatticeAxis, c: f64| {
            let (lo, hi, c) = if axis.log {
                (axis.lo.log10(), axis.hi.log10(), c.log10())
            } else {
                (axis.lo, axis.hi, c)
            };
            let half = (hi - lo) / 2.0 / shrink;
            let (a, b) = (c - half, c + half);
            if axis.log {
                axis.window(10f64.powf(a), 10f64.powf(b))
            } else {
                axis.window(a, b)
            }
        };
        let mut f = plane.clone();
        f.steps = window(&plane.steps, cx);
        f.axis = window(&plane.axis, cy);
        if f.steps.lo <= 0.0 {
            return Err(Error::spec(format!(
                "zoom frame {k} reaches step size {} at its left edge; centre the zoom farther from zero or give a larger --factor",
                f.steps.lo
            )));
        }
        frames.push(f);
    }
    Ok(frames)
}

/// Runs `stepsweep boundary`: refinement (with its zoom frames), or with
/// `critical` the bisection of each start's critical step size; writes the
/// outputs into `out`.
pub fn run(spec: &Spec, name: &str, out: &Path, opts: &BoundaryOptions) -> Result<Finished> {
    if !(1..=MAX_REPLICATES).contains(&opts.replicates) {
        return Err(Error::spec(format!(
            "--replicates is {}; give from 1 to {MAX_REPLICATES}",
            opts.replicates
        )));
    }
    let mut spec = spec.clone();
    spec.trajectories = opts.replicates;
    if let Some(rtol) = opts.critical {
        return critical::run(&spec, name, out, opts, rtol);
    }
    let mut plane = Plane::new(&spec, opts.coarse, opts.depth)?;
    if opts.halo > 8 {
        return Err(Error::spec(format!(
            "--halo is {}; give from 0 to 8 boxes",
            opts.halo
        )));
    }
    plane.halo = opts.halo;
    let frames = match &opts.zoom {
        Some(z) => zoom_frames(&plane, z)?,
        None => vec![plane.clone()],
    };
    if let Some((lo, hi)) = opts.fit {
        if lo < 1 || hi > plane.size() || lo >= hi {
            return Err(Error::spec(format!(
                "--fit-sizes {lo}:{hi} is not within the box sizes 1 to {}; give two sizes a:b with 1 ≤ a < b ≤ {}",
                plane.size(),
                plane.size()
            )));
        }
    }
    let mut eval = Evaluator::with_criterion(&spec, plane.layer, opts.chunk, opts.criterion)?;
    for (k, f) in frames.iter().enumerate() {
        let what = if k == 0 {
            "the plane".to_string()
        } else {
            format!("zoom frame {k}")
        };
        f.check_precision(eval.precision, &what)?;
    }
    if let (Some(n), false) = (&eval.note, opts.quiet) {
        eprintln!("stepsweep: {n}");
    }
    let identity = format!(
        "{}\n[boundary]\ncoarse = {}\ndepth = {}\nhalo = {}\nreplicates = {}\nzoom = {}\ncriterion = {:?}\nprecision = \"{}\"\n",
        spec.to_toml(),
        opts.coarse,
        opts.depth,
        opts.halo,
        opts.replicates,
        serde_json::to_string(&opts.zoom).expect("plain data"),
        opts.criterion,
        eval.precision.name()
    );
    let dir = Dir::open(out, identity, opts.resume, opts.force)?;
    let started = Instant::now();
    let per_frame = plane.points() * plane.points();
    let mut results: Vec<Refined> = Vec::new();
    let mut evaluated_before = 0u64;
    for (k, f) in frames.iter().enumerate() {
        let known = dir.known(k as u64, per_frame);
        evaluated_before += known.len() as u64;
        let frame_key = k as u64 * per_frame;
        let quiet = opts.quiet;
        let mut done = 0u64;
        let dir_ref = &dir;
        let commit = move |batch: &[(u64, Verdict)]| -> Result<()> {
            let entries: Vec<Entry> = batch
                .iter()
                .map(|(key, v)| {
                    (
                        frame_key + key,
                        v.class,
                        fate_code(v.fate),
                        if v.speed.is_nan() { -1.0 } else { v.speed },
                        v.converged,
                    )
                })
                .collect();
            dir_ref.append(&entries)
        };
        let progress = move |n: u64| {
            done += n;
            if !quiet {
                eprintln!("stepsweep: frame {k}: {done} new points evaluated");
            }
        };
        let mut sink = Sink {
            commit: Box::new(commit),
            stop: opts.stop.clone(),
            progress: Box::new(progress),
        };
        let refined = refine(f, &mut eval, opts.replicates, known, &mut sink)?;
        results.push(refined);
    }
    let elapsed = seconds(started);
    let figures = out.join("figures");
    std::fs::create_dir_all(&figures).map_err(|e| Error::io("cannot create", &figures, e))?;
    let labels = outcome_labels(&spec, opts.criterion);
    let main = &results[0];
    let counts = dimension::box_counts(main.finest.iter().map(|b| (b.i, b.j)), plane.size());
    let fit = dimension::fit(&counts, opts.fit).ok();
    write_atomic(&out.join("boundary.csv"), &boundary_csv(&plane, main))?;
    let mut lines = Vec::new();
    let points_evaluated: u64 = results.iter().map(|r| r.verdicts.len() as u64).sum();
    let dense = per_frame * frames.len() as u64 * opts.replicates;
    let zoom_json = if let Some(z) = &opts.zoom {
        let zoom_dir = out.join("zoom");
        std::fs::create_dir_all(&zoom_dir).map_err(|e| Error::io("cannot create", &zoom_dir, e))?;
        let mut images = Vec::new();
        let mut rows = Vec::new();
        for (k, (f, r)) in frames.iter().zip(&results).enumerate() {
            let png = figure::plane_figure(f, r, &labels, &format!("{name}: zoom frame {k}"))?;
            write_atomic(&zoom_dir.join(format!("frame-{k:03}.png")), &png.0)?;
            write_atomic(
                &zoom_dir.join(format!("boundary-{k:03}.csv")),
                &boundary_csv(f, r),
            )?;
            images.push(png.1);
            rows.push(json!({
                "frame": k,
                "step_size": [f.steps.lo, f.steps.hi],
                "axis": [f.axis.lo, f.axis.hi],
                "points_evaluated": r.verdicts.len(),
                "boundary_boxes": r.finest.len(),
            }));
        }
        write_atomic(&figures.join("zoom.gif"), &figure::gif(&images)?)?;
        lines.push(format!(
            "zoom: {} frames, each {}× narrower, around ({}, {}) into figures/zoom.gif",
            z.frames, z.factor, z.center.0, z.center.1
        ));
        json!({ "center": [z.center.0, z.center.1], "factor": z.factor, "frames": rows })
    } else {
        serde_json::Value::Null
    };
    let (png, _) = figure::plane_figure(&plane, main, &labels, &format!("{name}: boundary"))?;
    write_atomic(&figures.join("boundary.png"), &png)?;
    let mut drawn = vec!["figures/boundary.png".to_string()];
    if let Some(fit) = &fit {
        for path in figure::fit_figures(&counts, fit, plane.size(), &figures)? {
            drawn.push(format!(
                "figures/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
    }
    let summary = json!({
        "stepsweep": env!("CARGO_PKG_VERSION"),
        "name": name,
        "identity": dir.identity,
        "spec": spec,
        "backend": eval.backend_name,
        "precision": eval.precision.name(),
        "plane": {
            "step_size": plane.steps,
            "axis": { "param": plane.param, "column": plane.column, "lo": plane.axis.lo, "hi": plane.axis.hi, "log": plane.axis.log },
            "points_per_axis": plane.points(),
            "boxes_per_axis": plane.size(),
            "coarse": plane.coarse,
            "depth": plane.depth,
            "halo": plane.halo,
        },
        "criterion": opts.criterion,
        "outcome": match opts.criterion {
            Criterion::Minimum => "a point's class: 0 where fewer than half its replicates converge to a minimum, else 1 + the index of the minimizer most of them reach (1 where the family numbers no minimizers)",
            Criterion::Bounded => "a point's class: 1 where at least half its replicates do not diverge (they converge, orbit, or still train at max_iters), else 0",
        },
        "outcomes": labels,
        "replicates": opts.replicates,
        "trajectories": eval.trajectories,
        "points_evaluated": points_evaluated,
        "points_from_journal": evaluated_before,
        "dense_trajectories": dense,
        "seconds": elapsed,
        "levels": main.levels.iter().map(|(side, n)| json!({ "side": side, "boundary_boxes": n })).collect::<Vec<_>>(),
        "boundary_boxes": main.finest.len(),
        "box_counts": counts.iter().map(|c| json!({ "size": c.size, "epsilon": c.size as f64 / plane.size() as f64, "boxes": c.count })).collect::<Vec<_>>(),
        "dimension": fit.as_ref().map(|f| json!({
            "estimate": f.dimension,
            "interval_95": [f.interval.0, f.interval.1],
            "kept_sizes": [f.kept.0, f.kept.1],
            "points": f.points,
            "r_squared": f.r_squared,
            "method": "least squares of ln N(ε) on ln 1/ε over the kept box sizes; the interval from the slope's standard error and Student's t",
        })),
        "slopes": fit.as_ref().map(|f| f.slopes.iter().map(|s| json!({ "fine": s.fine, "coarse": s.coarse, "slope": s.slope })).collect::<Vec<_>>()),
        "zoom": zoom_json,
        "figures": drawn,
    });
    write_atomic(
        &out.join("boundary.json"),
        serde_json::to_string_pretty(&summary)
            .expect("JSON of plain data")
            .as_bytes(),
    )?;
    write_atomic(
        &out.join("report.html"),
        report_html(name, &summary).as_bytes(),
    )?;
    let _ = std::fs::remove_file(out.join(JOURNAL));
    lines.insert(
        0,
        format!(
            "{} boundary boxes at {}×{} boxes; {} trajectories where a dense grid runs {} ({:.1}× fewer), in {:.2} s on {}",
            main.finest.len(),
            plane.size(),
            plane.size(),
            eval.trajectories,
            dense,
            dense as f64 / eval.trajectories.max(1) as f64,
            elapsed,
            eval.backend_name
        ),
    );
    if let Some(f) = &fit {
        lines.push(format!(
            "box-counting dimension {:.3} (95% interval {:.3} to {:.3}) over box sizes {} to {} cells",
            f.dimension, f.interval.0, f.interval.1, f.kept.0, f.kept.1
        ));
    } else {
        lines.push("too few boundary boxes at enough scales for a box-counting dimension".into());
    }
    Ok(Finished {
        out: out.to_path_buf(),
        trajectories: eval.trajectories,
        dense_trajectories: dense,
        boundary_boxes: main.finest.len() as u64,
        dimension: fit,
        seconds: elapsed,
        lines,
    })
}

/// What each class means for this plane's family.
pub fn outcome_labels(spec: &Spec, criterion: Criterion) -> Vec<String> {
    if criterion == Criterion::Bounded {
        return vec![
            "diverged".into(),
            "bounded (converged, orbiting or still training)".into(),
        ];
    }
    let model = spec.model.build().ok();
    let mut labels = vec!["no minimum (diverged, oscillating, undecided or elsewhere)".to_string()];
    match model.as_ref().map(|m| m.minimizers()) {
        Some(ms) if !ms.is_empty() => {
            for m in ms {
                labels.push(format!("minimizer x = {}", crate::labels::tick_label(m.x)));
            }
        }
        _ => labels.push("a minimum".into()),
    }
    labels
}

/// boundary.csv: each boundary box of side 1, by its lower corner's lattice
/// indices, its ranges, and its corners' classes.
pub fn boundary_csv(plane: &Plane, refined: &Refined) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let c = &plane.column;
    w.write_record([
        "step_index".to_string(),
        "axis_index".into(),
        "step_size_lo".into(),
        "step_size_hi".into(),
        format!("{c}_lo"),
        format!("{c}_hi"),
        "outcome_lo_lo".into(),
        "outcome_hi_lo".into(),
        "outcome_lo_hi".into(),
        "outcome_hi_hi".into(),
    ])
    .expect("writing to memory");
    for b in &refined.finest {
        let class = |i, j| {
            refined
                .class(plane, (i, j))
                .map_or(String::new(), |c| c.to_string())
        };
        w.write_record([
            b.i.to_string(),
            b.j.to_string(),
            plane.steps.value(b.i).to_string(),
            plane.steps.value(b.i + 1).to_string(),
            plane.axis.value(b.j).to_string(),
            plane.axis.value(b.j + 1).to_string(),
            class(b.i, b.j),
            class(b.i + 1, b.j),
            class(b.i, b.j + 1),
            class(b.i + 1, b.j + 1),
        ])
        .expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

use crate::labels::html_escape as escape;

/// report.html: the figures and the figures' numbers, for a browser.
pub fn report_html(name: &str, summary: &serde_json::Value) -> String {
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{0}: boundary</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}img{{max-width:100%}}td,th{{padding:2px 10px;text-align:right}}</style></head><body>\n\
         <h1>{0}: the trainability boundary</h1>\n",
        escape(name)
    );
    let get = |k: &str| summary[k].to_string();
    html.push_str(&format!(
        "<p>{} boundary boxes at {} boxes per axis; {} trajectories where a dense grid runs {}; {} s on {} in {}.</p>\n",
        get("boundary_boxes"),
        summary["plane"]["boxes_per_axis"],
        get("trajectories"),
        get("dense_trajectories"),
        summary["seconds"].as_f64().map_or("?".into(), |s| format!("{s:.2}")),
        escape(summary["backend"].as_str().unwrap_or("")),
        escape(summary["precision"].as_str().unwrap_or(""))
    ));
    if let Some(d) = summary["dimension"].as_object() {
        html.push_str(&format!(
            "<p>Box-counting dimension <b>{:.3}</b> (95% interval {:.3} to {:.3}), fitted over box sizes {} to {} lattice cells.</p>\n",
            d["estimate"].as_f64().unwrap_or(f64::NAN),
            d["interval_95"][0].as_f64().unwrap_or(f64::NAN),
            d["interval_95"][1].as_f64().unwrap_or(f64::NAN),
            d["kept_sizes"][0],
            d["kept_sizes"][1]
        ));
    }
    html.push_str("<h2>Outcomes</h2><ul>\n");
    if let Some(labels) = summary["outcomes"].as_array() {
        for (k, l) in labels.iter().enumerate() {
            html.push_str(&format!(
                "<li>{k}: {}</li>\n",
                escape(l.as_str().unwrap_or(""))
            ));
        }
    }
    html.push_str("</ul>\n");
    if let Some(figs) = summary["figures"].as_array() {
        for f in figs {
            let f = f.as_str().unwrap_or("");
            html.push_str(&format!(
                "<p><img src=\"{0}\" alt=\"{0}\"></p>\n",
                escape(f)
            ));
        }
    }
    if summary["zoom"].is_object() {
        html.push_str("<h2>Zoom</h2>\n<p><img src=\"figures/zoom.gif\" alt=\"zoom\"></p>\n<table><tr><th>frame</th><th>step sizes</th><th>axis</th><th>points</th><th>boundary boxes</th></tr>\n");
        for r in summary["zoom"]["frames"].as_array().into_iter().flatten() {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{} to {}</td><td>{} to {}</td><td>{}</td><td>{}</td></tr>\n",
                r["frame"],
                r["step_size"][0],
                r["step_size"][1],
                r["axis"][0],
                r["axis"][1],
                r["points_evaluated"],
                r["boundary_boxes"]
            ));
        }
        html.push_str("</table>\n");
    }
    if let Some(counts) = summary["box_counts"].as_array() {
        html.push_str("<h2>Box counts</h2>\n<table><tr><th>box size (cells)</th><th>ε</th><th>N(ε)</th></tr>\n");
        for c in counts {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{:.3e}</td><td>{}</td></tr>\n",
                c["size"],
                c["epsilon"].as_f64().unwrap_or(f64::NAN),
                c["boxes"]
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}
