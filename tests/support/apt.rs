//! The offline Debian repository the package tests install from
//! (`tests/packages/make-debian-mirror`: real bookworm .debs for amd64 and arm64, signed
//! with a key made there), served over loopback HTTP, and the arm64 base
//! (`tests/packages/make-debian-arm64-base`) as an OCI layout. Without them, tests skip
//! loudly unless `KILN_REQUIRE_DEBIAN` is set (as `.ci/run` does).

use std::path::{Component, Path, PathBuf};

use super::{Reply, RouteServer, debian};

/// Where the mirror is when `KILN_TEST_DEBIAN_MIRROR` does not say (machine-wide, made once).
const DEFAULT_MIRROR: &str = "/var/tmp/kiln-test/debian-mirror";
/// Where the arm64 base tarball is when `KILN_TEST_DEBIAN_ARM64` does not say.
const DEFAULT_ARM64: &str = "/var/tmp/kiln-test/debian-bookworm-arm64.tar";

/// Where a test puts the mirror's public key in the image, and what `signed-by=` names.
pub(crate) const KEYRING: &str = "/usr/share/keyrings/kiln-test.gpg";

/// The mirror's suites: the signed one tests install from, and the ones apt must refuse.
pub(crate) const SIGNED: &str = "bookworm";
pub(crate) const UNSIGNED: &str = "unsigned";
pub(crate) const TAMPERED: &str = "tampered";
pub(crate) const WRONG_KEY: &str = "wrongkey";

/// The mirror directory, served on 127.0.0.1 while this lives.
pub(crate) struct Mirror {
    pub dir: PathBuf,
    pub server: RouteServer,
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The mirror, served; `None` after a loud notice when it was never made.
pub(crate) fn mirror() -> Option<Mirror> {
    let dir = env_path("KILN_TEST_DEBIAN_MIRROR", DEFAULT_MIRROR);
    if !dir.join(".complete").exists() {
        debian::missing(&format!(
            "the Debian test mirror {} is missing: run tests/packages/make-debian-mirror \
             as root (needs mmdebstrap, dpkg-dev, apt-utils, gnupg; ~4 min)",
            dir.display()
        ));
        return None;
    }
    let root = dir.clone();
    let server = RouteServer::start(move |path| serve_file(&root, path));
    Some(Mirror { dir, server })
}

/// A file of the mirror, or 404 for anything else (and for any path leaving it).
fn serve_file(root: &Path, url_path: &str) -> Reply {
    let rel = Path::new(url_path.trim_start_matches('/'));
    let inside = rel.components().all(|c| matches!(c, Component::Normal(_)));
    match std::fs::read(root.join(rel)) {
        Ok(body) if inside => (200, Vec::new(), body),
        _ => (404, Vec::new(), b"not found\n".to_vec()),
    }
}

impl Mirror {
    /// The repository's base URL (`http://127.0.0.1:PORT/`).
    pub(crate) fn url(&self) -> String {
        self.server.url("/")
    }

    /// A one-line-style `sources.list` entry for `suite`, trusting [`KEYRING`].
    pub(crate) fn sources_line(&self, suite: &str) -> String {
        format!("deb [signed-by={KEYRING}] {} {suite} main", self.url())
    }

    /// The trusted public key (a binary keyring, as `signed-by=` takes).
    pub(crate) fn key(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("kiln-test.gpg")).expect("the mirror's key")
    }

    /// Dockerfile lines that make the base trust this mirror and use only `suite`
    /// (the base's own sources name deb.debian.org, which a test must never reach);
    /// the key is copied from the context file `kiln-test.gpg` ([`Mirror::write_key`]).
    pub(crate) fn setup_lines(&self, suite: &str) -> String {
        format!(
            "COPY kiln-test.gpg {KEYRING}\n\
             RUN echo '{}' > /etc/apt/sources.list\n",
            self.sources_line(suite)
        )
    }

    /// Writes the key into the build context as `kiln-test.gpg`.
    pub(crate) fn write_key(&self, ws: &super::Workspace) {
        ws.write("kiln-test.gpg", self.key());
    }
}

/// The arm64 base as an OCI layout (`None` after a loud notice when never made).
pub(crate) fn arm64_layout() -> Option<PathBuf> {
    debian::layout_of(
        &env_path("KILN_TEST_DEBIAN_ARM64", DEFAULT_ARM64),
        "arm64",
        "tests/packages/make-debian-arm64-base as root",
    )
}
