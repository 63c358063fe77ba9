//! kiln's debconf against Debian's, natively: the fixture package `kilntest`
//! (tests/debconf/ at the top of the repository) preseeded, configured and purged once
//! with this machine's Perl debconf and once with kiln-pkg's `debconf-frontend` and
//! `debconf-set-selections` (built for the host), each over its own root (`DPKG_ROOT`)
//! holding an empty database. The transcripts the scripts write, their output and every
//! database file must be identical. (tests/debconf.rs of kiln-cli does the same through
//! the kiln binary, where the frontend is wasm and the scripts run in kiln's shell.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::{Path, PathBuf};
use std::process::Command;

/// debconf.conf's default setup: questions, passwords and templates in three files.
const DEBCONF_CONF: &str = "Config: configdb\nTemplates: templatedb\n\n\
Name: config\nDriver: File\nMode: 644\nReject-Type: password\nFilename: /var/cache/debconf/config.dat\n\n\
Name: passwords\nDriver: File\nMode: 600\nBackup: false\nRequired: false\nAccept-Type: password\nFilename: /var/cache/debconf/passwords.dat\n\n\
Name: configdb\nDriver: Stack\nStack: config, passwords\n\n\
Name: templatedb\nDriver: File\nMode: 644\nFilename: /var/cache/debconf/templates.dat\n";

const FILES: &[&str] = &[
    "kilntest.config",
    "kilntest.postinst",
    "kilntest.postrm",
    "kilntest.prerm",
    "kilntest.templates",
];

/// dpkg's record of the fixture as installed (for dpkg-reconfigure).
const STATUS: &str = "Package: kilntest\nStatus: install ok installed\nPriority: optional\n\
Section: misc\nMaintainer: kiln <kiln@example.org>\nArchitecture: all\nVersion: 1.0-1\n\
Description: debconf test package\n\n";

/// Preseeding: a value for a question not yet known, a flag, three refused lines.
const SELECTIONS: &str = "kilntest kilntest/enabled boolean false\n\
kilntest kilntest/readme seen true\nkilntest kilntest/new string a  b \\\n c\n\
kilntest kilntest/x frob y\nbad line\n";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/debconf")
        .join(name)
}

/// A root with the fixture installed and an empty debconf database.
fn root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    // Below DPKG_ROOT, debconf creates its files but not their directory.
    std::fs::create_dir_all(dir.path().join("var/cache/debconf")).unwrap();
    std::fs::write(dir.path().join("etc/debconf.conf"), DEBCONF_CONF).unwrap();
    std::fs::write(dir.path().join("var/lib/dpkg/status"), STATUS).unwrap();
    for name in FILES {
        std::fs::copy(fixture(name), info.join(name)).unwrap();
    }
    std::fs::copy(
        fixture("kilntest.extra.templates"),
        dir.path().join("kilntest.extra.templates"),
    )
    .unwrap();
    dir
}

/// Runs `argv` in `root` with debconf's environment; appends its output to out.txt and
/// its status to the transcript.
fn step(root: &Path, argv: &[&str], stdin: &str, label: &str) {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("out.txt"))
        .unwrap();
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("DPKG_ROOT", root)
        .stdin(std::process::Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let status = child.wait().unwrap().code().unwrap_or(-1);
    let log = root.join("kilntest.log");
    let mut text = std::fs::read_to_string(&log).unwrap_or_default();
    text.push_str(&format!("{label} {status}\n"));
    std::fs::write(log, text).unwrap();
}

/// The three steps, with `frontend` and `preseed` the programs to run (argv prefixes).
fn run(root: &Path, frontend: &[&str], preseed: &[&str]) {
    let script = |name: &str| root.join("var/lib/dpkg/info").join(name);
    step(root, preseed, SELECTIONS, "preseed");
    let postinst = script("kilntest.postinst");
    let argv = [frontend, &[postinst.to_str().unwrap(), "configure", ""]].concat();
    step(root, &argv, "", "status");
    let postrm = script("kilntest.postrm");
    let argv = [frontend, &[postrm.to_str().unwrap(), "purge"]].concat();
    step(root, &argv, "", "status");
}

/// Each file of Debian's run and kiln's is the same.
fn assert_same(debian: &[(String, String)], kiln: &[(String, String)]) {
    for ((name, want), (_, got)) in debian.iter().zip(kiln) {
        assert_eq!(got, want, "{name}");
    }
}

/// What a run left, with its root's path taken out of the texts.
fn results(root: &Path) -> Vec<(String, String)> {
    let mut names = vec!["kilntest.log".to_owned(), "out.txt".to_owned()];
    for db in ["config.dat", "passwords.dat", "templates.dat"] {
        names.push(format!("var/cache/debconf/{db}"));
        names.push(format!("var/cache/debconf/{db}-old"));
    }
    let prefix = root.display().to_string();
    names
        .into_iter()
        .map(|name| {
            let text =
                std::fs::read_to_string(root.join(&name)).unwrap_or_else(|_| "<none>".into());
            (name, text.replace(&prefix, ""))
        })
        .collect()
}

/// Whether this host has Debian's debconf to compare with (every Debian host has it;
/// kiln-cli's tests/debconf.rs checks the same where it is).
fn have_debconf() -> bool {
    let here = Path::new("/usr/share/debconf/frontend").exists();
    if !here {
        eprintln!("SKIPPED: Debian's debconf is not installed on this host");
    }
    here
}

#[test]
fn kilns_debconf_answers_and_writes_as_debians() {
    let perl_frontend = Path::new("/usr/share/debconf/frontend");
    if !have_debconf() {
        return;
    }
    let debian = root();
    run(
        debian.path(),
        &["perl", perl_frontend.to_str().unwrap()],
        &["debconf-set-selections"],
    );
    let kiln = root();
    let bin = env!("CARGO_BIN_EXE_kiln-pkg");
    run(
        kiln.path(),
        &[bin, "debconf-frontend"],
        &[bin, "debconf-set-selections"],
    );
    let (debian, kiln) = (results(debian.path()), results(kiln.path()));
    assert_same(&debian, &kiln);
    // Not vacuous: the config's answers are in the database.
    let transcript = &kiln[0].1;
    assert!(
        transcript.contains("get-toppings 0 [nuts, cream]"),
        "{transcript}"
    );
    assert!(transcript.contains("status 3\n"), "the postinst's status");
}

/// dpkg-reconfigure on the fixture: config `reconfigure` and postinst `configure` with
/// the installed version, at the lowest priority and with every question shown again.
/// The prerm, which does not use debconf, is left out of the comparison: after running
/// such a script Debian's dpkg-reconfigure reads its configuration again, which fails
/// under DPKG_ROOT (debconf prefixes the root twice); kiln's run with it is checked apart.
#[test]
fn dpkg_reconfigure_runs_the_scripts_as_debians() {
    if !have_debconf() {
        return;
    }
    let bin = env!("CARGO_BIN_EXE_kiln-pkg");
    let reconfigure = |program: &[&str], prerm: bool| {
        let root = root();
        if !prerm {
            std::fs::remove_file(root.path().join("var/lib/dpkg/info/kilntest.prerm")).unwrap();
        }
        let argv = [program, &["-f", "noninteractive", "kilntest"]].concat();
        step(root.path(), &argv, "", "reconfigure");
        results(root.path())
    };
    let debian = reconfigure(&["dpkg-reconfigure"], false);
    let kiln = reconfigure(&[bin, "dpkg-reconfigure"], false);
    assert_same(&debian, &kiln);
    let transcript = &kiln[0].1;
    assert!(
        transcript.starts_with("config reconfigure 1.0-1\n"),
        "{transcript}"
    );
    assert!(
        transcript.ends_with("reconfigure 3\n"),
        "the postinst's status"
    );
    // With the prerm: it runs first, as a plain program (no frontend), then the rest
    // goes as without it.
    let with_prerm = &reconfigure(&[bin, "dpkg-reconfigure"], true)[0].1;
    let first = "prerm upgrade 1.0-1 no frontend prerm 1\n";
    assert_eq!(with_prerm.strip_prefix(first), Some(transcript.as_str()));
}
