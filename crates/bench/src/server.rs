//! Loopback HTTP servers: one with basic auth for the secret scenario (it answers
//! "Hello, Admin" to `admin:password` and counts those answers, so the bench can check
//! that every build really fetched with the secret), and a static file server for the
//! apt scenario's Debian mirror.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use base64::Engine;

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "password";
pub(crate) const BODY: &str = "Hello, Admin";

pub(crate) struct Server {
    pub port: u16,
    served: Arc<AtomicUsize>,
}

impl Server {
    /// Bind an ephemeral port on 127.0.0.1 and serve on a background thread for the
    /// rest of the process.
    pub(crate) fn start() -> Result<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                // A broken client must not stop the server; the build will fail instead.
                let _ = answer(stream, &expected, &counter);
            }
        });
        Ok(Server { port, served })
    }

    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// Answer one request (no keep-alive), counting it in `served` when it carried the right
/// credentials. Counted before the answer is written: a client that has read the answer
/// must find it counted.
fn answer(stream: TcpStream, expected: &str, served: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut authorized = false;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
            && value.trim() == expected
        {
            authorized = true;
        }
    }
    let mut out = stream;
    let response = if authorized {
        served.fetch_add(1, Ordering::SeqCst);
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
            BODY.len()
        )
    } else {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"kiln-bench\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    };
    out.write_all(response.as_bytes())?;
    out.flush()
}

/// Serves the files under a directory on 127.0.0.1 (GET, one request per connection),
/// counting the files served so a scenario can check that its builds really fetched.
pub(crate) struct FileServer {
    pub port: u16,
    served: Arc<AtomicUsize>,
}

impl FileServer {
    pub(crate) fn start(root: &Path) -> Result<FileServer> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        let root = root.to_path_buf();
        std::thread::spawn(move || {
            // One connection at a time: the builds are the only clients and fetch one
            // file after another; a broken client fails its build, not the server.
            for stream in listener.incoming().flatten() {
                let _ = serve_file(stream, &root, &counter);
            }
        });
        Ok(FileServer { port, served })
    }

    pub(crate) fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

/// The file a request line's path names under `root`; `None` for anything that would
/// leave it.
fn file_under(root: &Path, request_line: &str) -> Option<PathBuf> {
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next()?, parts.next()?);
    if method != "GET" {
        return None;
    }
    let raw = target.split('?').next()?;
    let path = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    let rel = Path::new(path.trim_start_matches('/'));
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| root.join(rel))
}

fn serve_file(stream: TcpStream, root: &Path, served: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && !line.trim_end().is_empty() {
        line.clear();
    }
    let body = file_under(root, &request).and_then(|p| std::fs::read(p).ok());
    let mut out = stream;
    match body {
        Some(body) => {
            served.fetch_add(1, Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(&body)?;
        }
        None => out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?,
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn get(port: u16, auth: Option<&str>) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut req = "GET / HTTP/1.1\r\nHost: x\r\n".to_owned();
        if let Some(a) = auth {
            req.push_str(&format!("Authorization: Basic {a}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn requires_basic_auth() {
        let srv = Server::start().unwrap();
        assert!(get(srv.port, None).starts_with("HTTP/1.1 401"));
        assert!(get(srv.port, Some("YWRtaW46d3Jvbmc=")).starts_with("HTTP/1.1 401"));
        let ok = get(srv.port, Some("YWRtaW46cGFzc3dvcmQ="));
        assert!(ok.starts_with("HTTP/1.1 200") && ok.ends_with(BODY), "{ok}");
        assert_eq!(srv.served(), 1);
    }

    #[test]
    fn serves_files_and_nothing_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("dists")).unwrap();
        std::fs::write(dir.path().join("dists/Release"), "suite").unwrap();
        std::fs::write(dir.path().join("a~1+b.deb"), "deb").unwrap();
        let srv = FileServer::start(dir.path()).unwrap();
        let fetch = |path: &str| {
            let mut s = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        };
        let ok = fetch("/dists/Release");
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("suite"),
            "{ok}"
        );
        assert!(fetch("/dists/../../etc/passwd").starts_with("HTTP/1.1 404"));
        assert!(fetch("/missing").starts_with("HTTP/1.1 404"));
        // apt's spelling of `~` and `+` in pool paths.
        assert!(fetch("/a%7e1%2bb.deb").ends_with("deb"));
        assert!(fetch("/dists/%2e%2e/%2e%2e/etc/passwd").starts_with("HTTP/1.1 404"));
        assert_eq!(srv.served(), 2);
    }
}
