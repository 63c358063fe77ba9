//! The resolver on real data: E's mirror of bookworm .debs (tests/packages/
//! make-debian-mirror) and the bookworm minbase's dpkg status (make-debian-base). The
//! expected sets are what apt 2.6.1 printed for the same request (`apt-get install -s`
//! on this status with the mirror as its only source). Skipped with a notice when the
//! test data is missing, unless KILN_REQUIRE_DEBIAN is set.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_apt::plan::{Step, install_order};
use kiln_apt::resolve::{self, Options, Origin, Pkg, Reason, Target, Universe, status_is_present};
use kiln_deb::control::parse_paragraphs;

const MIRROR: &str = "/var/tmp/kiln-test/debian-mirror";
const BASE: &str = "/var/tmp/kiln-test/debian-bookworm.tar";

fn present(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
        "{path} is missing (tests/packages/make-debian-{{base,mirror}} make it)"
    );
    eprintln!("skipped: {path} is missing");
    false
}

fn pkgs(text: &str, installed: bool) -> Vec<Pkg> {
    parse_paragraphs(text, "test data")
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, p)| !installed || p.get("Status").is_some_and(status_is_present))
        .map(|(i, p)| {
            let origin = if installed {
                Origin::Installed
            } else {
                Origin::Index(i)
            };
            Pkg::parse(|f| p.get(f), origin).unwrap()
        })
        .collect()
}

/// The amd64 universe of the mirror over the minbase, or `None` when either is missing.
fn bookworm() -> Option<Universe> {
    if !present(MIRROR) || !present(BASE) {
        return None;
    }
    // One directory per call: the tests run in parallel threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kiln-resolve-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ok = Command::new("tar")
        .args(["-xf", BASE, "-C"])
        .arg(&dir)
        .arg("./var/lib/dpkg/status")
        .status()
        .unwrap();
    assert!(ok.success());
    let status = std::fs::read_to_string(dir.join("var/lib/dpkg/status")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let index: PathBuf = [MIRROR, "dists/bookworm/main/binary-amd64/Packages"]
        .iter()
        .collect();
    let index = std::fs::read_to_string(index).unwrap();
    Some(Universe::new(
        "amd64",
        pkgs(&index, false),
        pkgs(&status, true),
    ))
}

fn names(list: &str) -> BTreeSet<String> {
    list.split_whitespace().map(String::from).collect()
}

#[test]
fn ca_certificates_curl_jq_as_apt_resolves_them() {
    let Some(u) = bookworm() else { return };
    let want: Vec<Target> = ["ca-certificates", "curl", "jq"]
        .map(Target::parse)
        .to_vec();
    let apt_new = names(
        "ca-certificates curl jq libbrotli1 libcurl4 libgssapi-krb5-2 libjq1 \
         libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libldap-2.5-0 \
         libnghttp2-14 libonig5 libpsl5 librtmp1 libsasl2-2 libsasl2-modules-db \
         libssh2-1 libssl3 openssl",
    );
    let no_recommends = Options {
        recommends: false,
        suggests: false,
    };
    for opts in [no_recommends, Options::default()] {
        // The mirror has none of the Recommends (krb5-locales, publicsuffix...), so
        // apt installs the same set either way.
        let r = resolve::install(&u, &want, opts).unwrap();
        let got: BTreeSet<String> = r.install.keys().cloned().collect();
        assert_eq!(got, apt_new);
        let auto = r
            .install
            .values()
            .filter(|(_, why)| *why == Reason::Auto)
            .count();
        assert_eq!(auto, 18);
    }
    let r = resolve::install(&u, &want, no_recommends).unwrap();
    let recommended = names("krb5-locales libldap-common publicsuffix libsasl2-modules");
    assert_eq!(r.recommended, recommended);
    assert_eq!(r.suggested, names("krb5-doc krb5-user"));
    check_order(&r);
}

/// Each package is unpacked once and configured once, after what it depends on.
fn check_order(r: &resolve::Resolution) {
    let steps = install_order(r).unwrap();
    assert_eq!(steps.len(), 2 * r.install.len());
    let at = |s: Step| steps.iter().position(|x| *x == s).unwrap();
    for (name, (pkg, _)) in &r.install {
        let configured = at(Step::Configure(name.clone()));
        assert!(at(Step::Unpack(name.clone())) < configured);
        for rel in pkg
            .pre_depends
            .iter()
            .chain(&pkg.depends)
            .flat_map(|d| &d.alternatives)
        {
            if r.install.contains_key(&rel.name) && rel.name != *name {
                assert!(
                    at(Step::Configure(rel.name.clone())) <= configured,
                    "{name} before {}",
                    rel.name
                );
            }
        }
    }
}

#[test]
fn the_base_itself_is_consistent_and_less_is_one_package() {
    let Some(u) = bookworm() else { return };
    let r = resolve::install(&u, &[Target::parse("less")], Options::default()).unwrap();
    assert_eq!(r.install.keys().cloned().collect::<Vec<_>>(), ["less"]);
    let err = resolve::install(&u, &[Target::parse("no-such-package")], Options::default());
    assert!(err.is_err());
    // Everything minbase has is already its candidate.
    let r = resolve::install(
        &u,
        &[Target::parse("dpkg"), Target::parse("apt")],
        Options::default(),
    )
    .unwrap();
    assert!(r.install.is_empty());
    assert_eq!(r.unchanged.len(), 2);
}
