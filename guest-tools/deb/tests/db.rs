//! kiln-deb's dpkg database against the real one of a Debian bookworm base: read and
//! written back byte for byte, entries and .list files made from the same packages'
//! .debs identical to what dpkg wrote.

mod common;

use std::fs;

use kiln_deb::archive::DebFile;
use kiln_deb::db::{self, Database, State, Status};

#[test]
fn status_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = common::debian_base_dpkg(dir.path()) else {
        return;
    };
    let original = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    let db = Database::load(&root).unwrap();
    assert!(db.entries().len() > 80, "{}", db.entries().len());
    assert_eq!(db.native_arch(), Some("amd64"));
    db.write().unwrap();
    let written = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert_same_lines(&written, &original);
    let old = fs::read_to_string(root.join("var/lib/dpkg/status-old")).unwrap();
    assert_same_lines(&old, &original);
    assert!(!root.join("var/lib/dpkg/status-new").exists());
}

/// Equal texts, or a failure naming the first line that differs (not both whole files).
fn assert_same_lines(got: &str, want: &str) {
    let first = got
        .lines()
        .zip(want.lines())
        .enumerate()
        .find(|(_, (g, w))| g != w);
    if let Some((i, (g, w))) = first {
        panic!("line {}: got {g:?}, want {w:?}", i + 1);
    }
    assert_eq!(got.len(), want.len(), "same lines, different lengths");
}

#[test]
fn entries_and_lists_from_debs_are_what_dpkg_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = common::debian_base_dpkg(dir.path()) else {
        return;
    };
    let Some(debs) = common::mirror_debs("amd64") else {
        return;
    };
    let db = Database::load(&root).unwrap();
    let mut compared = 0;
    for path in debs {
        let deb = DebFile::open(&path).unwrap();
        let control = deb.control().unwrap();
        let Some(installed) = db.find(control.get("Package").unwrap(), None) else {
            continue;
        };
        if installed.get("Version") != control.get("Version") {
            continue;
        }
        let status = db::status(installed).unwrap();
        let extra: Vec<(&str, String)> = installed
            .get("Conffiles")
            .map(|c| ("Conffiles", c.to_string()))
            .into_iter()
            .collect();
        assert_eq!(
            db::status_entry(&control, status, &extra),
            *installed,
            "{}",
            path.display()
        );
        let mut list = Vec::new();
        deb.data_entries(&mut |e, _| {
            list.push(e.path.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(list, db.read_list(installed).unwrap(), "{}", path.display());
        compared += 1;
    }
    assert!(
        compared > 50,
        "only {compared} packages of the base are in the mirror"
    );
}

#[test]
fn info_names_conffiles_and_status_words() {
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = common::debian_base_dpkg(dir.path()) else {
        return;
    };
    let db = Database::load(&root).unwrap();
    let libc = db.find("libc6", None).unwrap();
    assert_eq!(db::info_name(libc), "libc6:amd64");
    assert!(db.info_path(libc, "list").exists());
    let base_files = db.find("base-files", Some("amd64")).unwrap();
    assert_eq!(db::info_name(base_files), "base-files");
    let conffiles = db::conffiles(base_files);
    assert!(
        conffiles
            .iter()
            .any(|c| c.path == "/etc/issue" && c.hash.len() == 32)
    );
    let mut copy = base_files.clone();
    db::set_conffiles(&mut copy, &conffiles);
    assert_eq!(copy, *base_files);
    let status = db::status(base_files).unwrap();
    assert_eq!(status.state, State::Installed);
    assert_eq!(status.to_string(), "install ok installed");
    for text in [
        "deinstall reinstreq half-installed",
        "purge ok config-files",
        "hold ok triggers-pending",
    ] {
        assert_eq!(text.parse::<Status>().unwrap().to_string(), text);
    }
    assert!("install ok".parse::<Status>().is_err());
    assert!("install fine installed".parse::<Status>().is_err());
}

#[test]
fn missing_status_is_an_empty_database_and_bad_one_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::load(dir.path()).unwrap();
    assert!(db.entries().is_empty() && db.native_arch().is_none());
    fs::create_dir_all(dir.path().join("var/lib/dpkg")).unwrap();
    fs::write(dir.path().join("var/lib/dpkg/status"), "Version: 1\n").unwrap();
    let err = Database::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no Package field"), "{err}");
}
