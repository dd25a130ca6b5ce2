//! The drawing surface shared by every figure: the embedded font, the
//! colour-blind-safe palette, log or linear axes, and rendering one drawing
//! into a PNG and an SVG, each written atomically.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::theory::Threshold;

pub use crate::labels::{tick_label, tick_label_at};

use crate::error::{Error, Result};
use crate::output::write_atomic;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu.txt`),
/// compiled in so figures draw the same text on a machine without fonts.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub const FAMILY: &str = "sans-serif";

pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a font file compiled into the binary; a failure here
        // is a build defect, not something a user can cause.
        if plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the embedded DejaVu Sans font does not parse");
        }
    });
}

/// Okabe & Ito's palette: distinguishable under the common colour-vision deficiencies.
pub const BLACK_: RGBColor = RGBColor(0, 0, 0);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const SKY_BLUE: RGBColor = RGBColor(86, 180, 233);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);

/// Colours for the minimizers, in ascending order of x.
pub const MINIMIZER_COLOURS: [RGBColor; 3] = [BLUE, GREEN, PURPLE];

/// An axis drawn linearly or in log10. Charts are built on the transformed
/// values, and tick labels are mapped back, so one drawing routine serves both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    Linear,
    Log,
}

impl Scale {
    pub fn of(log: bool) -> Scale {
        if log {
            Scale::Log
        } else {
            Scale::Linear
        }
    }

    pub fn to_axis(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => v.log10(),
        }
    }

    pub fn from_axis(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log => 10f64.powf(v),
        }
    }

    /// The axis range covering `values` with a margin of `pad` of the span.
    pub fn range(self, values: impl Iterator<Item = f64>, pad: f64) -> std::ops::Range<f64> {
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            let t = self.to_axis(v);
            (lo.min(t), hi.max(t))
        });
        let span = if hi > lo { hi - lo } else { 1.0 };
        (lo - pad * span)..(hi + pad * span)
    }

    /// The label of the tick at axis value `v`, with ticks about `axis_step`
    /// apart on the axis: digits enough to tell it from its neighbours.
    pub fn label(self, v: f64, axis_step: f64) -> String {
        let value = self.from_axis(v);
        let step = (self.from_axis(v + axis_step) - value).abs();
        tick_label_at(value, step)
    }
}

pub fn text(size: u32) -> TextStyle<'static> {
    register_font();
    (FAMILY, size).into_font().color(&BLACK)
}

/// Errors from plotters, boxed so one drawing routine serves both backends.
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// Every figure's chart: f64 on both axes (log axes are drawn on log10 values).
pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Axis values beyond this magnitude are not drawn: the tick arithmetic of a
/// wider axis overflows.
const AXIS_LIMIT: f64 = 1e300;

/// The narrowest axis drawn, relative to the magnitude of its values: below
/// it ticks cannot be told apart in f64 (and finding them never ends).
const MIN_RELATIVE_WIDTH: f64 = 1e-12;

/// A range that the chart can draw, for any range a figure computes: finite,
/// within ±`AXIS_LIMIT`, ordered, and wide enough for ticks to differ. A
/// degenerate range (one value, or none) is widened around its centre; one
/// that cannot be drawn at all becomes 0..1. The second part says, in words,
/// what was changed where the reader should know.
pub fn drawable(range: Range<f64>) -> (Range<f64>, Option<&'static str>) {
    let (lo, hi) = (range.start.min(range.end), range.start.max(range.end));
    if !(lo.is_finite() && hi.is_finite()) {
        // An empty figure's range (from no values) is not news.
        let empty = lo == f64::INFINITY || hi == f64::NEG_INFINITY;
        return (
            0.0..1.0,
            (!empty).then_some("values that are not finite are not drawn"),
        );
    }
    let magnitude = lo.abs().max(hi.abs());
    if magnitude > AXIS_LIMIT {
        return (0.0..1.0, Some("axis values beyond ±1e300 are not drawn"));
    }
    let least = (magnitude * MIN_RELATIVE_WIDTH).max(1e-300);
    if hi - lo >= least {
        return (lo..hi, None);
    }
    if magnitude == 0.0 {
        return (-1.0..1.0, None);
    }
    let centre = lo / 2.0 + hi / 2.0;
    let half = least.max(magnitude * 1e-6) / 2.0;
    ((centre - half)..(centre + half), None)
}

thread_local! {
    /// What `chart` changed to draw the current figure (see `drawable`),
    /// collected by `render`.
    static NOTES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a one-line note about the figure being drawn; `render` returns it.
pub fn note(text: String) {
    NOTES.with(|n| {
        let mut n = n.borrow_mut();
        if !n.contains(&text) {
            n.push(text);
        }
    });
}

/// A chart with the house caption, margins and label areas, over ranges
/// made drawable (see `drawable`).
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
) -> std::result::Result<Chart<'a, DB>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let (x, x_note) = drawable(x);
    let (y, y_note) = drawable(y);
    for (axis, n) in [("x", x_note), ("y", y_note)] {
        if let Some(n) = n {
            note(format!("{axis} axis: {n}"));
        }
    }
    Ok(ChartBuilder::on(area)
        .caption(title, text(20))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)?)
}

/// The step-size axis's description.
pub fn step_desc(scale: Scale) -> &'static str {
    match scale {
        Scale::Log => "step size δ (dimensionless, log scale)",
        Scale::Linear => "step size δ (dimensionless)",
    }
}

/// Axes with descriptions and tick labels mapped back through the scales;
/// `grid` keeps the bold grid lines (line plots), off for filled maps.
pub fn axes<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    (x_desc, x_scale): (&str, Scale),
    (y_desc, y_scale): (&str, Scale),
    grid: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    // Ticks fall at most a tenth of the range apart.
    let (x, y) = (chart.x_range(), chart.y_range());
    let (x_step, y_step) = ((x.end - x.start) / 10.0, (y.end - y.start) / 10.0);
    let x_label = move |v: &f64| x_scale.label(*v, x_step);
    let y_label = move |v: &f64| y_scale.label(*v, y_step);
    let mut mesh = chart.configure_mesh();
    if grid {
        mesh.light_line_style(WHITE.mix(0.0));
    } else {
        mesh.disable_mesh();
    }
    mesh.x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(text(14))
        .axis_desc_style(text(16))
        .draw()?;
    Ok(())
}

/// Dashed vertical lines at the thresholds inside the plot, each labelled
/// near the top; labels are staggered so that close thresholds stay readable.
pub fn threshold_lines<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    thresholds: &[Threshold],
    scale: Scale,
    width: u32,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let y = chart.y_range();
    for (i, t) in thresholds.iter().enumerate() {
        let x = scale.to_axis(t.step_size);
        if !chart.x_range().contains(&x) {
            continue;
        }
        chart.draw_series(DashedLineSeries::new(
            vec![(x, y.start), (x, y.end)],
            8,
            5,
            BLACK.stroke_width(width),
        ))?;
        let label_y = y.end - (y.end - y.start) * (0.04 + 0.06 * i as f64);
        chart.draw_series(std::iter::once(Text::new(
            format!(" {}", t.label),
            (x, label_y),
            text(14),
        )))?;
    }
    Ok(())
}

/// The legend of the labelled series, in a framed box.
pub fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(text(14))
        .draw()?;
    Ok(())
}

/// A figure: one drawing routine, rendered onto any plotters backend.
pub trait Figure {
    /// The file stem: `figures/<stem>.png` and `.svg`.
    fn stem(&self) -> &str;
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32) {
        (960, 600)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult
    where
        DB::ErrorType: 'static;
}

fn draw_error(stem: &str, e: impl std::fmt::Display) -> Error {
    Error::Figure(format!("cannot draw figure {stem}: {e}"))
}

/// Draws `figure` into `dir/<stem>.png` and `dir/<stem>.svg`.
/// What could not be drawn (see `drawable`) is said in one line per note on
/// stderr, after the figure is written.
pub fn render(figure: &impl Figure, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
    NOTES.with(|n| n.borrow_mut().clear());
    let stem = figure.stem();
    let (w, h) = figure.size();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(stem, e))?;
        figure.draw(&root).map_err(|e| draw_error(stem, e))?;
        root.present().map_err(|e| draw_error(stem, e))?;
    }
    let image = image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| draw_error(stem, "size"))?;
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .map_err(|e| draw_error(stem, e))?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(stem, e))?;
        figure.draw(&root).map_err(|e| draw_error(stem, e))?;
        root.present().map_err(|e| draw_error(stem, e))?;
    }
    let png_path = dir.join(format!("{stem}.png"));
    let svg_path = dir.join(format!("{stem}.svg"));
    write_atomic(&png_path, &png.into_inner())?;
    write_atomic(&svg_path, svg.as_bytes())?;
    for n in NOTES.with(|n| std::mem::take(&mut *n.borrow_mut())) {
        eprintln!("stepsweep: figure {stem}: {n}");
    }
    Ok(vec![png_path, svg_path])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_scale_round_trips_and_labels_read_back() {
        let s = Scale::Log;
        assert!((s.from_axis(s.to_axis(0.02)) - 0.02).abs() < 1e-15);
        assert_eq!(tick_label(0.2), "0.2");
        assert_eq!(tick_label(-0.0), "0");
        assert_eq!(tick_label(1e-5), "1.0e-5");
        // Neighbours 10⁻¹³ apart get the digits that tell them apart.
        assert_eq!(tick_label_at(0.1, 1e-14), "0.1");
        assert_eq!(tick_label_at(0.1000000000001, 1e-14), "0.1000000000001");
        assert_eq!(tick_label_at(0.25, 0.05), "0.25");
        assert_eq!(tick_label_at(1.5e-7, 1e-8), "1.5e-7");
        assert_eq!(tick_label_at(1.23e-7, 1e-9), "1.23e-7");
        let r = Scale::Linear.range([0.0, 1.0].into_iter(), 0.1);
        assert_eq!((r.start, r.end), (-0.1, 1.1));
    }
}
