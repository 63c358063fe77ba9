//! `apt-get` and `dpkg` in RUN steps (issue 15), end to end through the real `kiln` binary,
//! on REAL Debian bookworm packages served offline: the signed loopback mirror and the two
//! bases of `tests/support/apt.rs` (made once per machine by `tests/packages/*` and
//! `tests/differential/make-debian-base`; `.ci/run` makes them and sets
//! `KILN_REQUIRE_DEBIAN`, so nothing skips in CI).
//!
//! The installed programs are native ELF, which kiln never runs, so the tests check the tree
//! apt and dpkg leave: files, `/var/lib/dpkg`, the CA bundle and its hash links,
//! alternatives; `equivalence` compares the whole tree with what Debian's own tools
//! (mmdebstrap) install; `engine` (opt-in, docker.io) runs the programs in a real engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;
// The differential test's image reader, tree comparison and private dockerd.
#[allow(dead_code)] // the differential test uses all of them; this file a part
#[path = "differential/compare.rs"]
mod compare;
#[allow(dead_code)]
#[path = "differential/dockerd.rs"]
mod dockerd;
#[allow(dead_code)]
#[path = "differential/image.rs"]
mod image;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::apt::{self, Mirror};
use support::*;

/// The packages the full install tests ask for: the line, plus less, whose
/// postinst registers `pager` with update-alternatives.
const PACKAGES: &str = "ca-certificates curl jq less";

/// [`PACKAGES`] without ca-certificates, whose postinst runs debconf's frontend (a Perl
/// program kiln serves as a tool of its own). Every shared library here activates
/// libc-bin's trigger, which runs kiln's `ldconfig`.
const NO_DEBCONF: &str = "curl jq less";

/// What installs today: less, whose postinst registers `pager` with update-alternatives
/// and whose one dependency the base already has.
const RUNNABLE: &str = "less";

/// The most common RUN line of real Dockerfiles, on `packages`.
fn install_line(packages: &str) -> String {
    format!(
        "apt-get update && apt-get install -y --no-install-recommends {packages} \
         && rm -rf /var/lib/apt/lists/*"
    )
}

/// What a test needs: a workspace whose context trusts the mirror, the mirror served,
/// and the `--build-context` naming the base `base`.
struct Setup {
    ws: Workspace,
    mirror: Mirror,
    base: String,
}

fn setup(layout: Option<PathBuf>) -> Option<Setup> {
    let layout = layout?;
    let mirror = apt::mirror()?;
    let ws = Workspace::new();
    mirror.write_key(&ws);
    let base = debian::build_context("base", &layout);
    Some(Setup { ws, mirror, base })
}

impl Setup {
    /// Writes a Dockerfile FROM the base that uses `suite` of the mirror, then `runs`.
    fn dockerfile(&self, suite: &str, runs: &[&str]) {
        let mut df = format!("FROM base\n{}", self.mirror.setup_lines(suite));
        for run in runs {
            df.push_str(&format!("RUN {run}\n"));
        }
        self.ws.write("Dockerfile", df);
    }

    /// Builds with `extra` args into a local directory; returns kiln's output and the dir.
    fn build_local(&self, extra: &[&str]) -> (Output, PathBuf) {
        let out_dir = self.ws.path("out");
        let dest = format!("type=local,dest={}", out_dir.display());
        let mut args: Vec<&str> = vec!["--build-context", &self.base, "-o", &dest];
        args.extend_from_slice(extra);
        (self.ws.build(&args), out_dir)
    }

    /// Builds into a docker-archive tagged `tag`, which must succeed; returns its path.
    fn build_archive(&self, tag: &str) -> PathBuf {
        let archive = self.ws.path("kiln.tar");
        let dest = format!("type=docker,dest={}", archive.display());
        assert_ok(
            &self
                .ws
                .build(&["--build-context", &self.base, "-o", &dest, "-t", tag]),
        );
        archive
    }
}

/// kiln's whole output, for assertion messages and progress checks.
fn log(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The dpkg status paragraph of `package` in the tree (panics when absent).
fn status_of(root: &Path, package: &str) -> String {
    let status = read(root, "var/lib/dpkg/status");
    status
        .split("\n\n")
        .find(|p| p.starts_with(&format!("Package: {package}\n")))
        .unwrap_or_else(|| panic!("{package} is not in /var/lib/dpkg/status"))
        .to_owned()
}

/// `package`'s version in the mirror's index for `arch` (what apt must have installed).
fn mirror_version(mirror: &Mirror, arch: &str, package: &str) -> String {
    let index = read(
        &mirror.dir,
        &format!("dists/bookworm/main/binary-{arch}/Packages"),
    );
    let para = index
        .split("\n\n")
        .find(|p| p.starts_with(&format!("Package: {package}\n")))
        .unwrap_or_else(|| panic!("{package} is not in the mirror"));
    let line = para.lines().find(|l| l.starts_with("Version: ")).unwrap();
    line["Version: ".len()..].to_owned()
}

/// One control member of the mirror's .deb of `package` for `arch`, as dpkg-deb shows it.
fn control_member(mirror: &Mirror, arch: &str, package: &str, member: &str) -> String {
    let index = read(
        &mirror.dir,
        &format!("dists/bookworm/main/binary-{arch}/Packages"),
    );
    let para = index
        .split("\n\n")
        .find(|p| p.starts_with(&format!("Package: {package}\n")))
        .unwrap();
    let file = para
        .lines()
        .find_map(|l| l.strip_prefix("Filename: "))
        .unwrap();
    let out = Command::new("dpkg-deb")
        .arg("--info")
        .arg(mirror.dir.join(file))
        .arg(member)
        .output()
        .expect("dpkg-deb (dpkg is on every Debian host)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The ELF machine of a file (62 x86-64, 183 aarch64).
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// What every successful install of `packages` ([`PACKAGES`] or [`NO_DEBCONF`]) must
/// leave, for `arch`.
fn assert_installed(root: &Path, mirror: &Mirror, arch: &str, packages: &str) {
    let with_ca = packages.contains("ca-certificates");
    let ca = ["ca-certificates"].into_iter().filter(|_| with_ca);
    for package in ca.chain(["curl", "jq", "less", "libcurl4", "libjq1"]) {
        let para = status_of(root, package);
        assert!(para.contains("\nStatus: install ok installed\n"), "{para}");
        let version = mirror_version(mirror, arch, package);
        assert!(para.contains(&format!("\nVersion: {version}\n")), "{para}");
    }
    assert!(status_of(root, "curl").contains(&format!("\nArchitecture: {arch}\n")));
    // dpkg's file list and the package's own md5sums, byte for byte.
    assert!(read(root, "var/lib/dpkg/info/jq.list").contains("\n/usr/bin/jq\n"));
    assert_eq!(
        read(root, "var/lib/dpkg/info/jq.md5sums"),
        control_member(mirror, arch, "jq", "md5sums")
    );
    let machine = if arch == "arm64" { 183 } else { 62 };
    assert_ld_so_cache(root, arch);
    for bin in ["usr/bin/curl", "usr/bin/jq", "usr/bin/less"] {
        assert_eq!(elf_machine(&root.join(bin)), machine, "{bin}");
    }
    if with_ca {
        assert_ca_bundle(root);
    }
    // less's postinst: update-alternatives --install /usr/bin/pager pager /usr/bin/less 77
    // outranks more's 50.
    let link = |p: &str| std::fs::read_link(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(link("usr/bin/pager"), Path::new("/etc/alternatives/pager"));
    assert_eq!(link("etc/alternatives/pager"), Path::new("/usr/bin/less"));
    assert!(read(root, "var/lib/dpkg/alternatives/pager").contains("/usr/bin/less\n77\n"));
    // `rm -rf /var/lib/apt/lists/*` meant what it means.
    assert_eq!(
        std::fs::read_dir(root.join("var/lib/apt/lists"))
            .unwrap()
            .count(),
        0
    );
}

/// libc-bin's trigger ran kiln's `ldconfig`: glibc's own reader (the host's `ldconfig -p`)
/// finds curl's library in the image's `/etc/ld.so.cache`, for the image's architecture.
fn assert_ld_so_cache(root: &Path, arch: &str) {
    let out = Command::new("/sbin/ldconfig")
        .arg("-p")
        .arg("-C")
        .arg(root.join("etc/ld.so.cache"))
        .output()
        .expect("/sbin/ldconfig (glibc's, on every Debian host)");
    let listed = text(&out.stdout);
    let (kind, triplet) = match arch {
        "arm64" => ("libc6,AArch64", "aarch64-linux-gnu"),
        _ => ("libc6,x86-64", "x86_64-linux-gnu"),
    };
    let curl = format!("\tlibcurl.so.4 ({kind}) => /lib/{triplet}/libcurl.so.4\n");
    assert!(listed.contains(&curl), "no {curl:?} in:\n{listed}");
    assert!(
        listed.contains("Cache generated by: ldconfig (kiln)"),
        "{listed}"
    );
}

/// update-ca-certificates ran: the bundle holds every selected certificate, and every
/// certificate link has its OpenSSL subject-hash link (`openssl rehash`).
fn assert_ca_bundle(root: &Path) {
    let bundle = read(root, "etc/ssl/certs/ca-certificates.crt");
    let selected = read(root, "etc/ca-certificates.conf")
        .lines()
        .filter(|l| l.starts_with("mozilla/"))
        .count();
    assert!(selected > 100, "ca-certificates.conf selects {selected}");
    assert_eq!(
        bundle.matches("-----BEGIN CERTIFICATE-----").count(),
        selected
    );
    let (mut pems, mut hashes) = (0, 0);
    for entry in std::fs::read_dir(root.join("etc/ssl/certs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let target = std::fs::read_link(root.join("etc/ssl/certs").join(&name));
        if name.ends_with(".pem") {
            pems += 1;
        } else if is_hash_name(&name) {
            let target = target.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(target.to_string_lossy().ends_with(".pem"), "{name}");
            hashes += 1;
        }
    }
    assert_eq!(pems, selected);
    assert_eq!(hashes, pems, "one subject-hash link per certificate");
}

/// `openssl rehash`'s names: eight hex digits, a dot, a collision counter.
fn is_hash_name(name: &str) -> bool {
    name.split_once('.').is_some_and(|(h, n)| {
        h.len() == 8
            && h.bytes().all(|b| b.is_ascii_hexdigit())
            && n.bytes().all(|b| b.is_ascii_digit())
    })
}

#[test]
fn installs_ca_certificates_curl_jq_and_less_from_a_signed_mirror() {
    installs_from_a_signed_mirror(PACKAGES);
}

#[test]
fn installs_curl_jq_and_less_from_a_signed_mirror() {
    installs_from_a_signed_mirror(NO_DEBCONF);
}

fn installs_from_a_signed_mirror(packages: &str) {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    s.dockerfile(apt::SIGNED, &[&install_line(packages)]);
    let (out, root) = s.build_local(&[]);
    assert_ok(&out);
    let log = log(&out);
    for line in [
        "Get:1 ",
        "Unpacking curl ",
        "Setting up jq ",
        "Setting up less ",
    ] {
        assert!(log.contains(line), "no {line:?} in:\n{log}");
    }
    assert_installed(&root, &s.mirror, "amd64", packages);
}

#[test]
fn a_tampered_index_an_unsigned_release_and_an_unknown_key_fail_as_apt_fails() {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    // apt's own words for each (checked against the host's apt on the same mirror).
    for (suite, error) in [
        (apt::TAMPERED, "Hash Sum mismatch"),
        (apt::UNSIGNED, "is not signed"),
        (apt::WRONG_KEY, "NO_PUBKEY"),
    ] {
        s.dockerfile(suite, &["apt-get update"]);
        let (out, _) = s.build_local(&[]);
        assert_fails_with(&out, error);
    }
}

#[test]
fn apt_get_remove_takes_a_package_out_and_its_alternative_back() {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    s.dockerfile(
        apt::SIGNED,
        &[&install_line(NO_DEBCONF), "apt-get remove -y jq less"],
    );
    let (out, root) = s.build_local(&[]);
    assert_ok(&out);
    assert!(log(&out).contains("Removing jq "), "{}", log(&out));
    for gone in ["usr/bin/jq", "usr/bin/less", "var/lib/dpkg/info/jq.list"] {
        assert!(!root.join(gone).exists(), "{gone} survived the removal");
    }
    let status = read(&root, "var/lib/dpkg/status");
    assert!(
        !status.contains("Package: jq\n"),
        "jq is still in the status"
    );
    // remove is not autoremove: the library jq pulled in stays.
    assert!(status_of(&root, "libjq1").contains("\nStatus: install ok installed\n"));
    // less's prerm removed its alternative: pager falls back to more.
    assert_eq!(pager_link(&root), Path::new("/bin/more"));
}

#[test]
fn installs_arm64_packages_into_the_arm64_base_without_emulation() {
    let Some(s) = setup(apt::arm64_layout()) else {
        return;
    };
    s.dockerfile(apt::SIGNED, &[&install_line(PACKAGES)]);
    let (out, root) = s.build_local(&["--platform", "linux/arm64"]);
    assert_ok(&out);
    assert_installed(&root, &s.mirror, "arm64", PACKAGES);
    // ca-certificates' postinst (debconf, update-ca-certificates, openssl rehash) runs
    // in the arm64 base as in the amd64 one.
    assert_ca_bundle(&root);
}

/// `update-alternatives`' links as less's postinst and prerm leave them.
fn pager_link(root: &Path) -> PathBuf {
    std::fs::read_link(root.join("etc/alternatives/pager")).unwrap()
}

#[test]
fn installs_and_removes_less_and_its_alternative_in_the_amd64_and_arm64_bases() {
    for (layout, arch) in [(debian::layout(), "amd64"), (apt::arm64_layout(), "arm64")] {
        let Some(s) = setup(layout) else {
            return;
        };
        s.dockerfile(apt::SIGNED, &[&install_line(RUNNABLE)]);
        let platform = format!("linux/{arch}");
        let (out, root) = s.build_local(&["--platform", &platform]);
        assert_ok(&out);
        let printed = log(&out);
        for line in ["Get:1 ", "Unpacking less ", "Setting up less "] {
            assert!(printed.contains(line), "no {line:?} in:\n{printed}");
        }
        let para = status_of(&root, "less");
        assert!(para.contains("\nStatus: install ok installed\n"), "{para}");
        let version = mirror_version(&s.mirror, arch, "less");
        assert!(para.contains(&format!("\nVersion: {version}\n")), "{para}");
        assert!(
            para.contains(&format!("\nArchitecture: {arch}\n")),
            "{para}"
        );
        let machine = if arch == "arm64" { 183 } else { 62 };
        assert_eq!(elf_machine(&root.join("usr/bin/less")), machine);
        assert_eq!(pager_link(&root), Path::new("/usr/bin/less"));
        assert!(read(&root, "var/lib/dpkg/alternatives/pager").contains("/usr/bin/less\n77\n"));
        let lists = std::fs::read_dir(root.join("var/lib/apt/lists")).unwrap();
        assert_eq!(lists.count(), 0, "rm -rf /var/lib/apt/lists/* left files");

        std::fs::remove_dir_all(&root).unwrap();
        s.dockerfile(
            apt::SIGNED,
            &[&install_line(RUNNABLE), "apt-get remove -y less"],
        );
        let (out, root) = s.build_local(&["--platform", &platform]);
        assert_ok(&out);
        assert!(log(&out).contains("Removing less "), "{}", log(&out));
        assert!(
            !root.join("usr/bin/less").exists(),
            "less survived the removal"
        );
        let status = read(&root, "var/lib/dpkg/status");
        assert!(
            !status.contains("Package: less\n"),
            "less is still in the status"
        );
        // less's prerm removed its alternative: pager falls back to more.
        assert_eq!(pager_link(&root), Path::new("/bin/more"));
    }
}

// --- equivalence with Debian's own tools --------------------------------------------------

/// What the comparison with mmdebstrap leaves out, and why: everything else (path, type,
/// mode, owner, link target, content digest) must be equal.
const NOT_COMPARED: [(&str, &str); 9] = [
    // Logs: they hold the time and the order of each run's actions.
    ("/var/log/", "logs"),
    // Caches (FHS: regenerable): apt's package caches and downloaded .debs (mmdebstrap
    // deletes them, apt-get install keeps them), debconf's database of answers.
    ("/var/cache/", "caches"),
    // The RUN line empties the lists; mmdebstrap's cleanup keeps `lock` and `partial/`.
    (
        "/var/lib/apt/lists/",
        "apt's lists, deleted by the RUN line",
    ),
    // apt writes the same stanzas in its cache's order, which depends on the history of
    // installs: compared as a set by `same_auto_marks`.
    (
        "/var/lib/apt/extended_states",
        "compared as a set of stanzas",
    ),
    // ldconfig's binary cache of the library directories (regenerable, like the above).
    ("/etc/ld.so.cache", "the dynamic linker's cache"),
    // dpkg's backups of its previous state: they show the previous run, not the result.
    ("/var/lib/dpkg/status-old", "dpkg's backup"),
    ("/var/lib/dpkg/diversions-old", "dpkg's backup"),
    // The test's own choice of source and key (a loopback URL vs mmdebstrap's copy://).
    ("/etc/apt/sources.list", "the test's sources line"),
    (
        "/usr/share/keyrings/kiln-test.gpg",
        "the test's key, copied by the Dockerfile",
    ),
];

fn compared(tree: image::Tree) -> image::Tree {
    // An entry ending in `/` leaves out what is under that directory (not the directory).
    let left_out = |path: &str| {
        NOT_COMPARED
            .iter()
            .any(|(p, _)| path == *p || (p.ends_with('/') && path.starts_with(p)))
    };
    tree.into_iter()
        .filter(|(path, _)| !left_out(path))
        .collect()
}

/// `packages` installed by Debian's own tools: mmdebstrap's minbase (what the base is)
/// with `--include` of them, from the same mirror, as the base was made.
fn mmdebstrap_tree(mirror: &Mirror, dir: &Path, packages: &str) -> image::Tree {
    let tar = dir.join("mmdebstrap.tar");
    let source = format!(
        "deb [signed-by={key}] copy://{dir} bookworm main",
        key = mirror.dir.join("kiln-test.gpg").display(),
        dir = mirror.dir.display()
    );
    let out = Command::new("mmdebstrap")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["--quiet", "--variant=minbase", "--format=tar"])
        .arg(format!("--include={}", packages.replace(' ', ",")))
        .arg("--customize-hook=rm -f \"$1\"/etc/resolv.conf \"$1\"/etc/hostname")
        .arg("bookworm")
        .arg(&tar)
        .arg(&source)
        .output()
        .expect("mmdebstrap (Debian's package; .ci/run installs it)");
    assert!(out.status.success(), "mmdebstrap: {}", text(&out.stderr));
    let mut tree = image::Tree::new();
    image::apply_layer(&mut tree, &std::fs::read(&tar).unwrap()).unwrap();
    // The base has an empty /dev, as make-debian-base's mmtarfilter leaves it.
    tree.retain(|path, _| !path.starts_with("/dev/"));
    tree
}

/// apt's auto-installed marks (`/var/lib/apt/extended_states`) as a sorted set of stanzas.
fn auto_marks(tree: &image::Tree) -> Vec<String> {
    let entry = tree
        .get("/var/lib/apt/extended_states")
        .expect("extended_states");
    let image::Kind::File {
        text: Some(text), ..
    } = &entry.kind
    else {
        panic!("extended_states is not a short text file: {entry:?}");
    };
    let mut stanzas: Vec<String> = text.split("\n\n").map(|s| s.trim().to_owned()).collect();
    stanzas.sort();
    stanzas
}

#[test]
fn installs_the_files_mmdebstrap_installs_for_the_same_packages() {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    s.dockerfile(apt::SIGNED, &[&install_line(PACKAGES)]);
    let archive = s.build_archive("pk:eq");
    let kiln = image::read_archive(&archive).unwrap().tree;
    let debian = mmdebstrap_tree(&s.mirror, s.ws.dir.path(), PACKAGES);
    assert_eq!(auto_marks(&debian), auto_marks(&kiln), "extended_states");
    let (kiln, debian) = (compared(kiln), compared(debian));
    let differences = compare::tree_differences(("mmdebstrap", &debian), ("kiln", &kiln));
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

/// debconf's database files: left out of [`compared`] as caches, but ca-certificates'
/// answers (and every template it registers) must be there as Debian's debconf writes
/// them.
const DEBCONF_FILES: &[&str] = &[
    "/var/cache/debconf/config.dat",
    "/var/cache/debconf/config.dat-old",
    "/var/cache/debconf/passwords.dat",
    "/var/cache/debconf/templates.dat",
    "/var/cache/debconf/templates.dat-old",
];

/// ca-certificates alone (openssl and libssl3 come with it): its postinst runs debconf's
/// confmodule, so the frontend (kiln's) runs its config and its postinst, and its
/// answers land in debconf's database as on Debian.
#[test]
fn installs_ca_certificates_with_debconfs_answers_as_mmdebstrap_does() {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    s.dockerfile(apt::SIGNED, &[&install_line("ca-certificates")]);
    let (out, root) = s.build_local(&[]);
    assert_ok(&out);
    assert!(
        log(&out).contains("Setting up ca-certificates "),
        "{}",
        log(&out)
    );
    for package in ["ca-certificates", "openssl", "libssl3"] {
        let para = status_of(&root, package);
        assert!(para.contains("\nStatus: install ok installed\n"), "{para}");
    }
    assert_ca_bundle(&root);
    let config = read(&root, "var/cache/debconf/config.dat");
    for answer in [
        "Name: ca-certificates/trust_new_crts\nTemplate: ca-certificates/trust_new_crts\n\
         Value: yes\nOwners: ca-certificates\n",
        "Name: ca-certificates/enable_crts\nTemplate: ca-certificates/enable_crts\n\
         Value: mozilla/ACCVRAIZ1.crt, ",
    ] {
        assert!(
            config.contains(answer),
            "no {answer:?} in config.dat:\n{config}"
        );
    }
    // The whole tree, debconf's database included, against Debian's own tools.
    let archive = s.build_archive("pk:ca");
    let kiln = image::read_archive(&archive).unwrap().tree;
    let debian = mmdebstrap_tree(&s.mirror, s.ws.dir.path(), "ca-certificates");
    let with_debconf = |tree: image::Tree| {
        let mut kept = compared(tree.clone());
        for file in DEBCONF_FILES {
            let entry = tree.get(*file).unwrap_or_else(|| panic!("no {file}"));
            kept.insert((*file).to_owned(), entry.clone());
        }
        kept
    };
    let (kiln, debian) = (with_debconf(kiln), with_debconf(debian));
    let differences = compare::tree_differences(("mmdebstrap", &debian), ("kiln", &kiln));
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}

// --- a real engine ----------------------------------------------------------------------

/// Runs `args` in a container of `image` on the host network; returns stdout + stderr.
fn docker_run(daemon: &dockerd::Dockerd, image: &str, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network=host", image];
    all.extend_from_slice(args);
    let out = daemon.docker(&all);
    assert!(out.status.success(), "docker run {args:?}: {}", log(&out));
    log(&out)
}

/// Opt-in like the differential test, for the same reasons: dockerd needs root and
/// Debian's docker.io, and starting it plus a vfs load of a 200 MB image takes minutes.
#[test]
#[ignore = "needs root and docker.io: cargo test -p kiln-cli --test packages -- --ignored"]
fn the_image_runs_curl_and_jq_in_docker_and_curl_finds_the_ca_bundle() {
    let Some(s) = setup(debian::layout()) else {
        return;
    };
    s.dockerfile(apt::SIGNED, &[&install_line(PACKAGES)]);
    let tag = "kiln-packages:engine";
    let archive = s.build_archive(tag);
    let daemon = dockerd::Dockerd::start();
    let load = daemon.docker(&["load", "-i", archive.to_str().unwrap()]);
    assert!(load.status.success(), "docker load: {}", log(&load));
    assert!(docker_run(&daemon, tag, &["curl", "--version"]).starts_with("curl 7.88.1 "));
    assert!(docker_run(&daemon, tag, &["jq", "--version"]).starts_with("jq-1.6"));
    docker_run(
        &daemon,
        tag,
        &["test", "-s", "/etc/ssl/certs/ca-certificates.crt"],
    );
    // A TLS handshake with a listener that hangs up: curl has loaded its CA file by then
    // and says which (no TLS server with a publicly trusted certificate exists offline).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hangup = std::thread::spawn(move || drop(listener.accept()));
    let url = format!("https://127.0.0.1:{port}/");
    let curl = daemon.docker(&["run", "--rm", "--network=host", tag, "curl", "-v", &url]);
    hangup.join().unwrap();
    assert!(
        log(&curl).contains("CAfile: /etc/ssl/certs/ca-certificates.crt"),
        "{}",
        log(&curl)
    );
}
