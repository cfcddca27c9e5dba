//! Keeps the source tree layered (docs/architecture.md): every module imports only from the layers below
//! its own, never from a sibling of the same layer, and no file's imports lead back to itself.
//!
//! It reads the `crate::`, `super::` and `self::` paths of every file under `src/` as text (test modules,
//! which stand at the end of their files, are left out) and names the file and line of each import that
//! breaks a rule. There are no exceptions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod sources;

/// The layers, lowest first. Modules in one row are siblings: they must not import each other.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["net"],
    &["mlflow"],
    &["settings"],
    &["aws", "observe"],
    &["gate", "upstream", "artifacts"],
    &["app"],
    &["serve"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// A source file as a module path: `src/gate/auth/mod.rs` is `["gate", "auth"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts
}

/// The code of a file without its test module (from `#[cfg(test)]` followed by `mod` to the end) and
/// without comments.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if trimmed == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = match trimmed.find("//") {
            Some(at) => &trimmed[..at],
            None => trimmed,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Expands a use tree such as `a::{b, c::{d, e}}` into its paths.
fn expand_use_tree(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap().trim().to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand_use_tree)
        .map(|p| {
            if p == "self" {
                prefix.to_string()
            } else {
                format!("{prefix}::{p}")
            }
        })
        .collect()
}

/// Every path a file names with `crate::`, `super::` or `self::`, with its line.
fn named_paths(text: &str) -> Vec<(usize, String)> {
    let lines = code_lines(text);
    let mut found = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (number, line) in &lines {
        // `use` statements, joined across lines until their `;`.
        if let Some((start, mut statement)) = pending.take() {
            statement.push_str(line);
            if statement.contains(';') {
                found.extend(use_paths(&statement).into_iter().map(|p| (start, p)));
            } else {
                pending = Some((start, statement));
            }
            continue;
        }
        let stripped = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ")
            .trim_start_matches("pub ");
        if stripped.starts_with("use ") {
            if stripped.contains(';') {
                found.extend(use_paths(stripped).into_iter().map(|p| (*number, p)));
            } else {
                pending = Some((*number, stripped.to_string()));
            }
            continue;
        }
        // Paths written inline in code.
        for root in ["crate::", "super::"] {
            let mut rest = line.as_str();
            while let Some(at) = rest.find(root) {
                let before = rest[..at].chars().last();
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(tail.len());
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    found.push((*number, tail[..end].trim_end_matches(':').to_string()));
                }
                rest = &tail[end.max(1)..];
            }
        }
    }
    found
}

fn use_paths(statement: &str) -> Vec<String> {
    let body = statement
        .trim()
        .trim_start_matches("use ")
        .trim_end_matches(';')
        .replace(char::is_whitespace, " ");
    expand_use_tree(&body)
        .into_iter()
        .filter(|p| p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::"))
        .collect()
}

/// The module path a named path points into, resolved against the importing module.
fn resolve(importer: &[String], is_mod_file: bool, path: &str) -> Vec<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
            Vec::new()
        }
        _ => {
            // `self` is this module; each `super` goes one module up. In a `foo.rs` file, `self` is
            // `foo` itself; in `foo/mod.rs` likewise (module_path already names `foo`).
            let _ = is_mod_file;
            let mut base = importer.to_vec();
            while let Some(first) = segments.first() {
                match *first {
                    "self" => {}
                    "super" => {
                        base.pop();
                    }
                    _ => break,
                }
                segments.remove(0);
            }
            base
        }
    };
    base.extend(segments.iter().map(|s| s.to_string()));
    base
}

/// The longest prefix of `path` that is a module file of the crate.
fn owning_module(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
}

struct Source {
    file: String,
    module: Vec<String>,
    imports: Vec<(usize, Vec<String>)>,
}

fn read_sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources::rust_files(&src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    files
        .iter()
        .map(|file| {
            let module = module_path(&src, file);
            let text = std::fs::read_to_string(file).unwrap();
            let is_mod_file = file.file_name().is_some_and(|n| n == "mod.rs");
            let imports = named_paths(&text)
                .into_iter()
                .filter_map(|(line, path)| {
                    let target = resolve(&module, is_mod_file, &path);
                    owning_module(&modules, &target).map(|m| (line, m))
                })
                .filter(|(_, target)| *target != module)
                .collect();
            Source {
                file: file
                    .strip_prefix(src.parent().unwrap())
                    .unwrap()
                    .display()
                    .to_string(),
                module,
                imports,
            }
        })
        .collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let unplaced: BTreeSet<String> = read_sources()
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .filter(|top| layer_of(top).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS in tests/layers.rs and to docs/architecture.md): {unplaced:?}"
    );
}

#[test]
fn imports_point_only_down_the_layers() {
    let mut violations = Vec::new();
    for source in read_sources() {
        // lib.rs and main.rs stand above every layer.
        let Some(from) = source.module.first().and_then(|m| layer_of(m)) else {
            continue;
        };
        for (line, target) in &source.imports {
            let (from_top, to_top) = (&source.module[0], &target[0]);
            if from_top == to_top {
                continue;
            }
            let Some(to) = layer_of(to_top) else { continue };
            if to == from {
                violations.push(format!(
                    "{}:{line}: `{from_top}` imports its sibling `{}`",
                    source.file,
                    target.join("::")
                ));
            } else if to > from {
                violations.push(format!(
                    "{}:{line}: `{from_top}` imports `{}`, a layer above it",
                    source.file,
                    target.join("::")
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_file_imports_lead_back_to_it() {
    let sources = read_sources();
    let graph: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = sources
        .iter()
        .map(|s| (&s.module, s.imports.iter().map(|(_, t)| t).collect()))
        .collect();
    // Depth-first search for a back edge; the cycle is reported as the chain of modules.
    fn visit<'a>(
        node: &'a Vec<String>,
        graph: &BTreeMap<&'a Vec<String>, BTreeSet<&'a Vec<String>>>,
        stack: &mut Vec<&'a Vec<String>>,
        done: &mut BTreeSet<&'a Vec<String>>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(at) = stack.iter().position(|n| *n == node) {
            let chain: Vec<String> = stack[at..]
                .iter()
                .chain(std::iter::once(&node))
                .map(|m| m.join("::"))
                .collect();
            cycles.push(chain.join(" -> "));
            return;
        }
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(node);
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_reader_understands_use_trees_and_relative_paths() {
    assert_eq!(
        expand_use_tree("crate::gate::{auth::{self, Identity}, policy::Class as C}"),
        [
            "crate::gate::auth",
            "crate::gate::auth::Identity",
            "crate::gate::policy::Class"
        ]
    );
    let importer = vec!["upstream".to_string(), "response".to_string()];
    assert_eq!(
        resolve(&importer, false, "super::ResponseBody"),
        ["upstream", "ResponseBody"]
    );
    let text = "use crate::net::Cidr;\nfn f() { crate::settings::parse(); }\n#[cfg(test)]\nmod tests {\n    use crate::serve::x;\n}\n";
    let paths: Vec<String> = named_paths(text).into_iter().map(|(_, p)| p).collect();
    assert_eq!(paths, ["crate::net::Cidr", "crate::settings::parse"]);
}
