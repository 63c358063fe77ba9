//! Depth-first traversal with full kiln metadata, directory entries in sorted order so
//! every tool that walks a tree (chmod -R, chown -R, find, tar, ls -R, grep -r) produces
//! deterministic output.

use std::fs;
use std::io;

use crate::sys::{self, Stat};

/// A failure and the path it happened on.
pub type WalkError = (String, io::Error);

/// The sorted names in directory `path`.
pub fn read_dir_sorted(path: &str) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(path)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// `dir/name` without doubling the slash.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Visits `root` (stat'ed with `follow_root`) and, if `recursive`, everything below it
/// (never following symlinks below the root), pre-order. The callback gets the path, its
/// lstat-style metadata and its depth. Errors below the root are reported through the
/// returned error of the first failure after visiting the rest.
pub fn walk(
    root: &str,
    recursive: bool,
    follow_root: bool,
    visit: &mut dyn FnMut(&str, Stat, usize) -> io::Result<()>,
) -> Result<(), WalkError> {
    let st = sys::stat(root, false).map_err(|e| (root.to_owned(), e))?;
    let st = if follow_root && st.is_symlink() {
        match sys::stat(root, true) {
            Ok(target) if target.is_dir() && recursive => target,
            Ok(_) => st,
            Err(e) => return Err((root.to_owned(), e)),
        }
    } else {
        st
    };
    let mut first_error = None;
    walk_inner(root, st, recursive, 0, visit, &mut first_error);
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn walk_inner(
    path: &str,
    st: Stat,
    recursive: bool,
    depth: usize,
    visit: &mut dyn FnMut(&str, Stat, usize) -> io::Result<()>,
    first_error: &mut Option<WalkError>,
) {
    if let Err(e) = visit(path, st, depth) {
        first_error.get_or_insert((path.to_owned(), e));
        return;
    }
    if !recursive || !st.is_dir() {
        return;
    }
    let names = match read_dir_sorted(path) {
        Ok(n) => n,
        Err(e) => {
            first_error.get_or_insert((path.to_owned(), e));
            return;
        }
    };
    for name in names {
        let child = join(path, &name);
        match sys::stat(&child, false) {
            Ok(cst) => walk_inner(&child, cst, recursive, depth + 1, visit, first_error),
            Err(e) => {
                first_error.get_or_insert((child, e));
            }
        }
    }
}
