#![no_main]
//! `.dockerignore`: any patterns (every line but the last) against any path
//! (the last line) give an answer or a parse error, never a panic.

use libfuzzer_sys::fuzz_target;
use strata::build::ignore::{clean, Ignore};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (patterns, path) = text.rsplit_once('\n').unwrap_or((text, "a/b"));
    let Ok(ignore) = Ignore::parse(patterns, ".dockerignore") else { return };
    if let Some(rel) = clean(path) {
        let _ = ignore.excluded(&rel);
        let _ = ignore.may_reinclude_below(&rel);
    }
});
