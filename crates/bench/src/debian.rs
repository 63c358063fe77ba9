//! The `apt` scenario's inputs: the Debian bookworm base tarball and the signed loopback
//! mirror of real `.deb`s that kiln's package tests use (made once per machine, as root,
//! by `tests/differential/make-debian-base` and `tests/packages/make-debian-mirror`).
//! The bench reads them and never makes them: making them takes minutes and Debian's
//! tools, and a missing one is reported with the command that makes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kiln_oci::{Compression, ImageConfig, LayerWriter, Layout, Platform};

use crate::base::TAG;

/// Where `make-debian-base` writes the base (a plain tar of an mmdebstrap minbase tree).
const DEFAULT_BASE: &str = "/var/tmp/kiln-test/debian-bookworm.tar";
/// Where `make-debian-mirror` writes the mirror (`dists/`, `pool/`, `kiln-test.gpg`).
const DEFAULT_MIRROR: &str = "/var/tmp/kiln-test/debian-mirror";

/// The signed suite of the mirror (the others exist to be refused).
pub(crate) const SUITE: &str = "bookworm";
/// Where the Dockerfile puts the mirror's key, and what `signed-by=` names.
pub(crate) const KEYRING: &str = "/usr/share/keyrings/kiln-test.gpg";
/// The image's creation time: the base is a snapshot, and a fixed time keeps its digest.
const EPOCH: i64 = 1_700_000_000;

/// The base tarball and the mirror directory, both found.
pub(crate) struct Inputs {
    pub base_tar: PathBuf,
    pub mirror: PathBuf,
}

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The inputs (`KILN_TEST_DEBIAN`, `KILN_TEST_DEBIAN_MIRROR` override the paths, as in
/// the tests), or what to run to make them.
pub(crate) fn inputs() -> Result<Inputs> {
    let base_tar = env_path("KILN_TEST_DEBIAN", DEFAULT_BASE);
    let mirror = env_path("KILN_TEST_DEBIAN_MIRROR", DEFAULT_MIRROR);
    if !base_tar.is_file() {
        bail!(
            "the Debian base {} is missing: run tests/differential/make-debian-base as root",
            base_tar.display()
        );
    }
    if !mirror.join(".complete").exists() {
        bail!(
            "the Debian mirror {} is missing: run tests/packages/make-debian-mirror as root",
            mirror.display()
        );
    }
    Ok(Inputs { base_tar, mirror })
}

/// Writes the base tarball as a one-layer OCI image into a new layout at `dir`, tagged
/// [`TAG`], with the `PATH` and `bash` command Docker Hub's Debian images have.
pub(crate) fn write_layout(base_tar: &Path, dir: &Path) -> Result<PathBuf> {
    let layout = Layout::open_or_create(dir).context("creating the Debian layout")?;
    // Uncompressed: the layer is read back at once, by kiln and by dockerd's load.
    let mut writer = LayerWriter::new(&layout, Compression::None)?;
    let mut tar =
        std::fs::File::open(base_tar).with_context(|| format!("opening {}", base_tar.display()))?;
    std::io::copy(&mut tar, &mut writer).context("writing the Debian layer")?;
    let layer = writer.finish()?;
    let mut config = ImageConfig::new(&Platform::host_linux(), EPOCH);
    config.update_container(|c| {
        c.set_env(Some(vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ]));
        c.set_cmd(Some(vec!["bash".to_owned()]));
    });
    config.add_layer(
        &layer.diff_id,
        "mmdebstrap --variant=minbase bookworm",
        None,
        EPOCH,
    );
    let desc = layout.write_image(&config, &[layer], &BTreeMap::new())?;
    layout.tag(TAG, &desc)?;
    Ok(dir.to_path_buf())
}
