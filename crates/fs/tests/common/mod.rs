#![allow(dead_code)]

use std::io::Read;
use std::sync::Arc;

pub(crate) mod layer_tar;

use kiln_fs::{FileType, Follow, Ino, Snapshot, Store, Tree, diff};

pub(crate) fn store() -> Arc<Store> {
    Store::temp().unwrap()
}

pub(crate) fn mkdirs(t: &mut Tree, path: &str) -> Ino {
    let mut cur = t.root();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        cur = match t.lookup(cur, comp.as_bytes()) {
            Ok(i) => i,
            Err(_) => t.mkdir(cur, comp.as_bytes(), 0o755, 0, 0).unwrap(),
        };
    }
    cur
}

pub(crate) fn write(t: &mut Tree, path: &str, data: &[u8]) -> Ino {
    let (dir, name) = path.rsplit_once('/').unwrap();
    let d = mkdirs(t, dir);
    let f = match t.lookup(d, name.as_bytes()) {
        Ok(f) => f,
        Err(_) => t.create_file(d, name.as_bytes(), 0o644, 0, 0).unwrap(),
    };
    t.write_from(f, data).unwrap();
    f
}

pub(crate) fn read(t: &mut Tree, path: &str) -> Vec<u8> {
    let ino = t.resolve(t.root(), path.as_bytes(), Follow::No).unwrap();
    let mut out = Vec::new();
    t.open_read(ino).unwrap().read_to_end(&mut out).unwrap();
    out
}

pub(crate) fn exists(t: &mut Tree, path: &str) -> bool {
    t.resolve(t.root(), path.as_bytes(), Follow::No).is_ok()
}

pub(crate) fn kind(t: &mut Tree, path: &str) -> FileType {
    let ino = t.resolve(t.root(), path.as_bytes(), Follow::No).unwrap();
    t.metadata(ino).unwrap().file_type
}

/// A listing of everything in a snapshot (paths, metadata, contents) for equality
/// checks that do not depend on node sharing.
pub(crate) fn listing(s: &Snapshot) -> Vec<String> {
    let mut first_of: Vec<(kiln_fs::WalkEntry, String)> = Vec::new();
    s.walk()
        .map(|e| {
            let path = String::from_utf8_lossy(&e.path).into_owned();
            let mut line = format!(
                "{path} {:?} {:o} {}:{} {}.{} n{} r{}",
                e.file_type, e.mode, e.uid, e.gid, e.mtime.sec, e.mtime.nsec, e.nlink, e.rdev
            );
            if e.nlink > 1 && e.file_type != FileType::Directory {
                match first_of.iter().find(|(f, _)| f.same_object(&e)) {
                    Some((_, p)) => line.push_str(&format!(" link={p}")),
                    None => first_of.push((e.clone(), path.clone())),
                }
            }
            if let Some(t) = &e.link_target {
                line.push_str(&format!(" -> {}", String::from_utf8_lossy(t)));
            }
            for (k, v) in e.xattrs() {
                line.push_str(&format!(" x:{}={:?}", String::from_utf8_lossy(k), v));
            }
            if e.file_type == FileType::Regular {
                let mut data = Vec::new();
                s.open_file(&e).unwrap().read_to_end(&mut data).unwrap();
                line.push_str(&format!(" data={}", kiln_fs::Digest::of(&data)));
            }
            line
        })
        .collect()
}

pub(crate) fn changes(a: &Snapshot, b: &Snapshot) -> Vec<String> {
    diff(a, b)
        .into_iter()
        .map(|c| format!("{:?} {}", c.kind, String::from_utf8_lossy(&c.path)))
        .collect()
}

/// Names of the entries of a tar stream, in order, with type flags.
pub(crate) fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.header().entry_type().as_byte() as char;
            let mut s = format!("{t} {}", String::from_utf8_lossy(&e.path_bytes()));
            if let Some(l) = e.link_name_bytes() {
                s.push_str(&format!(" -> {}", String::from_utf8_lossy(&l)));
            }
            s
        })
        .collect()
}
