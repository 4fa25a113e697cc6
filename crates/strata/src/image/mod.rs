//! OCI image logic: references, configs, manifests and indexes, platform
//! choice, and the archive formats images travel in (docker-archive,
//! oci-archive, OCI layout directories). An image's ID is its config's
//! digest, as in Docker and podman, so one image has one ID everywhere.

pub mod archive;
pub mod reference;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub use reference::Reference;

/// OCI manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker schema 2 manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Parse an image config, naming the blob when it is not one.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("image config {what} is not valid: {e}")))
}

/// The config's diff IDs, validated.
pub fn diff_ids(cfg: &ImageConfiguration) -> Result<Vec<Digest>> {
    cfg.rootfs().diff_ids().iter().map(|d| Digest::parse(d)).collect()
}

/// Seconds since the epoch of an RFC 3339 time; 0 when absent or unreadable.
pub fn parse_time(s: Option<&str>) -> i64 {
    s.and_then(|s| time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .map(|t| t.unix_timestamp())
        .unwrap_or(0)
}

/// Format seconds since the epoch as RFC 3339 (UTC).
pub fn format_time(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// One layer of a manifest being written.
#[derive(Debug, Clone)]
pub struct LayerDescriptor {
    /// Media type of the blob.
    pub media_type: String,
    /// Digest of the blob.
    pub digest: Digest,
    /// Size of the blob.
    pub size: u64,
}

fn descriptor(media_type: &str, digest: &Digest, size: u64) -> Result<Descriptor> {
    let d: oci_spec::image::Digest =
        digest.as_str().parse().map_err(|e| Error::invalid(format!("digest {digest}: {e}")))?;
    Ok(Descriptor::new(MediaType::from(media_type), size, d))
}

/// Write an OCI manifest for a config and layer blobs.
pub fn make_manifest(config: &Digest, config_size: u64, layers: &[LayerDescriptor]) -> Result<Vec<u8>> {
    make_manifest_of(OCI_CONFIG, config, config_size, layers)
}

/// An OCI manifest whose config blob is of `config_type` (an artifact's, or an image's).
pub fn make_manifest_of(
    config_type: &str,
    config: &Digest,
    config_size: u64,
    layers: &[LayerDescriptor],
) -> Result<Vec<u8>> {
    let layers = layers.iter().map(|l| descriptor(&l.media_type, &l.digest, l.size)).collect::<Result<Vec<_>>>()?;
    let m = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(config_type, config, config_size)?)
        .layers(layers)
        .build()
        .map_err(|e| Error::invalid(format!("building manifest: {e}")))?;
    serde_json::to_vec(&m).map_err(|e| Error::invalid(format!("writing manifest: {e}")))
}

/// Parse a manifest, naming it when it is not one.
pub fn parse_manifest(bytes: &[u8], what: &str) -> Result<ImageManifest> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("manifest {what} is not valid: {e}")))
}

/// Whether a manifest document (by its mediaType field) is an index / manifest list.
pub fn is_index(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => {
            matches!(p.media_type.as_deref(), Some(OCI_INDEX) | Some(DOCKER_MANIFEST_LIST))
                || (p.media_type.is_none() && p.manifests.is_some())
        }
        Err(_) => false,
    }
}

/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Parse an index.
pub fn parse_index(bytes: &[u8], what: &str) -> Result<ImageIndex> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("index {what} is not valid: {e}")))
}

/// A platform: os, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl Platform {
    /// The machine strata runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform { os: "linux".into(), architecture: architecture.into(), variant: None }
    }

    /// Parse `OS/ARCH[/VARIANT]`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: None })
            }
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Ok(Platform { os: os.to_string(), architecture: arch.to_string(), variant: Some(v.to_string()) })
            }
            _ => Err(Error::invalid(format!("invalid platform {s:?}: want OS/ARCH[/VARIANT]"))),
        }
    }
}

/// Choose the manifest for a platform from an index.
pub fn pick_manifest(index: &ImageIndex, want: &Platform) -> Result<Descriptor> {
    let found = index.manifests().iter().find(|d| match d.platform() {
        Some(p) => {
            p.os().to_string() == want.os
                && p.architecture().to_string() == want.architecture
                && (want.variant.is_none() || p.variant().as_deref() == want.variant.as_deref())
        }
        None => false,
    });
    match found {
        Some(d) => Ok(d.clone()),
        None if index.manifests().len() == 1 && index.manifests()[0].platform().is_none() => {
            Ok(index.manifests()[0].clone())
        }
        None => Err(Error::not_found(
            "manifest for platform",
            format!(
                "{}/{}{}",
                want.os,
                want.architecture,
                want.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default()
            ),
        )),
    }
}

/// Our digest type from oci-spec's.
pub fn digest_of(d: &Descriptor) -> Result<Digest> {
    Digest::parse(&d.digest().to_string())
}
