//! `COPY`/`ADD` placement: where each source entry lands in the stage's tree, with
//! Docker's destination rules, `--chown`, `--chmod`, and reproducible times.
//!
//! Sources come either from the build context ([`crate::context`]) or from another
//! stage's snapshot ([`tree_sources`]); both are described by the same [`Source`] list and
//! read through an `open` callback, so one placement routine serves both.

use std::io::Read;

use kiln_dockerfile::Chmod;
use kiln_fs::{FileType, Follow, FsError, Ino, Timestamp, Tree};

use crate::context::{
    ContextError, Entry, EntryKind, Source, clean_rel, compile_glob, has_glob_meta,
};
use crate::parents::{ParentsSpec, join_rel};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot copy to {dest:?}: {source}")]
    Dest { dest: String, source: FsError },
    #[error("cannot read source {path:?}: {source}")]
    Read { path: String, source: FsError },
    #[error("source {0:?}: not found")]
    NotFound(String),
    #[error("source {0:?} is outside the stage's filesystem")]
    Outside(String),
    #[error(
        "when copying several sources, the destination {0:?} must be a directory ending with /"
    )]
    DestNotDir(String),
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    #[error("bind source {0:?} is not a file or directory of the build context")]
    BindNotDir(String),
}

/// Ownership and permissions applied to everything copied.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// `--chown`'s uid:gid; without it each entry keeps its own owner (root for the
    /// context, the source's for `--from`, as BuildKit).
    pub owner: Option<(u32, u32)>,
    /// `--chmod`, octal or symbolic, applied to files and directories alike as BuildKit
    /// does (a symbolic `X` sets execute on directories only).
    pub chmod: Option<Chmod>,
    /// mtime given to everything copied (the source date epoch), so host timestamps never
    /// reach the image.
    pub mtime: Timestamp,
}

impl Placement {
    /// Owner of the directories the copy creates: `--chown`'s, else root.
    pub(crate) fn dir_owner(&self) -> (u32, u32) {
        self.owner.unwrap_or((0, 0))
    }

    /// Mode of the directories the copy creates: an octal `--chmod` (BuildKit creates
    /// missing parents with it), else 0755 (a symbolic mode has no value to give them).
    pub(crate) fn dir_mode(&self) -> u32 {
        match self.chmod {
            Some(Chmod::Octal(mode)) => mode,
            _ => 0o755,
        }
    }

    /// The owner `entry` gets.
    fn owner_of(&self, entry: &Entry) -> (u32, u32) {
        self.owner.unwrap_or(entry.owner)
    }
}

/// Opens the content of a source file given its source-relative path.
pub(crate) type Opener<'a> = dyn FnMut(&str) -> Result<Box<dyn Read + 'a>, CopyError> + 'a;

/// Copies `sources` to `dest` (absolute, already joined with WORKDIR).
pub(crate) fn place(
    tree: &mut Tree,
    sources: &[Source],
    dest: &str,
    several: bool,
    how: &Placement,
    open: &mut Opener<'_>,
) -> Result<(), CopyError> {
    let dest_err = |source| CopyError::Dest {
        dest: dest.to_owned(),
        source,
    };
    let dest_dir_syntax = dest.ends_with('/') || dest.ends_with("/.");
    let dest_path = resolve_dest(tree, &normalize_abs(dest)).map_err(dest_err)?;
    let existing_dir = matches!(
        tree.resolve(tree.root(), dest_path.as_bytes(), Follow::Yes)
            .and_then(|ino| tree.metadata(ino)),
        Ok(m) if m.file_type == FileType::Directory
    );
    if several && !dest_dir_syntax && !existing_dir {
        return Err(CopyError::DestNotDir(dest.to_owned()));
    }
    let into_dir = dest_dir_syntax || existing_dir || several;
    for source in sources {
        match &source.top.kind {
            EntryKind::Dir => {
                mkdir_p(tree, &dest_path, how).map_err(dest_err)?;
                let base = source.top.rel.as_str();
                for child in &source.children {
                    let rel = child.rel[base.len()..].trim_start_matches('/');
                    let at = join(&dest_path, rel);
                    put(tree, &at, child, how, open)?;
                }
            }
            _ => {
                let at = if into_dir {
                    mkdir_p(tree, &dest_path, how).map_err(dest_err)?;
                    join(&dest_path, basename(&source.top.rel))
                } else {
                    if let Some(parent) = parent_of(&dest_path) {
                        mkdir_p(tree, parent, how).map_err(dest_err)?;
                    }
                    dest_path.clone()
                };
                put(tree, &at, &source.top, how, open)?;
            }
        }
    }
    Ok(())
}

fn put(
    tree: &mut Tree,
    at: &str,
    entry: &Entry,
    how: &Placement,
    open: &mut Opener<'_>,
) -> Result<(), CopyError> {
    let err = |source| CopyError::Dest {
        dest: at.to_owned(),
        source,
    };
    let (dir, name) = tree
        .resolve_parent(tree.root(), at.as_bytes())
        .map_err(err)?;
    let existing = tree.lookup(dir, &name).ok();
    let (uid, gid) = how.owner_of(entry);
    let mode = match &how.chmod {
        Some(c) => c.apply(entry.mode, entry.kind == EntryKind::Dir),
        None => entry.mode,
    };
    let ino = match &entry.kind {
        EntryKind::Dir => match existing {
            Some(ino) if tree.metadata(ino).map_err(err)?.file_type == FileType::Directory => ino,
            other => {
                remove_existing(tree, dir, &name, other).map_err(err)?;
                tree.mkdir(dir, &name, mode, uid, gid).map_err(err)?
            }
        },
        EntryKind::Symlink { target } => {
            remove_existing(tree, dir, &name, existing).map_err(err)?;
            let ino = tree.symlink(dir, &name, target, uid, gid).map_err(err)?;
            tree.set_times(ino, Some(how.mtime), Some(how.mtime))
                .map_err(err)?;
            return Ok(());
        }
        EntryKind::File { .. } => {
            remove_existing(tree, dir, &name, existing).map_err(err)?;
            let ino = tree.create_file(dir, &name, mode, uid, gid).map_err(err)?;
            let reader = open(&entry.rel)?;
            tree.write_from(ino, reader)
                .map_err(|source| CopyError::Read {
                    path: entry.rel.clone(),
                    source,
                })?;
            ino
        }
    };
    tree.chmod(ino, mode).map_err(err)?;
    tree.chown(ino, Some(uid), Some(gid)).map_err(err)?;
    tree.set_times(ino, Some(how.mtime), Some(how.mtime))
        .map_err(err)
}

/// Removes what stands where a new non-directory (or a directory replacing a file) goes.
fn remove_existing(
    tree: &mut Tree,
    dir: Ino,
    name: &[u8],
    existing: Option<Ino>,
) -> Result<(), FsError> {
    let Some(ino) = existing else { return Ok(()) };
    if tree.metadata(ino)?.file_type == FileType::Directory {
        remove_all(tree, dir, name)
    } else {
        tree.unlink(dir, name)
    }
}

fn remove_all(tree: &mut Tree, dir: Ino, name: &[u8]) -> Result<(), FsError> {
    let ino = tree.lookup(dir, name)?;
    for child in tree.readdir(ino)? {
        if child.name == b"." || child.name == b".." {
            continue;
        }
        if child.file_type == FileType::Directory {
            remove_all(tree, ino, &child.name)?;
        } else {
            tree.unlink(ino, &child.name)?;
        }
    }
    tree.rmdir(dir, name)
}

/// Most symlinks followed while resolving one destination, Linux's MAXSYMLINKS: a loop
/// of links in the image ends in an error instead of spinning.
const MAX_DEST_LINKS: usize = 40;

/// `path` (absolute) with every symlink among its existing components resolved inside
/// the tree, as BuildKit resolves a destination under its root: a link to a directory
/// that does not exist yet (dangling) resolves to where it points, and the copy creates
/// that directory; `..` stops at `/`.
pub(crate) fn resolve_dest(tree: &mut Tree, path: &str) -> Result<String, FsError> {
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect()
    };
    let mut rest = parts(path);
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(comp) = rest.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => done.push(comp),
        }
        let at = format!("/{}", done.join("/"));
        let Ok(ino) = tree.resolve(tree.root(), at.as_bytes(), Follow::No) else {
            // Missing from here on: created as written.
            done.extend(rest.drain(..).rev());
            break;
        };
        if tree.metadata(ino)?.file_type != FileType::Symlink {
            continue;
        }
        links += 1;
        if links > MAX_DEST_LINKS {
            return Err(FsError::Loop);
        }
        let target = String::from_utf8_lossy(&tree.readlink(ino)?).into_owned();
        done.pop();
        if target.starts_with('/') {
            done.clear();
        }
        rest.extend(parts(&target));
    }
    Ok(normalize_abs(&done.join("/")))
}

/// Creates `path` and its missing parents with [`Placement::dir_mode`] and
/// [`Placement::dir_owner`] (BuildKit gives created destination directories the `--chown`
/// owner and an octal `--chmod`).
pub(crate) fn mkdir_p(tree: &mut Tree, path: &str, how: &Placement) -> Result<Ino, FsError> {
    let mut cur = tree.root();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        cur = match tree.lookup(cur, comp.as_bytes()) {
            Ok(_) => {
                // An existing component may be a symlink to a directory (inside the tree).
                let resolved = tree.resolve(cur, comp.as_bytes(), Follow::Yes)?;
                if tree.metadata(resolved)?.file_type != FileType::Directory {
                    return Err(FsError::NotDir);
                }
                resolved
            }
            Err(FsError::NotFound) => {
                let (uid, gid) = how.dir_owner();
                let ino = tree.mkdir(cur, comp.as_bytes(), how.dir_mode(), uid, gid)?;
                tree.set_times(ino, Some(how.mtime), Some(how.mtime))?;
                ino
            }
            Err(e) => return Err(e),
        };
    }
    Ok(cur)
}

/// Resolves `COPY --from=<stage>` sources inside another stage's tree, with the same
/// shape the context gives: the top entry (followed if it is a symlink) and everything
/// below it, sorted. A pattern may match nothing, as in the context.
pub(crate) fn tree_sources(src: &mut Tree, pattern: &str) -> Result<Vec<Source>, CopyError> {
    let rel = clean_rel(pattern).ok_or_else(|| CopyError::Outside(pattern.to_owned()))?;
    let tops = tree_tops(src, &rel, pattern)?;
    tops.into_iter()
        .map(|top| {
            let mut children = Vec::new();
            if top.kind == EntryKind::Dir {
                let ino = src
                    .resolve(src.root(), format!("/{}", top.rel).as_bytes(), Follow::Yes)
                    .map_err(|source| read_err(&top.rel, source))?;
                walk_tree(src, ino, &top.rel, &mut children)?;
            }
            Ok(Source { top, children })
        })
        .collect()
}

/// What `rel` (root-relative, cleaned) names in a stage's tree: the entries a pattern
/// matches, symlinks followed, or the one entry a plain path names.
fn tree_tops(src: &mut Tree, rel: &str, pattern: &str) -> Result<Vec<Entry>, CopyError> {
    if !has_glob_meta(rel) {
        let ino = src
            .resolve(src.root(), format!("/{rel}").as_bytes(), Follow::Yes)
            .map_err(|_| CopyError::NotFound(pattern.to_owned()))?;
        return Ok(vec![tree_entry(src, ino, rel)?]);
    }
    let matcher = compile_glob(rel).map_err(|why| ContextError::BadPattern {
        pattern: pattern.to_owned(),
        why,
    })?;
    let mut all = Vec::new();
    walk_tree(src, src.root(), "", &mut all)?;
    all.into_iter()
        .filter(|e| matcher.is_match(&e.rel))
        .map(|entry| followed(src, entry))
        .collect()
}

/// `COPY --from --parents`: what `source` selects below each pivot directory it names
/// in a stage's tree (see [`ParentsSpec`]), as the context's
/// [`crate::context::Context::resolve_parents`].
pub(crate) fn tree_parents_sources(src: &mut Tree, source: &str) -> Result<Vec<Source>, CopyError> {
    let spec = ParentsSpec::parse(source)?;
    let mut out = Vec::new();
    for base in tree_tops(src, &spec.base, source)? {
        if base.kind != EntryKind::Dir {
            continue;
        }
        let walked = tree_parents_walk(src, &base.rel, &spec.prefix)?;
        let children = spec.select(&base.rel, walked);
        if spec.required && children.is_empty() {
            return Err(CopyError::NotFound(source.to_owned()));
        }
        out.push(Source {
            top: base,
            children,
        });
    }
    Ok(out)
}

/// The entries from `base` down to `base/prefix` and, when that is a directory,
/// everything below it; empty if the path is missing.
fn tree_parents_walk(src: &mut Tree, base: &str, prefix: &str) -> Result<Vec<Entry>, CopyError> {
    let mut out = Vec::new();
    let mut at = base.to_owned();
    let mut ino = src
        .resolve(src.root(), format!("/{base}").as_bytes(), Follow::Yes)
        .map_err(|e| read_err(base, e))?;
    for comp in prefix.split('/').filter(|c| !c.is_empty()) {
        at = join_rel(&at, comp);
        let Ok(next) = src.lookup(ino, comp.as_bytes()) else {
            return Ok(Vec::new());
        };
        let Ok(entry) = tree_entry(src, next, &at) else {
            return Ok(Vec::new());
        };
        let is_dir = entry.kind == EntryKind::Dir;
        out.push(entry);
        if !is_dir {
            return Ok(out);
        }
        ino = next;
    }
    walk_tree(src, ino, &at, &mut out)?;
    Ok(out)
}

/// The context directory `source` as a fresh scratch tree, built by [`place`] exactly as
/// `COPY <source> /` would build it (`.dockerignore` applied, special files skipped,
/// owner root, every time `mtime`): what a context bind mount shows, so it never shows
/// more of the host than COPY could. A scratch tree keeps large files in anonymous
/// spill files: the copy is throwaway and must not leave named blobs in the store.
/// Returns the tree and what to mount: its root for a directory, the file for a file.
pub(crate) fn context_tree(
    context: &crate::context::Context,
    source: &str,
    store: &std::sync::Arc<kiln_fs::Store>,
    mtime: Timestamp,
) -> Result<(Tree, Ino), CopyError> {
    let sources = context.resolve(source)?;
    let top = match sources.as_slice() {
        [one] if matches!(one.top.kind, EntryKind::Dir | EntryKind::File { .. }) => &one.top,
        _ => return Err(CopyError::BindNotDir(source.to_owned())),
    };
    let mut tree = Tree::scratch(store);
    // Directories get their children after their own times are set; the clock makes
    // those updates carry `mtime` too.
    tree.set_clock(mtime);
    let how = Placement {
        owner: None,
        chmod: None,
        mtime,
    };
    // A file is placed as `/file` and mounted as itself; a directory is the tree.
    let at = if top.kind == EntryKind::Dir {
        "/"
    } else {
        "/file"
    };
    place(
        &mut tree,
        &sources,
        at,
        false,
        &how,
        &mut *context_opener(context),
    )?;
    let root = tree.root();
    let at_err = |source| CopyError::Dest {
        dest: at.into(),
        source,
    };
    let ino = tree
        .resolve(root, at.as_bytes(), Follow::No)
        .map_err(at_err)?;
    tree.chmod(ino, top.mode).map_err(at_err)?;
    tree.set_times(ino, Some(mtime), Some(mtime))
        .map_err(at_err)?;
    Ok((tree, ino))
}

/// Opens a file of the build context for [`place`].
pub(crate) fn context_opener(context: &crate::context::Context) -> Box<Opener<'_>> {
    Box::new(move |rel: &str| context.open_content(rel).map_err(CopyError::Context))
}

/// Opens a file of a stage's tree for [`place`].
pub(crate) fn open_in_tree<'a>(
    src: &'a mut Tree,
) -> impl FnMut(&str) -> Result<Box<dyn Read + 'a>, CopyError> + 'a {
    move |rel: &str| {
        let ino = src
            .resolve(src.root(), format!("/{rel}").as_bytes(), Follow::Yes)
            .map_err(|source| read_err(rel, source))?;
        let reader = src.open_read(ino).map_err(|source| read_err(rel, source))?;
        Ok(Box::new(reader) as Box<dyn Read>)
    }
}

/// A wildcard match that is a symlink, replaced by what it points to (BuildKit follows
/// the links its patterns match); its name stays the link's.
fn followed(src: &mut Tree, entry: Entry) -> Result<Entry, CopyError> {
    if !matches!(entry.kind, EntryKind::Symlink { .. }) {
        return Ok(entry);
    }
    let ino = src
        .resolve(
            src.root(),
            format!("/{}", entry.rel).as_bytes(),
            Follow::Yes,
        )
        .map_err(|source| read_err(&entry.rel, source))?;
    tree_entry(src, ino, &entry.rel)
}

fn read_err(path: &str, source: FsError) -> CopyError {
    CopyError::Read {
        path: path.to_owned(),
        source,
    }
}

fn tree_entry(src: &mut Tree, ino: Ino, rel: &str) -> Result<Entry, CopyError> {
    let meta = src.metadata(ino).map_err(|e| read_err(rel, e))?;
    let kind = match meta.file_type {
        FileType::Directory => EntryKind::Dir,
        FileType::Symlink => EntryKind::Symlink {
            target: src.readlink(ino).map_err(|e| read_err(rel, e))?,
        },
        FileType::Regular => EntryKind::File { size: meta.size },
        // Device nodes and fifos are not copied, as BuildKit skips them too.
        _ => return Err(CopyError::NotFound(rel.to_owned())),
    };
    Ok(Entry {
        rel: rel.to_owned(),
        kind,
        mode: meta.mode,
        owner: (meta.uid, meta.gid),
    })
}

fn walk_tree(src: &mut Tree, dir: Ino, rel: &str, out: &mut Vec<Entry>) -> Result<(), CopyError> {
    for child in src.readdir(dir).map_err(|e| read_err(rel, e))? {
        if child.name == b"." || child.name == b".." {
            continue;
        }
        let name = String::from_utf8_lossy(&child.name);
        let child_rel = if rel.is_empty() {
            name.into_owned()
        } else {
            format!("{rel}/{name}")
        };
        let Ok(entry) = tree_entry(src, child.ino, &child_rel) else {
            continue;
        };
        let is_dir = entry.kind == EntryKind::Dir;
        out.push(entry);
        if is_dir {
            walk_tree(src, child.ino, &child_rel, out)?;
        }
    }
    Ok(())
}

/// `/a/./b//c/` -> `/a/b/c`; `..` clamps at `/` as in the tree itself.
pub(crate) fn normalize_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        dir.to_owned()
    } else if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

fn basename(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

fn parent_of(path: &str) -> Option<&str> {
    let i = path.rfind('/')?;
    (i > 0).then(|| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tree_is_what_copy_sees() {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in [("a.txt", "a"), (".env", "secret"), ("sub/b.txt", "b")] {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        std::fs::write(dir.path().join(".dockerignore"), ".env\n").unwrap();
        let context = crate::context::Context::open(dir.path(), None).unwrap();
        let store = kiln_fs::Store::temp().unwrap();
        let mtime = Timestamp::from_secs(1_700_000_000);
        let (mut tree, at) = context_tree(&context, ".", &store, mtime).unwrap();
        let root = tree.root();
        assert_eq!(at, root);
        assert!(tree.resolve(root, b"/.env", Follow::No).is_err());
        for path in ["/", "/a.txt", "/sub", "/sub/b.txt"] {
            let ino = tree.resolve(root, path.as_bytes(), Follow::No).unwrap();
            let meta = tree.metadata(ino).unwrap();
            assert_eq!((meta.mtime, meta.uid), (mtime, 0), "{path}");
        }
        let (mut sub, _) = context_tree(&context, "sub", &store, mtime).unwrap();
        let sub_root = sub.root();
        assert!(sub.resolve(sub_root, b"/b.txt", Follow::No).is_ok());
        // A file is mounted as itself.
        let (file_tree, file) = context_tree(&context, "a.txt", &store, mtime).unwrap();
        let mut buf = [0; 4];
        assert_eq!(file_tree.read_at(file, 0, &mut buf).unwrap(), 1);
        assert_eq!(&buf[..1], b"a");
        assert!(matches!(
            context_tree(&context, "*", &store, mtime),
            Err(CopyError::BindNotDir(_))
        ));
        assert!(matches!(
            context_tree(&context, ".env", &store, mtime),
            Err(CopyError::Context(_))
        ));
    }
    use kiln_fs::Store;

    fn how() -> Placement {
        Placement {
            owner: None,
            chmod: None,
            mtime: Timestamp::EPOCH,
        }
    }

    fn file(rel: &str, mode: u32) -> Entry {
        Entry {
            rel: rel.into(),
            kind: EntryKind::File { size: 0 },
            mode,
            owner: (0, 0),
        }
    }

    fn read(tree: &mut Tree, path: &str) -> String {
        let ino = tree
            .resolve(tree.root(), path.as_bytes(), Follow::Yes)
            .unwrap();
        let mut s = String::new();
        tree.open_read(ino).unwrap().read_to_string(&mut s).unwrap();
        s
    }

    fn opener(rel: &str) -> Result<Box<dyn Read>, CopyError> {
        Ok(Box::new(std::io::Cursor::new(format!("body of {rel}"))))
    }

    #[test]
    fn file_to_path_and_into_dir() {
        let store = Store::temp().unwrap();
        let mut tree = Tree::new(&store);
        let src = vec![Source {
            top: file("a.txt", 0o644),
            children: vec![],
        }];
        place(&mut tree, &src, "/x/b.txt", false, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/x/b.txt"), "body of a.txt");
        place(&mut tree, &src, "/dir/", false, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/dir/a.txt"), "body of a.txt");
        // An existing directory without a trailing slash still receives the file.
        place(&mut tree, &src, "/dir", false, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/dir/a.txt"), "body of a.txt");
    }

    #[test]
    fn directory_copies_its_contents_with_chmod_and_chown() {
        let store = Store::temp().unwrap();
        let mut tree = Tree::new(&store);
        let src = vec![Source {
            top: Entry {
                rel: "src".into(),
                kind: EntryKind::Dir,
                mode: 0o700,
                owner: (0, 0),
            },
            children: vec![
                file("src/main.rs", 0o600),
                Entry {
                    rel: "src/lib".into(),
                    kind: EntryKind::Dir,
                    mode: 0o700,
                    owner: (0, 0),
                },
                file("src/lib/x.rs", 0o600),
            ],
        }];
        let how = Placement {
            owner: Some((1000, 1001)),
            chmod: Some(Chmod::Octal(0o640)),
            ..how()
        };
        place(&mut tree, &src, "/app", false, &how, &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/app/lib/x.rs"), "body of src/lib/x.rs");
        let ino = tree
            .resolve(tree.root(), b"/app/main.rs", Follow::No)
            .unwrap();
        let m = tree.metadata(ino).unwrap();
        assert_eq!((m.mode, m.uid, m.gid), (0o640, 1000, 1001));
    }

    #[test]
    fn a_destination_through_a_dangling_link_lands_where_it_points() {
        let store = Store::temp().unwrap();
        let mut tree = Tree::new(&store);
        let root = tree.root();
        tree.symlink(root, b"symlink", b"../tmp/symlink-target", 0, 0)
            .unwrap();
        tree.symlink(root, b"abs", b"/opt/app", 0, 0).unwrap();
        tree.symlink(root, b"loop", b"loop", 0, 0).unwrap();
        let src = vec![Source {
            top: file("foo", 0o644),
            children: vec![],
        }];
        place(&mut tree, &src, "/symlink/", false, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/tmp/symlink-target/foo"), "body of foo");
        place(&mut tree, &src, "/abs/sub/", false, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/opt/app/sub/foo"), "body of foo");
        // The links are still links.
        let l = tree.resolve(tree.root(), b"/symlink", Follow::No).unwrap();
        assert_eq!(tree.metadata(l).unwrap().file_type, FileType::Symlink);
        assert!(matches!(
            place(&mut tree, &src, "/loop/x", false, &how(), &mut opener),
            Err(CopyError::Dest {
                source: FsError::Loop,
                ..
            })
        ));
    }

    #[test]
    fn several_sources_need_a_directory() {
        let store = Store::temp().unwrap();
        let mut tree = Tree::new(&store);
        let src = vec![
            Source {
                top: file("a", 0o644),
                children: vec![],
            },
            Source {
                top: file("b", 0o644),
                children: vec![],
            },
        ];
        assert!(matches!(
            place(&mut tree, &src, "/out", true, &how(), &mut opener),
            Err(CopyError::DestNotDir(_))
        ));
        place(&mut tree, &src, "/out/", true, &how(), &mut opener).unwrap();
        assert_eq!(read(&mut tree, "/out/b"), "body of b");
    }

    #[test]
    fn copy_from_another_tree() {
        let store = Store::temp().unwrap();
        let mut a = Tree::new(&store);
        let d = a.mkdir(a.root(), b"opt", 0o755, 0, 0).unwrap();
        let f = a.create_file(d, b"tool", 0o755, 0, 0).unwrap();
        a.write_at(f, 0, b"#!bin").unwrap();
        a.symlink(d, b"link", b"tool", 0, 0).unwrap();
        let sources = tree_sources(&mut a, "/opt").unwrap();
        assert_eq!(sources[0].children.len(), 2);
        let mut b = Tree::new(&store);
        place(
            &mut b,
            &sources,
            "/usr/local/",
            false,
            &how(),
            &mut open_in_tree(&mut a),
        )
        .unwrap();
        assert_eq!(read(&mut b, "/usr/local/tool"), "#!bin");
        let l = b.resolve(b.root(), b"/usr/local/link", Follow::No).unwrap();
        assert_eq!(b.readlink(l).unwrap(), b"tool");
        assert!(matches!(
            tree_sources(&mut a, "/nope"),
            Err(CopyError::NotFound(_))
        ));
    }
}
