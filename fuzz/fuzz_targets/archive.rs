#![no_main]
//! docker-archive and oci-archive reading: any tar gives its images or an
//! error, never a panic, and every entry an image names reads or fails.

use std::io::{Read, Seek, Write};

use libfuzzer_sys::fuzz_target;
use strata::image::archive::Archive;

fuzz_target!(|data: &[u8]| {
    let mut f = tempfile();
    f.write_all(data).unwrap();
    f.rewind().unwrap();
    let Ok(archive) = Archive::open(f, "fuzz.tar") else { return };
    let Ok(images) = archive.images() else { return };
    for img in images {
        for l in img.layers {
            if let Ok(mut r) = archive.reader(&l.entry) {
                let _ = std::io::copy(&mut r.by_ref().take(1 << 20), &mut std::io::sink());
            }
        }
    }
});

/// An unnamed temp file (O_TMPFILE): nothing to clean up.
fn tempfile() -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .open(std::env::temp_dir())
        .expect("O_TMPFILE in the temp directory")
}
