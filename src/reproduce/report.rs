//! report.md (figures linked) and report.html (self-contained: figures
//! embedded as base64 PNG, styles inline, no external request), plus the
//! table printed on stdout.

use std::fmt::Write;

use super::{ReproduceReport, Row};
use crate::error::{Error, Result};
use crate::output::write_atomic;

fn verdict_word(row: &Row) -> &'static str {
    if row.verdict.pass {
        "pass"
    } else {
        "FAIL"
    }
}

fn header(report: &ReproduceReport) -> String {
    let backends: Vec<String> = report
        .backends
        .iter()
        .map(|(p, b)| format!("{p}: {b}"))
        .collect();
    format!(
        "{} of {} claims hold ({} run, {:.1} s; {}).",
        report.rows.len() - report.failed(),
        report.rows.len(),
        if report.quick { "quick" } else { "full" },
        report.seconds,
        backends.join(", ")
    )
}

/// The stdout summary: one line per claim.
pub fn text_table(report: &ReproduceReport) -> String {
    let mut out = String::new();
    for row in &report.rows {
        let _ = writeln!(
            out,
            "{:4}  {:18}  predicted: {}\n{:24}measured:  {}",
            verdict_word(row),
            row.claim.id,
            row.verdict.predicted,
            "",
            row.verdict.measured
        );
    }
    let _ = writeln!(out, "{}", header(report));
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn markdown(report: &ReproduceReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Step size matters: the paper's claims, checked\n");
    let _ = writeln!(md, "{}\n", header(report));
    let _ = writeln!(md, "| claim | predicted | measured (95% CI) | verdict |");
    let _ = writeln!(md, "| --- | --- | --- | --- |");
    for row in &report.rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            md_cell(&row.claim.statement),
            md_cell(&row.verdict.predicted),
            md_cell(&row.verdict.measured),
            verdict_word(row)
        );
    }
    for row in &report.rows {
        let _ = writeln!(md, "\n## {}: {}\n", row.claim.id, row.claim.statement);
        let _ = writeln!(md, "{}\n", row.claim.explanation);
        let _ = writeln!(
            md,
            "Sweep: `{}/` (spec.toml, cells.csv, summary.json). Verdict: **{}**.\n",
            row.preset,
            verdict_word(row)
        );
        let _ = writeln!(
            md,
            "![{}]({}.png)\n\n[SVG]({}.svg)",
            row.claim.id, row.claim.figure, row.claim.figure
        );
    }
    md
}

use crate::labels::html_escape as escape;

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#111}\
table{border-collapse:collapse;width:100%;margin:1em 0}th,td{border:1px solid #999;padding:.4em;vertical-align:top;text-align:left}\
th{background:#eee}td.pass{color:#006b3c;font-weight:bold}td.fail{color:#b00020;font-weight:bold}\
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #ccc}code{background:#f4f4f4}";

/// Counts the figures that decoded, into `data-figures-loaded` on <body>, and
/// reports any that did not as a console error.
const SCRIPT: &str = "window.addEventListener('load',function(){\
var imgs=document.querySelectorAll('img');var ok=0;\
imgs.forEach(function(i){if(i.complete&&i.naturalWidth>0){ok++}else{console.error('figure did not load: '+i.alt)}});\
document.body.setAttribute('data-figures-loaded',ok+'/'+imgs.length);});";

fn html(report: &ReproduceReport) -> Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>stepsweep: the paper's claims, checked</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>Step size matters: the paper's claims, checked</h1>\n<p id=\"summary\">{}</p>\n\
         <table id=\"claims\"><thead><tr><th>claim</th><th>predicted</th><th>measured (95% CI)</th><th>verdict</th></tr></thead><tbody>\n",
        escape(&header(report))
    );
    for row in &report.rows {
        let word = verdict_word(row);
        let _ = writeln!(
            h,
            "<tr id=\"row-{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            escape(&row.claim.id),
            escape(&row.claim.id),
            escape(&row.claim.statement),
            escape(&row.verdict.predicted),
            escape(&row.verdict.measured),
            word.to_lowercase(),
            word
        );
    }
    h.push_str("</tbody></table>\n");
    for row in &report.rows {
        let png_path = report.out.join(format!("{}.png", row.claim.figure));
        let png = std::fs::read(&png_path).map_err(|e| Error::io("cannot read", &png_path, e))?;
        let _ = write!(
            h,
            "<section id=\"{id}\"><h2>{id}: {statement}</h2>\n<p>{explanation}</p>\n\
             <p>Sweep: <code>{preset}/</code>. Verdict: <strong>{word}</strong>.</p>\n\
             <figure><img alt=\"{id}\" src=\"data:image/png;base64,{data}\">\
             <figcaption>{figure}.png (also as SVG beside it)</figcaption></figure></section>\n",
            id = escape(&row.claim.id),
            statement = escape(&row.claim.statement),
            explanation = escape(&row.claim.explanation),
            preset = escape(row.preset),
            word = verdict_word(row),
            data = base64(&png),
            figure = escape(&row.claim.figure),
        );
    }
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    Ok(h)
}

pub fn write(report: &ReproduceReport) -> Result<()> {
    let page = html(report)?;
    write_atomic(&report.out.join("report.md"), markdown(report).as_bytes())?;
    write_atomic(&report.out.join("report.html"), page.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain}");
        }
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            escape("f'' <= 2/δ & \"x\""),
            "f'' &lt;= 2/δ &amp; &quot;x&quot;"
        );
    }
}
