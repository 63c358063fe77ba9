//! Cache export and import with BuildKit's flags (`--cache-to`, `--cache-from`): the step
//! records a build used, and the layers they name, as one OCI artifact (an image manifest
//! with kiln's `artifactType` and config media type, its layers the step layers) in a
//! registry or an OCI layout directory, so any distribution-spec registry holds it.
//!
//! An import reads the artifact's manifest and config (the records) when the build
//! starts and nothing else: a step whose key is there downloads its layer when the step is
//! looked up, so a build fetches only the layers of the steps it reaches. Records of steps
//! that mounted a secret are never exported: their digests are keyed to this cache's
//! private key (meaningless elsewhere), and a step whose output may hold what a secret
//! changed stays on the machine that was given it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use kiln_oci::{Descriptor, Digest, Layout, MediaType, Reference, RegistryClient};
use serde::{Deserialize, Serialize};

use crate::cache::{CacheKey, LayerRef, StepRecord};

/// The artifact type of kiln's cache manifests.
const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
/// The media type of their config blob, the step records.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
/// The tag a `type=local` cache directory lists the artifact under.
const LOCAL_TAG: &str = "kiln-cache";
/// An imported artifact holds at most this many records: the config is read whole (16 MiB
/// at most, as any config) and indexed in memory, and a build has far fewer steps.
const MAX_IMPORTED_RECORDS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CacheTransferError {
    #[error("{flag} {spec:?}: {why}")]
    Spec {
        flag: &'static str,
        spec: String,
        why: String,
    },
    #[error("cache {place}: {source}")]
    Oci {
        place: String,
        source: kiln_oci::OciError,
    },
    #[error("cache {place}: not a kiln cache ({why})")]
    NotACache { place: String, why: String },
}

/// Which steps an export holds (BuildKit's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The steps whose layers are in the exported image (the default, as in BuildKit).
    Min,
    /// Every step of every stage the build ran or reused.
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CachePlace {
    /// `type=registry,ref=R` (plain HTTP for localhost, as pushes).
    Registry(String),
    /// `type=local,dest=DIR` / `src=DIR`: an OCI layout directory.
    Local(PathBuf),
}

impl std::fmt::Display for CachePlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CachePlace::Registry(r) => write!(f, "{r}"),
            CachePlace::Local(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// One `--cache-to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    pub place: CachePlace,
    pub mode: CacheMode,
}

/// One `--cache-from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheImport {
    pub place: CachePlace,
}

/// `key=value` fields of a cache flag; a bare word is a registry reference (buildx's
/// `--cache-from R` shorthand).
fn fields(flag: &'static str, spec: &str) -> Result<BTreeMap<String, String>, CacheTransferError> {
    let bad = |why: String| CacheTransferError::Spec {
        flag,
        spec: spec.to_owned(),
        why,
    };
    if !spec.contains('=') {
        return Ok(BTreeMap::from([
            ("type".into(), "registry".into()),
            ("ref".into(), spec.to_owned()),
        ]));
    }
    let mut out = BTreeMap::new();
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| bad(format!("{field:?} is not key=value")))?;
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(bad(format!("{k} is given twice")));
        }
    }
    Ok(out)
}

/// The place `f` names: `type=registry` with `ref`, or `type=local` with `dir_key`.
fn place_of(
    flag: &'static str,
    spec: &str,
    f: &mut BTreeMap<String, String>,
    dir_key: &str,
) -> Result<CachePlace, CacheTransferError> {
    let bad = |why: String| CacheTransferError::Spec {
        flag,
        spec: spec.to_owned(),
        why,
    };
    let kind = f.remove("type").unwrap_or_else(|| "local".into());
    let place = match kind.as_str() {
        "registry" => CachePlace::Registry(
            f.remove("ref")
                .ok_or_else(|| bad("type=registry needs ref=NAME".into()))?,
        ),
        "local" => CachePlace::Local(PathBuf::from(
            f.remove(dir_key)
                .ok_or_else(|| bad(format!("type=local needs {dir_key}=DIR")))?,
        )),
        other => {
            return Err(bad(format!(
                "type={other} is not supported: use type=registry or type=local"
            )));
        }
    };
    // Options BuildKit has that change nothing for kiln's artifact.
    for harmless in ["oci-mediatypes", "image-manifest", "ignore-error"] {
        f.remove(harmless);
    }
    if let Some(k) = f.keys().next() {
        return Err(bad(format!("unknown option {k:?}")));
    }
    Ok(place)
}

impl CacheExport {
    /// `type=registry,ref=R[,mode=min|max]` or `type=local,dest=DIR[,mode=...]`.
    pub fn parse(spec: &str) -> Result<Self, CacheTransferError> {
        const FLAG: &str = "--cache-to";
        let mut f = fields(FLAG, spec)?;
        let mode = match f.remove("mode").as_deref() {
            None | Some("min") => CacheMode::Min,
            Some("max") => CacheMode::Max,
            Some(other) => {
                return Err(CacheTransferError::Spec {
                    flag: FLAG,
                    spec: spec.to_owned(),
                    why: format!("mode={other}: use mode=min or mode=max"),
                });
            }
        };
        let place = place_of(FLAG, spec, &mut f, "dest")?;
        Ok(Self { place, mode })
    }
}

impl CacheImport {
    /// `type=registry,ref=R`, `type=local,src=DIR`, or a bare registry reference.
    pub fn parse(spec: &str) -> Result<Self, CacheTransferError> {
        let mut f = fields("--cache-from", spec)?;
        Ok(Self {
            place: place_of("--cache-from", spec, &mut f, "src")?,
        })
    }
}

/// The artifact's config: what each exported step produced.
#[derive(Debug, Serialize, Deserialize)]
struct ArtifactConfig {
    records: Vec<ExportedRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ExportedRecord {
    /// The step's cache key, hex.
    key: String,
    layer: LayerRef,
}

/// Where an imported artifact's blobs come from.
enum Source {
    Registry {
        client: Box<RegistryClient>,
        reference: Reference,
    },
    Local(Layout),
}

/// An imported cache: its records by key, and where to fetch their layers.
pub(crate) struct RemoteCache {
    place: String,
    records: HashMap<String, LayerRef>,
    source: Source,
}

fn oci_err(place: &str) -> impl FnOnce(kiln_oci::OciError) -> CacheTransferError + '_ {
    move |source| CacheTransferError::Oci {
        place: place.to_owned(),
        source,
    }
}

fn client(insecure: bool) -> RegistryClient {
    RegistryClient::new(kiln_oci::RegistryOptions {
        credentials: kiln_oci::CredentialStore::from_docker_config(),
        insecure,
        chunk_size: None,
    })
}

impl RemoteCache {
    /// Reads `import`'s artifact (manifest and config, into `blobs`); `None` when the
    /// place holds no cache yet (a first build), as BuildKit goes on without one.
    pub(crate) fn open(
        import: &CacheImport,
        blobs: &Layout,
    ) -> Result<Option<Self>, CacheTransferError> {
        let place = import.place.to_string();
        let (source, manifest) = match &import.place {
            CachePlace::Registry(name) => {
                let reference: Reference = name.parse().map_err(oci_err(&place))?;
                let client = client(false);
                let fetched = client.fetch_manifest(&reference);
                let Some((bytes, desc)) = fetched.map_err(oci_err(&place))? else {
                    return Ok(None);
                };
                let source = Source::Registry {
                    client: Box::new(client),
                    reference,
                };
                (source, (bytes, desc))
            }
            CachePlace::Local(dir) => {
                let Ok(layout) = Layout::open(dir) else {
                    return Ok(None);
                };
                let Ok(desc) = layout.resolve(Some(LOCAL_TAG)) else {
                    return Ok(None);
                };
                let digest = Digest::from_oci(desc.digest()).map_err(oci_err(&place))?;
                let bytes = layout
                    .read_blob(&digest, kiln_oci::MAX_MANIFEST_SIZE)
                    .map_err(oci_err(&place))?;
                (Source::Local(layout), (bytes, desc))
            }
        };
        let mut remote = Self {
            place,
            records: HashMap::new(),
            source,
        };
        remote.load_records(&manifest.0, blobs)?;
        Ok(Some(remote))
    }

    /// Checks the manifest is kiln's cache and reads its config's records.
    fn load_records(&mut self, manifest: &[u8], blobs: &Layout) -> Result<(), CacheTransferError> {
        let not_cache = |why: &str| CacheTransferError::NotACache {
            place: self.place.clone(),
            why: why.to_owned(),
        };
        let value: serde_json::Value =
            serde_json::from_slice(manifest).map_err(|_| not_cache("its manifest is not JSON"))?;
        if value.get("artifactType").and_then(|t| t.as_str()) != Some(ARTIFACT_TYPE) {
            return Err(not_cache("its manifest's artifactType is not kiln's"));
        }
        let config: Descriptor = serde_json::from_value(value["config"].clone())
            .map_err(|_| not_cache("its manifest has no config"))?;
        if config.media_type().as_ref() != CONFIG_MEDIA_TYPE {
            return Err(not_cache("its config is not kiln's step records"));
        }
        if config.size() > kiln_oci::MAX_CONFIG_SIZE {
            return Err(not_cache("its config is over 16 MiB"));
        }
        self.fetch(&config, blobs)?;
        let digest = Digest::from_oci(config.digest()).map_err(oci_err(&self.place))?;
        let bytes = blobs
            .read_blob(&digest, kiln_oci::MAX_CONFIG_SIZE)
            .map_err(oci_err(&self.place))?;
        let parsed: ArtifactConfig =
            serde_json::from_slice(&bytes).map_err(|_| not_cache("its records do not parse"))?;
        if parsed.records.len() > MAX_IMPORTED_RECORDS {
            return Err(not_cache("it holds more than 100,000 records"));
        }
        self.records = parsed
            .records
            .into_iter()
            .map(|r| (r.key, r.layer))
            .collect();
        Ok(())
    }

    /// Copies the blob `desc` into `blobs` (verified), unless it is there.
    fn fetch(&self, desc: &Descriptor, blobs: &Layout) -> Result<(), CacheTransferError> {
        let err = oci_err(&self.place);
        match &self.source {
            Source::Registry { client, reference } => {
                client.fetch_blob_into(reference, desc, blobs).map_err(err)
            }
            Source::Local(layout) => {
                let digest = Digest::from_oci(desc.digest()).map_err(oci_err(&self.place))?;
                if blobs.has_blob(&digest) {
                    return Ok(());
                }
                let reader = layout.open_descriptor(desc).map_err(oci_err(&self.place))?;
                blobs
                    .import_blob(reader, &digest, Some(desc.size()))
                    .map(|_| ())
                    .map_err(err)
            }
        }
    }

    /// The record of `key`, its layer fetched into `blobs`, if this cache has it.
    pub(crate) fn get(
        &self,
        key: CacheKey,
        blobs: &Layout,
    ) -> Result<Option<StepRecord>, CacheTransferError> {
        let Some(layer) = self.records.get(&key.to_hex()) else {
            return Ok(None);
        };
        let digest: Digest = layer.digest.parse().map_err(oci_err(&self.place))?;
        let desc = Descriptor::new(
            MediaType::from(layer.media_type.as_str()),
            layer.size,
            digest.to_oci(),
        );
        self.fetch(&desc, blobs)?;
        Ok(Some(StepRecord {
            layer: Some(layer.clone()),
            secrets: BTreeMap::new(),
        }))
    }
}

/// Exports the steps `builds` used (one build, or one per platform) as kiln's cache
/// artifact to `export.place`: every blob first, the manifest (a registry tag, or the
/// layout's `index.json` entry) last, each one atomic, so concurrent writers to one place
/// leave one writer's complete artifact. Returns the manifest digest.
pub fn export_cache(
    builds: &[crate::Built],
    export: &CacheExport,
) -> Result<Digest, CacheTransferError> {
    let place = export.place.to_string();
    let Some(first) = builds.first() else {
        return Err(CacheTransferError::NotACache {
            place,
            why: "no build to export".into(),
        });
    };
    let blobs = first.image.layout();
    let records: Vec<(CacheKey, StepRecord)> = builds
        .iter()
        .flat_map(|b| b.used_records.iter().cloned())
        .collect();
    let image_layers: Vec<String> = builds
        .iter()
        .flat_map(|b| b.image.manifest.layers().iter())
        .map(|d| d.digest().to_string())
        .collect();
    let chosen = choose(&records, &image_layers, export.mode, blobs);
    let (manifest, parts) = write_artifact(&chosen, blobs).map_err(oci_err(&place))?;
    match &export.place {
        CachePlace::Registry(name) => {
            let reference: Reference = name.parse().map_err(oci_err(&place))?;
            client(false)
                .push_manifest(blobs, &manifest, &parts, &reference, &[])
                .map_err(oci_err(&place))?;
        }
        CachePlace::Local(dir) => {
            let out = Layout::open_or_create(dir).map_err(oci_err(&place))?;
            for d in parts.iter().chain(std::iter::once(&manifest)) {
                let digest = Digest::from_oci(d.digest()).map_err(oci_err(&place))?;
                let reader = blobs.open_descriptor(d).map_err(oci_err(&place))?;
                out.import_blob(reader, &digest, Some(d.size()))
                    .map_err(oci_err(&place))?;
            }
            out.tag(LOCAL_TAG, &manifest).map_err(oci_err(&place))?;
        }
    }
    Digest::from_oci(manifest.digest()).map_err(oci_err(&place))
}

/// The records an export holds, by key: never one with a secret, never one whose layer
/// blob is gone, and for `Min` only those whose layer is in an exported image.
fn choose(
    records: &[(CacheKey, StepRecord)],
    image_layers: &[String],
    mode: CacheMode,
    blobs: &Layout,
) -> BTreeMap<String, LayerRef> {
    let present = |l: &LayerRef| l.digest.parse::<Digest>().is_ok_and(|d| blobs.has_blob(&d));
    records
        .iter()
        .filter(|(_, r)| r.secrets.is_empty())
        .filter_map(|(k, r)| Some((k.to_hex(), r.layer.clone()?)))
        .filter(|(_, l)| present(l))
        .filter(|(_, l)| mode == CacheMode::Max || image_layers.contains(&l.digest))
        .collect()
}

/// Writes the config and manifest of an artifact holding `records` into `blobs`; returns
/// the manifest's descriptor and the blobs it names (config first, then each layer once).
fn write_artifact(
    records: &BTreeMap<String, LayerRef>,
    blobs: &Layout,
) -> Result<(Descriptor, Vec<Descriptor>), kiln_oci::OciError> {
    let config = ArtifactConfig {
        records: records
            .iter()
            .map(|(key, layer)| ExportedRecord {
                key: key.clone(),
                layer: layer.clone(),
            })
            .collect(),
    };
    let config_bytes = kiln_oci::to_canonical_json(&config, "cache records")?;
    let config_digest = blobs.write_blob(&config_bytes)?;
    let config_desc = Descriptor::new(
        MediaType::from(CONFIG_MEDIA_TYPE),
        config_bytes.len() as u64,
        config_digest.to_oci(),
    );
    let mut layers: BTreeMap<String, Descriptor> = BTreeMap::new();
    for layer in records.values() {
        let digest: Digest = layer.digest.parse()?;
        let desc = Descriptor::new(
            MediaType::from(layer.media_type.as_str()),
            layer.size,
            digest.to_oci(),
        );
        layers.insert(layer.digest.clone(), desc);
    }
    let layers: Vec<Descriptor> = layers.into_values().collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": config_desc,
        "layers": layers,
    });
    let bytes = kiln_oci::to_canonical_json(&manifest, "cache manifest")?;
    let digest = blobs.write_blob(&bytes)?;
    let manifest_desc = Descriptor::new(
        MediaType::ImageManifest,
        bytes.len() as u64,
        digest.to_oci(),
    );
    let mut parts = vec![config_desc];
    parts.extend(layers);
    Ok((manifest_desc, parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_buildx_writes_them() {
        let to = CacheExport::parse("type=registry,ref=r.io/app:cache,mode=max").unwrap();
        assert_eq!(to.place, CachePlace::Registry("r.io/app:cache".into()));
        assert_eq!(to.mode, CacheMode::Max);
        let to = CacheExport::parse("type=local,dest=/c").unwrap();
        assert_eq!(
            (to.place, to.mode),
            (CachePlace::Local("/c".into()), CacheMode::Min)
        );
        let from = CacheImport::parse("r.io/app:cache").unwrap();
        assert_eq!(from.place, CachePlace::Registry("r.io/app:cache".into()));
        let from = CacheImport::parse("type=local,src=/c").unwrap();
        assert_eq!(from.place, CachePlace::Local("/c".into()));
        let err = |r: Result<CacheExport, CacheTransferError>| r.unwrap_err().to_string();
        assert!(err(CacheExport::parse("type=registry")).contains("needs ref=NAME"));
        assert!(err(CacheExport::parse("type=local,dest=/c,mode=all")).contains("mode=all"));
        assert!(err(CacheExport::parse("type=inline")).contains("not supported"));
        assert!(err(CacheExport::parse("type=local,dest=/c,colour=red")).contains("\"colour\""));
    }
}
