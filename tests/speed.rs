//! Issue 16 through the binary: the cold start uses the bundled tools' code compiled when
//! kiln was built, and `--output` takes BuildKit's compression options.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::path::Path;

use support::{Workspace, assert_fails_with, assert_ok};

/// The media type and first bytes of the single layer in the OCI layout at `dir`.
fn only_layer(dir: &Path) -> (String, Vec<u8>) {
    let read_json = |p: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |digest: &serde_json::Value| {
        let d = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        dir.join("blobs/sha256").join(d)
    };
    let index = read_json(&dir.join("index.json"));
    let manifest = read_json(&blob(&index["manifests"][0]["digest"]));
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let bytes = std::fs::read(blob(&layers[0]["digest"])).unwrap();
    (layers[0]["mediaType"].as_str().unwrap().to_owned(), bytes)
}

fn export(ws: &Workspace, name: &str, options: &str) -> std::process::Output {
    let dest = ws.path(name);
    ws.build(&[
        "-o",
        &format!("type=oci,tar=false,dest={}{options}", dest.display()),
    ])
}

#[test]
fn oci_output_takes_buildkits_compression_option() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nCOPY f /f\n");
    ws.write("f", "some bytes\n");
    let cases = [
        (
            "zstd",
            ",compression=zstd",
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        (
            "gzip",
            ",compression=gzip,force-compression=false",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        ("default", "", "application/vnd.oci.image.layer.v1.tar+gzip"),
        (
            "none",
            ",compression=uncompressed",
            "application/vnd.oci.image.layer.v1.tar",
        ),
    ];
    for (name, options, media_type) in cases {
        assert_ok(&export(&ws, name, options));
        let (found, bytes) = only_layer(&ws.path(name));
        assert_eq!(found, media_type, "{name}");
        let magic: &[u8] = match name {
            "zstd" => &[0x28, 0xb5, 0x2f, 0xfd],
            "none" => b"f\0",
            _ => &[0x1f, 0x8b],
        };
        assert!(bytes.starts_with(magic), "{name}: {:02x?}", &bytes[..4]);
    }
}

#[test]
fn compression_kiln_cannot_honour_is_an_error_not_ignored() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nCOPY f /f\n");
    ws.write("f", "x\n");
    let cases = [
        (",compression=lz4", "expected uncompressed, gzip or zstd"),
        (",compression=estargz", "estargz is not supported"),
        (
            ",compression=zstd,compression-level=19",
            "compression-level=19 is not supported",
        ),
        (
            ",force-compression=true",
            "force-compression=true is not supported",
        ),
    ];
    for (options, message) in cases {
        assert_fails_with(&export(&ws, "out", options), message);
    }
    let a = format!(
        "type=oci,dest={},compression=zstd",
        ws.path("a.tar").display()
    );
    let b = format!(
        "type=docker,dest={},compression=gzip",
        ws.path("b.tar").display()
    );
    assert_fails_with(
        &ws.build(&["-o", &a, "-o", &b]),
        "different layer compressions",
    );
}

/// A first build on a fresh machine: empty cache, empty module cache. The bundled tools
/// run from the code compiled when kiln was built, so nothing is compiled and nothing is
/// written to the module cache.
#[test]
fn a_cold_start_compiles_nothing() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY f /f\nRUN [\"/bin/sha256sum\", \"/f\"]\nRUN [\"/bin/ls\", \"/\"]\n",
    );
    ws.write("f", "x\n");
    let modules = ws.path("modules");
    let out = ws
        .kiln()
        .env("KILN_MODULE_CACHE", &modules)
        .args(["build", "--progress", "plain"])
        .arg(ws.context())
        .output()
        .unwrap();
    assert_ok(&out);
    let text = support::text(&out.stderr);
    assert!(text.contains("/f"), "{text}");
    let compiled: Vec<_> = std::fs::read_dir(&modules)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        compiled
            .iter()
            .all(|n| !n.to_string_lossy().ends_with(".cwasm")),
        "a bundled module was compiled at run time: {compiled:?}"
    );
}
