#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
mod common;

use common::*;
use kiln_fs::{FileType, Snapshot, Timestamp, Tree, write_layer, write_snapshot};

fn base() -> Snapshot {
    let mut t = Tree::new(&store());
    t.set_clock(Timestamp::from_secs(100));
    write(&mut t, "/etc/passwd", b"root:x:0:0\n");
    write(&mut t, "/etc/group", b"root:x:0:\n");
    write(&mut t, "/usr/bin/tool", b"#!tool");
    write(&mut t, "/var/lib/x/a", b"a");
    write(&mut t, "/var/lib/x/b", b"b");
    t.snapshot().unwrap()
}

#[test]
fn diff_reports_sorted_changes_of_each_kind() {
    let a = base();
    let mut t = Tree::from_snapshot(&a);
    t.set_clock(Timestamp::from_secs(200));
    write(&mut t, "/etc/passwd", b"changed\n");
    write(&mut t, "/etc/new", b"n");
    let etc = mkdirs(&mut t, "/etc");
    t.unlink(etc, b"group").unwrap();
    let usr = mkdirs(&mut t, "/usr");
    t.remove_all(usr, b"bin").unwrap();
    t.create_file(usr, b"bin", 0o755, 0, 0).unwrap();
    // Directory emptied and refilled: replaced wholesale.
    let lib = mkdirs(&mut t, "/var/lib");
    t.remove_all(lib, b"x").unwrap();
    write(&mut t, "/var/lib/x/c", b"c");
    let b = t.snapshot().unwrap();
    assert_eq!(
        changes(&a, &b),
        [
            "Modified /etc",
            "Deleted /etc/group",
            "Added /etc/new",
            "Modified /etc/passwd",
            "Modified /usr",
            "Replaced /usr/bin",
            "Modified /var/lib",
            "Replaced /var/lib/x",
            "Added /var/lib/x/c",
        ]
    );
    assert!(changes(&a, &a).is_empty());
    // Emptying a directory is reported as deletions, not as a replacement.
    let mut t = Tree::from_snapshot(&b);
    let x = mkdirs(&mut t, "/var/lib/x");
    t.unlink(x, b"c").unwrap();
    let c = t.snapshot().unwrap();
    assert_eq!(
        changes(&b, &c),
        ["Modified /var/lib/x", "Deleted /var/lib/x/c"]
    );
    assert!(changes(&b, &b.clone()).is_empty());
}

#[test]
fn layer_round_trip_reproduces_the_child() {
    let a = base();
    let mut t = Tree::from_snapshot(&a);
    t.set_clock(Timestamp::from_secs(300));
    write(&mut t, "/etc/passwd", b"changed\n");
    let etc = mkdirs(&mut t, "/etc");
    t.unlink(etc, b"group").unwrap();
    let lib = mkdirs(&mut t, "/var/lib");
    t.remove_all(lib, b"x").unwrap();
    write(&mut t, "/var/lib/x/c", b"c");
    let f = write(&mut t, "/opt/big", &vec![7u8; 300_000]);
    let opt = mkdirs(&mut t, "/opt");
    t.link(f, opt, b"big-link").unwrap();
    t.symlink(opt, b"sym", b"../etc/passwd", 0, 0).unwrap();
    t.mknod(opt, b"null", FileType::CharDevice, 0o666, 0x0103, 0, 0)
        .unwrap();
    t.set_xattr(f, b"user.k", b"v").unwrap();
    let b = t.snapshot().unwrap();

    let tar = write_layer(&a, &b, i64::MAX, Vec::new()).unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&"0 etc/.wh.group".to_string()), "{names:?}");
    assert!(
        names.contains(&"0 var/lib/x/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"1 opt/big-link -> opt/big".to_string())
            || names.contains(&"1 opt/big -> opt/big-link".to_string()),
        "{names:?}"
    );

    let mut t2 = Tree::from_snapshot(&a);
    let stats = t2.apply_layer(tar.as_slice()).unwrap();
    assert!(stats.bytes >= 300_000);
    assert_eq!(stats.whiteouts, 2);
    let b2 = t2.snapshot().unwrap();
    assert_eq!(listing(&b2), listing(&b));
    assert_eq!(b2.id(), b.id());
    // Same inputs, same bytes.
    assert_eq!(write_layer(&a, &b, i64::MAX, Vec::new()).unwrap(), tar);
}

#[test]
fn full_snapshot_round_trip_and_determinism() {
    let a = base();
    let tar = write_snapshot(&a, i64::MAX, Vec::new()).unwrap();
    assert_eq!(tar_names(&tar)[..3], ["5 ./", "5 etc/", "0 etc/group"]);
    let mut t = Tree::new(&store());
    t.apply_layer(tar.as_slice()).unwrap();
    let a2 = t.snapshot().unwrap();
    assert_eq!(listing(&a2), listing(&a));
    assert_eq!(a2.id(), a.id());
    assert_eq!(write_snapshot(&a2, i64::MAX, Vec::new()).unwrap(), tar);
}

#[test]
fn mtimes_are_clamped_to_the_epoch() {
    let mut t = Tree::new(&store());
    t.set_clock(Timestamp::from_secs(5000));
    write(&mut t, "/late", b"x");
    t.set_clock(Timestamp::from_secs(10));
    write(&mut t, "/early", b"x");
    let s = t.snapshot().unwrap();
    let tar = write_snapshot(&s, 1000, Vec::new()).unwrap();
    let mut a = tar::Archive::new(tar.as_slice());
    let times: Vec<(String, u64)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                e.header().mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        times,
        [
            ("./".into(), 10),
            ("early".into(), 10),
            ("late".into(), 1000)
        ]
    );
    for e in tar::Archive::new(tar.as_slice()).entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().username_bytes(), Some(&b""[..]));
        assert_eq!(e.header().groupname_bytes(), Some(&b""[..]));
    }
}

#[test]
fn long_names_and_big_ids_use_pax() {
    let mut t = Tree::new(&store());
    let long = format!("/{}/{}", "d".repeat(120), "f".repeat(200));
    let f = write(&mut t, &long, b"x");
    t.chown(f, Some(3_000_000), Some(4_000_000)).unwrap();
    let dir = mkdirs(&mut t, "/l");
    t.symlink(dir, b"s", "t".repeat(150).as_bytes(), 0, 0)
        .unwrap();
    t.set_times(f, None, Some(Timestamp { sec: 7, nsec: 250 }))
        .unwrap();
    let s = t.snapshot().unwrap();
    let tar = write_snapshot(&s, i64::MAX, Vec::new()).unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&format!("0 {}", &long[1..])), "{names:?}");
    let mut t2 = Tree::new(&store());
    t2.apply_layer(tar.as_slice()).unwrap();
    let s2 = t2.snapshot().unwrap();
    assert_eq!(listing(&s2), listing(&s));
}

#[test]
fn moved_hard_link_stays_linked_to_the_lower_layer() {
    let mut t = Tree::new(&store());
    let f = write(&mut t, "/a/x", b"shared");
    let c = mkdirs(&mut t, "/c");
    t.link(f, c, b"y").unwrap();
    let lower = t.snapshot().unwrap();
    let mut t = Tree::from_snapshot(&lower);
    let root = t.root();
    t.rename(root, b"a", root, b"b").unwrap();
    let upper = t.snapshot().unwrap();
    let tar = write_layer(&lower, &upper, i64::MAX, Vec::new()).unwrap();
    assert_eq!(tar_names(&tar), ["0 .wh.a", "5 b/", "1 b/x -> c/y"]);
    let mut t2 = Tree::from_snapshot(&lower);
    t2.apply_layer(tar.as_slice()).unwrap();
    let got = t2.snapshot().unwrap();
    assert_eq!(listing(&got), listing(&upper));
    let mut t3 = Tree::from_snapshot(&got);
    write(&mut t3, "/b/x", b"via b");
    assert_eq!(read(&mut t3, "/c/y"), b"via b");
}

/// A tar with one file nested `depth` directories deep (the name in a PAX record).
fn deep_tar(depth: usize) -> Vec<u8> {
    let path = "a/".repeat(depth) + "f";
    let rest = "path=".len() + path.len() + 2;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let pax = format!("{len} path={path}\n");
    let mut b = tar::Builder::new(Vec::new());
    let header = |ty, size: usize, name: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(ty);
        h.set_cksum();
        h
    };
    b.append(
        &header(tar::EntryType::XHeader, pax.len(), b"PaxHeader"),
        pax.as_bytes(),
    )
    .unwrap();
    b.append(&header(tar::EntryType::Regular, 1, b"f"), &b"x"[..])
        .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn deepest_allowed_tree_survives_every_operation() {
    let depth = kiln_fs::MAX_DEPTH as usize;
    let store = store();
    let mut too_deep = Tree::new(&store);
    let e = too_deep
        .apply_layer(deep_tar(depth + 1).as_slice())
        .unwrap_err();
    assert!(e.to_string().contains("too long"), "{e}");

    let empty = Snapshot::empty(&store);
    let mut t = Tree::from_snapshot(&empty);
    t.apply_layer(deep_tar(depth).as_slice()).unwrap();
    assert_eq!(read(&mut t, &("a/".repeat(depth) + "f")), b"x");
    let s = t.snapshot().unwrap();
    s.id();
    assert_eq!(kiln_fs::diff(&empty, &s).len(), depth + 1);
    let out = write_layer(&empty, &s, 0, Vec::new()).unwrap();
    let mut t2 = Tree::from_snapshot(&empty);
    t2.apply_layer(out.as_slice()).unwrap();
    assert_eq!(t2.snapshot().unwrap().id(), s.id());
    assert_eq!(s.walk().count(), depth + 2);

    // Moving the deep subtree one level down would exceed the limit.
    let mut t3 = Tree::from_snapshot(&s);
    let root = t3.root();
    let b = t3.mkdir(root, b"b", 0o755, 0, 0).unwrap();
    assert!(matches!(
        t3.rename(root, b"a", b, b"a"),
        Err(kiln_fs::FsError::NameTooLong)
    ));
    let deepest = mkdirs(&mut t3, &"a/".repeat(depth));
    assert!(matches!(
        t3.mkdir(deepest, b"x", 0o755, 0, 0),
        Err(kiln_fs::FsError::NameTooLong)
    ));
}
