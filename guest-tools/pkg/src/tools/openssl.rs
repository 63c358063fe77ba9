//! `openssl rehash` and `c_rehash`: the subject-hash links (`1a2b3c4d.0 -> cert.pem`)
//! that OpenSSL looks certificates up by in a CA directory. Debian's
//! update-ca-certificates ends with `openssl rehash .` in /etc/ssl/certs, and the image's
//! openssl is a native binary kiln cannot run; this is the one subcommand served.
//!
//! It follows OpenSSL 3's apps/rehash.c: files ending in .pem, .crt, .cer or .crl (any
//! case) holding exactly one certificate or CRL get a link named by
//! `X509_NAME_hash_ex` of the subject (CRLs: of the issuer, `.rN`), numbered from 0 in
//! file-name order; duplicates (same SHA-1 fingerprint) are skipped with OpenSSL's
//! warning; existing hash links are reused when still right, else removed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use base64::Engine;
use sha1::{Digest, Sha1};

use crate::util;

/// Bound on one file read: the whole Mozilla bundle (ca-certificates.crt) is 220 KiB.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// OpenSSL's default certificate directory on Debian (`X509_get_default_cert_dir`).
const DEFAULT_CERT_DIR: &str = "/usr/lib/ssl/certs";

const PROG: &str = "rehash";

#[derive(Default)]
struct Opts {
    verbose: bool,
    keep_links: bool,
    dirs: Vec<String>,
}

pub(crate) fn main(name: &str, args: Vec<String>) -> i32 {
    if name == "c_rehash" {
        return rehash_command(args);
    }
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("rehash") => rehash_command(args.collect()),
        Some(other) => {
            util::warn(
                "openssl",
                format!("'{other}' is not available in kiln (its openssl serves only 'rehash')"),
            );
            1
        }
        None => {
            util::warn(
                "openssl",
                "no command given (kiln's openssl serves only 'rehash')",
            );
            1
        }
    }
}

fn rehash_command(args: Vec<String>) -> i32 {
    let opts = match parse(args) {
        Ok(opts) => opts,
        Err(code) => return code,
    };
    let mut errors = 0;
    for dir in &opts.dirs {
        errors += rehash_dir(Path::new(dir), &opts);
    }
    i32::from(errors > 0)
}

fn parse(args: Vec<String>) -> Result<Opts, i32> {
    let mut opts = Opts::default();
    for arg in args {
        match arg.as_str() {
            "-v" => opts.verbose = true,
            "-n" => opts.keep_links = true,
            "-compat" | "-old" => {
                util::warn(
                    PROG,
                    format!("{arg}: the old MD5-based hash is not available in kiln"),
                );
                return Err(1);
            }
            "-h" | "-help" | "--help" => {
                println!(
                    "Usage: rehash [options] [directory...]\n  -v  Verbose output\n  -n  Do not remove existing links"
                );
                return Err(0);
            }
            a if a.starts_with('-') => {
                util::warn(PROG, format!("Unknown option: {a}"));
                return Err(1);
            }
            _ => opts.dirs.push(arg),
        }
    }
    if opts.dirs.is_empty() {
        let env = std::env::var("SSL_CERT_DIR").unwrap_or_else(|_| DEFAULT_CERT_DIR.to_string());
        opts.dirs = env
            .split(':')
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect();
    }
    Ok(opts)
}

/// A link to make or keep: what it points at, and the id of an existing link to it.
struct Entry {
    target: String,
    old_id: Option<u32>,
    needed: bool,
    digest: Option<[u8; 20]>,
}

/// Certificates (`""`) and CRLs (`"r"`) sharing one hash: their links `.0`, `.1`...
type Buckets = BTreeMap<(&'static str, u32), Vec<Entry>>;

fn rehash_dir(dir: &Path, opts: &Opts) -> u32 {
    if opts.verbose {
        println!("Doing {}", dir.display());
    }
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(read) => read
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            util::warn(
                PROG,
                format!(
                    "error: skipping {}, cannot open directory: {e}",
                    dir.display()
                ),
            );
            return 1;
        }
    };
    names.sort();
    let mut buckets = Buckets::new();
    let mut errors = 0;
    for name in &names {
        let path = dir.join(name);
        let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
        if is_link && existing_link(&path, name, &mut buckets) {
            continue;
        }
        errors += add_file(&path, name, &mut buckets);
    }
    for ((suffix, hash), entries) in buckets {
        errors += write_links(dir, suffix, hash, entries, opts);
    }
    errors
}

/// Records an existing hash link (`8 hex digits . [r] id`); false if `name` is not one.
fn existing_link(path: &Path, name: &str, buckets: &mut Buckets) -> bool {
    let Some((hex, rest)) = name.split_at_checked(8) else {
        return false;
    };
    let Ok(hash) = u32::from_str_radix(hex, 16) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    let (suffix, id) = match rest.strip_prefix(['r', 'R']) {
        Some(id) => ("r", id),
        None => ("", rest),
    };
    let (Ok(id), Ok(target)) = (id.parse::<u32>(), fs::read_link(path)) else {
        return false;
    };
    let target = target.to_string_lossy().into_owned();
    let bucket = buckets.entry((suffix, hash)).or_default();
    match bucket.iter_mut().find(|e| e.target == target) {
        Some(e) => e.old_id = e.old_id.min(Some(id)).or(Some(id)),
        None => bucket.push(Entry {
            target,
            old_id: Some(id),
            needed: false,
            digest: None,
        }),
    }
    true
}

/// Adds a certificate or CRL file; returns the errors (0 or 1).
fn add_file(path: &Path, name: &str, buckets: &mut Buckets) -> u32 {
    let lower = name.to_ascii_lowercase();
    if ![".pem", ".crt", ".cer", ".crl"]
        .iter()
        .any(|s| lower.ends_with(s))
    {
        return 0;
    }
    let Some(text) = read_bounded(path) else {
        util::warn(PROG, format!("error: skipping {name}, cannot open file"));
        return 1;
    };
    // The warnings below are OpenSSL 3.0's texts, its missing space included.
    let objects = pem_objects(&text);
    let [(is_crl, der)] = objects.as_slice() else {
        util::warn(
            PROG,
            format!("warning: skipping {name},it does not contain exactly one certificate or CRL"),
        );
        return 0;
    };
    let Some((name_der, digest_der)) = x509::hashed_name(der, *is_crl) else {
        util::warn(
            PROG,
            format!("warning: skipping {name},it does not contain exactly one certificate or CRL"),
        );
        return 0;
    };
    let suffix = if *is_crl { "r" } else { "" };
    let hash = x509::name_hash(name_der);
    let digest: [u8; 20] = Sha1::digest(digest_der).into();
    let bucket = buckets.entry((suffix, hash)).or_default();
    if bucket.iter().any(|e| e.digest == Some(digest)) {
        let what = if *is_crl { "CRL" } else { "certificate" };
        util::warn(
            PROG,
            format!("warning: skipping duplicate {what} in {name}"),
        );
        return 0;
    }
    match bucket.iter_mut().find(|e| e.target == name) {
        Some(e) => {
            e.needed = true;
            e.digest = Some(digest);
        }
        None => bucket.push(Entry {
            target: name.to_string(),
            old_id: None,
            needed: true,
            digest: Some(digest),
        }),
    }
    0
}

/// Keeps the existing links still right, makes the missing ones at the lowest free ids
/// and removes the stale ones (unless `-n`).
fn write_links(dir: &Path, suffix: &str, hash: u32, entries: Vec<Entry>, opts: &Opts) -> u32 {
    let needed = entries.iter().filter(|e| e.needed).count() as u32;
    let keeps = |e: &Entry| e.needed && e.old_id.is_some_and(|id| id < needed);
    let mut used: Vec<u32> = entries
        .iter()
        .filter(|e| keeps(e))
        .filter_map(|e| e.old_id)
        .collect();
    let mut errors = 0;
    let mut next = 0;
    for e in &entries {
        let link = |id: u32| format!("{hash:08x}.{suffix}{id}");
        if keeps(e) {
            if opts.verbose {
                println!("link {} -> {}", e.target, link(e.old_id.unwrap_or(0)));
            }
        } else if e.needed {
            while used.contains(&next) {
                next += 1;
            }
            used.push(next);
            if opts.verbose {
                println!("link {} -> {}", e.target, link(next));
            }
            errors += make_link(&dir.join(link(next)), &e.target);
        } else if let Some(id) = e.old_id.filter(|_| !opts.keep_links) {
            if opts.verbose {
                println!("unlink {}", link(id));
            }
            if let Err(err) = fs::remove_file(dir.join(link(id))) {
                errors += u32::from(err.kind() != io::ErrorKind::NotFound);
            }
        }
    }
    let _ = io::stdout().flush();
    errors
}

/// `std::fs::soft_link` is the one stable symlink call that also exists on WASI.
#[allow(deprecated)]
fn make_link(path: &Path, target: &str) -> u32 {
    let _ = fs::remove_file(path);
    match fs::soft_link(target, path) {
        Ok(()) => 0,
        Err(e) => {
            util::warn(
                PROG,
                format!("error: cannot symlink {} -> {target}: {e}", path.display()),
            );
            1
        }
    }
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut data)
        .ok()?;
    Some(data)
}

/// The certificates and CRLs of a PEM file, as (is a CRL, DER). Other blocks (keys,
/// parameters) do not count, as for OpenSSL's `PEM_X509_INFO_read_bio`.
fn pem_objects(text: &[u8]) -> Vec<(bool, Vec<u8>)> {
    let text = String::from_utf8_lossy(text);
    let mut found = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let body: String = lines
            .by_ref()
            .take_while(|l| l.trim() != end)
            .filter(|l| !l.contains(':'))
            .collect();
        let is_crl = match label {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => false,
            "X509 CRL" => true,
            _ => continue,
        };
        let clean: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(clean) {
            found.push((is_crl, der));
        }
    }
    found
}

/// Just enough DER for OpenSSL's subject hash.
mod x509 {
    use sha1::{Digest, Sha1};

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const UTF8_STRING: u8 = 0x0c;

    /// One TLV: its tag, its content and the whole encoding.
    struct Tlv<'a> {
        tag: u8,
        content: &'a [u8],
        whole: &'a [u8],
    }

    /// Reads the TLV at the start of `data`; returns it and what follows.
    fn tlv(data: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
        let (&tag, rest) = data.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            (len, &rest[n..])
        };
        let header = data.len() - rest.len();
        let content = rest.get(..len)?;
        Some((
            Tlv {
                tag,
                content,
                whole: &data[..header + len],
            },
            &rest[len..],
        ))
    }

    fn children(mut data: &[u8]) -> Option<Vec<Tlv<'_>>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (t, rest) = tlv(data)?;
            out.push(t);
            data = rest;
        }
        Some(out)
    }

    /// The name that is hashed (a certificate's subject, a CRL's issuer) and the DER
    /// its fingerprint is taken of.
    pub fn hashed_name(der: &[u8], is_crl: bool) -> Option<(&[u8], &[u8])> {
        let (outer, _) = tlv(der)?;
        let tbs = children(outer.content)?.into_iter().next()?;
        let fields = children(tbs.content)?;
        // Skip the optional version ([0] for a certificate, INTEGER for a CRL).
        let skip = usize::from(fields.first()?.tag == if is_crl { 0x02 } else { 0xa0 });
        let index = if is_crl { skip + 1 } else { skip + 4 };
        let name = fields.get(index)?;
        (name.tag == SEQUENCE).then_some((name.content, outer.whole))
    }

    /// OpenSSL's `X509_NAME_hash_ex`: the first four bytes (little-endian) of the SHA-1
    /// of the name's canonical encoding.
    pub fn name_hash(name: &[u8]) -> u32 {
        let md = Sha1::digest(canonical(name));
        u32::from_le_bytes([md[0], md[1], md[2], md[3]])
    }

    /// Each RDN as a SET of its AVAs, values of string types canonicalised into
    /// UTF8String; the RDNs concatenated without the outer SEQUENCE (OpenSSL's
    /// `x509_name_canon`).
    fn canonical(name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for rdn in children(name).unwrap_or_default() {
            let mut avas: Vec<Vec<u8>> = children(rdn.content)
                .unwrap_or_default()
                .iter()
                .map(canonical_ava)
                .collect();
            avas.sort();
            encode(SET, &avas.concat(), &mut out);
        }
        out
    }

    fn canonical_ava(ava: &Tlv<'_>) -> Vec<u8> {
        let parts = children(ava.content).unwrap_or_default();
        let mut body = Vec::new();
        if let [oid, value, ..] = parts.as_slice() {
            body.extend_from_slice(oid.whole);
            match to_utf8(value) {
                Some(text) => encode(UTF8_STRING, &canon(&text), &mut body),
                None => body.extend_from_slice(value.whole),
            }
        }
        let mut out = Vec::new();
        encode(SEQUENCE, &body, &mut out);
        out
    }

    /// A string value as UTF-8 (T61String read as Latin-1, as OpenSSL does); `None` for
    /// types OpenSSL leaves as they are.
    fn to_utf8(value: &Tlv<'_>) -> Option<Vec<u8>> {
        let c = value.content;
        let text: String = match value.tag {
            0x0c | 0x13 | 0x16 | 0x1a => return Some(c.to_vec()),
            0x14 => c.iter().map(|&b| char::from(b)).collect(),
            0x1e => char::decode_utf16(
                c.chunks(2)
                    .map(|p| u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)])),
            )
            .map(|r| r.unwrap_or('\u{fffd}'))
            .collect(),
            0x1c => c
                .chunks(4)
                .map(|p| {
                    let v = p.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
                    char::from_u32(v).unwrap_or('\u{fffd}')
                })
                .collect(),
            _ => return None,
        };
        Some(text.into_bytes())
    }

    /// Leading and trailing blanks dropped, inner runs folded to one space, ASCII
    /// lower-cased (OpenSSL's `asn1_string_canon`).
    fn canon(text: &[u8]) -> Vec<u8> {
        let blank = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
        let start = text.iter().position(|b| !blank(b)).unwrap_or(text.len());
        let end = text
            .iter()
            .rposition(|b| !blank(b))
            .map_or(start, |i| i + 1);
        let mut out = Vec::with_capacity(end - start);
        let mut in_blank = false;
        for b in &text[start..end] {
            if blank(b) {
                if !in_blank {
                    out.push(b' ');
                }
                in_blank = true;
            } else {
                out.push(b.to_ascii_lowercase());
                in_blank = false;
            }
        }
        out
    }

    fn encode(tag: u8, content: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    const MOZILLA: &str = "/usr/share/ca-certificates/mozilla";

    /// A CA directory as update-ca-certificates lays it out before rehashing: a
    /// `<name>.pem` link to each certificate, the bundle, one duplicate and one stray.
    fn ca_dir(dir: &Path) {
        for item in fs::read_dir(MOZILLA).unwrap() {
            let path = item.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            symlink(&path, dir.join(format!("{stem}.pem"))).unwrap();
        }
        let first = fs::read_dir(MOZILLA)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        symlink(&first, dir.join("zz-duplicate.pem")).unwrap();
        fs::write(dir.join("notes.txt"), "not a certificate").unwrap();
        let bundle: Vec<u8> = fs::read_dir(MOZILLA)
            .unwrap()
            .take(3)
            .flat_map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect();
        fs::write(dir.join("bundle.crt"), bundle).unwrap();
    }

    fn hash_links(dir: &Path) -> BTreeMap<String, String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| fs::symlink_metadata(p).unwrap().file_type().is_symlink())
            .filter(|p| p.file_name().unwrap().to_string_lossy().chars().nth(8) == Some('.'))
            .map(|p| {
                let target = fs::read_link(&p).unwrap().to_string_lossy().into_owned();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    target,
                )
            })
            .collect()
    }

    fn both(ours: &Path, theirs: &Path) {
        let status = Command::new("openssl")
            .arg("rehash")
            .arg(theirs)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(rehash_command(vec![ours.display().to_string()]), 0);
        assert_eq!(hash_links(ours), hash_links(theirs));
    }

    #[test]
    fn links_as_openssl_rehash_makes_them() {
        if !Path::new(MOZILLA).is_dir() {
            assert!(
                std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
                "{MOZILLA} missing"
            );
            eprintln!("skipped: {MOZILLA} missing (apt-get install ca-certificates)");
            return;
        }
        let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        ca_dir(ours.path());
        ca_dir(theirs.path());
        both(ours.path(), theirs.path());
        assert!(hash_links(ours.path()).len() > 100);
        // A rerun after certificates went and a stale link appeared.
        for dir in [ours.path(), theirs.path()] {
            let links = hash_links(dir);
            let (_, target) = links.iter().next().unwrap();
            fs::remove_file(dir.join(target)).unwrap();
            symlink("gone.pem", dir.join("0badf00d.0")).unwrap();
        }
        both(ours.path(), theirs.path());
    }

    #[test]
    fn canonical_names_fold_case_and_blanks() {
        // Two subjects differing only in case and blanks hash alike, as in OpenSSL.
        let name = |cn: &[u8], tag: u8| {
            let mut ava = vec![0x06, 0x03, 0x55, 0x04, 0x03, tag, cn.len() as u8];
            ava.extend_from_slice(cn);
            let mut seq = vec![0x30, ava.len() as u8];
            seq.extend(ava);
            let mut set = vec![0x31, seq.len() as u8];
            set.extend(seq);
            set
        };
        let a = x509::name_hash(&name(b"  Example   Root CA ", 0x13));
        let b = x509::name_hash(&name(b"example root ca", 0x0c));
        assert_eq!(a, b);
        assert_ne!(a, x509::name_hash(&name(b"example root cb", 0x0c)));
    }
}
