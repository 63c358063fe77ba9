//! kiln's `ldconfig` against Debian 12's own (glibc 2.36, this machine's `/sbin/ldconfig`)
//! on the same trees: the bookworm base with curl's and jq's libraries from the test
//! mirror, links removed for ldconfig to make, and a corner of odd files (a stale link, a
//! linker script, an empty and a non-ELF "library", a `tls` hwcap directory, a
//! glibc-hwcaps subdirectory, a soname that is a file, `include` globs). The caches must
//! be byte for byte identical but for the generator text, and the trees, the messages and
//! `-p`'s listing the same. Skipped with a notice when the base, the mirror or a native
//! ldconfig is missing, unless KILN_REQUIRE_DEBIAN is set.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};

const BASE: &str = "/var/tmp/kiln-test/debian-bookworm.tar";
const POOL: &str = "/var/tmp/kiln-test/debian-mirror/pool/main";
const NATIVE: &str = "/sbin/ldconfig";
/// curl's and jq's libraries the base lacks.
const LIBRARIES: &[&str] = &[
    "libcurl4",
    "libnghttp2-14",
    "librtmp1",
    "libssh2-1",
    "libpsl5",
    "libldap-2.5-0",
    "libsasl2-2",
    "libsasl2-modules-db",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libkeyutils1",
    "libbrotli1",
    "libssl3",
    "libonig5",
    "libjq1",
];
/// The generator kiln writes in place of glibc's version string.
const GENERATOR: &[u8] = b"ldconfig (kiln) glibc 2.36 cache format";

fn available() -> bool {
    let missing: Vec<&str> = [BASE, POOL, NATIVE]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
        "missing: {missing:?} (tests/packages/make-debian-*)"
    );
    eprintln!("skipped: missing {missing:?}");
    false
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn deb_of(package: &str) -> String {
    let prefix = format!("{package}_");
    let name = fs::read_dir(POOL)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(&prefix) && n.ends_with("_amd64.deb"))
        .unwrap_or_else(|| panic!("no {package} in the mirror"));
    format!("{POOL}/{name}")
}

/// The base with the libraries unpacked, their soname links removed, and the odd corner.
fn make_tree(root: &Path) {
    run(Command::new("tar").arg("-xf").arg(BASE).arg("-C").arg(root));
    for package in LIBRARIES {
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb_of(package))
            .arg(root));
    }
    let lib = root.join("usr/lib/x86_64-linux-gnu");
    for link in [
        "libcurl.so.4",
        "libjq.so.1",
        "libonig.so.5",
        "libssl.so.3",
        "libz.so.1",
    ] {
        fs::remove_file(lib.join(link)).unwrap();
    }
    symlink("libgone.so.1.0.0", lib.join("libgone.so.1")).unwrap();
    let odd = root.join("opt/kiln/lib");
    for dir in [
        "tls",
        "glibc-hwcaps/x86-64-v3",
        "glibc-hwcaps/x86-64-v2",
        "x86_64",
    ] {
        fs::create_dir_all(odd.join(dir)).unwrap();
    }
    let zlib = fs::read(lib.join("libz.so.1.2.13")).unwrap();
    for file in [
        "tls/libz.so.1.2.13",
        "glibc-hwcaps/x86-64-v3/libz.so.1",
        "x86_64/libz.so.1.2.13",
    ] {
        fs::write(odd.join(file), &zlib).unwrap();
    }
    // A soname that is a file, not a link, beside a newer version.
    fs::write(odd.join("libz.so.1"), &zlib).unwrap();
    fs::write(odd.join("libz.so.1.3"), &zlib).unwrap();
    fs::write(
        odd.join("libscript.so"),
        "/* GNU ld script */\nGROUP ( libz.so.1 )\n",
    )
    .unwrap();
    fs::write(
        odd.join("libnot.so.1"),
        "not a library, but long enough to be looked at.....",
    )
    .unwrap();
    fs::write(odd.join("libempty.so.2"), "").unwrap();
    fs::write(odd.join("libshort.so.3"), "\x7fELF").unwrap();
    fs::create_dir_all(root.join("etc/kiln.d")).unwrap();
    fs::write(
        root.join("etc/ld.so.conf.d/kiln.conf"),
        "/opt/kiln/lib  # odd corner\n/opt/kiln/lib/=libc6\nhwcap 1 ignored\n\
         include /etc/kiln.d/*.conf  /etc/kiln.d/none-*.conf\n\n",
    )
    .unwrap();
    fs::write(
        root.join("etc/kiln.d/a.conf"),
        "/opt/missing\n/usr/local/lib//\n",
    )
    .unwrap();
}

/// glibc's cache with kiln's generator text in place of its own (the generator section
/// is the file's last bytes).
fn with_kiln_generator(mut cache: Vec<u8>) -> Vec<u8> {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let ext = u32_at(&cache, 32) as usize;
    for i in 0..u32_at(&cache, ext + 4) as usize {
        let section = ext + 8 + 16 * i;
        if u32_at(&cache, section) == 0 {
            let offset = u32_at(&cache, section + 8) as usize;
            assert_eq!(offset + u32_at(&cache, section + 12) as usize, cache.len());
            cache.truncate(offset);
            cache.extend_from_slice(GENERATOR);
            let size = (GENERATOR.len() as u32).to_le_bytes();
            cache[section + 12..section + 16].copy_from_slice(&size);
        }
    }
    cache
}

/// Every symbolic link under the library directories, as `path -> target`.
fn links(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for dir in [
        "usr/lib/x86_64-linux-gnu",
        "opt/kiln/lib",
        "opt/kiln/lib/tls",
    ] {
        for entry in fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if let Ok(target) = fs::read_link(&path) {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push(format!("{rel} -> {}", target.display()));
            }
        }
    }
    out.sort();
    out
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes).replace("/sbin/ldconfig:", "ldconfig:");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn kiln(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln-pkg"));
    cmd.arg("ldconfig").args(args).env_remove("LD_HWCAP_MASK");
    cmd
}

#[test]
fn matches_debians_ldconfig_on_the_base_with_curls_libraries() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("kiln"), dir.path().join("glibc"));
    fs::create_dir(&ours).unwrap();
    make_tree(&ours);
    run(Command::new("cp").arg("-a").arg(&ours).arg(&theirs));
    let native = run(Command::new(NATIVE).arg("-v").arg("-r").arg(&theirs));
    let kiln_out = run(&mut kiln(&["-v", "-r", ours.to_str().unwrap()]));

    let cache = |root: &Path| fs::read(root.join("etc/ld.so.cache")).unwrap();
    assert!(
        with_kiln_generator(cache(&theirs)) == cache(&ours),
        "the caches differ:\nglibc:\n{}\nkiln:\n{}",
        listing(&theirs),
        listing(&ours)
    );
    assert_eq!(links(&ours), links(&theirs));
    assert!(
        links(&ours)
            .contains(&"usr/lib/x86_64-linux-gnu/libcurl.so.4 -> libcurl.so.4.8.0".to_owned())
    );
    assert!(!ours.join("usr/lib/x86_64-linux-gnu/libgone.so.1").exists());
    // Directory order is the file system's for glibc and sorted for kiln: the same lines.
    assert_eq!(sorted_lines(&kiln_out.stdout), sorted_lines(&native.stdout));
    assert_eq!(sorted_lines(&kiln_out.stderr), sorted_lines(&native.stderr));
    // -p reads a cache as glibc's does.
    let theirs_cache = theirs.join("etc/ld.so.cache");
    let printed = run(&mut kiln(&["-p", "-C", theirs_cache.to_str().unwrap()]));
    let native_printed = run(Command::new(NATIVE).arg("-p").arg("-C").arg(&theirs_cache));
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        String::from_utf8_lossy(&native_printed.stdout)
    );
}

/// glibc's `-p` listing of the cache under `root`, for a failure message.
fn listing(root: &Path) -> String {
    let out = Command::new(NATIVE)
        .arg("-p")
        .arg("-C")
        .arg(root.join("etc/ld.so.cache"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn links_only_and_cache_only_runs_match_too() {
    if !available() {
        return;
    }
    for flags in [&["-N"][..], &["-X"][..], &["-X", "-N", "-v"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = (dir.path().join("kiln"), dir.path().join("glibc"));
        fs::create_dir(&ours).unwrap();
        make_tree(&ours);
        run(Command::new("cp").arg("-a").arg(&ours).arg(&theirs));
        run(Command::new(NATIVE).args(flags).arg("-r").arg(&theirs));
        run(kiln(flags).arg("-r").arg(&ours));
        assert_eq!(links(&ours), links(&theirs), "{flags:?}");
        let cache = |root: &Path| fs::read(root.join("etc/ld.so.cache")).unwrap();
        if flags.contains(&"-N") {
            assert_eq!(
                cache(&ours),
                cache(&theirs),
                "{flags:?}: -N leaves the base's cache"
            );
        } else {
            assert!(
                with_kiln_generator(cache(&theirs)) == cache(&ours),
                "{flags:?}"
            );
        }
    }
}

#[test]
fn usage_errors_are_argps() {
    let out = kiln(&["-z"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ldconfig: invalid option -- 'z'\n\
         Try `ldconfig --help' or `ldconfig --usage' for more information.\n"
    );
    let out = kiln(&["--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .starts_with("ldconfig: unrecognized option '--bogus'\n")
    );
    let out = kiln(&["-r"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = kiln(&["-c", "compat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compat cache format"));
    let out = kiln(&["relative/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ldconfig: relative path `relative/dir' used to build cache\n"
    );
}
