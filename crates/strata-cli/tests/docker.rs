//! strata against Docker itself (dockerd 20.10 from Debian, started by each
//! test in its own network namespace): the same image loaded into both, the
//! same commands run against both, their outputs compared.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::docker::Docker;
use common::*;

/// The same image (`app:1`, also tagged `app:2`) loaded into both.
fn loaded() -> (Strata, Docker) {
    let s = Strata::new("overlay");
    let d = Docker::start(&s);
    let top = LayerTar::new()
        .dir("srv")
        .file("srv/data.txt", b"in the image\n")
        .file("srv/gone.txt", b"deleted by the container\n")
        .hardlink("srv/same.txt", "srv/data.txt")
        .symlink("srv/link", "data.txt")
        .owned("srv/owned.txt", b"uid 1000\n", 1000, 1000)
        .build();
    let mut img = TestImage::new("app:1", vec![busybox_layer(), top]);
    img.tags.push("app:2".into());
    let a = s.write("app.tar", &docker_archive(&[img]));
    s.ok(&["load", "-i", a.to_str().unwrap()]);
    d.ok(&["load", "-i", a.to_str().unwrap()]);
    (s, d)
}

/// An entry of an exported tar: kind, mode, owner, size, and content hash or link target.
type Entry = (char, u32, u64, u64, u64, String);

fn entries(tar_bytes: &[u8]) -> BTreeMap<String, Entry> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string().trim_end_matches('/').to_string();
        let h = e.header().clone();
        let (kind, data) = match h.entry_type() {
            tar::EntryType::Directory => ('d', String::new()),
            tar::EntryType::Symlink => ('l', e.link_name().unwrap().unwrap().display().to_string()),
            tar::EntryType::Link => ('h', e.link_name().unwrap().unwrap().display().to_string()),
            tar::EntryType::Regular => {
                let mut b = Vec::new();
                e.read_to_end(&mut b).unwrap();
                ('f', sha256_hex(&b))
            }
            t => (format!("{t:?}").chars().next().unwrap(), String::new()),
        };
        out.insert(path, (kind, h.mode().unwrap() & 0o7777, h.uid().unwrap(), h.gid().unwrap(), h.size().unwrap(), data));
    }
    out
}

#[test]
fn export_gives_docker_export_s_files_modes_owners_and_contents() {
    let (s, d) = loaded();
    let script = "echo new > /srv/new.txt; rm /srv/gone.txt; mkdir -m 700 /made; ln -s /srv/new.txt /made/link; chown 1000:1000 /made";
    let (code, _, err) = s.code(&["run", "--network", "none", "--name", "wr", "app:1", "sh", "-c", script]);
    assert_eq!(code, 0, "{err}");
    d.ok(&["run", "--network", "none", "--name", "wr", "app:1", "sh", "-c", script]);
    let ours = s.path("ours.tar");
    s.ok(&["export", "-o", ours.to_str().unwrap(), "wr"]);
    let theirs = d.ok_bytes(&["export", "wr"]);
    let (mut ours, mut theirs) = (entries(&std::fs::read(ours).unwrap()), entries(&theirs));
    assert!(ours.contains_key("made/link") && ours.contains_key("srv/same.txt"), "{ours:?}");
    // Docker's init layer, a deliberate difference (docs/ARCHITECTURE.md):
    // its marker and mount points strata's runtime does not need, and its
    // mount-point files made 0755 where strata's are 0644.
    for only_docker in [".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/mtab"] {
        assert!(theirs.remove(only_docker).is_some(), "docker export has {only_docker}");
    }
    for mount_point in ["etc/hostname", "etc/hosts", "etc/resolv.conf"] {
        assert_eq!(ours.get_mut(mount_point).map(|e| std::mem::replace(&mut e.1, 0o755)), Some(0o644));
    }
    assert_eq!(ours, theirs);
}
