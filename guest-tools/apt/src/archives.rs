//! Package archives in `/var/cache/apt/archives`: downloaded into `partial/`, checked
//! against the index's size and SHA256, then moved in place, as apt does; `clean`
//! empties the directory but keeps its `lock` and `partial/`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::fetch::{Transport, download_to};
use crate::{Error, Result};

/// apt's archive cache, relative to the root.
pub const ARCHIVES_DIR: &str = "var/cache/apt/archives";

/// One archive to have in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub url: String,
    /// apt's local name (see [`file_name`]).
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
    /// What apt prints after `Get:N ` (`http://... bookworm/main amd64 curl amd64 7.88.1-10`).
    pub description: String,
}

/// The local file name apt gives an archive: `name_version_arch.deb`, with `:` (an
/// epoch) and `_` quoted as `%3a` and `%5f`, as apt's `QuoteString` does.
pub fn file_name(package: &str, version: &str, arch: &str) -> String {
    format!(
        "{}_{}_{}.deb",
        quote(package, "_:"),
        quote(version, "_:"),
        quote(arch, "_:.")
    )
}

fn quote(text: &str, bad: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if bad.contains(c) || c == '%' || c <= ' ' || c >= '\u{7f}' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The cache directory under `root`.
pub fn dir(root: &Path) -> PathBuf {
    root.join(ARCHIVES_DIR)
}

/// Whether the cache already holds `w` intact (apt then does not download it again).
pub fn cached(root: &Path, w: &Wanted) -> bool {
    let path = dir(root).join(&w.file_name);
    let intact = fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == w.size);
    intact && file_sha256(&path).is_ok_and(|h| h.eq_ignore_ascii_case(&w.sha256))
}

fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(sha256_hex_of(hasher))
}

fn sha256_hex_of(hasher: Sha256) -> String {
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Downloads `w` into `partial/`, checks it and moves it into the cache. The body may
/// not exceed the index's size (the bound: the index is signed, the mirror is not).
pub fn fetch(root: &Path, w: &Wanted, net: &mut dyn Transport) -> Result<PathBuf> {
    let cache = dir(root);
    let partial = cache.join("partial");
    fs::create_dir_all(&partial).map_err(|e| Error::io(&partial, e))?;
    let tmp = partial.join(&w.file_name);
    let got = match download_to(net, &w.url, &tmp, w.size) {
        Ok(got) => got,
        Err(Error::TooLarge { url, .. }) => {
            let _ = fs::remove_file(&tmp);
            return Err(Error::Fetch {
                url,
                why: format!(
                    "File has unexpected size (more than {} bytes). Mirror sync in progress?",
                    w.size
                ),
            });
        }
        Err(e) => return Err(e),
    };
    if got.size != w.size || !got.sha256.eq_ignore_ascii_case(&w.sha256) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::HashSumMismatch {
            url: w.url.clone(),
            expected_sha256: w.sha256.clone(),
            expected_size: w.size,
            got_sha256: got.sha256,
            got_size: got.size,
        });
    }
    let dest = cache.join(&w.file_name);
    fs::rename(&tmp, &dest).map_err(|e| Error::io(&dest, e))?;
    Ok(dest)
}

/// Downloads every archive not already cached, printing apt's `Get:N` lines (unless
/// `quiet`), and returns the bytes fetched. Each archive's path in the cache is
/// `dir(root).join(file_name)`.
pub fn fetch_all(
    root: &Path,
    wanted: &[Wanted],
    net: &mut dyn Transport,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<u64> {
    let mut fetched = 0;
    for (i, w) in wanted.iter().filter(|w| !cached(root, w)).enumerate() {
        if !quiet {
            let line = format!("Get:{} {} [{}B]", i + 1, w.description, size_to_str(w.size));
            let _ = writeln!(out, "{line}");
        }
        fetch(root, w, net)?;
        fetched += w.size;
    }
    Ok(fetched)
}

/// `apt-get clean`: removes the cached archives and partial downloads, keeping the
/// `lock` file and the `partial/` directory itself, as apt does.
pub fn clean(root: &Path) -> Result<()> {
    let cache = dir(root);
    for sub in [cache.clone(), cache.join("partial")] {
        let entries = match fs::read_dir(&sub) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&sub, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&sub, e))?;
            let path = entry.path();
            let keep = entry.file_name() == "lock" || entry.file_name() == "partial";
            let is_file = entry.file_type().is_ok_and(|t| !t.is_dir());
            if !keep && is_file {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// apt's `SizeToStr` (decimal units, one decimal under 100, none from 100 on, the
/// unit letter without the `B` the callers add): `0 `, `9999 `, `10.0 k`, `123 k`.
pub fn size_to_str(size: u64) -> String {
    const UNITS: [&str; 9] = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
    let mut value = size as f64;
    for (i, unit) in UNITS.iter().enumerate() {
        if value < 100.0 && i != 0 {
            return format!("{value:.1} {unit}");
        }
        if value < 10000.0 {
            return format!("{value:.0} {unit}");
        }
        value /= 1000.0;
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::{Response, sha256_hex};
    use std::collections::BTreeMap;

    struct Mirror(BTreeMap<String, Vec<u8>>);

    impl Transport for Mirror {
        fn get(&mut self, url: &str) -> Result<Response> {
            let body = self.0.get(url).cloned();
            let status = if body.is_some() { 200 } else { 404 };
            let body = body.unwrap_or_default();
            Ok(Response {
                status,
                content_length: Some(body.len() as u64),
                body: Box::new(io::Cursor::new(body)),
            })
        }
    }

    fn root() -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir().join(format!("kiln-archives-{}-{n}", std::process::id()))
    }

    fn wanted(data: &[u8]) -> Wanted {
        Wanted {
            url: "http://m/pool/a.deb".into(),
            file_name: file_name("a", "1:1.0", "amd64"),
            size: data.len() as u64,
            sha256: sha256_hex(data),
            description: "http://m bookworm/main amd64 a amd64 1:1.0".into(),
        }
    }

    #[test]
    fn names_are_apts() {
        assert_eq!(file_name("a", "1:1.0-1", "amd64"), "a_1%3a1.0-1_amd64.deb");
        assert_eq!(file_name("libc6", "2.36-9", "all"), "libc6_2.36-9_all.deb");
    }

    #[test]
    fn sizes_print_as_apt_prints_them() {
        assert_eq!(size_to_str(0), "0 ");
        assert_eq!(size_to_str(9999), "9999 ");
        assert_eq!(size_to_str(10_000), "10.0 k");
        assert_eq!(size_to_str(318_000), "318 k");
        assert_eq!(size_to_str(5_173_000), "5173 k");
        assert_eq!(size_to_str(12_300_000), "12.3 M");
    }

    #[test]
    fn downloads_are_checked_cached_and_cleaned() {
        let root = root();
        let data = b"!<arch>\nnot really a deb".to_vec();
        let w = wanted(&data);
        let mut net = Mirror(BTreeMap::from([(w.url.clone(), data.clone())]));
        let mut out = Vec::new();
        let n = fetch_all(&root, std::slice::from_ref(&w), &mut net, false, &mut out).unwrap();
        assert_eq!(n, data.len() as u64);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            format!("Get:1 {} [{} B]\n", w.description, data.len())
        );
        assert_eq!(fs::read(dir(&root).join(&w.file_name)).unwrap(), data);
        // Cached: no second download.
        let mut out = Vec::new();
        assert_eq!(
            fetch_all(&root, &[w], &mut net, false, &mut out).unwrap(),
            0
        );
        assert!(out.is_empty());
        fs::write(dir(&root).join("lock"), "").unwrap();
        clean(&root).unwrap();
        let left: Vec<_> = fs::read_dir(dir(&root))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_tampered_archive_is_a_hash_sum_mismatch() {
        let root = root();
        let w = wanted(b"the real one");
        let mut net = Mirror(BTreeMap::from([(w.url.clone(), b"the fake one".to_vec())]));
        let err = fetch(&root, &w, &mut net).unwrap_err();
        assert!(err.to_string().contains("Hash Sum mismatch"), "{err}");
        assert!(!dir(&root).join(&w.file_name).exists());
        let mut net = Mirror(BTreeMap::from([(w.url.clone(), vec![b'x'; 100])]));
        let err = fetch(&root, &w, &mut net).unwrap_err();
        assert!(err.to_string().contains("unexpected size"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}
