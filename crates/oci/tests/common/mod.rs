#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use kiln_oci::{Compression, Image, ImageConfig, Layer, LayerWriter, Layout, Platform};

pub(crate) const EPOCH: i64 = 1_700_000_000;

/// Is an external tool available? With `CI` set a missing tool is a hard failure;
/// otherwise the test prints a notice and skips.
pub(crate) fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("required tool {name} is not installed (CI is set)");
        }
        eprintln!("NOTICE: skipping, {name} is not installed");
    }
    found
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn hdr(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(EPOCH as u64);
    h.set_size(size);
    h
}

pub(crate) fn add_dir(b: &mut tar::Builder<impl Write>, path: &str, mode: u32) {
    let mut h = hdr(tar::EntryType::Directory, mode, 0, 0, 0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

pub(crate) fn add_file(
    b: &mut tar::Builder<impl Write>,
    path: &str,
    mode: u32,
    uid: u64,
    gid: u64,
    data: &[u8],
) {
    let mut h = hdr(tar::EntryType::Regular, mode, uid, gid, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

pub(crate) fn add_link(
    b: &mut tar::Builder<impl Write>,
    kind: tar::EntryType,
    path: &str,
    target: &str,
) {
    let mut h = hdr(kind, 0o777, 0, 0, 0);
    b.append_link(&mut h, path, target).unwrap();
}

/// Layer 1: dirs, files with modes/owners, a symlink, a hard link, files to delete later.
pub(crate) fn layer1_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add_dir(&mut b, "bin/", 0o755);
    add_file(
        &mut b,
        "bin/tool",
        0o4755,
        1000,
        1001,
        b"#!/bin/sh\necho tool\n",
    );
    add_link(&mut b, tar::EntryType::Symlink, "bin/link", "tool");
    add_link(&mut b, tar::EntryType::Link, "bin/hard", "bin/tool");
    add_dir(&mut b, "etc/", 0o755);
    add_file(&mut b, "etc/config", 0o640, 0, 42, b"key=value\n");
    add_file(&mut b, "etc/removeme", 0o644, 0, 0, b"gone soon\n");
    add_dir(&mut b, "opt/", 0o755);
    add_dir(&mut b, "opt/dir/", 0o700);
    add_file(&mut b, "opt/dir/old", 0o644, 0, 0, b"old\n");
    b.into_inner().unwrap()
}

/// Layer 2: a whiteout, an opaque directory and a new file.
pub(crate) fn layer2_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add_dir(&mut b, "etc/", 0o755);
    add_file(&mut b, "etc/.wh.removeme", 0o644, 0, 0, b"");
    add_file(&mut b, "etc/new", 0o600, 7, 8, b"new file\n");
    add_dir(&mut b, "opt/dir/", 0o700);
    add_file(&mut b, "opt/dir/.wh..wh..opq", 0o644, 0, 0, b"");
    add_file(&mut b, "opt/dir/fresh", 0o644, 0, 0, b"fresh\n");
    b.into_inner().unwrap()
}

pub(crate) fn write_layer(layout: &Layout, tar: &[u8], c: Compression) -> Layer {
    let mut w = LayerWriter::new(layout, c).unwrap();
    // Small writes, to exercise streaming.
    for chunk in tar.chunks(1000) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

pub(crate) fn sample_config(layers: &[Layer]) -> ImageConfig {
    let mut c = ImageConfig::new(&"linux/amd64".parse::<Platform>().unwrap(), EPOCH);
    c.update_container(|k| {
        k.set_env(Some(vec!["PATH=/bin".into(), "GREETING=hello".into()]));
        k.set_cmd(Some(vec!["/bin/tool".into()]));
        k.set_working_dir(Some("/opt".into()));
        k.set_labels(Some(
            BTreeMap::from([("org.example".to_owned(), "yes".to_owned())])
                .into_iter()
                .collect(),
        ));
    });
    for (i, l) in layers.iter().enumerate() {
        c.add_layer(
            &l.diff_id,
            &format!("RUN step {i}"),
            Some("buildkit.dockerfile.v0"),
            EPOCH,
        );
    }
    c.add_empty_layer_history("CMD [\"/bin/tool\"]", Some("buildkit.dockerfile.v0"), EPOCH);
    c
}

/// Build the two-layer sample image into `layout`, tagged `name`.
pub(crate) fn build_sample(layout: &Layout, name: &str, c: Compression) -> Image {
    let layers = vec![
        write_layer(layout, &layer1_tar(), c),
        write_layer(layout, &layer2_tar(), c),
    ];
    let config = sample_config(&layers);
    let desc = layout
        .write_image(&config, &layers, &BTreeMap::new())
        .unwrap();
    layout.tag(name, &desc).unwrap();
    layout.load_image(Some(name), None).unwrap()
}
