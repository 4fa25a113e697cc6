//! `image diff A B`: the layers two images share and, above them, the
//! files added, changed and deleted from A to B — read from the layer
//! indexes, with contents compared only where sizes agree and the copies
//! come from different layers.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::index::{Entry, Kind, LayerIndex};
use super::stack::Visible;
use crate::digest::Digest;
use crate::error::{IoContext, Result};

/// A file as one image shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FileState {
    /// What it is.
    pub kind: Kind,
    /// Content bytes.
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// A link's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The layer (0 = bottom) it comes from.
    pub layer: usize,
}

impl FileState {
    fn of(e: &Entry, layer: usize) -> Self {
        FileState { kind: e.kind, size: e.size, mode: e.mode, uid: e.uid, gid: e.gid, link: e.link.clone(), layer }
    }
}

/// One path that differs.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// `A`dded in B, `C`hanged, or `D`eleted (in A, not in B), as `diff` says.
    pub change: char,
    /// The path, from the root (`/etc/passwd`).
    pub path: String,
    /// For a change: what differs (`type`, `size`, `mode`, `owner`, `link`, `content`).
    pub what: Vec<&'static str>,
    /// In A.
    pub before: Option<FileState>,
    /// In B.
    pub after: Option<FileState>,
}

/// `image diff`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    /// A's image ID.
    pub a: Digest,
    /// B's image ID.
    pub b: Digest,
    /// The layers both have (by chain ID), bottom first.
    pub shared: Vec<Digest>,
    /// A's layers above them.
    pub only_a: Vec<Digest>,
    /// B's layers above them.
    pub only_b: Vec<Digest>,
    /// Paths that differ, sorted.
    pub changes: Vec<FileChange>,
}

/// One image's side: its layer directories and indexes, and its merged tree.
pub(super) struct Side<'a> {
    pub dirs: Vec<std::path::PathBuf>,
    pub indexes: &'a [LayerIndex],
    pub tree: &'a BTreeMap<String, Visible>,
}

impl Side<'_> {
    fn entry(&self, v: &Visible) -> &Entry {
        &self.indexes[v.layer].entries[v.entry]
    }
}

/// The changes from `a` to `b`, whose bottom `shared` layers are the same.
pub(super) fn changes(a: &Side<'_>, b: &Side<'_>, shared: usize) -> Result<Vec<FileChange>> {
    let mut out = Vec::new();
    let mut ia = a.tree.iter().peekable();
    let mut ib = b.tree.iter().peekable();
    loop {
        let order = match (ia.peek(), ib.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((pa, _)), Some((pb, _))) => pa.cmp(pb),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (p, v) = ia.next().expect("peeked");
                out.push(FileChange {
                    change: 'D',
                    path: format!("/{p}"),
                    what: Vec::new(),
                    before: Some(FileState::of(a.entry(v), v.layer)),
                    after: None,
                });
            }
            std::cmp::Ordering::Greater => {
                let (p, v) = ib.next().expect("peeked");
                out.push(FileChange {
                    change: 'A',
                    path: format!("/{p}"),
                    what: Vec::new(),
                    before: None,
                    after: Some(FileState::of(b.entry(v), v.layer)),
                });
            }
            std::cmp::Ordering::Equal => {
                let (p, va) = ia.next().expect("peeked");
                let (_, vb) = ib.next().expect("peeked");
                // The same copy from a layer both share: nothing to compare.
                if va.layer < shared && va == vb {
                    continue;
                }
                let (ea, eb) = (a.entry(va), b.entry(vb));
                let mut what = Vec::new();
                if ea.kind != eb.kind {
                    what.push("type");
                }
                if ea.size != eb.size {
                    what.push("size");
                }
                if ea.mode != eb.mode {
                    what.push("mode");
                }
                if (ea.uid, ea.gid) != (eb.uid, eb.gid) {
                    what.push("owner");
                }
                if ea.link != eb.link {
                    what.push("link");
                }
                if what.is_empty()
                    && ea.kind == Kind::File
                    && !same_content(&a.dirs[va.layer], &b.dirs[vb.layer], Path::new(p.as_str()))?
                {
                    what.push("content");
                }
                if !what.is_empty() {
                    out.push(FileChange {
                        change: 'C',
                        path: format!("/{p}"),
                        what,
                        before: Some(FileState::of(ea, va.layer)),
                        after: Some(FileState::of(eb, vb.layer)),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Whether the file `rel` has the same bytes in the layer directories
/// `da` and `db` (opened inside them, following no symlink).
fn same_content(da: &Path, db: &Path, rel: &Path) -> Result<bool> {
    if da == db {
        return Ok(true);
    }
    let open = |d: &Path| -> Result<std::fs::File> {
        crate::confined::open_beneath(d, rel)?.ok_or_else(|| {
            crate::Error::Corrupt(format!("{} is missing from its layer directory", d.join(rel).display()))
        })
    };
    let (mut fa, mut fb) = (open(da)?, open(db)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let na = read_full(&mut fa, &mut ba).at(da.join(rel))?;
        let nb = read_full(&mut fb, &mut bb).at(db.join(rel))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
