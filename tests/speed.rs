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

/// The manifest digest a build reports (`built NAME (sha256:...)`).
fn built_digest(out: &std::process::Output) -> String {
    let log = format!(
        "{}{}",
        support::text(&out.stdout),
        support::text(&out.stderr)
    );
    let line = log.lines().find(|l| l.starts_with("built ")).unwrap();
    line.split(['(', ')']).nth(1).unwrap().to_owned()
}

#[test]
fn a_base_image_is_unpacked_once_and_kept_between_builds() {
    let ws = Workspace::new();
    // A base image with a few files, written by kiln as an OCI layout.
    ws.write("etc/os-release", "ID=kiln-test\n");
    ws.write("big", vec![b'x'; 200_000]);
    ws.write("Dockerfile", "FROM scratch\nCOPY etc /etc\nCOPY big /big\n");
    let base = ws.path("base");
    assert_ok(&ws.build(&["-o", &format!("type=oci,tar=false,dest={}", base.display())]));
    ws.write(
        "Dockerfile",
        "FROM base\nRUN cat /etc/os-release /big | wc -c > /n\n",
    );
    let context = format!("base=oci-layout://{}", base.display());
    let build = || {
        let out = ws.build(&["--build-context", &context, "--no-cache", "-t", "probe"]);
        assert_ok(&out);
        built_digest(&out)
    };
    let first = build();
    let bases = ws.cache().join("bases");
    let records: Vec<_> = std::fs::read_dir(&bases).unwrap().collect();
    assert_eq!(records.len(), 1, "one record for the one base");
    let record = records[0].as_ref().unwrap().path();
    // The second build starts from the record: same files, same image.
    assert_eq!(build(), first);
    // It really is the record that gives the files: one the cache's key vouches for,
    // with another /etc/os-release, changes the image.
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, forged_record(&ws, &good)).unwrap();
    assert_ne!(build(), first);
    std::fs::write(&record, &good).unwrap();
    assert_eq!(build(), first);
    // A damaged record is not used: the layers are unpacked again, the record rewritten.
    let mut bytes = std::fs::read(&record).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&record, &bytes).unwrap();
    assert_eq!(build(), first);
    assert_ne!(std::fs::read(&record).unwrap(), bytes, "rewritten");
}

/// `record` with /etc/os-release changed, signed with the workspace cache's key.
fn forged_record(ws: &Workspace, record: &[u8]) -> Vec<u8> {
    let store = kiln_fs::Store::open(ws.cache().join("files")).unwrap();
    let key = kiln_fs::MacKey::load_or_create(&ws.cache().join("secret-key")).unwrap();
    let body = &record[..record.len() - kiln_fs::MAC_LEN];
    let mut tree = kiln_fs::Tree::from_snapshot(&kiln_fs::Snapshot::decode(body, &store).unwrap());
    let root = tree.root();
    let f = tree
        .resolve(root, b"etc/os-release", kiln_fs::Follow::No)
        .unwrap();
    tree.set_len(f, 0).unwrap();
    tree.write_at(f, 0, b"ID=from-the-record\n").unwrap();
    let mut forged = tree.snapshot().unwrap().encode();
    let tag = key.sign(&[&forged]);
    forged.extend_from_slice(&tag);
    forged
}
