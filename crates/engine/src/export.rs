//! Where a built image goes (BuildKit's `exporter/` split): the local image store, an OCI
//! layout or archive, a docker-archive, a host directory ([`crate::export_local`]) or a
//! registry. A front end (the CLI) parses its flags into an [`ExportRequest`]; the rules
//! of what goes where are here.

use std::path::{Path, PathBuf};

use kiln_oci::{Digest, Image, PlatformIndex};

use crate::engine::Built;
use crate::error::BuildError;

/// One `--output` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Somewhere the assembled image goes as it is.
    Image(ImageTarget),
    /// The image's filesystem written to a host directory (`type=local`).
    Local { dest: PathBuf },
}

/// A destination that takes the image itself (blobs, config, manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageTarget {
    /// An OCI image layout directory (`type=oci,tar=false`).
    OciLayout { dest: PathBuf },
    /// An OCI image layout as a tar archive (`type=oci`).
    OciArchive { dest: PathBuf },
    /// A docker-archive tar, as `docker load` reads it (`type=docker`).
    DockerArchive { dest: PathBuf },
    /// Pushed under each of `names`, or under the build's tags when `names` is empty.
    Registry { names: Vec<String>, insecure: bool },
}

/// Everything a build's image is exported to.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The image's names (`-t`), normalised; OCI exports list the image once per name.
    pub tags: Vec<String>,
    /// kiln's local image store.
    pub store: PathBuf,
    pub targets: Vec<Target>,
}

impl ExportRequest {
    /// Whether the image goes into the local store: tagged images always do (so
    /// `kiln run NAME` works after any build); an untagged build only when it has no
    /// other target.
    pub fn stores(&self) -> bool {
        self.targets.is_empty() || !self.tags.is_empty()
    }
}

/// What an export did that a user wants to hear about, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exported {
    /// The image went into the local store.
    Stored,
    /// The image was pushed as `name@digest`.
    Pushed { name: String, digest: Digest },
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Oci(#[from] kiln_oci::OciError),
    #[error(transparent)]
    Local(#[from] crate::export_local::LocalExportError),
    /// The final filesystem could not be rebuilt for a `type=local` export.
    #[error(transparent)]
    Snapshot(Box<BuildError>),
    #[error("pushing needs a name: give -t NAME or --output type=registry,name=NAME")]
    NoPushName,
    #[error("invalid image name {name:?}: {source}")]
    BadName {
        name: String,
        source: kiln_oci::OciError,
    },
    /// A docker-archive holds one image per name, and `docker load` (Docker 20.10 and
    /// the classic image store) cannot load a multi-platform one.
    #[error(
        "type=docker cannot hold a multi-platform image ({platforms}): build one --platform \
         for docker load, or use type=oci or type=registry for all of them"
    )]
    DockerArchiveMultiPlatform { platforms: String },
}

/// Exports a build's image to every target of `req`, and to the local store when
/// [`ExportRequest::stores`]. `seen` hears of each export as it is done.
pub fn export(
    built: &mut Built,
    req: &ExportRequest,
    seen: &mut dyn FnMut(Exported),
) -> Result<(), ExportError> {
    if req.stores() {
        into_layout(Root::Image(&built.image), &req.store, &req.tags)?;
        seen(Exported::Stored);
    }
    for target in &req.targets {
        match target {
            Target::Local { dest } => {
                let snapshot = built
                    .snapshot()
                    .map_err(|e| ExportError::Snapshot(Box::new(e)))?;
                crate::export_local::export_local(&snapshot, dest)?;
            }
            Target::Image(target) => export_image(&built.image, target, &req.tags, seen)?,
        }
    }
    Ok(())
}

/// What an export writes: one image, or a multi-platform index of images.
#[derive(Clone, Copy)]
enum Root<'a> {
    Image(&'a Image),
    Index(&'a PlatformIndex),
}

/// Exports an assembled image (a build's, or one from the store for `kiln save` and
/// `kiln push`).
pub fn export_image(
    image: &Image,
    target: &ImageTarget,
    tags: &[String],
    seen: &mut dyn FnMut(Exported),
) -> Result<(), ExportError> {
    export_root(Root::Image(image), target, tags, seen)
}

/// Writes the OCI image index of a multi-platform build (one [`Built`] per platform, from
/// [`crate::build_platforms`]) into the cache's blob layout, beside the images it lists.
pub fn platform_index(builds: &[Built]) -> Result<PlatformIndex, ExportError> {
    let images: Vec<Image> = builds.iter().map(|b| b.image.clone()).collect();
    let Some(first) = images.first() else {
        return Err(kiln_oci::OciError::Invalid {
            what: "image index".into(),
            reason: "no platform was built".into(),
        }
        .into());
    };
    Ok(first.layout().write_platform_index(&images)?)
}

/// Exports a multi-platform build as [`export`] exports one image: the index goes to the
/// store and to every image target (a docker-archive refuses it), and `type=local` gets a
/// directory per platform (`linux_amd64/`, as BuildKit names them).
pub fn export_index(
    builds: &mut [Built],
    index: &PlatformIndex,
    req: &ExportRequest,
    seen: &mut dyn FnMut(Exported),
) -> Result<(), ExportError> {
    if req.stores() {
        into_layout(Root::Index(index), &req.store, &req.tags)?;
        seen(Exported::Stored);
    }
    for target in &req.targets {
        match target {
            Target::Local { dest } => {
                for built in builds.iter_mut() {
                    let dir = built.image.config.platform().to_string().replace('/', "_");
                    let snapshot = built
                        .snapshot()
                        .map_err(|e| ExportError::Snapshot(Box::new(e)))?;
                    crate::export_local::export_local(&snapshot, &dest.join(dir))?;
                }
            }
            Target::Image(target) => export_root(Root::Index(index), target, &req.tags, seen)?,
        }
    }
    Ok(())
}

fn export_root(
    root: Root<'_>,
    target: &ImageTarget,
    tags: &[String],
    seen: &mut dyn FnMut(Exported),
) -> Result<(), ExportError> {
    let names: Vec<&str> = tags.iter().map(String::as_str).collect();
    match (target, root) {
        (ImageTarget::OciLayout { dest }, _) => into_layout(root, dest, tags)?,
        (ImageTarget::OciArchive { dest }, Root::Image(image)) => {
            kiln_oci::write_file_atomic(dest, |w| kiln_oci::write_oci_archive(image, &names, w))?;
        }
        (ImageTarget::OciArchive { dest }, Root::Index(index)) => {
            kiln_oci::write_file_atomic(dest, |w| {
                kiln_oci::write_oci_archive_index(index, &names, w)
            })?;
        }
        (ImageTarget::DockerArchive { dest }, Root::Image(image)) => {
            kiln_oci::write_file_atomic(dest, |w| kiln_oci::write_docker_archive(image, tags, w))?;
        }
        (ImageTarget::DockerArchive { .. }, Root::Index(index)) => {
            let platforms: Vec<String> = index
                .images
                .iter()
                .map(|i| i.config.platform().to_string())
                .collect();
            return Err(ExportError::DockerArchiveMultiPlatform {
                platforms: platforms.join(", "),
            });
        }
        (ImageTarget::Registry { names, insecure }, _) => {
            let names = if names.is_empty() { tags } else { names };
            if names.is_empty() {
                return Err(ExportError::NoPushName);
            }
            for name in names {
                let digest = push(root, name, *insecure)?;
                seen(Exported::Pushed {
                    name: name.clone(),
                    digest,
                });
            }
        }
    }
    Ok(())
}

/// Puts the image or index into an OCI layout (kiln's local store or
/// `type=oci,tar=false`), one index entry per tag (untagged if none).
fn into_layout(root: Root<'_>, layout: &Path, tags: &[String]) -> Result<(), ExportError> {
    let one = |tag: Option<&str>| match root {
        Root::Image(image) => kiln_oci::export_oci_layout(image, layout, tag),
        Root::Index(index) => kiln_oci::export_oci_layout_index(index, layout, tag),
    };
    if tags.is_empty() {
        one(None)?;
    }
    for t in tags {
        one(Some(t))?;
    }
    Ok(())
}

/// Pushes the image or index as `name` with the user's docker credentials; returns the
/// digest `name` now points to.
fn push(root: Root<'_>, name: &str, insecure: bool) -> Result<Digest, ExportError> {
    let reference: kiln_oci::Reference = name.parse().map_err(|source| ExportError::BadName {
        name: name.to_owned(),
        source,
    })?;
    let client = kiln_oci::RegistryClient::new(kiln_oci::RegistryOptions {
        credentials: kiln_oci::CredentialStore::from_docker_config(),
        insecure,
        chunk_size: None,
    });
    let report = match root {
        Root::Image(image) => client.push(image, &reference, &[])?,
        Root::Index(index) => client.push_index(index, &reference)?,
    };
    Ok(report.digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image with no layers in a fresh layout.
    fn image(dir: &Path) -> Image {
        let layout = kiln_oci::Layout::open_or_create(dir).unwrap();
        let config = kiln_oci::ImageConfig::default();
        let desc = layout
            .write_image(&config, &[], &Default::default())
            .unwrap();
        layout.load_descriptor(&desc, None).unwrap()
    }

    fn export_to(target: ImageTarget, tags: &[&str]) -> Result<Vec<Exported>, ExportError> {
        let src = tempfile::tempdir().unwrap();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let mut seen = Vec::new();
        export_image(&image(src.path()), &target, &tags, &mut |e| seen.push(e))?;
        Ok(seen)
    }

    #[test]
    fn layouts_list_the_image_once_per_tag() {
        let out = tempfile::tempdir().unwrap();
        let layout = out.path().join("layout");
        let target = ImageTarget::OciLayout {
            dest: layout.clone(),
        };
        assert_eq!(export_to(target, &["a:1", "b:2"]).unwrap(), []);
        let tags = kiln_oci::Layout::open(&layout).unwrap().tags().unwrap();
        let names: Vec<&str> = tags.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a:1", "b:2"]);
        for target in [
            ImageTarget::OciArchive {
                dest: out.path().join("oci.tar"),
            },
            ImageTarget::DockerArchive {
                dest: out.path().join("docker.tar"),
            },
        ] {
            export_to(target, &["a:1"]).unwrap();
        }
        for file in ["oci.tar", "docker.tar"] {
            assert!(std::fs::metadata(out.path().join(file)).unwrap().len() > 0);
        }
    }

    #[test]
    fn tagged_or_target_less_builds_go_to_the_store() {
        let req = |tags: &[&str], targets: Vec<Target>| ExportRequest {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            store: "/store".into(),
            targets,
        };
        let local = || vec![Target::Local { dest: "out".into() }];
        assert!(req(&[], Vec::new()).stores());
        assert!(req(&["a:1"], local()).stores());
        assert!(!req(&[], local()).stores());
    }

    #[test]
    fn a_push_needs_a_valid_name() {
        let push = |names: &[&str]| ImageTarget::Registry {
            names: names.iter().map(|n| n.to_string()).collect(),
            insecure: false,
        };
        let err = export_to(push(&[]), &[]).unwrap_err();
        assert!(matches!(err, ExportError::NoPushName), "{err}");
        let err = export_to(push(&["UPPER/Case"]), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid image name \"UPPER/Case\""),
            "{err}"
        );
        // Without names of its own, a push uses the tags (here also invalid, so no
        // network is needed to see which name it took).
        let err = export_to(push(&[]), &["Bad:Tag"]).unwrap_err();
        assert!(err.to_string().contains("\"Bad:Tag\""), "{err}");
    }
}
