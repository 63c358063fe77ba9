//! A real Debian bookworm base for tests that need one: the root filesystem tarball
//! `tests/differential/make-debian-base` makes with mmdebstrap (once per machine), turned
//! here into an OCI image layout that kiln builds `FROM` (through `--build-context`) or
//! that a registry serves to kiln and BuildKit alike.
//!
//! The image looks like Docker Hub's `debian:bookworm`: one layer, `PATH` in Env and
//! `bash` as Cmd. Tests that need it call [`layout`]; without the tarball they skip with
//! a loud notice, unless `KILN_REQUIRE_DEBIAN` is set (as `.ci/run` does), where a
//! missing base fails them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// Where the tarball is when `KILN_TEST_DEBIAN` does not say: a machine-wide place, so
/// every clone and every CI run on this machine shares one mmdebstrap run.
const DEFAULT_TARBALL: &str = "/var/tmp/kiln-test/debian-bookworm.tar";

/// The tag the layout's single image carries.
pub(crate) const TAG: &str = "bookworm";

/// The SOURCE_DATE_EPOCH the tarball is made with (`make-debian-base`), as the image's
/// creation time.
const CREATED: &str = "2023-11-14T22:13:20Z";

/// The environment Docker Hub's Debian images set, which Dockerfiles written for them
/// rely on.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The tarball's path (whether or not it exists).
pub(crate) fn tarball_path() -> PathBuf {
    std::env::var_os("KILN_TEST_DEBIAN")
        .map_or_else(|| PathBuf::from(DEFAULT_TARBALL), PathBuf::from)
}

/// The OCI layout holding the Debian base tagged [`TAG`], made from the tarball on first
/// use and kept under the target dir. `None` (after a loud notice) when the tarball is
/// missing and `KILN_REQUIRE_DEBIAN` is unset; a panic when it is set.
pub(crate) fn layout() -> Option<PathBuf> {
    layout_of(
        &tarball_path(),
        oci_arch(),
        "tests/differential/make-debian-base (or point KILN_TEST_DEBIAN at a tarball)",
    )
}

/// [`layout`] for another root filesystem tarball of `arch`, made by the script `maker`
/// (named in the notice when the tarball is missing).
pub(crate) fn layout_of(tar: &Path, arch: &str, maker: &str) -> Option<PathBuf> {
    let Ok(meta) = std::fs::metadata(tar) else {
        missing(&format!(
            "the Debian base {} is missing: run {maker}; it needs mmdebstrap and minutes",
            tar.display()
        ));
        return None;
    };
    // A new tarball (another mirror snapshot) gets its own layout.
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("debian-layout-{arch}-{}-{mtime}", meta.len()));
    if !dir.join("index.json").exists() {
        make_layout(tar, &dir, arch);
    }
    Some(dir)
}

/// `--build-context` value that makes `FROM <name>` mean the Debian base.
pub(crate) fn build_context(name: &str, layout: &Path) -> String {
    format!("{name}=oci-layout://{}:{TAG}", layout.display())
}

/// Copies the base into `registry` as `debian:bookworm` with skopeo; returns the full
/// name (`127.0.0.1:PORT/debian:bookworm`) to write after `FROM`.
pub(crate) fn push(layout: &Path, registry: &super::Registry) -> String {
    let name = format!("{}/debian:{TAG}", registry.addr);
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{TAG}", layout.display()))
        .arg(format!("docker://{name}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        super::text(&out.stderr)
    );
    name
}

/// A loud skip notice, or a panic when `KILN_REQUIRE_DEBIAN` is set: `how` says what is
/// missing and how to make it.
pub(crate) fn missing(how: &str) {
    if std::env::var_os("KILN_REQUIRE_DEBIAN").is_some() {
        panic!("KILN_REQUIRE_DEBIAN is set and {how}");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {how}\n");
}

/// Writes the layout into a sibling temp dir and renames it into place, so tests racing
/// to make it never see half of one.
fn make_layout(tar: &Path, dir: &Path, arch: &str) {
    let parent = dir.parent().expect("layout parent");
    std::fs::create_dir_all(parent).unwrap();
    let tmp = tempfile::tempdir_in(parent).unwrap();
    let blobs = tmp.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let (layer, diff_id, layer_size) = gzip_layer(tar, &blobs);
    let config = serde_json::json!({
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": { "Env": [DEFAULT_PATH], "Cmd": ["bash"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": CREATED, "created_by": "mmdebstrap --variant=minbase bookworm" }],
    });
    let (config_digest, config_size) = write_blob(&blobs, &serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config_digest, "size": config_size },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": layer, "size": layer_size }],
    });
    let (manifest_digest, manifest_size) =
        write_blob(&blobs, &serde_json::to_vec(&manifest).unwrap());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": manifest_digest, "size": manifest_size,
                        "annotations": { "org.opencontainers.image.ref.name": TAG } }],
    });
    std::fs::write(
        tmp.path().join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    // Another test may have won the race: its layout is as good as ours.
    if std::fs::rename(tmp.path(), dir).is_ok() {
        std::mem::forget(tmp);
    }
}

/// Gzips the tarball into a blob; returns its digest, the uncompressed digest (the
/// config's diff_id) and the blob's size.
fn gzip_layer(tar: &Path, blobs: &Path) -> (String, String, u64) {
    let mut input = std::fs::File::open(tar).unwrap();
    let tmp = blobs.join("layer.tmp");
    let out = HashingWriter::new(std::fs::File::create(&tmp).unwrap());
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut raw = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.update(&buf[..n]);
        gz.write_all(&buf[..n]).unwrap();
    }
    let out = gz.finish().unwrap();
    let digest = hex::encode(out.hash.finalize());
    std::fs::rename(&tmp, blobs.join(&digest)).unwrap();
    (
        format!("sha256:{digest}"),
        format!("sha256:{}", hex::encode(raw.finalize())),
        out.size,
    )
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = hex::encode(Sha256::digest(bytes));
    std::fs::write(blobs.join(&digest), bytes).unwrap();
    (format!("sha256:{digest}"), bytes.len() as u64)
}

/// The OCI name of the host's architecture (kiln builds for the host by default).
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A file writer that hashes and counts what passes through.
struct HashingWriter {
    file: std::fs::File,
    hash: Sha256,
    size: u64,
}

impl HashingWriter {
    fn new(file: std::fs::File) -> Self {
        Self {
            file,
            hash: Sha256::new(),
            size: 0,
        }
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
