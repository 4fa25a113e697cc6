#![no_main]
//! Image references: parsing never panics, and a reference that parses
//! prints to a name that parses to the same reference.

use libfuzzer_sys::fuzz_target;
use strata::image::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(r) = Reference::parse(s) {
        let again = Reference::parse(&r.to_string()).expect("a parsed reference prints to one that parses");
        assert_eq!(again.to_string(), r.to_string());
    }
});
