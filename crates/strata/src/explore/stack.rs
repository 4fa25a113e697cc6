//! An image's layer indexes stacked bottom to top, as overlayfs stacks the
//! layers: for each layer the files it added, modified and deleted, its
//! bytes, and the bytes it made unreachable in the layers below.
//!
//! The rules (stated in docs/ARCHITECTURE.md too):
//! - "Files" are every entry but directories: regular files, links,
//!   devices. A directory is counted through the files in it.
//! - A layer *adds* a path no lower layer shows, *modifies* one a lower
//!   layer shows, and *deletes* what its whiteouts and opaque directories
//!   hide (each hidden file counted), and what it replaces by another type
//!   (a file by a directory, or a directory's files by a file).
//! - *Wasted* bytes: the content of a copy that a higher layer overwrote or
//!   deleted, counted once, in the layer that hid it. A path written in k
//!   layers wastes its k−1 hidden copies, not all k; a file written twice
//!   within one layer wastes the first copy there.
//! - A layer's *size* is the content bytes of its regular files.

use std::collections::BTreeMap;

use super::index::{Kind, LayerIndex};

/// What one layer did to the tree below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerChanges {
    /// Content bytes of its regular files.
    pub size: u64,
    /// Files it added.
    pub added: u64,
    /// Files of lower layers it replaced.
    pub modified: u64,
    /// Files of lower layers it deleted or hid.
    pub deleted: u64,
    /// Bytes of lower copies it made unreachable.
    pub wasted: u64,
}

/// A copy made unreachable: which path, how many bytes, in which layer it
/// was and which layer hid it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hidden {
    /// The path.
    pub path: String,
    /// Its content bytes.
    pub size: u64,
    /// The layer (0 = bottom) the hidden copy is in.
    pub layer: usize,
    /// The layer that overwrote or deleted it.
    pub by: usize,
    /// True when deleted (whiteout, opaque directory, replaced by another
    /// type); false when overwritten by a new copy.
    pub deleted: bool,
}

/// The stack's answer: per layer (bottom first), every hidden copy, and
/// the merged tree the image shows.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    /// Per layer, bottom first.
    pub layers: Vec<LayerChanges>,
    /// Every copy made unreachable, in the order the layers hid them.
    pub hidden: Vec<Hidden>,
    /// What the image shows at each path (directories named in a tar included).
    pub tree: BTreeMap<String, Visible>,
}

/// What the tree shows at a path: which layer's copy (and which entry of
/// that layer's index), and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visible {
    /// The layer (0 = bottom).
    pub layer: usize,
    /// The entry in that layer's index.
    pub entry: usize,
    /// Content bytes.
    pub size: u64,
    /// A directory.
    pub dir: bool,
}

/// Stack `indexes`, bottom layer first.
pub fn stack(indexes: &[&LayerIndex]) -> Stack {
    let mut out = Stack::default();
    let mut tree = std::mem::take(&mut out.tree);
    for (i, index) in indexes.iter().enumerate() {
        let mut ch = LayerChanges::default();
        // Whiteouts and opaque markers apply to the layers below only:
        // first, before this layer's own entries are in the tree.
        for e in &index.entries {
            match e.kind {
                Kind::Opaque => hide_under(&mut tree, &e.path, i, &mut ch, &mut out.hidden),
                Kind::Whiteout => {
                    if let Some(v) = tree.remove(&e.path) {
                        if v.dir {
                            hide_under(&mut tree, &e.path, i, &mut ch, &mut out.hidden);
                        } else {
                            lose(&e.path, v, i, true, &mut ch, &mut out.hidden);
                        }
                    }
                }
                _ => {}
            }
        }
        for (k, e) in index.entries.iter().enumerate() {
            if matches!(e.kind, Kind::Opaque | Kind::Whiteout) {
                continue;
            }
            let dir = e.kind == Kind::Dir;
            ch.size += e.size;
            match tree.get(&e.path).copied() {
                // Written earlier in this same layer: counted then; its first copy is waste.
                Some(v) if v.layer == i => {
                    if !v.dir {
                        ch.wasted += v.size;
                        out.hidden.push(Hidden { path: e.path.clone(), size: v.size, layer: i, by: i, deleted: false });
                    }
                }
                Some(v) if !v.dir => {
                    if dir {
                        lose(&e.path, v, i, true, &mut ch, &mut out.hidden);
                    } else {
                        ch.modified += 1;
                        lose(&e.path, v, i, false, &mut ch, &mut out.hidden);
                    }
                }
                Some(_) => {
                    if !dir {
                        // A directory replaced by a file: its files are gone.
                        hide_under(&mut tree, &e.path, i, &mut ch, &mut out.hidden);
                        ch.added += 1;
                    }
                }
                None => {
                    if !dir {
                        ch.added += 1;
                    }
                }
            }
            tree.insert(e.path.clone(), Visible { layer: i, entry: k, size: e.size, dir });
        }
        out.layers.push(ch);
    }
    out.tree = tree;
    out
}

/// Count the copy `v` at `path` as made unreachable by layer `by`.
fn lose(path: &str, v: Visible, by: usize, deleted: bool, ch: &mut LayerChanges, hidden: &mut Vec<Hidden>) {
    if deleted {
        ch.deleted += 1;
    }
    ch.wasted += v.size;
    hidden.push(Hidden { path: path.to_string(), size: v.size, layer: v.layer, by, deleted });
}

/// Delete everything lower layers show under the directory `dir` ("" is the root).
fn hide_under(
    tree: &mut BTreeMap<String, Visible>,
    dir: &str,
    by: usize,
    ch: &mut LayerChanges,
    hidden: &mut Vec<Hidden>,
) {
    let under: Vec<String> = if dir.is_empty() {
        tree.keys().cloned().collect()
    } else {
        // Every key starting with "dir/": from "dir/" up to "dir0" ('0' follows '/').
        tree.range(format!("{dir}/")..format!("{dir}0")).map(|(k, _)| k.clone()).collect()
    };
    for k in under {
        if let Some(v) = tree.remove(&k) {
            if !v.dir {
                lose(&k, v, by, true, ch, hidden);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::index::Entry;
    use super::*;

    fn e(path: &str, kind: Kind, size: u64) -> Entry {
        Entry { path: path.into(), kind, size, mode: 0o644, uid: 0, gid: 0, mtime: 0, link: None }
    }

    fn layer(entries: Vec<Entry>) -> LayerIndex {
        LayerIndex { entries, ..Default::default() }
    }

    #[test]
    fn a_path_in_k_layers_wastes_k_minus_one_copies() {
        let l0 =
            layer(vec![e("a", Kind::File, 10), e("d", Kind::Dir, 0), e("d/x", Kind::File, 3), e("d/y", Kind::File, 4)]);
        let l1 = layer(vec![e("a", Kind::File, 20), e("b", Kind::File, 5)]);
        let l2 = layer(vec![e("a", Kind::File, 30), e("d", Kind::Opaque, 0), e("d/z", Kind::File, 1)]);
        let l3 = layer(vec![e("b", Kind::Whiteout, 0), e("a", Kind::Symlink, 0)]);
        let s = stack(&[&l0, &l1, &l2, &l3]);
        let counts: Vec<(u64, u64, u64, u64, u64)> =
            s.layers.iter().map(|c| (c.size, c.added, c.modified, c.deleted, c.wasted)).collect();
        assert_eq!(
            counts,
            [
                (17, 3, 0, 0, 0),
                (25, 1, 1, 0, 10),
                // The opaque d hides x and y; a overwritten again.
                (31, 1, 1, 2, 20 + 3 + 4),
                // b deleted; a replaced by a link (modified).
                (0, 0, 1, 1, 5 + 30),
            ]
        );
        let wasted: u64 = s.hidden.iter().map(|h| h.size).sum();
        assert_eq!(wasted, 10 + 20 + 7 + 35);
    }

    #[test]
    fn a_whited_out_directory_deletes_its_files_and_a_file_may_replace_a_directory() {
        let l0 = layer(vec![e("d", Kind::Dir, 0), e("d/x", Kind::File, 3), e("f", Kind::File, 2)]);
        let l1 = layer(vec![e("d", Kind::Whiteout, 0), e("f", Kind::Dir, 0)]);
        let l2 = layer(vec![e("f", Kind::File, 1), e("f", Kind::File, 6)]);
        let s = stack(&[&l0, &l1, &l2]);
        assert_eq!(s.layers[1], LayerChanges { size: 0, added: 0, modified: 0, deleted: 2, wasted: 5 });
        // The file replacing the directory is new; its first copy in the same layer is waste.
        assert_eq!(s.layers[2], LayerChanges { size: 7, added: 1, modified: 0, deleted: 0, wasted: 1 });
    }
}
