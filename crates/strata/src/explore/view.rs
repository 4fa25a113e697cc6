//! What the interactive explorer shows for one layer: the files that layer
//! changed, or the whole tree up to it, each with its mark (added,
//! modified, deleted) — computed from the layer indexes on demand.

use std::collections::BTreeMap;

use serde::Serialize;

use super::index::{Kind, LayerIndex};
use super::stack;

/// How a layer touched a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Mark {
    /// New in this layer.
    Added,
    /// Replaces what a lower layer had.
    Modified,
    /// Deleted or hidden by this layer.
    Deleted,
}

/// One path shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileRow {
    /// The path, relative (`etc/passwd`).
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Content bytes.
    pub size: u64,
    /// Set when the layer shown touched it.
    pub mark: Option<Mark>,
}

/// The indexes of an image's layers, bottom first, to look into.
pub struct ImageFiles {
    indexes: Vec<LayerIndex>,
}

impl ImageFiles {
    pub(super) fn new(indexes: Vec<LayerIndex>) -> Self {
        ImageFiles { indexes }
    }

    /// How many layers.
    pub fn len(&self) -> usize {
        self.indexes.len()
    }

    /// No layers at all.
    pub fn is_empty(&self) -> bool {
        self.indexes.is_empty()
    }

    /// The paths of layer `layer`, sorted: only what it changed, or (`all`)
    /// the whole tree as it stands with that layer on top. Deleted paths
    /// are shown with their mark either way.
    pub fn rows(&self, layer: usize, all: bool) -> Vec<FileRow> {
        let below: Vec<&LayerIndex> = self.indexes[..layer].iter().collect();
        let under = stack::stack(&below);
        let with: Vec<&LayerIndex> = self.indexes[..=layer].iter().collect();
        let now = stack::stack(&with);
        let mut out: BTreeMap<String, FileRow> = BTreeMap::new();
        if all {
            for (p, v) in &now.tree {
                let e = &self.indexes[v.layer].entries[v.entry];
                out.insert(p.clone(), FileRow { path: p.clone(), kind: e.kind, size: e.size, mark: None });
            }
        }
        for (p, v) in now.tree.iter().filter(|(_, v)| v.layer == layer) {
            let e = &self.indexes[layer].entries[v.entry];
            let mark = match under.tree.get(p) {
                Some(_) if v.dir => None,
                Some(_) => Some(Mark::Modified),
                None => Some(Mark::Added),
            };
            out.insert(p.clone(), FileRow { path: p.clone(), kind: e.kind, size: e.size, mark });
        }
        for h in now.hidden.iter().filter(|h| h.by == layer && h.deleted) {
            let kind = under.tree.get(&h.path).map_or(Kind::File, |v| self.indexes[v.layer].entries[v.entry].kind);
            out.insert(h.path.clone(), FileRow { path: h.path.clone(), kind, size: h.size, mark: Some(Mark::Deleted) });
        }
        out.into_values().collect()
    }
}
