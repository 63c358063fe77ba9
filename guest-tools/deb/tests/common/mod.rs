//! Shared helpers of kiln-deb's tests: test packages built with dpkg-deb, and the real
//! Debian packages of the test mirror.

#![allow(dead_code)] // each test binary uses its own subset

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pool of real bookworm .debs that tests/packages/make-debian-mirror makes.
pub const MIRROR_POOL: &str = "/var/tmp/kiln-test/debian-mirror/pool/main";

/// The real .debs of the test mirror for `arch` (and `all`), or `None` (with a notice)
/// when the mirror was not made; CI sets KILN_REQUIRE_DEBIAN to make that a failure.
pub fn mirror_debs(arch: &str) -> Option<Vec<PathBuf>> {
    let Ok(dir) = fs::read_dir(MIRROR_POOL) else {
        assert!(
            std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
            "{MIRROR_POOL} is missing (run tests/packages/make-debian-mirror)"
        );
        eprintln!("skipped: {MIRROR_POOL} is missing (run tests/packages/make-debian-mirror)");
        return None;
    };
    let mut debs: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(&format!("_{arch}.deb")) || name.ends_with("_all.deb")
        })
        .collect();
    debs.sort();
    Some(debs)
}

/// Runs a command and returns its stdout; panics with its stderr when it fails.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds `<dir>/test-pkg.deb` with dpkg-deb and compression `-Z<compression>`: a
/// package with a conffile, a postinst, a setuid binary, symlinks and a hard link.
pub fn build_test_deb(dir: &Path, compression: &str) -> PathBuf {
    build_deb(dir, compression, "1:2.0-1", "setting=1\n")
}

/// [`build_test_deb`] with another version and conffile content (an upgrade).
pub fn build_deb(dir: &Path, compression: &str, version: &str, conf: &str) -> PathBuf {
    let root = dir.join(format!("pkg-{version}"));
    let file = |path: &str, body: &str, mode: u32| {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    file(
        "DEBIAN/control",
        &format!(
            "Package: test-pkg\nVersion: {version}\nArchitecture: all\nMaintainer: kiln <kiln@example.org>\nDepends: libc6 (>= 2.36)\nDescription: a test package\n with two lines\n"
        ),
        0o644,
    );
    // An empty `conf` makes a version that no longer ships the conffile.
    if !conf.is_empty() {
        file("DEBIAN/conffiles", "/etc/test-pkg.conf\n", 0o644);
        file("etc/test-pkg.conf", conf, 0o644);
    }
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        file(&format!("DEBIAN/{script}"), "#!/bin/sh\nexit 0\n", 0o755);
    }
    file("usr/bin/test-pkg", "#!/bin/sh\necho hi\n", 0o4755);
    file("usr/share/doc/test-pkg/README", "read me\n", 0o644);
    fs::create_dir_all(root.join("var/lib/test-pkg")).unwrap();
    fs::set_permissions(
        root.join("var/lib/test-pkg"),
        fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    symlink("test-pkg", root.join("usr/bin/test-pkg-alias")).unwrap();
    symlink(
        "/etc/test-pkg.conf",
        root.join("usr/share/doc/test-pkg/conf"),
    )
    .unwrap();
    fs::hard_link(
        root.join("usr/bin/test-pkg"),
        root.join("usr/bin/test-pkg-hard"),
    )
    .unwrap();
    let deb = dir.join(format!("test-pkg_{version}_all.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build", &format!("-Z{compression}")])
        .arg(&root)
        .arg(&deb));
    deb
}

/// The bookworm minbase that tests/packages/make-debian-base makes.
pub const DEBIAN_BASE: &str = "/var/tmp/kiln-test/debian-bookworm.tar";

/// `var/lib/dpkg` of the Debian base extracted under `dir` (which is returned as the
/// root), or `None` with a notice when the base was not made (a failure in CI).
pub fn debian_base_dpkg(dir: &Path) -> Option<PathBuf> {
    if !Path::new(DEBIAN_BASE).exists() {
        assert!(
            std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
            "{DEBIAN_BASE} is missing (run tests/packages/make-debian-base)"
        );
        eprintln!("skipped: {DEBIAN_BASE} is missing");
        return None;
    }
    run(Command::new("tar")
        .arg("-xf")
        .arg(DEBIAN_BASE)
        .arg("-C")
        .arg(dir)
        .arg("./var/lib/dpkg"));
    Some(dir.to_path_buf())
}

/// The whole Debian base extracted under `dir` (with its merged-/usr links), or `None`
/// as [`debian_base_dpkg`].
pub fn debian_base(dir: &Path) -> Option<PathBuf> {
    debian_base_dpkg(dir)?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(DEBIAN_BASE)
        .arg("-C")
        .arg(dir));
    Some(dir.to_path_buf())
}

/// Every path under `root` (relative, sorted) with type, mode, owner, size and link
/// target: what the unpack comparisons look at.
pub fn tree(root: &Path, skip: &[&str]) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if skip
                .iter()
                .any(|s| rel == *s || rel.starts_with(&format!("{s}/")))
            {
                continue;
            }
            let m = fs::symlink_metadata(&path).unwrap();
            let kind = if m.is_dir() {
                'd'
            } else if m.file_type().is_symlink() {
                'l'
            } else {
                'f'
            };
            let link = fs::read_link(&path)
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            let size = if kind == 'f' { m.size() } else { 0 };
            out.insert(
                rel,
                format!(
                    "{kind} {:o} {}:{} {size} {link}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ),
            );
            if m.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}
