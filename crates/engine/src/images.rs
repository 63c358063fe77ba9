//! Base images: `FROM name` and `COPY --from=name` for names that are not stages.
//!
//! A name given by `--build-context NAME=oci-layout:///DIR[:TAG]` reads that OCI image
//! layout directory, and `NAME=docker-image://REF` stands for the image REF; any other
//! name is looked up in kiln's local image store (and pulled if missing). Either way the
//! image's blobs are copied, verified, into the build's blob layout, so later steps read
//! layers from one place. A Dockerfile can never name a host directory itself: only the
//! person running the build can, on the command line.

use std::path::PathBuf;

use kiln_oci::{Image, Layout, Platform};

use crate::engine::Shared_;
use crate::state::{StageLayer, StageState};

/// Why a base image (`FROM name`, `COPY --from=name`) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("base image {name}: {source}")]
    Oci {
        name: String,
        source: kiln_oci::OciError,
    },
    #[error("base image {name}: not in the local store, and pulling it failed: {source}")]
    Pull {
        name: String,
        source: kiln_oci::OciError,
    },
    #[error(
        "base image {name}: --build-context {name} is the local directory {}: use it with COPY --from={name} or RUN --mount=from={name}; FROM needs an image (oci-layout:// or docker-image://)",
        dir.display()
    )]
    LocalDirectory { name: String, dir: PathBuf },
    #[error(
        "base image {name}: a Dockerfile cannot name a host directory; pass the layout on the command line with --build-context NAME=oci-layout:///DIR[:TAG] and write FROM NAME (or COPY --from=NAME)"
    )]
    HostLayout { name: String },
    #[error("base image {name}: no local image store is configured")]
    NoStore { name: String },
}

/// `name` -> `name:latest` unless it already has a tag or digest (Docker's rule).
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn image_err(name: &str) -> impl FnOnce(kiln_oci::OciError) -> ImageError + '_ {
    move |source| ImageError::Oci {
        name: name.to_owned(),
        source,
    }
}

/// What a `--build-context NAME=VALUE` gives `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// `oci-layout:///DIR[:TAG]`: an OCI image layout on the host.
    OciLayout { dir: PathBuf, tag: Option<String> },
    /// `docker-image://REF`: another image reference.
    DockerImage(String),
    /// A host directory, for `COPY --from=NAME` and `RUN --mount=from=NAME` (not FROM).
    Local(PathBuf),
}

/// Why a `--build-context` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamedContextError {
    #[error("--build-context {0:?}: expected NAME=VALUE")]
    Syntax(String),
    #[error(
        "--build-context {name}={value}: use oci-layout:///DIR[:TAG], docker-image://REF or a local directory"
    )]
    Unsupported { name: String, value: String },
    #[error("--build-context {name}: an empty {what}")]
    Empty { name: String, what: &'static str },
}

impl NamedContext {
    /// Parses one `--build-context NAME=VALUE` into its name and context.
    pub fn parse(spec: &str) -> Result<(String, NamedContext), NamedContextError> {
        let (name, value) = spec
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| NamedContextError::Syntax(spec.to_owned()))?;
        let empty = |what| NamedContextError::Empty {
            name: name.to_owned(),
            what,
        };
        let context = if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, tag) = split_layout_ref(rest);
            if dir.is_empty() {
                return Err(empty("layout directory"));
            }
            NamedContext::OciLayout {
                dir: PathBuf::from(dir),
                tag: tag.map(str::to_owned),
            }
        } else if let Some(reference) = value.strip_prefix("docker-image://") {
            if reference.is_empty() {
                return Err(empty("image reference"));
            }
            NamedContext::DockerImage(reference.to_owned())
        } else if !value.contains("://") && !value.is_empty() {
            NamedContext::Local(PathBuf::from(value))
        } else {
            return Err(NamedContextError::Unsupported {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        };
        Ok((name.to_owned(), context))
    }
}

/// The named context `name` refers to: by the name as written, or by its normalised
/// form (`base` and `base:latest` are one image, as for the image store).
fn named_context<'a>(shared: &'a Shared_, name: &str) -> Option<&'a NamedContext> {
    let contexts = &shared.req.build_contexts;
    contexts.get(name).or_else(|| {
        let normal = normalize_name(name);
        contexts
            .iter()
            .find(|(k, _)| normalize_name(k) == normal)
            .map(|(_, v)| v)
    })
}

/// The opened host directory a `--from` source names through `--build-context NAME=DIR`
/// (`None` for stages, images and other contexts).
pub(crate) fn local_context(
    shared: &Shared_,
    source: &kiln_dockerfile::graph::StageSource,
) -> Option<Result<crate::context::Context, crate::context::ContextError>> {
    let kiln_dockerfile::graph::StageSource::Image(name) = source else {
        return None;
    };
    match named_context(shared, name)? {
        NamedContext::Local(dir) => Some(crate::context::Context::open(dir, None)),
        _ => None,
    }
}

/// Finds `name` and makes its blobs available in the build's blob layout.
pub(crate) fn resolve_base(
    shared: &Shared_,
    name: &str,
    platform: &Platform,
) -> Result<Image, ImageError> {
    match named_context(shared, name) {
        Some(NamedContext::OciLayout { dir, tag }) => {
            let layout = Layout::open(dir).map_err(image_err(name))?;
            let image = layout
                .load_image(tag.as_deref(), Some(platform))
                .map_err(image_err(name))?;
            shared.blobs.copy_image(&image).map_err(image_err(name))
        }
        Some(NamedContext::DockerImage(reference)) => from_store(shared, reference, platform),
        Some(NamedContext::Local(dir)) => Err(ImageError::LocalDirectory {
            name: name.to_owned(),
            dir: dir.clone(),
        }),
        None if name.starts_with("oci-layout://") => Err(ImageError::HostLayout {
            name: name.to_owned(),
        }),
        None => from_store(shared, name, platform),
    }
}

/// `name` from the local image store, pulled from its registry if it is not there.
fn from_store(shared: &Shared_, name: &str, platform: &Platform) -> Result<Image, ImageError> {
    let (layout, tag) = {
        let store = shared
            .req
            .image_store
            .as_ref()
            .ok_or_else(|| ImageError::NoStore {
                name: name.to_owned(),
            })?;
        let layout = Layout::open_or_create(store).map_err(image_err(name))?;
        let tag = normalize_name(name);
        if layout.resolve(Some(&tag)).is_err() {
            return pull(shared, name, platform, &layout);
        }
        (layout, Some(tag))
    };
    let image = layout
        .load_image(tag.as_deref(), Some(platform))
        .map_err(image_err(name))?;
    shared.blobs.copy_image(&image).map_err(image_err(name))
}

/// Pulls `name` from its registry into the local store (tagged by its full reference, as
/// Docker normalises it), then into the build's blob layout.
fn pull(
    shared: &Shared_,
    name: &str,
    platform: &Platform,
    store: &Layout,
) -> Result<Image, ImageError> {
    let reference: kiln_oci::Reference = name.parse().map_err(image_err(name))?;
    let client = kiln_oci::RegistryClient::new(kiln_oci::RegistryOptions {
        credentials: kiln_oci::CredentialStore::from_docker_config(),
        ..Default::default()
    });
    let image = client
        .pull(&reference, Some(platform), store, &normalize_name(name))
        .map_err(|source| ImageError::Pull {
            name: name.to_owned(),
            source,
        })?;
    shared.blobs.copy_image(&image).map_err(image_err(name))
}

/// `DIR:TAG` or `DIR`; a `:` inside the directory part (Windows drive) is not a tag.
fn split_layout_ref(rest: &str) -> (&str, Option<&str>) {
    match rest.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains(['/', '\\']) && !dir.is_empty() && dir.len() > 1 => {
            (dir, Some(tag))
        }
        _ => (rest, None),
    }
}

/// A stage state holding exactly `image`'s layers and config.
pub(crate) fn state_of_image(
    shared: &Shared_,
    image: &Image,
    name: &str,
) -> Result<StageState, ImageError> {
    let layers = StageLayer::all_of(image).map_err(image_err(name))?;
    let digest = image.digest().map_err(image_err(name))?;
    let mut config = image.config.clone();
    config.set_created(shared.req.epoch);
    // Without the cache's key there is no record: the base is unpacked from its layers.
    let record = shared.cache.secret_key().ok().and_then(|key| {
        crate::base_cache::BaseRecord::new(&shared.req.cache_dir, key.mac_key(), &layers)
    });
    Ok(StageState::new(
        crate::inputs::stage_root(&digest.to_string(), shared.toolchain),
        config,
        layers,
        shared.store.clone(),
        shared.blobs.clone(),
    )
    .with_base_record(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_latest() {
        assert_eq!(normalize_name("busybox"), "busybox:latest");
        assert_eq!(normalize_name("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            normalize_name("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(normalize_name("app@sha256:00"), "app@sha256:00");
    }

    #[test]
    fn named_contexts_parse() {
        assert_eq!(
            NamedContext::parse("base=oci-layout:///x/base:v1"),
            Ok((
                "base".into(),
                NamedContext::OciLayout {
                    dir: "/x/base".into(),
                    tag: Some("v1".into())
                }
            ))
        );
        assert_eq!(
            NamedContext::parse("alpine=docker-image://alpine:3.20"),
            Ok((
                "alpine".into(),
                NamedContext::DockerImage("alpine:3.20".into())
            ))
        );
        assert_eq!(
            NamedContext::parse("x=/local/dir"),
            Ok(("x".into(), NamedContext::Local("/local/dir".into())))
        );
        assert!(matches!(
            NamedContext::parse("x=git://host/repo"),
            Err(NamedContextError::Unsupported { .. })
        ));
        for bad in [
            "noequals",
            "=oci-layout:///x",
            "x=oci-layout://",
            "x=docker-image://",
        ] {
            assert!(NamedContext::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn layout_refs() {
        assert_eq!(split_layout_ref("/x/base:v1"), ("/x/base", Some("v1")));
        assert_eq!(split_layout_ref("/x/base"), ("/x/base", None));
        assert_eq!(split_layout_ref("C:/x/base"), ("C:/x/base", None));
    }
}
