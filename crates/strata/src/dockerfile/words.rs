//! Dockerfile words: quote removal, escapes and variable expansion
//! (`$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`,
//! `${VAR:?msg}`), as Docker's shell lexer does them for ADD, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and heredocs.
//!
//! Written by hand: parse-dockerfile leaves expansion to its user, and
//! Docker's rules (quotes kept as grouping, no word splitting of expanded
//! values, the escape character being `\` or a backtick) are not those of
//! a POSIX shell crate.

use std::collections::HashMap;

/// Variables in scope: ENV of the image under construction over ARGs.
pub type Vars = HashMap<String, String>;

/// A lexer over one instruction's text.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    vars: &'a Vars,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += 1;
        c
    }

    /// Words split on unquoted whitespace; quotes removed, variables expanded.
    fn words(&mut self, split: bool) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut any = false;
        while let Some(c) = self.next() {
            match c {
                c if split && c.is_whitespace() => {
                    if any {
                        out.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                '\'' => {
                    any = true;
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => cur.push(c),
                            None => return Err("unexpected end of statement while looking for matching '".into()),
                        }
                    }
                }
                '"' => {
                    any = true;
                    loop {
                        match self.next() {
                            Some('"') => break,
                            Some('$') => cur.push_str(&self.variable()?),
                            Some(c) if c == self.escape => match self.peek() {
                                Some(n) if n == '"' || n == '$' || n == self.escape => {
                                    cur.push(n);
                                    self.pos += 1;
                                }
                                _ => cur.push(c),
                            },
                            Some(c) => cur.push(c),
                            None => return Err("unexpected end of statement while looking for matching \"".into()),
                        }
                    }
                }
                '$' => {
                    any = true;
                    cur.push_str(&self.variable()?);
                }
                c if c == self.escape => {
                    any = true;
                    if let Some(n) = self.next() {
                        cur.push(n);
                    } else {
                        cur.push(c);
                    }
                }
                c => {
                    any = true;
                    cur.push(c);
                }
            }
        }
        if any {
            out.push(cur);
        }
        Ok(out)
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    /// After a `$`: the variable's value (or `$` itself when no name follows).
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let name = self.name();
                if name.is_empty() {
                    return Err("bad substitution: ${ without a variable name".into());
                }
                let value = self.vars.get(&name);
                match self.next() {
                    Some('}') => Ok(value.cloned().unwrap_or_default()),
                    Some(c @ (':' | '-' | '+' | '?')) => {
                        let colon = c == ':';
                        let op = if colon { self.next().unwrap_or('}') } else { c };
                        if !matches!(op, '-' | '+' | '?') {
                            return Err(format!("unsupported modifier ({op}) in substitution of {name}"));
                        }
                        let word = self.word_until_brace()?;
                        // With `:`, an empty value counts as unset.
                        let set = value.is_some_and(|v| !colon || !v.is_empty());
                        match op {
                            '-' => Ok(if set { value.cloned().unwrap_or_default() } else { word }),
                            '+' => Ok(if set { word } else { String::new() }),
                            _ if set => Ok(value.cloned().unwrap_or_default()),
                            _ if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
                            _ => Err(format!("{name}: {word}")),
                        }
                    }
                    _ => Err(format!("missing '}}' in substitution of {name}")),
                }
            }
            _ => {
                let name = self.name();
                if name.is_empty() {
                    return Ok("$".into());
                }
                Ok(self.vars.get(&name).cloned().unwrap_or_default())
            }
        }
    }

    /// The word of `${VAR:-word}`, itself expanded, up to the closing brace.
    fn word_until_brace(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.next() {
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.variable()?),
                Some(c) if c == self.escape => {
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                Some(c) => out.push(c),
                None => return Err("missing '}' in substitution".into()),
            }
        }
    }
}

/// Expand one word: quotes removed, variables replaced, no splitting.
pub fn expand(text: &str, vars: &Vars, escape: char) -> Result<String, String> {
    let mut l = Lexer { chars: text.chars().collect(), pos: 0, escape, vars };
    Ok(l.words(false)?.into_iter().next().unwrap_or_default())
}

/// Split on unquoted whitespace, then expand each word (values are never re-split).
pub fn split(text: &str, vars: &Vars, escape: char) -> Result<Vec<String>, String> {
    let mut l = Lexer { chars: text.chars().collect(), pos: 0, escape, vars };
    l.words(true)
}

/// Expand variables only (quotes and escapes are text): for heredoc bodies.
pub fn expand_heredoc(text: &str, vars: &Vars) -> Result<String, String> {
    let mut l = Lexer { chars: text.chars().collect(), pos: 0, escape: '\0', vars };
    let mut out = String::new();
    while let Some(c) = l.next() {
        if c == '$' {
            out.push_str(&l.variable()?);
        } else if c == '\\' && l.peek() == Some('$') {
            out.push('$');
            l.pos += 1;
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// `KEY=VALUE ...` pairs (or the legacy `KEY VALUE`) of ENV, LABEL and ARG.
pub fn pairs(text: &str, vars: &Vars, escape: char, legacy: bool) -> Result<Vec<(String, String)>, String> {
    let text = text.trim();
    let first = first_word(text, escape);
    if legacy && !first.contains('=') {
        let rest = text[first.len()..].trim_start();
        if rest.is_empty() {
            return Err(format!("{first} needs a value: want KEY=VALUE or KEY VALUE"));
        }
        return Ok(vec![(expand(first, vars, escape)?, expand(rest, vars, escape)?)]);
    }
    let mut out = Vec::new();
    for w in split(text, vars, escape)? {
        match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => return Err(format!("{w:?}: want KEY=VALUE")),
        }
    }
    Ok(out)
}

/// The first whitespace-separated word of `text` as written (quotes and
/// escapes kept, but whitespace inside them not ending it): what Docker
/// looks at to tell `KEY=VALUE ...` from the legacy `KEY VALUE`.
fn first_word(text: &str, escape: char) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == escape && quote != Some('\'') {
            escaped = true;
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == '"' || c == '\'') {
            quote = Some(c);
        } else if quote.is_none() && c.is_whitespace() {
            return &text[..i];
        }
    }
    text
}

/// Join the lines of a shell-form command the way Docker does: an escape
/// character at the end of a line continues it (both are removed), and
/// comment lines inside the continuation are dropped.
pub fn join_continuations(text: &str, escape: char) -> String {
    let mut out = String::new();
    let mut lines = text.split('\n').peekable();
    let mut continuing = false;
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if continuing && line.trim_start().starts_with('#') {
            continue;
        }
        let trimmed = line.trim_end();
        if let Some(body) = trimmed.strip_suffix(escape) {
            out.push_str(body);
            continuing = true;
        } else {
            out.push_str(line);
            continuing = false;
            if lines.peek().is_some() {
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoted_keys_with_spaces_are_the_key_value_form() {
        let vars = super::Vars::new();
        let p = super::pairs(r#""x y"=z other='a b'"#, &vars, '\\', true).unwrap();
        assert_eq!(p, vec![("x y".to_string(), "z".to_string()), ("other".to_string(), "a b".to_string())]);
        let p = super::pairs("KEY some value", &vars, '\\', true).unwrap();
        assert_eq!(p, vec![("KEY".to_string(), "some value".to_string())]);
    }

    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("B", "two words"), ("E", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn expansion() {
        let v = vars();
        let x = |s: &str| expand(s, &v, '\\').unwrap();
        assert_eq!(x("$A"), "1");
        assert_eq!(x("${A}x"), "1x");
        assert_eq!(x("$Ax"), "");
        assert_eq!(x("${MISSING:-d}"), "d");
        assert_eq!(x("${E:-d}"), "d");
        assert_eq!(x("${E-d}"), "");
        assert_eq!(x("${A:+set}"), "set");
        assert_eq!(x("${MISSING:+set}"), "");
        assert_eq!(x("${MISSING:-${A}}"), "1");
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A\""), "1");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("a$"), "a$");
        assert_eq!(x("\"a\\\"b\""), "a\"b");
        assert!(expand("${MISSING:?need it}", &v, '\\').unwrap_err().contains("need it"));
        assert!(expand("${A", &v, '\\').is_err());
        assert!(expand("\"open", &v, '\\').is_err());
        assert_eq!(expand("`$A", &v, '`').unwrap(), "$A");
    }

    #[test]
    fn splitting_never_resplits_values() {
        let v = vars();
        assert_eq!(split("$B \"x y\" z", &v, '\\').unwrap(), vec!["two words", "x y", "z"]);
        assert_eq!(
            pairs("K=$B L=\"a b\" M=", &v, '\\', true).unwrap(),
            vec![("K".into(), "two words".into()), ("L".into(), "a b".into()), ("M".into(), "".into())]
        );
        assert_eq!(pairs("K a  b", &v, '\\', true).unwrap(), vec![("K".into(), "a  b".into())]);
        assert!(pairs("=x", &v, '\\', true).is_err());
    }

    #[test]
    fn continuations() {
        assert_eq!(join_continuations("echo a \\\n  && echo b", '\\'), "echo a   && echo b");
        assert_eq!(join_continuations("a \\\n# note\n b", '\\'), "a  b");
        assert_eq!(join_continuations("x `\n y", '`'), "x  y");
        assert_eq!(expand_heredoc("hi $A \\$A '$A'", &vars()).unwrap(), "hi 1 $A '1'");
    }
}
