//! `image tree`: the store's layers as the tree their parents make, which
//! images use each, the bytes each holds on disk, what sharing saves, and
//! what `rmi IMAGE` would free — worked out by the rules the garbage
//! collector follows (`Core::collect_garbage`): a layer stays while an
//! image or the build cache names it or a layer that stays sits on it; a
//! blob stays while a layer that stays or an image's config or manifest
//! names it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use super::SharedWith;
use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::store::LayerRecord;

/// One layer in the tree.
#[derive(Debug, Clone, Serialize)]
pub struct LayerNode {
    /// Its chain ID.
    pub chain_id: Digest,
    /// Bytes on disk (allocated blocks, as `du`): its directory, and its blob when one is stored.
    pub on_disk: u64,
    /// How many images use it.
    pub used_by: usize,
    /// The images whose top layer it is.
    pub images: Vec<SharedWith>,
    /// The layers on top of it.
    pub children: Vec<LayerNode>,
}

/// What `rmi IMAGE` would free.
#[derive(Debug, Clone, Serialize)]
pub struct RmiEstimate {
    /// The image.
    pub image: Digest,
    /// Bytes on disk freed.
    pub frees: u64,
    /// The layers that would go.
    pub layers: Vec<Digest>,
    /// The blobs that would go (configs, manifests, layer blobs).
    pub blobs: Vec<Digest>,
    /// The name is one of several tags: `rmi` would only untag it.
    pub untag_only: bool,
    /// Containers that use the image (`rmi` refuses without `-f`).
    pub containers: usize,
}

/// `image tree`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct LayerTree {
    /// The layers whose parent is not shown, each with what sits on it.
    pub roots: Vec<LayerNode>,
    /// Bytes on disk of the layers shown.
    pub on_disk: u64,
    /// Bytes sharing saves: each shown layer's bytes once more for every
    /// further image that uses it.
    pub saved_by_sharing: u64,
    /// For `image tree IMAGE`.
    pub rmi: Option<RmiEstimate>,
}

/// Bytes on disk of everything under `path` (each inode once, directories included), as `du -s -B1`.
pub fn disk_usage(path: &Path) -> Result<u64> {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
        let md = match std::fs::symlink_metadata(p) {
            Ok(md) => md,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).at(p),
        };
        let mut total = if seen.insert((md.dev(), md.ino())) { md.blocks() * 512 } else { 0 };
        if md.is_dir() {
            for e in std::fs::read_dir(p).at(p)? {
                total += walk(&e.at(p)?.path(), seen)?;
            }
        }
        Ok(total)
    }
    walk(path, &mut HashSet::new())
}

/// The layers that survive a collection when `roots` are named: the roots
/// and every layer under them.
pub(super) fn survivors(
    layers: &HashMap<Digest, LayerRecord>,
    roots: impl IntoIterator<Item = Digest>,
) -> HashSet<Digest> {
    let mut alive = HashSet::new();
    for r in roots {
        let mut at = Some(r);
        while let Some(c) = at {
            if !layers.contains_key(&c) || !alive.insert(c.clone()) {
                break;
            }
            at = layers[&c].parent.clone();
        }
    }
    alive
}

/// Arrange `shown` (chain IDs) as trees by parent, children sorted by chain ID.
pub(super) fn arrange(
    shown: &HashSet<Digest>,
    layers: &HashMap<Digest, LayerRecord>,
    node: &dyn Fn(&Digest) -> Result<LayerNode>,
) -> Result<Vec<LayerNode>> {
    let mut children: BTreeMap<Option<Digest>, Vec<Digest>> = BTreeMap::new();
    for c in shown {
        let parent = layers[c].parent.clone().filter(|p| shown.contains(p));
        children.entry(parent).or_default().push(c.clone());
    }
    for v in children.values_mut() {
        v.sort();
    }
    fn build(
        c: &Digest,
        children: &BTreeMap<Option<Digest>, Vec<Digest>>,
        node: &dyn Fn(&Digest) -> Result<LayerNode>,
    ) -> Result<LayerNode> {
        let mut n = node(c)?;
        for k in children.get(&Some(c.clone())).into_iter().flatten() {
            n.children.push(build(k, children, node)?);
        }
        Ok(n)
    }
    children.get(&None).into_iter().flatten().map(|c| build(c, &children, node)).collect()
}
