//! Root filesystem fidelity: removing base-image entries, special mode bits in local exports, user and group files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use support::*;

/// One entry of a hand-made base layer: path, mode, and what it is.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    /// A hard link to an earlier (or lower-layer) file.
    Hard(&'a str, &'a str),
    Sym(&'a str, &'a str),
}

/// A layer tar of `entries`, in order, owned by root.
fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        h.set_mode(0o644);
        match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                b.append_data(&mut h, p, &[][..]).unwrap();
            }
            E::File(p, mode, data) => {
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, p, *data).unwrap();
            }
            E::Hard(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, p, target).unwrap();
            }
            E::Sym(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                b.append_link(&mut h, p, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Stores `bytes` as a blob of the layout at `dir`; returns its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = sha256(bytes);
    let path = dir.join("blobs/sha256").join(&digest["sha256:".len()..]);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Writes an OCI layout at `dir` holding one image for this host made of `layers`
/// (uncompressed tars), for `--build-context base=oci-layout://DIR`.
fn base_layout(dir: &Path, layers: &[Vec<u8>]) {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let layers: Vec<_> = layers
        .iter()
        .map(|l| blob(dir, "application/vnd.oci.image.layer.v1.tar", l))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": layers,
    });
    let mut manifest = blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [manifest]});
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Files in the base's `/usr/share/man/big`: far more than one readdir buffer holds.
const BIG: usize = 5_000;

/// A Debian-like base in two layers: `/usr/share/man` with every kind of entry a base
/// layer holds, and the special-mode entries of a real root filesystem.
fn debian_like_base(ws: &Workspace) -> String {
    let long = format!("usr/share/man/man1/{}.1.gz", "a-long-page-name-".repeat(10));
    let big: Vec<String> = (0..BIG)
        .map(|i| format!("usr/share/man/big/page-with-a-rather-long-name-number-{i:05}.1.gz"))
        .collect();
    let mut lower = vec![
        E::Dir("etc", 0o755),
        E::File("etc/keep", 0o644, b"kept"),
        E::Dir("tmp", 0o1777),
        E::Dir("var", 0o755),
        E::Dir("var/mail", 0o2775),
        E::Dir("usr", 0o755),
        E::Dir("usr/bin", 0o755),
        E::File("usr/bin/passwd", 0o4755, b"passwd"),
        E::File("usr/bin/chage", 0o2755, b"chage"),
        E::Dir("usr/share", 0o755),
        E::Dir("usr/share/man", 0o755),
        E::Dir("usr/share/man/man1", 0o755),
        E::File("usr/share/man/man1/ls.1.gz", 0o644, b"ls"),
        E::File("usr/share/man/man1/gone.1.gz", 0o644, b"whited out"),
        E::File(&long, 0o644, b"long"),
        E::File("usr/share/man/man1/with space\tand tab.1.gz", 0o644, b"odd"),
        E::Hard("usr/share/man/man1/dir.1.gz", "usr/share/man/man1/ls.1.gz"),
        E::Sym("usr/share/man/man1/vdir.1.gz", "ls.1.gz"),
        E::Sym("usr/share/man/man1/dangling.1.gz", "nowhere.1.gz"),
        E::Dir("usr/share/man/man8", 0o755),
        E::File("usr/share/man/man8/mount.8.gz", 0o644, b"mount"),
        E::Dir("usr/share/man/de", 0o755),
        E::Dir("usr/share/man/de/man1", 0o755),
        E::File("usr/share/man/de/man1/old.1.gz", 0o644, b"under opaque"),
        E::Sym("usr/share/man/man7", "man8"),
        E::Dir("usr/share/man/big", 0o755),
    ];
    lower.extend(big.iter().map(|p| E::File(p, 0o644, b"x")));
    let upper = [
        E::Dir("usr/share/man/man1", 0o755),
        E::File("usr/share/man/man1/.wh.gone.1.gz", 0o644, b""),
        E::File("usr/share/man/man1/new.1.gz", 0o644, b"upper"),
        E::Hard(
            "usr/share/man/man1/cross.1.gz",
            "usr/share/man/man8/mount.8.gz",
        ),
        E::Dir("usr/share/man/de", 0o755),
        E::File("usr/share/man/de/.wh..wh..opq", 0o644, b""),
        E::Dir("usr/share/man/de/man5", 0o755),
        E::File("usr/share/man/de/man5/new.5.gz", 0o644, b"after opaque"),
    ];
    let dir = ws.path("base");
    base_layout(&dir, &[layer(&lower), layer(&upper)]);
    format!("base=oci-layout://{}", dir.display())
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn rm_rf_empties_base_image_directories_of_every_kind() {
    let ws = Workspace::new();
    let base = debian_like_base(&ws);
    ws.write(
        "Dockerfile",
        "FROM base\n\
         RUN test \"$(ls /usr/share/man/big | wc -l)\" = 5000 && test ! -e /usr/share/man/de/man1\n\
         RUN rm -rf /usr/share/man/* && test -z \"$(ls -A /usr/share/man)\"\n",
    );
    let out_dir = ws.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    assert_ok(&ws.build(&["--build-context", &base, "-o", &dest]));
    let man = std::fs::read_dir(out_dir.join("usr/share/man")).unwrap();
    assert_eq!(man.count(), 0);
    assert_eq!(std::fs::read(out_dir.join("etc/keep")).unwrap(), b"kept");
}

#[test]
fn local_export_keeps_setuid_setgid_and_sticky_bits() {
    let ws = Workspace::new();
    let base = debian_like_base(&ws);
    ws.write(
        "Dockerfile",
        "FROM base\n\
         RUN mkdir -p /usr/local/bin /srv/drop && touch /usr/local/bin/tool \
         && chmod 4711 /usr/local/bin/tool && chmod 3777 /srv/drop\n",
    );
    let out_dir = ws.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    assert_ok(&ws.build(&["--build-context", &base, "-o", &dest]));
    let got: Vec<(&str, u32)> = [
        "tmp",
        "var/mail",
        "usr/bin/passwd",
        "usr/bin/chage",
        "usr/local/bin/tool",
        "srv/drop",
    ]
    .into_iter()
    .map(|p| (p, mode(&out_dir.join(p))))
    .collect();
    assert_eq!(
        got,
        [
            ("tmp", 0o1777),
            ("var/mail", 0o2775),
            ("usr/bin/passwd", 0o4755),
            ("usr/bin/chage", 0o2755),
            ("usr/local/bin/tool", 0o4711),
            ("srv/drop", 0o3777),
        ]
    );
}
