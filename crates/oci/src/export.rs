//! Exporters: OCI layout directory, OCI archive and docker-archive. Each writes the same
//! bytes for the same image: entries in a fixed order, mtime 0, uid/gid 0, fixed modes.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Write};
use std::path::Path;

use oci_spec::image::Descriptor;
use tempfile::NamedTempFile;

use crate::canonical::to_canonical_json;
use crate::digest::{Digest, unwrap_io};
use crate::error::{OciError, Result};
use crate::image::Image;
use crate::index::PlatformIndex;
use crate::layer::Compression;
use crate::layout::{ANNOTATION_REF_NAME, Layout, empty_index};

/// Copy `image` into the OCI layout at `dest` (created if needed), listed in its
/// `index.json` under `name` (or unnamed). Blobs are verified as they are copied; the
/// index is written last. To copy blobs without listing the image, use
/// [`Layout::copy_image`].
pub fn export_oci_layout(image: &Image, dest: &Path, name: Option<&str>) -> Result<Layout> {
    let out = Layout::open_or_create(dest)?;
    out.copy_image(image)?;
    if let Some(name) = name {
        out.tag(name, &image.descriptor)?;
    } else {
        out.add_untagged(&image.descriptor)?;
    }
    Ok(out)
}

/// Write `image` as an OCI archive (a tar of an OCI layout) to `out`, listed in its
/// `index.json` once per name in `names` (as BuildKit's OCI exporter does for several
/// names), or once unnamed.
pub fn write_oci_archive(image: &Image, names: &[&str], out: impl Write) -> Result<()> {
    let root = (image.descriptor.clone(), image.layout());
    archive_of(root, std::slice::from_ref(image), names, out)
}

/// Write a multi-platform `index` as an OCI archive, the index listed as
/// [`write_oci_archive`] lists an image.
pub fn write_oci_archive_index(
    index: &PlatformIndex,
    names: &[&str],
    out: impl Write,
) -> Result<()> {
    let root = (index.descriptor.clone(), index.layout());
    archive_of(root, &index.images, names, out)
}

/// The archive of `root` (a manifest or an index, read from its layout) and the blobs of
/// `images` (the image itself, or those the index lists), in digest order.
fn archive_of(
    root: (Descriptor, &Layout),
    images: &[Image],
    names: &[&str],
    out: impl Write,
) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut index = empty_index()?;
    let named = |name: &str| {
        let mut desc = root.0.clone();
        let ann = [(ANNOTATION_REF_NAME.to_owned(), name.to_owned())];
        desc.set_annotations(Some(ann.into_iter().collect()));
        desc
    };
    let mut manifests: Vec<Descriptor> = names.iter().map(|n| named(n)).collect();
    if manifests.is_empty() {
        manifests.push(root.0.clone());
    }
    index.set_manifests(manifests);
    append_bytes(
        &mut tar,
        "index.json",
        &to_canonical_json(&index, "index.json")?,
    )?;
    append_dir(&mut tar, "blobs/")?;
    append_dir(&mut tar, "blobs/sha256/")?;
    let mut blobs: BTreeMap<String, (Descriptor, &Layout)> = BTreeMap::new();
    blobs.insert(root.0.digest().to_string(), (root.0.clone(), root.1));
    for image in images {
        let mut own = image.blobs()?;
        own.push(image.descriptor.clone());
        for d in own {
            blobs.insert(d.digest().to_string(), (d, image.layout()));
        }
    }
    for (d, layout) in blobs.into_values() {
        let digest = Digest::from_oci(d.digest())?;
        let path = format!("blobs/{}/{}", digest.algorithm().as_str(), digest.hex());
        let reader = layout.open_descriptor(&d)?;
        append_stream(&mut tar, &path, d.size(), reader)?;
    }
    finish(tar)
}

/// Write `image` as a docker-archive (`docker save` format: `manifest.json`,
/// `repositories`, `<config>.json`, `<diff_id>.tar` uncompressed layers) to `out`.
/// `repo_tags` are names such as `example.com/app:1.0` (`:latest` is added if no tag).
pub fn write_docker_archive(image: &Image, repo_tags: &[String], out: impl Write) -> Result<()> {
    for t in repo_tags {
        t.parse::<crate::Reference>()?; // reject names `docker load` would refuse
    }
    let tags: Vec<String> = repo_tags.iter().map(|t| with_tag(t)).collect();
    let mut tar = tar::Builder::new(out);
    let config_digest = image.config_digest()?;
    let config_name = format!("{}.json", config_digest.hex());
    let config = image
        .layout()
        .read_blob(&config_digest, crate::layout::MAX_CONFIG_SIZE)?;
    append_bytes(&mut tar, &config_name, &config)?;
    let mut written = HashSet::new();
    let mut layer_names = Vec::new();
    for layer in image.layers()? {
        let name = format!("{}.tar", layer.diff_id.hex());
        if written.insert(layer.diff_id.clone()) {
            let size = match Compression::from_media_type(layer.descriptor.media_type()) {
                Some(Compression::None) => layer.descriptor.size(),
                _ => io::copy(&mut image.open_layer(&layer)?, &mut io::sink())
                    .map_err(|e| unwrap_io(&format!("reading layer {}", layer.diff_id), e))?,
            };
            append_stream(&mut tar, &name, size, image.open_layer(&layer)?)?;
        }
        layer_names.push(name);
    }
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": tags,
        "Layers": layer_names,
    }]);
    append_bytes(
        &mut tar,
        "manifest.json",
        &to_canonical_json(&manifest, "manifest.json")?,
    )?;
    if let Some(top) = image.layers()?.last() {
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for t in &tags {
            if let Some((repo, tag)) = t.rsplit_once(':') {
                repos
                    .entry(repo.to_owned())
                    .or_default()
                    .insert(tag.to_owned(), top.diff_id.hex().to_owned());
            }
        }
        if !repos.is_empty() {
            append_bytes(
                &mut tar,
                "repositories",
                &to_canonical_json(&repos, "repositories")?,
            )?;
        }
    }
    finish(tar)
}

/// `name` with `:latest` appended when it has no tag (a `:` after the last `/`).
fn with_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

/// Create `path` through a temporary file in the same directory, renamed into place only
/// if `write` succeeds: a failed export never leaves a partial file behind.
pub fn write_file_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = NamedTempFile::with_prefix_in(".kiln-tmp-", dir).map_err(|e| OciError::io(dir, e))?;
    let mut w = io::BufWriter::with_capacity(256 << 10, tmp.as_file());
    write(&mut w)?;
    w.flush().map_err(|e| OciError::io(tmp.path(), e))?;
    drop(w);
    tmp.as_file()
        .sync_data()
        .map_err(|e| OciError::io(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| OciError::io(path, e.error))?;
    Ok(())
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    append_stream(tar, path, data.len() as u64, data)
}

fn append_stream<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    reader: impl io::Read,
) -> Result<()> {
    let mut h = header(size, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut h, path, reader)
        .map_err(|e| unwrap_io(&format!("writing {path} to archive"), e))
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(0, 0o755, tar::EntryType::Directory);
    tar.append_data(&mut h, path, io::empty())
        .map_err(|e| unwrap_io(&format!("writing {path} to archive"), e))
}

fn finish<W: Write>(tar: tar::Builder<W>) -> Result<()> {
    let mut out = tar
        .into_inner()
        .map_err(|e| OciError::stream("finishing archive", e))?;
    out.flush()
        .map_err(|e| OciError::stream("flushing archive", e))
}
