//! A tiny HTTP/1.1 server on 127.0.0.1 for the secret scenario: `Hello, Admin` to basic
//! auth admin/password, `Hello, guest` to everyone else.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// A tiny HTTP/1.1 server on 127.0.0.1: `Hello, Admin` to basic auth admin/password,
/// `Hello, guest` to everyone else. Counts requests; stops when dropped.
pub(crate) struct HelloServer {
    pub port: u16,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HelloServer {
    pub(crate) fn start() -> Self {
        Self::start_on(0)
    }

    /// Serves on `127.0.0.1:port` (0 picks a free port).
    pub(crate) fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the server stops on drop, or after 10 minutes at most.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            while !s.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        h.fetch_add(1, Ordering::SeqCst);
                        let _ = serve(stream);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for HelloServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut authorized = false;
    let mut first = true;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
        if first {
            first = false;
            continue;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            // base64("admin:password")
            authorized = value.trim() == "Basic YWRtaW46cGFzc3dvcmQ=";
        }
    }
    let body = if authorized {
        "Hello, Admin\n"
    } else {
        "Hello, guest\n"
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        body
    )?;
    stream.flush()
}

/// What [`RouteServer`] answers to one request path: status, extra headers, body.
pub(crate) type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// A loopback HTTP/1.1 server whose answers come from a function of the request path
/// (redirect chains, loops, plain files). Records every path requested; stops on drop.
pub(crate) struct RouteServer {
    pub port: u16,
    pub paths: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RouteServer {
    pub(crate) fn start(route: impl Fn(&str) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (paths.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: the server stops on drop, or after 10 minutes at most.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
            while !s.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve_route(stream, &route, &p, &s);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            paths,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The paths requested so far, in order.
    pub(crate) fn requested(&self) -> Vec<String> {
        self.paths.lock().expect("paths").clone()
    }
}

impl Drop for RouteServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_route(
    stream: TcpStream,
    route: &dyn Fn(&str) -> Reply,
    paths: &std::sync::Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
    paths.lock().expect("paths").push(path.clone());
    let (status, headers, body) = route(&path);
    // A reply with an `X-Stall` header promises 1 MiB more than its body and then
    // stalls (bounded), like a server that stops sending mid-download.
    let stall = headers.iter().any(|(k, _)| k == "X-Stall");
    let length = body.len() + if stall { 1 << 20 } else { 0 };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {length}\r\nConnection: close\r\n"
    )?;
    for (k, v) in headers {
        write!(stream, "{k}: {v}\r\n")?;
    }
    stream.write_all(b"\r\n")?;
    stream.write_all(&body)?;
    stream.flush()?;
    // Stalls until the server is dropped, 20 s at most.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while stall && !stop.load(Ordering::SeqCst) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}
