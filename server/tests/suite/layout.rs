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

/// Circles that exist today and are taken apart by the next step of the reshape (the domain
/// crate, where services take what they need instead of `AppState`). This list may only
/// shrink: a new circle fails the test, and so does one listed here that is gone.
const KNOWN_CIRCLES: &[&[&str]] = &[
    &[
        "app/src/accounts/service.rs",
        "app/src/accounts/sessions.rs",
    ],
    &[
        "app/src/brands/service.rs",
        "app/src/create/mod.rs",
        "app/src/create/service.rs",
        "app/src/gallery/service.rs",
        "app/src/state.rs",
        "app/src/trends/service.rs",
        "app/src/uploads/service.rs",
    ],
];

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
        let mut targets = BTreeSet::new();
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            for path in paths_in(code) {
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
        }
        edges.insert(name.clone(), targets);
    }
    edges
}

/// Paths starting with `crate`, `super` or `self` in a line of code, as segments; a `use`
/// list's braces give one path per item (`use a::{b, c::d}` gives `a::b` and `a::c::d`).
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let starts_word = i == 0 || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_');
        let rest: String = bytes[i..].iter().collect();
        if starts_word
            && let Some(head) = ["crate::", "super::", "self::"]
                .iter()
                .find(|h| rest.starts_with(**h))
        {
            let mut segs = vec![head.trim_end_matches("::").to_owned()];
            let mut j = i + head.len();
            loop {
                let word: String = bytes[j..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                if word.is_empty() {
                    break;
                }
                j += word.len();
                if word == "super" || word == "self" || bytes[j..].starts_with(&[':', ':']) {
                    segs.push(word);
                    if bytes[j..].starts_with(&[':', ':']) {
                        j += 2;
                        continue;
                    }
                    break;
                }
                segs.push(word);
                break;
            }
            // `use x::{a, b::c}`: one path per item of the list.
            if bytes.get(j) == Some(&'{') {
                let close = bytes[j..].iter().position(|c| *c == '}').map(|p| j + p);
                let inner: String = bytes[j + 1..close.unwrap_or(bytes.len())].iter().collect();
                for item in inner.split(',') {
                    let item: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| s.split_whitespace().next().unwrap_or("").to_owned())
                        .filter(|s| !s.is_empty() && s != "self" && s != "*")
                        .collect();
                    let mut full = segs.clone();
                    full.extend(item);
                    out.push(full);
                }
            } else {
                out.push(segs);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
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
    for krate in ["app", "frontend", "server"] {
        found.extend(circles(&graph(krate)));
    }
    let known: Vec<Vec<String>> = KNOWN_CIRCLES
        .iter()
        .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
        .collect();
    let new: Vec<&Vec<String>> = found.iter().filter(|c| !known.contains(c)).collect();
    assert!(new.is_empty(), "import circles between files: {new:#?}");
    let gone: Vec<&Vec<String>> = known.iter().filter(|c| !found.contains(c)).collect();
    assert!(
        gone.is_empty(),
        "these circles are gone: take them off KNOWN_CIRCLES: {gone:#?}"
    );
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
    let paths = paths_in("use super::context::{coded, limits::Body};");
    let resolved: Vec<Vec<String>> = paths.iter().map(|p| resolve(&here, p)).collect();
    assert_eq!(
        resolved,
        vec![
            vec!["web", "context", "coded"],
            vec!["web", "context", "limits", "Body"]
        ]
        .into_iter()
        .map(|p| p.into_iter().map(str::to_owned).collect::<Vec<_>>())
        .collect::<Vec<_>>()
    );
}

#[test]
fn no_source_file_is_past_the_size_of_one_concern() {
    let mut long = Vec::new();
    for krate in ["app", "frontend", "server"] {
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
