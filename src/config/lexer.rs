//! Lexer: configuration text → tokens, each with the line it starts on.
//!
//! nginx syntax. Words are separated by white space and end at `;`, `{` or
//! `}`. A `#` or a quote is special only where a token starts: `#` opens a
//! comment that runs to the end of the line, `"..."` / `'...'` quote a word
//! that may then hold spaces, `;`, braces, `#` and newlines. Inside quotes
//! `\"`, `\'` and `\\` stand for the character after the backslash (a superset
//! of "the quote char and backslash", as nginx does); any other backslash is
//! kept. Unquoted words are literal. Lines count from 1.
//!
//! The lexer stops at its first error; the tokens read so far are still
//! returned so the caller can report further problems in the text before it.

/// What a token is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A word, quoted or not (quotes removed, escapes resolved).
    Word(String),
    /// `;`
    Semi,
    /// `{`
    Open,
    /// `}`
    Close,
}

/// A token and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
}

/// The first lexical error in a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    pub message: String,
    pub line: u32,
}

/// The result of lexing a whole text.
#[derive(Clone, Debug)]
pub(crate) struct Lexed {
    /// Every token before the first error (all of them without one).
    pub tokens: Vec<Token>,
    pub error: Option<LexError>,
    /// The line the text ends on, for "unexpected end of file".
    pub last_line: u32,
}

/// Splits `text` into tokens.
pub(crate) fn lex(text: &str) -> Lexed {
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut line: u32 = 1;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' => {
                line = line.saturating_add(1);
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            b';' | b'{' | b'}' => {
                let tok = match c {
                    b';' => Tok::Semi,
                    b'{' => Tok::Open,
                    _ => Tok::Close,
                };
                tokens.push(Token { tok, line });
                i += 1;
            }
            b'#' => {
                // The newline itself is left for the line counter.
                i = memchr::memchr(b'\n', b.get(i..).unwrap_or_default())
                    .map_or(b.len(), |n| i + n);
            }
            b'"' | b'\'' => {
                let start = line;
                let mut word = Vec::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Lexed {
                                tokens,
                                error: Some(LexError {
                                    message: "unterminated quoted string".to_string(),
                                    line: start,
                                }),
                                last_line: line,
                            };
                        }
                        Some(&q) if q == c => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => match b.get(i + 1) {
                            Some(&n @ (b'"' | b'\'' | b'\\')) => {
                                word.push(n);
                                i += 2;
                            }
                            _ => {
                                word.push(b'\\');
                                i += 1;
                            }
                        },
                        Some(&x) => {
                            if x == b'\n' {
                                line = line.saturating_add(1);
                            }
                            word.push(x);
                            i += 1;
                        }
                    }
                }
                // nginx wants a separator after a closing quote: `"a"b` is an error.
                match b.get(i) {
                    None | Some(b';' | b'{' | b'}') => {}
                    Some(x) if x.is_ascii_whitespace() => {}
                    Some(_) => {
                        let ch = text.get(i..).and_then(|s| s.chars().next()).unwrap_or('?');
                        return Lexed {
                            tokens,
                            error: Some(LexError {
                                message: format!("unexpected \"{ch}\""),
                                line,
                            }),
                            last_line: line,
                        };
                    }
                }
                // Split only at ASCII bytes of a valid `str`, so this is UTF-8.
                let word = String::from_utf8(word)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                tokens.push(Token {
                    tok: Tok::Word(word),
                    line: start,
                });
            }
            _ => {
                let start = i;
                while let Some(&x) = b.get(i) {
                    if x.is_ascii_whitespace() || matches!(x, b';' | b'{' | b'}') {
                        break;
                    }
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or_default().to_string();
                tokens.push(Token {
                    tok: Tok::Word(word),
                    line,
                });
            }
        }
    }
    Lexed {
        tokens,
        error: None,
        last_line: line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str, line: u32) -> Token {
        Token {
            tok: Tok::Word(s.to_string()),
            line,
        }
    }
    fn t(tok: Tok, line: u32) -> Token {
        Token { tok, line }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, Vec<Token>)] = &[
            ("empty", "", vec![]),
            ("blank", "  \t\r\n \n", vec![]),
            (
                "directive",
                "root /x;",
                vec![w("root", 1), w("/x", 1), t(Tok::Semi, 1)],
            ),
            (
                "no spaces around punctuation",
                "a{b;}",
                vec![
                    w("a", 1),
                    t(Tok::Open, 1),
                    w("b", 1),
                    t(Tok::Semi, 1),
                    t(Tok::Close, 1),
                ],
            ),
            (
                "lines",
                "a;\n\nb\n;",
                vec![w("a", 1), t(Tok::Semi, 1), w("b", 3), t(Tok::Semi, 4)],
            ),
            (
                "comment",
                "# hi ; { }\na; # trailing\n#last",
                vec![w("a", 2), t(Tok::Semi, 2)],
            ),
            (
                "hash inside a word is literal",
                "a#b;",
                vec![w("a#b", 1), t(Tok::Semi, 1)],
            ),
            (
                "double quotes hold spaces and ;",
                "x \"a b; {c}\";",
                vec![w("x", 1), w("a b; {c}", 1), t(Tok::Semi, 1)],
            ),
            (
                "single quotes",
                "x 'a \"b\"';",
                vec![w("x", 1), w("a \"b\"", 1), t(Tok::Semi, 1)],
            ),
            (
                "escapes",
                r#"x "a\"b\\c\d" 'it\'s';"#,
                vec![w("x", 1), w(r#"a"b\c\d"#, 1), w("it's", 1), t(Tok::Semi, 1)],
            ),
            (
                "empty quoted word",
                "server_name \"\";",
                vec![w("server_name", 1), w("", 1), t(Tok::Semi, 1)],
            ),
            (
                "quoted word spans lines, keeps start line",
                "x \"a\nb\";\ny;",
                vec![
                    w("x", 1),
                    w("a\nb", 1),
                    t(Tok::Semi, 2),
                    w("y", 3),
                    t(Tok::Semi, 3),
                ],
            ),
            (
                "quote inside a word is literal",
                "a\"b;",
                vec![w("a\"b", 1), t(Tok::Semi, 1)],
            ),
            (
                "utf-8",
                "x \"é ü\" ñ;",
                vec![w("x", 1), w("é ü", 1), w("ñ", 1), t(Tok::Semi, 1)],
            ),
        ];
        for (name, text, want) in cases {
            let got = lex(text);
            assert_eq!(got.error, None, "{name}");
            assert_eq!(&got.tokens, want, "{name}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str, &str, u32)] = &[
            (
                "unterminated",
                "a;\nb \"xyz\n\n",
                "unterminated quoted string",
                2,
            ),
            ("unterminated single", "'", "unterminated quoted string", 1),
            ("glued after quote", "a\n\"b\"c;", "unexpected \"c\"", 2),
            ("comment after quote", "\"b\"#c", "unexpected \"#\"", 1),
        ];
        for (name, text, msg, line) in cases {
            let got = lex(text);
            let err = got.error.unwrap();
            assert_eq!(err.message, *msg, "{name}");
            assert_eq!(err.line, *line, "{name}");
        }
    }

    #[test]
    fn tokens_before_error_kept_and_last_line() {
        let got = lex("a;\nb \"x");
        assert_eq!(got.tokens, vec![w("a", 1), t(Tok::Semi, 1), w("b", 2)]);
        assert_eq!(lex("a;\nb;\n").last_line, 3);
    }
}
