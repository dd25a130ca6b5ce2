//! Figures of `stepsweep boundary`: the refined plane, coloured as the
//! fractal-boundary studies colour theirs (blue where a point converges to
//! a minimum, darker the fewer iterations it took, another hue for each of
//! the family's minimizers; red where it diverges, darker the sooner; grey
//! where it did neither); the box counts against the box size with the
//! fitted dimension; the slope between each pair of adjacent sizes; the
//! critical step size of each start; and a zoom's frames as an animated GIF.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::critical::Critical;
use super::dimension::{BoxCount, Fit};
use super::{Fate, Plane, Refined, Square, Verdict};
use crate::error::{Error, Result};
use crate::models::Edge;
use crate::output::figures::canvas::{self, DrawResult, Figure, Scale};
use crate::output::figures::speed;

/// Light to dark ramps, fast at the dark end: the speed figure's blue for
/// the first minimizer (and for families that number none), then green and
/// purple for further minimizers; its red for divergence and grey for neither.
const MINIMA: [[(u8, u8, u8); 2]; 3] = [
    speed::BLUES,
    [(199, 233, 192), (0, 68, 27)],
    [(218, 218, 235), (63, 0, 125)],
];
const DIVERGED: [(u8, u8, u8); 2] = speed::REDS;
const NEITHER: [u8; 3] = [speed::NEITHER.0, speed::NEITHER.1, speed::NEITHER.2];

fn ramp(ends: [(u8, u8, u8); 2], t: f64) -> [u8; 3] {
    let c = speed::ramp(ends, t);
    [c.0, c.1, c.2]
}

/// The colour of a verdict, its speed placed within `range` of its kind.
fn colour(v: &Verdict, converged: (f64, f64), diverged: (f64, f64)) -> [u8; 3] {
    let t = |(lo, hi): (f64, f64)| {
        if hi > lo {
            (f64::from(v.speed) - lo) / (hi - lo)
        } else {
            0.5
        }
    };
    if v.class >= 1 {
        // Fast (few iterations) is dark.
        let k = (v.class as usize - 1) % MINIMA.len();
        return ramp(MINIMA[k], 1.0 - t(converged));
    }
    match v.fate {
        Fate::Diverged => ramp(DIVERGED, 1.0 - t(diverged)),
        _ => NEITHER,
    }
}

fn speed_range<'a>(verdicts: impl Iterator<Item = &'a Verdict>, fate: Fate) -> (f64, f64) {
    verdicts
        .filter(|v| v.fate == fate && v.speed.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(f64::from(v.speed)), hi.max(f64::from(v.speed)))
        })
}

/// The plane as `w`×`h` RGB pixels, row 0 at the top (the axis's high end):
/// each pixel takes the verdict of the nearest corner of the smallest
/// refined box around it.
pub fn plane_pixels(plane: &Plane, refined: &Refined, w: u32, h: u32) -> Vec<u8> {
    let converged = speed_range(refined.verdicts.values(), Fate::Converged);
    let diverged = speed_range(refined.verdicts.values(), Fate::Diverged);
    let size = plane.size() as f64;
    let top = 1u64 << plane.depth;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    for py in 0..h {
        let y = (1.0 - (f64::from(py) + 0.5) / f64::from(h)) * size;
        for px in 0..w {
            let x = (f64::from(px) + 0.5) / f64::from(w) * size;
            let (xi, yj) = (x as u64, y as u64);
            let mut sq = Square {
                i: (xi / top).min(plane.coarse - 1) * top,
                j: (yj / top).min(plane.coarse - 1) * top,
                side: top,
            };
            while sq.side > 1 && refined.split.contains(&sq) {
                let h = sq.side / 2;
                sq = Square {
                    i: if x >= (sq.i + h) as f64 {
                        sq.i + h
                    } else {
                        sq.i
                    },
                    j: if y >= (sq.j + h) as f64 {
                        sq.j + h
                    } else {
                        sq.j
                    },
                    side: h,
                };
            }
            let near = |v: f64, lo: u64, side: u64| {
                if v - lo as f64 >= side as f64 / 2.0 {
                    lo + side
                } else {
                    lo
                }
            };
            let corner = (near(x, sq.i, sq.side), near(y, sq.j, sq.side));
            let c = refined
                .verdicts
                .get(&plane.index(corner.0, corner.1))
                .map_or(NEITHER, |v| colour(v, converged, diverged));
            let at = (py as usize * w as usize + px as usize) * 3;
            rgb[at..at + 3].copy_from_slice(&c);
        }
    }
    rgb
}

const FIGURE: (u32, u32) = (900, 760);

/// The refined plane with its axes, as PNG bytes and as the image (a zoom's frame).
pub fn plane_figure(
    plane: &Plane,
    refined: &Refined,
    labels: &[String],
    title: &str,
) -> Result<(Vec<u8>, image::RgbImage)> {
    canvas::register_font();
    let (w, h) = FIGURE;
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    let fail = |e: Box<dyn std::error::Error>| {
        Error::Figure(format!("cannot draw the boundary figure: {e}"))
    };
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw_plane(&root, plane, refined, labels, title).map_err(fail)?;
        root.present().map_err(|e| fail(Box::new(e)))?;
    }
    let image = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| Error::Figure("cannot draw the boundary figure: size".into()))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| Error::Figure(format!("cannot encode the boundary figure: {e}")))?;
    Ok((png.into_inner(), image))
}

fn draw_plane<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plane: &Plane,
    refined: &Refined,
    labels: &[String],
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (main, key) = root.split_vertically(FIGURE.1 - 60);
    let (xs, ys) = (Scale::of(plane.steps.log), Scale::of(plane.axis.log));
    let x = xs.to_axis(plane.steps.lo)..xs.to_axis(plane.steps.hi);
    let y = ys.to_axis(plane.axis.lo)..ys.to_axis(plane.axis.hi);
    let mut chart = canvas::chart(&main, title, x.clone(), y.clone())?;
    canvas::axes(
        &mut chart,
        (canvas::step_desc(xs), xs),
        (
            &format!("{} ({} boxes per axis)", plane.column, plane.size()),
            ys,
        ),
        false,
    )?;
    let (pw, ph) = chart.plotting_area().dim_in_pixel();
    let pixels = plane_pixels(plane, refined, pw, ph);
    if let Some(bitmap) = BitMapElement::with_owned_buffer((x.start, y.end), (pw, ph), pixels) {
        chart.draw_series(std::iter::once(bitmap))?;
    }
    // The key: one swatch per outcome.
    let mut swatches: Vec<([u8; 3], String)> = Vec::new();
    for (k, label) in labels.iter().enumerate().skip(1) {
        swatches.push((ramp(MINIMA[(k - 1) % MINIMA.len()], 0.7), label.clone()));
    }
    swatches.push((ramp(DIVERGED, 0.7), "diverged".into()));
    swatches.push((NEITHER, "neither, or converged elsewhere".into()));
    let mut left = 20i32;
    for (c, label) in swatches {
        key.draw(&Rectangle::new(
            [(left, 20), (left + 18, 38)],
            RGBColor(c[0], c[1], c[2]).filled(),
        ))?;
        key.draw(&Text::new(label.clone(), (left + 24, 22), canvas::text(14)))?;
        left += 40 + 8 * label.chars().count() as i32;
    }
    Ok(())
}

/// A zoom's frames as an animated GIF, each shown for a second.
pub fn gif(frames: &[image::RgbImage]) -> Result<Vec<u8>> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder
            .set_repeat(Repeat::Infinite)
            .map_err(|e| Error::Figure(format!("cannot encode the zoom: {e}")))?;
        let delay = image::Delay::from_numer_denom_ms(1000, 1);
        let frames = frames.iter().map(|f| {
            let rgba = image::DynamicImage::ImageRgb8(f.clone()).into_rgba8();
            image::Frame::from_parts(rgba, 0, 0, delay)
        });
        encoder
            .encode_frames(frames)
            .map_err(|e| Error::Figure(format!("cannot encode the zoom: {e}")))?;
    }
    Ok(bytes)
}

/// The box counts against 1/ε with the fit, and the slope between adjacent sizes.
pub fn fit_figures(counts: &[BoxCount], fit: &Fit, size: u64, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = canvas::render(
        &Counts {
            counts: counts.to_vec(),
            fit: fit.clone(),
            size,
        },
        dir,
    )?;
    out.extend(canvas::render(
        &Slopes {
            fit: fit.clone(),
            size,
        },
        dir,
    )?);
    Ok(pngs(out))
}

struct Counts {
    counts: Vec<BoxCount>,
    fit: Fit,
    size: u64,
}

impl Figure for Counts {
    fn stem(&self) -> &str {
        "box-counts"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let pts: Vec<(f64, f64)> = self
            .counts
            .iter()
            .filter(|c| c.count > 0)
            .map(|c| {
                (
                    (self.size as f64 / c.size as f64).log10(),
                    (c.count as f64).log10(),
                )
            })
            .collect();
        let x = Scale::Log.range(pts.iter().map(|p| 10f64.powf(p.0)), 0.05);
        let y = Scale::Log.range(pts.iter().map(|p| 10f64.powf(p.1)), 0.08);
        let title = format!(
            "box counts: dimension {:.3} (95% interval {:.3} to {:.3})",
            self.fit.dimension, self.fit.interval.0, self.fit.interval.1
        );
        let mut chart = canvas::chart(root, &title, x, y)?;
        canvas::axes(
            &mut chart,
            ("1/ε: boxes per axis (log scale)", Scale::Log),
            ("N(ε): boundary boxes (log scale)", Scale::Log),
            true,
        )?;
        chart
            .draw_series(
                pts.iter()
                    .map(|&p| Circle::new(p, 5, canvas::BLUE.filled())),
            )?
            .label("box counts")
            .legend(|(x, y)| Circle::new((x + 10, y), 5, canvas::BLUE.filled()));
        // The fitted line over the kept sizes, through their mean.
        let kept: Vec<(f64, f64)> = self
            .counts
            .iter()
            .filter(|c| c.count > 0 && c.size >= self.fit.kept.0 && c.size <= self.fit.kept.1)
            .map(|c| {
                (
                    (self.size as f64 / c.size as f64).ln(),
                    (c.count as f64).ln(),
                )
            })
            .collect();
        if !kept.is_empty() {
            let n = kept.len() as f64;
            let (mx, my) = kept
                .iter()
                .fold((0.0, 0.0), |(a, b), p| (a + p.0 / n, b + p.1 / n));
            let ends = [kept[0].0, kept[kept.len() - 1].0];
            let line: Vec<(f64, f64)> = ends
                .iter()
                .map(|&lx| {
                    let ly = my + self.fit.dimension * (lx - mx);
                    (lx / std::f64::consts::LN_10, ly / std::f64::consts::LN_10)
                })
                .collect();
            chart
                .draw_series(LineSeries::new(line, canvas::VERMILLION.stroke_width(2)))?
                .label(format!("fit, slope {:.3}", self.fit.dimension))
                .legend(|(x, y)| {
                    PathElement::new(
                        vec![(x, y), (x + 20, y)],
                        canvas::VERMILLION.stroke_width(2),
                    )
                });
        }
        canvas::legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

struct Slopes {
    fit: Fit,
    size: u64,
}

impl Figure for Slopes {
    fn stem(&self) -> &str {
        "box-slopes"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        // Each slope sits at the geometric mean of its two scales.
        let pts: Vec<(f64, f64)> = self
            .fit
            .slopes
            .iter()
            .filter(|s| s.slope.is_finite())
            .map(|s| {
                let at = self.size as f64 / (s.fine as f64 * s.coarse as f64).sqrt();
                (at.log10(), s.slope)
            })
            .collect();
        let x = Scale::Log.range(pts.iter().map(|p| 10f64.powf(p.0)), 0.08);
        let lo = pts
            .iter()
            .map(|p| p.1)
            .chain([self.fit.interval.0, 0.0])
            .fold(f64::INFINITY, f64::min);
        let hi = pts
            .iter()
            .map(|p| p.1)
            .chain([self.fit.interval.1, 2.0])
            .fold(f64::NEG_INFINITY, f64::max);
        let mut chart = canvas::chart(
            root,
            "local slope of ln N(ε) against ln 1/ε, between adjacent box sizes",
            x.clone(),
            (lo - 0.1)..(hi + 0.1),
        )?;
        canvas::axes(
            &mut chart,
            ("1/ε: boxes per axis (log scale)", Scale::Log),
            ("slope (local dimension)", Scale::Linear),
            true,
        )?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x.start, self.fit.interval.0), (x.end, self.fit.interval.1)],
                canvas::SKY_BLUE.mix(0.3).filled(),
            )))?
            .label("95% interval of the fit")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 5), (x + 20, y + 5)],
                    canvas::SKY_BLUE.mix(0.3).filled(),
                )
            });
        chart
            .draw_series(LineSeries::new(pts.clone(), canvas::BLUE.stroke_width(2)))?
            .label("local slope")
            .legend(|(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], canvas::BLUE.stroke_width(2))
            });
        chart.draw_series(
            pts.iter()
                .map(|&p| Circle::new(p, 4, canvas::BLUE.filled())),
        )?;
        canvas::legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// δ* of every start against its axis value (or its index), with the
/// family's thresholds dashed.
pub fn critical_figure(
    rows: &[Critical],
    column: Option<&str>,
    edges: &[Edge],
    name: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let out = canvas::render(
        &CriticalFigure {
            points: rows
                .iter()
                .enumerate()
                .filter_map(|(k, r)| {
                    let x = r.axis_value.unwrap_or(k as f64);
                    r.step_size().map(|d| (x, d, r.class_below))
                })
                .collect(),
            x_desc: column.map_or("start".to_string(), str::to_string),
            edges: edges.to_vec(),
            title: format!("{name}: critical step size δ* of each start"),
        },
        dir,
    )?;
    Ok(pngs(out))
}

struct CriticalFigure {
    points: Vec<(f64, f64, u8)>,
    x_desc: String,
    edges: Vec<Edge>,
    title: String,
}

impl Figure for CriticalFigure {
    fn stem(&self) -> &str {
        "critical"
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static,
    {
        let x = Scale::Linear.range(self.points.iter().map(|p| p.0), 0.03);
        let y = Scale::Linear.range(
            self.points
                .iter()
                .map(|p| p.1)
                .chain(self.edges.iter().map(|e| e.step_size)),
            0.05,
        );
        let mut chart = canvas::chart(root, &self.title, x.clone(), y)?;
        canvas::axes(
            &mut chart,
            (&self.x_desc, Scale::Linear),
            (
                "δ*: first step size that loses the start's class",
                Scale::Linear,
            ),
            true,
        )?;
        for e in &self.edges {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x.start, e.step_size), (x.end, e.step_size)],
                    8,
                    5,
                    BLACK.stroke_width(1),
                ))?
                .label(format!(
                    "{} = {}",
                    e.name,
                    crate::output::figures::theory::short(e.step_size)
                ))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
        }
        let colours = canvas::MINIMIZER_COLOURS;
        chart.draw_series(self.points.iter().map(|&(x, d, c)| {
            Circle::new(
                (x, d),
                3,
                colours[(c.max(1) as usize - 1) % colours.len()].filled(),
            )
        }))?;
        if !self.edges.is_empty() {
            canvas::legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

/// The PNGs among the files `canvas::render` wrote (it writes an SVG beside each).
fn pngs(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect()
}
