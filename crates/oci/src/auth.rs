//! Registry credentials: explicit ones, or Docker's `config.json` (`auths`, `credHelpers`,
//! `credsStore`) with `docker-credential-*` helpers, as `docker login` leaves them.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{OciError, Result};
use crate::layout::read_limited;

/// Credentials for one registry. `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken` / a helper's `<token>` user).
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken(_) => write!(f, "IdentityToken(<redacted>)"),
        }
    }
}

#[derive(Default, Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// Where credentials come from: explicit entries first, then Docker's config file.
#[derive(Clone, Debug, Default)]
pub struct CredentialStore {
    explicit: BTreeMap<String, Credentials>,
    docker_config: Option<PathBuf>,
    /// Where to find `docker-credential-*` (None: on `PATH`, as Docker does). Tests set it
    /// instead of changing `PATH` under other threads.
    helper_dir: Option<PathBuf>,
}

impl CredentialStore {
    /// No credentials at all (anonymous access only).
    pub fn anonymous() -> CredentialStore {
        CredentialStore::default()
    }

    /// Docker's config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn from_docker_config() -> CredentialStore {
        let path = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"));
        CredentialStore {
            explicit: BTreeMap::new(),
            docker_config: path,
            helper_dir: None,
        }
    }

    /// A specific Docker-style config file.
    pub fn with_docker_config_file(path: PathBuf) -> CredentialStore {
        CredentialStore {
            explicit: BTreeMap::new(),
            docker_config: Some(path),
            helper_dir: None,
        }
    }

    /// Use `creds` for `registry` (`host[:port]`), overriding the config file.
    pub fn insert(&mut self, registry: &str, creds: Credentials) {
        self.explicit.insert(registry.to_owned(), creds);
    }

    /// Credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub), if any.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        if let Some(c) = self.explicit.get(registry) {
            return Ok(Some(c.clone()));
        }
        let Some(path) = &self.docker_config else {
            return Ok(None);
        };
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = read_limited(path, 1 << 20)?;
        let cfg: DockerConfigFile = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::json(path.display().to_string(), e))?;
        let keys = config_keys(registry);
        if let Some(helper) = keys.iter().find_map(|k| cfg.cred_helpers.get(k)) {
            return run_helper(helper, registry, self.helper_dir.as_deref());
        }
        for key in &keys {
            if let Some(entry) = cfg.auths.get(key).or_else(|| find_by_host(&cfg.auths, key))
                && let Some(c) = entry_credentials(entry, registry)?
            {
                return Ok(Some(c));
            }
        }
        match &cfg.creds_store {
            Some(store) => run_helper(store, registry, self.helper_dir.as_deref()),
            None => Ok(None),
        }
    }
}

/// The keys `docker login` may have stored a registry's credentials under.
fn config_keys(registry: &str) -> Vec<String> {
    if registry == "docker.io"
        || registry == "registry-1.docker.io"
        || registry == "index.docker.io"
    {
        return vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ];
    }
    vec![
        registry.into(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ]
}

/// Keys written as URLs (`https://host/v1/`) match by their host part.
fn find_by_host<'a>(auths: &'a BTreeMap<String, AuthEntry>, host: &str) -> Option<&'a AuthEntry> {
    auths.iter().find_map(|(k, v)| {
        let bare = k
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        (bare == host).then_some(v)
    })
}

fn entry_credentials(e: &AuthEntry, registry: &str) -> Result<Option<Credentials>> {
    if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(t.clone())));
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    let Some(auth) = e.auth.as_ref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = || OciError::Auth {
        registry: registry.to_owned(),
        reason: "the `auth` entry in the Docker config is not base64 of user:password".into(),
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (u, p) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credentials::Basic {
        username: u.to_owned(),
        password: p.to_owned(),
    }))
}

/// `docker-credential-<helper> get`, server URL on stdin, JSON on stdout.
fn run_helper(
    helper: &str,
    registry: &str,
    dir: Option<&std::path::Path>,
) -> Result<Option<Credentials>> {
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(OciError::Auth {
            registry: registry.into(),
            reason: format!("invalid credential helper name {helper:?}"),
        });
    }
    let program = format!("docker-credential-{helper}");
    let server = if config_keys(registry)[0].starts_with("https://index.docker.io") {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    };
    let fail = |reason: String| OciError::Auth {
        registry: registry.into(),
        reason,
    };
    let path = dir.map_or_else(|| PathBuf::from(&program), |d| d.join(&program));
    let mut child = Command::new(&path)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| fail(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("waiting for {program}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout);
        // Helpers report a missing entry like this; that just means "anonymous".
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!("{program} failed: {}", msg.trim())));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("{program} printed invalid JSON: {e}")))?;
    Ok(Some(if reply.username == "<token>" {
        Credentials::IdentityToken(reply.secret)
    } else {
        Credentials::Basic {
            username: reply.username,
            password: reply.secret,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                   "localhost:5000":{{"auth":"{auth}"}},
                   "https://ghcr.io":{{"identitytoken":"tok"}}}}}}"#
            ),
        )
        .unwrap();
        let store = CredentialStore::with_docker_config_file(path);
        let alice = Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        });
        assert_eq!(store.lookup("docker.io").unwrap(), alice);
        assert_eq!(store.lookup("localhost:5000").unwrap(), alice);
        assert_eq!(
            store.lookup("ghcr.io").unwrap(),
            Some(Credentials::IdentityToken("tok".into()))
        );
        assert_eq!(store.lookup("quay.io").unwrap(), None);
        assert!(!format!("{alice:?}").contains("s3cret"));
    }

    #[cfg(unix)]
    #[test]
    fn runs_credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-kilntest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"pw-%s\"}' \"$server\" \"$server\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"reg.example:443":"kilntest"}}"#).unwrap();
        let mut store = CredentialStore::with_docker_config_file(path);
        store.helper_dir = Some(dir.path().to_path_buf());
        assert_eq!(
            store.lookup("reg.example:443").unwrap(),
            Some(Credentials::Basic {
                username: "bob".into(),
                password: "pw-reg.example:443".into()
            })
        );
    }
}
