//! The layering ARCHITECTURE.md describes, checked on the source: the
//! top-level modules depend on each other without a cycle, and the leaves
//! depend on no other module of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules every layer may use, because they use nothing of the crate.
const LEAVES: &[&str] = &[
    "dirs", "duration", "model", "progress", "tls", "tree", "wait",
];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

/// The first path segment after each `crate::` (and, in a top-level file
/// module, each `super::`), including every item of `crate::{a, b::c}`.
fn referenced(text: &str, top_level_file: bool) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut prefixes = vec!["crate::"];
        if top_level_file {
            prefixes.push("super::");
        }
        for prefix in prefixes {
            for (at, _) in code.match_indices(prefix) {
                let rest = &code[at + prefix.len()..];
                if let Some(group) = rest.strip_prefix('{') {
                    let group = group.split('}').next().unwrap_or_default();
                    found.extend(group.split(',').map(|item| ident(item.trim())));
                } else {
                    found.insert(ident(rest));
                }
            }
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

fn graph() -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if matches!(name.as_str(), "lib" | "main") {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let deps = graph.entry(name.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            deps.extend(referenced(&text, path.is_file()));
        }
        deps.remove(&name);
    }
    graph
}

/// A cycle through the graph, as the modules along it, if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn top_level_modules_have_no_cycle() {
    let graph = graph();
    assert!(graph.len() > 10, "found too few modules: {graph:?}");
    if let Some(cycle) = cycle(&graph) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

#[test]
fn leaves_depend_on_nothing_in_the_crate() {
    let graph = graph();
    for leaf in LEAVES {
        let deps = graph
            .get(*leaf)
            .unwrap_or_else(|| panic!("no module {leaf}"));
        assert!(deps.is_empty(), "{leaf} depends on {deps:?}");
    }
}

#[test]
fn the_command_line_knows_no_domain_module() {
    let graph = graph();
    let deps = &graph["cli"];
    assert!(
        deps.iter().all(|d| LEAVES.contains(&d.as_str())),
        "cli depends on {deps:?}"
    );
}

#[test]
fn the_checker_sees_dependencies_and_cycles() {
    let text =
        "use crate::a::B;\n// crate::commented\nuse crate::{b, c::D};\nlet x = super::e::f();";
    let expected: BTreeSet<String> = ["a", "b", "c", "e"].map(String::from).into();
    assert_eq!(referenced(text, true), expected);
    assert!(!referenced(text, false).contains("e"));

    let edge = |from: &str, to: &[&str]| {
        (
            from.to_string(),
            to.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(),
        )
    };
    let acyclic: Graph = [edge("a", &["b"]), edge("b", &["c"]), edge("c", &[])].into();
    assert_eq!(cycle(&acyclic), None);
    let cyclic: Graph = [edge("a", &["b"]), edge("b", &["c"]), edge("c", &["a"])].into();
    assert_eq!(cycle(&cyclic).unwrap(), ["a", "b", "c", "a"]);
}
