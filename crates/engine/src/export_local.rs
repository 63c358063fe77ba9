//! `--output type=local,dest=DIR`: the image's filesystem written to a host directory.
//!
//! The destination is opened once as a capability; every entry is created through it, so
//! a hostile name or symlink from the image cannot write outside `DIR`. Symlinks are
//! recreated as links (never followed); device nodes and fifos are skipped, as an
//! unprivileged BuildKit export does. Modes are the image's, setuid, setgid and sticky
//! bits included (BuildKit's receiver chmods to the full mode); owners are not: as
//! BuildKit's local exporter, every entry belongs to the user running the build. Hard
//! links stay links: the second name of a file is linked to the first one written, as
//! BuildKit's exporter does.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use kiln_fs::{FileType, Ino, Snapshot, Tree};

#[derive(Debug, thiserror::Error)]
pub enum LocalExportError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read {path} from the image: {source}")]
    Fs {
        path: String,
        source: kiln_fs::FsError,
    },
}

/// Writes the whole snapshot under `dest` (created if missing).
pub(crate) fn export_local(snapshot: &Snapshot, dest: &Path) -> Result<u64, LocalExportError> {
    let io = |path: &str| {
        let path = path.to_owned();
        move |source| LocalExportError::Io { path, source }
    };
    std::fs::create_dir_all(dest).map_err(io(&dest.display().to_string()))?;
    let dir = Dir::open_ambient_dir(dest, ambient_authority())
        .map_err(io(&dest.display().to_string()))?;
    let mut tree = Tree::from_snapshot(snapshot);
    let root = tree.root();
    let mut written = Written {
        root: &dir,
        files: 0,
        linked: HashMap::new(),
    };
    copy_dir(&mut tree, root, &dir, "", &mut written)?;
    Ok(written.files)
}

/// What an export has written so far.
struct Written<'a> {
    /// The destination, which hard links are made relative to.
    root: &'a Dir,
    files: u64,
    /// The path (below `root`) each file with more than one name was first written to.
    linked: HashMap<Ino, String>,
}

fn copy_dir(
    tree: &mut Tree,
    ino: Ino,
    out: &Dir,
    rel: &str,
    written: &mut Written<'_>,
) -> Result<(), LocalExportError> {
    let fs_err = |path: &str| {
        let path = path.to_owned();
        move |source| LocalExportError::Fs { path, source }
    };
    for entry in tree.readdir(ino).map_err(fs_err(rel))? {
        if entry.name == b"." || entry.name == b".." {
            continue;
        }
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        // A name that cannot be a single host path component is skipped, not trusted.
        if name.contains(['/', '\\']) || name == "." || name == ".." {
            continue;
        }
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let io = |source| LocalExportError::Io {
            path: child_rel.clone(),
            source,
        };
        match entry.file_type {
            FileType::Directory => {
                let existed = match out.create_dir(&name) {
                    Ok(()) => false,
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => true,
                    Err(e) => return Err(io(e)),
                };
                let sub = out.open_dir(&name).map_err(io)?;
                if existed {
                    // A directory an earlier export left read-only (0555) must take the
                    // new entries: its final mode is set once they are written.
                    make_writable(&sub).map_err(io)?;
                }
                copy_dir(tree, entry.ino, &sub, &child_rel, written)?;
                set_mode(&sub, tree, entry.ino).map_err(io)?;
            }
            FileType::Regular => {
                // An earlier export's file may be read-only: replace it, not rewrite it.
                let _ = out.remove_file(&name);
                if let Some(first) = written.linked.get(&entry.ino) {
                    written.root.hard_link(first, out, &name).map_err(io)?;
                    continue;
                }
                let mut reader = tree.open_read(entry.ino).map_err(fs_err(&child_rel))?;
                let mut file = out.create(&name).map_err(io)?;
                std::io::copy(&mut reader, &mut file).map_err(io)?;
                file.flush().map_err(io)?;
                set_file_mode(&file, tree, entry.ino).map_err(io)?;
                written.files += 1;
                let nlink = tree.metadata(entry.ino).map_or(1, |m| m.nlink);
                if nlink > 1 {
                    written.linked.insert(entry.ino, child_rel.clone());
                }
            }
            FileType::Symlink => {
                let target = tree.readlink(entry.ino).map_err(fs_err(&child_rel))?;
                make_symlink(out, &String::from_utf8_lossy(&target), &name).map_err(io)?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_symlink(dir: &Dir, target: &str, name: &str) -> std::io::Result<()> {
    // `symlink_contents` writes the target as given without resolving it: an absolute
    // target stays a dangling link on the host, never a way out.
    let _ = dir.remove_file(name);
    dir.symlink_contents(target, name)
}

/// Windows needs privileges for symlinks; write the target as a small text file instead.
#[cfg(not(unix))]
fn make_symlink(dir: &Dir, target: &str, name: &str) -> std::io::Result<()> {
    dir.write(name, target.as_bytes())
}

/// The permission bits an export writes: the image's, with setuid, setgid and sticky.
/// (Unix only: other hosts have no mode bits to write.)
#[cfg(unix)]
const EXPORTED_MODE_BITS: u32 = 0o7777;

#[cfg(unix)]
fn set_file_mode(file: &cap_std::fs::File, tree: &Tree, ino: Ino) -> std::io::Result<()> {
    use cap_std::fs::PermissionsExt;
    let mode = tree.metadata(ino).map(|m| m.mode).unwrap_or(0o644);
    file.set_permissions(cap_std::fs::Permissions::from_mode(
        mode & EXPORTED_MODE_BITS,
    ))
}

#[cfg(not(unix))]
fn set_file_mode(_file: &cap_std::fs::File, _tree: &Tree, _ino: Ino) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn set_mode(dir: &Dir, tree: &Tree, ino: Ino) -> std::io::Result<()> {
    use cap_std::fs::PermissionsExt;
    let mode = tree.metadata(ino).map(|m| m.mode).unwrap_or(0o755);
    dir.set_permissions(
        ".",
        cap_std::fs::Permissions::from_mode(mode & EXPORTED_MODE_BITS),
    )
}

#[cfg(not(unix))]
fn set_mode(_dir: &Dir, _tree: &Tree, _ino: Ino) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn make_writable(dir: &Dir) -> std::io::Result<()> {
    use cap_std::fs::PermissionsExt;
    let mode = dir.dir_metadata()?.permissions().mode();
    dir.set_permissions(".", cap_std::fs::Permissions::from_mode(mode | 0o700))
}

#[cfg(not(unix))]
fn make_writable(_dir: &Dir) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_fs::Store;

    #[test]
    fn writes_files_dirs_and_links_inside_dest_only() {
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let app = t.mkdir(t.root(), b"app", 0o755, 0, 0).unwrap();
        let f = t.create_file(app, b"run.sh", 0o755, 0, 0).unwrap();
        t.write_at(f, 0, b"echo hi\n").unwrap();
        t.symlink(t.root(), b"escape", b"/etc/passwd", 0, 0)
            .unwrap();
        t.symlink(app, b"up", b"../../../../tmp", 0, 0).unwrap();
        let snap = t.snapshot().unwrap();
        let out = tempfile::tempdir().unwrap();
        assert_eq!(export_local(&snap, out.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read(out.path().join("app/run.sh")).unwrap(),
            b"echo hi\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(out.path().join("app/run.sh")).unwrap();
            assert_eq!(m.permissions().mode() & 0o777, 0o755);
            let link = std::fs::read_link(out.path().join("escape")).unwrap();
            assert_eq!(link, Path::new("/etc/passwd"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_with_two_names_is_exported_as_one_file_with_two_links() {
        use std::os::unix::fs::MetadataExt;
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let root = t.root();
        let a = t.mkdir(root, b"a", 0o555, 0, 0).unwrap();
        let f = t.create_file(a, b"first", 0o644, 0, 0).unwrap();
        t.write_at(f, 0, b"shared\n").unwrap();
        let b = t.mkdir(root, b"b", 0o755, 0, 0).unwrap();
        t.link(f, b, b"second").unwrap();
        let snap = t.snapshot().unwrap();
        let out = tempfile::tempdir().unwrap();
        // Twice: the second export replaces the first one's links.
        export_local(&snap, out.path()).unwrap();
        assert_eq!(export_local(&snap, out.path()).unwrap(), 1);
        let first = std::fs::metadata(out.path().join("a/first")).unwrap();
        let second = std::fs::metadata(out.path().join("b/second")).unwrap();
        assert_eq!((first.ino(), first.nlink()), (second.ino(), 2));
        assert_eq!(
            std::fs::read(out.path().join("b/second")).unwrap(),
            b"shared\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn special_bits_are_exported_and_a_second_export_overwrites_read_only_entries() {
        use std::os::unix::fs::PermissionsExt;
        let store = Store::temp().unwrap();
        let mut t = Tree::new(&store);
        let root = t.root();
        t.mkdir(root, b"tmp", 0o1777, 0, 0).unwrap();
        t.mkdir(root, b"mail", 0o2775, 0, 0).unwrap();
        let ro = t.mkdir(root, b"ro", 0o555, 0, 0).unwrap();
        t.create_file(ro, b"f", 0o444, 0, 0).unwrap();
        t.create_file(root, b"su", 0o4755, 0, 0).unwrap();
        t.create_file(root, b"wall", 0o2755, 0, 0).unwrap();
        let snap = t.snapshot().unwrap();
        let out = tempfile::tempdir().unwrap();
        export_local(&snap, out.path()).unwrap();
        // Again over the first export: its read-only directory and file are replaced.
        export_local(&snap, out.path()).unwrap();
        let mode = |p: &str| {
            let m = std::fs::symlink_metadata(out.path().join(p)).unwrap();
            m.permissions().mode() & 0o7777
        };
        let got: Vec<u32> = ["tmp", "mail", "ro", "ro/f", "su", "wall"]
            .into_iter()
            .map(mode)
            .collect();
        assert_eq!(got, [0o1777, 0o2775, 0o555, 0o444, 0o4755, 0o2755]);
    }
}
