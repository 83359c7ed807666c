//! Tokens → a tree of directives, with `include` expanded in place.
//!
//! Every node remembers the file it came from (an index into
//! `Reader::sources`) and the line its name stands on, so any later error
//! can be reported as `FILE:LINE`, also inside included files. Syntax errors
//! are collected and the tree read so far is kept (an unclosed block is
//! closed at the end of its file), so meaning errors elsewhere are reported
//! too. Blocks are built with an explicit stack: no recursion on nesting.

use std::path::{Component, Path, PathBuf};

use super::ConfigError;
use super::lexer::{Tok, lex};

/// How deep `include` may nest (guards against a file including itself).
const MAX_INCLUDE_DEPTH: usize = 16;

/// How deep blocks may nest in one file. The grammar needs 3 (server →
/// location, or types); deeper blocks are refused and their contents
/// dropped, so no later recursion over the tree (walk, drop) can run deep.
const MAX_BLOCK_DEPTH: usize = 8;

/// One configuration file (or text) that was read.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    /// The name used in messages: as given on the command line for the main
    /// file, the resolved path for an included one.
    pub name: String,
    /// The folder relative paths in it resolve against.
    pub dir: PathBuf,
}

/// One directive: `name args... ;` or `name args... { block }`.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub name: String,
    pub args: Vec<String>,
    pub line: u32,
    /// Index into `Reader::sources`.
    pub src: usize,
    /// `Some` for a block directive.
    pub block: Option<Vec<Node>>,
}

/// Reads texts and included files into trees, collecting errors.
#[derive(Debug)]
pub(crate) struct Reader {
    pub sources: Vec<Source>,
    pub errors: Vec<ConfigError>,
    /// `false` makes every `include` an error (the fuzz test must not read
    /// arbitrary files).
    includes: bool,
    depth: usize,
    /// The included files being read now (canonical when possible), to
    /// refuse a cycle before it multiplies.
    active: Vec<PathBuf>,
}

/// An open block while its tokens are read.
struct Frame {
    name: String,
    args: Vec<String>,
    line: u32,
    children: Vec<Node>,
    /// `false` for a `{` that had no name; its contents are dropped.
    named: bool,
}

impl Reader {
    /// A reader; `includes` says whether `include` may read files.
    pub(crate) fn new(includes: bool) -> Reader {
        Reader {
            sources: Vec::new(),
            errors: Vec::new(),
            includes,
            depth: 0,
            active: Vec::new(),
        }
    }

    /// Records an error at `src`:`line`.
    pub(crate) fn error(&mut self, src: usize, line: u32, message: String) {
        let file = self
            .sources
            .get(src)
            .map_or_else(String::new, |s| s.name.clone());
        self.errors.push(ConfigError {
            message,
            file,
            line,
        });
    }

    /// Reads one text named `name` whose relative paths resolve against `dir`.
    pub(crate) fn read_text(&mut self, text: &str, name: String, dir: PathBuf) -> Vec<Node> {
        let src = self.sources.len();
        self.sources.push(Source { name, dir });
        let lexed = lex(text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        let mut words: Vec<(String, u32)> = Vec::new();
        for token in lexed.tokens {
            match token.tok {
                Tok::Word(w) => words.push((w, token.line)),
                Tok::Semi => {
                    let mut it = std::mem::take(&mut words).into_iter();
                    let Some((name, line)) = it.next() else {
                        self.error(src, token.line, "unexpected \";\"".to_string());
                        continue;
                    };
                    let node = Node {
                        name,
                        args: it.map(|(w, _)| w).collect(),
                        line,
                        src,
                        block: None,
                    };
                    let out = stack.last_mut().map_or(&mut top, |f| &mut f.children);
                    if node.name == "include" {
                        self.include(&node, out);
                    } else {
                        out.push(node);
                    }
                }
                Tok::Open => {
                    let mut it = std::mem::take(&mut words).into_iter();
                    let first = it.next();
                    if first.is_some() && stack.len() == MAX_BLOCK_DEPTH {
                        self.error(src, token.line, "blocks nested too deep".to_string());
                    }
                    let frame = match first {
                        Some((name, line)) if stack.len() < MAX_BLOCK_DEPTH => Frame {
                            name,
                            args: it.map(|(w, _)| w).collect(),
                            line,
                            children: Vec::new(),
                            named: true,
                        },
                        Some((_, line)) => Frame {
                            name: String::new(),
                            args: Vec::new(),
                            line,
                            children: Vec::new(),
                            named: false,
                        },
                        None => {
                            self.error(src, token.line, "unexpected \"{\"".to_string());
                            Frame {
                                name: String::new(),
                                args: Vec::new(),
                                line: token.line,
                                children: Vec::new(),
                                named: false,
                            }
                        }
                    };
                    stack.push(frame);
                }
                Tok::Close => {
                    if !words.is_empty() {
                        // `root /x }`: the `;` is missing.
                        words.clear();
                        self.error(src, token.line, "unexpected \"}\"".to_string());
                    }
                    match stack.pop() {
                        Some(frame) => close(frame, src, &mut stack, &mut top),
                        None => self.error(src, token.line, "unexpected \"}\"".to_string()),
                    }
                }
            }
        }
        match lexed.error {
            Some(e) => self.error(src, e.line, e.message),
            None => {
                if !words.is_empty() {
                    self.error(
                        src,
                        lexed.last_line,
                        "unexpected end of file, expecting \";\" or \"}\"".to_string(),
                    );
                } else if !stack.is_empty() {
                    self.error(
                        src,
                        lexed.last_line,
                        "unexpected end of file, expecting \"}\"".to_string(),
                    );
                }
            }
        }
        // Keep what was read of unclosed blocks, so later checks still see it.
        while let Some(frame) = stack.pop() {
            close(frame, src, &mut stack, &mut top);
        }
        top
    }

    /// Expands `include PATTERN;` (relative to the including file's folder)
    /// into `out`. A pattern with `*` or `?` may match nothing; one without
    /// must name a readable file.
    fn include(&mut self, node: &Node, out: &mut Vec<Node>) {
        let [pattern] = node.args.as_slice() else {
            self.error(
                node.src,
                node.line,
                "invalid number of arguments in \"include\" directive".to_string(),
            );
            return;
        };
        if !self.includes {
            self.error(
                node.src,
                node.line,
                "\"include\" is disabled here".to_string(),
            );
            return;
        }
        if self.depth >= MAX_INCLUDE_DEPTH {
            self.error(
                node.src,
                node.line,
                format!("include of \"{pattern}\" nested too deep (does a file include itself?)"),
            );
            return;
        }
        let dir = self
            .sources
            .get(node.src)
            .map_or_else(PathBuf::new, |s| s.dir.clone());
        let full = dir.join(pattern);
        let files = if pattern.contains(['*', '?']) {
            glob(&full)
        } else {
            vec![full]
        };
        for file in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if self.active.contains(&key) {
                self.error(
                    node.src,
                    node.line,
                    format!(
                        "include cycle: \"{}\" is already being read",
                        file.display()
                    ),
                );
                continue;
            }
            match std::fs::read(&file) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let file_dir = file.parent().map_or_else(PathBuf::new, Path::to_path_buf);
                    self.depth += 1;
                    self.active.push(key);
                    let nodes = self.read_text(&text, file.display().to_string(), file_dir);
                    self.active.pop();
                    self.depth -= 1;
                    out.extend(nodes);
                }
                Err(e) => self.error(
                    node.src,
                    node.line,
                    format!("open() \"{}\" failed ({e})", file.display()),
                ),
            }
        }
    }
}

/// Turns a finished frame into a node of its parent.
fn close(frame: Frame, src: usize, stack: &mut [Frame], top: &mut Vec<Node>) {
    if !frame.named {
        return;
    }
    let node = Node {
        name: frame.name,
        args: frame.args,
        line: frame.line,
        src,
        block: Some(frame.children),
    };
    stack.last_mut().map_or(top, |f| &mut f.children).push(node);
}

/// The regular files matching `pattern`, whose components may hold `*`
/// (any run of bytes) and `?` (one byte), sorted per folder level. As in
/// glob(3) a wildcard does not match a leading `.`.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::new()];
    for comp in pattern.components() {
        match comp {
            Component::Normal(part)
                if part
                    .as_encoded_bytes()
                    .iter()
                    .any(|b| matches!(b, b'*' | b'?')) =>
            {
                let pat = part.as_encoded_bytes();
                let mut next = Vec::new();
                for base in &paths {
                    let dir = if base.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        base.as_path()
                    };
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    let mut names: Vec<_> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name())
                        .filter(|n| {
                            let n = n.as_encoded_bytes();
                            (pat.first() == Some(&b'.') || n.first() != Some(&b'.'))
                                && wild_match(pat, n)
                        })
                        .collect();
                    names.sort();
                    next.extend(names.into_iter().map(|n| base.join(n)));
                }
                paths = next;
            }
            other => {
                for p in &mut paths {
                    p.push(other.as_os_str());
                }
            }
        }
    }
    paths.retain(|p| p.is_file());
    paths
}

/// Whether `name` matches `pat` (`*` any run, `?` one byte), by the usual
/// linear backtracking over the last `*`.
pub(crate) fn wild_match(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Vec<Node>, Vec<ConfigError>) {
        let mut r = Reader::new(false);
        let nodes = r.read_text(text, "t.conf".to_string(), PathBuf::from("/nowhere"));
        (nodes, r.errors)
    }

    fn msgs(errors: &[ConfigError]) -> Vec<(String, u32)> {
        errors.iter().map(|e| (e.message.clone(), e.line)).collect()
    }

    #[test]
    fn builds_blocks() {
        let (nodes, errors) = read("a 1;\nb {\n c 2 3;\n d { }\n}\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].name, "a");
        assert_eq!(nodes[0].args, vec!["1"]);
        assert!(nodes[0].block.is_none());
        let b = nodes[1].block.as_ref().unwrap();
        assert_eq!(nodes[1].line, 2);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].name.as_str(), b[0].line), ("c", 3));
        assert_eq!(b[1].block.as_ref().unwrap().len(), 0);
    }

    #[test]
    fn syntax_errors() {
        let cases: &[(&str, &[(&str, u32)])] = &[
            ("}", &[("unexpected \"}\"", 1)]),
            (
                "a;\n}\nb;\n}",
                &[("unexpected \"}\"", 2), ("unexpected \"}\"", 4)],
            ),
            (
                "a {\n b;\n",
                &[("unexpected end of file, expecting \"}\"", 3)],
            ),
            (
                "a b",
                &[("unexpected end of file, expecting \";\" or \"}\"", 1)],
            ),
            ("a {\n root /x\n}", &[("unexpected \"}\"", 3)]),
            (";", &[("unexpected \";\"", 1)]),
            ("\n{ }", &[("unexpected \"{\"", 2)]),
            ("a \"b;\n", &[("unterminated quoted string", 1)]),
        ];
        for (text, want) in cases {
            let (_, errors) = read(text);
            let want: Vec<(String, u32)> = want.iter().map(|(m, l)| (m.to_string(), *l)).collect();
            assert_eq!(msgs(&errors), want, "{text:?}");
            assert!(errors.iter().all(|e| e.file == "t.conf"));
        }
    }

    #[test]
    fn partial_tree_kept() {
        let (nodes, errors) = read("server {\n listen 80;\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(nodes[0].block.as_ref().unwrap()[0].name, "listen");
    }

    #[test]
    fn wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "abc", true),
            ("*.conf", "a.conf", true),
            ("*.conf", ".conf", true),
            ("*.conf", "a.confx", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("**x", "yyx", true),
            ("*a*a*a", "aaaa", true),
            ("", "", true),
            ("", "a", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(wild_match(p.as_bytes(), n.as_bytes()), *want, "{p} {n}");
        }
    }

    #[test]
    fn include_disabled_and_arg_count() {
        let (_, errors) = read("include a b;\ninclude x;");
        assert_eq!(
            msgs(&errors),
            vec![
                (
                    "invalid number of arguments in \"include\" directive".to_string(),
                    1
                ),
                ("\"include\" is disabled here".to_string(), 2)
            ]
        );
    }
}
