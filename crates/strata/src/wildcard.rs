//! Shell-style wildcards as Docker's Go `filepath.Match` means them — `*`
//! (any run), `?` (one character), `[...]` and `[!...]` classes, `\`
//! escapes; `**` as a whole path element for any number of them — matched
//! in time linear in the text: the pattern is compiled to a regex automaton
//! by `globset`. (The `glob` crate's matcher backtracks: a `.dockerignore`
//! line of many `*` took seconds per path, found by fuzzing; Dockerfiles,
//! contexts and filters are input from outside.) `{` and `}` are literal,
//! as in Go, not globset's alternation.

use globset::{GlobBuilder, GlobMatcher};

/// A compiled wildcard pattern.
#[derive(Debug, Clone)]
pub struct Wildcard(GlobMatcher);

impl Wildcard {
    /// Compile `pattern`; with `within_element`, `*` and `?` never match
    /// `/` (`filepath.Match`), otherwise they match any character.
    /// The error says what is wrong with the pattern.
    pub fn new(pattern: &str, within_element: bool) -> Result<Self, String> {
        let mut literal_braces = String::with_capacity(pattern.len());
        let mut escaped = false;
        for c in pattern.chars() {
            if !escaped && (c == '{' || c == '}') {
                literal_braces.push('\\');
            }
            escaped = !escaped && c == '\\';
            literal_braces.push(c);
        }
        let glob = GlobBuilder::new(&literal_braces)
            .literal_separator(within_element)
            .backslash_escape(true)
            .build()
            .map_err(|e| e.kind().to_string())?;
        Ok(Wildcard(glob.compile_matcher()))
    }

    /// Whether the whole of `text` matches.
    pub fn matches(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_rules() {
        let w = |p: &str, t: &str| Wildcard::new(p, true).unwrap().matches(t);
        assert!(w("*.log", "a.log"));
        assert!(!w("*.log", "d/a.log"), "* stays within an element");
        assert!(w("a?c", "abc") && !w("a?c", "a/c"));
        assert!(w("[a-c]x", "bx") && !w("[!a-c]x", "bx"));
        assert!(w("\\*", "*") && !w("\\*", "x"));
        assert!(w("{a,b}", "{a,b}") && !w("{a,b}", "a"), "braces are literal");
        assert!(w("**/tmp", "a/b/tmp") && w("build/**", "build/x/y"));
        assert!(Wildcard::new("[", true).is_err());
        assert!(Wildcard::new("*", false).unwrap().matches("a/b"));
    }

    #[test]
    fn many_stars_finish() {
        // The fuzzer's slow unit, grown: a backtracking matcher does not end in any useful time.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let pattern = format!("{}x", "*a".repeat(30));
            let _ = tx.send(Wildcard::new(&pattern, true).unwrap().matches(&"a".repeat(4000)));
        });
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(60)), Ok(false));
    }
}
