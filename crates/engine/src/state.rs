//! A stage's state while it is built: the image config so far, the layers so far, and a
//! filesystem snapshot that is only materialised when a step actually needs files.
//!
//! A fully cached build never opens a tree: cached steps only append the layer they
//! recorded. When a step misses the cache, the snapshot is rebuilt from the last
//! materialised one by applying the layers added since (base image layers included).

use std::sync::Arc;

use kiln_fs::{Snapshot, Store, Tree};
use kiln_oci::{Compression, ImageConfig, Layer, LayerWriter, Layout};

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
pub struct StageLayer {
    pub layer: Layer,
}

impl StageLayer {
    /// The layers of an image, bottom first.
    pub fn all_of(image: &kiln_oci::Image) -> Result<Vec<Self>, kiln_oci::OciError> {
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

    pub fn to_ref(&self) -> LayerRef {
        LayerRef {
            digest: self.layer.descriptor.digest().to_string(),
            diff_id: self.layer.diff_id.to_string(),
            size: self.layer.descriptor.size(),
            media_type: self.layer.descriptor.media_type().to_string(),
        }
    }

    pub fn from_ref(r: &LayerRef) -> Result<Self, kiln_oci::OciError> {
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
pub struct StageState {
    pub key: CacheKey,
    pub config: ImageConfig,
    pub layers: Vec<StageLayer>,
    /// A snapshot equal to the first `n` layers applied to an empty tree.
    materialized: Option<(Snapshot, usize)>,
    store: Arc<Store>,
    blobs: Layout,
}

impl StageState {
    pub fn new(
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
            materialized,
            store,
            blobs,
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The stage's filesystem now, applying any layers not yet materialised.
    pub fn snapshot(&mut self) -> Result<Snapshot, StateError> {
        let (base, applied) = match &self.materialized {
            Some((snap, n)) if *n == self.layers.len() => return Ok(snap.clone()),
            Some((snap, n)) => (snap.clone(), *n),
            None => (Snapshot::empty(&self.store), 0),
        };
        let mut tree = Tree::from_snapshot(&base);
        for l in &self.layers[applied..] {
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
        }
        let snap = tree.snapshot().map_err(StateError::Freeze)?;
        self.materialized = Some((snap.clone(), self.layers.len()));
        Ok(snap)
    }

    /// Records the result of a step that ran: writes the diff from the current snapshot
    /// to `next` as a layer (none if nothing changed) and makes `next` current.
    pub fn commit(
        &mut self,
        next: Snapshot,
        epoch: i64,
        compression: Compression,
    ) -> Result<Option<StageLayer>, StateError> {
        let parent = self.snapshot()?;
        if kiln_fs::diff(&parent, &next).is_empty() {
            self.materialized = Some((next, self.layers.len()));
            return Ok(None);
        }
        let writer = LayerWriter::new(&self.blobs, compression).map_err(StateError::Blob)?;
        let writer =
            kiln_fs::write_layer(&parent, &next, epoch, writer).map_err(StateError::Tar)?;
        let layer = writer.finish().map_err(StateError::Blob)?;
        let layer = StageLayer { layer };
        self.layers.push(layer.clone());
        self.materialized = Some((next, self.layers.len()));
        Ok(Some(layer))
    }

    /// Appends a layer recorded in the cache without touching the filesystem.
    pub fn push_cached(&mut self, layer: StageLayer) {
        self.layers.push(layer);
    }
}
