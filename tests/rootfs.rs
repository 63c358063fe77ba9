//! Root filesystem fidelity: removing base-image entries, special mode bits in local exports, user and group files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest, Sha256};
use support::*;

#[path = "../crates/fs/tests/common/layer_tar.rs"]
mod layer_tar;
use layer_tar::{E, layer};

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

// --- user and group management against Debian's shadow-utils --------------------------

/// The account commands run by both kiln (in one RUN) and Debian's tools (with `-R`).
const ACCOUNT_COMMANDS: &[&str] = &[
    "groupadd -g 2000 web",
    "groupadd -r svcgrp",
    "useradd -m -s /bin/bash -G web,users -c App_User app",
    "useradd -r -M svc",
    "useradd -u 1500 -g web -N bob",
    "useradd carol",
    "usermod -aG sudo app",
    "usermod -L carol",
    "usermod -s /bin/sh -c New bob",
    "groupmod -n www web",
    "groupmod -g 2001 www",
    "usermod -l robert bob",
    "userdel -r carol",
    "userdel svc",
    "passwd -l app",
];

/// The day written as "last change" by both sides.
const EPOCH: &str = "1700000000";

/// The files compared byte for byte, and listed with owner and mode.
const ACCOUNT_FILES: &[&str] = &[
    "etc/passwd",
    "etc/passwd-",
    "etc/group",
    "etc/group-",
    "etc/shadow",
    "etc/shadow-",
    "etc/gshadow",
    "etc/gshadow-",
    "etc/subuid",
    "etc/subuid-",
    "etc/subgid",
    "etc/subgid-",
    "etc/.pwd.lock",
    "home/app",
    "home/app/.bashrc",
    "home/app/.profile",
];

/// A Debian bookworm /etc as its packages ship it: base-passwd's passwd and group,
/// shadow files for them, the passwd package's login.defs, default/useradd and skel
/// (read from this Debian host, which has them installed).
fn debian_etc_layer() -> Vec<u8> {
    let host = |p: &str| {
        std::fs::read(p).unwrap_or_else(|e| {
            panic!("{p}: {e} (this test needs Debian's passwd and base-passwd packages)")
        })
    };
    let passwd = host("/usr/share/base-passwd/passwd.master");
    let group = host("/usr/share/base-passwd/group.master");
    let names = |text: &[u8], suffix: &str| -> Vec<u8> {
        String::from_utf8_lossy(text)
            .lines()
            .map(|l| format!("{}{suffix}\n", l.split(':').next().unwrap()))
            .collect::<String>()
            .into_bytes()
    };
    let shadow = names(&passwd, ":*:19000:0:99999:7:::");
    let gshadow = names(&group, ":*::");
    let (defs, default, bashrc, profile, logout) = (
        host("/etc/login.defs"),
        host("/etc/default/useradd"),
        host("/etc/skel/.bashrc"),
        host("/etc/skel/.profile"),
        host("/etc/skel/.bash_logout"),
    );
    layer(&[
        E::Dir("etc", 0o755),
        E::File("etc/passwd", 0o644, &passwd),
        E::File("etc/group", 0o644, &group),
        E::File("etc/shadow", 0o640, &shadow),
        E::File("etc/gshadow", 0o640, &gshadow),
        E::File("etc/subuid", 0o644, b""),
        E::File("etc/subgid", 0o644, b""),
        E::File("etc/login.defs", 0o644, &defs),
        E::Dir("etc/default", 0o755),
        E::File("etc/default/useradd", 0o644, &default),
        E::Dir("etc/skel", 0o755),
        E::File("etc/skel/.bashrc", 0o644, &bashrc),
        E::File("etc/skel/.profile", 0o644, &profile),
        E::File("etc/skel/.bash_logout", 0o644, &logout),
        E::Dir("home", 0o755),
    ])
}

/// `stat` lines (name, owner, mode) and contents of `ACCOUNT_FILES` under `root`.
fn account_state(root: &Path, listing: &str) -> Vec<String> {
    let mut out: Vec<String> = listing.lines().map(str::to_owned).collect();
    for f in ACCOUNT_FILES {
        let path = root.join(f);
        if path.is_file() {
            out.push(format!("{f}:\n{}", text(&std::fs::read(path).unwrap())));
        }
    }
    out
}

/// Runs the commands with Debian's own tools on an unpacked copy of the base's /etc.
fn shadow_utils_reference(ws: &Workspace, base_etc: &[u8]) -> Vec<String> {
    let root = ws.path("reference");
    std::fs::create_dir_all(&root).unwrap();
    tar::Archive::new(base_etc).unpack(&root).unwrap();
    let sh = |script: &str| {
        let out = std::process::Command::new("sh")
            .args(["-ec", script])
            .current_dir(&root)
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let r = root.display();
    sh("chgrp 42 etc/shadow etc/gshadow");
    for cmd in ACCOUNT_COMMANDS {
        let (tool, args) = cmd.split_once(' ').unwrap();
        sh(&format!("{tool} -R {r} {args} >/dev/null"));
    }
    sh(&format!("echo 'app:$6$abc$xyz' | chpasswd -R {r} -e"));
    let listing = sh(&format!(
        "stat -c '%n %u:%g %a' {}",
        ACCOUNT_FILES.join(" ")
    ));
    account_state(&root, &listing)
}

#[test]
fn account_tools_write_what_debians_shadow_utils_writes() {
    let ws = Workspace::new();
    let etc = debian_etc_layer();
    let dir = ws.path("base");
    base_layout(&dir, std::slice::from_ref(&etc));
    let base = format!("base=oci-layout://{}", dir.display());
    let script = format!(
        "chgrp shadow /etc/shadow /etc/gshadow && {} >/dev/null && \
         echo 'app:$6$abc$xyz' | chpasswd -e && cd / && \
         stat -c '%n %u:%g %a' {} > /listing",
        ACCOUNT_COMMANDS.join(" >/dev/null && "),
        ACCOUNT_FILES.join(" ")
    );
    ws.write("Dockerfile", format!("FROM base\nRUN {script}\n"));
    let out_dir = ws.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let out = ws
        .kiln()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .args([
            "build",
            "--progress",
            "plain",
            "--build-context",
            &base,
            "-o",
            &dest,
        ])
        .arg(ws.context())
        .output()
        .unwrap();
    assert_ok(&out);
    let listing = text(&std::fs::read(out_dir.join("listing")).unwrap());
    let kiln = account_state(&out_dir, &listing);
    assert_eq!(kiln, shadow_utils_reference(&ws, &etc));
}

// --- on a real Debian bookworm base (mmdebstrap; see tests/support/debian.rs) ----------

#[test]
fn on_debian_slimming_accounts_and_special_bits_behave_as_on_docker() {
    let Some(layout) = debian::layout() else {
        return;
    };
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM base\n\
         RUN rm -rf /usr/share/man/* /usr/share/doc/* && test -z \"$(ls -A /usr/share/man)\"\n\
         RUN useradd -m -s /bin/bash app && usermod -aG sudo,users app && \
         test \"$(id -Gn app)\" = 'app sudo users' && passwd -l app\n\
         RUN groupadd -r svc && useradd -r -g svc -M svc\n",
    );
    let out_dir = ws.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let base = debian::build_context("base", &layout);
    assert_ok(&ws.build(&["--build-context", &base, "-o", &dest]));
    assert_eq!(
        std::fs::read_dir(out_dir.join("usr/share/man"))
            .unwrap()
            .count(),
        0
    );
    let modes: Vec<u32> = ["tmp", "usr/bin/passwd", "usr/bin/su", "usr/bin/mount"]
        .into_iter()
        .map(|p| mode(&out_dir.join(p)))
        .collect();
    assert_eq!(modes, [0o1777, 0o4755, 0o4755, 0o4755]);
    // Debian's passwd- was 0600; useradd's backup takes /etc/passwd's mode, as on docker.
    assert_eq!(mode(&out_dir.join("etc/passwd-")), 0o644);
    assert_eq!(mode(&out_dir.join("etc/shadow-")), 0o640);
    let subuid = std::fs::read_to_string(out_dir.join("etc/subuid")).unwrap();
    assert_eq!(subuid, "app:100000:65536\n");
    // A system account has no aging: nine fields, as shadow-utils writes
    // (SOURCE_DATE_EPOCH 0 gives day 0).
    let shadow = std::fs::read_to_string(out_dir.join("etc/shadow")).unwrap();
    assert!(shadow.ends_with("\nsvc:!:0::::::\n"), "{shadow}");
}
