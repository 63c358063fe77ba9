//! The local image store: an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`), readable by skopeo, umoci and friends as it is.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::image::{Descriptor, ImageIndex};
use tempfile::NamedTempFile;

use crate::canonical::to_canonical_json;
use crate::digest::{Digest, HashingWriter, VerifyingReader, unwrap_io};
use crate::error::{OciError, Result};

/// Annotation naming an image inside a layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation with the image's creation time (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Manifests and indexes larger than this are refused: no real one comes close, and a
/// hostile registry or archive must not make kiln buffer gigabytes of JSON.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Image configs carry history and can be bigger than manifests, but not unboundedly.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";

/// Serialises read-modify-write cycles of `index.json` within this process (the file lock
/// below does the same across processes).
static INDEX_LOCK: Mutex<()> = Mutex::new(());

/// Held while `index.json` is being updated.
struct IndexLock {
    _file: File,
    _guard: std::sync::MutexGuard<'static, ()>,
}

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

/// A verified reader over one blob of a layout (digest and size are checked at EOF).
pub type BlobReader = VerifyingReader<BufReader<File>>;

impl Layout {
    /// Open the layout at `dir`, creating the directory, `oci-layout`, an empty
    /// `index.json` and `blobs/sha256` as needed.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<Layout> {
        let root = dir.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).map_err(|e| OciError::io(&blobs, e))?;
        let layout = Layout { root };
        let marker = layout.root.join(LAYOUT_FILE);
        if marker.exists() {
            layout.check_marker()?;
        } else {
            layout.write_atomic(&marker, LAYOUT_CONTENT)?;
        }
        if !layout.root.join(INDEX_FILE).exists() {
            layout.write_index(&empty_index()?)?;
        }
        Ok(layout)
    }

    /// Open an existing layout (e.g. one written by skopeo) without modifying it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Layout> {
        let layout = Layout {
            root: dir.as_ref().to_path_buf(),
        };
        layout.check_marker()?;
        Ok(layout)
    }

    fn check_marker(&self) -> Result<()> {
        let path = self.root.join(LAYOUT_FILE);
        let bytes = read_limited(&path, 4096)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::json(path.display().to_string(), e))?;
        match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(ver) if ver.starts_with("1.") => Ok(()),
            other => Err(OciError::invalid(
                path.display().to_string(),
                format!("unsupported imageLayoutVersion {other:?}"),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(OciError::BlobNotFound(digest.to_string()))
            }
            Err(e) => Err(OciError::io(path, e)),
        }
    }

    /// Open a blob for reading. The reader fails with a digest error at EOF if the stored
    /// content does not hash to `digest` (a corrupted or tampered store).
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OciError::BlobNotFound(digest.to_string()));
            }
            Err(e) => return Err(OciError::io(path, e)),
        };
        let size = file.metadata().map_err(|e| OciError::io(&path, e))?.len();
        Ok(VerifyingReader::new(
            BufReader::new(file),
            digest.clone(),
            Some(size),
            format!("blob {digest}"),
        ))
    }

    /// Open the blob a descriptor names, checking its size against the descriptor first
    /// (a truncated blob is reported as such rather than as a digest mismatch).
    pub fn open_descriptor(&self, desc: &Descriptor) -> Result<BlobReader> {
        let digest = Digest::from_oci(desc.digest())?;
        let size = self.blob_size(&digest)?;
        if size != desc.size() {
            return Err(OciError::SizeMismatch {
                what: format!("blob {digest}"),
                expected: desc.size(),
                actual: size,
            });
        }
        self.open_blob(&digest)
    }

    /// Read a whole (small) blob into memory, verified, refusing blobs over `limit` bytes.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let size = self.blob_size(digest)?;
        if size > limit {
            return Err(OciError::TooLarge {
                what: format!("blob {digest}"),
                size,
                limit,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.open_blob(digest)?
            .read_to_end(&mut buf)
            .map_err(|e| unwrap_io(&format!("reading blob {digest}"), e))?;
        Ok(buf)
    }

    /// Start writing a blob. Nothing is visible in `blobs/` until [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = NamedTempFile::with_prefix_in(".kiln-tmp-", &self.root)
            .map_err(|e| OciError::io(&self.root, e))?;
        let file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| OciError::io(tmp.path(), e))?;
        Ok(BlobWriter {
            layout: self.clone(),
            out: HashingWriter::new(BufWriter::with_capacity(256 << 10, file)),
            tmp,
        })
    }

    /// Store `data` as a blob and return its digest.
    pub fn write_blob(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        if !self.has_blob(&digest) {
            let mut w = self.blob_writer()?;
            w.write_all(data)
                .map_err(|e| OciError::stream("writing blob", e))?;
            w.commit_expecting(&digest, Some(data.len() as u64))?;
        }
        Ok(digest)
    }

    /// Copy a blob from `src` into the layout, verifying digest and size before it becomes
    /// visible. Returns the number of bytes stored. Skips the copy if the blob is present.
    pub fn import_blob(
        &self,
        mut src: impl Read,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<u64> {
        if self.has_blob(expected) {
            let size = self.blob_size(expected)?;
            if expected_size.is_none_or(|s| s == size) {
                return Ok(size);
            }
        }
        let mut w = self.blob_writer()?;
        let limit = expected_size.map_or(u64::MAX, |s| s.saturating_add(1));
        io::copy(&mut (&mut src).take(limit), &mut w)
            .map_err(|e| unwrap_io(&format!("copying blob {expected}"), e))?;
        w.commit_expecting(expected, expected_size)
    }

    /// Move the file at `src` (on the same filesystem, e.g. an import staging directory
    /// inside this layout) into the store as blob `expected`, after verifying it. Saves
    /// the copy that [`import_blob`](Self::import_blob) makes.
    pub(crate) fn adopt_blob(&self, src: &Path, expected: &Digest, size: u64) -> Result<()> {
        if self.has_blob(expected) && self.blob_size(expected)? == size {
            return Ok(());
        }
        let file = File::open(src).map_err(|e| OciError::io(src, e))?;
        let actual = file.metadata().map_err(|e| OciError::io(src, e))?.len();
        if actual != size {
            return Err(OciError::SizeMismatch {
                what: format!("blob {expected}"),
                expected: size,
                actual,
            });
        }
        let mut r = VerifyingReader::new(
            BufReader::with_capacity(256 << 10, file),
            expected.clone(),
            Some(size),
            format!("blob {expected}"),
        );
        io::copy(&mut r, &mut io::sink())
            .map_err(|e| unwrap_io(&format!("verifying blob {expected}"), e))?;
        let dest = self.blob_path(expected);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| OciError::io(parent, e))?;
        }
        fs::rename(src, &dest).map_err(|e| OciError::io(&dest, e))
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let path = self.root.join(INDEX_FILE);
        let bytes = read_limited(&path, MAX_MANIFEST_SIZE)?;
        serde_json::from_slice(&bytes).map_err(|e| OciError::json(path.display().to_string(), e))
    }

    /// Point `name` at `manifest` in `index.json`, replacing any previous image of that name.
    /// The index is rewritten atomically (temp file + rename).
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<()> {
        if name.is_empty() {
            return Err(OciError::invalid("tag", "empty name"));
        }
        let mut tagged = manifest.clone();
        let mut ann = tagged.annotations().clone().unwrap_or_default();
        ann.insert(ANNOTATION_REF_NAME.to_owned(), name.to_owned());
        tagged.set_annotations(Some(ann));
        self.update_index(|manifests| {
            manifests.retain(|d| ref_name(d) != Some(name));
            manifests.push(tagged);
        })
    }

    /// Add `manifest` to `index.json` without a name (if it is not already listed).
    pub fn add_untagged(&self, manifest: &Descriptor) -> Result<()> {
        self.update_index(|manifests| {
            if !manifests.iter().any(|d| d.digest() == manifest.digest()) {
                manifests.push(manifest.clone());
            }
        })
    }

    /// Read-modify-write `index.json` under the lock; entries are kept sorted by name
    /// (then digest) so the file does not depend on the order of operations.
    fn update_index(&self, f: impl FnOnce(&mut Vec<Descriptor>)) -> Result<()> {
        let _lock = self.lock_index()?;
        let mut index = self.index()?;
        let mut manifests = index.manifests().clone();
        f(&mut manifests);
        manifests.sort_by(|a, b| {
            (ref_name(a), a.digest().as_ref()).cmp(&(ref_name(b), b.digest().as_ref()))
        });
        index.set_manifests(manifests);
        self.write_index(&index)
    }

    /// Lock `index.json` against concurrent taggers, in this process and others (two
    /// `kiln build`s sharing a store). The lock is taken on the `oci-layout` file so the
    /// layout gains no extra files.
    fn lock_index(&self) -> Result<IndexLock> {
        let guard = INDEX_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.root.join(LAYOUT_FILE);
        let file = File::open(&path).map_err(|e| OciError::io(&path, e))?;
        file.lock().map_err(|e| OciError::io(&path, e))?;
        Ok(IndexLock {
            _file: file,
            _guard: guard,
        })
    }

    /// The manifest descriptor named `name`, or — with `None` — the only one in the index.
    pub fn resolve(&self, name: Option<&str>) -> Result<Descriptor> {
        let index = self.index()?;
        let found: Vec<&Descriptor> = match name {
            Some(n) => index
                .manifests()
                .iter()
                .filter(|d| ref_name(d) == Some(n))
                .collect(),
            None => index.manifests().iter().collect(),
        };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(OciError::ImageNotFound(format!(
                "{}{}",
                self.root.display(),
                name.map(|n| format!(":{n}")).unwrap_or_default()
            ))),
            _ => Err(OciError::invalid(
                format!("index of {}", self.root.display()),
                "several images; name the one you want",
            )),
        }
    }

    /// All `(name, manifest descriptor)` pairs of the index, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, Descriptor)>> {
        let mut out: Vec<(String, Descriptor)> = self
            .index()?
            .manifests()
            .iter()
            .filter_map(|d| ref_name(d).map(|n| (n.to_owned(), d.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = to_canonical_json(index, "index.json")?;
        let path = self.root.join(INDEX_FILE);
        // Re-tagging an image with the digest it already has (a rebuild) changes
        // nothing: skip the write and its sync.
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        self.write_atomic(&path, &bytes)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = NamedTempFile::with_prefix_in(".kiln-tmp-", &self.root)
            .map_err(|e| OciError::io(&self.root, e))?;
        tmp.write_all(bytes)
            .map_err(|e| OciError::io(tmp.path(), e))?;
        tmp.as_file()
            .sync_data()
            .map_err(|e| OciError::io(tmp.path(), e))?;
        tmp.persist(path).map_err(|e| OciError::io(path, e.error))?;
        Ok(())
    }
}

pub(crate) fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

pub(crate) fn empty_index() -> Result<ImageIndex> {
    let json = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    serde_json::from_str(json).map_err(|e| OciError::json("empty index", e))
}

pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| OciError::io(path, e))?;
    let mut buf = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| OciError::io(path, e))?;
    if buf.len() as u64 > limit {
        return Err(OciError::TooLarge {
            what: path.display().to_string(),
            size: buf.len() as u64,
            limit,
        });
    }
    Ok(buf)
}

/// A blob being written into a [`Layout`]: hashed as it streams to a temporary file, and
/// renamed to `blobs/<alg>/<hex>` only on commit. Dropping it uncommitted leaves nothing.
pub struct BlobWriter {
    layout: Layout,
    out: HashingWriter<BufWriter<File>>,
    tmp: NamedTempFile,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.out.written
    }

    /// Make the blob visible under its digest; returns `(digest, size)`.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let (digest, size, tmp, layout) = self.finish()?;
        layout.persist(tmp, &digest)?;
        Ok((digest, size))
    }

    /// Like [`commit`](Self::commit), but only if the content has the expected digest and
    /// size; otherwise the temporary file is deleted and an error returned.
    pub fn commit_expecting(self, expected: &Digest, expected_size: Option<u64>) -> Result<u64> {
        let (digest, size, tmp, layout) = self.finish()?;
        if let Some(want) = expected_size
            && want != size
        {
            return Err(OciError::SizeMismatch {
                what: format!("blob {expected}"),
                expected: want,
                actual: size,
            });
        }
        if &digest != expected {
            return Err(OciError::DigestMismatch {
                what: "blob".into(),
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }
        layout.persist(tmp, &digest)?;
        Ok(size)
    }

    fn finish(self) -> Result<(Digest, u64, NamedTempFile, Layout)> {
        let BlobWriter { layout, out, tmp } = self;
        let HashingWriter {
            inner,
            hasher,
            written,
        } = out;
        // Flushed into the temp file; it is synced only if it becomes the blob.
        inner
            .into_inner()
            .map_err(|e| OciError::io(tmp.path(), e.into_error()))?;
        Ok((hasher.finish(), written, tmp, layout))
    }
}

impl Layout {
    fn persist(&self, tmp: NamedTempFile, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        // Content-addressed: an existing blob of the right size has the same bytes (a
        // damaged one, e.g. truncated by a crash, is replaced).
        let new_len = tmp
            .as_file()
            .metadata()
            .map_err(|e| OciError::io(tmp.path(), e))?
            .len();
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == new_len) {
            return Ok(());
        }
        // Only a blob that is new costs a sync: a step rerun with `--no-cache` writes
        // the same layer again, and syncing a temp file about to be deleted is waste.
        tmp.as_file()
            .sync_data()
            .map_err(|e| OciError::io(tmp.path(), e))?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| OciError::io(parent, e))?;
        }
        tmp.persist(&dest)
            .map_err(|e| OciError::io(&dest, e.error))?;
        Ok(())
    }
}
