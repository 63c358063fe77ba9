//! Base images: `FROM name` and `COPY --from=name` for names that are not stages.
//!
//! A name is looked up in kiln's local image store; `oci-layout://DIR[:TAG]` reads an
//! OCI image layout directory directly (BuildKit's spelling for a named context). Either
//! way the image's blobs are copied, verified, into the build's blob layout, so later
//! steps read layers from one place.

use kiln_oci::{Image, Layout, Platform};

use crate::cache::CacheKey;
use crate::engine::Shared_;
use crate::error::BuildError;
use crate::state::{StageLayer, StageState};

/// `name` -> `name:latest` unless it already has a tag or digest (Docker's rule).
pub fn normalize_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn image_err(name: &str) -> impl FnOnce(kiln_oci::OciError) -> BuildError + '_ {
    move |e| BuildError::Image {
        name: name.to_owned(),
        why: e.to_string(),
    }
}

/// Finds `name` and makes its blobs available in the build's blob layout.
pub(crate) fn resolve_base(
    shared: &Shared_,
    name: &str,
    platform: &Platform,
) -> Result<Image, BuildError> {
    let (layout, tag) = if let Some(rest) = name.strip_prefix("oci-layout://") {
        let (dir, tag) = split_layout_ref(rest);
        let layout = Layout::open(dir).map_err(image_err(name))?;
        (layout, tag.map(str::to_owned))
    } else {
        let store = shared
            .req
            .image_store
            .as_ref()
            .ok_or_else(|| BuildError::Image {
                name: name.to_owned(),
                why: "no local image store is configured".into(),
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
) -> Result<Image, BuildError> {
    let reference: kiln_oci::Reference = name.parse().map_err(image_err(name))?;
    let client = kiln_oci::RegistryClient::new(kiln_oci::RegistryOptions {
        credentials: kiln_oci::CredentialStore::from_docker_config(),
        ..Default::default()
    });
    let image = client
        .pull(&reference, Some(platform), store, &normalize_name(name))
        .map_err(|e| BuildError::Image {
            name: name.to_owned(),
            why: format!("not in the local store, and pulling it failed: {e}"),
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
) -> Result<StageState, BuildError> {
    let layers = StageLayer::all_of(image).map_err(image_err(name))?;
    let digest = image.digest().map_err(image_err(name))?;
    let mut config = image.config.clone();
    config.set_created(shared.req.epoch);
    Ok(StageState::new(
        CacheKey::root(&digest.to_string(), &shared.req.platform.to_string()),
        config,
        layers,
        shared.store.clone(),
        shared.blobs.clone(),
    ))
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
    fn layout_refs() {
        assert_eq!(split_layout_ref("/x/base:v1"), ("/x/base", Some("v1")));
        assert_eq!(split_layout_ref("/x/base"), ("/x/base", None));
        assert_eq!(split_layout_ref("C:/x/base"), ("C:/x/base", None));
    }
}
