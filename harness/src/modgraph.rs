//! Import cycles between the modules of a crate, found from its source text.
//!
//! A cycle between modules means neither can be understood, tested or moved without the
//! other; the crates of this project keep their module graphs acyclic, and a unit test runs
//! [`find_cycles`] on the harness's `src/`. It works on any crate's `src/` tree.
//!
//! The rule: among the children of any module (the crate root's top-level modules, a
//! folder module's files), each child standing for its whole subtree, references must not
//! form a cycle. References are the `crate::`, `super::` and `self::` paths in code (`use`
//! trees expanded; comments and string literals ignored) and, in a module's own file, paths
//! that start with the name of one of its child modules. A path counts towards the deepest
//! module it names. Referring to an ancestor (`super::Item` of a submodule, a facade's
//! re-exports) is not a cycle: a module and its submodules are one unit from outside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Why the module graph could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct ModGraphError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// A module path inside the crate: `[]` is the crate root, `["report", "html"]` is
/// `crate::report::html`.
pub type ModPath = Vec<String>;

/// One reference that makes an edge: where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub file: PathBuf,
    pub line: usize,
    /// The path as written, expanded (`crate::spec::Source`).
    pub path: String,
}

/// A cycle among sibling modules: the modules (as `a::b`) and one reference per edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub modules: Vec<String>,
    pub edges: Vec<(String, String, Reference)>,
}

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cycle between {}:", self.modules.join(", "))?;
        for (from, to, r) in &self.edges {
            write!(f, "\n  {from} -> {to} ({}:{}: {})", r.file.display(), r.line, r.path)?;
        }
        Ok(())
    }
}

/// Finds the import cycles among sibling modules of the crate whose sources are under `src`
/// (`lib.rs` is the root; `main.rs` and `bin/` are other crates and are skipped when a
/// `lib.rs` exists).
pub fn find_cycles(src: &Path) -> Result<Vec<Cycle>, ModGraphError> {
    let mut files = Vec::new();
    collect_files(src, &mut files)?;
    let has_lib = src.join("lib.rs").exists();
    let mut modules: BTreeMap<ModPath, PathBuf> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap_or(&file).to_path_buf();
        if has_lib && (rel == Path::new("main.rs") || rel.starts_with("bin")) {
            continue;
        }
        modules.insert(module_path(&rel), file);
    }
    let known: BTreeSet<ModPath> = modules.keys().cloned().collect();
    // Edges between modules, with the first reference seen for each.
    let mut edges: BTreeMap<(ModPath, ModPath), Reference> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file)
            .map_err(|source| ModGraphError { path: file.clone(), source })?;
        for (line, path) in references(&code_only(&text)) {
            let Some(target) = resolve(module, &path, &known) else { continue };
            if &target != module {
                let reference = Reference { file: file.clone(), line, path: path.join("::") };
                edges.entry((module.clone(), target)).or_insert(reference);
            }
        }
    }
    // Every module with children: is there a cycle among them?
    let mut cycles = Vec::new();
    let parents: BTreeSet<ModPath> =
        known.iter().filter(|m| !m.is_empty()).map(|m| m[..m.len() - 1].to_vec()).collect();
    for parent in parents {
        let child_of = |m: &ModPath| -> Option<String> {
            (m.len() > parent.len() && m.starts_with(&parent)).then(|| m[parent.len()].clone())
        };
        let mut graph: BTreeMap<String, BTreeMap<String, (ModPath, ModPath)>> = BTreeMap::new();
        for (from, to) in edges.keys() {
            if let (Some(a), Some(b)) = (child_of(from), child_of(to))
                && a != b
            {
                graph.entry(a).or_default().entry(b).or_insert((from.clone(), to.clone()));
            }
        }
        for component in strongly_connected(&graph) {
            let name = |child: &str| {
                parent.iter().map(String::as_str).chain([child]).collect::<Vec<_>>().join("::")
            };
            let mut cycle_edges = Vec::new();
            for a in &component {
                for (b, key) in graph.get(a).into_iter().flatten() {
                    if component.contains(b) {
                        cycle_edges.push((name(a), name(b), edges[key].clone()));
                    }
                }
            }
            cycles.push(Cycle {
                modules: component.iter().map(|c| name(c)).collect(),
                edges: cycle_edges,
            });
        }
    }
    Ok(cycles)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ModGraphError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|source| ModGraphError { path: dir.to_path_buf(), source })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `lib.rs` → root, `a.rs` and `a/mod.rs` → `a`, `a/b.rs` → `a::b`.
fn module_path(rel: &Path) -> ModPath {
    let mut parts: Vec<String> =
        rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The deepest known module a path names, seen from `module`.
fn resolve(module: &ModPath, path: &[String], known: &BTreeSet<ModPath>) -> Option<ModPath> {
    let (first, rest) = path.split_first()?;
    let mut base: ModPath = match first.as_str() {
        "crate" => Vec::new(),
        "self" => module.clone(),
        "super" => {
            let mut base = module.clone();
            base.pop()?;
            base
        }
        // A path starting with a child module's name; failing that, a sibling's, as a
        // `use super::*;` brings the siblings into scope (the files of a module's folder
        // commonly start so).
        name => {
            let mut child = module.clone();
            child.push(name.to_string());
            if known.contains(&child) {
                child
            } else {
                let mut sibling = module.clone();
                sibling.pop()?;
                sibling.push(name.to_string());
                if !known.contains(&sibling) || sibling == *module {
                    return None;
                }
                sibling
            }
        }
    };
    let mut rest = rest.iter().peekable();
    while rest.peek().is_some_and(|s| s.as_str() == "super") {
        rest.next();
        base.pop()?;
    }
    let mut deepest = base.clone();
    for segment in rest {
        base.push(segment.clone());
        if known.contains(&base) {
            deepest = base.clone();
        } else {
            break;
        }
    }
    Some(deepest)
}

/// The source with comments and the contents of string and char literals blanked (line
/// ends kept, so lines still count).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            // Past the opening quote, and past an escaped character (`'\''`).
            i += if next == Some('\\') { 3 } else { 1 };
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every module path in the code, with its line: `use` trees expanded, and `crate::`,
/// `super::`, `self::` paths elsewhere.
fn references(code: &str) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let bytes = code.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    let mut use_ends = Vec::new();
    // `use` declarations.
    while let Some(found) = code[i..].find("use ") {
        let at = i + found;
        i = at + 4;
        if at > 0 && is_ident(bytes[at - 1]) {
            continue;
        }
        let Some(end) = code[at..].find(';') else { break };
        let tree: String = code[at + 4..at + end].chars().filter(|c| !c.is_whitespace()).collect();
        for path in expand_use(&tree) {
            out.push((line_of(at), path));
        }
        use_ends.push((at, at + end));
        i = at + end;
    }
    // Paths in code.
    let mut i = 0;
    while i < bytes.len() {
        if (i == 0 || !is_ident(bytes[i - 1]))
            && ["crate::", "super::", "self::"].iter().any(|p| code[i..].starts_with(p))
            && !use_ends.iter().any(|(a, b)| (*a..*b).contains(&i))
        {
            let mut j = i;
            let mut segments = Vec::new();
            loop {
                let s = j;
                while j < bytes.len() && is_ident(bytes[j]) {
                    j += 1;
                }
                if s == j {
                    break;
                }
                segments.push(code[s..j].to_string());
                if code[j..].starts_with("::") {
                    j += 2;
                } else {
                    break;
                }
            }
            out.push((line_of(i), segments));
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Expands a `use` tree without whitespace (`crate::{a::B,c::{d,e}}`) into paths; `as`
/// renames, `self` and `*` leaves end the path.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim_start_matches("pub(crate)").trim_start_matches("::");
    let mut out = Vec::new();
    expand_into(tree, &mut Vec::new(), &mut out);
    out
}

fn expand_into(tree: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let Some(brace) = tree.find('{') else {
        let mut path = prefix.clone();
        let plain = tree.split("as").next().unwrap_or(tree);
        path.extend(
            plain
                .split("::")
                .filter(|s| !s.is_empty() && *s != "*" && *s != "self")
                .map(String::from),
        );
        if !path.is_empty() {
            out.push(path);
        }
        return;
    };
    let head: Vec<String> =
        tree[..brace].split("::").filter(|s| !s.is_empty()).map(String::from).collect();
    let inner = tree[brace + 1..].strip_suffix('}').unwrap_or(&tree[brace + 1..]);
    let depth = prefix.len();
    prefix.extend(head);
    let mut level = 0;
    let mut start = 0;
    for (k, c) in inner.char_indices() {
        match c {
            '{' => level += 1,
            '}' => level -= 1,
            ',' if level == 0 => {
                expand_into(&inner[start..k], prefix, out);
                start = k + 1;
            }
            _ => {}
        }
    }
    if start < inner.len() {
        expand_into(&inner[start..], prefix, out);
    }
    prefix.truncate(depth);
}

/// The strongly connected components with more than one node (Tarjan).
fn strongly_connected<V: std::hash::Hash>(
    graph: &BTreeMap<String, BTreeMap<String, V>>,
) -> Vec<Vec<String>> {
    struct State<'g> {
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g, V>(
        v: &'g str,
        graph: &'g BTreeMap<String, BTreeMap<String, V>>,
        s: &mut State<'g>,
    ) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in graph.get(v).into_iter().flat_map(|m| m.keys()) {
            if !s.index.contains_key(w.as_str()) {
                visit(w, graph, s);
                let lw = s.low[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn cycles(files: &[(&str, &str)]) -> Vec<Vec<String>> {
        let dir = tree(files);
        find_cycles(dir.path()).expect("readable").into_iter().map(|c| c.modules).collect()
    }

    #[rstest]
    #[case::none(&[("lib.rs", "mod a; mod b;"), ("a.rs", "use crate::b::X;"), ("b.rs", "pub struct X;")], "")]
    #[case::two_files(&[("lib.rs", ""), ("a.rs", "use crate::b::X;"), ("b.rs", "fn f() { crate::a::g() }")], "a,b")]
    #[case::use_tree(&[("lib.rs", ""), ("a.rs", "use crate::{c, b::{X, Y}};"), ("b.rs", "use crate::a;"), ("c.rs", "")], "a,b")]
    #[case::through_a_submodule(&[("lib.rs", ""), ("a.rs", "use crate::p::X;"), ("p/mod.rs", "mod v; pub use v::X;"), ("p/v.rs", "use crate::a::Y;")], "a,p")]
    #[case::siblings_in_a_folder(&[("lib.rs", ""), ("r/mod.rs", ""), ("r/h.rs", "use super::t::T;"), ("r/t.rs", "use super::h::h;")], "r::h,r::t")]
    #[case::parent_and_child_are_one_unit(&[("lib.rs", ""), ("p/mod.rs", "mod c; pub use c::X; pub struct Y;"), ("p/c.rs", "use super::Y;")], "")]
    #[case::comments_and_strings_do_not_count(&[("lib.rs", ""), ("a.rs", "/// see [`crate::b`]\nconst S: &str = \"crate::b\"; // crate::b\nconst R: &str = r#\"crate::b\"#;"), ("b.rs", "use crate::a;")], "")]
    #[case::escaped_quote_chars(&[("lib.rs", ""), ("a.rs", "const Q: char = '\\''; const C: &str = \"x\"; fn f() -> crate::b::X { todo!() }"), ("b.rs", "use crate::a;")], "a,b")]
    #[case::lifetimes_are_not_chars(&[("lib.rs", ""), ("a.rs", "fn f<'x>(s: &'x str) -> crate::b::X { todo!() }"), ("b.rs", "use crate::a;")], "a,b")]
    #[case::siblings_through_a_glob(&[("lib.rs", ""), ("r/mod.rs", ""), ("r/h.rs", "use super::*;\nuse t::T;"), ("r/t.rs", "use super::*;\nuse h::H;")], "r::h,r::t")]
    #[case::three(&[("lib.rs", ""), ("a.rs", "use crate::b;"), ("b.rs", "use crate::c;"), ("c.rs", "use crate::a;")], "a,b,c")]
    #[case::main_is_another_crate(&[("lib.rs", ""), ("main.rs", "use crate::a;"), ("a.rs", "use crate::b;"), ("b.rs", "")], "")]
    fn finds_cycles_among_siblings(#[case] files: &[(&str, &str)], #[case] want: &str) {
        let found: Vec<String> = cycles(files).iter().map(|c| c.join(",")).collect();
        assert_eq!(found.join(" | "), want);
    }

    #[test]
    fn a_cycle_names_its_references() {
        let dir =
            tree(&[("lib.rs", ""), ("a.rs", "\nuse crate::b::X;"), ("b.rs", "use crate::a::Y;")]);
        let found = find_cycles(dir.path()).expect("readable");
        let text = found[0].to_string();
        assert!(text.contains("a -> b (") && text.contains("a.rs:2: crate::b::X"), "{text}");
    }

    /// The harness's own modules form no cycle.
    #[test]
    fn the_harness_has_no_import_cycles() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let found = find_cycles(&src).expect("readable");
        let text: Vec<String> = found.iter().map(Cycle::to_string).collect();
        assert!(found.is_empty(), "{}", text.join("\n"));
    }
}
