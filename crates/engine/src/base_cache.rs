//! Base images' filesystems, kept between builds. A step that misses the cache needs its
//! stage's files, and without this every such build unpacked the base image's layers
//! again (gunzip, then hashing every file into the store): ~2 s for Debian's bookworm
//! base, 40% of a 20-step build on busybox. BuildKit keeps its bases extracted; kiln keeps
//! the base's snapshot encoded (`Snapshot::encode`: metadata and small files; large
//! contents are in the file store already), one file per chain of base layers.
//!
//! Each file carries an HMAC with the cache's private key, checked before a byte of it is
//! decoded: a file planted in the cache cannot become an image's filesystem. A record
//! that is missing, damaged or names a blob the store no longer has is a miss, never an
//! error; writing one is best effort (a full disk costs this speed-up, not the build).
//!
//! Only images a stage is built FROM are kept: their layers come from outside the build,
//! never from a step (whose layers the leak guard may delete for holding a secret).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use kiln_fs::{MAC_LEN, MacKey, Snapshot, Store};
use sha2::{Digest as _, Sha256};

use crate::state::StageLayer;

/// The largest record read or written. A record holds every path's metadata and the
/// small files kept inline (at most a tree's `INLINE_BUDGET`, 32 MiB): Debian's base is
/// ~3 MB. A base past this is unpacked from its layers every time, as before.
const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Where a chain of base layers' snapshot is kept, and the key that vouches for it.
pub(crate) struct BaseRecord {
    path: PathBuf,
    key: MacKey,
    /// The diff ids the record stands for: a stage uses it only while its first layers
    /// are these.
    diff_ids: Vec<String>,
}

impl BaseRecord {
    /// The record of `layers` in the cache at `cache_dir`, or `None` when there are no
    /// layers.
    pub(crate) fn new(
        cache_dir: &std::path::Path,
        key: &MacKey,
        layers: &[StageLayer],
    ) -> Option<Self> {
        if layers.is_empty() {
            return None;
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| l.layer.diff_id.to_string()).collect();
        let mut h = Sha256::new();
        // This kiln's version: how layers are applied may change between versions.
        h.update(concat!(
            "kiln-base-snapshot\n",
            env!("CARGO_PKG_VERSION"),
            "\n"
        ));
        for d in &diff_ids {
            h.update(d.as_bytes());
            h.update(b"\n");
        }
        let name = hex::encode(h.finalize());
        Some(BaseRecord {
            path: crate::places::CacheLayout::new(cache_dir)
                .bases()
                .join(name),
            key: key.clone(),
            diff_ids,
        })
    }

    /// How many of a stage's first layers the record stands for.
    pub(crate) fn layers(&self) -> usize {
        self.diff_ids.len()
    }

    /// Whether `layers` start with the layers this record stands for.
    pub(crate) fn covers(&self, layers: &[StageLayer]) -> bool {
        layers.len() >= self.diff_ids.len()
            && layers
                .iter()
                .zip(&self.diff_ids)
                .all(|(l, d)| l.layer.diff_id.to_string() == *d)
    }

    /// The kept snapshot, when there is one this cache's key vouches for and every blob it
    /// names is in `store`.
    pub(crate) fn load(&self, store: &Arc<Store>) -> Option<Snapshot> {
        let file = std::fs::File::open(&self.path).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut bytes)
            .ok()?;
        if bytes.len() as u64 > MAX_RECORD_BYTES || bytes.len() < MAC_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        if !self.key.verify(body, tag) {
            return None;
        }
        Snapshot::decode(body, store).ok()
    }

    /// Keeps `snap` (the base layers applied) for later builds; best effort.
    pub(crate) fn save(&self, snap: &Snapshot) {
        let _ = self.try_save(snap);
    }

    fn try_save(&self, snap: &Snapshot) -> std::io::Result<()> {
        let body = snap.encode();
        if body.len() as u64 + MAC_LEN as u64 > MAX_RECORD_BYTES {
            return Ok(());
        }
        // The record will name these blobs in later builds: on disk before it is.
        snap.sync_blobs().map_err(std::io::Error::other)?;
        let tag = self.key.sign(&[&body]);
        let dir = self.path.parent().ok_or(std::io::ErrorKind::NotFound)?;
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&body)?;
        tmp.write_all(&tag)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(diff_id: &str) -> StageLayer {
        let digest: kiln_oci::Digest = diff_id.parse().unwrap();
        StageLayer {
            layer: kiln_oci::Layer {
                descriptor: kiln_oci::Descriptor::new(
                    kiln_oci::Compression::Gzip.media_type(),
                    1,
                    digest.to_oci(),
                ),
                diff_id: digest,
            },
        }
    }

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    /// A cache dir with its key and file store, and a small snapshot over that store.
    fn setup() -> (tempfile::TempDir, MacKey, Arc<Store>, Snapshot) {
        let dir = tempfile::tempdir().unwrap();
        let layout = crate::places::CacheLayout::new(dir.path());
        let key = MacKey::load_or_create(&layout.secret_key()).unwrap();
        let store = Store::open(layout.files()).unwrap();
        let mut t = kiln_fs::Tree::new(&store);
        let root = t.root();
        let f = t.create_file(root, b"os-release", 0o644, 0, 0).unwrap();
        t.write_at(f, 0, b"ID=debian\n").unwrap();
        let big = t.create_file(root, b"big", 0o755, 0, 0).unwrap();
        t.write_at(big, 0, &vec![7u8; kiln_fs::INLINE_MAX * 2])
            .unwrap();
        let snap = t.snapshot().unwrap();
        (dir, key, store, snap)
    }

    #[test]
    fn a_kept_base_comes_back_as_the_same_snapshot() {
        let (dir, key, store, snap) = setup();
        let record = BaseRecord::new(dir.path(), &key, &[layer(A)]).unwrap();
        assert!(record.load(&store).is_none(), "nothing kept yet");
        record.save(&snap);
        assert_eq!(record.load(&store).unwrap().id(), snap.id());
        // Another chain of layers is another record.
        let other = BaseRecord::new(dir.path(), &key, &[layer(A), layer(B)]).unwrap();
        assert!(other.load(&store).is_none());
        assert!(BaseRecord::new(dir.path(), &key, &[]).is_none());
    }

    #[test]
    fn a_record_the_key_does_not_vouch_for_is_a_miss() {
        let (dir, key, store, snap) = setup();
        let record = BaseRecord::new(dir.path(), &key, &[layer(A)]).unwrap();
        record.save(&snap);
        // Any byte changed, body or tag.
        let good = std::fs::read(&record.path).unwrap();
        for i in [0, good.len() / 2, good.len() - 1] {
            let mut bad = good.clone();
            bad[i] ^= 1;
            std::fs::write(&record.path, &bad).unwrap();
            assert!(record.load(&store).is_none(), "byte {i} changed");
        }
        // The same bytes vouched for by another cache's key.
        let elsewhere = tempfile::tempdir().unwrap();
        let other_key = MacKey::load_or_create(&elsewhere.path().join("secret-key")).unwrap();
        let planted = BaseRecord::new(dir.path(), &other_key, &[layer(A)]).unwrap();
        planted.save(&snap);
        assert!(record.load(&store).is_none());
    }

    #[test]
    fn a_record_whose_blobs_left_the_store_is_a_miss() {
        let (dir, key, _store, snap) = setup();
        let record = BaseRecord::new(dir.path(), &key, &[layer(A)]).unwrap();
        record.save(&snap);
        let empty = Store::temp().unwrap();
        assert!(record.load(&empty).is_none());
    }

    #[test]
    fn a_record_covers_only_stages_that_start_with_its_layers() {
        let (dir, key, ..) = setup();
        let record = BaseRecord::new(dir.path(), &key, &[layer(A)]).unwrap();
        assert!(record.covers(&[layer(A)]));
        assert!(record.covers(&[layer(A), layer(B)]));
        assert!(!record.covers(&[layer(B), layer(A)]));
        assert!(!record.covers(&[]));
    }
}
