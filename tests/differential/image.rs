//! Reads a docker-archive (what `docker save` and `kiln build -o type=docker` write) into
//! the two things the differential test compares: the root filesystem its layers make,
//! entry by entry, and the parts of the image config a Dockerfile decides.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// One entry of a root filesystem, with what two builders must agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    /// A regular file (also each name of a hard-linked one) with its size and sha256,
    /// and its text when it is short enough to show in a difference.
    File {
        size: u64,
        sha256: String,
        text: Option<String>,
    },
    Symlink(String),
    Other(char),
}

/// Paths (absolute, no trailing slash; `/` itself left out) to entries.
pub(crate) type Tree = BTreeMap<String, Entry>;

pub(crate) struct Image {
    pub tree: Tree,
    /// The image config JSON (`config`, `history`, ...).
    pub config: serde_json::Value,
}

/// Reads the docker-archive at `path`, applying its layers in order with OCI whiteouts.
pub(crate) fn read_archive(path: &Path) -> Result<Image, String> {
    let files = outer_files(path)?;
    let manifest: serde_json::Value = serde_json::from_slice(get(&files, "manifest.json")?)
        .map_err(|e| format!("manifest.json: {e}"))?;
    let first = &manifest[0];
    let config_name = first["Config"].as_str().ok_or("manifest has no Config")?;
    let config = serde_json::from_slice(get(&files, config_name)?)
        .map_err(|e| format!("{config_name}: {e}"))?;
    let mut tree = Tree::new();
    for layer in first["Layers"].as_array().ok_or("manifest has no Layers")? {
        let name = layer.as_str().ok_or("layer name is not a string")?;
        apply_layer(&mut tree, &unpacked(get(&files, name)?))
            .map_err(|e| format!("layer {name}: {e}"))?;
    }
    Ok(Image { tree, config })
}

/// Reads a directory as `kiln build -o type=local` wrote it, into the same form as an
/// image's tree (symlinks not followed; hard links are files with their target's data).
pub(crate) fn read_local(dir: &Path) -> Result<Tree, String> {
    use std::os::unix::fs::MetadataExt;
    let mut tree = Tree::new();
    for entry in walkdir::WalkDir::new(dir).min_depth(1) {
        let entry = entry.map_err(|e| e.to_string())?;
        let meta = entry.metadata().map_err(|e| e.to_string())?;
        let kind = local_kind(entry.path(), &meta.file_type())?;
        let rel = entry.path().strip_prefix(dir).map_err(|e| e.to_string())?;
        let entry = Entry {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid().into(),
            gid: meta.gid().into(),
        };
        tree.insert(format!("/{}", rel.to_string_lossy()), entry);
    }
    Ok(tree)
}

fn local_kind(path: &Path, ft: &std::fs::FileType) -> Result<Kind, String> {
    if ft.is_dir() {
        return Ok(Kind::Dir);
    }
    if ft.is_symlink() {
        let to = std::fs::read_link(path).map_err(|e| e.to_string())?;
        return Ok(Kind::Symlink(to.to_string_lossy().into_owned()));
    }
    if ft.is_file() {
        let body = std::fs::read(path).map_err(|e| e.to_string())?;
        return Ok(file_kind(body));
    }
    Ok(Kind::Other('?'))
}

fn get<'a>(files: &'a HashMap<String, Vec<u8>>, name: &str) -> Result<&'a [u8], String> {
    files
        .get(name.trim_start_matches("./"))
        .map(Vec::as_slice)
        .ok_or_else(|| format!("{name} is not in the archive"))
}

/// Every regular file of the archive by name.
fn outer_files(path: &Path) -> Result<HashMap<String, Vec<u8>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut files = HashMap::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| e.to_string())?;
        let name = name.to_string_lossy().trim_start_matches("./").to_owned();
        let mut body = Vec::new();
        entry.read_to_end(&mut body).map_err(|e| e.to_string())?;
        files.insert(name, body);
    }
    Ok(files)
}

/// A layer as a plain tar: gzip and zstd layers are decompressed.
fn unpacked(bytes: &[u8]) -> Vec<u8> {
    let inner = crate::support::decompressed(bytes);
    if inner.is_empty() {
        bytes.to_vec()
    } else {
        inner
    }
}

/// Applies one layer to `tree`: whiteouts delete, opaque markers empty a directory of
/// what lower layers put there, anything else replaces the path (and, when a directory
/// is replaced by something else, everything under it).
pub(crate) fn apply_layer(tree: &mut Tree, layer: &[u8]) -> Result<(), String> {
    let mut archive = tar::Archive::new(layer);
    let mut added: Vec<(String, Entry)> = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = normal(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", &path));
        if base == ".wh..wh..opq" {
            remove_under(tree, dir);
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let victim = format!("{dir}/{hidden}");
            tree.remove(&victim);
            remove_under(tree, &victim);
            continue;
        }
        if path.is_empty() {
            continue;
        }
        let new = read_entry(&mut entry, tree, &added)?;
        if new.kind != Kind::Dir {
            remove_under(tree, &path);
        }
        added.push((path.clone(), new.clone()));
        tree.insert(path, new);
    }
    Ok(())
}

fn read_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    tree: &Tree,
    added: &[(String, Entry)],
) -> Result<Entry, String> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| e.to_string())? & 0o7777;
    let uid = header.uid().map_err(|e| e.to_string())?;
    let gid = header.gid().map_err(|e| e.to_string())?;
    let kind = match header.entry_type() {
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink(link_name(entry)?),
        // A hard link is another name for its target's inode: same content, mode, owner.
        tar::EntryType::Link => return hard_link_target(entry, tree, added),
        t if t.is_file() => file(entry)?,
        tar::EntryType::Char => Kind::Other('c'),
        tar::EntryType::Block => Kind::Other('b'),
        tar::EntryType::Fifo => Kind::Other('p'),
        other => Kind::Other(format!("{other:?}").chars().next().unwrap_or('?')),
    };
    Ok(Entry {
        kind,
        mode,
        uid,
        gid,
    })
}

/// Files up to this size keep their text, so a difference shows the changed lines
/// (config files like /etc/passwd are far smaller; bigger ones show only their hashes).
const TEXT_MAX: usize = 8 * 1024;

fn file<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Kind, String> {
    let mut body = Vec::new();
    entry.read_to_end(&mut body).map_err(|e| e.to_string())?;
    Ok(file_kind(body))
}

fn file_kind(body: Vec<u8>) -> Kind {
    Kind::File {
        size: body.len() as u64,
        sha256: hex::encode(Sha256::digest(&body)),
        text: if body.len() <= TEXT_MAX {
            String::from_utf8(body).ok()
        } else {
            None
        },
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Result<String, String> {
    Ok(entry
        .link_name()
        .map_err(|e| e.to_string())?
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default())
}

fn hard_link_target<R: Read>(
    entry: &tar::Entry<'_, R>,
    tree: &Tree,
    added: &[(String, Entry)],
) -> Result<Entry, String> {
    let target = normal(&link_name(entry)?);
    added
        .iter()
        .rev()
        .find(|(p, _)| *p == target)
        .map(|(_, e)| e)
        .or_else(|| tree.get(&target))
        .cloned()
        .ok_or_else(|| format!("hard link to {target}, which is not in the image"))
}

/// `./a/b/`, `a/b` and `/a/b` all become `/a/b`; the root becomes the empty string.
fn normal(path: &str) -> String {
    let trimmed = path.trim_start_matches("./").trim_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

fn remove_under(tree: &mut Tree, dir: &str) {
    let prefix = format!("{dir}/");
    let doomed: Vec<String> = tree
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .map(|(p, _)| p.clone())
        .collect();
    for p in doomed {
        tree.remove(&p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn add(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, body: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o4755
        });
        h.set_size(body.len() as u64);
        b.append_data(&mut h, path, body).unwrap();
    }

    fn add_link(b: &mut tar::Builder<Vec<u8>>, path: &str, kind: tar::EntryType, to: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o777);
        h.set_size(0);
        b.append_link(&mut h, path, to).unwrap();
    }

    #[test]
    fn a_local_directory_reads_like_an_image_tree() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/tool");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(&file, "x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("sub/tool", dir.path().join("link")).unwrap();
        let tree = read_local(dir.path()).unwrap();
        let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/link", "/sub", "/sub/tool"]);
        assert_eq!(tree["/sub/tool"].mode, 0o4755);
        assert_eq!(tree["/sub/tool"].kind, file_kind(b"x".to_vec()));
        assert_eq!(tree["/link"].kind, Kind::Symlink("sub/tool".into()));
    }

    #[test]
    fn whiteouts_opaque_dirs_and_hard_links_apply_as_overlayfs_would() {
        let mut tree = Tree::new();
        let base = layer(|b| {
            add(b, "./etc/", tar::EntryType::Directory, b"");
            add(b, "./etc/a", tar::EntryType::Regular, b"a");
            add(b, "./usr/share/man/man1/x.1", tar::EntryType::Regular, b"x");
            add(b, "./var/lib/", tar::EntryType::Directory, b"");
            add(b, "./var/lib/k", tar::EntryType::Regular, b"k");
            add_link(b, "./etc/b", tar::EntryType::Link, "./etc/a");
            add_link(b, "./bin", tar::EntryType::Symlink, "usr/bin");
        });
        apply_layer(&mut tree, &base).unwrap();
        assert_eq!(tree["/etc/b"], tree["/etc/a"]);
        assert_eq!(tree["/etc/a"].mode, 0o4755);
        assert_eq!(tree["/bin"].kind, Kind::Symlink("usr/bin".into()));
        let upper = layer(|b| {
            add(b, "usr/share/man/.wh.man1", tar::EntryType::Regular, b"");
            add(b, "var/lib/.wh..wh..opq", tar::EntryType::Regular, b"");
            add(b, "var/lib/new", tar::EntryType::Regular, b"n");
            add(b, "etc", tar::EntryType::Regular, b"now a file");
        });
        apply_layer(&mut tree, &upper).unwrap();
        let paths: Vec<&str> = tree.keys().map(String::as_str).collect();
        assert_eq!(paths, ["/bin", "/etc", "/var/lib", "/var/lib/new"]);
    }
}
