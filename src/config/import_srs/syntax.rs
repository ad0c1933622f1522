//! SRS's config syntax: the bounded lexer and parser of `import-srs` (nginx-style words,
//! `;`-ended directives, `{ }` blocks, `#` comments, quotes, `include FILE;`).

/// Deepest block nesting accepted (SRS's own configs go 4 deep: vhost/transcode/engine/vparams).
pub(super) const MAX_DEPTH: usize = 16;
/// Deepest chain of `include`s.
pub(super) const MAX_INCLUDE_DEPTH: usize = 8;
/// Most directives in a config with its includes.
pub(super) const MAX_DIRECTIVES: usize = 100_000;
/// Most bytes read, all files together.
pub(super) const MAX_BYTES: usize = 16 << 20;

/// Where a directive was written: file name, 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// One SRS directive: `name args...;` or `name args... { block }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// `Some` for a `{ ... }` block (possibly empty).
    pub block: Option<Vec<Directive>>,
    pub at: Pos,
}

impl Directive {
    pub(super) fn arg(&self, i: usize) -> &str {
        self.args.get(i).map_or("", String::as_str)
    }

    pub(super) fn children(&self) -> &[Directive] {
        self.block.as_deref().unwrap_or(&[])
    }

    /// The directive as SRS would print it, for comments.
    pub(super) fn shown(&self) -> String {
        let mut s = std::iter::once(self.name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ");
        s.push_str(if self.block.is_some() {
            " { ... }"
        } else {
            ";"
        });
        clean(&s)
    }
}

/// `s` fit for a TOML comment: one line, no control characters (TOML forbids them there).
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A config that cannot be read: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub at: Pos,
    pub message: String,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Semi,
    Open,
    Close,
}

/// Splits SRS config text into tokens with their line and column.
fn lex(text: &str, file: &str) -> Result<Vec<(Token, Pos)>, ImportError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let (mut line, mut col) = (1usize, 1usize);
    let at = |line, col| Pos {
        file: file.to_string(),
        line,
        col,
    };
    let mut word = String::new();
    let mut word_at = at(1, 1);
    let flush = |word: &mut String, out: &mut Vec<(Token, Pos)>, word_at: &Pos| {
        if !word.is_empty() {
            out.push((Token::Word(std::mem::take(word)), word_at.clone()));
        }
    };
    while let Some(c) = chars.next() {
        let here = at(line, col);
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
        match c {
            '#' => {
                flush(&mut word, &mut out, &word_at);
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                    col += 1;
                }
            }
            ';' | '{' | '}' => {
                flush(&mut word, &mut out, &word_at);
                let t = match c {
                    ';' => Token::Semi,
                    '{' => Token::Open,
                    _ => Token::Close,
                };
                out.push((t, here));
            }
            '"' | '\'' => {
                if word.is_empty() {
                    word_at = here.clone();
                }
                let mut closed = false;
                for q in chars.by_ref() {
                    if q == '\n' {
                        line += 1;
                        col = 1;
                    } else {
                        col += 1;
                    }
                    if q == c {
                        closed = true;
                        break;
                    }
                    word.push(q);
                }
                if !closed {
                    return Err(ImportError {
                        at: here,
                        message: format!("unterminated {c} string"),
                    });
                }
                // `""` is an empty word, as SRS reads it.
                if word.is_empty() {
                    out.push((Token::Word(String::new()), here));
                }
            }
            c if c.is_whitespace() => flush(&mut word, &mut out, &word_at),
            c => {
                if word.is_empty() {
                    word_at = here;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut out, &word_at);
    Ok(out)
}

/// Reads `include`d files: given the name written in the config, returns the name to show
/// and the text, or why it cannot.
pub type IncludeLoader<'a> = dyn FnMut(&str) -> Result<(String, String), String> + 'a;

struct Parser<'a, 'b> {
    load: &'a mut IncludeLoader<'b>,
    directives: usize,
    bytes: usize,
}

impl Parser<'_, '_> {
    fn file(
        &mut self,
        text: &str,
        file: &str,
        depth: usize,
        includes: usize,
    ) -> Result<Vec<Directive>, ImportError> {
        self.bytes += text.len();
        if self.bytes > MAX_BYTES {
            return Err(ImportError {
                at: Pos {
                    file: file.to_string(),
                    line: 1,
                    col: 1,
                },
                message: format!("the config with its includes is over {MAX_BYTES} bytes"),
            });
        }
        let tokens = lex(text, file)?;
        let mut i = 0;
        let list = self.block(&tokens, &mut i, depth, includes)?;
        if let Some((_, at)) = tokens.get(i) {
            return Err(ImportError {
                at: at.clone(),
                message: "unexpected \"}\"".into(),
            });
        }
        Ok(list)
    }

    /// Directives up to a `}` (left in place) or the end.
    fn block(
        &mut self,
        tokens: &[(Token, Pos)],
        i: &mut usize,
        depth: usize,
        includes: usize,
    ) -> Result<Vec<Directive>, ImportError> {
        let mut list = Vec::new();
        loop {
            let Some((token, at)) = tokens.get(*i) else {
                return Ok(list);
            };
            let name = match token {
                Token::Close => return Ok(list),
                Token::Word(w) => w.clone(),
                Token::Semi => {
                    // An empty statement; SRS refuses it, nothing is lost by skipping it.
                    *i += 1;
                    continue;
                }
                Token::Open => {
                    return Err(ImportError {
                        at: at.clone(),
                        message: "a block without a directive name".into(),
                    })
                }
            };
            self.directives += 1;
            if self.directives > MAX_DIRECTIVES {
                return Err(ImportError {
                    at: at.clone(),
                    message: format!("more than {MAX_DIRECTIVES} directives"),
                });
            }
            let start = at.clone();
            *i += 1;
            let mut args = Vec::new();
            let block = loop {
                match tokens.get(*i) {
                    Some((Token::Word(w), _)) => {
                        args.push(w.clone());
                        *i += 1;
                    }
                    Some((Token::Semi, _)) => {
                        *i += 1;
                        break None;
                    }
                    Some((Token::Open, at)) => {
                        if depth + 1 > MAX_DEPTH {
                            return Err(ImportError {
                                at: at.clone(),
                                message: format!("blocks nested deeper than {MAX_DEPTH}"),
                            });
                        }
                        *i += 1;
                        let inner = self.block(tokens, i, depth + 1, includes)?;
                        match tokens.get(*i) {
                            Some((Token::Close, _)) => *i += 1,
                            _ => {
                                return Err(ImportError {
                                    at: start,
                                    message: format!("block \"{name}\" is not closed"),
                                })
                            }
                        }
                        break Some(inner);
                    }
                    Some((Token::Close, at)) => {
                        return Err(ImportError {
                            at: at.clone(),
                            message: format!("\"{name}\" needs \";\" before \"}}\""),
                        })
                    }
                    None => {
                        return Err(ImportError {
                            at: start,
                            message: format!("\"{name}\" needs \";\" at the end"),
                        })
                    }
                }
            };
            if name == "include" && block.is_none() {
                if includes + 1 > MAX_INCLUDE_DEPTH {
                    return Err(ImportError {
                        at: start,
                        message: format!("includes nested deeper than {MAX_INCLUDE_DEPTH}"),
                    });
                }
                for target in &args {
                    let (shown, text) = (self.load)(target).map_err(|why| ImportError {
                        at: start.clone(),
                        message: format!("include {target}: {why}"),
                    })?;
                    list.extend(self.file(&text, &shown, depth, includes + 1)?);
                }
                continue;
            }
            list.push(Directive {
                name,
                args,
                block,
                at: start,
            });
        }
    }
}

/// Parses SRS config text; `load` reads the files `include` names.
pub fn parse(
    text: &str,
    file: &str,
    load: &mut IncludeLoader<'_>,
) -> Result<Vec<Directive>, ImportError> {
    Parser {
        load,
        directives: 0,
        bytes: 0,
    }
    .file(text, file, 0, 0)
}
