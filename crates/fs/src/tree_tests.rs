use super::*;

fn tree() -> Tree {
    Tree::new(&Store::temp().unwrap())
}

fn read_all(t: &Tree, ino: Ino) -> Vec<u8> {
    let mut out = Vec::new();
    t.open_read(ino).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn path(t: &mut Tree, p: &str) -> Ino {
    t.resolve(ROOT, p.as_bytes(), Follow::No).unwrap()
}

fn names(t: &mut Tree, dir: Ino) -> Vec<String> {
    t.readdir(dir)
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect()
}

#[test]
fn create_write_read_metadata() {
    let mut t = tree();
    t.set_clock(Timestamp::from_secs(77));
    let f = t.create_file(ROOT, b"f", 0o4755, 10, 20).unwrap();
    assert_eq!(t.write_at(f, 3, b"abc").unwrap(), 3);
    let mut buf = [9u8; 10];
    assert_eq!(t.read_at(f, 0, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"\0\0\0abc");
    assert_eq!(t.read_at(f, 6, &mut buf).unwrap(), 0);
    assert_eq!(t.read_at(f, 100, &mut buf).unwrap(), 0);
    let m = t.metadata(f).unwrap();
    assert_eq!(
        (m.file_type, m.mode, m.uid, m.gid, m.size, m.nlink),
        (FileType::Regular, 0o4755, 10, 20, 6, 1)
    );
    assert_eq!(m.mtime, Timestamp::from_secs(77));
    assert!(matches!(
        t.create_file(ROOT, b"f", 0o644, 0, 0),
        Err(FsError::Exists)
    ));
    t.set_len(f, 2).unwrap();
    assert_eq!(read_all(&t, f), b"\0\0");
    assert!(matches!(t.read_at(ROOT, 0, &mut buf), Err(FsError::IsDir)));
}

#[test]
fn mkdir_readdir_sorted_and_nlink() {
    let mut t = tree();
    let d = t.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
    for n in ["b", "a", "C", "z"] {
        t.create_file(d, n.as_bytes(), 0o644, 0, 0).unwrap();
    }
    t.mkdir(d, b"sub", 0o700, 0, 0).unwrap();
    assert_eq!(names(&mut t, d), ["C", "a", "b", "sub", "z"]);
    assert_eq!(t.metadata(d).unwrap().nlink, 3);
    assert_eq!(t.metadata(ROOT).unwrap().nlink, 3);
    assert_eq!(t.lookup(d, b"..").unwrap(), ROOT);
    assert_eq!(t.lookup(ROOT, b"..").unwrap(), ROOT);
    assert!(matches!(t.rmdir(ROOT, b"d"), Err(FsError::NotEmpty)));
    assert!(matches!(t.rmdir(d, b"a"), Err(FsError::NotDir)));
    assert!(matches!(t.unlink(d, b"sub"), Err(FsError::IsDir)));
    t.rmdir(d, b"sub").unwrap();
    assert_eq!(t.metadata(d).unwrap().nlink, 2);
    assert!(matches!(
        t.mkdir(ROOT, &[b'x'; 256], 0o755, 0, 0),
        Err(FsError::NameTooLong)
    ));
    assert!(matches!(
        t.mkdir(ROOT, b"a/b", 0o755, 0, 0),
        Err(FsError::Invalid)
    ));
    let f = t.lookup(d, b"a").unwrap();
    assert!(matches!(t.lookup(f, b"x"), Err(FsError::NotDir)));
}

#[test]
fn unlinked_inode_stays_usable_but_leaves_snapshot() {
    let mut t = tree();
    let f = t.create_file(ROOT, b"f", 0o644, 0, 0).unwrap();
    t.write_at(f, 0, b"data").unwrap();
    t.unlink(ROOT, b"f").unwrap();
    t.write_at(f, 4, b"!").unwrap();
    assert_eq!(read_all(&t, f), b"data!");
    assert_eq!(t.metadata(f).unwrap().nlink, 0);
    let s = t.snapshot().unwrap();
    let mut t2 = Tree::from_snapshot(&s);
    assert!(t2.readdir(ROOT).unwrap().is_empty());
    assert!(matches!(t.link(f, ROOT, b"g"), Err(FsError::NotFound)));
}

#[test]
fn rename_posix_semantics() {
    let mut t = tree();
    let a = t.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = t.mkdir(a, b"b", 0o755, 0, 0).unwrap();
    let f = t.create_file(ROOT, b"f", 0o644, 0, 0).unwrap();
    let g = t.create_file(ROOT, b"g", 0o644, 0, 0).unwrap();
    t.write_at(g, 0, b"g").unwrap();
    // dir into itself / its descendant
    assert!(matches!(
        t.rename(ROOT, b"a", a, b"x"),
        Err(FsError::Invalid)
    ));
    assert!(matches!(
        t.rename(ROOT, b"a", b, b"x"),
        Err(FsError::Invalid)
    ));
    // type mismatches
    assert!(matches!(
        t.rename(ROOT, b"f", ROOT, b"a"),
        Err(FsError::IsDir)
    ));
    assert!(matches!(
        t.rename(ROOT, b"a", ROOT, b"f"),
        Err(FsError::NotDir)
    ));
    // dir over non-empty dir
    let e = t.mkdir(ROOT, b"e", 0o755, 0, 0).unwrap();
    assert!(matches!(
        t.rename(ROOT, b"e", ROOT, b"a"),
        Err(FsError::NotEmpty)
    ));
    // dir over empty dir
    t.rename(a, b"b", ROOT, b"e").unwrap();
    assert_eq!(t.lookup(ROOT, b"e").unwrap(), b);
    assert_eq!(t.parent(b).unwrap(), ROOT);
    assert_eq!(t.metadata(e).unwrap().nlink, 0);
    assert_eq!(t.metadata(a).unwrap().nlink, 2);
    assert_eq!(t.metadata(ROOT).unwrap().nlink, 4);
    // file over file replaces it
    t.rename(ROOT, b"g", ROOT, b"f").unwrap();
    assert_eq!(t.lookup(ROOT, b"f").unwrap(), g);
    assert_eq!(t.metadata(f).unwrap().nlink, 0);
    assert!(matches!(t.lookup(ROOT, b"g"), Err(FsError::NotFound)));
    // same inode under two names: no-op
    t.link(g, ROOT, b"h").unwrap();
    t.rename(ROOT, b"f", ROOT, b"h").unwrap();
    assert_eq!(names(&mut t, ROOT), ["a", "e", "f", "h"]);
    // move across directories
    t.rename(ROOT, b"h", a, b"moved").unwrap();
    assert_eq!(t.lookup(a, b"moved").unwrap(), g);
    assert!(matches!(
        t.rename(ROOT, b"nope", ROOT, b"x"),
        Err(FsError::NotFound)
    ));
}

#[test]
fn resolve_symlinks_dotdot_and_loops() {
    let mut t = tree();
    let a = t.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let f = t.create_file(a, b"f", 0o644, 0, 0).unwrap();
    t.symlink(ROOT, b"abs", b"/a/f", 0, 0).unwrap();
    t.symlink(a, b"rel", b"f", 0, 0).unwrap();
    t.symlink(a, b"up", b"../../../../a", 0, 0).unwrap();
    t.symlink(ROOT, b"l1", b"l2", 0, 0).unwrap();
    t.symlink(ROOT, b"l2", b"l1", 0, 0).unwrap();
    t.symlink(ROOT, b"dangling", b"/missing", 0, 0).unwrap();
    assert_eq!(t.resolve(ROOT, b"/abs", Follow::Yes).unwrap(), f);
    assert_ne!(t.resolve(ROOT, b"/abs", Follow::No).unwrap(), f);
    assert_eq!(t.resolve(a, b"rel", Follow::Yes).unwrap(), f);
    assert_eq!(t.resolve(ROOT, b"/../../a/f", Follow::No).unwrap(), f);
    assert_eq!(t.resolve(ROOT, b"a/up/up/up/f", Follow::No).unwrap(), f);
    assert_eq!(t.resolve(ROOT, b"a/./f", Follow::No).unwrap(), f);
    assert!(matches!(
        t.resolve(ROOT, b"l1", Follow::Yes),
        Err(FsError::Loop)
    ));
    assert!(t.resolve(ROOT, b"l1", Follow::No).is_ok());
    assert!(matches!(
        t.resolve(ROOT, b"/a/f/", Follow::No),
        Err(FsError::NotDir)
    ));
    assert!(matches!(
        t.resolve(ROOT, b"/a/f/x", Follow::No),
        Err(FsError::NotDir)
    ));
    assert!(matches!(
        t.resolve(ROOT, b"dangling", Follow::Yes),
        Err(FsError::NotFound)
    ));
    assert!(matches!(
        t.resolve(ROOT, b"", Follow::Yes),
        Err(FsError::NotFound)
    ));
    assert_eq!(t.resolve(ROOT, b"/", Follow::Yes).unwrap(), ROOT);
    assert_eq!(
        t.resolve_parent(ROOT, b"/a/new").unwrap(),
        (a, b"new".to_vec())
    );
    assert_eq!(t.resolve_parent(a, b"x/").unwrap(), (a, b"x".to_vec()));
    assert!(matches!(
        t.resolve_parent(ROOT, b"/a/f/x"),
        Err(FsError::NotDir)
    ));
}

#[test]
fn hard_links_share_an_inode_across_freezes() {
    let mut t = tree();
    let a = t.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = t.mkdir(ROOT, b"b", 0o755, 0, 0).unwrap();
    let x = t.create_file(a, b"x", 0o644, 0, 0).unwrap();
    t.write_at(x, 0, b"one").unwrap();
    t.link(x, b, b"y").unwrap();
    assert_eq!(t.metadata(x).unwrap().nlink, 2);
    t.write_at(x, 0, b"two").unwrap();
    let y = t.lookup(b, b"y").unwrap();
    assert_eq!(read_all(&t, y), b"two");
    let s1 = t.snapshot().unwrap();

    // Reopen; touch only /a/x. /b stays unexpanded until the freeze.
    let mut t2 = Tree::from_snapshot(&s1);
    let x2 = path(&mut t2, "/a/x");
    assert_eq!(t2.metadata(x2).unwrap().nlink, 2);
    t2.write_at(x2, 0, b"333").unwrap();
    let s2 = t2.snapshot().unwrap();
    let mut t3 = Tree::from_snapshot(&s2);
    let x3 = path(&mut t3, "/a/x");
    let y3 = path(&mut t3, "/b/y");
    assert_eq!(x3, y3);
    assert_eq!(read_all(&t3, y3), b"333");

    // Unlinking one name updates the other's link count.
    t3.unlink(ROOT, b"a").unwrap_err();
    let a3 = path(&mut t3, "/a");
    t3.unlink(a3, b"x").unwrap();
    let s3 = t3.snapshot().unwrap();
    let mut t4 = Tree::from_snapshot(&s3);
    let y4 = path(&mut t4, "/b/y");
    assert_eq!(t4.metadata(y4).unwrap().nlink, 1);
    assert_eq!(read_all(&t4, y4), b"333");
}

#[test]
fn lazily_opened_links_write_through() {
    let mut t = tree();
    let a = t.mkdir(ROOT, b"a", 0o755, 0, 0).unwrap();
    let b = t.mkdir(ROOT, b"b", 0o755, 0, 0).unwrap();
    let x = t.create_file(a, b"x", 0o644, 0, 0).unwrap();
    t.link(x, b, b"y").unwrap();
    let s = t.snapshot().unwrap();
    let mut t2 = Tree::from_snapshot(&s);
    let y = path(&mut t2, "/b/y");
    t2.write_at(y, 0, b"via y").unwrap();
    let x = path(&mut t2, "/a/x");
    assert_eq!(x, y);
    assert_eq!(read_all(&t2, x), b"via y");
}

#[test]
fn freezing_shares_untouched_subtrees() {
    let mut t = tree();
    for d in [&b"a"[..], b"b"] {
        let dir = t.mkdir(ROOT, d, 0o755, 0, 0).unwrap();
        let f = t.create_file(dir, b"f", 0o644, 0, 0).unwrap();
        t.write_at(f, 0, d).unwrap();
    }
    let s1 = t.snapshot().unwrap();
    // No change: the very same root.
    assert!(Arc::ptr_eq(&t.snapshot().unwrap().root, &s1.root));
    let mut t2 = Tree::from_snapshot(&s1);
    assert!(t2.snapshot().unwrap().ptr_eq(&s1));
    let f = path(&mut t2, "/a/f");
    t2.write_at(f, 0, b"A").unwrap();
    let s2 = t2.snapshot().unwrap();
    let e1 = &s1.root.as_dir().unwrap().entries;
    let e2 = &s2.root.as_dir().unwrap().entries;
    assert!(Arc::ptr_eq(&e1[&b"b"[..]], &e2[&b"b"[..]]));
    assert!(!Arc::ptr_eq(&e1[&b"a"[..]], &e2[&b"a"[..]]));
    assert_ne!(s1.id(), s2.id());
    // Only looking (expanding) does not change anything.
    let mut t3 = Tree::from_snapshot(&s2);
    path(&mut t3, "/a/f");
    names(&mut t3, ROOT);
    assert!(t3.snapshot().unwrap().ptr_eq(&s2));
}

#[test]
fn snapshot_id_depends_on_content_not_history() {
    let build = |order: &[&str]| {
        let mut t = tree();
        for n in order {
            let f = t.create_file(ROOT, n.as_bytes(), 0o644, 0, 0).unwrap();
            t.write_at(f, 0, n.as_bytes()).unwrap();
        }
        t.snapshot().unwrap().id()
    };
    assert_eq!(build(&["a", "b"]), build(&["b", "a"]));
    assert_ne!(build(&["a", "b"]), build(&["a", "c"]));
    let mut t = tree();
    let f = t.create_file(ROOT, b"a", 0o644, 0, 0).unwrap();
    let s1 = t.snapshot().unwrap().id();
    t.chmod(f, 0o600).unwrap();
    let s2 = t.snapshot().unwrap().id();
    t.set_xattr(f, b"user.k", b"v").unwrap();
    let s3 = t.snapshot().unwrap().id();
    assert!(s1 != s2 && s2 != s3 && s1 != s3);
}

#[test]
fn hard_link_structure_is_part_of_the_id() {
    let mk = |linked: bool| {
        let mut t = tree();
        let x = t.create_file(ROOT, b"x", 0o644, 0, 0).unwrap();
        let y = t.create_file(ROOT, b"y", 0o644, 0, 0).unwrap();
        let z = t.create_file(ROOT, b"z", 0o644, 0, 0).unwrap();
        let w = t.create_file(ROOT, b"w", 0o644, 0, 0).unwrap();
        if linked {
            t.unlink(ROOT, b"z").unwrap();
            t.unlink(ROOT, b"w").unwrap();
            t.link(x, ROOT, b"w").unwrap();
            t.link(y, ROOT, b"z").unwrap();
        } else {
            t.unlink(ROOT, b"z").unwrap();
            t.unlink(ROOT, b"y").unwrap();
            t.link(x, ROOT, b"y").unwrap();
            t.link(w, ROOT, b"z").unwrap();
        }
        let _ = z;
        t.snapshot().unwrap().id()
    };
    assert_ne!(mk(true), mk(false));
}

#[test]
fn large_files_spill_and_become_blobs() {
    let store = Store::temp().unwrap();
    let mut t = Tree::new(&store);
    let f = t.create_file(ROOT, b"big", 0o644, 0, 0).unwrap();
    let chunk: Vec<u8> = (0..=255u8).cycle().take(50_000).collect();
    for i in 0..4u64 {
        t.write_at(f, i * 50_000, &chunk).unwrap();
    }
    assert!(matches!(t.data(f).unwrap(), Data::Spill { .. }));
    assert_eq!(t.metadata(f).unwrap().size, 200_000);
    let s = t.snapshot().unwrap();
    let Data::Stored(Content::Blob { digest, size }) = t.data(f).unwrap() else {
        panic!("not a blob")
    };
    assert_eq!(*size, 200_000);
    assert!(store.contains(digest));
    let mut t2 = Tree::from_snapshot(&s);
    let f2 = path(&mut t2, "/big");
    let mut buf = [0u8; 4];
    assert_eq!(t2.read_at(f2, 150_001, &mut buf).unwrap(), 4);
    assert_eq!(buf, [1, 2, 3, 4]);
    // copy-on-write of a blob: the stored blob is untouched
    t2.write_at(f2, 0, b"XY").unwrap();
    let mut orig = Vec::new();
    store
        .open_blob(digest)
        .unwrap()
        .read_to_end(&mut orig)
        .unwrap();
    assert_eq!(&orig[..2], &[0, 1]);
    assert_eq!(&read_all(&t2, f2)[..3], b"XY\x02");
    t2.set_len(f2, 3).unwrap();
    assert!(matches!(t2.data(f2).unwrap(), Data::Mem(_)));
    assert_eq!(read_all(&t2, f2), b"XY\x02");
    let mut t3 = Tree::from_snapshot(&s);
    let f3 = path(&mut t3, "/big");
    t3.set_len(f3, 5).unwrap();
    assert!(matches!(t3.data(f3).unwrap(), Data::Mem(_)));
    assert_eq!(read_all(&t3, f3), [0, 1, 2, 3, 4]);
    t3.set_len(f3, 0).unwrap();
    assert_eq!(t3.metadata(f3).unwrap().size, 0);
}

#[test]
fn write_from_streams_large_input_to_the_store() {
    let store = Store::temp().unwrap();
    let mut t = Tree::new(&store);
    let f = t.create_file(ROOT, b"f", 0o644, 0, 0).unwrap();
    let n = t.write_from(f, io::repeat(7).take(1_000_000)).unwrap();
    assert_eq!(n, 1_000_000);
    assert!(matches!(
        t.data(f).unwrap(),
        Data::Stored(Content::Blob { .. })
    ));
    let all = read_all(&t, f);
    assert_eq!(all.len(), 1_000_000);
    assert!(all.iter().all(|&b| b == 7));
    assert_eq!(t.write_from(f, &b"small"[..]).unwrap(), 5);
    assert_eq!(read_all(&t, f), b"small");
}

#[test]
fn metadata_ops_and_xattrs() {
    let mut t = tree();
    t.set_clock(Timestamp::from_secs(5));
    let f = t.create_file(ROOT, b"f", 0o644, 0, 0).unwrap();
    t.set_clock(Timestamp::from_secs(9));
    t.chmod(f, 0o107777).unwrap();
    t.chown(f, Some(1000), None).unwrap();
    t.set_times(f, Some(Timestamp::from_secs(1)), None).unwrap();
    let m = t.metadata(f).unwrap();
    assert_eq!((m.mode, m.uid, m.gid), (0o7777, 1000, 0));
    assert_eq!(m.atime, Timestamp::from_secs(1));
    assert_eq!(m.mtime, Timestamp::from_secs(5));
    assert_eq!(m.ctime, Timestamp::from_secs(9));
    assert!(matches!(t.get_xattr(f, b"user.a"), Err(FsError::NoAttr)));
    t.set_xattr(f, b"user.b", b"2").unwrap();
    t.set_xattr(f, b"user.a", b"1").unwrap();
    assert_eq!(
        t.list_xattr(f).unwrap(),
        vec![b"user.a".to_vec(), b"user.b".to_vec()]
    );
    t.remove_xattr(f, b"user.a").unwrap();
    assert!(matches!(t.remove_xattr(f, b"user.a"), Err(FsError::NoAttr)));
    let dev = t
        .mknod(ROOT, b"null", FileType::CharDevice, 0o666, 0x0103, 0, 0)
        .unwrap();
    assert_eq!(t.metadata(dev).unwrap().rdev, 0x0103);
    assert!(matches!(
        t.link(ROOT, ROOT, b"x"),
        Err(FsError::NotPermitted)
    ));
    assert!(matches!(
        t.symlink(ROOT, b"s", &[b'x'; 4096], 0, 0),
        Err(FsError::NameTooLong)
    ));
    assert!(matches!(
        t.set_xattr(f, b"user.big", &vec![0; 65537]),
        Err(FsError::TooBig)
    ));
    assert_eq!(FsError::NotEmpty.errno(), 39);
}

#[test]
fn inode_numbers_are_deterministic() {
    let run = || {
        let mut t = tree();
        let d = t.mkdir(ROOT, b"d", 0o755, 0, 0).unwrap();
        for n in ["z", "a", "m"] {
            t.create_file(d, n.as_bytes(), 0o644, 0, 0).unwrap();
        }
        let s = t.snapshot().unwrap();
        let mut t2 = Tree::from_snapshot(&s);
        let d2 = path(&mut t2, "/d");
        t2.readdir(d2)
            .unwrap()
            .iter()
            .map(|e| e.ino.get())
            .collect::<Vec<_>>()
    };
    let a = run();
    assert_eq!(a, run());
    assert_eq!(a, vec![3, 4, 5]);
}

#[test]
fn scratch_trees_never_name_their_contents_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut t = Tree::scratch(&store);
    let root = t.root();
    let f = t.create_file(root, b"big", 0o644, 0, 0).unwrap();
    let body = vec![b's'; INLINE_MAX * 3];
    assert_eq!(t.write_from(f, &body[..]).unwrap(), body.len() as u64);
    let g = t.create_file(root, b"grown", 0o644, 0, 0).unwrap();
    t.write_at(g, 0, &body).unwrap();
    let mut back = vec![0; body.len()];
    assert_eq!(t.read_at(f, 0, &mut back).unwrap(), body.len());
    assert_eq!(back, body);
    let names: Vec<_> = walkdir_files(dir.path());
    assert!(names.is_empty(), "scratch data has names: {names:?}");
}

fn walkdir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn snapshot_digest_is_the_committed_content() {
    let mut t = tree();
    let root = t.root();
    let f = t.create_file(root, b"f", 0o755, 0, 0).unwrap();
    t.write_at(f, 0, b"committed").unwrap();
    assert_eq!(
        t.snapshot_digest(f).unwrap(),
        None,
        "new file has no origin"
    );
    let snap = t.snapshot().unwrap();
    let mut t = Tree::from_snapshot(&snap);
    let f = path(&mut t, "/f");
    let committed = Digest::of(b"committed");
    assert_eq!(t.snapshot_digest(f).unwrap(), Some(committed));
    // Changing the file does not change what the snapshot holds.
    t.write_at(f, 0, b"CHANGED").unwrap();
    assert_eq!(t.snapshot_digest(f).unwrap(), Some(committed));
    assert_ne!(Digest::of(&read_all(&t, f)), committed);
    let g = t.create_file(root, b"g", 0o755, 0, 0).unwrap();
    t.rename(root, b"g", root, b"f").unwrap();
    let f = path(&mut t, "/f");
    assert_eq!(f, g);
    assert_eq!(
        t.snapshot_digest(f).unwrap(),
        None,
        "replaced by a new file"
    );
}

#[test]
fn small_files_past_the_inline_budget_go_to_the_store() {
    let mut t = tree();
    let root = t.root();
    let per_file = INLINE_MAX as u64;
    let fit = INLINE_BUDGET / per_file;
    let body = |i: u64| {
        let mut b = vec![(i % 251) as u8; INLINE_MAX];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b
    };
    for i in 0..fit + 3 {
        let f = t
            .create_file(root, format!("f{i}").as_bytes(), 0o644, 0, 0)
            .unwrap();
        t.write_from(f, &body(i)[..]).unwrap();
        let in_memory = matches!(t.data(f).unwrap(), Data::Mem(_));
        assert_eq!(in_memory, i < fit, "file {i}");
    }
    // Written with write_at, a new small file now spills instead of growing memory.
    let g = t.create_file(root, b"g", 0o644, 0, 0).unwrap();
    t.write_at(g, 0, b"small").unwrap();
    assert!(matches!(t.data(g).unwrap(), Data::Spill { .. }));
    assert_eq!(read_all(&t, g), b"small");
    // Contents read back the same and a snapshot sees the same files either way.
    let last = path(&mut t, &format!("/f{}", fit + 2));
    assert_eq!(read_all(&t, last), body(fit + 2));
    let snap = t.snapshot().unwrap();
    let mut again = Tree::from_snapshot(&snap);
    let last = path(&mut again, &format!("/f{}", fit + 2));
    assert_eq!(read_all(&again, last), body(fit + 2));
    assert!(crate::diff(&snap, &again.snapshot().unwrap()).is_empty());
}

#[test]
fn sparse_extensions_are_free_until_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::new(&Store::open(dir.path()).unwrap());
    t.set_disk_quota(DiskQuota::new(1 << 20));
    let root = t.root();
    let f = t.create_file(root, b"big", 0o644, 0, 0).unwrap();
    t.set_len(f, 1 << 40).unwrap();
    assert_eq!(t.metadata(f).unwrap().size, 1 << 40);
    let mut buf = [1u8; 16];
    assert_eq!(t.read_at(f, 1 << 39, &mut buf).unwrap(), 16);
    assert_eq!(buf, [0; 16]);
    // Storing it would write a terabyte: refused before a byte is written.
    assert!(matches!(
        t.snapshot(),
        Err(FsError::DiskQuota { limit }) if limit == 1 << 20
    ));
    assert_eq!(walkdir_files(dir.path()), Vec::<std::path::PathBuf>::new());
}

#[test]
fn writes_are_charged_once() {
    let mut t = tree();
    t.set_disk_quota(DiskQuota::new(1 << 20));
    let root = t.root();
    let f = t.create_file(root, b"f", 0o644, 0, 0).unwrap();
    let chunk = vec![7u8; 100 << 10];
    for i in 0..6 {
        t.write_at(f, i * chunk.len() as u64, &chunk).unwrap();
    }
    // 600 KiB written and then stored: charged once, so within 1 MiB.
    t.snapshot().unwrap();
    let g = t.create_file(root, b"g", 0o644, 0, 0).unwrap();
    let err = (0..6)
        .map(|i| t.write_at(g, i * chunk.len() as u64, &chunk))
        .find_map(Result::err);
    assert!(matches!(err, Some(FsError::DiskQuota { .. })), "{err:?}");
    // A stream into the store is bounded too.
    let h = t.create_file(root, b"h", 0o644, 0, 0).unwrap();
    let endless = std::io::repeat(1).take(2 << 20);
    assert!(matches!(
        t.write_from(h, endless),
        Err(FsError::DiskQuota { .. })
    ));
}
