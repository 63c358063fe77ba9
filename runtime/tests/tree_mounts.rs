//! Tree mounts (`MountTable::add_tree`): a tree mounted at one of its files or
//! subdirectories, and read-only mounts refusing every write with `EROFS`, by path and
//! by fd alike.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_fs::Follow;
use kiln_runtime::{Access, Errno, MountTable, OpenOptions, Opened};

/// A tree holding `/dir/file` ("content") and `/dir/sub/`.
fn source() -> kiln_runtime::SharedTree {
    let tree = new_tree(&store());
    write_file(&tree, "/dir/file", b"content");
    mkdir_p(&tree, "/dir/sub");
    tree
}

fn ino_of(tree: &kiln_runtime::SharedTree, path: &str) -> kiln_fs::Ino {
    let mut t = tree.lock();
    let root = t.root();
    t.resolve(root, path.as_bytes(), Follow::No).unwrap()
}

fn read(v: &kiln_runtime::Vfs, path: &str) -> Vec<u8> {
    let Opened::File(f) = v
        .open(b"/", path.as_bytes(), &OpenOptions::read_only())
        .unwrap()
    else {
        panic!("{path} is not a file");
    };
    let mut buf = vec![0; 64];
    let n = f.read(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn a_file_of_a_tree_mounts_at_a_file_path_under_virtual_parents() {
    let src = source();
    let mut mounts = MountTable::new();
    let file = ino_of(&src, "/dir/file");
    mounts
        .add_tree("/src/go.mod", src.clone(), Some(file), Access::ReadOnly)
        .unwrap();
    let sub = ino_of(&src, "/dir");
    mounts
        .add_tree("/sub", src, Some(sub), Access::ReadWrite)
        .unwrap();
    let rootfs = new_tree(&store());
    let v = vfs_with(&rootfs, mounts);
    assert_eq!(read(&v, "/src/go.mod"), b"content");
    assert!(!v.stat(b"/", b"/src/go.mod", true).unwrap().is_dir());
    assert!(v.stat(b"/", b"/src", true).unwrap().is_dir());
    // A subdirectory mount shows that directory, and `..` leaves through the step's
    // namespace, never to the rest of the mounted tree.
    assert_eq!(read(&v, "/sub/file"), b"content");
    assert!(v.stat(b"/", b"/sub/../dir", true).is_err());
    // Nothing of either mount is in the step's own tree.
    assert!(read_file(&rootfs, "/src/go.mod").is_none());
}

#[test]
fn a_read_only_mount_refuses_every_write_with_erofs() {
    let src = source();
    let mut mounts = MountTable::new();
    mounts
        .add_tree("/ro", src.clone(), None, Access::ReadOnly)
        .unwrap();
    let v = vfs_with(&new_tree(&store()), mounts);
    let rofs = |r: Result<(), Errno>| assert_eq!(r.unwrap_err(), Errno::ROFS);
    let open = |path: &[u8], o: OpenOptions| v.open(b"/", path, &o).map(|_| ());
    rofs(open(b"/ro/dir/file", OpenOptions::write_truncate()));
    rofs(open(b"/ro/dir/file", OpenOptions::append()));
    rofs(open(b"/ro/dir/new", OpenOptions::write_truncate()));
    rofs(v.mkdir(b"/", b"/ro/dir/d", 0o755));
    rofs(v.remove_file(b"/", b"/ro/dir/file"));
    rofs(v.remove_dir(b"/", b"/ro/dir/sub"));
    rofs(v.rename(b"/", b"/ro/dir/file", b"/", b"/ro/dir/moved"));
    rofs(v.symlink(b"x", b"/", b"/ro/dir/link"));
    rofs(v.chmod(b"/", b"/ro/dir/file", true, 0o777));
    rofs(v.chown(b"/", b"/ro/dir/file", true, Some(1), None));
    rofs(v.set_times(b"/", b"/ro/dir/file", true, None, None));
    // An fd opened for reading cannot change the file either.
    let Opened::File(f) = v
        .open(b"/", b"/ro/dir/file", &OpenOptions::read_only())
        .unwrap()
    else {
        panic!("not a file");
    };
    rofs(f.chmod(0o777));
    rofs(f.chown(Some(1), None));
    rofs(f.set_times(None, None));
    assert_eq!(read_file(&src, "/dir/file").unwrap(), b"content");
    assert_eq!(read(&v, "/ro/dir/file"), b"content");
}

#[test]
fn the_same_tree_is_writable_through_a_read_write_mount() {
    let src = source();
    let mut mounts = MountTable::new();
    mounts
        .add_tree("/ro", src.clone(), None, Access::ReadOnly)
        .unwrap();
    mounts
        .add_tree("/rw", src.clone(), None, Access::ReadWrite)
        .unwrap();
    let v = vfs_with(&new_tree(&store()), mounts);
    v.open(b"/", b"/rw/dir/new", &OpenOptions::write_truncate())
        .unwrap();
    assert!(v.stat(b"/", b"/ro/dir/new", true).is_ok());
    assert_eq!(v.mkdir(b"/", b"/ro/dir/d", 0o755).unwrap_err(), Errno::ROFS);
}
