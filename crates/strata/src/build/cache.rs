//! The build cache shared through a registry: `--cache-to` and
//! `--cache-from type=registry,ref=REF`.
//!
//! Export: the steps a build went through (their cache keys and the image
//! config after each) become one OCI artifact at REF: a manifest whose
//! config blob (`application/vnd.strata.build-cache.v1+json`) lists the
//! records and the layers they need, and whose layers are those layers'
//! blobs (uploaded as a push uploads, so a registry keeps them). Keys are
//! content-derived (the base image ID, the instruction, the ARGs, the
//! inputs' bytes), so another machine's build of the same Dockerfile on the
//! same context computes the same keys.
//!
//! Import: the records are read into memory for one build. A step whose
//! key is found there is taken as cached without fetching anything; its
//! layers are fetched (and checked against their diff IDs) only when a
//! later step builds on them, another stage copies from them, or the final
//! image is stored. A cache ref that cannot be read is a warning and the
//! build goes on, as BuildKit's.
//!
//! An image as `--cache-from` (one BuildKit pushed with its inline cache,
//! `BUILDKIT_INLINE_CACHE=1`, or any other): BuildKit's cache records are
//! keyed by its LLB digests, which strata does not compute, so the image is
//! matched by its history instead, as Docker's classic builder did. From a
//! stage whose base is a prefix of the image (layers and history), each
//! step must find the history entry BuildKit writes for it (`RUN |N ARGS
//! CMD # buildkit`, `ENV K=V`, `WORKDIR DIR`, ...), and a RUN takes the
//! image's layer. Matching ends at the first step whose inputs the history
//! cannot show: COPY, ADD, a RUN with mounts, SHELL.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::Core;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::registry::{BlobSource, Registries, RegistryOptions};
use crate::store::LayerRecord;
use crate::unpack::LayerSpec;

/// The media type of the artifact's config blob.
pub const CONFIG_TYPE: &str = "application/vnd.strata.build-cache.v1+json";

/// `--cache-to` / `--cache-from`: where the cache lives and how much of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    /// The registry reference (`ref=`).
    pub reference: String,
    /// `mode=max`: every stage's steps, not only those the result is built from.
    pub max: bool,
    /// `ignore-error=true`: a failed export is a warning.
    pub ignore_error: bool,
}

impl CacheSpec {
    /// Parse `type=registry,ref=REF[,mode=min|max][,ignore-error=BOOL]`, or
    /// a bare `REF` (Docker's `--cache-from IMAGE`); `flag` names the flag in errors.
    pub fn parse(flag: &str, value: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid(format!("{flag} {value:?}: {why}"));
        if !value.contains('=') {
            crate::image::Reference::parse(value).map_err(|e| bad(e.to_string()))?;
            return Ok(CacheSpec { reference: value.to_string(), max: false, ignore_error: false });
        }
        let mut pairs = Vec::new();
        for part in value.split(',') {
            pairs.push(part.split_once('=').ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?);
        }
        match pairs.iter().find(|(k, _)| *k == "type").map(|(_, v)| *v) {
            Some("registry") => {}
            Some(t) => {
                return Err(bad(format!("type={t}: strata keeps a build cache in a registry only (type=registry)")))
            }
            None => return Err(bad("want type=registry".to_string())),
        }
        let (mut reference, mut max, mut ignore_error) = (None, false, false);
        for (k, v) in pairs {
            match k {
                "type" => {}
                "ref" => reference = Some(v.to_string()),
                "mode" => {
                    max = match v {
                        "min" => false,
                        "max" => true,
                        _ => return Err(bad(format!("mode={v}: want min or max"))),
                    }
                }
                "ignore-error" => {
                    ignore_error = v.parse().map_err(|_| bad(format!("ignore-error={v}: want true or false")))?
                }
                // BuildKit's choices of format, which strata's one format has no use for.
                "oci-mediatypes" | "image-manifest" | "compression" | "compression-level" | "force-compression" => {}
                _ => return Err(bad(format!("unknown key {k:?}"))),
            }
        }
        let reference = reference.ok_or_else(|| bad("want ref=REF".to_string()))?;
        crate::image::Reference::parse(&reference).map_err(|e| bad(e.to_string()))?;
        Ok(CacheSpec { reference, max, ignore_error })
    }
}

/// One step's result, as exported.
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    /// The image config after the step, as the store's cache keeps it.
    config: String,
}

/// A layer the records need: its diff ID and the blob that holds it.
#[derive(Serialize, Deserialize, Clone)]
struct CacheLayer {
    diff_id: String,
    digest: String,
    size: u64,
    media_type: String,
}

/// The artifact's config blob.
#[derive(Serialize, Deserialize)]
struct CacheConfig {
    records: Vec<Record>,
    layers: Vec<CacheLayer>,
}

/// The diff IDs a step's config lists.
pub(super) fn diff_ids(config: &Value) -> Vec<Digest> {
    config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d.as_str().and_then(|d| Digest::parse(d).ok())).collect())
        .unwrap_or_default()
}

/// An image given as `--cache-from`: its history (created_by, whether an
/// empty layer) and its layers' diff IDs.
struct CacheImage {
    history: Vec<(String, bool)>,
    diff_ids: Vec<Digest>,
}

/// What a step must find next in a cache image's history.
pub(super) struct Expect {
    /// The history entry's created_by, or its first word when `exact` is false.
    pub(super) text: String,
    pub(super) exact: bool,
    /// Whether the entry must have a layer (`Some(true)`), must not, or either.
    pub(super) layer: Option<bool>,
}

/// Where a stage is in a cache image's history: (image, history entry, layer).
#[derive(Clone, Copy)]
pub(super) struct Cursor(usize, usize, usize);

/// What a `--cache-from` reference held.
enum Source {
    Records(CacheConfig),
    Image(CacheImage, Vec<CacheLayer>),
}

/// The cache records of every `--cache-from` that could be read.
#[derive(Default)]
pub(super) struct Imported {
    /// Key → the config after that step.
    records: HashMap<Digest, String>,
    /// Images to match steps against by history.
    images: Vec<CacheImage>,
    /// Diff ID → its blob and the source that has it.
    layers: HashMap<Digest, (CacheLayer, usize)>,
    sources: Vec<BlobSource>,
}

impl Imported {
    /// Read each spec's artifact; one that cannot be read is a warning on `out`.
    pub(super) fn load(core: &Core, specs: &[CacheSpec], out: &mut dyn Write) -> Result<Self> {
        let mut me = Imported::default();
        for spec in specs {
            match Self::read(core, &spec.reference) {
                Ok((found, source)) => {
                    let n = me.sources.len();
                    me.sources.push(source);
                    let layers = match found {
                        Source::Records(config) => {
                            let count = config.records.len();
                            for r in config.records {
                                let Ok(k) = Digest::parse(&r.key) else { continue };
                                me.records.entry(k).or_insert(r.config);
                            }
                            let _ = writeln!(out, "importing cache from {}: {count} steps", spec.reference);
                            config.layers
                        }
                        Source::Image(image, layers) => {
                            me.images.push(image);
                            let _ = writeln!(
                                out,
                                "importing cache from {}: an image, matched by its history",
                                spec.reference
                            );
                            layers
                        }
                    };
                    for l in layers {
                        let Ok(d) = Digest::parse(&l.diff_id) else { continue };
                        me.layers.entry(d).or_insert((l, n));
                    }
                }
                Err(e) => {
                    let why = match e.kind() {
                        ErrorKind::NotFound => "not found".to_string(),
                        _ => e.to_string(),
                    };
                    let _ = writeln!(out, "[Warning] --cache-from {}: {why}; building without it", spec.reference);
                }
            }
        }
        Ok(me)
    }

    fn read(core: &Core, reference: &str) -> Result<(Source, BlobSource)> {
        let (manifest, config, source) =
            Registries::new(core).fetch_artifact(reference, &RegistryOptions::default())?;
        let kind = manifest.config().media_type().to_string();
        if kind == CONFIG_TYPE {
            let config: CacheConfig = serde_json::from_slice(&config)
                .map_err(|e| Error::invalid(format!("the build cache's records are not valid: {e}")))?;
            return Ok((Source::Records(config), source));
        }
        if kind != crate::image::OCI_CONFIG && kind != "application/vnd.docker.container.image.v1+json" {
            return Err(Error::invalid(format!("neither a strata build cache nor an image (its config is {kind})")));
        }
        let config: Value = serde_json::from_slice(&config)
            .map_err(|e| Error::invalid(format!("the image's config is not valid JSON: {e}")))?;
        let ids = diff_ids(&config);
        if ids.len() != manifest.layers().len() {
            return Err(Error::invalid("the image's config and manifest list different numbers of layers"));
        }
        let history = config["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .map(|e| {
                        let by = e["created_by"].as_str().unwrap_or_default().to_string();
                        (by, e["empty_layer"].as_bool().unwrap_or(false))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut layers = Vec::new();
        for (d, l) in ids.iter().zip(manifest.layers()) {
            layers.push(CacheLayer {
                diff_id: d.to_string(),
                digest: l.digest().to_string(),
                size: l.size(),
                media_type: l.media_type().to_string(),
            });
        }
        Ok((Source::Image(CacheImage { history, diff_ids: ids }, layers), source))
    }

    /// Where a stage built on `config` starts in an imported image's
    /// history: the first image whose layers and history begin with its own.
    pub(super) fn start(&self, config: &Value) -> Option<Cursor> {
        let ids = diff_ids(config);
        let history: Vec<String> = config["history"]
            .as_array()
            .map(|h| h.iter().map(|e| e["created_by"].as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default();
        self.images
            .iter()
            .position(|img| {
                img.diff_ids.starts_with(&ids)
                    && img.history.len() >= history.len()
                    && img.history.iter().zip(&history).all(|((by, _), want)| by == want)
            })
            .map(|i| Cursor(i, history.len(), ids.len()))
    }

    /// Move `cursor` past a step that expects `want` (in order): the layer
    /// the image has for it, if any; `None` when the history does not match.
    pub(super) fn advance(&self, cursor: &mut Cursor, want: &[Expect]) -> Option<Option<Digest>> {
        let img = &self.images[cursor.0];
        let mut layer = None;
        for w in want {
            let (by, empty) = img.history.get(cursor.1)?;
            let text_ok = match w.exact {
                true => *by == w.text,
                false => by.split(' ').next() == Some(w.text.as_str()),
            };
            if !text_ok || w.layer.is_some_and(|l| l == *empty) {
                return None;
            }
            cursor.1 += 1;
            if !*empty {
                layer = Some(img.diff_ids.get(cursor.2)?.clone());
                cursor.2 += 1;
            }
        }
        Some(layer)
    }

    /// The config after the step `key`, when some source has it and every
    /// layer it needs is here or can be fetched.
    pub(super) fn hit(&self, core: &Core, key: &Digest) -> Result<Option<Value>> {
        let Some(text) = self.records.get(key) else { return Ok(None) };
        let Ok(config) = serde_json::from_str::<Value>(text) else { return Ok(None) };
        let ids = diff_ids(&config);
        for (d, c) in ids.iter().zip(chain_ids(&ids)) {
            if !self.layers.contains_key(d) && core.store.layer(&c)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(config))
    }

    /// Make the layers of `config` present: those missing are fetched from
    /// the source that listed them. Returns every layer, bottom first, and
    /// how many were fetched.
    pub(super) fn layers_of(&self, core: &Core, config: &Value) -> Result<(Vec<LayerRecord>, usize)> {
        let ids = diff_ids(config);
        let chains = chain_ids(&ids);
        let mut out = Vec::new();
        let mut fetched = 0;
        for (i, (d, c)) in ids.iter().zip(&chains).enumerate() {
            if let Some(l) = core.store.layer(c)?.filter(|l| l.diff_id == *d) {
                out.push(l);
                continue;
            }
            let Some((l, n)) = self.layers.get(d) else {
                return Err(Error::NotFound { what: "layer in the build cache", name: d.to_string() });
            };
            let blob = Digest::parse(&l.digest)?;
            let spec = LayerSpec {
                chain_id: c.clone(),
                diff_id: d.clone(),
                lowers: chains[..i].iter().rev().cloned().collect(),
                blob: Some(blob.clone()),
                media_type: Some(l.media_type.clone()),
                label: format!("cache layer {blob}"),
            };
            let source = &self.sources[*n];
            let rec = core.unpacker().ensure_layer(&core.store, &spec, &|| source.open(&blob, l.size))?;
            core.store.lease_layers(std::slice::from_ref(c))?;
            out.push(rec);
            fetched += 1;
        }
        Ok((out, fetched))
    }

    /// The blob that holds `diff_id`, when an imported cache lists it.
    fn layer(&self, diff_id: &Digest) -> Option<&CacheLayer> {
        self.layers.get(diff_id).map(|(l, _)| l)
    }
}

/// What a build exports: each step's key and config, in build order.
#[derive(Default)]
pub(super) struct Exported {
    steps: Vec<(usize, Digest, String)>,
}

impl Exported {
    /// Note the step `key` of `stage` and the config after it.
    pub(super) fn add(&mut self, stage: usize, key: &Digest, config: &Value) {
        let text = serde_json::to_string(config).expect("config serializes");
        self.steps.push((stage, key.clone(), text));
    }

    /// Push the records of `stages` (all of them for `mode=max`) to `spec`'s reference.
    pub(super) fn push(
        &self,
        core: &Core,
        spec: &CacheSpec,
        stages: &HashSet<usize>,
        imported: &Imported,
    ) -> Result<Digest> {
        let mut records = Vec::new();
        let mut layers: Vec<(CacheLayer, Option<LayerRecord>)> = Vec::new();
        let mut seen = HashSet::new();
        for (stage, key, text) in &self.steps {
            if !spec.max && !stages.contains(stage) {
                continue;
            }
            let config: Value = serde_json::from_str(text).expect("written above");
            let ids = diff_ids(&config);
            for (d, c) in ids.iter().zip(chain_ids(&ids)) {
                if !seen.insert(d.clone()) {
                    continue;
                }
                // Here, or only in an imported cache (never fetched: the registry mounts or has it).
                let layer = match core.store.layer(&c)? {
                    Some(l) => (
                        CacheLayer {
                            diff_id: d.to_string(),
                            digest: l.blob.to_string(),
                            size: l.blob_size,
                            media_type: l.media_type.clone(),
                        },
                        Some(l),
                    ),
                    None => match imported.layer(d) {
                        Some(l) => (l.clone(), None),
                        None => return Err(Error::NotFound { what: "layer of a build step", name: d.to_string() }),
                    },
                };
                layers.push(layer);
            }
            records.push(Record { key: key.to_string(), config: text.clone() });
        }
        let config = CacheConfig { records, layers: layers.iter().map(|(l, _)| l.clone()).collect() };
        let bytes = serde_json::to_vec(&config).expect("cache config serializes");
        let blobs: Vec<(crate::image::LayerDescriptor, Option<LayerRecord>)> = layers
            .into_iter()
            .map(|(l, rec)| {
                Ok((
                    crate::image::LayerDescriptor {
                        media_type: l.media_type,
                        digest: Digest::parse(&l.digest)?,
                        size: l.size,
                    },
                    rec,
                ))
            })
            .collect::<Result<_>>()?;
        Registries::new(core).push_artifact(
            &spec.reference,
            CONFIG_TYPE,
            bytes,
            &blobs,
            &RegistryOptions::default(),
            Arc::new(crate::registry::Quiet),
        )
    }
}
