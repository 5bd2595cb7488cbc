//! The shape of the code, held by tests: no import circles between the files of a crate,
//! and no source file past the size where it stops being one concern.
//!
//! The import graph is read from the source text: every `crate::…`, `super::…` and
//! `self::…` path (in `use` lines and inline, unit-test modules aside), resolved to the file
//! that defines the module it names. A path to one of the file's own ancestors (the
//! `mod.rs` that declares it, and theirs) is not counted: a child may use what its parent
//! defines. Cheap enough to check on every run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source files longer than this (not counting a trailing `#[cfg(test)]` module) mix
/// concerns; split them by concern instead of raising the number.
const MAX_LINES: usize = 650;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of `file` within its crate (`["web", "ratelimit"]` for
/// `server/src/web/ratelimit/mod.rs`).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The import graph of one crate: file -> the files it takes names from.
fn graph(crate_dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join(crate_dir).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| {
            let name = format!(
                "{crate_dir}/src/{}",
                f.strip_prefix(&src).unwrap().display()
            );
            (module_of(&src, f), name)
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let here = module_of(&src, file);
        let name = &modules[&here];
        let text = std::fs::read_to_string(file).expect("source");
        // Unit tests may reach for anything (a whole state, say): they are not the module's
        // dependencies.
        let text = match text.find("#[cfg(test)]\nmod tests {") {
            Some(at) => &text[..at],
            None => &text[..],
        };
        // Comments go first; what is left is read whole, since `use` trees span lines.
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut targets = BTreeSet::new();
        for path in paths_in(&code) {
            let absolute = resolve(&here, &path);
            // The longest prefix that is a module file is where the name comes from.
            // A module's own ancestors (the files that declare it) are not imports: a
            // child may use what its parent defines, and the parent declares the child.
            if let Some((n, target)) = (1..=absolute.len())
                .rev()
                .find_map(|n| modules.get(&absolute[..n]).map(|t| (n, t)))
                && target != name
                && !here.starts_with(&absolute[..n])
            {
                targets.insert(target.clone());
            }
        }
        edges.insert(name.clone(), targets);
    }
    edges
}

/// Paths starting with `crate`, `super` or `self` in `code` (comments already removed), as
/// segments. A `use` tree gives one path per leaf, over as many lines and levels as rustfmt
/// writes it: `use a::{b, c::{d, e}}` gives `a::b`, `a::c::d` and `a::c::e`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let at_word = i == 0 || !(ident(bytes[i - 1]) || bytes[i - 1] == b':');
        match ["crate::", "super::", "self::"]
            .iter()
            .find(|h| at_word && bytes[i..].starts_with(h.as_bytes()))
        {
            Some(head) => {
                let first = vec![head.trim_end_matches("::").to_owned()];
                i = path_tree(bytes, i + head.len(), first, &mut out);
            }
            None => i += 1,
        }
    }
    out
}

/// Reads the rest of a path or `use` tree from `at` onwards (after `prefix::`), pushing each
/// leaf onto `out`; returns where it stopped.
fn path_tree(
    bytes: &[u8],
    mut at: usize,
    mut prefix: Vec<String>,
    out: &mut Vec<Vec<String>>,
) -> usize {
    let skip_space = |mut at: usize| {
        while bytes.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        at
    };
    loop {
        at = skip_space(at);
        if bytes.get(at) == Some(&b'{') {
            at += 1;
            loop {
                at = skip_space(at);
                match bytes.get(at) {
                    None => return at,
                    Some(b'}') => return at + 1,
                    Some(b',') => at += 1,
                    Some(_) => at = path_tree(bytes, at, prefix.clone(), out),
                }
            }
        }
        let start = at;
        while bytes
            .get(at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            at += 1;
        }
        let word = String::from_utf8_lossy(&bytes[start..at]).into_owned();
        if word.is_empty() {
            // `*` or the end of the path: the prefix is what is named.
            out.push(prefix);
            return at.max(start + 1);
        }
        if word != "self" {
            prefix.push(word);
        }
        if bytes[at..].starts_with(b"::") {
            at += 2;
        } else {
            out.push(prefix);
            return at;
        }
    }
}

/// `path` (starting with `crate`, `super` or `self`) as a path from the crate root, seen
/// from module `here`.
fn resolve(here: &[String], path: &[String]) -> Vec<String> {
    let mut base: Vec<String> = match path[0].as_str() {
        "crate" => Vec::new(),
        _ => here.to_vec(),
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        base.pop();
    }
    while let Some(first) = rest.first() {
        match first.as_str() {
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    base
}

/// Every circle of files (strongly connected component of more than one file), sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iterative enough for a few hundred files.
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.edges.contains_key(w) {
                continue;
            }
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found.sort();
    s.found
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let mut found = Vec::new();
    for krate in ["shared", "domain", "app", "frontend", "server"] {
        found.extend(circles(&graph(krate)));
    }
    assert!(found.is_empty(), "import circles between files: {found:#?}");
}

#[test]
fn the_circle_check_sees_a_circle() {
    // A check that cannot fail proves nothing: two files importing each other must be found.
    let mut edges = BTreeMap::new();
    edges.insert("a.rs".to_owned(), BTreeSet::from(["b.rs".to_owned()]));
    edges.insert("b.rs".to_owned(), BTreeSet::from(["a.rs".to_owned()]));
    edges.insert("c.rs".to_owned(), BTreeSet::from(["a.rs".to_owned()]));
    assert_eq!(
        circles(&edges),
        vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]
    );
    let here = ["web".to_owned(), "ratelimit".to_owned()];
    let paths = paths_in("use super::context::{\n    coded,\n    limits::{Body, self},\n};");
    let resolved: Vec<Vec<String>> = paths.iter().map(|p| resolve(&here, p)).collect();
    assert_eq!(
        resolved,
        vec![
            vec!["web", "context", "coded"],
            vec!["web", "context", "limits", "Body"],
            vec!["web", "context", "limits"],
        ]
        .into_iter()
        .map(|p| p.into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
}

#[test]
fn no_source_file_is_past_the_size_of_one_concern() {
    let mut long = Vec::new();
    for krate in ["shared", "domain", "app", "frontend", "server"] {
        let mut files = Vec::new();
        rust_files(&root().join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            // Unit tests at the end of a file do not count: they are the tests of that one
            // concern. The generated schema is a data table.
            if file.ends_with("db/schema.rs") || file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let code = match text.find("#[cfg(test)]\nmod tests {") {
                Some(at) => text[..at].lines().count(),
                None => text.lines().count(),
            };
            if code > MAX_LINES {
                long.push(format!("{} ({code} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split these by concern: {long:#?}");
}
