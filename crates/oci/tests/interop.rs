//! Interop with the tools people already use: skopeo and umoci read what kiln writes, and
//! kiln reads what they write. Skipped with a notice if a tool is missing (fatal under CI).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

#[cfg(unix)]
use std::fs;
use std::io::Read;
#[cfg(unix)]
use std::path::Path;
use std::process::Command;

use common::*;
use kiln_oci::*;

fn skopeo_json(args: &[&str]) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(args));
    serde_json::from_str(&out).unwrap()
}

fn all_layers(image: &Image) -> Vec<Vec<u8>> {
    image
        .layers()
        .unwrap()
        .iter()
        .map(|l| {
            let mut v = Vec::new();
            image.open_layer(l).unwrap().read_to_end(&mut v).unwrap();
            v
        })
        .collect()
}

#[test]
fn skopeo_reads_kiln_layout_and_archives_and_kiln_reads_skopeo_copies() {
    if !have_tool("skopeo") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for c in [Compression::Gzip, Compression::Zstd] {
        let store = Layout::open_or_create(w.join(format!("store-{c:?}"))).unwrap();
        let image = build_sample(&store, "app", c);
        let digest = image.digest().unwrap().to_string();
        let oci = format!("oci:{}:app", store.root().display());

        let v = skopeo_json(&["inspect", &oci]);
        assert_eq!(v["Digest"], digest.as_str());
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        assert_eq!(v["Env"][1], "GREETING=hello");
        let cfg = skopeo_json(&["inspect", "--config", &oci]);
        assert_eq!(cfg["config"]["Cmd"][0], "/bin/tool");
        assert_eq!(cfg["history"].as_array().unwrap().len(), 3);

        let oci_tar = w.join(format!("img-{c:?}.oci.tar"));
        write_file_atomic(&oci_tar, |out| write_oci_archive(&image, &["app"], out)).unwrap();
        let v = skopeo_json(&["inspect", &format!("oci-archive:{}:app", oci_tar.display())]);
        assert_eq!(v["Digest"], digest.as_str());

        let docker_tar = w.join(format!("img-{c:?}.docker.tar"));
        write_file_atomic(&docker_tar, |out| {
            write_docker_archive(&image, &["example.com/app:1".into()], out)
        })
        .unwrap();
        let v = skopeo_json(&[
            "inspect",
            &format!("docker-archive:{}", docker_tar.display()),
        ]);
        let diff_ids: Vec<String> = image
            .config
            .diff_ids()
            .unwrap()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(v["Layers"], serde_json::json!(diff_ids), "{v}");
        assert_eq!(v["Env"][1], "GREETING=hello");
        let tags = skopeo_json(&[
            "list-tags",
            &format!("docker-archive:{}", docker_tar.display()),
        ]);
        assert_eq!(
            tags["Tags"],
            serde_json::json!(["example.com/app:1"]),
            "{tags}"
        );

        // skopeo copies each of kiln's outputs; kiln reads every copy back as a base image.
        let dest = Layout::open_or_create(w.join(format!("imported-{c:?}"))).unwrap();
        let sources = [
            oci.clone(),
            format!("oci-archive:{}:app", oci_tar.display()),
            format!("docker-archive:{}", docker_tar.display()),
        ];
        for (i, src) in sources.iter().enumerate() {
            let copy_dir = w.join(format!("copy-{c:?}-{i}"));
            let copy_tar = w.join(format!("copy-{c:?}-{i}.docker.tar"));
            run(Command::new("skopeo").args([
                "copy",
                "-q",
                src,
                &format!("oci:{}:copied", copy_dir.display()),
            ]));
            let mut got = vec![
                import_oci_layout(&copy_dir, Some("copied"), None, &dest, &format!("a{i}"))
                    .unwrap(),
            ];
            // skopeo cannot put zstd layers into a docker-archive ("not supported for docker
            // images"); the docker-archive source itself is uncompressed.
            if c != Compression::Zstd || i == 2 {
                run(Command::new("skopeo").args([
                    "copy",
                    "-q",
                    src,
                    &format!("docker-archive:{}:copied/img:1", copy_tar.display()),
                ]));
                got.push(
                    import_docker_archive(&copy_tar, Some("copied/img:1"), &dest, &format!("b{i}"))
                        .unwrap(),
                );
            }
            for got in &got {
                assert_eq!(all_layers(got), vec![layer1_tar(), layer2_tar()], "{src}");
                assert_eq!(
                    got.config.container().cmd().clone().unwrap(),
                    vec!["/bin/tool"]
                );
                assert_eq!(
                    got.config.diff_ids().unwrap(),
                    image.config.diff_ids().unwrap()
                );
            }
        }
    }
}

#[cfg(unix)]
fn meta(p: &Path) -> (u32, u32, u32, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid(), m.ino())
}

#[cfg(unix)]
#[test]
fn umoci_unpacks_kiln_image_and_kiln_reads_umoci_repack() {
    if !have_tool("umoci") {
        return;
    }
    let root = is_root();
    let work = tempfile::tempdir().unwrap();
    let store = Layout::open_or_create(work.path().join("store")).unwrap();
    build_sample(&store, "app", Compression::Gzip);
    let bundle = work.path().join("bundle");
    let image_arg = format!("{}:app", store.root().display());
    let mut cmd = Command::new("umoci");
    cmd.args(["unpack", "--image", &image_arg]);
    if !root {
        cmd.arg("--rootless");
    }
    run(cmd.arg(&bundle));
    let rootfs = bundle.join("rootfs");

    let (mode, uid, gid, ino) = meta(&rootfs.join("bin/tool"));
    assert_eq!(mode, 0o4755 & if root { 0o7777 } else { 0o777 });
    if root {
        assert_eq!((uid, gid), (1000, 1001));
        let m = meta(&rootfs.join("etc/config"));
        assert_eq!((m.0, m.1, m.2), (0o640, 0, 42));
        let m = meta(&rootfs.join("etc/new"));
        assert_eq!((m.0, m.1, m.2), (0o600, 7, 8));
    }
    assert_eq!(meta(&rootfs.join("bin/hard")).3, ino, "hard link lost");
    assert_eq!(
        fs::read_link(rootfs.join("bin/link")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        fs::read(rootfs.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    assert!(
        !rootfs.join("etc/removeme").exists(),
        "whiteout not applied"
    );
    assert!(
        !rootfs.join("opt/dir/old").exists(),
        "opaque whiteout not applied"
    );
    assert_eq!(fs::read(rootfs.join("opt/dir/fresh")).unwrap(), b"fresh\n");
    assert_eq!(meta(&rootfs.join("opt/dir")).0, 0o700);

    // umoci writes a new layer on top; kiln must read its output as a base image.
    fs::write(rootfs.join("etc/added-by-umoci"), b"umoci\n").unwrap();
    fs::remove_file(rootfs.join("etc/config")).unwrap();
    let mut cmd = Command::new("umoci");
    cmd.args([
        "repack",
        "--image",
        &format!("{}:repacked", store.root().display()),
    ]);
    run(cmd.arg(&bundle));
    let dest = Layout::open_or_create(work.path().join("dest")).unwrap();
    let image = import_oci_layout(store.root(), Some("repacked"), None, &dest, "base").unwrap();
    let layers = all_layers(&image);
    assert_eq!(layers.len(), 3);
    assert_eq!(&layers[..2], &[layer1_tar(), layer2_tar()]);
    let mut names = Vec::new();
    for e in tar::Archive::new(&layers[2][..]).entries().unwrap() {
        names.push(e.unwrap().path().unwrap().display().to_string());
    }
    assert!(
        names.iter().any(|n| n.ends_with("etc/added-by-umoci")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("etc/.wh.config")),
        "{names:?}"
    );
}

#[cfg(unix)]
fn is_root() -> bool {
    run(Command::new("id").arg("-u")).trim() == "0"
}
