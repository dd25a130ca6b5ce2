//! Numbers as the figures, tables and reports print them.

/// A short label for a value: four decimals, or two significant digits in
/// scientific notation outside 0.001..10⁴.
pub fn tick_label(v: f64) -> String {
    tick_label_at(v, f64::NAN)
}

/// A label for a value among others `step` apart (NaN: unknown): as short as
/// `tick_label`, with more digits where the step needs them, so that cells
/// 10⁻¹³ apart do not share a label.
pub fn tick_label_at(v: f64, step: f64) -> String {
    let a = v.abs();
    let resolvable = step > 0.0 && step.is_finite();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        let digits = if resolvable {
            ((a / step).log10().floor()).clamp(1.0, 16.0) as usize
        } else {
            1
        };
        format!("{v:.digits$e}")
    } else {
        let decimals = if resolvable {
            (1.0 - step.log10().floor()).clamp(4.0, 17.0) as usize
        } else {
            4
        };
        let s = format!("{v:.decimals$}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" {
            "0".into()
        } else {
            s.to_string()
        }
    }
}

/// Text made safe inside HTML, attribute values included.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
