//! The images service: what is in the store as images and how images get
//! in and out. `ingest` is the one way in (load, import and the registry's
//! pull hand it a source of layer streams); `store_image` records an image
//! made here (build, commit); save writes archives; tags, listing,
//! inspection, history, removal with garbage collection, read-only mounts.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::content::ContentStore;
use crate::core::Core;
use crate::digest::{chain_ids, Digest};
use crate::error::{Error, IoContext, Result};
use crate::image::archive::{self, Archive, ArchiveImage, SaveFormat, SaveImage};
use crate::image::{self, LayerDescriptor, Platform, Reference};
use crate::layer::Compression;
use crate::snapshot::mount;
use crate::store::{now, ImageRecord, LayerRecord};
use crate::unpack::{layer_dir, LayerSpec};

/// An image as `images` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    /// Image ID.
    pub id: Digest,
    /// Full tag names.
    pub tags: Vec<String>,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// Sum of its layers' sizes.
    pub size: u64,
}

/// One row of `history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// The image ID on the top row, else None (`<missing>`).
    pub id: Option<Digest>,
    /// Created (seconds since the epoch).
    pub created: i64,
    /// The command that made it.
    pub created_by: String,
    /// Its layer's size; 0 for entries without a layer.
    pub size: u64,
    /// Comment.
    pub comment: String,
    /// No layer for this entry.
    pub empty_layer: bool,
}

/// What `rmi` did, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A tag was removed.
    Untagged(String),
    /// An image or layer was deleted.
    Deleted(Digest),
}

/// What a prune removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    /// Containers removed (`system prune`: the stopped ones).
    pub containers: Vec<String>,
    /// Networks removed (`system prune`: user networks no container is on).
    pub networks: Vec<String>,
    /// Images deleted.
    pub images: Vec<Digest>,
    /// Layers deleted.
    pub layers: Vec<Digest>,
    /// Bytes freed (layer file bytes plus blob bytes).
    pub reclaimed: u64,
}

/// What `load` brought in.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Image ID.
    pub id: Digest,
    /// Tags set.
    pub tags: Vec<String>,
}

/// The images service: load, import, save, list, inspect, history, tag,
/// remove, prune, mount; what they add goes through `ingest`, the one way in (pull too).
pub struct Images<'c> {
    core: &'c Core,
}

impl<'c> Images<'c> {
    /// The service over `core`.
    pub fn new(core: &'c Core) -> Self {
        Images { core }
    }

    /// Record an image from its config, manifest (if it came with one), tags
    /// and layer sources; unpacks layers in parallel where the backend allows.
    pub(crate) fn ingest(
        &self,
        img: ArchiveImage,
        open_layer: &(dyn Fn(&str) -> Result<Box<dyn Read + Send>> + Sync),
        label: &str,
        workers: usize,
    ) -> Result<Digest> {
        let id = Digest::of(&img.config);
        let cfg = image::parse_config(&img.config, id.as_str())?;
        let diff_ids = image::diff_ids(&cfg)?;
        if diff_ids.len() != img.layers.len() {
            return Err(Error::invalid(format!(
                "{label}: image {id} config lists {} layers but the archive has {}",
                diff_ids.len(),
                img.layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        // The same image is here already: only its names are new.
        if self.core.store.image(&id)?.is_some() && self.core.store.image_layers(&id)?.len() == chains.len() {
            let rec = self.core.image_record(&id)?;
            self.core.store.put_image(&rec, &chains, &img.tags)?;
            return Ok(id);
        }
        let manifest = img.manifest.as_ref().map(|m| image::parse_manifest(m, label)).transpose()?;
        let specs: Vec<LayerSpec> = img
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerSpec {
                chain_id: chains[i].clone(),
                diff_id: diff_ids[i].clone(),
                lowers: chains[..i].iter().rev().cloned().collect(),
                blob: l.digest.clone(),
                media_type: manifest.as_ref().map(|m| m.layers()[i].media_type().to_string()),
                label: format!("{} ({} of {} in {label})", l.entry, i + 1, img.layers.len()),
            })
            .collect();
        let records = self.unpack_all(&specs, &img, open_layer, workers)?;
        // A layer already present under another blob (e.g. gzip vs plain): the manifest still needs its own,
        // unless it can be fetched again from where it came (push and save fetch or replace it then).
        if let Some(m) = manifest.as_ref().filter(|_| !img.blobs_remote) {
            for (l, d) in img.layers.iter().zip(m.layers()) {
                let digest = image::digest_of(d)?;
                if !self.core.content.has(&digest) && self.core.store.split_layer_with_blob(&digest)?.is_none() {
                    self.core.unpacker().ensure_blob(&digest, open_layer(&l.entry)?)?;
                }
            }
        }
        self.core.content.write_bytes(&img.config, Some(&id))?;
        let manifest_bytes = match img.manifest {
            Some(m) => m,
            None => {
                let layers: Vec<LayerDescriptor> = records
                    .iter()
                    .map(|r| LayerDescriptor {
                        media_type: r.media_type.clone(),
                        digest: r.blob.clone(),
                        size: r.blob_size,
                    })
                    .collect();
                image::make_manifest(&id, img.config.len() as u64, &layers)?
            }
        };
        let manifest_digest = self.core.content.write_bytes(&manifest_bytes, None)?;
        let rec = ImageRecord {
            id: id.clone(),
            manifest: manifest_digest,
            created: image::parse_time(cfg.created().as_deref()),
            added: now(),
        };
        self.core.store.put_image(&rec, &chains, &img.tags)?;
        Ok(id)
    }

    fn unpack_all(
        &self,
        specs: &[LayerSpec],
        img: &ArchiveImage,
        open_layer: &(dyn Fn(&str) -> Result<Box<dyn Read + Send>> + Sync),
        workers: usize,
    ) -> Result<Vec<LayerRecord>> {
        let parallel = self.core.snapshots.independent_layers();
        let workers = if parallel { specs.len().clamp(1, workers.max(1)) } else { 1 };
        let unpacker = self.core.unpacker();
        let indexes: Vec<usize> = (0..specs.len()).collect();
        crate::work::each(&indexes, workers, |&i| {
            let entry = img.layers[i].entry.clone();
            unpacker.ensure_layer(&self.core.store, &specs[i], &|| open_layer(&entry))
        })
    }

    /// Record an image made here: `config` (its rootfs set from `layers`,
    /// `history` extended by `entry`) and a manifest; returns its ID.
    pub(crate) fn store_image(
        &self,
        mut config: serde_json::Value,
        layers: &[crate::store::LayerRecord],
        entry: Option<serde_json::Value>,
        tags: &[String],
        created: i64,
    ) -> Result<Digest> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        config["created"] = image::format_time(created).into();
        config["rootfs"] =
            serde_json::json!({"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()});
        if let Some(entry) = entry {
            match config["history"].as_array_mut() {
                Some(h) => h.push(entry),
                None => config["history"] = serde_json::json!([entry]),
            }
        }
        let bytes = serde_json::to_vec(&config).expect("config serializes");
        let id = self.core.content.write_bytes(&bytes, None)?;
        let manifest_layers: Vec<LayerDescriptor> = layers
            .iter()
            .map(|l| LayerDescriptor { media_type: l.media_type.clone(), digest: l.blob.clone(), size: l.blob_size })
            .collect();
        let manifest = image::make_manifest(&id, bytes.len() as u64, &manifest_layers)?;
        let manifest = self.core.content.write_bytes(&manifest, None)?;
        let img = ImageRecord { id: id.clone(), manifest, created, added: now() };
        self.core.store.put_image(&img, &chain_ids(&diff_ids), tags)?;
        Ok(id)
    }

    /// `load`: bring in every image of a docker-archive or oci-archive
    /// (plain, gzip or zstd). `None` reads standard input.
    pub fn load(&self, input: Option<&Path>) -> Result<Vec<Loaded>> {
        let r = self.load_inner(input);
        if r.is_err() {
            self.core.roll_back();
        }
        r
    }

    fn load_inner(&self, input: Option<&Path>) -> Result<Vec<Loaded>> {
        let label = input.map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
        let (file, _spool) = self.seekable_tar(input, &label)?;
        let archive = Archive::open(file, &label)?;
        let images = archive.images()?;
        let mut out = Vec::new();
        for img in images {
            let tags = img.tags.clone();
            let open = |entry: &str| -> Result<Box<dyn Read + Send>> { Ok(Box::new(archive.reader(entry)?)) };
            let id = self.ingest(img, &open, &label, 4)?;
            out.push(Loaded { id, tags });
        }
        Ok(out)
    }

    /// An uncompressed, seekable tar for `input`: the file itself when it is
    /// one, else a decompressed copy in tmp/ (removed when the guard drops).
    fn seekable_tar(&self, input: Option<&Path>, label: &str) -> Result<(File, Option<crate::tmp::TempDir>)> {
        if let Some(p) = input {
            let mut f = File::open(p).at(p)?;
            let mut head = [0u8; 4];
            let n = f.read(&mut head).at(p)?;
            if Compression::detect(&head[..n]) == Compression::None && f.metadata().at(p)?.is_file() {
                return Ok((File::open(p).at(p)?, None));
            }
        }
        let reader: Box<dyn Read> = match input {
            Some(p) => Box::new(File::open(p).at(p)?),
            None => Box::new(io::stdin().lock()),
        };
        let (_, mut dec) = crate::layer::decompress(BufReader::with_capacity(1 << 20, reader))
            .map_err(|e| Error::stream(format!("reading {label}"), e))?;
        let dir = crate::tmp::TempDir::new(&self.core.tmp, "spool")?;
        let path = dir.path().join("archive.tar");
        let mut f = File::create(&path).at(&path)?;
        io::copy(&mut dec, &mut f).map_err(|e| Error::stream(format!("reading {label}"), e))?;
        Ok((File::open(&path).at(&path)?, Some(dir)))
    }

    /// `import`: a rootfs tarball (plain or compressed) becomes a one-layer image.
    pub fn import(&self, input: Option<&Path>, reference: Option<&str>, message: Option<&str>) -> Result<Digest> {
        let tag = reference.map(Reference::parse).transpose()?;
        let r = self.import_inner(input, tag, message);
        if r.is_err() {
            self.core.roll_back();
        }
        r
    }

    fn import_inner(&self, input: Option<&Path>, tag: Option<Reference>, message: Option<&str>) -> Result<Digest> {
        let label = input.map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into());
        let mut reader: Box<dyn Read + Send> = match input {
            Some(p) => Box::new(File::open(p).at(p)?),
            None => Box::new(io::stdin()),
        };
        let layer = self.core.unpacker().import_layer(&self.core.store, &mut reader, &label)?;
        let created = image::format_time(now());
        let host = Platform::host();
        let config = serde_json::json!({
            "architecture": host.architecture,
            "os": host.os,
            "created": created,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.as_str()]},
            "history": [{"created": created, "created_by": "strata import", "comment": message.unwrap_or("Imported from tarball")}],
        });
        let config = serde_json::to_vec(&config).expect("config serializes");
        let id = self.core.content.write_bytes(&config, None)?;
        let manifest = image::make_manifest(
            &id,
            config.len() as u64,
            &[LayerDescriptor {
                media_type: layer.media_type.clone(),
                digest: layer.blob.clone(),
                size: layer.blob_size,
            }],
        )?;
        let manifest = self.core.content.write_bytes(&manifest, None)?;
        let rec = ImageRecord { id: id.clone(), manifest, created: now(), added: now() };
        let tags: Vec<String> = tag.into_iter().map(|t| t.to_string()).collect();
        self.core.store.put_image(&rec, &[layer.chain_id], &tags)?;
        Ok(id)
    }

    fn save_image(&self, name: &str) -> Result<SaveImage> {
        let id = self.core.resolve_image(name)?;
        let rec = self.core.image_record(&id)?;
        let by_tag = Reference::parse(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|t| self.core.store.tag(t).ok().flatten().as_ref() == Some(&id));
        let layers = self.core.store.image_layers(&id)?;
        Ok(SaveImage {
            config: id.clone(),
            manifest: self.manifest_of_local_blobs(&id, &rec.manifest, &layers)?,
            tags: by_tag.into_iter().collect(),
            layers,
        })
    }

    /// The image's manifest when it names exactly the blobs its layers are
    /// stored as; otherwise (a pull that found a layer here under another
    /// blob, gzip vs plain, and left the registry's copy there) a manifest
    /// of the same config and layers naming the stored blobs, so what `save`
    /// writes is whole. The image ID is the same either way.
    fn manifest_of_local_blobs(&self, id: &Digest, manifest: &Digest, layers: &[LayerRecord]) -> Result<Digest> {
        let bytes = self.core.content.read(manifest)?;
        let m = image::parse_manifest(&bytes, manifest.as_str())?;
        let names: Vec<Digest> = m.layers().iter().map(image::digest_of).collect::<Result<_>>()?;
        if names.len() == layers.len() && names.iter().zip(layers).all(|(d, l)| d == &l.blob) {
            return Ok(manifest.clone());
        }
        let descriptors: Vec<LayerDescriptor> = layers
            .iter()
            .map(|l| LayerDescriptor { media_type: l.media_type.clone(), digest: l.blob.clone(), size: l.blob_size })
            .collect();
        let config_size = self.core.content.read(id)?.len() as u64;
        self.core.content.write_bytes(&image::make_manifest(id, config_size, &descriptors)?, None)
    }

    /// `save`: write images to `output` (a file, or a directory for oci-dir);
    /// `None` writes a tar to `out`. The output appears whole or not at all.
    pub fn save(&self, names: &[String], format: SaveFormat, output: Option<&Path>, out: &mut dyn Write) -> Result<()> {
        let images = names.iter().map(|n| self.save_image(n)).collect::<Result<Vec<_>>>()?;
        let blobs = StoredBlobs { content: &self.core.content, layers_dir: &self.core.layers_dir };
        let Some(path) = output else {
            return match format {
                SaveFormat::DockerArchive => archive::write_docker_archive(&blobs, &images, out).map(|_| ()),
                SaveFormat::OciArchive => archive::write_oci_archive(&blobs, &images, out).map(|_| ()),
                SaveFormat::OciDir => Err(Error::invalid("oci-dir needs an output directory (-o)")),
            };
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().ok_or_else(|| Error::invalid(format!("bad output path {}", path.display())))?;
        let partial = parent.join(format!(".{}.strata-partial-{}", name.to_string_lossy(), std::process::id()));
        let result = (|| -> Result<()> {
            match format {
                SaveFormat::OciDir => {
                    if path.exists() && fs::read_dir(path).at(path)?.next().is_some() {
                        return Err(Error::AlreadyExists(format!("{} exists and is not empty", path.display())));
                    }
                    fs::create_dir(&partial).at(&partial)?;
                    archive::write_oci_dir(&blobs, &images, &partial)?;
                    if path.exists() {
                        fs::remove_dir(path).at(path)?;
                    }
                }
                _ => {
                    let f = io::BufWriter::with_capacity(1 << 20, File::create(&partial).at(&partial)?);
                    let f = if format == SaveFormat::DockerArchive {
                        archive::write_docker_archive(&blobs, &images, f)?
                    } else {
                        archive::write_oci_archive(&blobs, &images, f)?
                    };
                    f.into_inner()
                        .map_err(|e| Error::stream("writing archive", e.into_error()))?
                        .sync_all()
                        .at(&partial)?;
                }
            }
            fs::rename(&partial, path).at(path)
        })();
        if result.is_err() {
            let _ = crate::tree::remove(&partial);
        }
        result
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for img in self.core.store.images()? {
            let size = self.core.store.image_layers(&img.id)?.iter().map(|l| l.size).sum();
            out.push(ImageSummary { tags: self.core.store.tags_of(&img.id)?, id: img.id, created: img.created, size });
        }
        Ok(out)
    }

    /// An image's labels (from its config).
    fn labels_of(&self, id: &Digest) -> Result<std::collections::BTreeMap<String, String>> {
        let (_, cfg) = self.core.config_of(id)?;
        Ok(cfg.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default().into_iter().collect())
    }

    /// `NAME@sha256:...` for each repository the image's manifest was pulled
    /// from or pushed to, as Docker shows them.
    pub fn repo_digests(&self, id: &Digest) -> Result<Vec<String>> {
        let rec = self.core.image_record(id)?;
        let mut out: Vec<String> = self
            .core
            .store
            .all_blob_sources(&rec.manifest)?
            .into_iter()
            .map(|(reg, repo)| {
                format!("{}@{}", crate::image::reference::familiar(&format!("{reg}/{repo}")), rec.manifest)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// `images --filter`: Docker's keys (dangling, reference, label,
    /// before, since); `reference` patterns match `NAME[:TAG]` as shown.
    pub fn list_filtered(&self, filters: &crate::filter::Filters) -> Result<Vec<ImageSummary>> {
        let mut out = self.list()?;
        if filters.is_empty() {
            return Ok(out);
        }
        let created_of =
            |name: &str| -> Result<i64> { Ok(self.core.image_record(&self.core.resolve_image(name)?)?.created) };
        let mut before = None;
        for v in filters.values("before") {
            before = Some(created_of(v)?);
        }
        let mut since = None;
        for v in filters.values("since") {
            since = Some(created_of(v)?);
        }
        for d in filters.values("dangling") {
            if d != "true" && d != "false" {
                return Err(Error::invalid(format!("invalid filter 'dangling={d}': want true or false")));
            }
        }
        let want_labels = !filters.values("label").is_empty();
        let mut kept = Vec::new();
        for mut img in out.drain(..) {
            let labels = if want_labels { self.labels_of(&img.id)? } else { Default::default() };
            if !filters.values("reference").is_empty() {
                img.tags.retain(|t| {
                    let shown = display_tag(t);
                    let (name, _) = split_tag(&shown);
                    filters.any("reference", |p| crate::filter::glob(p, &shown) || crate::filter::glob(p, name))
                });
                if img.tags.is_empty() {
                    continue;
                }
            }
            let ok = filters.any("dangling", |v| (v == "true") == img.tags.is_empty())
                && filters.any("label", |v| crate::filter::label_matches(&labels, v))
                && before.is_none_or(|t| img.created < t)
                && since.is_none_or(|t| img.created > t);
            if ok {
                kept.push(img);
            }
        }
        Ok(kept)
    }

    /// `images REFERENCE`: the images with a tag in REFERENCE's repository
    /// (and, when REFERENCE names a tag, that tag), each listing only the
    /// tags that match, as Docker's.
    pub fn list_matching(&self, reference: &str) -> Result<Vec<ImageSummary>> {
        let r = Reference::parse(reference)?;
        let named_tag = !split_tag(reference.split('@').next().unwrap_or(reference)).1.is_empty();
        let mut out = self.list()?;
        for img in &mut out {
            img.tags.retain(|t| {
                let (name, tag) = split_tag(t);
                name == r.name() && (!named_tag || r.tag.as_deref() == Some(tag))
            });
        }
        out.retain(|i| !i.tags.is_empty());
        Ok(out)
    }

    /// `inspect`: Docker's fields plus the layers with their sizes.
    pub fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let id = self.core.resolve_image(name)?;
        let rec = self.core.image_record(&id)?;
        let (raw, cfg) = self.core.config_of(&id)?;
        let layers = self.core.store.image_layers(&id)?;
        let tags: Vec<String> = self.core.store.tags_of(&id)?.iter().map(|t| display_tag(t)).collect();
        Ok(serde_json::json!({
            "Id": id.as_str(),
            "Digest": rec.manifest.as_str(),
            "RepoTags": tags,
            "RepoDigests": self.repo_digests(&id)?,
            "Created": raw.get("created").cloned().unwrap_or(serde_json::Value::Null),
            "Author": raw.get("author").cloned().unwrap_or_default(),
            "Architecture": cfg.architecture().to_string(),
            "Os": cfg.os().to_string(),
            "Variant": cfg.variant(),
            "Config": raw.get("config").cloned().unwrap_or_default(),
            "Size": layers.iter().map(|l| l.size).sum::<u64>(),
            "RootFS": {"Type": "layers", "Layers": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
            "Layers": layers.iter().map(|l| serde_json::json!({
                "DiffID": l.diff_id.as_str(),
                "ChainID": l.chain_id.as_str(),
                "Digest": l.blob.as_str(),
                "MediaType": l.media_type,
                "CompressedSize": l.blob_size,
                "Size": l.size,
            })).collect::<Vec<_>>(),
            "GraphDriver": {"Name": self.core.driver().to_string(), "Data": {
                "LowerDirs": layers.iter().rev().map(|l| layer_dir(&self.core.layers_dir, &l.chain_id).display().to_string()).collect::<Vec<_>>(),
            }},
        }))
    }

    /// `history`: newest first.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryRow>> {
        let id = self.core.resolve_image(name)?;
        let (_, cfg) = self.core.config_of(&id)?;
        let layers = self.core.store.image_layers(&id)?;
        let mut sizes = layers.iter().map(|l| l.size);
        let mut rows = Vec::new();
        for h in cfg.history().clone().unwrap_or_default() {
            let empty = h.empty_layer().unwrap_or(false);
            rows.push(HistoryRow {
                id: None,
                created: image::parse_time(h.created().as_deref()),
                created_by: h.created_by().clone().unwrap_or_default(),
                size: if empty { 0 } else { sizes.next().unwrap_or(0) },
                comment: h.comment().clone().unwrap_or_default(),
                empty_layer: empty,
            });
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(id);
        }
        Ok(rows)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let id = self.core.resolve_image(source)?;
        let r = Reference::parse(target)?;
        if r.digest.is_some() {
            return Err(Error::invalid(format!("refusing to create a tag with a digest reference: {target}")));
        }
        self.core.store.set_tag(&r.to_string(), &id)?;
        crate::events::record(self.core, "image", "tag", id.as_str(), &[("name", &display_tag(&r.to_string()))]);
        Ok(())
    }

    /// `rmi`: untag, and delete images left without tags, then every layer
    /// and blob nothing else uses. Refuses images containers use.
    pub fn remove(&self, names: &[String], force: bool) -> Result<Vec<Removal>> {
        self.core.exclusive()?;
        let mut out = Vec::new();
        let mut first_err = None;
        for name in names {
            match self.remove_one(name, force) {
                Ok(mut r) => {
                    for x in &r {
                        match x {
                            Removal::Untagged(t) => {
                                crate::events::record(self.core, "image", "untag", t, &[("name", t)])
                            }
                            Removal::Deleted(d) => crate::events::record(self.core, "image", "delete", d.as_str(), &[]),
                        }
                    }
                    out.append(&mut r)
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        crate::fault::failpoint!("image-remove");
        let (layers, _) = self.core.collect_garbage()?;
        out.extend(layers.into_iter().map(Removal::Deleted));
        match first_err {
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                tracing::error!("{e}");
                Err(e)
            }
            None => Ok(out),
        }
    }

    fn remove_one(&self, name: &str, force: bool) -> Result<Vec<Removal>> {
        let id = self.core.resolve_image(name)?;
        let tags = self.core.store.tags_of(&id)?;
        let by_tag = Reference::parse(name).ok().map(|r| r.to_string()).filter(|t| tags.contains(t));
        let containers = self.core.store.containers_using(&id)?;
        let mut out = Vec::new();
        if let Some(t) = &by_tag {
            if tags.len() > 1 {
                self.core.store.remove_tag(t)?;
                return Ok(vec![Removal::Untagged(display_tag(t))]);
            }
        } else if tags.len() > 1 && !force {
            return Err(Error::InUse(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        if !containers.is_empty() {
            return Err(Error::InUse(format!(
                "conflict: unable to remove image {name} - image {} is in use by container(s): {}",
                id.short(),
                containers.join(", ")
            )));
        }
        let _ = mount::unmount(&self.core.root.join("mounts").join(id.hex()));
        let _ = fs::remove_dir(self.core.root.join("mounts").join(id.hex()));
        for t in &tags {
            out.push(Removal::Untagged(display_tag(t)));
        }
        self.core.store.delete_image(&id)?;
        out.push(Removal::Deleted(id));
        Ok(out)
    }

    /// `image prune`: delete dangling images (no tag), or with `all` every
    /// image no container uses, and what only they used.
    pub fn prune(&self, all: bool, filters: &crate::filter::Filters) -> Result<PruneReport> {
        self.core.exclusive()?;
        let mut report = PruneReport::default();
        for img in self.core.store.images()? {
            let tags = self.core.store.tags_of(&img.id)?;
            if !filters.before_until(img.created)? {
                continue;
            }
            if !filters.values("label").is_empty() {
                let labels = self.labels_of(&img.id)?;
                if !filters.any("label", |l| crate::filter::label_matches(&labels, l)) {
                    continue;
                }
            }
            if (all || tags.is_empty()) && self.core.store.containers_using(&img.id)?.is_empty() {
                let _ = mount::unmount(&self.core.root.join("mounts").join(img.id.hex()));
                self.core.store.delete_image(&img.id)?;
                report.images.push(img.id);
            }
        }
        let (layers, freed) = self.core.collect_garbage()?;
        report.layers = layers;
        report.reclaimed = freed;
        Ok(report)
    }

    /// Mount an image's merged tree read-only; returns the mount point.
    pub fn mount(&self, name: &str) -> Result<PathBuf> {
        let id = self.core.resolve_image(name)?;
        let target = self.core.root.join("mounts").join(id.hex());
        if mount::is_mounted(&target) {
            return Ok(target);
        }
        fs::create_dir_all(&target).at(&target)?;
        let layers: Vec<PathBuf> = self
            .core
            .store
            .image_layers(&id)?
            .iter()
            .rev()
            .map(|l| layer_dir(&self.core.layers_dir, &l.chain_id))
            .collect();
        if layers.is_empty() {
            return Err(Error::invalid(format!("image {} has no layers to mount", id.short())));
        }
        let mounts = self.core.snapshots.view(&layers, &target)?;
        mount::mount_all(&mounts)?;
        Ok(target)
    }

    /// Undo [`Engine::mount_image`].
    pub fn unmount(&self, name: &str) -> Result<()> {
        let id = self.core.resolve_image(name)?;
        let target = self.core.root.join("mounts").join(id.hex());
        mount::unmount(&target)?;
        let _ = fs::remove_dir(&target);
        Ok(())
    }
}

/// Blobs as `save` reads them from this store.
struct StoredBlobs<'a> {
    content: &'a ContentStore,
    layers_dir: &'a Path,
}

impl archive::BlobSource for StoredBlobs<'_> {
    fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        self.content.read(d)
    }
    fn open_layer(&self, l: &LayerRecord) -> Result<Box<dyn Read + Send>> {
        crate::unpack::open_layer_blob(self.layers_dir, self.content, l)
    }
}

use crate::image::reference::{display_tag, split_tag};
