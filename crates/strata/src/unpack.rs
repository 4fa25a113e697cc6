//! Unpack: turning a layer blob stream into a ready layer directory
//! (`layers/<chain-id hex>/diff`) and its blob in the content store, in one
//! pass over the bytes: they are hashed (blob digest), copied to the blob
//! file, decompressed, hashed again (diff ID) and applied as they arrive.
//! A compressed blob takes two threads (one hashes, keeps and inflates the
//! bytes, the other hashes and applies the tar); a plain tar, with nothing
//! to inflate, one.
//!
//! The layer is claimed in the metadata store first (an `incomplete`
//! record naming this process), built in `tmp/`, verified, renamed into
//! place and only then marked `ready`. A failure removes the claim; a crash
//! leaves only what the next exclusive open sweeps.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::content::{BlobWriter, ContentStore};
use crate::digest::{Digest, Hasher, HashingReader, TeeReader};
use crate::error::{Error, IoContext, Result};
use crate::layer::split::{Recorder, Split, SplitReader, SPLIT_FILE};
use crate::layer::{self, ApplyOptions, Compression};
use crate::snapshot::Snapshotter;
use crate::store::{Claim, LayerRecord, Store};
use crate::trace::{timed, Stage, Timed};

/// A layer to make present.
pub struct LayerSpec {
    /// The layer's chain ID.
    pub chain_id: Digest,
    /// Its diff ID (digest of the uncompressed tar), from the image config.
    pub diff_id: Digest,
    /// Chain IDs of the layers below, top first (the parent first).
    pub lowers: Vec<Digest>,
    /// The blob's digest, when the source states it.
    pub blob: Option<Digest>,
    /// The blob's media type, when the source states it.
    pub media_type: Option<String>,
    /// Where the bytes come from, for messages.
    pub label: String,
}

/// Paths and backends unpacking needs.
pub struct Unpacker<'a> {
    /// `layers/` under the store root.
    pub layers_dir: &'a Path,
    /// `tmp/` under the store root.
    pub tmp: &'a Path,
    /// The content store.
    pub content: &'a ContentStore,
    /// The snapshot backend.
    pub snapshots: &'a dyn Snapshotter,
}

/// A layer built in tmp/, verified, not yet in place.
struct Built {
    work: crate::tmp::TempDir,
    writer: Option<BlobWriter>,
    blob: Digest,
    blob_size: u64,
    diff_id: Digest,
    diff_size: u64,
    size: u64,
    media_type: String,
    split: bool,
}

/// Where a layer's blob is read from; it can be opened more than once
/// (an upload that must be redone) and outlives the store's borrow.
#[derive(Debug, Clone)]
pub enum BlobFile {
    /// A stored blob.
    Plain(PathBuf),
    /// An uncompressed layer's tar, rebuilt from its split and its directory.
    Split {
        /// The layer's tar-split.
        split: PathBuf,
        /// The layer's directory.
        tree: PathBuf,
    },
}

impl BlobFile {
    /// Where `rec`'s blob is.
    pub fn of(layers_dir: &Path, content: &ContentStore, rec: &LayerRecord) -> Self {
        if rec.split {
            let dir = layers_dir.join(rec.chain_id.hex());
            BlobFile::Split { split: dir.join(SPLIT_FILE), tree: dir.join("diff") }
        } else {
            BlobFile::Plain(content.path(&rec.blob))
        }
    }

    /// A reader of the blob's bytes.
    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            BlobFile::Plain(p) => Box::new(std::fs::File::open(p).at(p)?),
            BlobFile::Split { split, tree } => Box::new(SplitReader::open(split, tree)?),
        })
    }
}

/// A reader of a layer's blob: the stored blob, or the tar rebuilt from
/// the layer's directory and its split.
pub fn open_layer_blob(layers_dir: &Path, content: &ContentStore, rec: &LayerRecord) -> Result<Box<dyn Read + Send>> {
    BlobFile::of(layers_dir, content, rec).open()
}

/// Where a layer's directory is.
pub fn layer_dir(layers_dir: &Path, chain: &Digest) -> PathBuf {
    layers_dir.join(chain.hex()).join("diff")
}

/// The blob-side sink of a tee: hashes every raw byte and, if the blob is
/// not stored yet, writes it.
struct BlobSink {
    hasher: Hasher,
    writer: Option<BlobWriter>,
}

impl Write for BlobSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        timed(Stage::BlobHash, || self.hasher.update(buf));
        if let Some(w) = self.writer.as_mut() {
            timed(Stage::BlobWrite, || w.write_all(buf))?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Unpacker<'_> {
    /// Make the layer present and ready, unpacking from `open()` if this
    /// process is the one to do it. Waits while another process unpacks it.
    pub fn ensure_layer(
        &self,
        store: &Store,
        spec: &LayerSpec,
        open: &dyn Fn() -> Result<Box<dyn Read + Send>>,
    ) -> Result<LayerRecord> {
        let placeholder = LayerRecord {
            chain_id: spec.chain_id.clone(),
            diff_id: spec.diff_id.clone(),
            parent: spec.lowers.first().cloned(),
            blob: spec.blob.clone().unwrap_or_else(|| spec.diff_id.clone()),
            blob_size: 0,
            media_type: spec.media_type.clone().unwrap_or_default(),
            diff_size: 0,
            size: 0,
            split: false,
        };
        if let Some(ready) = claim(store, &placeholder)? {
            return Ok(ready);
        }
        match self.unpack_claimed(store, spec, placeholder, open) {
            Ok(rec) => Ok(rec),
            Err(e) => {
                let _ = crate::tree::remove(&self.layers_dir.join(spec.chain_id.hex()));
                let _ = store.delete_layer(&spec.chain_id);
                Err(e)
            }
        }
    }

    fn unpack_claimed(
        &self,
        store: &Store,
        spec: &LayerSpec,
        rec: LayerRecord,
        open: &dyn Fn() -> Result<Box<dyn Read + Send>>,
    ) -> Result<LayerRecord> {
        let wait_lowers = || wait_ready(store, &spec.lowers);
        let trace = crate::trace::layer(&spec.label);
        let built = self.build(spec, &mut *open()?, &wait_lowers, Some(open))?;
        if built.diff_id != spec.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {} (diff ID from the image config)", spec.label),
                expected: spec.diff_id.to_string(),
                actual: built.diff_id.to_string(),
            });
        }
        let sizes = (built.blob_size, built.diff_size);
        let rec = timed(Stage::Install, || self.install(store, built, rec))?;
        if let Some(t) = trace {
            t.finish(sizes.0, sizes.1);
        }
        Ok(rec)
    }

    /// Unpack a ready layer again from its stored blob (`system check
    /// --repair` of a layer whose files were damaged or lost): built in
    /// tmp/ and checked against the diff ID; only then is the old
    /// directory moved aside and the new one renamed into place. The store
    /// lock must be held exclusively (nothing may be mounting the layer).
    pub fn rebuild_layer(&self, store: &Store, rec: &LayerRecord) -> Result<()> {
        let mut lowers = Vec::new();
        let mut at = rec.parent.clone();
        while let Some(p) = at {
            at = store.layer(&p)?.and_then(|l| l.parent);
            lowers.push(p);
        }
        let spec = LayerSpec {
            chain_id: rec.chain_id.clone(),
            diff_id: rec.diff_id.clone(),
            lowers,
            blob: Some(rec.blob.clone()),
            media_type: Some(rec.media_type.clone()),
            label: rec.chain_id.to_string(),
        };
        let path = self.content.path(&rec.blob);
        let mut blob = std::fs::File::open(&path).at(&path)?;
        let built = self.build(&spec, &mut blob, &|| Ok(()), None)?;
        if built.diff_id != rec.diff_id {
            return Err(Error::DigestMismatch {
                what: format!("layer {} rebuilt from blob {}", rec.chain_id, rec.blob),
                expected: rec.diff_id.to_string(),
                actual: built.diff_id.to_string(),
            });
        }
        let final_dir = self.layers_dir.join(rec.chain_id.hex());
        let old = crate::tmp::TempDir::new(self.tmp, "repair")?;
        match std::fs::rename(&final_dir, old.path().join("old")) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(&final_dir),
        }
        std::fs::rename(built.work.path(), &final_dir).at(&final_dir)?;
        built.work.keep();
        store.mark_unsynced(&rec.chain_id)
    }

    /// Import a layer whose diff ID is not known beforehand (a rootfs
    /// tarball): build it in tmp/, then claim it under the chain ID its
    /// bytes turned out to have. Only for a bottom layer.
    pub fn import_layer(&self, store: &Store, raw: &mut (dyn Read + Send), label: &str) -> Result<LayerRecord> {
        let spec = LayerSpec {
            chain_id: Digest::of(b""),
            diff_id: Digest::of(b""),
            lowers: Vec::new(),
            blob: None,
            media_type: None,
            label: label.to_string(),
        };
        let built = self.build(&spec, raw, &|| Ok(()), None)?;
        let rec = LayerRecord {
            chain_id: built.diff_id.clone(),
            diff_id: built.diff_id.clone(),
            parent: None,
            blob: built.blob.clone(),
            blob_size: built.blob_size,
            media_type: String::new(),
            diff_size: 0,
            size: 0,
            split: false,
        };
        if let Some(ready) = claim(store, &rec)? {
            // Same bytes already stored as a layer: keep the blob, drop the tree.
            if let Some(w) = built.writer {
                w.commit(Some(&built.blob), Some(built.blob_size))?;
            }
            return Ok(ready);
        }
        let chain = rec.chain_id.clone();
        self.install(store, built, rec).inspect_err(|_| {
            let _ = store.delete_layer(&chain);
        })
    }

    /// One pass over the raw bytes: hash, keep the blob (or, for an
    /// uncompressed blob that can be re-read, a tar-split instead), decompress
    /// (on a thread of its own), hash, apply.
    fn build(
        &self,
        spec: &LayerSpec,
        raw: &mut (dyn Read + Send),
        wait_lowers: &(dyn Fn() -> Result<()> + Sync),
        reopen: Option<&dyn Fn() -> Result<Box<dyn Read + Send>>>,
    ) -> Result<Built> {
        let work = crate::tmp::TempDir::new(self.tmp, "layer")?;
        let diff = work.path().join("diff");
        std::fs::create_dir(&diff).at(&diff)?;
        let lower_dirs: Vec<PathBuf> = spec.lowers.iter().map(|c| layer_dir(self.layers_dir, c)).collect();
        if let (Some(_), false) = (lower_dirs.first(), self.snapshots.independent_layers()) {
            wait_lowers()?;
        }
        self.snapshots.prepare(&diff, lower_dirs.first().map(|p| p.as_path()))?;
        let read_err = |e: io::Error| Error::stream(format!("reading layer {}", spec.label), e);
        let mut raw = BufReader::with_capacity(1 << 20, Timed::new(raw, Stage::Receive));
        let compression = Compression::detect(raw.fill_buf().map_err(read_err)?);
        // An uncompressed blob would be a second full copy of the layer: keep a split instead.
        let record = compression == Compression::None && reopen.is_some();
        let writer = match &spec.blob {
            Some(d) if self.content.has(d) => None,
            _ if record => None,
            _ => Some(self.content.writer()?),
        };
        let mut sink = BlobSink { hasher: Hasher::default(), writer };
        let split = RefCell::new(Split::default());
        // Hash the tar, apply it, and read it to its end.
        let apply_tar = |tar: &mut dyn Read| {
            let mut hashing = HashingReader::new(Timed::new(tar, Stage::Handoff));
            let mut recorder = Recorder::new(Timed::new(&mut hashing, Stage::DiffHash), record.then_some(&split));
            let opts = ApplyOptions {
                format: self.snapshots.format(),
                lowers: lower_dirs,
                before_lower_lookup: Some(wait_lowers),
                split: record.then_some(&split),
            };
            let stats = timed(Stage::Apply, || layer::apply(&mut recorder, &diff, &opts)).map_err(|e| match e {
                Error::Stream { context, source } => {
                    Error::Stream { context: format!("layer {}: {context}", spec.label), source }
                }
                Error::BadEntry { entry, reason } => {
                    Error::BadEntry { entry, reason: format!("{reason} (in layer {})", spec.label) }
                }
                Error::Io { path, source } => {
                    Error::Stream { context: format!("layer {}: writing {}", spec.label, path.display()), source }
                }
                e => e,
            })?;
            // Trailing blocks after the end of the archive belong to the tar too.
            io::copy(&mut recorder, &mut io::sink()).map_err(read_err)?;
            let (d, n) = hashing.drain_finish().map_err(read_err)?;
            Ok::<_, Error>((stats, d, n))
        };
        let (applied, produced, tally) = if compression == Compression::None {
            // Nothing to inflate: a second thread would only add the handoff
            // (a load of uncompressed layers measured 5% slower with it).
            let mut tee = Timed::new(TeeReader::new(&mut raw, &mut sink), Stage::Tee);
            let applied = apply_tar(&mut tee);
            let produced = match applied {
                Ok(_) => io::copy(&mut raw, &mut sink).map(drop),
                Err(_) => Ok(()),
            };
            (applied, produced, None)
        } else {
            // Two threads, so a large layer uses both cores: this one
            // receives, keeps the blob and inflates; the caller's hashes the
            // tar and applies it. The tar crosses in blocks over a bounded channel.
            std::thread::scope(|scope| {
                let (tx, rx) = mpsc::sync_channel::<Block>(BLOCKS_IN_FLIGHT);
                let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
                let (raw, sink) = (&mut raw, &mut sink);
                let producer = scope.spawn(move || {
                    crate::trace::thread_start();
                    let produced = inflate_into(raw, sink, &tx, &spare_rx);
                    if let Err(e) = &produced {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                    }
                    (produced, crate::trace::thread_end())
                });
                let mut tar = Blocks { rx, cur: Vec::new(), at: 0, spare: spare_tx };
                let applied = apply_tar(&mut tar);
                drop(tar);
                // The producer stops at its next block once the receiving end is gone.
                let (produced, tally) = producer.join().expect("the inflating thread does not panic");
                (applied, produced, tally)
            })
        };
        crate::trace::merge(tally);
        // The bytes' own error (a short read, a full disk, bad compression) explains an apply that failed on them.
        produced.map_err(read_err)?;
        let (stats, diff_id, diff_size) = applied?;
        let blob_size = sink.hasher.len();
        let blob = sink.hasher.clone().finish();
        if let Some(want) = &spec.blob {
            if want != &blob {
                return Err(Error::DigestMismatch {
                    what: format!("layer blob {}", spec.label),
                    expected: want.to_string(),
                    actual: blob.to_string(),
                });
            }
        }
        let mut has_split = false;
        if record {
            let split = split.into_inner();
            if split.is_usable() {
                split.save(&work.path().join(SPLIT_FILE))?;
                has_split = true;
            } else if !self.content.has(&blob) {
                // The layer rewrote its own files, so its directory cannot rebuild the tar: keep the blob after all.
                let reopen = reopen.expect("recording implies a source that can be re-read");
                let mut w = self.content.writer()?;
                io::copy(&mut reopen()?, &mut w).map_err(read_err)?;
                sink.writer = Some(w);
            }
        }
        let media_type = spec.media_type.clone().unwrap_or_else(|| compression.oci_layer_media_type().to_string());
        Ok(Built {
            work,
            writer: sink.writer,
            blob,
            blob_size,
            diff_id,
            diff_size,
            size: stats.size,
            media_type,
            split: has_split,
        })
    }

    /// Commit the blob, rename the tree into place, mark the layer ready.
    fn install(&self, store: &Store, built: Built, mut rec: LayerRecord) -> Result<LayerRecord> {
        let final_dir = self.layers_dir.join(rec.chain_id.hex());
        // A process killed between rename and marking ready leaves the directory behind.
        crate::tree::remove(&final_dir)?;
        if let Some(w) = built.writer {
            w.commit(Some(&built.blob), Some(built.blob_size))?;
        }
        crate::fault::failpoint!("layer-rename");
        std::fs::rename(built.work.path(), &final_dir).at(&final_dir)?;
        built.work.keep();
        crate::fault::failpoint!("layer-ready");
        rec.blob = built.blob;
        rec.blob_size = built.blob_size;
        rec.media_type = built.media_type;
        rec.diff_size = built.diff_size;
        rec.size = built.size;
        rec.split = built.split;
        store.layer_ready(&rec)?;
        Ok(rec)
    }

    /// Make an overlay-form directory the next layer on `lowers` (chain IDs,
    /// parent first) without copying it: its tar is written once, to hash it
    /// (the diff ID) and to record the split that rebuilds the tar from the
    /// directory; then the directory is renamed into place. `work` holds it
    /// as `work/diff`. A layer with the same chain ID already here wins.
    pub fn install_tree(
        &self,
        store: &Store,
        work: crate::tmp::TempDir,
        lowers: &[Digest],
        opts: &layer::WriteOptions,
    ) -> Result<LayerRecord> {
        let diff = work.path().join("diff");
        strip_overlay_xattrs(&diff)?;
        let split = RefCell::new(Split::default());
        let (hasher, size) = layer::write_diff_split(&diff, HashWriter(Hasher::default()), opts, Some(&split))?;
        let diff_size = hasher.0.len();
        let diff_id = hasher.0.finish();
        let chain_id = crate::digest::chain_id(lowers.first(), &diff_id);
        split.into_inner().save(&work.path().join(SPLIT_FILE))?;
        let rec = LayerRecord {
            chain_id,
            diff_id: diff_id.clone(),
            parent: lowers.first().cloned(),
            blob: diff_id.clone(),
            blob_size: diff_size,
            media_type: Compression::None.oci_layer_media_type().to_string(),
            diff_size,
            size,
            split: true,
        };
        if let Some(ready) = claim(store, &rec)? {
            return Ok(ready);
        }
        let built = Built {
            work,
            writer: None,
            blob: diff_id.clone(),
            blob_size: diff_size,
            diff_id,
            diff_size,
            size,
            media_type: rec.media_type.clone(),
            split: true,
        };
        let chain = rec.chain_id.clone();
        self.install(store, built, rec).inspect_err(|_| {
            let _ = store.delete_layer(&chain);
        })
    }

    /// Store a blob from a stream unless present, verifying its digest.
    pub fn ensure_blob(&self, digest: &Digest, mut r: impl Read) -> Result<()> {
        if self.content.has(digest) {
            return Ok(());
        }
        let mut w = self.content.writer()?;
        io::copy(&mut r, &mut w).map_err(|e| Error::stream(format!("reading blob {digest}"), e))?;
        w.commit(Some(digest), None)?;
        Ok(())
    }
}

/// Decompressed tar bytes handed from the inflating thread to the applying one.
type Block = io::Result<Vec<u8>>;

/// Blocks of tar in flight between a layer's two threads (at most 4 MiB).
const BLOCKS_IN_FLIGHT: usize = 16;
const BLOCK_BYTES: usize = 256 << 10;

/// The inflating side of a layer: read the raw bytes through the blob
/// sink, decompress, send the tar in blocks (reusing the blocks the other
/// side hands back), then pass any bytes after the compressed stream to the
/// sink too, so the blob is whole.
fn inflate_into(
    raw: &mut (impl BufRead + Send),
    sink: &mut BlobSink,
    tx: &mpsc::SyncSender<Block>,
    spare: &mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    {
        let tee = Timed::new(TeeReader::new(&mut *raw, &mut *sink), Stage::Tee);
        let (_, dec) = layer::decompress(BufReader::with_capacity(1 << 20, tee))?;
        let mut dec = Timed::new(dec, Stage::Inflate);
        loop {
            let mut block = spare.try_recv().unwrap_or_default();
            block.resize(BLOCK_BYTES, 0);
            let mut n = 0;
            while n < BLOCK_BYTES {
                match dec.read(&mut block[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if n == 0 {
                break;
            }
            block.truncate(n);
            if tx.send(Ok(block)).is_err() {
                return Ok(()); // the applying side stopped; its error is the one to report
            }
        }
    }
    io::copy(raw, sink)?;
    Ok(())
}

/// The applying side's reader of the blocks.
struct Blocks {
    rx: mpsc::Receiver<Block>,
    cur: Vec<u8>,
    at: usize,
    spare: mpsc::Sender<Vec<u8>>,
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.cur, block);
                    let _ = self.spare.send(used);
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the inflating side is done
            }
        }
        let n = buf.len().min(self.cur.len() - self.at);
        buf[..n].copy_from_slice(&self.cur[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A sink that only hashes.
struct HashWriter(Hasher);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Drop overlayfs bookkeeping (origin, impure, ...) from a former upper
/// directory; only the opaque marker belongs in a layer directory.
fn strip_overlay_xattrs(dir: &Path) -> Result<()> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            let p = e.path();
            for (k, _) in crate::tree::xattrs(&p)? {
                if crate::tree::is_overlay_xattr(&k) && k != crate::tree::overlay_opaque_xattr().as_bytes() {
                    rustix::fs::lremovexattr(&p, k.as_slice()).at(&p)?;
                }
            }
            if e.file_type().at(&p)?.is_dir() {
                todo.push(p);
            }
        }
    }
    Ok(())
}

/// Claim a layer for this process, waiting while another live process
/// writes it. `Some` when it is ready already (nothing to do), `None` when
/// this process now owns it and must build it.
fn claim(store: &Store, rec: &LayerRecord) -> Result<Option<LayerRecord>> {
    loop {
        match store.claim_layer(rec)? {
            Claim::Ready => {
                let ready = store.layer(&rec.chain_id)?;
                return ready.map(Some).ok_or_else(|| Error::Corrupt(format!("layer {} vanished", rec.chain_id)));
            }
            Claim::Busy => std::thread::sleep(Duration::from_millis(50)),
            Claim::Mine => {
                crate::fault::failpoint!("layer-claim");
                return Ok(None);
            }
        }
    }
}

/// Wait until every listed layer is ready (they may be unpacking in
/// parallel, in this process or another).
fn wait_ready(store: &Store, chains: &[Digest]) -> Result<()> {
    for c in chains {
        let mut waited = 0u32;
        while store.layer(c)?.is_none() {
            std::thread::sleep(Duration::from_millis(20));
            waited += 1;
            // Nobody is writing it and it is not there: the lookup will just miss.
            if waited > 50 && !store.layer_claimed(c)? {
                break;
            }
        }
    }
    Ok(())
}
