//! The layer explorer: what each layer of an image changed, what it
//! wasted, and which images share it, read from the store directly (no
//! export): each layer's tar is indexed once ([`index`]) and the indexes
//! are stacked ([`stack`]); [`ci`] holds dive's CI rules over the result.

pub mod ci;
pub mod diff;
pub mod index;
pub mod sharing;
pub mod stack;
pub mod view;

use std::collections::{HashMap, HashSet};
use std::io::BufReader;
use std::path::PathBuf;

use serde::Serialize;

use crate::core::Core;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::store::LayerRecord;
use crate::unpack::layer_dir;
use index::{LayerIndex, INDEX_FILE};
pub use stack::{Hidden, LayerChanges};

/// Another local image that has a layer too.
#[derive(Debug, Clone, Serialize)]
pub struct SharedWith {
    /// Its ID.
    pub id: Digest,
    /// Its tags.
    pub names: Vec<String>,
}

/// One history entry of an image, with the layer it made (if any).
#[derive(Debug, Clone, Serialize)]
pub struct LayerRow {
    /// The layer's place in the stack (0 = bottom); none for an entry that made no layer.
    pub layer: Option<usize>,
    /// The instruction that made it.
    pub created_by: String,
    /// The history entry made no layer (ENV, CMD, ...).
    pub empty_layer: bool,
    /// The layer's chain ID.
    pub chain_id: Option<Digest>,
    /// Above the base image.
    pub user: bool,
    /// What the layer did (zeros for an empty entry).
    #[serde(flatten)]
    pub changes: LayerChanges,
    /// Other local images that have this layer.
    pub shared_with: Vec<SharedWith>,
}

/// `image layers`: an image's history entries and layers, and its totals.
#[derive(Debug, Clone, Serialize)]
pub struct ImageLayers {
    /// The image ID.
    pub id: Digest,
    /// Rows, bottom first.
    pub rows: Vec<LayerRow>,
    /// The base image the user layers are above, when the build recorded it.
    pub base: Option<String>,
    /// How many bottom layers are the base's (when unknown, the bottom one).
    pub base_layers: usize,
    /// Content bytes of all layers.
    pub size: u64,
    /// Bytes of hidden copies, all layers.
    pub wasted: u64,
    /// 1 − wasted / size.
    pub efficiency: f64,
    /// Wasted bytes of the user layers over the user layers' bytes (dive's "user wasted percent", a ratio).
    pub user_wasted_ratio: f64,
    /// Every hidden copy, largest first (the "wasted" view).
    pub hidden: Vec<Hidden>,
}

/// The explorer service.
pub struct Explorer<'c> {
    core: &'c Core,
}

impl<'c> Explorer<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Explorer { core }
    }

    /// `image layers NAME`.
    pub fn layers(&self, name: &str) -> Result<ImageLayers> {
        Ok(self.analyse(name)?.0)
    }

    /// `image explore NAME`: the analysis and the layers' files to look into.
    pub fn open(&self, name: &str) -> Result<(ImageLayers, view::ImageFiles)> {
        let (layers, indexes) = self.analyse(name)?;
        Ok((layers, view::ImageFiles::new(indexes)))
    }

    fn analyse(&self, name: &str) -> Result<(ImageLayers, Vec<LayerIndex>)> {
        let id = self.core.resolve_image(name)?;
        let (_, cfg) = self.core.config_of(&id)?;
        let records = self.core.store.image_layers(&id)?;
        let indexes = self.indexes(name, &records)?;
        let stacked = stack::stack(&indexes.iter().collect::<Vec<_>>());
        let users = self.core.store.images_using_layers()?;
        let mut names: HashMap<Digest, Vec<String>> = HashMap::new();
        let (base, base_layers) = match self.core.store.image_base(&id)? {
            Some((b, n)) => (Some(b), n.min(records.len())),
            None => (None, records.len().min(1)),
        };
        let mut shared = |chain: &Digest| -> Result<Vec<SharedWith>> {
            let mut out = Vec::new();
            for other in users.get(chain).into_iter().flatten().filter(|o| **o != id) {
                if !names.contains_key(other) {
                    names.insert(other.clone(), self.core.store.tags_of(other)?);
                }
                out.push(SharedWith { id: other.clone(), names: names[other].clone() });
            }
            Ok(out)
        };
        let history = cfg.history().clone().unwrap_or_default();
        // History and layers are matched from the top: layers at the bottom
        // that no entry describes (a base built without history) come first,
        // entries claiming more layers than there are describe none.
        let described = history.iter().filter(|h| !h.empty_layer().unwrap_or(false)).count();
        let mut unclaimed = described.saturating_sub(records.len());
        let layer_row = |i: usize, created_by: String| LayerRow {
            layer: Some(i),
            created_by,
            empty_layer: false,
            chain_id: Some(records[i].chain_id.clone()),
            user: i >= base_layers,
            changes: stacked.layers[i].clone(),
            shared_with: Vec::new(),
        };
        let mut next = records.len().saturating_sub(described);
        let mut rows: Vec<LayerRow> = (0..next).map(|i| layer_row(i, String::new())).collect();
        for h in history {
            let created_by = h.created_by().clone().unwrap_or_default();
            let empty = h.empty_layer().unwrap_or(false);
            if !empty && unclaimed == 0 {
                rows.push(layer_row(next, created_by));
                next += 1;
                continue;
            }
            if !empty {
                unclaimed -= 1;
            }
            rows.push(LayerRow {
                layer: None,
                created_by,
                empty_layer: true,
                chain_id: None,
                user: next >= base_layers && next > 0,
                changes: LayerChanges::default(),
                shared_with: Vec::new(),
            });
        }
        for r in &mut rows {
            if let Some(c) = &r.chain_id {
                r.shared_with = shared(c)?;
            }
        }
        let size: u64 = stacked.layers.iter().map(|l| l.size).sum();
        let wasted: u64 = stacked.layers.iter().map(|l| l.wasted).sum();
        let user = &stacked.layers[base_layers.min(stacked.layers.len())..];
        let (user_size, user_wasted) = user.iter().fold((0u64, 0u64), |(s, w), l| (s + l.size, w + l.wasted));
        let mut hidden = stacked.hidden;
        hidden.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.path.cmp(&b.path)));
        let analysis = ImageLayers {
            id,
            rows,
            base,
            base_layers,
            size,
            wasted,
            efficiency: if size == 0 { 1.0 } else { 1.0 - wasted as f64 / size as f64 },
            user_wasted_ratio: if user_size == 0 { 0.0 } else { user_wasted as f64 / user_size as f64 },
            hidden,
        };
        Ok((analysis, indexes))
    }

    /// `image diff A B`.
    pub fn diff(&self, a: &str, b: &str) -> Result<diff::ImageDiff> {
        let (ida, idb) = (self.core.resolve_image(a)?, self.core.resolve_image(b)?);
        let (ra, rb) = (self.core.store.image_layers(&ida)?, self.core.store.image_layers(&idb)?);
        let (ia, ib) = (self.indexes(a, &ra)?, self.indexes(b, &rb)?);
        let (sa, sb) = (stack::stack(&ia.iter().collect::<Vec<_>>()), stack::stack(&ib.iter().collect::<Vec<_>>()));
        let shared = ra.iter().zip(&rb).take_while(|(x, y)| x.chain_id == y.chain_id).count();
        let dirs = |r: &[LayerRecord]| r.iter().map(|l| layer_dir(&self.core.layers_dir, &l.chain_id)).collect();
        let changes = diff::changes(
            &diff::Side { dirs: dirs(&ra), indexes: &ia, tree: &sa.tree },
            &diff::Side { dirs: dirs(&rb), indexes: &ib, tree: &sb.tree },
            shared,
        )?;
        let chains = |r: &[LayerRecord]| r.iter().map(|l| l.chain_id.clone()).collect::<Vec<_>>();
        Ok(diff::ImageDiff {
            a: ida,
            b: idb,
            shared: chains(&ra[..shared]),
            only_a: chains(&ra[shared..]),
            only_b: chains(&rb[shared..]),
            changes,
        })
    }

    /// `image tree [IMAGE] [--whatrequires]`: every layer; or IMAGE's
    /// layers and what `rmi IMAGE` would free; or (`what_requires`) IMAGE's
    /// top layer and every layer and image built on it.
    pub fn tree(&self, image: Option<&str>, what_requires: bool) -> Result<sharing::LayerTree> {
        let all: HashMap<Digest, LayerRecord> =
            self.core.store.layers()?.into_iter().map(|l| (l.chain_id.clone(), l)).collect();
        let users = self.core.store.images_using_layers()?;
        let images = self.core.store.images()?;
        let mut tops: HashMap<Digest, Vec<SharedWith>> = HashMap::new();
        let mut image_layers: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for img in &images {
            let chains: Vec<Digest> = self.core.store.image_layers(&img.id)?.into_iter().map(|l| l.chain_id).collect();
            if let Some(top) = chains.last() {
                tops.entry(top.clone())
                    .or_default()
                    .push(SharedWith { id: img.id.clone(), names: self.core.store.tags_of(&img.id)? });
            }
            image_layers.insert(img.id.clone(), chains);
        }
        let target = image.map(|n| self.core.resolve_image(n)).transpose()?;
        let shown: HashSet<Digest> = match &target {
            None => all.keys().cloned().collect(),
            Some(id) if !what_requires => image_layers[id].iter().cloned().collect(),
            Some(id) => match image_layers[id].last() {
                None => HashSet::new(),
                Some(top) => all
                    .keys()
                    .filter(|c| {
                        let mut at = Some((*c).clone());
                        while let Some(x) = at {
                            if &x == top {
                                return true;
                            }
                            at = all.get(&x).and_then(|l| l.parent.clone());
                        }
                        false
                    })
                    .cloned()
                    .collect(),
            },
        };
        let mut on_disk = HashMap::new();
        for c in &shown {
            on_disk.insert(c.clone(), self.layer_usage(&all[c])?);
        }
        let used_by = |c: &Digest| users.get(c).map_or(0, |u| u.len());
        let roots = sharing::arrange(&shown, &all, &|c| {
            Ok(sharing::LayerNode {
                chain_id: c.clone(),
                on_disk: on_disk[c],
                used_by: used_by(c),
                images: tops.get(c).cloned().unwrap_or_default(),
                children: Vec::new(),
            })
        })?;
        let rmi = match (&target, image) {
            (Some(id), Some(name)) if !what_requires => {
                Some(self.rmi_estimate(name, id, &all, &images, &image_layers)?)
            }
            _ => None,
        };
        Ok(sharing::LayerTree {
            roots,
            on_disk: on_disk.values().sum(),
            saved_by_sharing: on_disk.iter().map(|(c, b)| b * used_by(c).saturating_sub(1) as u64).sum(),
            rmi,
        })
    }

    /// A layer's bytes on disk: its directory, and its blob when one is stored.
    fn layer_usage(&self, l: &LayerRecord) -> Result<u64> {
        let blob = if l.split { 0 } else { sharing::disk_usage(&self.core.content.path(&l.blob))? };
        Ok(sharing::disk_usage(&self.core.layers_dir.join(l.chain_id.hex()))? + blob)
    }

    /// What `rmi NAME` (image `id`) would free, by the collector's rules.
    fn rmi_estimate(
        &self,
        name: &str,
        id: &Digest,
        all: &HashMap<Digest, LayerRecord>,
        images: &[crate::store::ImageRecord],
        image_layers: &HashMap<Digest, Vec<Digest>>,
    ) -> Result<sharing::RmiEstimate> {
        let tags = self.core.store.tags_of(id)?;
        let by_id = id.hex().starts_with(name.trim_start_matches("sha256:"));
        let containers = self.core.store.containers_using(id)?.len();
        let mut est = sharing::RmiEstimate {
            image: id.clone(),
            frees: 0,
            layers: Vec::new(),
            blobs: Vec::new(),
            untag_only: tags.len() > 1 && !by_id,
            containers,
        };
        if est.untag_only {
            return Ok(est);
        }
        let cache = self.core.store.build_cache_chains()?;
        let roots = |skip: Option<&Digest>| {
            image_layers
                .iter()
                .filter(|(i, _)| Some(*i) != skip)
                .flat_map(|(_, ls)| ls.iter().cloned())
                .chain(cache.iter().cloned())
                .collect::<Vec<_>>()
        };
        let before = sharing::survivors(all, roots(None));
        let after = sharing::survivors(all, roots(Some(id)));
        let records =
            |alive: &HashSet<Digest>| all.values().filter(|l| alive.contains(&l.chain_id)).cloned().collect::<Vec<_>>();
        let rest: Vec<crate::store::ImageRecord> = images.iter().filter(|i| &i.id != id).cloned().collect();
        let blobs_before = self.core.referenced_blobs(&records(&before), images)?;
        let blobs_after = self.core.referenced_blobs(&records(&after), &rest)?;
        let mut layers: Vec<Digest> = before.difference(&after).cloned().collect();
        layers.sort();
        let mut blobs: Vec<Digest> =
            blobs_before.difference(&blobs_after).filter(|b| self.core.content.path(b).exists()).cloned().collect();
        blobs.sort();
        for c in &layers {
            est.frees += sharing::disk_usage(&self.core.layers_dir.join(c.hex()))?;
        }
        for b in &blobs {
            est.frees += sharing::disk_usage(&self.core.content.path(b))?;
        }
        est.layers = layers;
        est.blobs = blobs;
        Ok(est)
    }

    /// The index of each of `records` (bottom first), made where missing
    /// (on as many threads as there are cores) and kept.
    fn indexes(&self, image: &str, records: &[LayerRecord]) -> Result<Vec<LayerIndex>> {
        let mut out: Vec<Option<LayerIndex>> = Vec::with_capacity(records.len());
        for r in records {
            let dir = layer_dir(&self.core.layers_dir, &r.chain_id);
            if !dir.is_dir() {
                return Err(Error::Corrupt(format!(
                    "image {image}: layer {} has no directory in the store ({} is missing)",
                    r.chain_id,
                    dir.display()
                )));
            }
            out.push(LayerIndex::load(&self.index_path(r))?);
        }
        let missing: Vec<usize> = (0..records.len()).filter(|&i| out[i].is_none()).collect();
        let made = crate::work::each(&missing, crate::work::cores(), |&i| self.make_index(&records[i]))?;
        for (i, idx) in missing.into_iter().zip(made) {
            out[i] = Some(idx);
        }
        Ok(out.into_iter().map(|i| i.expect("every layer indexed")).collect())
    }

    fn index_path(&self, r: &LayerRecord) -> PathBuf {
        self.core.layers_dir.join(r.chain_id.hex()).join(INDEX_FILE)
    }

    /// Index one layer from its tar and keep the index (a failure to keep
    /// it costs only the next run's time).
    fn make_index(&self, r: &LayerRecord) -> Result<LayerIndex> {
        let label = r.chain_id.to_string();
        let idx = if r.split {
            let dir = self.core.layers_dir.join(r.chain_id.hex());
            let split = crate::layer::split::SplitReader::headers_only(&dir.join(crate::layer::split::SPLIT_FILE))?;
            LayerIndex::from_tar(split, &label)?
        } else {
            let blob = crate::unpack::open_layer_blob(&self.core.layers_dir, &self.core.content, r)?;
            let (_, tar) = crate::layer::decompress(BufReader::with_capacity(1 << 20, blob))
                .map_err(|e| Error::stream(format!("reading the blob of layer {label}"), e))?;
            LayerIndex::from_tar(tar, &label)?
        };
        if let Err(e) = idx.save(&self.index_path(r), &self.core.tmp) {
            tracing::warn!("keeping the index of layer {label}: {e}");
        }
        Ok(idx)
    }
}
