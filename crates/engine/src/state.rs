//! A stage's state while it is built: the image config so far, the layers so far, and a
//! filesystem snapshot that is only materialised when a step actually needs files.
//!
//! A fully cached build never opens a tree: cached steps only append the layer they
//! recorded. When a step misses the cache, the snapshot is rebuilt from the last
//! materialised one by applying the layers added since (base image layers included).

use std::sync::Arc;

use kiln_fs::{Snapshot, Store, Tree};
use kiln_oci::{Compression, ImageConfig, Layer, LayerWriter, Layout};

use crate::base_cache::BaseRecord;
use crate::cache::{CacheKey, LayerRef};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("layer {digest}: {source}")]
    Oci {
        digest: String,
        source: kiln_oci::OciError,
    },
    #[error("applying layer {digest}: {source}")]
    Apply {
        digest: String,
        source: kiln_fs::FsError,
    },
    #[error("rebuilding the stage's filesystem: {0}")]
    Freeze(kiln_fs::FsError),
    #[error("writing a layer blob: {0}")]
    Blob(kiln_oci::OciError),
    #[error("writing a layer: {0}")]
    Tar(kiln_fs::FsError),
}

/// One layer of the stage's image, with what the config needs for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageLayer {
    pub layer: Layer,
}

impl StageLayer {
    /// The layers of an image, bottom first.
    pub(crate) fn all_of(image: &kiln_oci::Image) -> Result<Vec<Self>, kiln_oci::OciError> {
        Ok(image
            .layers()?
            .into_iter()
            .map(|l| StageLayer {
                layer: Layer {
                    descriptor: l.descriptor,
                    diff_id: l.diff_id,
                },
            })
            .collect())
    }

    pub(crate) fn to_ref(&self) -> LayerRef {
        LayerRef {
            digest: self.layer.descriptor.digest().to_string(),
            diff_id: self.layer.diff_id.to_string(),
            size: self.layer.descriptor.size(),
            media_type: self.layer.descriptor.media_type().to_string(),
        }
    }

    pub(crate) fn from_ref(r: &LayerRef) -> Result<Self, kiln_oci::OciError> {
        let digest: kiln_oci::Digest = r.digest.parse()?;
        let diff_id: kiln_oci::Digest = r.diff_id.parse()?;
        let media_type = kiln_oci::MediaType::from(r.media_type.as_str());
        Ok(Self {
            layer: Layer {
                descriptor: kiln_oci::Descriptor::new(media_type, r.size, digest.to_oci()),
                diff_id,
            },
        })
    }
}

/// Everything a stage has built so far.
#[derive(Clone)]
pub(crate) struct StageState {
    pub key: CacheKey,
    pub config: ImageConfig,
    pub layers: Vec<StageLayer>,
    /// The ARGs a stage built `FROM` this one inherits (set when the stage is done).
    pub inherited: kiln_dockerfile::args::Inherited,
    /// Whether this stage's steps ignore the cache (`--no-cache`, or the stage named by
    /// `--no-cache-filter`); set by each stage for itself, never inherited.
    pub ignore_cache: bool,
    /// A snapshot equal to the first `n` layers applied to an empty tree.
    materialized: Option<(Snapshot, usize)>,
    /// Where the base image's filesystem is kept between builds (stages built FROM an
    /// image; see `base_cache`).
    base_record: Option<Arc<BaseRecord>>,
    store: Arc<Store>,
    blobs: Layout,
}

impl StageState {
    pub(crate) fn new(
        key: CacheKey,
        config: ImageConfig,
        layers: Vec<StageLayer>,
        store: Arc<Store>,
        blobs: Layout,
    ) -> Self {
        let materialized = layers.is_empty().then(|| (Snapshot::empty(&store), 0));
        Self {
            key,
            config,
            layers,
            inherited: Default::default(),
            ignore_cache: false,
            materialized,
            base_record: None,
            store,
            blobs,
        }
    }

    /// This stage starts from an image whose filesystem `record` keeps between builds.
    pub(crate) fn with_base_record(mut self, record: Option<BaseRecord>) -> Self {
        self.base_record = record.map(Arc::new);
        self
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The stage's filesystem now, applying any layers not yet materialised.
    pub(crate) fn snapshot(&mut self) -> Result<Snapshot, StateError> {
        let (base, applied, to_save) = match &self.materialized {
            Some((snap, n)) if *n == self.layers.len() => return Ok(snap.clone()),
            Some((snap, n)) => (snap.clone(), *n, None),
            None => self.unmaterialized_start(),
        };
        let mut tree = Tree::from_snapshot(&base);
        for (i, l) in self.layers.iter().enumerate().skip(applied) {
            let digest = l.layer.descriptor.digest().to_string();
            let oci = |source| StateError::Oci {
                digest: digest.clone(),
                source,
            };
            let d = kiln_oci::Digest::from_oci(l.layer.descriptor.digest()).map_err(oci)?;
            let blob = self.blobs.open_blob(&d).map_err(oci)?;
            let mut reader = kiln_oci::verified_layer_reader(
                blob,
                l.layer.descriptor.media_type(),
                &l.layer.diff_id,
                &format!("layer {digest}"),
            )
            .map_err(oci)?;
            tree.apply_layer(&mut reader)
                .map_err(|source| StateError::Apply {
                    digest: digest.clone(),
                    source,
                })?;
            // The tar parser stops at the end-of-archive marker; the digest checks run
            // only once the rest of the blob has been read.
            reader.finish().map_err(oci)?;
            if let Some(r) = to_save.as_ref().filter(|r| r.layers() == i + 1) {
                r.save(&tree.snapshot().map_err(StateError::Freeze)?);
            }
        }
        let snap = tree.snapshot().map_err(StateError::Freeze)?;
        self.materialized = Some((snap.clone(), self.layers.len()));
        Ok(snap)
    }

    /// Where a first materialisation starts: the base image's kept snapshot (its layers
    /// already applied), else an empty tree and the record to keep once the base layers
    /// are applied. A record applies only while the stage's first layers are its own.
    fn unmaterialized_start(&self) -> (Snapshot, usize, Option<Arc<BaseRecord>>) {
        let record = self.base_record.clone().filter(|r| r.covers(&self.layers));
        match record
            .as_ref()
            .and_then(|r| Some((r.load(&self.store)?, r.layers())))
        {
            Some((snap, n)) => (snap, n, None),
            None => (Snapshot::empty(&self.store), 0, record),
        }
    }

    /// Records the result of a step that ran: writes the diff from the current snapshot
    /// to `next` as a layer (an empty one if nothing changed, as BuildKit's steps make)
    /// and makes `next` current.
    pub(crate) fn commit(
        &mut self,
        next: Snapshot,
        epoch: i64,
        compression: Compression,
    ) -> Result<StageLayer, StateError> {
        let parent = self.snapshot()?;
        let writer = LayerWriter::new(&self.blobs, compression).map_err(StateError::Blob)?;
        let writer =
            kiln_fs::write_layer(&parent, &next, epoch, writer).map_err(StateError::Tar)?;
        let layer = writer.finish().map_err(StateError::Blob)?;
        let layer = StageLayer { layer };
        self.layers.push(layer.clone());
        self.materialized = Some((next, self.layers.len()));
        Ok(layer)
    }

    /// Appends a layer recorded in the cache without touching the filesystem.
    pub(crate) fn push_cached(&mut self, layer: StageLayer) {
        self.layers.push(layer);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use kiln_fs::Follow;

    use super::*;

    /// A stage over a private store and blob layout, starting from `layers`.
    fn stage(dir: &std::path::Path, layers: Vec<StageLayer>) -> StageState {
        let store = Store::open(dir.join("files")).unwrap();
        let blobs = Layout::open_or_create(dir.join("blobs")).unwrap();
        StageState::new(
            CacheKey::root("scratch", ""),
            ImageConfig::default(),
            layers,
            store,
            blobs,
        )
    }

    /// `snap` with the file `name` holding `body` added at the root.
    fn with_file(snap: &Snapshot, name: &str, body: &[u8]) -> Snapshot {
        let mut tree = Tree::from_snapshot(snap);
        let root = tree.root();
        let ino = tree
            .create_file(root, name.as_bytes(), 0o644, 0, 0)
            .unwrap();
        tree.write_from(ino, body).unwrap();
        tree.snapshot().unwrap()
    }

    fn read(snap: &Snapshot, path: &str) -> Vec<u8> {
        let mut tree = Tree::from_snapshot(snap);
        let ino = tree
            .resolve(tree.root(), path.as_bytes(), Follow::No)
            .unwrap();
        let mut out = Vec::new();
        tree.open_read(ino).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    /// A stage that committed one layer holding `/a`; returns it and that layer.
    fn one_layer(dir: &std::path::Path) -> (StageState, StageLayer) {
        let mut state = stage(dir, Vec::new());
        let next = with_file(&state.snapshot().unwrap(), "a", b"first");
        let layer = state.commit(next, 0, Compression::Gzip).unwrap();
        (state, layer)
    }

    #[test]
    fn an_empty_diff_commits_an_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = stage(dir.path(), Vec::new());
        let same = state.snapshot().unwrap();
        let empty = state.commit(same, 0, Compression::Gzip).unwrap();
        assert_eq!(state.layers, std::slice::from_ref(&empty));
        // It holds no entries: the files are what they were.
        let mut fresh = stage(dir.path(), vec![empty]);
        assert_eq!(
            fresh.snapshot().unwrap().id(),
            state.snapshot().unwrap().id()
        );
        // A real change after it is still a layer, on top of the same parent.
        let (state, layer) = one_layer(dir.path());
        assert_eq!(state.layers, [layer]);
    }

    #[test]
    fn cached_layers_are_applied_only_when_files_are_needed() {
        let dir = tempfile::tempdir().unwrap();
        let (_, layer) = one_layer(dir.path());
        // As on a cache hit: the layer is appended, nothing is read yet, so a layer
        // whose blob is gone is not noticed until the files are wanted.
        let mut lazy = stage(dir.path(), Vec::new());
        lazy.push_cached(layer.clone());
        let mut gone = layer.clone();
        gone.layer.descriptor = kiln_oci::Descriptor::new(
            layer.layer.descriptor.media_type().clone(),
            1,
            kiln_oci::Digest::sha256_of(b"not stored").to_oci(),
        );
        lazy.push_cached(gone);
        assert_eq!(lazy.layers.len(), 2);
        let err = lazy.snapshot().unwrap_err();
        assert!(matches!(err, StateError::Oci { .. }), "{err}");
        // A stage opened on the stored layer rebuilds its files from it, once.
        let mut state = stage(dir.path(), vec![layer]);
        let snap = state.snapshot().unwrap();
        assert_eq!(read(&snap, "/a"), b"first");
        assert_eq!(state.snapshot().unwrap().id(), snap.id());
        // The next commit diffs against the rebuilt tree: only `/b` is in it.
        let next = with_file(&snap, "b", b"second");
        let top = state.commit(next, 0, Compression::Gzip).unwrap();
        let mut fresh = stage(dir.path(), state.layers.clone());
        let all = fresh.snapshot().unwrap();
        assert_eq!(
            (read(&all, "/a"), read(&all, "/b")),
            (b"first".to_vec(), b"second".to_vec())
        );
        assert_eq!(state.layers.last(), Some(&top));
    }

    #[test]
    fn a_corrupt_blob_is_an_error_naming_the_layer() {
        let dir = tempfile::tempdir().unwrap();
        let (_, layer) = one_layer(dir.path());
        let digest = kiln_oci::Digest::from_oci(layer.layer.descriptor.digest()).unwrap();
        let blobs = Layout::open_or_create(dir.path().join("blobs")).unwrap();
        std::fs::write(blobs.blob_path(&digest), b"not a gzip stream at all").unwrap();
        let err = stage(dir.path(), vec![layer]).snapshot().unwrap_err();
        assert!(
            matches!(&err, StateError::Oci { .. } | StateError::Apply { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&digest.to_string()), "{err}");
    }

    #[test]
    fn layer_refs_round_trip_and_bad_digests_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (_, layer) = one_layer(dir.path());
        assert_eq!(StageLayer::from_ref(&layer.to_ref()).unwrap(), layer);
        let mut bad = layer.to_ref();
        bad.digest = "sha256:zz".into();
        assert!(StageLayer::from_ref(&bad).is_err());
    }
}
