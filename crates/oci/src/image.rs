//! Images inside a layout: writing config + manifest for a build result, and loading an
//! image (following an index to the requested platform) for use as a base.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

use crate::config::{ImageConfig, Platform};
use crate::digest::{Digest, VerifyingReader};
use crate::error::{OciError, Result};
use crate::layer::{Layer, verified_layer_reader};
use crate::layout::{ANNOTATION_CREATED, Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};

pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Indexes nested deeper than this are refused (a cycle or a hostile image).
const MAX_INDEX_DEPTH: usize = 4;

/// What a manifest-ish blob is, judged by its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Manifest,
    Index,
}

pub(crate) fn kind_of(media_type: &MediaType, what: &str) -> Result<Kind> {
    match media_type.as_ref() {
        "application/vnd.oci.image.manifest.v1+json" | DOCKER_MANIFEST => Ok(Kind::Manifest),
        "application/vnd.oci.image.index.v1+json" | DOCKER_MANIFEST_LIST => Ok(Kind::Index),
        other => Err(OciError::UnsupportedMediaType {
            what: what.to_owned(),
            media_type: other.to_owned(),
        }),
    }
}

/// An image manifest and its config, stored in a [`Layout`].
#[derive(Clone, Debug)]
pub struct Image {
    layout: Layout,
    /// The descriptor of the manifest blob (digest, size, media type).
    pub descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
}

impl Image {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The manifest digest (the image's identity, as in `name@sha256:...`).
    pub fn digest(&self) -> Result<Digest> {
        Digest::from_oci(self.descriptor.digest())
    }

    pub fn config_digest(&self) -> Result<Digest> {
        Digest::from_oci(self.manifest.config().digest())
    }

    /// The layers, bottom first.
    pub fn layers(&self) -> Result<Vec<Layer>> {
        let diff_ids = self.config.diff_ids()?;
        let layers = self.manifest.layers();
        if diff_ids.len() != layers.len() {
            return Err(OciError::invalid(
                format!("image {}", self.descriptor.digest()),
                format!(
                    "manifest has {} layers but config has {} diff_ids",
                    layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        Ok(layers
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| Layer {
                descriptor: d.clone(),
                diff_id,
            })
            .collect())
    }

    /// Open a layer as its uncompressed tar stream (for the filesystem's layer import).
    /// Reading to the end checks both the blob digest and the diff_id; a tar parser stops
    /// before the end, so call [`VerifyingReader::finish`] after applying the layer.
    pub fn open_layer(&self, layer: &Layer) -> Result<VerifyingReader<Box<dyn Read + Send>>> {
        let digest = Digest::from_oci(layer.descriptor.digest())?;
        let blob = self.layout.open_descriptor(&layer.descriptor)?;
        verified_layer_reader(
            blob,
            layer.descriptor.media_type(),
            &layer.diff_id,
            &format!("layer {digest}"),
        )
    }

    /// Every blob this image references: config first, then layers (deduplicated).
    pub fn blobs(&self) -> Result<Vec<Descriptor>> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for d in std::iter::once(self.manifest.config()).chain(self.manifest.layers()) {
            if seen.insert(d.digest().to_string()) {
                out.push(d.clone());
            }
        }
        Ok(out)
    }
}

impl Layout {
    /// Write `config` and a manifest referencing `layers` (already in this layout) and
    /// return the manifest descriptor, with the platform set. The manifest gets the
    /// `org.opencontainers.image.created` annotation from the config plus `annotations`.
    pub fn write_image(
        &self,
        config: &ImageConfig,
        layers: &[Layer],
        annotations: &BTreeMap<String, String>,
    ) -> Result<Descriptor> {
        let diff_ids = config.diff_ids()?;
        let given: Vec<&Digest> = layers.iter().map(|l| &l.diff_id).collect();
        if diff_ids.iter().collect::<Vec<_>>() != given {
            return Err(OciError::invalid(
                "image",
                "layers do not match the config's rootfs diff_ids (same order required)",
            ));
        }
        for l in layers {
            let d = Digest::from_oci(l.descriptor.digest())?;
            if self.blob_size(&d)? != l.descriptor.size() {
                return Err(OciError::invalid(
                    format!("layer {d}"),
                    "size differs from descriptor",
                ));
            }
        }
        let config_bytes = config.to_json()?;
        let config_digest = self.write_blob(&config_bytes)?;
        let config_desc = Descriptor::new(
            MediaType::ImageConfig,
            config_bytes.len() as u64,
            config_digest.to_oci(),
        );
        let mut ann: HashMap<String, String> = annotations.clone().into_iter().collect();
        if let Some(created) = config.spec.created() {
            ann.entry(ANNOTATION_CREATED.to_owned())
                .or_insert_with(|| created.clone());
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layers.iter().map(|l| &l.descriptor).collect::<Vec<_>>(),
            "annotations": ann,
        });
        let bytes = crate::canonical::value_to_canonical_json(&manifest, "manifest")?;
        let digest = self.write_blob(&bytes)?;
        let mut desc = Descriptor::new(
            MediaType::ImageManifest,
            bytes.len() as u64,
            digest.to_oci(),
        );
        desc.set_platform(Some(oci_platform(&config.platform())?));
        Ok(desc)
    }

    /// Load the image named `name` (or the only one, with `None`), choosing `platform`
    /// from a multi-platform index (default: `linux/<host arch>`).
    pub fn load_image(&self, name: Option<&str>, platform: Option<&Platform>) -> Result<Image> {
        let desc = self.resolve(name)?;
        self.load_descriptor(&desc, platform)
    }

    /// Load the image a descriptor points to (manifest, or index -> platform).
    pub fn load_descriptor(&self, desc: &Descriptor, platform: Option<&Platform>) -> Result<Image> {
        let wanted = platform.cloned().unwrap_or_else(Platform::host_linux);
        let mut desc = desc.clone();
        for _ in 0..MAX_INDEX_DEPTH {
            let digest = Digest::from_oci(desc.digest())?;
            let what = format!("manifest {digest}");
            let kind = kind_of(desc.media_type(), &what)?;
            let bytes = self.read_blob(&digest, MAX_MANIFEST_SIZE)?;
            check_size(&desc, bytes.len(), &what)?;
            match kind {
                Kind::Index => {
                    let index: ImageIndex = parse_checked(&bytes, &desc, &what)?;
                    desc = select_platform(&index, &wanted, &what)?;
                }
                Kind::Manifest => {
                    let manifest: ImageManifest = parse_checked(&bytes, &desc, &what)?;
                    let config = self.load_config(manifest.config())?;
                    return Ok(Image {
                        layout: self.clone(),
                        descriptor: desc,
                        manifest,
                        config,
                    });
                }
            }
        }
        Err(OciError::invalid("image index", "nested too deeply"))
    }

    fn load_config(&self, desc: &Descriptor) -> Result<ImageConfig> {
        let digest = Digest::from_oci(desc.digest())?;
        let what = format!("config {digest}");
        match desc.media_type().as_ref() {
            "application/vnd.oci.image.config.v1+json" | DOCKER_CONFIG => {}
            other => {
                return Err(OciError::UnsupportedMediaType {
                    what,
                    media_type: other.to_owned(),
                });
            }
        }
        let bytes = self.read_blob(&digest, MAX_CONFIG_SIZE)?;
        check_size(desc, bytes.len(), &what)?;
        ImageConfig::from_json(&bytes)
    }
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| OciError::json(what, e))
}

pub(crate) fn check_size(desc: &Descriptor, actual: usize, what: &str) -> Result<()> {
    if desc.size() != actual as u64 {
        return Err(OciError::SizeMismatch {
            what: what.to_owned(),
            expected: desc.size(),
            actual: actual as u64,
        });
    }
    Ok(())
}

/// Parse a manifest or index, after checking that the `mediaType` inside the document,
/// when present, agrees with the descriptor that led to it.
pub(crate) fn parse_checked<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    desc: &Descriptor,
    what: &str,
) -> Result<T> {
    let value: serde_json::Value = parse_json(bytes, what)?;
    if let Some(inner) = value.get("mediaType").and_then(|v| v.as_str())
        && inner != desc.media_type().as_ref()
    {
        return Err(OciError::invalid(
            what,
            format!(
                "descriptor says {} but the document says {inner}",
                desc.media_type()
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| OciError::json(what, e))
}

fn descriptor_platform(d: &Descriptor) -> Option<Platform> {
    d.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    })
}

/// Pick the manifest for `wanted` from an index: exact variant match first, then any
/// compatible one. Entries without a platform (attestations) are never chosen unless
/// the index has a single entry.
pub(crate) fn select_platform(
    index: &ImageIndex,
    wanted: &Platform,
    what: &str,
) -> Result<Descriptor> {
    let manifests = index.manifests();
    if let [only] = manifests.as_slice()
        && only.platform().is_none()
    {
        return Ok(only.clone());
    }
    let candidates: Vec<(&Descriptor, Platform)> = manifests
        .iter()
        .filter_map(|d| descriptor_platform(d).map(|p| (d, p)))
        .filter(|(_, p)| wanted.matches(p))
        .collect();
    let exact = candidates.iter().find(|(_, p)| p.variant == wanted.variant);
    match exact.or(candidates.first()) {
        Some((d, _)) => Ok((*d).clone()),
        None => Err(OciError::PlatformNotFound {
            wanted: wanted.to_string(),
            what: what.to_owned(),
            available: manifests
                .iter()
                .filter_map(descriptor_platform)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

pub(crate) fn oci_platform(p: &Platform) -> Result<oci_spec::image::Platform> {
    let mut v = serde_json::json!({"architecture": p.architecture, "os": p.os});
    if let Some(var) = &p.variant {
        v["variant"] = serde_json::Value::String(var.clone());
    }
    serde_json::from_value(v).map_err(|e| OciError::json("platform", e))
}

/// What [`Layout::gc`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    pub blobs_removed: u64,
    pub bytes_removed: u64,
}

impl Layout {
    /// Delete blobs that no entry of `index.json` reaches (through indexes, manifests,
    /// configs and layers) and that are older than `min_age`. The age guard protects the
    /// blobs of a build or pull in progress, which are written before they are tagged.
    pub fn gc(&self, min_age: std::time::Duration) -> Result<GcStats> {
        let mut live = std::collections::HashSet::new();
        let mut todo: Vec<Descriptor> = self.index()?.manifests().clone();
        while let Some(d) = todo.pop() {
            let Ok(digest) = Digest::from_oci(d.digest()) else {
                continue;
            };
            if !live.insert(digest.clone()) || !self.has_blob(&digest) {
                continue;
            }
            let Ok(kind) = kind_of(d.media_type(), "") else {
                continue; // a config or layer: a leaf
            };
            let bytes = self.read_blob(&digest, MAX_MANIFEST_SIZE)?;
            match kind {
                Kind::Index => {
                    let index: ImageIndex = parse_json(&bytes, &format!("index {digest}"))?;
                    todo.extend(index.manifests().iter().cloned());
                }
                Kind::Manifest => {
                    let m: ImageManifest = parse_json(&bytes, &format!("manifest {digest}"))?;
                    todo.push(m.config().clone());
                    todo.extend(m.layers().iter().cloned());
                }
            }
        }
        let mut stats = GcStats::default();
        let now = std::time::SystemTime::now();
        let blobs = self.root().join("blobs");
        for alg in std::fs::read_dir(&blobs).map_err(|e| OciError::io(&blobs, e))? {
            let alg = alg.map_err(|e| OciError::io(&blobs, e))?;
            let alg_name = alg.file_name().to_string_lossy().into_owned();
            for entry in std::fs::read_dir(alg.path()).map_err(|e| OciError::io(alg.path(), e))? {
                let entry = entry.map_err(|e| OciError::io(alg.path(), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let Ok(digest) = format!("{alg_name}:{name}").parse::<Digest>() else {
                    continue; // not ours to judge
                };
                let meta = entry
                    .metadata()
                    .map_err(|e| OciError::io(entry.path(), e))?;
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or_default();
                if live.contains(&digest) || age < min_age {
                    continue;
                }
                std::fs::remove_file(entry.path()).map_err(|e| OciError::io(entry.path(), e))?;
                stats.blobs_removed += 1;
                stats.bytes_removed += meta.len();
            }
        }
        Ok(stats)
    }
}
