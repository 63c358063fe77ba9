//! Multi-platform images: an OCI image index listing one image per platform, written into
//! a layout beside the images it lists, then exported or pushed as one.

use oci_spec::image::{Descriptor, MediaType};

use crate::digest::Digest;
use crate::error::{OciError, Result};
use crate::image::Image;
use crate::layout::Layout;

/// An image index in a layout and the images it lists (every one in the same layout),
/// in the order given (the order of `--platform`).
#[derive(Clone, Debug)]
pub struct PlatformIndex {
    layout: Layout,
    /// The descriptor of the index blob (no platform of its own).
    pub descriptor: Descriptor,
    pub images: Vec<Image>,
}

impl PlatformIndex {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The index digest: what a multi-platform `name@digest` points to.
    pub fn digest(&self) -> Result<Digest> {
        Digest::from_oci(self.descriptor.digest())
    }

    /// The index blob's bytes.
    pub(crate) fn bytes(&self) -> Result<Vec<u8>> {
        let digest = self.digest()?;
        self.layout
            .read_blob(&digest, crate::layout::MAX_MANIFEST_SIZE)
    }
}

impl Layout {
    /// Writes an OCI image index listing `images` (each descriptor with its platform), after
    /// copying any image that lives in another layout into this one. Two images of one
    /// platform are refused: a puller could not tell them apart.
    pub fn write_platform_index(&self, images: &[Image]) -> Result<PlatformIndex> {
        let mut listed = Vec::with_capacity(images.len());
        let mut seen = Vec::new();
        for image in images {
            let platform = image.config.platform();
            if seen.contains(&platform) {
                return Err(OciError::invalid(
                    "image index",
                    format!("two images for platform {platform}"),
                ));
            }
            seen.push(platform);
            listed.push(self.copy_image(image)?);
        }
        let descriptors = listed
            .iter()
            .map(with_platform)
            .collect::<Result<Vec<_>>>()?;
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": descriptors,
        });
        let bytes = crate::canonical::value_to_canonical_json(&index, "image index")?;
        let digest = self.write_blob(&bytes)?;
        let descriptor =
            Descriptor::new(MediaType::ImageIndex, bytes.len() as u64, digest.to_oci());
        Ok(PlatformIndex {
            layout: self.clone(),
            descriptor,
            images: listed,
        })
    }
}

/// An image's manifest descriptor as an index lists it: with its config's platform.
fn with_platform(image: &Image) -> Result<Descriptor> {
    let mut d = image.descriptor.clone();
    d.set_platform(Some(crate::image::oci_platform(&image.config.platform())?));
    Ok(d)
}

/// Copies `index` (every image, then the index blob) into the OCI layout at `dest`
/// (created if needed), listed under `name` (or unnamed) once all it points to is there.
pub fn export_oci_layout_index(
    index: &PlatformIndex,
    dest: &std::path::Path,
    name: Option<&str>,
) -> Result<Layout> {
    let out = Layout::open_or_create(dest)?;
    for image in &index.images {
        out.copy_image(image)?;
    }
    out.import_blob(
        std::io::Cursor::new(index.bytes()?),
        &index.digest()?,
        Some(index.descriptor.size()),
    )?;
    match name {
        Some(name) => out.tag(name, &index.descriptor)?,
        None => out.add_untagged(&index.descriptor)?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ImageConfig, Platform};

    fn image_for(layout: &Layout, platform: &str) -> Image {
        let p: Platform = platform.parse().unwrap();
        let config = ImageConfig::new(&p, 0);
        let desc = layout
            .write_image(&config, &[], &Default::default())
            .unwrap();
        layout.load_descriptor(&desc, Some(&p)).unwrap()
    }

    #[test]
    fn an_index_lists_each_platform_and_loads_back_by_platform() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let images = [
            image_for(&layout, "linux/amd64"),
            image_for(&layout, "linux/arm64"),
        ];
        let index = layout.write_platform_index(&images).unwrap();
        let text = String::from_utf8(index.bytes().unwrap()).unwrap();
        assert!(text.contains(r#""architecture":"amd64""#), "{text}");
        assert!(text.contains(r#""architecture":"arm64""#), "{text}");
        let out = tempfile::tempdir().unwrap();
        let exported = export_oci_layout_index(&index, out.path(), Some("app:1")).unwrap();
        let arm: Platform = "linux/arm64".parse().unwrap();
        let loaded = exported.load_image(Some("app:1"), Some(&arm)).unwrap();
        assert_eq!(loaded.digest().unwrap(), images[1].digest().unwrap());
        let err = layout
            .write_platform_index(&[images[0].clone(), images[0].clone()])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("two images for platform linux/amd64")
        );
    }
}
