//! Hostile layer tars. Each case asserts the exact outcome.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_fs::{FileType, FsError, Snapshot, Tree};

/// Builds tars with raw header names the `tar` crate's path helpers would refuse.
struct Raw(tar::Builder<Vec<u8>>);

impl Raw {
    fn new() -> Raw {
        Raw(tar::Builder::new(Vec::new()))
    }

    fn add(&mut self, name: &str, ty: u8, link: &str, data: &[u8], mode: u32) -> &mut Raw {
        let mut h = tar::Header::new_ustar();
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len()].copy_from_slice(name.as_bytes());
        u.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_mtime(1);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn file(&mut self, name: &str, data: &str) -> &mut Raw {
        self.add(name, b'0', "", data.as_bytes(), 0o644)
    }
    fn dir(&mut self, name: &str, mode: u32) -> &mut Raw {
        self.add(name, b'5', "", b"", mode)
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Raw {
        self.add(name, b'2', target, b"", 0o777)
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Raw {
        self.add(name, b'1', target, b"", 0o644)
    }
    fn device(&mut self, name: &str, ty: u8, major: u32, minor: u32) -> &mut Raw {
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_mode(0o660);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1);
        h.set_size(0);
        h.set_entry_type(tar::EntryType::new(ty));
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.0.append(&h, &b""[..]).unwrap();
        self
    }
    fn pax(&mut self, records: &[(&str, &[u8])], name: &str, data: &str) -> &mut Raw {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {k}=").as_bytes());
            body.extend_from_slice(v);
            body.push(b'\n');
        }
        self.add("PaxHeader", b'x', "", &body.clone(), 0o644);
        self.file(name, data)
    }
    fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()))
            .into_inner()
            .unwrap()
    }
}

/// A base tree with `/etc/passwd`, `/etc/shadow` and `/d/{a,b}`.
fn base() -> Snapshot {
    let mut t = Tree::new(&store());
    write(&mut t, "/etc/passwd", b"root");
    write(&mut t, "/etc/shadow", b"secret");
    write(&mut t, "/d/a", b"a");
    write(&mut t, "/d/b", b"b");
    t.snapshot().unwrap()
}

fn apply(tar: &[u8]) -> Tree {
    let mut t = Tree::from_snapshot(&base());
    t.apply_layer(tar).unwrap();
    t
}

fn apply_err(tar: &[u8]) -> FsError {
    let mut t = Tree::from_snapshot(&base());
    t.apply_layer(tar).unwrap_err()
}

fn top(t: &mut Tree) -> Vec<String> {
    let root = t.root();
    t.readdir(root)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect()
}

fn layer_entry(e: &FsError) -> &str {
    match e {
        FsError::Layer { entry, .. } => entry,
        other => panic!("expected a layer error, got {other:?}"),
    }
}

#[test]
fn dotdot_names_are_clamped_inside_the_tree() {
    let mut t = apply(&Raw::new().file("../../etc/passwd", "evil").bytes());
    assert_eq!(read(&mut t, "/etc/passwd"), b"evil");
    assert_eq!(top(&mut t), ["d", "etc"]);
    let mut t = apply(&Raw::new().file("d/../../../x", "x").bytes());
    assert_eq!(read(&mut t, "/x"), b"x");
}

#[test]
fn absolute_names_are_relative_to_the_tree_root() {
    let mut t = apply(&Raw::new().file("/abs/file", "a").bytes());
    assert_eq!(read(&mut t, "/abs/file"), b"a");
    assert_eq!(top(&mut t), ["abs", "d", "etc"]);
}

#[test]
fn hard_link_target_climbing_out_is_clamped() {
    let mut t = apply(&Raw::new().hardlink("x", "../../../etc/shadow").bytes());
    let x = t.resolve(t.root(), b"/x", kiln_fs::Follow::No).unwrap();
    let shadow = t
        .resolve(t.root(), b"/etc/shadow", kiln_fs::Follow::No)
        .unwrap();
    assert_eq!(x, shadow);
    assert_eq!(t.metadata(x).unwrap().nlink, 2);
    assert_eq!(read(&mut t, "/x"), b"secret");
}

#[test]
fn hard_link_to_missing_or_directory_fails_naming_the_entry() {
    let e = apply_err(&Raw::new().hardlink("x", "nope").bytes());
    assert_eq!(layer_entry(&e), "x");
    let e = apply_err(&Raw::new().hardlink("y", "/etc").bytes());
    assert_eq!(layer_entry(&e), "y");
    assert!(e.to_string().contains("directory"), "{e}");
    let e = apply_err(&Raw::new().hardlink("z", "..").bytes());
    assert_eq!(layer_entry(&e), "z");
}

#[test]
fn parent_symlinks_resolve_inside_the_tree() {
    let tar = Raw::new()
        .symlink("evil", "/etc")
        .file("evil/passwd", "through symlink")
        .symlink("up", "../../../../..")
        .file("up/x", "x")
        .bytes();
    let mut t = apply(&tar);
    assert_eq!(kind(&mut t, "/evil"), FileType::Symlink);
    assert_eq!(read(&mut t, "/etc/passwd"), b"through symlink");
    assert_eq!(read(&mut t, "/x"), b"x");
    assert_eq!(top(&mut t), ["d", "etc", "evil", "up", "x"]);
}

#[test]
fn final_symlink_is_replaced_not_written_through() {
    let tar = Raw::new()
        .symlink("f", "/etc/shadow")
        .file("f", "new")
        .bytes();
    let mut t = apply(&tar);
    assert_eq!(kind(&mut t, "/f"), FileType::Regular);
    assert_eq!(read(&mut t, "/f"), b"new");
    assert_eq!(read(&mut t, "/etc/shadow"), b"secret");
    // Same with a hard link entry over a symlink.
    let tar = Raw::new()
        .symlink("g", "/etc/passwd")
        .hardlink("g", "etc/shadow")
        .bytes();
    let mut t = apply(&tar);
    assert_eq!(read(&mut t, "/g"), b"secret");
    assert_eq!(read(&mut t, "/etc/passwd"), b"root");
}

#[test]
fn duplicate_entries_later_wins() {
    let tar = Raw::new()
        .file("dup", "one")
        .file("dup", "two")
        .dir("x/", 0o755)
        .file("x", "file now")
        .file("y", "file")
        .dir("y/", 0o700)
        .dir("d/", 0o700)
        .bytes();
    let mut t = apply(&tar);
    assert_eq!(read(&mut t, "/dup"), b"two");
    assert_eq!(read(&mut t, "/x"), b"file now");
    assert_eq!(kind(&mut t, "/y"), FileType::Directory);
    let d = t.resolve(t.root(), b"/d", kiln_fs::Follow::No).unwrap();
    assert_eq!(t.metadata(d).unwrap().mode, 0o700);
    assert_eq!(
        read(&mut t, "/d/a"),
        b"a",
        "a directory entry over a directory keeps its children"
    );
}

#[test]
fn device_nodes_are_kept_as_metadata() {
    let tar = Raw::new()
        .device("dev/null", b'3', 1, 3)
        .device("dev/sda", b'4', 8, 0)
        .device("dev/big", b'3', 300, 70000)
        .device("fifo", b'6', 0, 0)
        .bytes();
    let mut t = apply(&tar);
    let md = |t: &mut Tree, p: &str| {
        let i = t
            .resolve(t.root(), p.as_bytes(), kiln_fs::Follow::No)
            .unwrap();
        let m = t.metadata(i).unwrap();
        (m.file_type, m.rdev, m.mode, m.size)
    };
    assert_eq!(
        md(&mut t, "/dev/null"),
        (FileType::CharDevice, 0x0103, 0o660, 0)
    );
    assert_eq!(
        md(&mut t, "/dev/sda"),
        (FileType::BlockDevice, 0x0800, 0o660, 0)
    );
    // glibc makedev(300, 70000)
    assert_eq!(md(&mut t, "/dev/big").1, 0x1111_2c70);
    assert_eq!(md(&mut t, "/fifo").0, FileType::Fifo);
    let i = t
        .resolve(t.root(), b"/dev/null", kiln_fs::Follow::No)
        .unwrap();
    assert!(matches!(
        t.read_at(i, 0, &mut [0; 4]),
        Err(FsError::Invalid)
    ));
}

#[test]
fn whiteouts_remove_and_bad_whiteouts_fail() {
    let mut t = apply(
        &Raw::new()
            .file("d/.wh.a", "")
            .file(".wh.missing", "")
            .bytes(),
    );
    assert!(!exists(&mut t, "/d/a"));
    assert!(exists(&mut t, "/d/b"));
    // A whiteout whose name climbs is cleaned like any other name: this one is `/.wh.etc`.
    let mut t = apply(&Raw::new().file("../.wh.etc", "").bytes());
    assert_eq!(top(&mut t), ["d"]);
    let e = apply_err(&Raw::new().file("d/.wh...", "").bytes());
    assert_eq!(layer_entry(&e), "d/.wh...");
    let e = apply_err(&Raw::new().file(".wh..", "").bytes());
    assert_eq!(layer_entry(&e), ".wh..");
}

#[test]
fn opaque_directories_keep_only_this_layers_entries() {
    let mut t = apply(
        &Raw::new()
            .dir("d/", 0o755)
            .file("d/.wh..wh..opq", "")
            .file("d/c", "c")
            .bytes(),
    );
    let d = mkdirs(&mut t, "/d");
    assert_eq!(t.readdir(d).unwrap().len(), 1);
    assert_eq!(read(&mut t, "/d/c"), b"c");
    // Marker after the layer's own entries: they survive.
    let mut t = apply(
        &Raw::new()
            .file("d/c", "c")
            .file("d/.wh..wh..opq", "")
            .bytes(),
    );
    let d = mkdirs(&mut t, "/d");
    assert_eq!(t.readdir(d).unwrap().len(), 1);
}

#[test]
fn paths_through_files_and_symlink_loops_fail_naming_the_entry() {
    let e = apply_err(&Raw::new().file("etc/passwd/x", "x").bytes());
    assert_eq!(layer_entry(&e), "etc/passwd/x");
    assert!(e.to_string().contains("not a directory"), "{e}");
    let e = apply_err(
        &Raw::new()
            .symlink("l1", "l2")
            .symlink("l2", "l1")
            .file("l1/x", "x")
            .bytes(),
    );
    assert_eq!(layer_entry(&e), "l1/x");
    assert!(e.to_string().contains("symbolic links"), "{e}");
    let e = apply_err(&Raw::new().file("./", "x").bytes());
    assert!(e.to_string().contains("root"), "{e}");
}

#[test]
fn oversized_names_and_ids_fail() {
    let long = "a/".repeat(2100) + "f";
    let e = apply_err(
        &Raw::new()
            .pax(&[("path", long.as_bytes())], "short", "x")
            .bytes(),
    );
    assert!(e.to_string().contains("4096"), "{e}");
    let comp = "c".repeat(256);
    let e = apply_err(
        &Raw::new()
            .pax(&[("path", comp.as_bytes())], "short", "x")
            .bytes(),
    );
    assert!(e.to_string().contains("too long"), "{e}");
    let e = apply_err(&Raw::new().pax(&[("uid", b"99999999999")], "u", "x").bytes());
    assert_eq!(layer_entry(&e), "u");
    assert!(e.to_string().contains("uid"), "{e}");
}

#[test]
fn truncated_archive_is_an_error() {
    let tar = Raw::new().file("f", &"x".repeat(5000)).bytes();
    let mut t = Tree::from_snapshot(&base());
    assert!(t.apply_layer(&tar[..2048]).is_err());
}
