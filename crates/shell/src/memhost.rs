//! An in-memory [`Host`] with no programs: regular files and directories in a map and a
//! wall-clock deadline. It runs the whole interpreter (expansion, redirections, builtins,
//! pipelines, subshells) without wasm, for the fuzz target, the smoke-fuzz test and the
//! limit tests; every external command is "not found".

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::builtins::normalize_path;
use crate::host::{FileKind, FileStat, Host, OpenMode, Resolved, Spawn};
use crate::io::{Endpoint, Stream};

/// Contents of one file, shared by every open description of it.
type Data = Arc<Mutex<Vec<u8>>>;

enum Node {
    File(Data),
    Dir,
}

/// See the module docs.
pub struct MemHost {
    nodes: Mutex<BTreeMap<String, Node>>,
    max_file: usize,
    deadline: Option<Instant>,
}

impl MemHost {
    /// An empty tree (just `/`) whose files hold at most `max_file` bytes each; loops stop
    /// once `deadline` passes.
    pub fn new(max_file: usize, deadline: Option<Instant>) -> MemHost {
        let mut nodes = BTreeMap::new();
        nodes.insert("/".to_string(), Node::Dir);
        MemHost {
            nodes: Mutex::new(nodes),
            max_file,
            deadline,
        }
    }

    /// Creates directory `path` (absolute, no trailing `/`) and its parents.
    pub fn mkdir(&self, path: &str) {
        let mut nodes = self.nodes.lock();
        let mut at = String::new();
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            at.push('/');
            at.push_str(comp);
            nodes.entry(at.clone()).or_insert(Node::Dir);
        }
    }

    /// A file's contents, if it exists.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        match self.nodes.lock().get(&normalize_path(path)) {
            Some(Node::File(d)) => Some(d.lock().clone()),
            _ => None,
        }
    }
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// One open description of a file: its own offset, optional append.
struct MemFile {
    data: Data,
    pos: Mutex<usize>,
    mode: OpenMode,
    max: usize,
}

impl Stream for MemFile {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.mode.read {
            return Err(io::Error::from_raw_os_error(9));
        }
        let data = self.data.lock();
        let mut pos = self.pos.lock();
        let rest = data.get(*pos..).unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        *pos += n;
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if !self.mode.write {
            return Err(io::Error::from_raw_os_error(9));
        }
        let mut data = self.data.lock();
        let mut pos = self.pos.lock();
        if self.mode.append {
            *pos = data.len();
        }
        let end = pos.saturating_add(buf.len());
        if end > self.max {
            // EFBIG: the file would outgrow the host's bound.
            return Err(io::Error::from_raw_os_error(27));
        }
        if data.len() < end {
            data.resize(end, 0);
        }
        data[*pos..end].copy_from_slice(buf);
        *pos = end;
        Ok(buf.len())
    }
}

impl Host for MemHost {
    fn open(&self, path: &str, mode: OpenMode, _umask: u32) -> io::Result<Endpoint> {
        let path = normalize_path(path);
        let mut nodes = self.nodes.lock();
        let data = match nodes.get(&path) {
            Some(Node::Dir) => return Err(io::ErrorKind::IsADirectory.into()),
            Some(Node::File(_)) if mode.exclusive => {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            Some(Node::File(d)) => d.clone(),
            None if !mode.create => return Err(io::ErrorKind::NotFound.into()),
            None => {
                if !matches!(nodes.get(parent(&path)), Some(Node::Dir)) {
                    return Err(io::ErrorKind::NotFound.into());
                }
                let d = Data::default();
                nodes.insert(path, Node::File(d.clone()));
                d
            }
        };
        if mode.truncate {
            data.lock().clear();
        }
        Ok(Arc::new(MemFile {
            data,
            pos: Mutex::new(0),
            mode,
            max: self.max_file,
        }))
    }

    fn stat(&self, path: &str, _follow: bool) -> io::Result<FileStat> {
        let path = normalize_path(path);
        let nodes = self.nodes.lock();
        let (kind, size, mode) = match nodes.get(&path) {
            Some(Node::Dir) => (FileKind::Dir, 0, 0o755),
            Some(Node::File(d)) => (FileKind::File, d.lock().len() as u64, 0o644),
            None => return Err(io::ErrorKind::NotFound.into()),
        };
        let ino = nodes.keys().position(|k| *k == path).unwrap_or(0) as u64;
        Ok(FileStat {
            kind,
            mode,
            size,
            mtime: 0,
            ino,
        })
    }

    fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
        let path = normalize_path(path);
        let nodes = self.nodes.lock();
        if !matches!(nodes.get(&path), Some(Node::Dir)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let prefix = if path == "/" {
            path
        } else {
            format!("{path}/")
        };
        Ok(nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(k, _)| {
                let name = &k[prefix.len()..];
                (!name.is_empty() && !name.contains('/')).then(|| name.to_string())
            })
            .collect())
    }

    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.nodes.lock().get(&normalize_path(path)) {
            Some(Node::File(d)) => Ok(d.lock().clone()),
            Some(Node::Dir) => Err(io::ErrorKind::IsADirectory.into()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn resolve(&self, _name: &str, _path_var: &str, _cwd: &str) -> Resolved {
        Resolved::NotFound
    }

    fn spawn(&self, _spawn: Spawn<'_>) -> io::Result<i32> {
        Err(io::ErrorKind::NotFound.into())
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_dirs() {
        let h = MemHost::new(8, None);
        h.mkdir("/a/b");
        let w = OpenMode {
            write: true,
            create: true,
            ..Default::default()
        };
        let f = h.open("/a/b/../f", w, 0).unwrap();
        assert_eq!(f.write(b"hello").unwrap(), 5);
        assert!(f.write(b"toolong").is_err(), "bounded by max_file");
        assert_eq!(h.file("/a/f").unwrap(), b"hello");
        assert_eq!(h.read_dir("/a").unwrap(), ["b", "f"]);
        assert!(h.open("/nope/f", w, 0).is_err());
        assert_eq!(h.stat("/a", true).unwrap().kind, FileKind::Dir);
    }
}
