//! A build service embedding `kiln-engine`: serves builds over HTTP on loopback.
//!
//! ```text
//! cargo run -p kiln-engine --example serve -- 127.0.0.1:8090 /tmp/kiln-service-cache
//! tar -C examples/hello -c . | curl --data-binary @- http://127.0.0.1:8090/build
//! ```
//!
//! `POST /build` takes the build context as a tar (the Dockerfile at its root), optionally
//! `?dockerfile=PATH&target=STAGE`, and answers with a stream of JSON lines: the engine's
//! progress events (already redacted by the engine), then `{"digest":"sha256:…"}` or
//! `{"error":"…"}`. Every build shares one cache directory, so a step one client built is
//! a hit for the next; at most [`MAX_BUILDS`] run at once and the rest get 503. A client
//! that hangs up cancels its build. This is an example of the API, not a product: no
//! authentication, no TLS, loopback only.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use kiln_engine::progress::{Event, EventSink};
use kiln_engine::{BuildRequest, Cancel};

/// Builds running at once: each holds a context on disk and a step's memory, so a busy
/// service must refuse rather than grow without bound.
pub(crate) const MAX_BUILDS: usize = 4;
/// The largest context tarball accepted: a request body is untrusted input, unpacked to
/// disk before the build reads it.
pub(crate) const MAX_CONTEXT_BYTES: u64 = 256 << 20;
/// Event lines buffered per build while the client reads slowly; past this the build
/// waits for the client (its output is bounded by the engine's own limits).
const EVENT_BACKLOG: usize = 1024;

#[cfg_attr(test, allow(dead_code))] // the tests drive `serve` directly
fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(cache)) = (args.next(), args.next()) else {
        return Err("usage: serve ADDR CACHE_DIR (ADDR on loopback, e.g. 127.0.0.1:8090)".into());
    };
    let addr: SocketAddr = addr.parse()?;
    let server = bind(addr)?;
    eprintln!("serving builds on http://{}", server.server_addr());
    serve(server, PathBuf::from(cache));
    Ok(())
}

/// Listens on `addr`, which must be a loopback address: this example has no
/// authentication.
pub(crate) fn bind(
    addr: SocketAddr,
) -> Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync>> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr} is not a loopback address").into());
    }
    tiny_http::Server::http(addr)
}

/// Serves requests until the server is dropped; each build runs on its own thread.
pub(crate) fn serve(server: tiny_http::Server, cache: PathBuf) {
    let running = Arc::new(AtomicUsize::new(0));
    for request in server.incoming_requests() {
        let cache = cache.clone();
        let running = running.clone();
        if running.fetch_add(1, Ordering::AcqRel) >= MAX_BUILDS {
            running.fetch_sub(1, Ordering::AcqRel);
            let _ = request.respond(text(503, "too many builds at once; retry later\n"));
            continue;
        }
        let spawned = std::thread::Builder::new()
            .name("kiln-serve-build".into())
            .spawn(move || {
                handle(request, &cache);
                running.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            eprintln!("serve: cannot start a build thread");
        }
    }
}

fn handle(mut request: tiny_http::Request, cache: &Path) {
    if *request.method() != tiny_http::Method::Post || path_of(request.url()) != "/build" {
        let _ = request.respond(text(404, "POST /build with a context tarball\n"));
        return;
    }
    let query = Query::parse(request.url());
    let work = match tempfile::tempdir() {
        Ok(w) => w,
        Err(e) => {
            let _ = request.respond(text(500, &format!("temporary directory: {e}\n")));
            return;
        }
    };
    let context = work.path().join("context");
    if let Err(e) = unpack(request.as_reader(), &context) {
        let _ = request.respond(text(400, &format!("context tarball: {e}\n")));
        return;
    }
    let mut req = BuildRequest::new(context.clone(), cache.to_path_buf());
    if let Some(file) = &query.dockerfile {
        match inside(&context, file) {
            Some(path) => req.dockerfile = path,
            None => {
                let _ = request.respond(text(
                    400,
                    "dockerfile: a relative path inside the context\n",
                ));
                return;
            }
        }
    }
    req.target = query.target;
    let (sink, lines) = Lines::new(req.cancel.clone());
    let build = std::thread::Builder::new()
        .name("kiln-serve-engine".into())
        .spawn(move || {
            let outcome = kiln_engine::build(req, sink.clone())
                .map_err(|e| e.to_string())
                .and_then(|built| built.image.digest().map_err(|e| e.to_string()));
            sink.finish(outcome);
        });
    if build.is_err() {
        let _ = request.respond(text(500, "cannot start the build\n"));
        return;
    }
    let body = tiny_http::Response::new(
        200.into(),
        content_type("application/x-ndjson").into_iter().collect(),
        lines,
        None,
        None,
    );
    // tiny_http drops `lines` when the client goes away, which cancels the build.
    let _ = request.respond(body);
    drop(work);
}

/// Unpacks the request body into `dir`, refusing more than [`MAX_CONTEXT_BYTES`]. The
/// tar crate's `unpack` keeps every entry inside `dir` (no `..`, no writing through a
/// symlink it unpacked), which is what an untrusted tarball needs.
fn unpack(body: &mut dyn Read, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let limited = body.take(MAX_CONTEXT_BYTES + 1);
    let mut counted = Counted {
        inner: limited,
        n: 0,
    };
    tar::Archive::new(&mut counted).unpack(dir)?;
    // Read what the tar reader left (its end blocks) so the limit covers the whole body.
    io::copy(&mut counted, &mut io::sink())?;
    if counted.n > MAX_CONTEXT_BYTES {
        return Err(io::Error::other(format!(
            "larger than the service's limit of {MAX_CONTEXT_BYTES} bytes"
        )));
    }
    if !dir.join("Dockerfile").is_file() {
        return Err(io::Error::other("no Dockerfile at the tarball's root"));
    }
    Ok(())
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// The engine's events as JSON lines, read by tiny_http as the response body.
#[derive(Clone)]
struct Lines {
    tx: Arc<Mutex<Option<SyncSender<Vec<u8>>>>>,
    cancel: Cancel,
}

impl Lines {
    fn new(cancel: Cancel) -> (Arc<Lines>, LineReader) {
        let (tx, rx) = sync_channel(EVENT_BACKLOG);
        let lines = Lines {
            tx: Arc::new(Mutex::new(Some(tx))),
            cancel,
        };
        (
            Arc::new(lines),
            LineReader {
                rx,
                pending: Vec::new(),
                at: 0,
            },
        )
    }

    /// Sends one line; a client that hung up cancels the build.
    fn send(&self, line: Vec<u8>) {
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|tx| tx.send(line).is_ok()),
            Err(_) => false,
        };
        if !sent {
            self.cancel.cancel();
        }
    }

    /// The last line (digest or error); the stream ends after it.
    fn finish(&self, outcome: Result<kiln_oci::Digest, String>) {
        let last = match outcome {
            Ok(digest) => serde_json::json!({ "digest": digest.to_string() }),
            Err(error) => serde_json::json!({ "error": error }),
        };
        self.send(json_line(&last));
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

impl EventSink for Lines {
    fn emit(&self, event: Event) {
        self.send(json_line(&event));
    }
}

fn json_line(value: &impl serde::Serialize) -> Vec<u8> {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    line
}

/// The receiving end: a `Read` over the lines, ending when the build finished.
struct LineReader {
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    at: usize,
}

impl Read for LineReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.pending.len() {
            match self.rx.recv() {
                Ok(line) => {
                    self.pending = line;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[derive(Default)]
struct Query {
    dockerfile: Option<String>,
    target: Option<String>,
}

impl Query {
    fn parse(url: &str) -> Query {
        let mut q = Query::default();
        let Some((_, query)) = url.split_once('?') else {
            return q;
        };
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "dockerfile" => q.dockerfile = Some(v.into_owned()),
                "target" => q.target = Some(v.into_owned()),
                _ => {}
            }
        }
        q
    }
}

/// `dir/rel` when `rel` is relative and never climbs out (`..`): the client names a file
/// of its own context, nothing else on the server.
fn inside(dir: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    rel.components()
        .all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
        .then(|| dir.join(rel))
}

fn path_of(url: &str) -> &str {
    url.split_once('?').map_or(url, |(p, _)| p)
}

fn text(code: u16, body: &str) -> tiny_http::Response<io::Cursor<Vec<u8>>> {
    let response = tiny_http::Response::from_string(body).with_status_code(code);
    content_type("text/plain; charset=utf-8")
        .into_iter()
        .fold(response, |r, h| r.with_header(h))
}

/// A Content-Type header (`None` only for a value that is not ASCII, which the constants
/// of this file never are).
fn content_type(value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(&b"Content-Type"[..], value.as_bytes()).ok()
}
