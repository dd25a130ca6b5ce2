//! A small WGSL preprocessor, so that every kernel is WGSL files composed by
//! directives rather than Rust strings spliced together. A directive is a
//! line whose first non-blank character is `#`:
//!
//! - `#import NAME` inlines a file of the library below (NAME is its path
//!   under `shaders/` without `.wgsl`), or `model`, the model file the plan
//!   gives; each file at most once per kernel, wherever it is imported first.
//! - `#bindings NAME` declares the bindings of a table of `bindings`
//!   (`bindings::table`), the table the host's layouts are made from.
//! - `#ifdef FLAG`, `#ifndef FLAG`, `#else` and `#endif` keep or drop the lines
//!   between them by the flags the plan sets; they nest.
//!
//! The sizes and constants a kernel is specialized to are not WGSL code but
//! numbers: the plan writes them as a header of `const` declarations.
//!
//! The files are stepsweep's own, so a malformed directive is a bug in
//! stepsweep: it panics, and the tests compose every kernel.

use std::collections::BTreeSet;

use super::bindings;

/// The WGSL files every kernel may import, by name.
const LIBRARY: &[(&str, &str)] = &[
    (
        "shared/common",
        include_str!("../../shaders/shared/common.wgsl"),
    ),
    (
        "shared/compact",
        include_str!("../../shaders/shared/compact.wgsl"),
    ),
    (
        "shared/descend",
        include_str!("../../shaders/shared/descend.wgsl"),
    ),
    (
        "shared/descend_workgroup",
        include_str!("../../shaders/shared/descend_workgroup.wgsl"),
    ),
    (
        "shared/region",
        include_str!("../../shaders/shared/region.wgsl"),
    ),
    ("shared/rng", include_str!("../../shaders/shared/rng.wgsl")),
    (
        "shared/rng_stream",
        include_str!("../../shaders/shared/rng_stream.wgsl"),
    ),
    (
        "shared/state",
        include_str!("../../shaders/shared/state.wgsl"),
    ),
    (
        "shared/stopping",
        include_str!("../../shaders/shared/stopping.wgsl"),
    ),
    (
        "shared/tanh",
        include_str!("../../shaders/shared/tanh.wgsl"),
    ),
];

/// `root` with its directives resolved: `model` is the text `#import model`
/// inlines, and `flags` are the names `#ifdef` tests.
pub fn compose(root: &str, model: Option<&str>, flags: &[&str]) -> String {
    let mut composer = Composer {
        model,
        flags: flags.iter().copied().collect(),
        imported: BTreeSet::new(),
        out: String::new(),
    };
    composer.import(root);
    composer.out
}

struct Composer<'a> {
    model: Option<&'a str>,
    flags: BTreeSet<&'a str>,
    imported: BTreeSet<String>,
    out: String,
}

impl Composer<'_> {
    fn import(&mut self, name: &str) {
        if !self.imported.insert(name.to_string()) {
            return;
        }
        let text = if name == "model" {
            self.model
                .unwrap_or_else(|| panic!("a kernel imports `model` but its plan gives none"))
        } else {
            LIBRARY
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, text)| *text)
                .unwrap_or_else(|| panic!("no WGSL file `{name}` to import"))
        };
        self.text(name, text);
    }

    fn text(&mut self, name: &str, text: &str) {
        // Whether each open conditional keeps its lines, and whether it has
        // seen its `#else`.
        let mut open: Vec<(bool, bool)> = Vec::new();
        let keeping = |open: &[(bool, bool)]| open.iter().all(|&(keep, _)| keep);
        for (number, line) in text.lines().enumerate() {
            let at = || format!("{name}.wgsl line {}", number + 1);
            let Some(directive) = line.trim_start().strip_prefix('#') else {
                if keeping(&open) {
                    self.out.push_str(line);
                    self.out.push('\n');
                }
                continue;
            };
            let mut words = directive.split_whitespace();
            let (word, argument) = (words.next().unwrap_or(""), words.next());
            match (word, argument) {
                ("ifdef", Some(flag)) => open.push((self.flags.contains(flag), false)),
                ("ifndef", Some(flag)) => open.push((!self.flags.contains(flag), false)),
                ("else", None) => match open.last_mut() {
                    Some((keep, seen_else @ false)) => {
                        *keep = !*keep;
                        *seen_else = true;
                    }
                    _ => panic!("{}: #else without its #ifdef", at()),
                },
                ("endif", None) => {
                    open.pop()
                        .unwrap_or_else(|| panic!("{}: #endif without its #ifdef", at()));
                }
                ("import", Some(file)) if keeping(&open) => self.import(file),
                ("bindings", Some(table)) if keeping(&open) => {
                    let table = bindings::table(table)
                        .unwrap_or_else(|| panic!("{}: no binding table `{table}`", at()));
                    self.out.push_str(&bindings::declarations(table));
                }
                ("import" | "bindings", Some(_)) => {}
                _ => panic!("{}: unknown directive `#{directive}`", at()),
            }
        }
        assert!(open.is_empty(), "{name}.wgsl: an #ifdef without its #endif");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditionals_nest_and_imports_happen_once() {
        let model = "#import shared/common\n\
                     #ifdef A\na\n#ifndef B\nnot b\n#else\nb\n#endif\n#else\nnot a\n#endif\n\
                     #import shared/common\nend\n";
        let common = LIBRARY[0].1;
        assert_eq!(
            compose("model", Some(model), &["A"]),
            format!("{common}a\nnot b\nend\n")
        );
        assert_eq!(
            compose("model", Some(model), &["A", "B"]),
            format!("{common}a\nb\nend\n")
        );
        assert_eq!(
            compose("model", Some(model), &["B"]),
            format!("{common}not a\nend\n")
        );
    }

    #[test]
    #[should_panic(expected = "without its #endif")]
    fn an_unclosed_conditional_is_refused() {
        compose("model", Some("#ifdef A\nx\n"), &[]);
    }

    #[test]
    #[should_panic(expected = "no WGSL file `nowhere`")]
    fn an_unknown_import_is_refused() {
        compose("model", Some("#import nowhere\n"), &[]);
    }
}
