//! Paths as ldconfig sees them under `-r ROOT`: every name is absolute inside the root and
//! symbolic links resolve inside it (an absolute target restarts at the root), as glibc's
//! `chroot_canon` does. Without `-r` the root is `/` and the same rules apply, so one code
//! path serves both, on WASI (which has no `realpath`) and natively in tests.

use std::collections::VecDeque;
use std::fs;
use std::io;

/// Symbolic links followed while resolving one name before giving up with `ELOOP`
/// (Linux's and glibc's `__eloop_threshold`): a link cycle in a hostile tree must end.
const MAX_SYMLINK_HOPS: u32 = 40;

/// The root every name is resolved under.
#[derive(Debug, Clone)]
pub(super) struct Root {
    /// The host path of the root without its trailing `/`; empty for `/`.
    prefix: String,
}

impl Root {
    /// `-r ROOT`, or `/` without it; trailing slashes do not count (`-r /` is no root).
    pub(super) fn new(arg: Option<&str>) -> Root {
        let prefix = arg.unwrap_or("").trim_end_matches('/').to_owned();
        Root { prefix }
    }

    /// `name` with every `.`, `..` and symbolic link resolved inside the root, as a host
    /// path; the last component may be missing (the caller's stat says so). An error when
    /// an inner component is missing, is no directory, or links loop.
    pub(super) fn canon(&self, name: &str) -> io::Result<String> {
        let mut done: Vec<String> = Vec::new();
        let mut todo: VecDeque<String> = components(name).collect();
        let mut hops = 0;
        while let Some(part) = todo.pop_front() {
            if part == "." {
                continue;
            }
            if part == ".." {
                done.pop();
                continue;
            }
            done.push(part);
            let real = self.join(&done);
            let last = todo.is_empty();
            let target = match fs::symlink_metadata(&real) {
                Ok(meta) if meta.file_type().is_symlink() => fs::read_link(&real),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            let target = match target {
                Ok(target) => target.to_string_lossy().into_owned(),
                Err(_) if last => break,
                Err(e) => return Err(e),
            };
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(io::Error::other("Too many levels of symbolic links"));
            }
            if target.starts_with('/') {
                done.clear();
            } else {
                done.pop();
            }
            for part in components(&target).rev().collect::<Vec<_>>() {
                todo.push_front(part);
            }
        }
        Ok(self.join(&done))
    }

    fn join(&self, parts: &[String]) -> String {
        if parts.is_empty() {
            return format!("{}/", self.prefix);
        }
        let mut out = self.prefix.clone();
        for part in parts {
            out.push('/');
            out.push_str(part);
        }
        out
    }
}

fn components(name: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    name.split('/').filter(|p| !p.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().to_str().unwrap();
        fs::create_dir_all(format!("{top}/usr/lib/x")).unwrap();
        std::os::unix::fs::symlink("usr/lib", format!("{top}/lib")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/x", format!("{top}/usr/lib/abs")).unwrap();
        std::os::unix::fs::symlink("loop", format!("{top}/loop")).unwrap();
        let root = Root::new(Some(top));
        let want = format!("{top}/usr/lib/x");
        assert_eq!(root.canon("/lib/x").unwrap(), want);
        assert_eq!(root.canon("/lib/abs").unwrap(), want);
        assert_eq!(root.canon("/../../lib/./x/").unwrap(), want);
        assert_eq!(
            root.canon("/lib/missing").unwrap(),
            format!("{top}/usr/lib/missing")
        );
        assert!(root.canon("/nope/x").is_err());
        assert!(root.canon("/loop/x").is_err());
        assert_eq!(Root::new(Some("/")).canon("/").unwrap(), "/");
    }
}
