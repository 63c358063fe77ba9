//! Importers for base images: OCI layout directory, OCI archive and docker-archive, each
//! copied into the local layout with every blob verified before it becomes visible, and
//! tagged only once everything is in place.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Descriptor, MediaType};
use serde::Deserialize;
use tempfile::TempDir;

use crate::canonical::value_to_canonical_json;
use crate::config::{ImageConfig, Platform};
use crate::digest::{Digest, DigestAlgorithm, Hasher, unwrap_io};
use crate::error::{OciError, Result};
use crate::image::Image;
use crate::layer::{Compression, decompress_layer};
use crate::layout::{Layout, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE, read_limited};
use crate::reference::Reference;

/// Copy the image `name` (or the only one) for `platform` from the OCI layout at `src`
/// into `dest`, tagged `tag`.
pub fn import_oci_layout(
    src: &Path,
    name: Option<&str>,
    platform: Option<&Platform>,
    dest: &Layout,
    tag: &str,
) -> Result<Image> {
    let src = Layout::open(src)?;
    let image = src.load_image(name, platform)?;
    copy_image(&image, dest, tag, platform, false)
}

/// Copy (or, for a staging layout inside `dest`, move) an image's blobs, verified, then tag.
fn copy_image(
    image: &Image,
    dest: &Layout,
    tag: &str,
    platform: Option<&Platform>,
    move_blobs: bool,
) -> Result<Image> {
    let copied = if move_blobs {
        let src = image.layout();
        let mut all = image.blobs()?;
        all.push(image.descriptor.clone());
        for d in all {
            let digest = Digest::from_oci(d.digest())?;
            dest.adopt_blob(&src.blob_path(&digest), &digest, d.size())?;
        }
        dest.load_descriptor(&image.descriptor, platform)?
    } else {
        dest.copy_image(image)?
    };
    dest.tag(tag, &image.descriptor)?;
    Ok(copied)
}

impl Layout {
    /// Copy `image` (manifest, config, layers) from its layout into this one, each blob
    /// verified and skipped if present. `index.json` is not touched: use [`Layout::tag`] to
    /// name the result.
    pub fn copy_image(&self, image: &Image) -> Result<Image> {
        let src = image.layout();
        let mut all = image.blobs()?;
        all.push(image.descriptor.clone());
        for d in all {
            let digest = Digest::from_oci(d.digest())?;
            self.import_blob(src.open_descriptor(&d)?, &digest, Some(d.size()))?;
        }
        self.load_descriptor(&image.descriptor, None)
    }
}

/// Import from an OCI archive file (a tar of an OCI layout).
pub fn import_oci_archive(
    src: &Path,
    name: Option<&str>,
    platform: Option<&Platform>,
    dest: &Layout,
    tag: &str,
) -> Result<Image> {
    let staging = staging_dir(dest)?;
    for_each_file(src, |path, entry| {
        let keep = match path {
            [f] if f == "oci-layout" || f == "index.json" => true,
            [b, alg, hex] if b == "blobs" => format!("{alg}:{hex}").parse::<Digest>().is_ok(),
            _ => false,
        };
        if keep {
            extract(staging.path(), path, entry)?;
        }
        Ok(())
    })?;
    let image = Layout::open(staging.path())?.load_image(name, platform)?;
    copy_image(&image, dest, tag, platform, true)
}

/// One image of a docker-archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Import from a docker-archive (`docker save` / `skopeo copy docker-archive:`) file. The
/// image is `name` from its RepoTags, or the only one. Layers keep their compression
/// (usually none) and get the matching OCI media type.
pub fn import_docker_archive(
    src: &Path,
    name: Option<&str>,
    dest: &Layout,
    tag: &str,
) -> Result<Image> {
    let staging = staging_dir(dest)?;
    let mut links: HashMap<Vec<String>, Vec<String>> = HashMap::new();
    for_each_file(src, |path, entry| {
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| OciError::stream("reading link target in docker-archive", e))?
                .ok_or_else(|| OciError::invalid("docker-archive", "link without target"))?;
            let base: &[String] = if kind.is_symlink() {
                &path[..path.len() - 1]
            } else {
                &[]
            };
            links.insert(path.to_vec(), join_lexically(base, &target)?);
            return Ok(());
        }
        extract(staging.path(), path, entry)
    })?;
    let arch = DockerArchive {
        root: staging.path().to_path_buf(),
        links,
    };
    let entries: Vec<DockerArchiveEntry> =
        serde_json::from_slice(&arch.read("manifest.json", MAX_MANIFEST_SIZE)?)
            .map_err(|e| OciError::json("docker-archive manifest.json", e))?;
    let entry = pick_entry(&entries, name)?;

    let config_bytes = arch.read(&entry.config, MAX_CONFIG_SIZE)?;
    let config = ImageConfig::from_json(&config_bytes)?;
    let diff_ids = config.diff_ids()?;
    if diff_ids.len() != entry.layers.len() {
        return Err(OciError::invalid(
            "docker-archive",
            format!(
                "{} layers but {} diff_ids in the config",
                entry.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
        layers.push(import_archive_layer(&arch, path, diff_id, dest)?);
    }
    let config_digest = dest.write_blob(&config_bytes)?;
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config_bytes.len() as u64,
        config_digest.to_oci(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": layers,
    });
    let bytes = value_to_canonical_json(&manifest, "manifest")?;
    let digest = dest.write_blob(&bytes)?;
    let desc = Descriptor::new(
        MediaType::ImageManifest,
        bytes.len() as u64,
        digest.to_oci(),
    );
    let image = dest.load_descriptor(&desc, None)?;
    dest.tag(tag, &desc)?;
    Ok(image)
}

fn pick_entry<'a>(
    entries: &'a [DockerArchiveEntry],
    name: Option<&str>,
) -> Result<&'a DockerArchiveEntry> {
    let tags_of = |e: &DockerArchiveEntry| e.repo_tags.clone().unwrap_or_default();
    match name {
        Some(n) => {
            let want: Reference = n.parse()?;
            let same = |t: &String| t.parse::<Reference>().is_ok_and(|r| r == want);
            entries
                .iter()
                .find(|e| tags_of(e).iter().any(same))
                .ok_or_else(|| OciError::ImageNotFound(format!("{n} in docker-archive")))
        }
        None => match entries {
            [one] => Ok(one),
            [] => Err(OciError::ImageNotFound("docker-archive is empty".into())),
            _ => Err(OciError::invalid(
                "docker-archive",
                format!(
                    "holds several images ({}); name one",
                    entries
                        .iter()
                        .flat_map(tags_of)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        },
    }
}

/// Store one docker-archive layer, verified against its diff_id before it is committed.
fn import_archive_layer(
    arch: &DockerArchive,
    path: &str,
    diff_id: &Digest,
    dest: &Layout,
) -> Result<Descriptor> {
    let file_path = arch.resolve(path)?;
    let open = || File::open(&file_path).map_err(|e| OciError::io(&file_path, e));
    let what = format!("docker-archive layer {path}");
    let compression = sniff(&mut open()?, &file_path)?;
    if compression == Compression::None {
        // The usual case (docker save): the blob is the tar itself, so its digest is the
        // diff_id; verify and move the staged file into the store.
        let size = fs::metadata(&file_path)
            .map_err(|e| OciError::io(&file_path, e))?
            .len();
        dest.adopt_blob(&file_path, diff_id, size)
            .map_err(|e| match e {
                OciError::DigestMismatch {
                    expected, actual, ..
                } => OciError::DigestMismatch {
                    what: what.clone(),
                    expected,
                    actual,
                },
                other => other,
            })?;
        return Ok(Descriptor::new(
            compression.media_type(),
            size,
            diff_id.to_oci(),
        ));
    }
    let mut h = Hasher::new(DigestAlgorithm::Sha256);
    let mut r = decompress_layer(open()?, &compression.media_type(), &what)?;
    copy_hashing(&mut r, &mut h).map_err(|e| unwrap_io(&what, e))?;
    let actual = h.finish();
    if &actual != diff_id {
        return Err(OciError::DigestMismatch {
            what,
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    let mut w = dest.blob_writer()?;
    io::copy(&mut BufReader::new(open()?), &mut w).map_err(|e| OciError::io(&file_path, e))?;
    let (digest, size) = w.commit()?;
    Ok(Descriptor::new(
        compression.media_type(),
        size,
        digest.to_oci(),
    ))
}

fn copy_hashing(r: &mut dyn Read, h: &mut Hasher) -> io::Result<()> {
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn sniff(f: &mut File, path: &Path) -> Result<Compression> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(|e| OciError::io(path, e))? {
            0 => break,
            k => n += k,
        }
    }
    Ok(match &head[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    })
}

/// A docker-archive unpacked into a staging directory, plus its links (old `docker save`
/// output links duplicate layers to each other).
struct DockerArchive {
    root: PathBuf,
    links: HashMap<Vec<String>, Vec<String>>,
}

impl DockerArchive {
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let mut parts = join_lexically(&[], Path::new(path))?;
        for _ in 0..16 {
            match self.links.get(&parts) {
                Some(target) => parts = target.clone(),
                None => return Ok(parts.iter().fold(self.root.clone(), |p, c| p.join(c))),
            }
        }
        Err(OciError::invalid(
            format!("docker-archive path {path}"),
            "too many links",
        ))
    }

    fn read(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let p = self.resolve(path)?;
        if !p.is_file() {
            return Err(OciError::invalid(
                "docker-archive",
                format!("missing file {path}"),
            ));
        }
        read_limited(&p, limit)
    }
}

/// Resolve `rel` against `base` inside the archive namespace; escaping the root is an error.
fn join_lexically(base: &[String], rel: &Path) -> Result<Vec<String>> {
    let mut out = base.to_vec();
    for c in rel.components() {
        match c {
            Component::Normal(s) => out.push(
                s.to_str()
                    .ok_or_else(|| OciError::invalid("archive path", "not UTF-8"))?
                    .to_owned(),
            ),
            Component::CurDir => {}
            Component::ParentDir if !out.is_empty() => {
                out.pop();
            }
            _ => {
                return Err(OciError::invalid(
                    format!("archive path {}", rel.display()),
                    "escapes the archive",
                ));
            }
        }
    }
    Ok(out)
}

fn staging_dir(dest: &Layout) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(".kiln-tmp-import-")
        .tempdir_in(dest.root())
        .map_err(|e| OciError::io(dest.root(), e))
}

/// Call `f` with the sanitised path (components) of every non-directory entry.
fn for_each_file(
    src: &Path,
    mut f: impl FnMut(&[String], &mut tar::Entry<'_, BufReader<File>>) -> Result<()>,
) -> Result<()> {
    let file = File::open(src).map_err(|e| OciError::io(src, e))?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    let what = format!("archive {}", src.display());
    for entry in archive.entries().map_err(|e| OciError::stream(&what, e))? {
        let mut entry = entry.map_err(|e| OciError::stream(&what, e))?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let raw = entry
            .path()
            .map_err(|e| OciError::stream(&what, e))?
            .into_owned();
        let path = join_lexically(&[], &raw)?;
        if path.is_empty() {
            continue;
        }
        f(&path, &mut entry)?;
    }
    Ok(())
}

/// Write a regular-file entry below `root` (its path already sanitised).
fn extract(
    root: &Path,
    path: &[String],
    entry: &mut tar::Entry<'_, BufReader<File>>,
) -> Result<()> {
    if !entry.header().entry_type().is_file() {
        return Err(OciError::invalid(
            format!("archive entry {}", path.join("/")),
            "expected a regular file",
        ));
    }
    let dest = path.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| OciError::io(parent, e))?;
    }
    let mut out = File::create(&dest).map_err(|e| OciError::io(&dest, e))?;
    io::copy(entry, &mut out).map_err(|e| OciError::io(&dest, e))?;
    Ok(())
}
