//! The structure docs/architecture.md describes: no two modules of the
//! library import each other, directly or through others, and no text of the
//! project cites a document outside the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// For each top-level module of the library, the top-level modules its code
/// (not its unit tests) names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut paths = Vec::new();
    files(&src, "rs", &mut paths);
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in paths {
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_string_lossy().trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let named = imports.entry(module.clone()).or_default();
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let other = &rest[..end];
            if !other.is_empty() && other != module {
                named.insert(other.to_string());
            }
        }
    }
    imports
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let imports = imports();
    assert!(imports.len() > 20, "the modules were found: {imports:?}");
    // Depth-first search for a cycle, reporting the first one found.
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for other in imports.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(other, imports, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in imports.keys() {
        if let Some(cycle) = visit(module, &imports, &mut Vec::new(), &mut done) {
            panic!("an import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn no_text_cites_a_document_outside_the_repository() {
    let mut paths = Vec::new();
    for (dir, ext) in [
        ("src", "rs"),
        ("shaders", "wgsl"),
        ("presets", "toml"),
        ("docs", "md"),
        ("tests", "rs"),
        ("benches", "rs"),
    ] {
        files(&root().join(dir), ext, &mut paths);
    }
    paths.push(root().join("README.md"));
    // Spelled in pieces, so that this file does not cite them itself.
    let outside = ["DESIGN", "PAPER", "STYLE"].map(|name| format!("{name}.md"));
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for name in &outside {
            assert!(
                !text.contains(name.as_str()),
                "{} cites {name}, which is not in the repository",
                path.display()
            );
        }
    }
}
