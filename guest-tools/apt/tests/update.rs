//! `update::run` against E's loopback mirror of real bookworm .debs (tests/packages/
//! make-debian-mirror), served to the code through a Transport that reads its files.
//! Skipped with a notice when the mirror is missing, unless KILN_REQUIRE_DEBIAN is set.

use std::cell::RefCell;
use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use kiln_apt::fetch::{Response, Transport};
use kiln_apt::index::Packages;
use kiln_apt::update::{self, Options, UpdateReport};
use kiln_apt::{Error, Result};

const BASE: &str = "http://127.0.0.1:8080/debian/";

fn mirror() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("KILN_TEST_DEBIAN_MIRROR")
            .unwrap_or("/var/tmp/kiln-test/debian-mirror".into()),
    );
    if dir.join("dists/bookworm/InRelease").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("KILN_REQUIRE_DEBIAN").is_none(),
        "no Debian mirror at {}",
        dir.display()
    );
    eprintln!(
        "skipped: no Debian mirror at {} (tests/packages/make-debian-mirror makes it)",
        dir.display()
    );
    None
}

/// Serves the mirror's files under BASE; records every URL asked for.
struct Files {
    dir: PathBuf,
    asked: Rc<RefCell<Vec<String>>>,
    /// Paths (relative to the mirror) answered with this body instead of the file;
    /// an empty body answers 404.
    replace: Vec<(String, Vec<u8>)>,
}

impl Transport for Files {
    fn get(&mut self, url: &str) -> Result<Response> {
        self.asked.borrow_mut().push(url.to_string());
        let rel = url.strip_prefix(BASE).ok_or_else(|| Error::Fetch {
            url: url.into(),
            why: "Could not connect".into(),
        })?;
        let body = match self.replace.iter().find(|(p, _)| p == rel) {
            Some((_, b)) => Some(b.clone()).filter(|b| !b.is_empty()),
            None => fs::read(self.dir.join(rel)).ok(),
        };
        Ok(match body {
            Some(b) => Response {
                status: 200,
                content_length: Some(b.len() as u64),
                body: Box::new(Cursor::new(b)),
            },
            None => Response {
                status: 404,
                content_length: None,
                body: Box::new(Cursor::new(Vec::new())),
            },
        })
    }
}

/// An image root trusting the mirror's key, with one sources line for `suite`.
fn image(name: &str, mirror: &Path, line: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("kiln-apt-update-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("etc/apt/trusted.gpg.d")).unwrap();
    fs::copy(
        mirror.join("kiln-test.gpg"),
        root.join("etc/apt/trusted.gpg.d/kiln-test.gpg"),
    )
    .unwrap();
    fs::write(root.join("etc/apt/sources.list"), format!("{line}\n")).unwrap();
    root
}

fn run(root: &Path, files: &mut Files) -> (UpdateReport, String) {
    let mut out = Vec::new();
    let opts = Options {
        arch: "amd64".into(),
        quiet: 0,
    };
    let report = update::run(root, &opts, files, &mut out).unwrap();
    report.print(&mut out).unwrap();
    (report, String::from_utf8(out).unwrap())
}

fn files(dir: &Path) -> Files {
    Files {
        dir: dir.to_path_buf(),
        asked: Rc::default(),
        replace: Vec::new(),
    }
}

#[test]
fn signed_mirror_updates_as_apt_stores_it() {
    let Some(m) = mirror() else { return };
    let root = image(
        "signed",
        &m,
        "deb http://127.0.0.1:8080/debian bookworm main",
    );
    let mut net = files(&m);
    let (report, out) = run(&root, &mut net);
    assert!(!report.failed(), "{out}");
    assert!(
        out.starts_with("Get:1 http://127.0.0.1:8080/debian bookworm InRelease ["),
        "{out}"
    );
    assert!(
        out.contains("Get:2 http://127.0.0.1:8080/debian bookworm/main amd64 Packages ["),
        "{out}"
    );
    assert!(
        out.contains("Fetched ") && out.ends_with("Reading package lists...\n"),
        "{out}"
    );
    // by-hash is used when the Release offers it.
    assert!(
        net.asked
            .borrow()
            .iter()
            .any(|u| u.contains("/main/binary-amd64/by-hash/SHA256/")),
        "{:?}",
        net.asked
    );
    let lists = root.join("var/lib/apt/lists");
    let mut names: Vec<String> = fs::read_dir(&lists)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "127.0.0.1:8080_debian_dists_bookworm_InRelease",
            "127.0.0.1:8080_debian_dists_bookworm_main_binary-amd64_Packages",
            "auxfiles",
            "lock",
            "partial"
        ]
    );
    // Stored uncompressed, byte for byte the mirror's Packages.
    let stored =
        fs::read(lists.join("127.0.0.1:8080_debian_dists_bookworm_main_binary-amd64_Packages"))
            .unwrap();
    assert_eq!(
        stored,
        fs::read(m.join("dists/bookworm/main/binary-amd64/Packages")).unwrap()
    );
    assert_eq!(fs::read_dir(lists.join("partial")).unwrap().count(), 0);
    let mode = |p: &str| fs::metadata(lists.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        (mode("partial"), mode("auxfiles"), mode("lock")),
        (0o700, 0o755, 0o640)
    );
    let table = Packages::load(&root, "amd64").unwrap();
    let curl = &table.versions("curl")[0];
    assert!(
        curl.url()
            .starts_with("http://127.0.0.1:8080/debian/pool/main/"),
        "{}",
        curl.url()
    );
    assert_eq!(curl.architecture, "amd64");
    assert_eq!(
        (curl.suite.as_str(), curl.component.as_str()),
        ("bookworm", "main")
    );

    // A second update downloads no index again.
    let (report, out) = run(&root, &mut net);
    assert!(!report.failed());
    assert_eq!(
        out,
        "Hit:1 http://127.0.0.1:8080/debian bookworm InRelease\nReading package lists...\n"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_unsigned_release_fails_as_apt_does() {
    let Some(m) = mirror() else { return };
    let root = image(
        "unsigned",
        &m,
        "deb http://127.0.0.1:8080/debian unsigned main",
    );
    let (report, out) = run(&root, &mut files(&m));
    assert!(report.failed());
    assert!(
        out.contains("Ign:1 http://127.0.0.1:8080/debian unsigned InRelease\n"),
        "{out}"
    );
    assert!(
        out.contains("Get:2 http://127.0.0.1:8080/debian unsigned Release ["),
        "{out}"
    );
    assert!(
        out.contains("Ign:3 http://127.0.0.1:8080/debian unsigned Release.gpg\n"),
        "{out}"
    );
    assert!(out.contains("Reading package lists...\nE: The repository 'http://127.0.0.1:8080/debian unsigned Release' is not signed.\n"), "{out}");
    assert!(
        !root
            .join(
                "var/lib/apt/lists/127.0.0.1:8080_debian_dists_unsigned_main_binary-amd64_Packages"
            )
            .exists()
    );
    // trusted=yes accepts it, as apt does.
    fs::write(
        root.join("etc/apt/sources.list"),
        "deb [trusted=yes] http://127.0.0.1:8080/debian unsigned main\n",
    )
    .unwrap();
    let (report, out) = run(&root, &mut files(&m));
    assert!(!report.failed(), "{out}");
    assert!(Packages::load(&root, "amd64").unwrap().versions("jq").len() == 1);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_unknown_key_is_no_pubkey_then_not_signed() {
    let Some(m) = mirror() else { return };
    let root = image(
        "wrongkey",
        &m,
        "deb http://127.0.0.1:8080/debian wrongkey main",
    );
    let (report, out) = run(&root, &mut files(&m));
    assert!(report.failed());
    assert!(out.contains("Err:1 http://127.0.0.1:8080/debian wrongkey InRelease\n  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY "), "{out}");
    assert!(out.contains("W: GPG error: http://127.0.0.1:8080/debian wrongkey InRelease: The following signatures couldn't be verified"), "{out}");
    assert!(
        out.contains(
            "E: The repository 'http://127.0.0.1:8080/debian wrongkey InRelease' is not signed."
        ),
        "{out}"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_tampered_index_is_a_hash_sum_mismatch() {
    let Some(m) = mirror() else { return };
    let root = image(
        "tampered",
        &m,
        "deb http://127.0.0.1:8080/debian tampered main",
    );
    let (report, out) = run(&root, &mut files(&m));
    assert!(report.failed());
    let block = "amd64 Packages\n  Hash Sum mismatch\n  Hashes of expected file:\n   - Filesize:";
    assert!(out.contains(block), "{out}");
    assert!(
        out.contains(
            "E: Failed to fetch http://127.0.0.1:8080/debian/dists/tampered/main/binary-amd64/"
        ),
        "{out}"
    );
    assert!(out.ends_with("E: Some index files failed to download. They have been ignored, or old ones used instead.\n"), "{out}");
    assert!(
        !root
            .join(
                "var/lib/apt/lists/127.0.0.1:8080_debian_dists_tampered_main_binary-amd64_Packages"
            )
            .exists()
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_edited_answer_for_a_signed_index_is_refused() {
    let Some(m) = mirror() else { return };
    let root = image(
        "edited",
        &m,
        "deb [signed-by=/etc/apt/trusted.gpg.d/kiln-test.gpg] http://127.0.0.1:8080/debian bookworm main",
    );
    let mut net = files(&m);
    let by_hash = by_hash_path(&m);
    net.replace.push((by_hash, b"not xz at all".to_vec()));
    let (report, out) = run(&root, &mut net);
    assert!(report.failed());
    assert!(out.contains("Hash Sum mismatch"), "{out}");
    fs::remove_dir_all(root).unwrap();
}

/// The by-hash path of bookworm's amd64 Packages.xz in the mirror.
fn by_hash_path(m: &Path) -> String {
    let text = fs::read_to_string(m.join("dists/bookworm/Release")).unwrap();
    let release = kiln_apt::release::Release::parse(&text, "Release").unwrap();
    assert!(release.acquire_by_hash);
    let xz = release.entry("main/binary-amd64/Packages.xz").unwrap();
    format!(
        "dists/bookworm/main/binary-amd64/by-hash/SHA256/{}",
        xz.sha256
    )
}

#[test]
fn without_a_by_hash_copy_the_plain_name_is_fetched_as_apt_does() {
    let Some(m) = mirror() else { return };
    let root = image(
        "nobyhash",
        &m,
        "deb http://127.0.0.1:8080/debian bookworm main",
    );
    let mut net = files(&m);
    net.replace.push((by_hash_path(&m), Vec::new()));
    let (report, out) = run(&root, &mut net);
    assert!(!report.failed(), "{out}");
    let line = "http://127.0.0.1:8080/debian bookworm/main amd64 Packages";
    assert!(
        out.contains(&format!("Ign:2 {line}\nGet:2 {line} [")),
        "{out}"
    );
    assert!(
        net.asked
            .borrow()
            .iter()
            .any(|u| u.ends_with("/binary-amd64/Packages.xz"))
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_repository_has_no_release_file() {
    let Some(m) = mirror() else { return };
    let root = image(
        "missing",
        &m,
        "deb http://127.0.0.1:8080/debian nosuch main",
    );
    let (report, out) = run(&root, &mut files(&m));
    assert!(report.failed());
    assert!(
        out.contains("Err:2 http://127.0.0.1:8080/debian nosuch Release\n  404  Not Found\n"),
        "{out}"
    );
    assert!(out.contains("E: The repository 'http://127.0.0.1:8080/debian nosuch Release' does not have a Release file."), "{out}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_unreachable_host_is_a_warning_as_in_apt() {
    let Some(m) = mirror() else { return };
    let root = image("down", &m, "deb http://10.255.255.1/debian bookworm main");
    let (report, out) = run(&root, &mut files(&m));
    assert!(!report.failed(), "{out}");
    assert!(
        out.contains("Err:1 http://10.255.255.1/debian bookworm InRelease\n  Could not connect\n"),
        "{out}"
    );
    assert!(out.contains("W: Failed to fetch http://10.255.255.1/debian/dists/bookworm/InRelease  Could not connect\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n"), "{out}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_garbled_inrelease_fails_its_source_only() {
    let Some(m) = mirror() else { return };
    let lines = "deb [trusted=yes] http://127.0.0.1:8080/debian tampered main\n\
                 deb http://127.0.0.1:8080/debian bookworm main";
    let root = image("garbled", &m, lines);
    let mut net = files(&m);
    let page = b"<html>captive portal</html>\n".to_vec();
    net.replace.push(("dists/tampered/InRelease".into(), page));
    let (report, out) = run(&root, &mut net);
    assert!(report.failed());
    assert!(
        out.contains("Err:1 http://127.0.0.1:8080/debian tampered InRelease\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "E: The repository 'http://127.0.0.1:8080/debian tampered InRelease' is not signed."
        ),
        "{out}"
    );
    // The next source is still updated.
    assert!(
        out.contains("Get:3 http://127.0.0.1:8080/debian bookworm/main amd64 Packages ["),
        "{out}"
    );
    assert!(
        !Packages::load(&root, "amd64")
            .unwrap()
            .versions("curl")
            .is_empty()
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_unopenable_lock_fails_before_any_transfer_as_apt_does() {
    let Some(m) = mirror() else { return };
    let root = image("lock", &m, "deb http://127.0.0.1:8080/debian bookworm main");
    let lists = root.join("var/lib/apt/lists");
    fs::create_dir_all(lists.join("lock")).unwrap();
    let mut net = files(&m);
    let opts = Options {
        arch: "amd64".into(),
        quiet: 0,
    };
    let err = update::run(&root, &opts, &mut net, &mut Vec::new()).unwrap_err();
    let want = format!(
        "Could not open lock file {0}/lock - open (21: Is a directory)\nE: Unable to lock directory {0}/",
        lists.display()
    );
    assert_eq!(err.to_string(), want);
    assert!(net.asked.borrow().is_empty());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_listed_index_the_mirror_lacks_is_an_error_as_in_apt() {
    let Some(m) = mirror() else { return };
    let root = image(
        "noindex",
        &m,
        "deb http://127.0.0.1:8080/debian bookworm main",
    );
    let mut net = files(&m);
    let dir = "dists/bookworm/main/binary-amd64/";
    for name in ["Packages", "Packages.gz", "Packages.xz"] {
        net.replace.push((format!("{dir}{name}"), Vec::new()));
    }
    net.replace.push((by_hash_path(&m), Vec::new()));
    let (report, out) = run(&root, &mut net);
    assert!(report.failed(), "{out}");
    let url = "http://127.0.0.1:8080/debian/dists/bookworm/main/binary-amd64/Packages";
    assert!(
        out.contains(&format!("E: Failed to fetch {url}  404  Not Found\n")),
        "{out}"
    );
    assert!(out.ends_with("E: Some index files failed to download. They have been ignored, or old ones used instead.\n"), "{out}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_file_source_updates_through_the_guest_transport() {
    let Some(m) = mirror() else { return };
    let line = format!("deb file:{} bookworm main", m.display());
    let root = image("file", &m, &line);
    let mut out = Vec::new();
    let opts = Options {
        arch: "arm64".into(),
        quiet: 0,
    };
    let report = update::run(&root, &opts, &mut kiln_apt::fetch::KilnHttp, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(!report.failed(), "{out}");
    let prefix = lists_prefix(&m);
    let stored = root.join(format!(
        "var/lib/apt/lists/{prefix}_dists_bookworm_main_binary-arm64_Packages"
    ));
    assert_eq!(
        fs::read(stored).unwrap(),
        fs::read(m.join("dists/bookworm/main/binary-arm64/Packages")).unwrap()
    );
    let table = Packages::load(&root, "arm64").unwrap();
    assert_eq!(table.versions("jq")[0].architecture, "arm64");
    fs::remove_dir_all(root).unwrap();
}

/// apt's list-file prefix of a `file:` URI: its path with every `/` as `_` (the mirror's
/// path has none of the characters apt quotes).
fn lists_prefix(dir: &Path) -> String {
    dir.display().to_string().replace('/', "_")
}
