#![no_main]
//! Dockerfiles: parsing any text, and expanding any word with Docker's
//! quoting and `${VAR:-x}` rules, gives a value or an error, never a panic.

use libfuzzer_sys::fuzz_target;
use strata::dockerfile::{self, words};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = dockerfile::parse("Dockerfile", text);
    let vars: words::Vars =
        [("A", "a"), ("EMPTY", ""), ("SP", "a b")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for escape in ['\\', '`'] {
        let _ = words::expand(text, &vars, escape);
        let _ = words::split(text, &vars, escape);
        let _ = words::pairs(text, &vars, escape, false);
        let _ = words::pairs(text, &vars, escape, true);
        let _ = words::join_continuations(text, escape);
    }
    let _ = words::expand_heredoc(text, &vars);
});
