//! Minimal OCI image layouts for tests that build `FROM` an image through
//! `--build-context NAME=oci-layout://DIR`, without a registry.

use std::path::Path;

use serde_json::Value;
use sha2::Digest as _;

/// Writes an OCI layout at `dir` holding one `linux/<arch>` image with no layers and
/// `config` as its container config (`Env`, `Cmd`, ...).
pub(crate) fn write_layout(dir: &Path, arch: &str, config: Value) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("layout dir");
    let put = |media: &str, v: Value| -> Value {
        let bytes = v.to_string().into_bytes();
        let digest = hex::encode(sha2::Sha256::digest(&bytes));
        std::fs::write(dir.join("blobs/sha256").join(&digest), &bytes).expect("blob");
        serde_json::json!({"mediaType": media, "digest": format!("sha256:{digest}"), "size": bytes.len()})
    };
    let image = serde_json::json!({"architecture": arch, "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": []}});
    let config = put("application/vnd.oci.image.config.v1+json", image);
    let manifest = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config, "layers": []});
    let manifest = put("application/vnd.oci.image.manifest.v1+json", manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("marker");
}

/// This host's architecture as OCI names it.
pub(crate) fn host_arch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}
