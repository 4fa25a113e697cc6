//! A layer's file index: every entry of its tar (path, kind, size, mode,
//! owner, time, link target) in tar order, read once and kept beside the
//! layer's directory as `files.idx.zst`, so an image on a base already
//! indexed costs only its own layers.
//!
//! The index is made from the layer's tar, not its directory: the tar is
//! what the image says the layer changed (whiteouts and opaque directories
//! included) on both drivers, while the copy driver's directory is the
//! whole tree. A layer whose tar is rebuilt from a tar-split is read from
//! the split's headers alone, without opening its files.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The index file, beside a layer's `diff/`.
pub const INDEX_FILE: &str = "files.idx.zst";

/// Bumped when the format or its meaning changes: an older index is made again.
const VERSION: u32 = 1;

/// What a tar entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to an earlier entry of the same layer.
    Hardlink,
    /// A device, fifo or socket.
    Special,
    /// `.wh.NAME`: the path is deleted from the layers below.
    Whiteout,
    /// `.wh..wh..opq`: the directory hides everything the layers below had in it.
    Opaque,
}

/// One entry of a layer tar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path, relative and normalised (`usr/bin/env`; no `./`, no trailing `/`).
    /// For a whiteout, the path it deletes; for an opaque marker, its directory.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Content bytes (regular files; 0 for the rest).
    pub size: u64,
    /// Permission bits and the set-id/sticky bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// A link's target, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The entries of one layer, in tar order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LayerIndex {
    pub(crate) version: u32,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// `path` as the index names it: the normal components joined by `/`
/// (a `..` is kept as written: the index only names paths, it opens none).
fn normalise(path: &Path) -> String {
    let mut out = String::new();
    for c in path.components() {
        let part = match c {
            Component::Normal(p) => p.to_string_lossy(),
            Component::ParentDir => "..".into(),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => continue,
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&part);
    }
    out
}

impl LayerIndex {
    /// Index the (uncompressed) layer tar read from `tar`; `label` names
    /// the layer in errors.
    pub fn from_tar(tar: impl Read, label: &str) -> Result<Self> {
        let mut archive = tar::Archive::new(tar);
        let mut entries = Vec::new();
        let bad = |e: io::Error| Error::stream(format!("reading the tar of layer {label}"), e);
        for e in archive.entries().map_err(bad)? {
            let e = e.map_err(bad)?;
            let h = e.header();
            let raw = e.path().map_err(bad)?;
            let mut path = normalise(&raw);
            let mut kind = match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => Kind::File,
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink,
                tar::EntryType::Link => Kind::Hardlink,
                tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => Kind::Special,
                // Headers the tar crate has not folded into an entry: nothing in the tree.
                _ => continue,
            };
            if path.is_empty() {
                continue; // `./` itself
            }
            let (parent, name) = match path.rsplit_once('/') {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => (String::new(), path.clone()),
            };
            if name == ".wh..wh..opq" {
                kind = Kind::Opaque;
                path = parent;
            } else if let Some(hidden) = name.strip_prefix(".wh.") {
                kind = Kind::Whiteout;
                path = if parent.is_empty() { hidden.to_string() } else { format!("{parent}/{hidden}") };
            }
            let link = match kind {
                Kind::Symlink | Kind::Hardlink => e.link_name().map_err(bad)?.map(|l| l.to_string_lossy().into_owned()),
                _ => None,
            };
            entries.push(Entry {
                size: if kind == Kind::File { e.size() } else { 0 },
                mode: h.mode().unwrap_or(0) & 0o7777,
                uid: h.uid().unwrap_or(0),
                gid: h.gid().unwrap_or(0),
                mtime: h.mtime().unwrap_or(0) as i64,
                path,
                kind,
                link,
            });
        }
        Ok(LayerIndex { version: VERSION, entries })
    }

    /// The index kept at `path`, if there is one of this version.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let f = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(path),
        };
        // Whole, then parsed: serde_json reading through the decoder goes a byte at a time.
        let bytes = zstd::stream::decode_all(BufReader::new(f)).at(path)?;
        match serde_json::from_slice::<LayerIndex>(&bytes) {
            Ok(i) if i.version == VERSION => Ok(Some(i)),
            // Another version, or damaged: made again from the tar.
            _ => Ok(None),
        }
    }

    /// Keep the index at `path`: written in `tmp` (the store's temp
    /// directory, same filesystem) and renamed, so a reader sees a whole
    /// index or none.
    pub fn save(&self, path: &Path, tmp: &Path) -> Result<()> {
        let work = crate::tmp::TempDir::new(tmp, "index")?;
        let tmp_path = work.path().join(INDEX_FILE);
        let f = File::create(&tmp_path).at(&tmp_path)?;
        let mut enc = zstd::stream::write::Encoder::new(io::BufWriter::new(f), 3).at(&tmp_path)?;
        serde_json::to_writer(&mut enc, self).map_err(|e| Error::stream("writing a layer index", e.into()))?;
        enc.finish().at(&tmp_path)?.flush().at(&tmp_path)?;
        std::fs::rename(&tmp_path, path).at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_cksum();
        h
    }

    #[test]
    fn whiteouts_and_opaque_markers_name_what_they_hide() {
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("./etc/", tar::EntryType::Directory, 0), &[][..]).unwrap();
        b.append(&header("./etc/passwd", tar::EntryType::Regular, 3), &b"abc"[..]).unwrap();
        b.append(&header("etc/.wh.shadow", tar::EntryType::Regular, 0), &[][..]).unwrap();
        b.append(&header("var/cache/.wh..wh..opq", tar::EntryType::Regular, 0), &[][..]).unwrap();
        b.append(&header(".wh.top", tar::EntryType::Regular, 0), &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let idx = LayerIndex::from_tar(&tar[..], "test").unwrap();
        let got: Vec<(&str, Kind, u64)> = idx.entries.iter().map(|e| (e.path.as_str(), e.kind, e.size)).collect();
        assert_eq!(
            got,
            [
                ("etc", Kind::Dir, 0),
                ("etc/passwd", Kind::File, 3),
                ("etc/shadow", Kind::Whiteout, 0),
                ("var/cache", Kind::Opaque, 0),
                ("top", Kind::Whiteout, 0),
            ]
        );
        assert_eq!((idx.entries[1].mode, idx.entries[1].uid, idx.entries[1].gid), (0o640, 7, 8));
    }

    #[test]
    fn a_saved_index_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("a/b", tar::EntryType::Regular, 1), &b"x"[..]).unwrap();
        let idx = LayerIndex::from_tar(&b.into_inner().unwrap()[..], "test").unwrap();
        let p = dir.path().join(INDEX_FILE);
        idx.save(&p, dir.path()).unwrap();
        assert_eq!(LayerIndex::load(&p).unwrap().unwrap().entries, idx.entries);
        assert!(LayerIndex::load(&dir.path().join("none")).unwrap().is_none());
    }
}
