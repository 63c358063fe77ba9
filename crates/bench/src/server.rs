//! A loopback HTTP server with basic auth for the secret scenario: it answers
//! "Hello, Admin" to `admin:password` and counts those answers, so the bench can check
//! that every build really fetched with the secret.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
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
}
