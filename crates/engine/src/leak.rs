//! The leak guard: scans what the build wrote for secret values.
//!
//! Secrets are mounts, so by construction no layer can contain one unless a step copied
//! the value into a file. This is the defence in depth that catches that: every layer the
//! build wrote to the cache (uncompressed, entry by entry, all stages), the config, the
//! history, the file store and cache mounts are scanned for every secret value of 8 bytes
//! or more. Matching is on bytes, so a value that is not UTF-8 is found as well.
//!
//! A finding names the secret id and where it was found, never the value: a path that
//! contains a value (`touch "/$(cat /run/secrets/s)"`) is shown redacted like a log line.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::{LeakPolicy, Shared_};
use crate::error::BuildError;
use crate::progress::Event;
use crate::redact::{PatternError, SecretPatterns};
use crate::secrets::{SecretId, Secrets};
use crate::state::StageLayer;

#[derive(Debug, thiserror::Error)]
pub enum LeakError {
    #[error("leak guard: cannot scan {what}: {source}")]
    Scan {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "leak guard: cannot remove {path} (it holds a secret value; delete it by hand or run `kiln prune`): {source}"
    )]
    Purge {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("leak guard: cannot read {what}: {source}")]
    Blob {
        what: String,
        source: kiln_oci::OciError,
    },
    #[error(transparent)]
    Patterns(#[from] PatternError),
}

/// Where a secret value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    pub secret: SecretId,
    /// A file path inside the layer (redacted), or a description such as `image config`.
    pub location: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the value of secret {:?} was found in {}",
            self.secret, self.location
        )
    }
}

/// The secret values to look for, and the ones to mask in what a finding shows.
#[derive(Clone)]
pub(crate) struct Guard {
    /// Values of 8+ bytes: shorter ones would match ordinary files by chance.
    find: SecretPatterns,
    /// Every value, as logs are redacted: a path may hold a short value too.
    mask: SecretPatterns,
}

impl Guard {
    pub(crate) fn new(secrets: &Secrets) -> Result<Self, PatternError> {
        Ok(Self {
            find: SecretPatterns::for_leak_guard(secrets)?,
            mask: SecretPatterns::for_redaction(secrets)?,
        })
    }

    /// True when there is nothing to look for (no secret of 8+ bytes).
    pub(crate) fn is_empty(&self) -> bool {
        self.find.is_empty()
    }

    /// Raw bytes (a tar path) as text fit to show: values masked first, then made UTF-8.
    fn shown(&self, bytes: &[u8]) -> String {
        String::from_utf8_lossy(&self.mask.redact(bytes)).into_owned()
    }

    /// Scans an uncompressed layer tar stream; returns the first finding.
    pub(crate) fn scan_layer(&self, tar_stream: impl Read) -> std::io::Result<Option<Finding>> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut archive = tar::Archive::new(tar_stream);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path_bytes().into_owned();
            let mut meta = path.clone();
            if let Some(link) = entry.link_name_bytes() {
                meta.push(b'\0');
                meta.extend_from_slice(&link);
            }
            let found = match self.find.find(&meta) {
                Some(hit) => Some(hit),
                None => self.find.find_in_reader(&mut entry)?,
            };
            if let Some(hit) = found {
                let rel = trim_tar_prefix(&path);
                return Ok(Some(Finding {
                    secret: hit.secret,
                    location: format!("/{}", self.shown(rel)),
                }));
            }
        }
        Ok(None)
    }

    /// Scans a document the image publishes (config, history).
    pub(crate) fn scan_bytes(&self, what: &str, bytes: &[u8]) -> Option<Finding> {
        self.find.find(bytes).map(|found| Finding {
            secret: found.secret,
            location: what.to_owned(),
        })
    }

    /// The secret whose value a stream holds, if any (bounded memory).
    pub(crate) fn scan_stream(&self, reader: impl Read) -> std::io::Result<Option<SecretId>> {
        Ok(self.find.find_in_reader(reader)?.map(|l| l.secret))
    }

    /// Deletes every file under `dir` modified at or after `since` whose content holds a
    /// secret value (the fs content store keeps large files of frozen trees and cache
    /// mounts there, outside any layer). Files older than the build cannot hold this
    /// build's output; scanning only the new ones keeps the cost linear in what was
    /// written. Returns how many files were removed.
    pub(crate) fn purge_files(&self, dir: &Path, since: SystemTime) -> Result<usize, LeakError> {
        if self.is_empty() || !dir.exists() {
            return Ok(0);
        }
        let mut removed = 0;
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.map_err(|e| LeakError::Scan {
                what: dir.display().to_string(),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() || !modified_since(&entry, since) {
                continue;
            }
            if self.file_leaks(entry.path())? {
                std::fs::remove_file(entry.path()).map_err(|source| LeakError::Purge {
                    path: entry.path().to_owned(),
                    source,
                })?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn file_leaks(&self, path: &Path) -> Result<bool, LeakError> {
        let scan = |source| LeakError::Scan {
            what: path.display().to_string(),
            source,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            // Removed meanwhile (another build's purge): nothing left to scan.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(scan(e)),
        };
        Ok(self
            .scan_stream(std::io::BufReader::new(file))
            .map_err(scan)?
            .is_some())
    }
}

/// Runs the guard over everything this build left at rest: the config and history (when
/// an image is about to be written), every layer any stage wrote or reused, and the file
/// store. With `--secret-leak=error` (the default) leaking layers, the step records that
/// name them and store files holding a value are deleted and the build fails; with
/// `warn` each finding is a warning and nothing the image needs is touched.
pub(crate) fn guard_build(shared: &Shared_, config: Option<&[u8]>) -> Result<(), BuildError> {
    let guard = &shared.guard;
    if guard.is_empty() {
        return Ok(());
    }
    let mut findings = Vec::new();
    if let Some(f) = config.and_then(|json| guard.scan_bytes("the image config or history", json)) {
        findings.push(f);
    }
    let mut leaking = Vec::new();
    for layer in written_layers(shared) {
        if let Some(mut f) = scan_stored_layer(shared, &layer)? {
            let digest = layer.layer.descriptor.digest().to_string();
            f.location = format!("{} (layer {digest})", f.location);
            findings.push(f);
            leaking.push(layer);
        }
    }
    let Some(first) = findings.first() else {
        return Ok(());
    };
    match shared.req.leak_policy {
        LeakPolicy::Error => {
            for layer in &leaking {
                purge_layer(shared, layer)?;
            }
            purge_store(shared)?;
            Err(BuildError::Leak {
                secret: first.secret.clone(),
                location: first.location.clone(),
            })
        }
        LeakPolicy::Warn => {
            for f in &findings {
                shared.events.emit(Event::Warning {
                    message: format!("secret leak: {f}"),
                });
            }
            Ok(())
        }
    }
}

/// Acts on cache mounts that held a secret value (their new contents were not saved): the
/// store files holding a value (a mount's large files) are deleted, then the build fails
/// naming the mount and the secret, or with `--secret-leak=warn` each is a warning.
pub(crate) fn mount_leaks(shared: &Shared_, leaks: &[Finding]) -> Result<(), BuildError> {
    let Some(first) = leaks.first() else {
        return Ok(());
    };
    purge_store(shared)?;
    match shared.req.leak_policy {
        LeakPolicy::Error => Err(BuildError::Leak {
            secret: first.secret.clone(),
            location: first.location.clone(),
        }),
        LeakPolicy::Warn => {
            for f in leaks {
                shared.events.emit(Event::Warning {
                    message: format!("secret leak: {f}"),
                });
            }
            Ok(())
        }
    }
}

fn written_layers(shared: &Shared_) -> Vec<StageLayer> {
    shared
        .written
        .lock()
        .map(|w| w.values().cloned().collect())
        .unwrap_or_default()
}

/// Scans one layer blob of the cache's blob store, uncompressed.
fn scan_stored_layer(shared: &Shared_, layer: &StageLayer) -> Result<Option<Finding>, LeakError> {
    let desc = &layer.layer.descriptor;
    let what = format!("layer {}", desc.digest());
    let scan = |source| LeakError::Scan {
        what: what.clone(),
        source,
    };
    let oci = |source| LeakError::Blob {
        what: what.clone(),
        source,
    };
    let digest = kiln_oci::Digest::from_oci(desc.digest()).map_err(oci)?;
    let blob = match shared.blobs.open_blob(&digest) {
        Ok(blob) => blob,
        // Already purged by a concurrent build that caught the same leak.
        Err(_) if !shared.blobs.has_blob(&digest) => return Ok(None),
        Err(e) => return Err(oci(e)),
    };
    let reader = kiln_oci::decompress_layer(blob, desc.media_type(), &what).map_err(oci)?;
    shared.guard.scan_layer(reader).map_err(scan)
}

/// Deletes a leaking layer's blob and every step record that names it, so no later build
/// reuses it.
fn purge_layer(shared: &Shared_, layer: &StageLayer) -> Result<(), LeakError> {
    let desc = &layer.layer.descriptor;
    shared.cache.forget_layer(desc.digest().as_ref());
    let Ok(digest) = kiln_oci::Digest::from_oci(desc.digest()) else {
        return Ok(());
    };
    let path = shared.blobs.blob_path(&digest);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(LeakError::Purge { path, source: e })
        }
        _ => Ok(()),
    }
}

/// Deletes the file store's content files written by this build that hold a value (large
/// files of frozen trees and cache mounts live there, outside any layer). The store keeps
/// them under `files/blobs/` of the cache.
fn purge_store(shared: &Shared_) -> Result<(), LeakError> {
    let dir = crate::places::CacheLayout::new(&shared.req.cache_dir)
        .files()
        .join("blobs");
    shared.guard.purge_files(&dir, shared.started)?;
    Ok(())
}

/// Slack for coarse file-system timestamps (some keep whole seconds): a file written in
/// the build's first moments must still count as new.
const MTIME_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

fn modified_since(entry: &walkdir::DirEntry, since: SystemTime) -> bool {
    let since = since.checked_sub(MTIME_SLACK).unwrap_or(since);
    entry
        .metadata()
        .ok()
        .and_then(|m| m.modified().ok())
        // A file whose time cannot be read is scanned rather than trusted.
        .is_none_or(|t| t >= since)
}

fn trim_tar_prefix(path: &[u8]) -> &[u8] {
    let mut p = path;
    while let Some(rest) = p.strip_prefix(b"./").or_else(|| p.strip_prefix(b"/")) {
        p = rest;
    }
    p
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::secrets::{SecretId, SecretValue, Secrets};

    fn guard_for(pairs: &[(&str, &[u8])]) -> Guard {
        let mut s = Secrets::default();
        for (id, v) in pairs {
            s.insert(SecretId::new(*id).unwrap(), SecretValue::new(v.to_vec()));
        }
        Guard::new(&s).unwrap()
    }

    fn guard() -> Guard {
        guard_for(&[("netrc", b"machine h login admin password hunter22\n")])
    }

    fn tar_with(files: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_path(std::ffi::OsStr::from_bytes(path)).unwrap();
            h.set_cksum();
            b.append(&h, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn finds_the_file_holding_a_secret() {
        let mut big = vec![b'x'; 300_000];
        big[200_000..200_039].copy_from_slice(b"machine h login admin password hunter22");
        let layer = tar_with(&[(b"ok.txt", b"Hello"), (b"leak", &big)]);
        let f = guard().scan_layer(&layer[..]).unwrap().unwrap();
        assert_eq!(f.secret.as_str(), "netrc");
        assert_eq!(f.location, "/leak");
        assert!(!f.to_string().contains("hunter22"));
    }

    #[test]
    fn a_path_made_of_the_value_is_shown_redacted() {
        let g = guard_for(&[("s", b"TOPSECRET-42")]);
        let layer = tar_with(&[(b"TOPSECRET-42/", b""), (b"TOPSECRET-42/x", b"")]);
        let f = g.scan_layer(&layer[..]).unwrap().unwrap();
        assert_eq!(f.location, "/****/");
        assert!(!f.to_string().contains("TOPSECRET"));
    }

    #[test]
    fn binary_values_are_found_in_content_and_paths() {
        let value: &[u8] = b"\xffTOKEN-binary-1";
        let g = guard_for(&[("bin", value)]);
        let mut body = b"prefix ".to_vec();
        body.extend_from_slice(value);
        let layer = tar_with(&[(b"a", b"TOKEN-binary-1"), (b"b", &body)]);
        assert_eq!(g.scan_layer(&layer[..]).unwrap().unwrap().location, "/b");
        let mut path = b"d".to_vec();
        path.extend_from_slice(value);
        let layer = tar_with(&[(&path, b"")]);
        let f = g.scan_layer(&layer[..]).unwrap().unwrap();
        assert_eq!(f.location, "/d****");
    }

    #[test]
    fn clean_layers_and_config_pass() {
        let layer = tar_with(&[(b"message.txt", b"Hello, Admin\n")]);
        assert_eq!(guard().scan_layer(&layer[..]).unwrap(), None);
        assert_eq!(guard().scan_bytes("image config", b"{}"), None);
        let hit = guard()
            .scan_bytes(
                "image history",
                b"RUN echo machine h login admin password hunter22",
            )
            .unwrap();
        assert_eq!(hit.location, "image history");
    }

    #[test]
    fn purge_removes_only_new_files_holding_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("ab");
        std::fs::create_dir_all(&sub).unwrap();
        let mut leaky = vec![b'.'; 100_000];
        leaky[70_000..70_039].copy_from_slice(b"machine h login admin password hunter22");
        std::fs::write(sub.join("leaky"), &leaky).unwrap();
        std::fs::write(sub.join("clean"), vec![b'.'; 100_000]).unwrap();
        let start = SystemTime::now();
        // A file from before the build is not this build's output.
        let later = start + std::time::Duration::from_secs(60);
        assert_eq!(guard().purge_files(dir.path(), later).unwrap(), 0);
        assert_eq!(guard().purge_files(dir.path(), start).unwrap(), 1);
        assert!(!sub.join("leaky").exists());
        assert!(sub.join("clean").exists());
    }
}
