//! Property tests: the tree agrees with a simple model under random operations;
//! export -> import reproduces a snapshot; tar output is byte-identical.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use std::collections::BTreeMap;

use common::*;
use kiln_fs::{FileType, Follow, FsError, Ino, Snapshot, Tree, write_layer, write_snapshot};
use proptest::prelude::*;

/// A path: either literal, or "the n-th existing path" (picked from the model's
/// state when the operation runs), so that operations often hit real objects.
#[derive(Clone, Debug)]
enum P {
    Lit(Vec<u8>),
    Existing(usize),
}

#[derive(Clone, Debug)]
enum Op<P> {
    Create(P),
    Write(P, u64, Vec<u8>),
    Truncate(P, u64),
    Mkdir(P),
    Unlink(P),
    Rmdir(P),
    Rename(P, P),
    Link(P, P),
    Symlink(P),
    Chmod(P, u32),
    /// Freeze and reopen the tree from the snapshot (exercises lazy loading).
    Freeze,
}

/// Paths over a tiny namespace, mostly shallow, so that operations often hit
/// existing objects.
fn path() -> impl Strategy<Value = P> {
    prop_oneof![
        1 => lit_path().prop_map(P::Lit),
        1 => any::<usize>().prop_map(P::Existing),
    ]
}

fn lit_path() -> impl Strategy<Value = Vec<u8>> {
    let name = || prop::sample::select(vec!["a", "b", "c", "d"]);
    let comps = prop_oneof![
        5 => prop::collection::vec(name(), 1..=1),
        3 => prop::collection::vec(name(), 2..=2),
        1 => prop::collection::vec(name(), 3..=3),
    ];
    comps.prop_map(|c| c.join("/").into_bytes())
}

type Concrete = Op<Vec<u8>>;

impl Op<P> {
    fn concrete(&self, m: &Model) -> Concrete {
        let all = m.paths();
        let c = |p: &P| match p {
            P::Lit(v) => v.clone(),
            P::Existing(_) if all.is_empty() => b"a".to_vec(),
            P::Existing(i) => all[i % all.len()].clone(),
        };
        match self {
            Op::Create(p) => Op::Create(c(p)),
            Op::Write(p, o, d) => Op::Write(c(p), *o, d.clone()),
            Op::Truncate(p, l) => Op::Truncate(c(p), *l),
            Op::Mkdir(p) => Op::Mkdir(c(p)),
            Op::Unlink(p) => Op::Unlink(c(p)),
            Op::Rmdir(p) => Op::Rmdir(c(p)),
            Op::Rename(a, b) => Op::Rename(c(a), c(b)),
            Op::Link(a, b) => Op::Link(c(a), c(b)),
            Op::Symlink(p) => Op::Symlink(c(p)),
            Op::Chmod(p, m) => Op::Chmod(c(p), *m),
            Op::Freeze => Op::Freeze,
        }
    }
}

fn op() -> impl Strategy<Value = Op<P>> {
    prop_oneof![
        3 => path().prop_map(Op::Create),
        3 => (path(), 0..100_000u64, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(p, o, d)| Op::Write(p, o, d)),
        1 => (path(), 0..70_000u64).prop_map(|(p, l)| Op::Truncate(p, l)),
        3 => path().prop_map(Op::Mkdir),
        1 => path().prop_map(Op::Unlink),
        1 => path().prop_map(Op::Rmdir),
        2 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        3 => (any::<usize>(), lit_path()).prop_map(|(a, b)| Op::Link(P::Existing(a), P::Lit(b))),
        1 => path().prop_map(Op::Symlink),
        1 => (path(), 0..0o7777u32).prop_map(|(p, m)| Op::Chmod(p, m)),
        1 => Just(Op::Freeze),
    ]
}

// ---- the model ---------------------------------------------------------------

#[derive(Clone, Debug)]
enum MNode {
    Dir {
        mode: u32,
        entries: BTreeMap<Vec<u8>, MNode>,
    },
    Leaf(usize),
}

#[derive(Clone, Debug)]
struct Leaf {
    symlink: bool,
    data: Vec<u8>,
    mode: u32,
    nlink: u32,
}

struct Model {
    root: MNode,
    leaves: Vec<Leaf>,
}

type R<T> = Result<T, i32>;
/// Parent directory path, final name, and the node there if any.
type Found = (Vec<Vec<u8>>, Vec<u8>, Option<MNode>);
const ENOENT: i32 = 2;
const EEXIST: i32 = 17;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const ENOTEMPTY: i32 = 39;
const EPERM: i32 = 1;

fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|&b| b == b'/').map(|c| c.to_vec()).collect()
}

impl Model {
    fn new() -> Model {
        Model {
            root: MNode::Dir {
                mode: 0o755,
                entries: BTreeMap::new(),
            },
            leaves: Vec::new(),
        }
    }

    /// The directory holding the last component; errors like path resolution.
    fn dir_of(&self, comps: &[Vec<u8>]) -> R<Vec<Vec<u8>>> {
        let mut cur = &self.root;
        for c in &comps[..comps.len() - 1] {
            let MNode::Dir { entries, .. } = cur else {
                unreachable!()
            };
            cur = entries.get(c).ok_or(ENOENT)?;
            if let MNode::Leaf(id) = cur {
                // Symlinks in the model all dangle.
                return Err(if self.leaves[*id].symlink {
                    ENOENT
                } else {
                    ENOTDIR
                });
            }
        }
        Ok(comps[..comps.len() - 1].to_vec())
    }

    fn dir_mut(&mut self, dir: &[Vec<u8>]) -> &mut BTreeMap<Vec<u8>, MNode> {
        let mut cur = &mut self.root;
        for c in dir {
            let MNode::Dir { entries, .. } = cur else {
                unreachable!()
            };
            cur = entries.get_mut(c).unwrap();
        }
        match cur {
            MNode::Dir { entries, .. } => entries,
            MNode::Leaf(_) => unreachable!(),
        }
    }

    fn get(&mut self, p: &[u8]) -> R<Found> {
        let comps = split(p);
        let dir = self.dir_of(&comps)?;
        let name = comps.last().unwrap().clone();
        let node = self.dir_mut(&dir).get(&name).cloned();
        Ok((dir, name, node))
    }

    fn new_leaf(&mut self, symlink: bool, mode: u32) -> MNode {
        let data = if symlink {
            b"/nonexistent/zz".to_vec()
        } else {
            Vec::new()
        };
        self.leaves.push(Leaf {
            symlink,
            data,
            mode,
            nlink: 1,
        });
        MNode::Leaf(self.leaves.len() - 1)
    }

    fn file_leaf(&mut self, p: &[u8]) -> R<usize> {
        match self.get(p)?.2 {
            None => Err(ENOENT),
            Some(MNode::Dir { .. }) => Err(EISDIR),
            Some(MNode::Leaf(id)) if self.leaves[id].symlink => Err(EINVAL),
            Some(MNode::Leaf(id)) => Ok(id),
        }
    }

    /// Every path in the tree, sorted (without a leading `/`).
    fn paths(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut stack = vec![(Vec::new(), &self.root)];
        while let Some((prefix, node)) = stack.pop() {
            let MNode::Dir { entries, .. } = node else {
                continue;
            };
            for (name, child) in entries {
                let mut p = prefix.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name);
                out.push(p.clone());
                stack.push((p, child));
            }
        }
        out.sort();
        out
    }

    fn apply(&mut self, op: &Concrete) -> R<()> {
        match op {
            Op::Create(p) | Op::Mkdir(p) | Op::Symlink(p) => {
                let (dir, name, node) = self.get(p)?;
                if node.is_some() {
                    return Err(EEXIST);
                }
                let new = match op {
                    Op::Mkdir(_) => MNode::Dir {
                        mode: 0o755,
                        entries: BTreeMap::new(),
                    },
                    Op::Symlink(_) => self.new_leaf(true, 0o777),
                    _ => self.new_leaf(false, 0o644),
                };
                self.dir_mut(&dir).insert(name, new);
                Ok(())
            }
            Op::Write(p, off, data) => {
                let id = self.file_leaf(p)?;
                if data.is_empty() {
                    return Ok(());
                }
                let d = &mut self.leaves[id].data;
                let end = *off as usize + data.len();
                if d.len() < end {
                    d.resize(end, 0);
                }
                d[*off as usize..end].copy_from_slice(data);
                Ok(())
            }
            Op::Truncate(p, len) => {
                let id = self.file_leaf(p)?;
                self.leaves[id].data.resize(*len as usize, 0);
                Ok(())
            }
            Op::Unlink(p) => match self.get(p)? {
                (_, _, None) => Err(ENOENT),
                (_, _, Some(MNode::Dir { .. })) => Err(EISDIR),
                (dir, name, Some(MNode::Leaf(id))) => {
                    self.dir_mut(&dir).remove(&name);
                    self.leaves[id].nlink -= 1;
                    Ok(())
                }
            },
            Op::Rmdir(p) => match self.get(p)? {
                (_, _, None) => Err(ENOENT),
                (_, _, Some(MNode::Leaf(_))) => Err(ENOTDIR),
                (_, _, Some(MNode::Dir { entries, .. })) if !entries.is_empty() => Err(ENOTEMPTY),
                (dir, name, Some(_)) => {
                    self.dir_mut(&dir).remove(&name);
                    Ok(())
                }
            },
            Op::Rename(a, b) => self.rename(a, b),
            Op::Link(a, b) => {
                let (_, _, src) = self.get(a)?;
                let src = src.ok_or(ENOENT)?;
                let (dir, name, dst) = self.get(b)?;
                let MNode::Leaf(id) = src else {
                    return Err(EPERM);
                };
                if dst.is_some() {
                    return Err(EEXIST);
                }
                self.dir_mut(&dir).insert(name, MNode::Leaf(id));
                self.leaves[id].nlink += 1;
                Ok(())
            }
            Op::Chmod(p, mode) => match self.get(p)? {
                (_, _, None) => Err(ENOENT),
                (dir, name, Some(MNode::Dir { .. })) => {
                    if let Some(MNode::Dir { mode: m, .. }) = self.dir_mut(&dir).get_mut(&name) {
                        *m = *mode;
                    }
                    Ok(())
                }
                (_, _, Some(MNode::Leaf(id))) => {
                    self.leaves[id].mode = *mode;
                    Ok(())
                }
            },
            Op::Freeze => Ok(()),
        }
    }

    fn rename(&mut self, a: &[u8], b: &[u8]) -> R<()> {
        let (sdir, sname, src) = self.get(a)?;
        let (ddir, dname, dst) = self.get(b)?;
        let src = src.ok_or(ENOENT)?;
        if let (MNode::Leaf(x), Some(MNode::Leaf(y))) = (&src, &dst)
            && x == y
        {
            return Ok(());
        }
        let src_is_dir = matches!(src, MNode::Dir { .. });
        if src_is_dir
            && b.len() >= a.len()
            && b.starts_with(a)
            && (b.len() == a.len() || b[a.len()] == b'/')
        {
            // Moving into itself; renaming a directory onto itself is a no-op.
            return if a == b { Ok(()) } else { Err(EINVAL) };
        }
        match (&src, &dst) {
            (MNode::Dir { .. }, Some(MNode::Leaf(_))) => return Err(ENOTDIR),
            (MNode::Leaf(_), Some(MNode::Dir { .. })) => return Err(EISDIR),
            (MNode::Dir { .. }, Some(MNode::Dir { entries, .. })) if !entries.is_empty() => {
                return Err(ENOTEMPTY);
            }
            _ => {}
        }
        if let Some(MNode::Leaf(id)) = dst {
            self.leaves[id].nlink -= 1;
        }
        self.dir_mut(&sdir).remove(&sname);
        self.dir_mut(&ddir).insert(dname, src);
        Ok(())
    }

    fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut first: BTreeMap<usize, String> = BTreeMap::new();
        self.list(&self.root, String::new(), &mut first, &mut out);
        out
    }

    fn list(
        &self,
        node: &MNode,
        path: String,
        first: &mut BTreeMap<usize, String>,
        out: &mut Vec<String>,
    ) {
        let MNode::Dir { entries, .. } = node else {
            unreachable!()
        };
        for (name, child) in entries {
            let p = format!("{path}/{}", String::from_utf8_lossy(name));
            match child {
                MNode::Dir { mode, .. } => {
                    out.push(format!("{p} dir {mode:o}"));
                    self.list(child, p, first, out);
                }
                MNode::Leaf(id) => {
                    let l = &self.leaves[*id];
                    let kind = if l.symlink { "sym" } else { "file" };
                    let link = first.entry(*id).or_insert_with(|| p.clone()).clone();
                    out.push(format!(
                        "{p} {kind} {:o} n{} {} first={link}",
                        l.mode,
                        l.nlink,
                        kiln_fs::Digest::of(&l.data)
                    ));
                }
            }
        }
    }
}

// ---- the tree under test -----------------------------------------------------

fn tree_apply(t: &mut Tree, op: &Concrete) -> Result<(), FsError> {
    let root = t.root();
    match op {
        Op::Create(p) => t
            .resolve_parent(root, p)
            .and_then(|(d, n)| t.create_file(d, &n, 0o644, 0, 0))
            .map(drop),
        Op::Mkdir(p) => t
            .resolve_parent(root, p)
            .and_then(|(d, n)| t.mkdir(d, &n, 0o755, 0, 0))
            .map(drop),
        Op::Symlink(p) => t
            .resolve_parent(root, p)
            .and_then(|(d, n)| t.symlink(d, &n, b"/nonexistent/zz", 0, 0))
            .map(drop),
        Op::Write(p, off, data) => t
            .resolve(root, p, Follow::No)
            .and_then(|i| t.write_at(i, *off, data))
            .map(drop),
        Op::Truncate(p, len) => t
            .resolve(root, p, Follow::No)
            .and_then(|i| t.set_len(i, *len)),
        Op::Unlink(p) => t.resolve_parent(root, p).and_then(|(d, n)| t.unlink(d, &n)),
        Op::Rmdir(p) => t.resolve_parent(root, p).and_then(|(d, n)| t.rmdir(d, &n)),
        Op::Rename(a, b) => {
            let (sd, sn) = t.resolve_parent(root, a)?;
            let (dd, dn) = t.resolve_parent(root, b)?;
            t.rename(sd, &sn, dd, &dn)
        }
        Op::Link(a, b) => {
            let src = t.resolve(root, a, Follow::No)?;
            let (d, n) = t.resolve_parent(root, b)?;
            t.link(src, d, &n)
        }
        Op::Chmod(p, m) => t.resolve(root, p, Follow::No).and_then(|i| t.chmod(i, *m)),
        Op::Freeze => {
            let s = t.snapshot()?;
            *t = Tree::from_snapshot(&s);
            Ok(())
        }
    }
}

fn tree_listing(t: &mut Tree) -> Vec<String> {
    let mut out = Vec::new();
    let mut first: BTreeMap<Ino, String> = BTreeMap::new();
    let root = t.root();
    tree_list(t, root, String::new(), &mut first, &mut out);
    out
}

fn tree_list(
    t: &mut Tree,
    dir: Ino,
    path: String,
    first: &mut BTreeMap<Ino, String>,
    out: &mut Vec<String>,
) {
    for e in t.readdir(dir).unwrap() {
        let p = format!("{path}/{}", String::from_utf8_lossy(&e.name));
        let m = t.metadata(e.ino).unwrap();
        match m.file_type {
            FileType::Directory => {
                out.push(format!("{p} dir {:o}", m.mode));
                tree_list(t, e.ino, p, first, out);
            }
            FileType::Symlink | FileType::Regular => {
                let (kind, data) = if m.file_type == FileType::Symlink {
                    ("sym", t.readlink(e.ino).unwrap())
                } else {
                    let mut buf = vec![0; m.size as usize];
                    assert_eq!(t.read_at(e.ino, 0, &mut buf).unwrap(), buf.len());
                    ("file", buf)
                };
                let link = first.entry(e.ino).or_insert_with(|| p.clone()).clone();
                out.push(format!(
                    "{p} {kind} {:o} n{} {} first={link}",
                    m.mode,
                    m.nlink,
                    kiln_fs::Digest::of(&data)
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Applies operations to a tree and to a model kept in step (the model picks the
/// concrete paths).
fn run(t: &mut Tree, m: &mut Model, ops: &[Op<P>]) {
    for op in ops {
        let op = op.concrete(m);
        let _ = m.apply(&op);
        let _ = tree_apply(t, &op);
    }
}

fn build(ops: &[Op<P>]) -> (Snapshot, Model) {
    let mut t = Tree::new(&store());
    let mut m = Model::new();
    run(&mut t, &mut m, ops);
    (t.snapshot().unwrap(), m)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn tree_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut model = Model::new();
        let mut t = Tree::new(&store());
        for (i, op) in ops.iter().enumerate() {
            let op = op.concrete(&model);
            let want = model.apply(&op);
            let got = tree_apply(&mut t, &op).map_err(|e| e.errno());
            prop_assert_eq!(got, want, "op #{} {:?}", i, op);
        }
        prop_assert_eq!(tree_listing(&mut t), model.listing());
        let s = t.snapshot().unwrap();
        let mut reopened = Tree::from_snapshot(&s);
        prop_assert_eq!(tree_listing(&mut reopened), model.listing());
    }

    #[test]
    fn export_import_round_trips(ops in prop::collection::vec(op(), 1..40)) {
        let (s, _) = build(&ops);
        let tar = write_snapshot(&s, i64::MAX, Vec::new()).unwrap();
        let mut t = Tree::new(&store());
        t.apply_layer(tar.as_slice()).unwrap();
        let s2 = t.snapshot().unwrap();
        prop_assert_eq!(listing(&s2), listing(&s));
        prop_assert_eq!(s2.id(), s.id());
        // Byte-identical output for the same tree, however it was built.
        prop_assert_eq!(write_snapshot(&s2, i64::MAX, Vec::new()).unwrap(), tar.clone());
        prop_assert_eq!(write_snapshot(&s, i64::MAX, Vec::new()).unwrap(), tar);
    }

    #[test]
    fn layer_diff_round_trips(base in prop::collection::vec(op(), 1..30), more in prop::collection::vec(op(), 1..30)) {
        let (s1, mut m) = build(&base);
        let mut t = Tree::from_snapshot(&s1);
        run(&mut t, &mut m, &more);
        let s2 = t.snapshot().unwrap();
        let tar = write_layer(&s1, &s2, i64::MAX, Vec::new()).unwrap();
        let mut t2 = Tree::from_snapshot(&s1);
        t2.apply_layer(tar.as_slice()).unwrap();
        let got = t2.snapshot().unwrap();
        prop_assert_eq!(listing(&got), listing(&s2));
        prop_assert_eq!(got.id(), s2.id());
        prop_assert_eq!(write_layer(&s1, &s2, i64::MAX, Vec::new()).unwrap(), tar);
        if s1.id() == s2.id() {
            // Equal trees differ at most by hard-linked files that were relinked,
            // which the diff rewrites to keep link structure exact.
            for c in kiln_fs::diff(&s1, &s2) {
                prop_assert_eq!(c.kind, kiln_fs::ChangeKind::Modified);
            }
        }
    }
}
