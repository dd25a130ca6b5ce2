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

use crate::error::{Error, Result};
use crate::output::write_atomic;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu.txt`),
/// compiled in so figures draw the same text on a machine without fonts.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub const FAMILY: &str = "sans-serif";

fn register_font() {
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

    pub fn label(self, v: f64) -> String {
        tick_label(self.from_axis(v))
    }
}

/// A short tick label: enough digits to tell neighbouring ticks apart.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
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

/// A chart with the house caption, margins and label areas.
pub fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: Range<f64>,
    y: Range<f64>,
) -> std::result::Result<Chart<'a, DB>, Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
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
    let x_label = move |v: &f64| x_scale.label(*v);
    let y_label = move |v: &f64| y_scale.label(*v);
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
pub fn render(figure: &impl Figure, dir: &Path) -> Result<Vec<PathBuf>> {
    register_font();
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
        let r = Scale::Linear.range([0.0, 1.0].into_iter(), 0.1);
        assert_eq!((r.start, r.end), (-0.1, 1.1));
    }
}
