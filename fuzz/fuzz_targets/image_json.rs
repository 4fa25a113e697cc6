#![no_main]
//! Manifests, indexes and configs as a registry or an archive sends them:
//! any bytes give a value or an error, never a panic, and what parses can
//! be used (a platform picked, diff IDs read).

use libfuzzer_sys::fuzz_target;
use strata::image;

fuzz_target!(|data: &[u8]| {
    let _ = image::is_index(data);
    if let Ok(index) = image::parse_index(data, "fuzz index") {
        if let Ok(d) = image::pick_manifest(&index, &image::Platform::host()) {
            let _ = image::digest_of(&d);
        }
    }
    if let Ok(m) = image::parse_manifest(data, "fuzz manifest") {
        let _ = image::digest_of(m.config());
    }
    if let Ok(c) = image::parse_config(data, "fuzz config") {
        let _ = image::diff_ids(&c);
    }
});
