//! Content digests (`algorithm:hex`), streaming hashers and a verifying reader.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::{OciError, Result};

/// The digest algorithms kiln can verify. Other registered algorithms (sha384) are rare
/// in practice; rejecting them up front beats accepting content we cannot check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:e3b0…`. The hex part is always lowercase
/// and of the right length, so it is safe to use as a file name under `blobs/<alg>/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

impl Digest {
    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        h.update(data);
        h.finish()
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded (hex) part, without the algorithm prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn to_oci(&self) -> oci_spec::image::Digest {
        // Infallible in practice: every `Digest` is a valid OCI digest string.
        oci_spec::image::Digest::from_str(&self.to_string())
            .unwrap_or_else(|_| unreachable!("validated digest rejected by oci-spec"))
    }

    pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest> {
        d.as_ref().parse()
    }
}

impl FromStr for Digest {
    type Err = OciError;

    fn from_str(s: &str) -> Result<Digest> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| OciError::InvalidDigest(s.to_owned(), "missing ':'"))?;
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            _ => {
                return Err(OciError::InvalidDigest(
                    s.to_owned(),
                    "unsupported algorithm",
                ));
            }
        };
        if hex.len() != algorithm.hex_len() {
            return Err(OciError::InvalidDigest(s.to_owned(), "wrong length"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(OciError::InvalidDigest(
                s.to_owned(),
                "not lowercase hexadecimal",
            ));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Incremental hasher producing a [`Digest`].
#[derive(Clone)]
pub struct Hasher(HasherInner);

#[derive(Clone)]
enum HasherInner {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Hasher {
        Hasher(match algorithm {
            DigestAlgorithm::Sha256 => HasherInner::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha512 => HasherInner::Sha512(sha2::Sha512::new()),
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.0 {
            HasherInner::Sha256(h) => (DigestAlgorithm::Sha256, hex::encode(h.finalize())),
            HasherInner::Sha512(h) => (DigestAlgorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A `Write` adapter that hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    pub(crate) inner: W,
    pub(crate) hasher: Hasher,
    pub(crate) written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(DigestAlgorithm::Sha256),
            written: 0,
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checks, when it reaches the end, that the content had the expected digest
/// (and size, when known). A mismatch surfaces as an `InvalidData` I/O error carrying an
/// [`OciError`], so a consumer that reads to the end cannot silently accept bad content.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: Option<u64>,
    read: u64,
    what: String,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, expected_size: Option<u64>, what: String) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new(expected.algorithm())),
            expected,
            expected_size,
            read: 0,
            what,
        }
    }

    /// Read whatever the consumer left unread (a tar reader stops at the end-of-archive
    /// marker, before the padding) and report whether the whole content verified. Call
    /// this after handing the reader to a parser, or the check may never run.
    pub fn finish(mut self) -> Result<()> {
        let what = self.what.clone();
        io::copy(&mut self, &mut io::sink()).map_err(|e| unwrap_io(&what, e))?;
        Ok(())
    }

    fn check_end(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        if let Some(size) = self.expected_size
            && size != self.read
        {
            return Err(invalid_data(OciError::SizeMismatch {
                what: self.what.clone(),
                expected: size,
                actual: self.read,
            }));
        }
        let actual = hasher.finish();
        if actual != self.expected {
            return Err(invalid_data(OciError::DigestMismatch {
                what: self.what.clone(),
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        self.read += n as u64;
        if let Some(size) = self.expected_size
            && self.read > size
        {
            return Err(invalid_data(OciError::SizeMismatch {
                what: self.what.clone(),
                expected: size,
                actual: self.read,
            }));
        }
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

pub(crate) fn invalid_data(e: OciError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Turn an I/O error back into the [`OciError`] it carries, if any.
pub(crate) fn unwrap_io(context: &str, e: io::Error) -> OciError {
    if !e.get_ref().is_some_and(|inner| inner.is::<OciError>()) {
        return OciError::stream(context, e);
    }
    let kind = e.kind();
    match e.into_inner().map(|inner| inner.downcast::<OciError>()) {
        Some(Ok(oci)) => *oci,
        Some(Err(other)) => OciError::stream(context, io::Error::new(kind, other)),
        None => OciError::stream(context, io::Error::from(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d: Digest = empty.parse().unwrap();
        assert_eq!(d, Digest::sha256_of(b""));
        assert_eq!(d.to_string(), empty);
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:e3b0".parse::<Digest>().is_err());
        assert!(
            empty
                .to_uppercase()
                .replace("SHA", "sha")
                .parse::<Digest>()
                .is_err()
        );
        assert!(
            "sha256:../../../../etc/passwd0000000000000000000000000000000000000000000"
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn verifying_reader_rejects_bad_content() {
        let d = Digest::sha256_of(b"hello");
        let mut ok = String::new();
        VerifyingReader::new(&b"hello"[..], d.clone(), Some(5), "x".into())
            .read_to_string(&mut ok)
            .unwrap();
        let mut s = String::new();
        let e = VerifyingReader::new(&b"hellO"[..], d.clone(), Some(5), "x".into())
            .read_to_string(&mut s)
            .unwrap_err();
        assert!(e.to_string().contains("digest mismatch"), "{e}");
        let e = VerifyingReader::new(&b"hell"[..], d.clone(), Some(5), "x".into())
            .read_to_string(&mut s)
            .unwrap_err();
        assert!(e.to_string().contains("size mismatch"), "{e}");
        // A consumer that stops early: finish() drains and still catches the corruption.
        let mut r = VerifyingReader::new(&b"hello-and-more"[..], d.clone(), None, "x".into());
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        assert!(matches!(r.finish(), Err(OciError::DigestMismatch { .. })));
        let mut r = VerifyingReader::new(&b"hello"[..], d, None, "x".into());
        r.read_exact(&mut first).unwrap();
        r.finish().unwrap();
    }
}
