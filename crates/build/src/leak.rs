//! The leak guard: scans what the build is about to publish for secret values.
//!
//! Secrets are mounts, so by construction no layer can contain one unless a step copied
//! the value into a file. This is the defence in depth that catches that: every layer
//! (uncompressed, entry by entry), the config and the history are scanned for every
//! secret value of 8 bytes or more. A finding names the secret id and where it was found,
//! never the value.

use std::io::Read;

use crate::redact::SecretPatterns;

/// Where a secret value was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub secret: String,
    /// A file path inside the layer, or `image config` / `image history`.
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

/// Scans an uncompressed layer tar stream; returns the first finding.
pub fn scan_layer(
    patterns: &SecretPatterns,
    tar_stream: impl Read,
) -> std::io::Result<Option<Finding>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let location = format!("/{}", path.trim_start_matches("./").trim_start_matches('/'));
        let mut meta = entry.path_bytes().into_owned();
        if let Some(link) = entry.link_name_bytes() {
            meta.extend_from_slice(&link);
        }
        if let Some(found) = patterns.find(&meta) {
            return Ok(Some(Finding {
                secret: found.secret.to_string(),
                location,
            }));
        }
        if let Some(found) = patterns.find_in_reader(&mut entry)? {
            return Ok(Some(Finding {
                secret: found.secret.to_string(),
                location,
            }));
        }
    }
    Ok(None)
}

/// Scans a JSON document the image publishes (config, history).
pub fn scan_bytes(patterns: &SecretPatterns, what: &str, bytes: &[u8]) -> Option<Finding> {
    patterns.find(bytes).map(|found| Finding {
        secret: found.secret.to_string(),
        location: what.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretName, SecretValue, Secrets};

    fn patterns() -> SecretPatterns {
        let mut s = Secrets::default();
        s.insert(
            SecretName::new("netrc").unwrap(),
            SecretValue::new(b"machine h login admin password hunter22\n".to_vec()),
        );
        SecretPatterns::for_leak_guard(&s).unwrap()
    }

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, body) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn finds_the_file_holding_a_secret() {
        let mut big = vec![b'x'; 300_000];
        big[200_000..200_039].copy_from_slice(b"machine h login admin password hunter22");
        let layer = tar_with(&[("ok.txt", b"Hello"), ("leak", &big)]);
        let f = scan_layer(&patterns(), &layer[..]).unwrap().unwrap();
        assert_eq!(f.secret, "netrc");
        assert_eq!(f.location, "/leak");
        assert!(!f.to_string().contains("hunter22"));
    }

    #[test]
    fn clean_layers_and_config_pass() {
        let layer = tar_with(&[("message.txt", b"Hello, Admin\n")]);
        assert_eq!(scan_layer(&patterns(), &layer[..]).unwrap(), None);
        assert_eq!(scan_bytes(&patterns(), "image config", b"{}"), None);
        let hit = scan_bytes(
            &patterns(),
            "image history",
            b"RUN echo machine h login admin password hunter22",
        )
        .unwrap();
        assert_eq!(hit.location, "image history");
    }
}
