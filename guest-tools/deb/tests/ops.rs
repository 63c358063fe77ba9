//! kiln-deb's unpack, configure, remove and purge: the files it writes compared with
//! `dpkg-deb -x` of the same real packages, and a package's whole life (scripts called
//! with dpkg's arguments, status transitions, conffile rules on upgrade).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use kiln_deb::archive::DebFile;
use kiln_deb::db::{self, Database, State};
use kiln_deb::ops::{self, Event, MaintScript, Progress, ScriptRunner};
use kiln_deb::{Error, Result};

/// Records the scripts it is asked to run (and runs none).
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    lines: Vec<String>,
}

impl ScriptRunner for Recorder {
    fn run(&mut self, s: &MaintScript<'_>) -> Result<i32> {
        assert!(s.path.starts_with("/var/lib/dpkg/"), "{}", s.path);
        self.calls.push(
            format!("{} {} {}", s.package, s.name, s.args.join(" "))
                .trim_end()
                .to_string(),
        );
        Ok(0)
    }
}

impl Progress for Recorder {
    fn event(&mut self, event: Event<'_>) {
        self.lines.push(format!("{event:?}"));
    }
}

fn unpack(root: &Path, deb: &Path, rec: &mut Recorder) -> Result<()> {
    let mut db = Database::load(root)?;
    let deb = DebFile::open(deb)?;
    let mut scripts = std::mem::take(rec);
    let result = ops::unpack(&mut db, &deb, &mut scripts, rec);
    rec.calls = scripts.calls;
    result
}

fn with_db(
    root: &Path,
    rec: &mut Recorder,
    op: fn(&mut Database, &str, &mut dyn ScriptRunner, &mut dyn Progress) -> Result<()>,
) -> Result<()> {
    let mut db = Database::load(root)?;
    let mut scripts = std::mem::take(rec);
    let result = op(&mut db, "test-pkg", &mut scripts, rec);
    rec.calls = scripts.calls;
    result
}

fn entry(root: &Path) -> Option<kiln_deb::control::Paragraph> {
    Database::load(root)
        .unwrap()
        .find("test-pkg", None)
        .cloned()
}

fn state(root: &Path) -> State {
    db::status(&entry(root).unwrap()).unwrap().state
}

#[test]
fn unpacked_files_match_dpkg_deb_extract() {
    let Some(debs) = common::mirror_debs("amd64") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut debs: Vec<_> = debs.into_iter().collect();
    debs.push(common::build_test_deb(dir.path(), "zstd"));
    for deb in debs {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let mut rec = Recorder::default();
        unpack(ours.path(), &deb, &mut rec).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
        let name = DebFile::open(&deb)
            .unwrap()
            .control()
            .unwrap()
            .get("Package")
            .unwrap()
            .to_string();
        let mut db = Database::load(ours.path()).unwrap();
        ops::configure(&mut db, &name, &mut rec, &mut Recorder::default()).unwrap();
        common::run(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(theirs.path()),
        );
        let (mut a, b) = (
            common::tree(ours.path(), &["var/lib/dpkg"]),
            common::tree(theirs.path(), &["var/lib/dpkg"]),
        );
        // The database's own directories exist only in ours.
        for parent in ["var", "var/lib"] {
            if !b.contains_key(parent) {
                a.remove(parent);
            }
        }
        let mut diff: Vec<_> = a.iter().filter(|(k, v)| b.get(*k) != Some(v)).collect();
        diff.extend(b.iter().filter(|(k, _)| !a.contains_key(*k)));
        assert!(diff.is_empty(), "{}: {diff:?}", deb.display());
    }
}

#[test]
fn a_package_lifecycle_as_dpkg_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let v1 = common::build_deb(dir.path(), "xz", "1:2.0-1", "setting=1\n");
    let mut rec = Recorder::default();
    unpack(root, &v1, &mut rec).unwrap();
    assert_eq!(rec.calls, ["test-pkg preinst install"]);
    assert_eq!(rec.lines[0], "Selecting { package: \"test-pkg\" }");
    assert_eq!(state(root), State::Unpacked);
    assert!(
        root.join("etc/test-pkg.conf.dpkg-new").exists()
            && !root.join("etc/test-pkg.conf").exists()
    );
    assert_eq!(db::conffiles(&entry(root).unwrap())[0].hash, "newconffile");
    assert!(root.join("var/lib/dpkg/info/test-pkg.list").exists());
    assert!(!root.join("var/lib/dpkg/tmp.ci").exists());

    with_db(root, &mut rec, ops::configure).unwrap();
    assert_eq!(rec.calls[1], "test-pkg postinst configure");
    assert_eq!(state(root), State::Installed);
    assert_eq!(
        fs::read_to_string(root.join("etc/test-pkg.conf")).unwrap(),
        "setting=1\n"
    );
    let hash = db::conffiles(&entry(root).unwrap())[0].hash.clone();
    assert_eq!(hash, md5sum(&root.join("etc/test-pkg.conf")));
    let err = with_db(root, &mut rec, ops::configure).unwrap_err();
    assert!(matches!(err, Error::Package { .. }), "{err}");

    // The admin edits the conffile; the upgrade keeps the edit and leaves .dpkg-dist.
    fs::write(root.join("etc/test-pkg.conf"), "setting=mine\n").unwrap();
    let v2 = common::build_deb(dir.path(), "gzip", "1:2.1-1", "setting=2\n");
    let mut rec = Recorder::default();
    unpack(root, &v2, &mut rec).unwrap();
    assert_eq!(
        rec.calls,
        [
            "test-pkg prerm upgrade 1:2.1-1",
            "test-pkg preinst upgrade 1:2.0-1",
            "test-pkg postrm upgrade 1:2.1-1"
        ]
    );
    assert!(
        rec.lines
            .iter()
            .any(|l| l.contains("replacing: Some(\"1:2.0-1\")")),
        "{:?}",
        rec.lines
    );
    let unpacked = entry(root).unwrap();
    assert_eq!(unpacked.get("Config-Version"), Some("1:2.0-1"));
    assert_eq!(db::conffiles(&unpacked)[0].hash, hash);
    with_db(root, &mut rec, ops::configure).unwrap();
    assert_eq!(
        rec.calls.last().unwrap(),
        "test-pkg postinst configure 1:2.0-1"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/test-pkg.conf")).unwrap(),
        "setting=mine\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/test-pkg.conf.dpkg-dist")).unwrap(),
        "setting=2\n"
    );
    assert_eq!(entry(root).unwrap().get("Config-Version"), None);
    // The hash recorded is the package's version's, so the edit stays an edit.
    let recorded = db::conffiles(&entry(root).unwrap())[0].hash.clone();
    assert_eq!(recorded, md5sum(&root.join("etc/test-pkg.conf.dpkg-dist")));

    // A version without the conffile leaves it on disk, marked obsolete.
    let v3 = common::build_deb(dir.path(), "none", "1:2.2-1", "");
    unpack(root, &v3, &mut rec).unwrap();
    with_db(root, &mut rec, ops::configure).unwrap();
    let conffiles = db::conffiles(&entry(root).unwrap());
    assert_eq!(conffiles.len(), 1);
    assert!(
        conffiles[0].obsolete && conffiles[0].hash == recorded,
        "{conffiles:?}"
    );
    assert!(root.join("etc/test-pkg.conf").exists());

    let mut rec = Recorder::default();
    with_db(root, &mut rec, ops::remove).unwrap();
    assert_eq!(
        rec.calls,
        ["test-pkg prerm remove", "test-pkg postrm remove"]
    );
    assert_eq!(state(root), State::ConfigFiles);
    assert!(
        !root.join("usr/bin/test-pkg").exists() && !root.join("usr/share/doc/test-pkg").exists()
    );
    assert!(root.join("etc/test-pkg.conf").exists());
    assert!(root.join("var/lib/dpkg/info/test-pkg.postrm").exists());
    assert!(!root.join("var/lib/dpkg/info/test-pkg.postinst").exists());

    with_db(root, &mut rec, ops::purge).unwrap();
    assert_eq!(rec.calls.last().unwrap(), "test-pkg postrm purge");
    assert!(entry(root).is_none());
    assert!(
        !root.join("etc/test-pkg.conf").exists()
            && !root.join("etc/test-pkg.conf.dpkg-dist").exists()
    );
    let info: Vec<_> = fs::read_dir(root.join("var/lib/dpkg/info"))
        .unwrap()
        .collect();
    assert!(info.is_empty(), "{info:?}");
}

#[test]
fn overwriting_another_package_file_needs_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let mut rec = Recorder::default();
    unpack(
        root.path(),
        &common::build_test_deb(dir.path(), "xz"),
        &mut rec,
    )
    .unwrap();
    let other = |replaces: &str| {
        let pkg = dir.path().join(format!("other{}", replaces.len()));
        fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
        fs::create_dir_all(pkg.join("usr/bin")).unwrap();
        let control = format!(
            "Package: other\nVersion: 1\nArchitecture: all\nMaintainer: k <k@e.org>\n{replaces}Description: x\n"
        );
        fs::write(pkg.join("DEBIAN/control"), control).unwrap();
        fs::write(pkg.join("usr/bin/test-pkg"), "other\n").unwrap();
        let deb = pkg.with_extension("deb");
        common::run(
            Command::new("dpkg-deb")
                .args(["--root-owner-group", "-b"])
                .arg(&pkg)
                .arg(&deb),
        );
        deb
    };
    let err = unpack(root.path(), &other(""), &mut rec)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "trying to overwrite '/usr/bin/test-pkg', which is also in package test-pkg"
    );
    unpack(
        root.path(),
        &other("Replaces: test-pkg (<< 1:3)\n"),
        &mut rec,
    )
    .unwrap();
    assert_eq!(
        fs::read_to_string(root.path().join("usr/bin/test-pkg")).unwrap(),
        "other\n"
    );
    // Removing the replaced package leaves the file its replacer now has.
    with_db(root.path(), &mut rec, ops::remove).unwrap();
    assert_eq!(
        fs::read_to_string(root.path().join("usr/bin/test-pkg")).unwrap(),
        "other\n"
    );
    assert!(!root.path().join("usr/bin/test-pkg-alias").exists());
}

#[test]
fn diverted_files_go_where_the_diversion_says() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    fs::create_dir_all(&admin).unwrap();
    let diversions = "/usr/bin/test-pkg\n/usr/bin/test-pkg.distrib\nother\n\
                      /etc/test-pkg.conf\n/etc/test-pkg.conf.mine\ntest-pkg\n";
    fs::write(admin.join("diversions"), diversions).unwrap();
    let mut rec = Recorder::default();
    unpack(
        root.path(),
        &common::build_test_deb(dir.path(), "xz"),
        &mut rec,
    )
    .unwrap();
    let bin = root.path().join("usr/bin");
    assert!(bin.join("test-pkg.distrib").exists() && !bin.join("test-pkg").exists());
    // A package's own diversion does not apply to itself.
    assert!(root.path().join("etc/test-pkg.conf.dpkg-new").exists());
    let list = fs::read_to_string(admin.join("info/test-pkg.list")).unwrap();
    assert!(list.contains("/usr/bin/test-pkg\n"), "{list}");
    with_db(root.path(), &mut rec, ops::configure).unwrap();
    with_db(root.path(), &mut rec, ops::remove).unwrap();
    assert!(!bin.join("test-pkg.distrib").exists());
}

#[test]
fn unpacks_through_merged_usr_links_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", root.path().join("bin")).unwrap();
    let pkg = dir.path().join("merged");
    fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    fs::create_dir_all(pkg.join("bin")).unwrap();
    fs::write(
        pkg.join("DEBIAN/control"),
        "Package: merged\nVersion: 1\nArchitecture: all\nMaintainer: k <k@e.org>\nDescription: x\n",
    )
    .unwrap();
    fs::write(pkg.join("bin/tool"), "t\n").unwrap();
    let deb = dir.path().join("merged.deb");
    common::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-b"])
            .arg(&pkg)
            .arg(&deb),
    );
    unpack(root.path(), &deb, &mut Recorder::default()).unwrap();
    assert!(
        fs::symlink_metadata(root.path().join("bin"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        fs::read_to_string(root.path().join("usr/bin/tool")).unwrap(),
        "t\n"
    );
}

fn md5sum(path: &Path) -> String {
    let out = common::run(Command::new("md5sum").arg(path));
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The packages of the test mirror that the bookworm base lacks (ca-certificates, curl,
/// jq, less and their dependencies) unpacked and configured into the real base, then
/// checked with the host's own dpkg: every one `ii`, no audit finding, every file's md5
/// as its md5sums says (`dpkg --verify`).
#[test]
fn installs_into_the_bookworm_base_as_dpkg_sees_it() {
    let root = tempfile::tempdir().unwrap();
    let Some(root) = common::debian_base(root.path()) else {
        return;
    };
    let Some(debs) = common::mirror_debs("amd64") else {
        return;
    };
    let mut db = Database::load(&root).unwrap();
    let mut new = Vec::new();
    for path in debs {
        let deb = DebFile::open(&path).unwrap();
        let name = deb.control().unwrap().get("Package").unwrap().to_string();
        if db.find(&name, None).is_none() {
            new.push((name, deb));
        }
    }
    eprintln!("{} packages new to the base", new.len());
    assert!(new.len() >= 5, "{} new packages", new.len());
    assert!(
        new.iter().any(|(n, _)| n == "ca-certificates"),
        "the mirror lacks ca-certificates"
    );
    let mut rec = Recorder::default();
    for (name, deb) in &new {
        ops::unpack(&mut db, deb, &mut Recorder::default(), &mut rec)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, _) in &new {
        ops::configure(&mut db, name, &mut rec, &mut Recorder::default()).unwrap();
    }
    assert!(
        rec.calls
            .contains(&"ca-certificates postinst configure".to_string()),
        "{:?}",
        rec.calls
    );
    let admin = root.join("var/lib/dpkg");
    let query = common::run(
        Command::new("dpkg-query")
            .arg(format!("--admindir={}", admin.display()))
            .args(["-W", "-f", "${db:Status-Abbrev}${Package}\n"]),
    );
    let query = String::from_utf8(query).unwrap();
    for (name, _) in &new {
        assert!(
            query.contains(&format!("ii {name}\n")),
            "{name} not ii:\n{query}"
        );
    }
    let audit = common::run(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--audit"),
    );
    assert_eq!(String::from_utf8_lossy(&audit), "");
    let names: Vec<&str> = new.iter().map(|(n, _)| n.as_str()).collect();
    let verify = common::run(
        Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .arg("--verify")
            .args(&names),
    );
    assert_eq!(String::from_utf8_lossy(&verify), "");
}

/// dpkg names a `Multi-Arch: same` package with its architecture in its progress lines
/// (`Unpacking libjq1:amd64 (...)`, as `dpkg -i` prints for the mirror's libjq1), and a
/// package of another architecture too; other packages by their name alone.
#[test]
fn multi_arch_same_packages_are_shown_with_their_architecture() {
    let root = tempfile::tempdir().unwrap();
    let Some(root) = common::debian_base(root.path()) else {
        return;
    };
    let Some(debs) = common::mirror_debs("amd64") else {
        return;
    };
    let deb_of = |name: &str| {
        let prefix = format!("{name}_");
        let path = debs.iter().find(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.starts_with(&prefix) && file.ends_with("_amd64.deb")
        });
        DebFile::open(path.unwrap()).unwrap()
    };
    let mut db = Database::load(&root).unwrap();
    let mut rec = Recorder::default();
    for name in ["libjq1", "jq"] {
        ops::unpack(&mut db, &deb_of(name), &mut Recorder::default(), &mut rec).unwrap();
        ops::configure(&mut db, name, &mut Recorder::default(), &mut rec).unwrap();
    }
    let shown: Vec<&str> = rec
        .lines
        .iter()
        .filter(|l| !l.starts_with("Preparing"))
        .map(|l| l.split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        shown,
        [
            "libjq1:amd64",
            "libjq1:amd64",
            "libjq1:amd64",
            "jq",
            "jq",
            "jq"
        ]
    );
    // A package of a foreign architecture is named with it too.
    let mut foreign = db.find("jq", None).unwrap().clone();
    foreign.set("Architecture", "arm64".to_string());
    assert_eq!(db.shown_name(&foreign), "jq:arm64");
    ops::remove(&mut db, "libjq1", &mut Recorder::default(), &mut rec).unwrap();
    assert!(rec.lines.last().unwrap().contains("\"libjq1:amd64\""));
}

#[test]
fn stat_overrides_set_owner_and_mode_of_unpacked_files() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    fs::create_dir_all(&admin).unwrap();
    // Our own ids, so the chown works without root; the archive says 0:0 and 4755.
    let (uid, gid) = kiln_abi::identity();
    fs::write(
        admin.join("statoverride"),
        format!(
            "#{uid} #{gid} 0710 /usr/bin/test-pkg\n#{uid} #{gid} 0600 /usr/bin/test-pkg-alias\n"
        ),
    )
    .unwrap();
    let mut rec = Recorder::default();
    unpack(
        root.path(),
        &common::build_test_deb(dir.path(), "xz"),
        &mut rec,
    )
    .unwrap();
    let bin = root.path().join("usr/bin");
    let file = fs::metadata(bin.join("test-pkg")).unwrap();
    assert_eq!(file.permissions().mode() & 0o7777, 0o710);
    assert_eq!((file.uid(), file.gid()), (uid, gid));
    // A symlink gets the override's owner, never its mode.
    let link = fs::symlink_metadata(bin.join("test-pkg-alias")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!((link.uid(), link.gid()), (uid, gid));
}

#[test]
fn a_malformed_statoverride_file_stops_the_unpack_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let admin = root.path().join("var/lib/dpkg");
    fs::create_dir_all(&admin).unwrap();
    fs::write(admin.join("statoverride"), "#0 #0 0644 /a\n#0 #0 99x /b\n").unwrap();
    let mut rec = Recorder::default();
    let err = unpack(
        root.path(),
        &common::build_test_deb(dir.path(), "xz"),
        &mut rec,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Syntax { line: 2, .. }) && text.contains("invalid mode '99x'"),
        "{text}"
    );
    assert!(!root.path().join("usr/bin/test-pkg").exists());
}
