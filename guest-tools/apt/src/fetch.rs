//! Downloads, bounded. The network is behind [`Transport`] so the logic runs natively in
//! tests; in a guest [`KilnHttp`] sends requests through `kiln_abi::http` (the host decides
//! whether the step may use the network).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// How many redirects one download follows: apt's http method stops at 10 as well.
const MAX_REDIRECTS: usize = 10;

/// A response head and its body stream.
pub struct Response {
    pub status: u16,
    pub content_length: Option<u64>,
    pub body: Box<dyn Read>,
}

/// Something that performs a GET and follows redirects.
pub trait Transport {
    /// Fetches `url`; `Err` only when no response came (connection, DNS, policy).
    fn get(&mut self, url: &str) -> Result<Response>;
}

/// The guest's transport: `kiln_abi::http`, redirects followed as apt follows them.
pub struct KilnHttp;

impl Transport for KilnHttp {
    fn get(&mut self, url: &str) -> Result<Response> {
        if let Some(path) = url.strip_prefix("file:") {
            return local_file(path, url);
        }
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let req = kiln_abi::http::Request {
                method: "GET".into(),
                url: current.clone(),
                ..Default::default()
            };
            let resp = kiln_abi::http::request(&req).map_err(|e| Error::Fetch {
                url: url.to_string(),
                why: e.to_string(),
            })?;
            match (resp.status, resp.header("location")) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => current = join_location(&current, loc),
                _ => {
                    let content_length = resp.header("content-length").and_then(|v| v.parse().ok());
                    let status = resp.status;
                    return Ok(Response {
                        status,
                        content_length,
                        body: Box::new(resp),
                    });
                }
            }
        }
        Err(Error::Fetch {
            url: url.to_string(),
            why: "Redirection loop encountered".into(),
        })
    }
}

/// A `file:` source (a repository copied into the image): read from the step's own
/// filesystem, a missing file answered as 404 as apt's file method reports it.
fn local_file(path: &str, url: &str) -> Result<Response> {
    let path = path.strip_prefix("//").unwrap_or(path);
    match File::open(path) {
        Ok(f) => {
            let content_length = f.metadata().ok().map(|m| m.len());
            Ok(Response {
                status: 200,
                content_length,
                body: Box::new(f),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Response {
            status: 404,
            content_length: None,
            body: Box::new(io::empty()),
        }),
        Err(e) => Err(Error::Fetch {
            url: url.to_string(),
            why: e.to_string(),
        }),
    }
}

/// Resolves a Location header against the URL that answered with it.
fn join_location(base: &str, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if loc.starts_with('/') {
        return format!("{}{loc}", &base[..host_end]);
    }
    let dir_end = base
        .rfind('/')
        .filter(|&i| i >= host_end)
        .map_or(base.len(), |i| i + 1);
    format!("{}{loc}", &base[..dir_end])
}

/// The reason phrase apt prints after a status code (`404  Not Found`).
pub fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    }
}

/// What a successful download produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub size: u64,
    /// Lower-case hex SHA256, as Release and Packages files write it.
    pub sha256: String,
}

/// GETs `url`; a status other than 200 is [`Error::Fetch`] with apt's `404  Not Found`.
pub fn get_ok(t: &mut dyn Transport, url: &str, limit: u64) -> Result<Response> {
    let resp = t.get(url)?;
    if resp.status != 200 {
        let why = format!("{}  {}", resp.status, reason(resp.status));
        return Err(Error::Fetch {
            url: url.to_string(),
            why,
        });
    }
    if resp.content_length.is_some_and(|n| n > limit) {
        return Err(Error::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    Ok(resp)
}

/// Reads a whole response body of at most `limit` bytes.
pub fn get_bounded(t: &mut dyn Transport, url: &str, limit: u64) -> Result<Vec<u8>> {
    let resp = get_ok(t, url, limit)?;
    let mut out = Vec::new();
    copy_body(resp.body, &mut out, url, limit)?;
    Ok(out)
}

/// Streams `url` into the file `dest` (created or truncated), hashing as it goes.
pub fn download_to(t: &mut dyn Transport, url: &str, dest: &Path, limit: u64) -> Result<Digested> {
    let resp = get_ok(t, url, limit)?;
    let mut file = File::create(dest).map_err(|e| Error::io(dest, e))?;
    let digest = copy_body(resp.body, &mut file, url, limit)?;
    file.flush().map_err(|e| Error::io(dest, e))?;
    Ok(digest)
}

/// Copies a response body into `out`, hashing it; more than `limit` bytes fails.
fn copy_body(body: Box<dyn Read>, out: &mut dyn Write, url: &str, limit: u64) -> Result<Digested> {
    let mut sink = Sink::new(out, limit);
    let copied = io::copy(&mut body.take(limit.saturating_add(1)), &mut sink);
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        limit,
    };
    sink.finish(copied, too_large, |e| Error::Fetch {
        url: url.to_string(),
        why: e.to_string(),
    })
}

/// How an index is compressed, from its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gz,
    None,
}

impl Compression {
    /// The suffix apt appends to an index name (`Packages.xz`).
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::Xz => ".xz",
            Compression::Gz => ".gz",
            Compression::None => "",
        }
    }
}

/// Decompresses the file `src` into `dest`, at most `limit` bytes, hashing the output;
/// `url` names the download in errors.
pub fn decompress_to(
    src: &Path,
    dest: &Path,
    how: Compression,
    limit: u64,
    url: &str,
) -> Result<Digested> {
    let input = File::open(src).map_err(|e| Error::io(src, e))?;
    let mut input = io::BufReader::new(input);
    let mut file = File::create(dest).map_err(|e| Error::io(dest, e))?;
    let mut sink = Sink::new(&mut file, limit);
    let result = match how {
        Compression::Xz => lzma_rs::xz_decompress(&mut input, &mut sink)
            .map_err(|e| io::Error::other(e.to_string())),
        Compression::Gz => {
            io::copy(&mut flate2::read::MultiGzDecoder::new(input), &mut sink).map(|_| ())
        }
        Compression::None => io::copy(&mut input, &mut sink).map(|_| ()),
    };
    let too_large = || Error::TooLarge {
        url: url.to_string(),
        limit,
    };
    let digest = sink.finish(result, too_large, |e| Error::Decompress {
        url: url.to_string(),
        why: e.to_string(),
    })?;
    file.flush().map_err(|e| Error::io(dest, e))?;
    Ok(digest)
}

/// A writer that hashes what passes and refuses to go past `limit` bytes.
struct Sink<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
    written: u64,
    limit: u64,
}

impl<'a> Sink<'a> {
    fn new(inner: &'a mut dyn Write, limit: u64) -> Sink<'a> {
        Sink {
            inner,
            hasher: Sha256::new(),
            written: 0,
            limit,
        }
    }

    /// The digest, or the error: over the limit wins over whatever the copy reported.
    fn finish<T>(
        self,
        result: io::Result<T>,
        too_large: impl FnOnce() -> Error,
        failed: impl FnOnce(io::Error) -> Error,
    ) -> Result<Digested> {
        if self.written > self.limit {
            return Err(too_large());
        }
        result.map_err(failed)?;
        Ok(Digested {
            size: self.written,
            sha256: hex(&self.hasher.finalize()),
        })
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written = self.written.saturating_add(buf.len() as u64);
        if self.written > self.limit {
            return Err(io::Error::other("size limit exceeded"));
        }
        let n = self.inner.write(buf)?;
        self.written -= (buf.len() - n) as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA256 of `data` as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_resolved_against_the_answering_url() {
        let base = "http://h:1/debian/dists/x/InRelease";
        assert_eq!(join_location(base, "/other/y"), "http://h:1/other/y");
        assert_eq!(
            join_location(base, "Release"),
            "http://h:1/debian/dists/x/Release"
        );
        assert_eq!(join_location(base, "https://m/z"), "https://m/z");
    }

    #[test]
    fn file_urls_read_the_local_filesystem() {
        let dir = std::env::temp_dir().join(format!("kiln-apt-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Release"), "x").unwrap();
        let url = format!("file:{}/Release", dir.display());
        assert_eq!(get_bounded(&mut KilnHttp, &url, 10).unwrap(), b"x");
        let missing = format!("file://{}/InRelease", dir.display());
        let err = get_bounded(&mut KilnHttp, &missing, 10).unwrap_err();
        assert!(err.to_string().ends_with("404  Not Found"), "{err}");
        assert!(matches!(
            get_bounded(&mut KilnHttp, &url, 0),
            Err(Error::TooLarge { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sha256_is_lower_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
