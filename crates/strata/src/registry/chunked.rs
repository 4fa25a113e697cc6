//! zstd:chunked layers (podman's format, from containers/storage): a zstd
//! layer whose file contents are compressed as frames of their own, with a
//! table of contents (TOC: every file and chunk, its digest and where its
//! frames lie in the blob) in a skippable frame near the end and a footer
//! pointing at it. A plain zstd reader skips both, so such a layer unpacks
//! like any zstd layer; this module owns what the format adds: fetching
//! only the chunks this store does not hold.
//!
//! The blob is assembled byte for byte: a chunk whose digest and
//! compressed length match a chunk of a blob already stored is copied from
//! that blob; every other byte (tar headers, new chunks, the TOC, the
//! footer) is fetched with HTTP Range requests. The assembled blob is
//! committed only if its SHA-256 is the manifest's digest, and then unpacks
//! from the store as usual (diff ID checked), so push and save stay
//! byte-exact and nothing is trusted that was not verified. Anything that
//! goes wrong (no Range support, a digest that does not match because the
//! other blob's frames were compressed differently) falls back to fetching
//! the whole blob. Written by hand: no Rust crate reads this format.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, SizedStream};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use serde::Deserialize;

use super::{registry_error, Event, Progress, Remote};
use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::Reference;
use crate::store::LayerRecord;

/// Annotations on a layer descriptor giving the TOC's place:
/// `OFFSET:LENGTH:UNCOMPRESSED_LENGTH:TYPE` (type 1: zstd-compressed JSON).
pub const POSITION_ANNOTATIONS: [&str; 2] =
    ["io.github.containers.zstd-chunked.manifest-position", "io.containers.zstd-chunked.manifest-position"];

/// Annotations giving the digest of the TOC's compressed bytes.
pub const CHECKSUM_ANNOTATIONS: [&str; 2] =
    ["io.github.containers.zstd-chunked.manifest-checksum", "io.containers.zstd-chunked.manifest-checksum"];

/// The footer's last eight bytes.
const FOOTER_MAGIC: &[u8; 8] = b"GnUlInUx";

/// A zstd skippable frame's magic number (little-endian).
const SKIPPABLE_MAGIC: [u8; 4] = [0x50, 0x2a, 0x4d, 0x18];

/// The largest TOC accepted, compressed or not (a registry's blob is hostile).
const MAX_TOC_BYTES: u64 = 64 << 20;

/// A partial fetch is tried only when it saves at least this much: below,
/// the extra requests cost more than the bytes.
pub const MIN_SAVED_BYTES: u64 = 64 << 10;

/// The largest range fetched at once (a new file of a GiB is several).
pub const MAX_RANGE_BYTES: u64 = 8 << 20;

/// Where a layer's TOC lies in its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocPosition {
    /// Offset of the TOC's compressed bytes in the blob.
    pub offset: u64,
    /// Their length.
    pub length: u64,
    /// The TOC's uncompressed length.
    pub uncompressed: u64,
}

impl TocPosition {
    /// From the descriptor's position annotation; `None` when the layer is
    /// not zstd:chunked or the annotation is not one strata reads.
    pub fn from_annotation(value: &str) -> Option<Self> {
        let f: Vec<u64> = value.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        match f[..] {
            [offset, length, uncompressed, 1] if length <= MAX_TOC_BYTES && uncompressed <= MAX_TOC_BYTES => {
                Some(TocPosition { offset, length, uncompressed })
            }
            _ => None,
        }
    }

    /// From a blob's footer: the last bytes of a stored blob (at least 72).
    /// The footer is a skippable frame of 40 bytes (offset, length,
    /// uncompressed length, type, magic) or, in later containers/storage, 64
    /// (with the tar-split's place before the magic).
    pub fn from_footer(tail: &[u8]) -> Option<Self> {
        if !tail.ends_with(FOOTER_MAGIC) {
            return None;
        }
        let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        for data_len in [40usize, 64] {
            let Some(start) = tail.len().checked_sub(data_len + 8) else { continue };
            let frame = &tail[start..];
            let size = u32::from_le_bytes(frame[4..8].try_into().unwrap()) as usize;
            if frame[..4] != SKIPPABLE_MAGIC || size != data_len {
                continue;
            }
            let data = &frame[8..];
            let (offset, length, uncompressed, kind) = (word(data, 0), word(data, 1), word(data, 2), word(data, 3));
            if kind == 1 && length <= MAX_TOC_BYTES && uncompressed <= MAX_TOC_BYTES {
                return Some(TocPosition { offset, length, uncompressed });
            }
        }
        None
    }
}

/// A run of a blob's compressed bytes that decompresses to one chunk of
/// one file (a whole small file, or a piece of a large one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The digest of the chunk's uncompressed bytes.
    pub digest: String,
    /// Where its frames start in the blob.
    pub start: u64,
    /// Where they end (exclusive).
    pub end: u64,
}

#[derive(Deserialize)]
struct Toc {
    #[serde(default)]
    entries: Vec<TocEntry>,
}

#[derive(Deserialize)]
struct TocEntry {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    offset: u64,
    #[serde(rename = "endOffset", default)]
    end_offset: u64,
    #[serde(default)]
    digest: String,
    #[serde(rename = "chunkDigest", default)]
    chunk_digest: String,
}

/// Decompress a TOC's bytes (at most the stated uncompressed length) and
/// list its chunks: a file's chunk ends where its next chunk starts, its
/// last at the file's `endOffset`.
pub fn chunks_of_toc(compressed: &[u8], pos: &TocPosition) -> Result<Vec<Chunk>> {
    let bad = |what: String| Error::invalid(format!("zstd:chunked table of contents: {what}"));
    let json =
        zstd::bulk::decompress(compressed, pos.uncompressed as usize).map_err(|e| bad(format!("not zstd: {e}")))?;
    let toc: Toc = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    let mut file: Option<(String, u64)> = None; // the regular file being chunked, and its end
    let mut pending: Option<Chunk> = None;
    let finish = |pending: &mut Option<Chunk>, end: u64, out: &mut Vec<Chunk>| {
        if let Some(mut c) = pending.take() {
            c.end = end;
            if c.start < c.end && !c.digest.is_empty() {
                out.push(c);
            }
        }
    };
    for e in toc.entries {
        match e.kind.as_str() {
            "reg" => {
                let end = file.take().map(|f| f.1).unwrap_or(0);
                finish(&mut pending, end, &mut out);
                if e.size == 0 || e.end_offset <= e.offset {
                    continue;
                }
                let digest = if e.chunk_digest.is_empty() { e.digest } else { e.chunk_digest };
                pending = Some(Chunk { digest, start: e.offset, end: 0 });
                file = Some((e.name, e.end_offset));
            }
            "chunk" => {
                let Some((name, end)) = file.clone() else { continue };
                if name != e.name {
                    return Err(bad(format!("chunk of {} outside its file", e.name)));
                }
                finish(&mut pending, e.offset, &mut out);
                pending = Some(Chunk { digest: e.chunk_digest, start: e.offset, end: 0 });
                file = Some((name, end));
            }
            _ => {}
        }
    }
    let end = file.map(|f| f.1).unwrap_or(0);
    finish(&mut pending, end, &mut out);
    Ok(out)
}

/// The chunks of a stored blob, when it is zstd:chunked (read from its footer).
fn stored_chunks(path: &Path) -> Result<Option<Vec<Chunk>>> {
    let mut f = File::open(path).at(path)?;
    let len = f.metadata().at(path)?.len();
    let tail_len = len.min(72);
    f.seek(SeekFrom::Start(len - tail_len)).at(path)?;
    let mut tail = vec![0; tail_len as usize];
    f.read_exact(&mut tail).at(path)?;
    let Some(pos) = TocPosition::from_footer(&tail) else { return Ok(None) };
    if pos.offset.checked_add(pos.length).is_none_or(|end| end > len) {
        return Ok(None);
    }
    let mut toc = vec![0; pos.length as usize];
    f.read_exact_at(&mut toc, pos.offset).at(path)?;
    Ok(Some(chunks_of_toc(&toc, &pos)?))
}

/// Chunks this store already holds, by digest and compressed length: in
/// the stored blobs of zstd layers that are zstd:chunked.
#[derive(Default)]
pub struct LocalChunks {
    chunks: HashMap<(String, u64), (PathBuf, u64)>,
}

impl LocalChunks {
    /// Index the zstd:chunked blobs among `layers`' stored blobs. A blob
    /// that cannot be read is left out (it is only a source of copies).
    pub fn of(layers: &[LayerRecord], content: &ContentStore) -> Self {
        let mut chunks = HashMap::new();
        for l in layers.iter().filter(|l| !l.split && l.media_type.ends_with("+zstd")) {
            let path = content.path(&l.blob);
            match stored_chunks(&path) {
                Ok(Some(list)) => {
                    for c in list {
                        chunks.entry((c.digest, c.end - c.start)).or_insert((path.clone(), c.start));
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("not using {} as a source of chunks: {e}", path.display()),
            }
        }
        LocalChunks { chunks }
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    fn find(&self, c: &Chunk) -> Option<&(PathBuf, u64)> {
        self.chunks.get(&(c.digest.clone(), c.end - c.start))
    }
}

/// One piece of a blob to assemble, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Copy `len` bytes from a stored blob at `at`.
    Local {
        /// The stored blob.
        path: PathBuf,
        /// Where in it.
        at: u64,
        /// How many bytes.
        len: u64,
    },
    /// Fetch the blob's bytes `[start, start + len)` from the registry.
    Remote {
        /// Where in the blob.
        start: u64,
        /// How many bytes.
        len: u64,
    },
}

/// How to assemble a blob of `size` bytes with these chunks from what is
/// stored: the pieces in order, and the bytes that need not be fetched.
/// Chunks that overlap or lie outside the blob are fetched like the rest.
pub fn plan(chunks: &[Chunk], size: u64, local: &LocalChunks) -> (Vec<Piece>, u64) {
    let mut sorted: Vec<&Chunk> = chunks.iter().collect();
    sorted.sort_by_key(|c| c.start);
    let mut pieces = Vec::new();
    let mut pos = 0;
    let mut saved = 0;
    let remote = |pieces: &mut Vec<Piece>, from: u64, to: u64| {
        let mut s = from;
        while s < to {
            let len = (to - s).min(MAX_RANGE_BYTES);
            pieces.push(Piece::Remote { start: s, len });
            s += len;
        }
    };
    for c in sorted {
        if c.start < pos || c.end > size {
            continue;
        }
        let Some((path, at)) = local.find(c) else { continue };
        remote(&mut pieces, pos, c.start);
        pieces.push(Piece::Local { path: path.clone(), at: *at, len: c.end - c.start });
        saved += c.end - c.start;
        pos = c.end;
    }
    remote(&mut pieces, pos, size);
    (pieces, saved)
}

/// The TOC's position and checksum from a layer descriptor's annotations.
pub fn toc_of(annotations: Option<&HashMap<String, String>>) -> Option<(TocPosition, Option<Digest>)> {
    let a = annotations?;
    let pos = POSITION_ANNOTATIONS.iter().find_map(|k| a.get(*k)).and_then(|v| TocPosition::from_annotation(v))?;
    let sum = CHECKSUM_ANNOTATIONS.iter().find_map(|k| a.get(*k)).and_then(|v| Digest::parse(v).ok());
    Some((pos, sum))
}

/// Ranges fetched at once while assembling.
const RANGES_AT_ONCE: usize = 8;

/// What a registry answered to a Range request.
enum Reply {
    /// The bytes asked for.
    Part(Vec<u8>),
    /// The whole blob: the registry ignores Range.
    Whole(SizedStream),
}

async fn fetch_range(
    client: Arc<oci_client::Client>,
    oref: oci_client::Reference,
    desc: OciDescriptor,
    start: u64,
    len: u64,
) -> std::result::Result<Reply, OciDistributionError> {
    match client.pull_blob_stream_partial(&oref, &desc, start, Some(len)).await? {
        BlobResponse::Full(stream) => Ok(Reply::Whole(stream)),
        BlobResponse::Partial(mut stream) => {
            let mut out = Vec::with_capacity(len as usize);
            while let Some(bytes) = stream.next().await {
                out.extend_from_slice(&bytes?);
                if out.len() as u64 > len {
                    break; // more than asked: refused below
                }
            }
            Ok(Reply::Part(out))
        }
    }
}

impl Remote {
    /// Assemble the zstd:chunked blob `digest` of `size` bytes from chunks
    /// stored here and ranges fetched, and commit it to `content` if its
    /// digest is right. A registry that ignores Range answers the first
    /// request with the whole blob: that is stored instead (verified as it
    /// is written). `Ok(false)`: not worth it; the caller fetches the whole
    /// blob, as it does after an error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fetch_chunked(
        &self,
        r: &Reference,
        digest: &Digest,
        size: u64,
        toc: &(TocPosition, Option<Digest>),
        local: &LocalChunks,
        content: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<bool> {
        let (pos, checksum) = toc;
        tracing::debug!("{r}: blob {digest} is zstd:chunked; {} chunks stored here", local.chunks.len());
        if local.is_empty() || pos.offset.checked_add(pos.length).is_none_or(|end| end > size) {
            return Ok(false);
        }
        let oref = self.oci_ref(r, None)?;
        let desc = OciDescriptor { digest: digest.to_string(), size: size as i64, ..Default::default() };
        let range = |start: u64, len: u64| {
            let (client, oref, desc) = (self.client.clone(), oref.clone(), desc.clone());
            fetch_range(client, oref, desc, start, len)
        };
        // Not retried: after any failure the caller's whole-blob fetch (which retries) takes over.
        let toc_bytes =
            match self.rt.block_on(range(pos.offset, pos.length)).map_err(|e| registry_error(&r.to_string(), e))? {
                Reply::Part(bytes) => bytes,
                Reply::Whole(stream) => {
                    tracing::info!("{r}: the registry does not serve ranges; blob {digest} comes whole");
                    self.store_whole(stream, digest, size, content, progress)?;
                    return Ok(true);
                }
            };
        let got = Digest::of(&toc_bytes);
        if toc_bytes.len() as u64 != pos.length || checksum.as_ref().is_some_and(|want| want != &got) {
            return Err(Error::DigestMismatch {
                what: format!("zstd:chunked table of contents of blob {digest}"),
                expected: checksum.as_ref().map_or_else(|| format!("{} bytes", pos.length), |d| d.to_string()),
                actual: got.to_string(),
            });
        }
        let chunks = chunks_of_toc(&toc_bytes, pos)?;
        let (pieces, saved) = plan(&chunks, size, local);
        if saved < MIN_SAVED_BYTES {
            tracing::debug!("{r}: blob {digest}: only {saved} bytes in chunks stored here; fetching it whole");
            return Ok(false);
        }
        tracing::debug!("{r}: blob {digest}: {saved} of {size} bytes copied from stored chunks");
        progress.event(digest, Event::Started(Some(size)));
        let mut w = content.writer()?;
        let mut written = 0u64;
        let mut i = 0;
        while i < pieces.len() {
            // The next few remote pieces, fetched together; the local ones among them copied in order.
            let batch: Vec<(u64, u64)> = pieces[i..]
                .iter()
                .filter_map(|p| match p {
                    Piece::Remote { start, len } => Some((*start, *len)),
                    Piece::Local { .. } => None,
                })
                .take(RANGES_AT_ONCE)
                .collect();
            let fetched = self.retrying(r, || {
                futures_util::future::try_join_all(batch.iter().map(|(start, len)| range(*start, *len)))
            })?;
            // It served the first range: a whole answer now is a registry changing its mind.
            let mut fetched = fetched.into_iter();
            let mut remote_left = batch.len();
            while i < pieces.len() && (remote_left > 0 || matches!(pieces[i], Piece::Local { .. })) {
                match &pieces[i] {
                    Piece::Local { path, at, len } => copy_range(path, *at, *len, &mut w)?,
                    Piece::Remote { start, len } => {
                        let Some(Reply::Part(bytes)) = fetched.next() else {
                            tracing::info!("{r}: the registry stopped serving ranges; fetching blob {digest} whole");
                            return Ok(false);
                        };
                        if bytes.len() as u64 != *len {
                            return Err(Error::invalid(format!(
                                "{r}: blob {digest}: asked for {len} bytes at {start}, got {}",
                                bytes.len()
                            )));
                        }
                        w.write_all(&bytes).map_err(|e| Error::stream(format!("writing blob {digest}"), e))?;
                        remote_left -= 1;
                    }
                }
                written += match &pieces[i] {
                    Piece::Local { len, .. } | Piece::Remote { len, .. } => *len,
                };
                progress.event(digest, Event::Progress(written));
                i += 1;
            }
        }
        w.commit(Some(digest), Some(size))?;
        progress.event(digest, Event::Done);
        Ok(true)
    }

    /// Store a whole blob that came as the answer to a Range request.
    fn store_whole(
        &self,
        mut stream: SizedStream,
        digest: &Digest,
        size: u64,
        content: &ContentStore,
        progress: &dyn Progress,
    ) -> Result<()> {
        progress.event(digest, Event::Started(Some(size)));
        let mut w = content.writer()?;
        while let Some(bytes) = self.rt.block_on(stream.next()) {
            let bytes = bytes.map_err(|e| Error::stream(format!("fetching blob {digest}"), e))?;
            if w.len() + bytes.len() as u64 > size {
                return Err(Error::invalid(format!("blob {digest}: the registry sent more than {size} bytes")));
            }
            w.write_all(&bytes).map_err(|e| Error::stream(format!("writing blob {digest}"), e))?;
            progress.event(digest, Event::Progress(w.len()));
        }
        w.commit(Some(digest), Some(size))?;
        progress.event(digest, Event::Done);
        Ok(())
    }
}

/// Copy `len` bytes at `at` of a stored blob to `w`.
fn copy_range(path: &Path, at: u64, len: u64, w: &mut impl Write) -> Result<()> {
    let f = File::open(path).at(path)?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    r.seek(SeekFrom::Start(at)).at(path)?;
    let n = std::io::copy(&mut r.take(len), w).at(path)?;
    if n != len {
        return Err(Error::Corrupt(format!("{}: {len} bytes at {at} are past its end", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toc(entries: &str) -> (Vec<u8>, TocPosition) {
        let json = format!(r#"{{"version":1,"entries":[{entries}]}}"#);
        let z = zstd::bulk::compress(json.as_bytes(), 3).unwrap();
        let pos = TocPosition { offset: 0, length: z.len() as u64, uncompressed: json.len() as u64 };
        (z, pos)
    }

    #[test]
    fn chunks_end_at_the_next_chunk_and_the_last_at_the_file_end() {
        let (z, pos) = toc(concat!(
            r#"{"type":"dir","name":"d/"},"#,
            r#"{"type":"reg","name":"d/a","size":5,"offset":100,"endOffset":150,"digest":"sha256:a"},"#,
            r#"{"type":"reg","name":"d/e","size":0},"#,
            r#"{"type":"reg","name":"d/b","size":9,"offset":200,"endOffset":400,"digest":"sha256:whole","chunkDigest":"sha256:b1"},"#,
            r#"{"type":"chunk","name":"d/b","offset":260,"chunkDigest":"sha256:b2"},"#,
            r#"{"type":"symlink","name":"d/l"}"#
        ));
        let got = chunks_of_toc(&z, &pos).unwrap();
        let want = vec![
            Chunk { digest: "sha256:a".into(), start: 100, end: 150 },
            Chunk { digest: "sha256:b1".into(), start: 200, end: 260 },
            Chunk { digest: "sha256:b2".into(), start: 260, end: 400 },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_chunk_of_another_file_is_refused() {
        let (z, pos) = toc(concat!(
            r#"{"type":"reg","name":"a","size":5,"offset":100,"endOffset":150,"digest":"sha256:a","chunkDigest":"sha256:a1"},"#,
            r#"{"type":"chunk","name":"b","offset":120,"chunkDigest":"sha256:b2"}"#
        ));
        assert!(chunks_of_toc(&z, &pos).is_err());
    }

    #[test]
    fn positions_parse_from_the_annotation_and_the_footer() {
        assert_eq!(
            TocPosition::from_annotation("1059571:2214:7387:1"),
            Some(TocPosition { offset: 1059571, length: 2214, uncompressed: 7387 })
        );
        assert_eq!(TocPosition::from_annotation("1:2:3:2"), None, "only type 1 (zstd JSON) is read");
        assert_eq!(TocPosition::from_annotation("1:2:3"), None);
        let mut tail = vec![0u8; 24];
        tail.extend_from_slice(&SKIPPABLE_MAGIC);
        tail.extend_from_slice(&40u32.to_le_bytes());
        for w in [1059571u64, 2214, 7387, 1] {
            tail.extend_from_slice(&w.to_le_bytes());
        }
        tail.extend_from_slice(FOOTER_MAGIC);
        assert_eq!(
            TocPosition::from_footer(&tail),
            Some(TocPosition { offset: 1059571, length: 2214, uncompressed: 7387 })
        );
        tail[28] = 39; // the frame's stated size no longer 40
        assert_eq!(TocPosition::from_footer(&tail), None);
    }

    #[test]
    fn a_plan_copies_matching_chunks_and_fetches_the_rest_in_bounded_ranges() {
        let stored = PathBuf::from("/stored");
        let mut local = LocalChunks::default();
        local.chunks.insert(("sha256:a".into(), 50), (stored.clone(), 7));
        local.chunks.insert(("sha256:b".into(), 10), (stored.clone(), 99));
        let chunks = vec![
            Chunk { digest: "sha256:b".into(), start: 300, end: 320 }, // same digest, other length: fetched
            Chunk { digest: "sha256:a".into(), start: 100, end: 150 },
        ];
        let size = 150 + MAX_RANGE_BYTES + 1;
        let (pieces, saved) = plan(&chunks, size, &local);
        assert_eq!(saved, 50);
        assert_eq!(
            pieces,
            vec![
                Piece::Remote { start: 0, len: 100 },
                Piece::Local { path: stored, at: 7, len: 50 },
                Piece::Remote { start: 150, len: MAX_RANGE_BYTES },
                Piece::Remote { start: 150 + MAX_RANGE_BYTES, len: 1 },
            ]
        );
    }
}
