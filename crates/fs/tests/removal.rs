//! Removing what base layers hold: every kind of entry a layer can bring (files, hard
//! links within and across layers, symlinks, directories extended by a later layer,
//! whiteouts, opaque directories, long and odd names, a large directory), removed entry
//! by entry as `rm -rf` does, must leave the directory empty, and the layer recording the
//! removal must reproduce that on the base.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
mod common;

use common::layer_tar::{E, layer};
use common::*;
use kiln_fs::{FileType, Ino, Snapshot, Tree, write_layer};

/// Files in `man/big` (enough that any batching reader needs many rounds).
const BIG: usize = 5_000;

/// The two layers of a Debian-like `/usr/share/man`.
fn base_layers() -> (Vec<u8>, Vec<u8>) {
    let long = format!("man/man1/{}.1.gz", "a-very-long-page-name-".repeat(8));
    let big: Vec<String> = (0..BIG)
        .map(|i| format!("man/big/page-with-a-rather-long-name-number-{i:05}.1.gz"))
        .collect();
    let mut lower = vec![
        E::Dir("man", 0o755),
        E::Dir("man/man1", 0o755),
        E::File("man/man1/ls.1.gz", 0o644, b"ls"),
        E::File("man/man1/gone.1.gz", 0o644, b"whited out above"),
        E::File(&long, 0o644, b"long"),
        E::File("man/man1/with space\tand tab.1.gz", 0o644, b"odd"),
        E::File("man/man1/caf\u{e9}.1.gz", 0o644, b"utf8"),
        E::Hard("man/man1/dir.1.gz", "man/man1/ls.1.gz"),
        E::Sym("man/man1/vdir.1.gz", "ls.1.gz"),
        E::Sym("man/man1/dangling.1.gz", "nowhere.1.gz"),
        E::Dir("man/man8", 0o755),
        E::File("man/man8/mount.8.gz", 0o644, b"mount"),
        E::Dir("man/de", 0o755),
        E::Dir("man/de/man1", 0o755),
        E::File("man/de/man1/old.1.gz", 0o644, b"hidden by opaque"),
        E::Sym("man/man7", "man8"),
        E::Dir("man/big", 0o755),
    ];
    lower.extend(big.iter().map(|p| E::File(p, 0o644, b"x")));
    let upper = vec![
        E::Dir("man", 0o755),
        E::Dir("man/man1", 0o755),
        E::File("man/man1/.wh.gone.1.gz", 0o644, b""),
        E::File("man/man1/new.1.gz", 0o644, b"upper"),
        E::Hard("man/man1/cross.1.gz", "man/man8/mount.8.gz"),
        E::Dir("man/de", 0o755),
        E::File("man/de/.wh..wh..opq", 0o644, b""),
        E::Dir("man/de/man5", 0o755),
        E::File("man/de/man5/new.5.gz", 0o644, b"after opaque"),
        E::Dir("man/man8", 0o755),
        E::File("man/man8/umount.8.gz", 0o644, b"umount"),
    ];
    (layer(&lower), layer(&upper))
}

fn base() -> Snapshot {
    let (lower, upper) = base_layers();
    let mut t = Tree::new(&store());
    t.apply_layer(lower.as_slice()).unwrap();
    t.apply_layer(upper.as_slice()).unwrap();
    t.snapshot().unwrap()
}

/// Removes everything below `dir` one entry at a time, as `rm -rf dir/*` does: list,
/// recurse into directories (not through symlinks), unlink, then remove the directory.
fn rm_contents(t: &mut Tree, dir: Ino) {
    for entry in t.readdir(dir).unwrap() {
        if entry.file_type == FileType::Directory {
            let sub = t.lookup(dir, &entry.name).unwrap();
            rm_contents(t, sub);
            t.rmdir(dir, &entry.name).unwrap();
        } else {
            t.unlink(dir, &entry.name).unwrap();
        }
    }
}

#[test]
fn the_base_holds_every_kind_of_entry() {
    let mut t = Tree::from_snapshot(&base());
    assert!(!exists(&mut t, "/man/man1/gone.1.gz"), "whiteout applied");
    assert!(!exists(&mut t, "/man/de/man1"), "opaque directory applied");
    assert_eq!(read(&mut t, "/man/man1/cross.1.gz"), b"mount");
    assert_eq!(kind(&mut t, "/man/man1/vdir.1.gz"), FileType::Symlink);
    let ls = t.resolve(t.root(), b"/man/man1/ls.1.gz", kiln_fs::Follow::No);
    assert_eq!(t.metadata(ls.unwrap()).unwrap().nlink, 2);
    let big = mkdirs(&mut t, "/man/big");
    assert_eq!(t.readdir(big).unwrap().len(), BIG);
}

#[test]
fn removing_every_entry_of_a_layered_directory_empties_it() {
    let base = base();
    let mut t = Tree::from_snapshot(&base);
    let man = mkdirs(&mut t, "/man");
    rm_contents(&mut t, man);
    assert!(t.readdir(man).unwrap().is_empty());
    let removed = t.snapshot().unwrap();
    // The layer recording the removal whites out each top entry (and nothing below).
    let tar = write_layer(&base, &removed, i64::MAX, Vec::new()).unwrap();
    assert_eq!(
        tar_names(&tar),
        [
            "5 man/",
            "0 man/.wh.big",
            "0 man/.wh.de",
            "0 man/.wh.man1",
            "0 man/.wh.man7",
            "0 man/.wh.man8"
        ]
    );
    // Applied on the base, it gives the same empty directory.
    let mut again = Tree::from_snapshot(&base);
    again.apply_layer(tar.as_slice()).unwrap();
    assert_eq!(listing(&again.snapshot().unwrap()), listing(&removed));
}

#[test]
fn removing_one_hard_link_keeps_the_other_name() {
    let base = base();
    let mut t = Tree::from_snapshot(&base);
    let man8 = mkdirs(&mut t, "/man/man8");
    t.unlink(man8, b"mount.8.gz").unwrap();
    assert_eq!(read(&mut t, "/man/man1/cross.1.gz"), b"mount");
    let removed = t.snapshot().unwrap();
    let tar = write_layer(&base, &removed, i64::MAX, Vec::new()).unwrap();
    let mut again = Tree::from_snapshot(&base);
    again.apply_layer(tar.as_slice()).unwrap();
    assert_eq!(listing(&again.snapshot().unwrap()), listing(&removed));
}
