//! HTTP(S) requests performed by the host (WASI p1 has no sockets). Whether a step may
//! use the network, and which hosts, is the host's decision; a refusal is
//! [`HttpError::NetworkDisabled`]. Redirects are not followed by the host: the caller
//! decides (curl -L), so credentials are only sent where the caller means them to go.

use std::fmt;
use std::io::{self, Read};

/// One request. The body is sent as given (small: curl -d data); responses stream.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whole-request timeout in milliseconds (0: the host's default).
    pub timeout_ms: u64,
    /// Skip TLS certificate verification (curl -k).
    pub insecure: bool,
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The step has no network capability (or the host is not allowed).
    NetworkDisabled(String),
    /// The host name did not resolve.
    Resolve(String),
    /// The TCP connection failed.
    Connect(String),
    /// TLS handshake or certificate failure.
    Tls(String),
    Timeout(String),
    /// The URL is malformed or its scheme unsupported.
    BadUrl(String),
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::NetworkDisabled(m)
            | HttpError::Resolve(m)
            | HttpError::Connect(m)
            | HttpError::Tls(m)
            | HttpError::Timeout(m)
            | HttpError::BadUrl(m)
            | HttpError::Other(m) => f.write_str(m),
        }
    }
}

/// A response: status, headers, and the body as a stream.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub(crate) body: crate::imp::Body,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.body.read(buf)
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish()
    }
}

/// Sends `req` and returns the response head; the body is read from the response.
pub fn request(req: &Request) -> Result<Response, HttpError> {
    crate::imp::http_request(req)
}
