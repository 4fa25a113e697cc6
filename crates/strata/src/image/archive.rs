//! Image archives: reading docker-archive (`docker save`, `podman save`)
//! and oci-archive tars, and writing docker-archive, oci-archive and OCI
//! layout directories.
//!
//! An archive is indexed once (header by header, seeking past data), then
//! each entry is read in place with positioned reads, so several layers of
//! one file can be unpacked at once without copying them out first.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::reference::{display_tag, Reference};
use super::{digest_of, is_index, parse_index, parse_manifest, pick_manifest, Platform, OCI_INDEX};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::layer::decompress;
use crate::store::LayerRecord;

/// Where an entry's data sits in the archive file.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// An indexed, uncompressed image archive on disk.
pub struct Archive {
    file: Arc<File>,
    label: String,
    entries: HashMap<String, Span>,
}

/// A reader of one archive entry, by positioned reads.
pub struct EntryReader {
    file: Arc<File>,
    pos: u64,
    end: u64,
}

impl Read for EntryReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = (self.end - self.pos) as usize;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left);
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "archive ends inside this entry"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in name.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// An image found in an archive.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// Config bytes (their digest is the image ID).
    pub config: Vec<u8>,
    /// The manifest, when the archive has one (OCI).
    pub manifest: Option<Vec<u8>>,
    /// Full tag names (`registry/repo:tag`).
    pub tags: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<ArchiveLayer>,
    /// The blobs can be fetched again later (a registry, recorded in
    /// `blob_sources`): a layer the store has under another blob (gzip vs
    /// plain) is then not fetched just to keep this manifest's copy.
    pub blobs_remote: bool,
}

/// A layer blob inside an archive.
#[derive(Debug, Clone)]
pub struct ArchiveLayer {
    /// Entry name.
    pub entry: String,
    /// The blob's digest, when the archive states it.
    pub digest: Option<Digest>,
}

#[derive(Deserialize, Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl Archive {
    /// Index an uncompressed tar file.
    pub fn open(file: File, label: &str) -> Result<Self> {
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        {
            let mut ar = tar::Archive::new(&file);
            let err = |e: io::Error| Error::invalid(format!("archive {label} is truncated or not a tar archive: {e}"));
            for entry in ar.entries_with_seek().map_err(err)? {
                let entry = entry.map_err(err)?;
                let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                let kind = entry.header().entry_type();
                if kind.is_symlink() || kind.is_hard_link() {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).to_string();
                        let base =
                            if kind.is_symlink() { name.rsplit_once('/').map(|(d, _)| d).unwrap_or("") } else { "" };
                        let resolved = normalize(&format!("{base}/{target}"));
                        links.push((name, resolved));
                    }
                } else if kind.is_file() {
                    let span = Span { offset: entry.raw_file_position(), size: entry.size() };
                    if span.offset + span.size > file.metadata().at(label)?.len() {
                        return Err(Error::invalid(format!(
                            "archive {label} is truncated: entry {name:?} needs {} bytes past the end",
                            span.offset + span.size - file.metadata().at(label)?.len()
                        )));
                    }
                    entries.insert(name, span);
                }
            }
        }
        for (name, target) in links {
            if let Some(s) = entries.get(&target).copied() {
                entries.insert(name, s);
            }
        }
        Ok(Archive { file: Arc::new(file), label: label.to_string(), entries })
    }

    /// Read an entry whole.
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.reader(name)?
            .read_to_end(&mut out)
            .map_err(|e| Error::stream(format!("reading {name} from {}", self.label), e))?;
        Ok(out)
    }

    /// Stream an entry.
    pub fn reader(&self, name: &str) -> Result<EntryReader> {
        let span = self
            .entries
            .get(&normalize(name))
            .ok_or_else(|| Error::invalid(format!("archive {} has no entry {name:?}", self.label)))?;
        Ok(EntryReader { file: self.file.clone(), pos: span.offset, end: span.offset + span.size })
    }

    /// The archive's name for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The images the archive holds, in docker-archive or OCI layout form.
    pub fn images(&self) -> Result<Vec<ArchiveImage>> {
        if self.entries.contains_key("manifest.json") {
            self.docker_images()
        } else if self.entries.contains_key("index.json") {
            self.oci_images()
        } else {
            Err(Error::invalid(format!(
                "{} is neither a docker-archive (no manifest.json) nor an oci-archive (no index.json)",
                self.label
            )))
        }
    }

    fn docker_images(&self) -> Result<Vec<ArchiveImage>> {
        let list: Vec<DockerManifestEntry> = serde_json::from_slice(&self.read("manifest.json")?)
            .map_err(|e| Error::invalid(format!("{}: manifest.json is not valid: {e}", self.label)))?;
        let mut out = Vec::new();
        for m in list {
            let config = self.read(&m.config)?;
            let mut tags = Vec::new();
            for t in m.repo_tags.unwrap_or_default() {
                tags.push(Reference::parse(&t)?.to_string());
            }
            let layers = m
                .layers
                .iter()
                .map(|l| ArchiveLayer {
                    entry: l.clone(),
                    digest: l.strip_prefix("blobs/sha256/").and_then(|h| Digest::parse(h).ok()),
                })
                .collect();
            out.push(ArchiveImage { config, manifest: None, tags, layers, blobs_remote: false });
        }
        Ok(out)
    }

    fn blob_entry(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }

    fn oci_images(&self) -> Result<Vec<ArchiveImage>> {
        let index = parse_index(&self.read("index.json")?, &format!("{}:index.json", self.label))?;
        let mut out = Vec::new();
        for desc in index.manifests() {
            let mut tags = Vec::new();
            if let Some(a) = desc.annotations() {
                let name = a.get("io.containerd.image.name").or_else(|| a.get("org.opencontainers.image.ref.name"));
                if let Some(r) =
                    name.filter(|n| n.contains(':') || n.contains('/')).and_then(|n| Reference::parse(n).ok())
                {
                    tags.push(r.to_string());
                }
            }
            let mut digest = digest_of(desc)?;
            let mut bytes = self.read(&Self::blob_entry(&digest))?;
            verify(&bytes, &digest, &self.label)?;
            if is_index(&bytes) {
                let nested = parse_index(&bytes, digest.as_str())?;
                digest = digest_of(&pick_manifest(&nested, &Platform::host())?)?;
                bytes = self.read(&Self::blob_entry(&digest))?;
                verify(&bytes, &digest, &self.label)?;
            }
            let manifest = parse_manifest(&bytes, digest.as_str())?;
            let config_digest = digest_of(manifest.config())?;
            let config = self.read(&Self::blob_entry(&config_digest))?;
            verify(&config, &config_digest, &self.label)?;
            let layers = manifest
                .layers()
                .iter()
                .map(|l| {
                    let d = digest_of(l)?;
                    Ok(ArchiveLayer { entry: Self::blob_entry(&d), digest: Some(d) })
                })
                .collect::<Result<_>>()?;
            out.push(ArchiveImage { config, manifest: Some(bytes), tags, layers, blobs_remote: false });
        }
        Ok(out)
    }
}

fn verify(bytes: &[u8], want: &Digest, label: &str) -> Result<()> {
    let got = Digest::of(bytes);
    if &got != want {
        return Err(Error::DigestMismatch {
            what: format!("blob in {label}"),
            expected: want.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

/// Formats `save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// `docker save` layout: manifest.json, config JSON, uncompressed layer tars.
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
    /// An OCI image layout directory.
    OciDir,
}

impl std::str::FromStr for SaveFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker-archive" => Ok(SaveFormat::DockerArchive),
            "oci-archive" => Ok(SaveFormat::OciArchive),
            "oci-dir" => Ok(SaveFormat::OciDir),
            _ => Err(Error::invalid(format!("unknown format {s:?}: want docker-archive, oci-archive or oci-dir"))),
        }
    }
}

/// An image to save, as the store holds it.
#[derive(Debug, Clone)]
pub struct SaveImage {
    /// Config digest (= image ID).
    pub config: Digest,
    /// Manifest digest.
    pub manifest: Digest,
    /// Full tag names to record.
    pub tags: Vec<String>,
    /// Layers, bottom first.
    pub layers: Vec<LayerRecord>,
}

/// Where `save` reads blobs from: configs and manifests by digest, layer
/// blobs by their layer (stored, or rebuilt from a tar-split).
pub trait BlobSource {
    /// A small blob, whole and verified.
    fn read(&self, d: &Digest) -> Result<Vec<u8>>;
    /// A layer's blob as a stream.
    fn open_layer(&self, l: &LayerRecord) -> Result<Box<dyn Read + Send>>;
}

/// Something files can be put into: a tar stream or a directory.
trait Sink {
    fn put(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<()>;
}

struct TarSink<W: Write>(tar::Builder<W>);

impl<W: Write> Sink for TarSink<W> {
    fn put(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        self.0.append_data(&mut h, name, data).map_err(|e| Error::stream(format!("writing {name}"), e))
    }
}

struct DirSink(PathBuf);

impl Sink for DirSink {
    fn put(&mut self, name: &str, _size: u64, data: &mut dyn Read) -> Result<()> {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).at(parent)?;
        }
        let mut f = File::create(&p).at(&p)?;
        io::copy(data, &mut f).at(&p)?;
        Ok(())
    }
}

/// Write images as a docker-archive tar to `out`.
pub fn write_docker_archive<W: Write>(content: &dyn BlobSource, images: &[SaveImage], out: W) -> Result<W> {
    let mut sink = TarSink(tar::Builder::new(out));
    let mut written = HashSet::new();
    let mut manifest = Vec::new();
    for img in images {
        let mut layer_names = Vec::new();
        for l in &img.layers {
            let name = format!("{}.tar", l.diff_id.hex());
            if written.insert(name.clone()) {
                put_layer_tar(content, l, &name, &mut sink)?;
            }
            layer_names.push(name);
        }
        let config_name = format!("{}.json", img.config.hex());
        if written.insert(config_name.clone()) {
            let bytes = content.read(&img.config)?;
            sink.put(&config_name, bytes.len() as u64, &mut bytes.as_slice())?;
        }
        manifest.push(DockerManifestEntry {
            config: config_name,
            repo_tags: Some(img.tags.iter().map(|t| display_tag(t)).collect()),
            layers: layer_names,
        });
    }
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    sink.put("manifest.json", bytes.len() as u64, &mut bytes.as_slice())?;
    sink.0.into_inner().map_err(|e| Error::stream("finishing archive", e))
}

/// Decompress a stored layer blob into the sink, checking it against the diff ID.
fn put_layer_tar(content: &dyn BlobSource, l: &LayerRecord, name: &str, sink: &mut dyn Sink) -> Result<()> {
    let blob = io::BufReader::with_capacity(1 << 20, content.open_layer(l)?);
    let (_, r) = decompress(blob).map_err(|e| Error::stream(format!("reading blob {}", l.blob), e))?;
    let mut hashing = HashingReader::new(r.take(l.diff_size));
    sink.put(name, l.diff_size, &mut hashing)?;
    let (got, len) = hashing.drain_finish().map_err(|e| Error::stream(format!("reading blob {}", l.blob), e))?;
    if got != l.diff_id || len != l.diff_size {
        return Err(Error::DigestMismatch {
            what: format!("stored layer {}", l.chain_id),
            expected: l.diff_id.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

fn put_config(content: &dyn BlobSource, d: &Digest, sink: &mut dyn Sink) -> Result<()> {
    let bytes = content.read(d)?;
    sink.put(&format!("blobs/sha256/{}", d.hex()), bytes.len() as u64, &mut bytes.as_slice())
}

/// A layer blob as stored, checked against its digest as it streams.
fn put_layer_blob(content: &dyn BlobSource, l: &LayerRecord, sink: &mut dyn Sink) -> Result<()> {
    let mut hashing = HashingReader::new(content.open_layer(l)?.take(l.blob_size));
    sink.put(&format!("blobs/sha256/{}", l.blob.hex()), l.blob_size, &mut hashing)?;
    let (got, _) = hashing.drain_finish().map_err(|e| Error::stream(format!("reading blob {}", l.blob), e))?;
    if got != l.blob {
        return Err(Error::DigestMismatch {
            what: format!("stored layer {}", l.chain_id),
            expected: l.blob.to_string(),
            actual: got.to_string(),
        });
    }
    Ok(())
}

fn write_oci(content: &dyn BlobSource, images: &[SaveImage], sink: &mut dyn Sink) -> Result<()> {
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    sink.put("oci-layout", layout.len() as u64, &mut &layout[..])?;
    let mut written = HashSet::new();
    let mut manifests = Vec::new();
    for img in images {
        for l in &img.layers {
            if written.insert(l.blob.clone()) {
                put_layer_blob(content, l, sink)?;
            }
        }
        for d in [&img.config, &img.manifest] {
            if written.insert(d.clone()) {
                put_config(content, d, sink)?;
            }
        }
        let bytes = content.read(&img.manifest)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| super::OCI_MANIFEST.to_string());
        let entry = |tag: Option<&String>| {
            let mut v =
                serde_json::json!({"mediaType": media_type, "digest": img.manifest.as_str(), "size": bytes.len()});
            if let Some(t) = tag {
                v["annotations"] = serde_json::json!({
                    "org.opencontainers.image.ref.name": t,
                    "io.containerd.image.name": t,
                });
            }
            v
        };
        if img.tags.is_empty() {
            manifests.push(entry(None));
        }
        for t in &img.tags {
            manifests.push(entry(Some(t)));
        }
    }
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let bytes = serde_json::to_vec(&index).expect("index serializes");
    sink.put("index.json", bytes.len() as u64, &mut bytes.as_slice())
}

/// Write images as an OCI layout in a tar.
pub fn write_oci_archive<W: Write>(content: &dyn BlobSource, images: &[SaveImage], out: W) -> Result<W> {
    let mut sink = TarSink(tar::Builder::new(out));
    write_oci(content, images, &mut sink)?;
    sink.0.into_inner().map_err(|e| Error::stream("finishing archive", e))
}

/// Write images as an OCI layout into the (new, empty) directory `dir`.
pub fn write_oci_dir(content: &dyn BlobSource, images: &[SaveImage], dir: &Path) -> Result<()> {
    write_oci(content, images, &mut DirSink(dir.to_path_buf()))
}
