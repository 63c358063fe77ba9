//! debconf in RUN steps (issue 15), end to end through the real `kiln` binary on the
//! Debian bookworm base: a maintainer script that sources debconf's confmodule execs
//! debconf's Perl frontend, which kiln serves with its own (`debconf-frontend`, in the
//! kiln-pkg module). The fixture package `kilntest` (tests/debconf/) speaks every command
//! of the protocol and records each answer; the same scripts run on this machine under
//! Debian's own debconf (Perl) over a copy of the base's database, and the transcripts,
//! the output and the database files must be identical byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

/// The fixture's files: the package's control files and an extra templates file.
const SCRIPTS: &[&str] = &["kilntest.config", "kilntest.postinst", "kilntest.postrm"];
const TEMPLATES: &str = "kilntest.templates";
const EXTRA: &str = "kilntest.extra.templates";

/// The database files debconf writes, each with the backup it keeps.
const DB_FILES: &[&str] = &[
    "config.dat",
    "config.dat-old",
    "passwords.dat",
    "templates.dat",
    "templates.dat-old",
];

/// What each run does, with `$R` its root: preseeding (a value for a question not yet
/// known, a flag, and three lines debconf-set-selections refuses), the postinst (debconf
/// runs the config first), its status, a copy of the database as it left it, then the
/// postrm's purge.
const PRESEED: &str = "printf 'kilntest kilntest/enabled boolean false\\n\
     kilntest kilntest/readme seen true\\nkilntest kilntest/new string a  b \\\\\\n c\\n\
     kilntest kilntest/x frob y\\nbad line\\n' | debconf-set-selections > $R/out.txt 2>&1; \
     echo \"preseed $?\" >> $R/kilntest.log";
const POSTINST: &str = "$R/var/lib/dpkg/info/kilntest.postinst configure '' >> $R/out.txt 2>&1; \
     echo \"status $?\" >> $R/kilntest.log; cp -a $R/var/cache/debconf $R/after-postinst";
const POSTRM: &str = "$R/var/lib/dpkg/info/kilntest.postrm purge >> $R/out.txt 2>&1; \
     echo \"status $?\" >> $R/kilntest.log";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/debconf")
        .join(name)
}

/// kiln's run: the fixture installed into the base, the two steps as RUN lines; the
/// workspace (which holds the exported tree) and the tree.
fn kiln_run(layout: &Path) -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    for name in SCRIPTS.iter().chain(&[TEMPLATES, EXTRA]) {
        let path = ws.write(name, std::fs::read(fixture(name)).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let step = |s: &str| s.replace("$R", "");
    ws.write(
        "Dockerfile",
        format!(
            "FROM base\nENV DEBIAN_FRONTEND=noninteractive\n\
             COPY {} {TEMPLATES} /var/lib/dpkg/info/\nCOPY {EXTRA} /\n\
             RUN {}\nRUN {}\nRUN {}\n",
            SCRIPTS.join(" "),
            step(PRESEED),
            step(POSTINST),
            step(POSTRM)
        ),
    );
    let out_dir = ws.path("out");
    let dest = format!("type=local,dest={}", out_dir.display());
    let base = debian::build_context("base", layout);
    let out = ws.build(&["--build-context", &base, "-o", &dest]);
    assert_ok(&out);
    (ws, out_dir)
}

/// Debian's own debconf on this machine, over a root holding the base's database
/// (`DPKG_ROOT` points debconf's files there); `None` without Perl's debconf.
fn debian_run(root: &Path) -> Option<()> {
    if !Path::new("/usr/share/debconf/frontend").exists() {
        debian::missing("Debian's debconf (/usr/share/debconf/frontend) is not installed");
        return None;
    }
    let info = root.join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(debian::tarball_path())
        .arg("-C")
        .arg(root)
        .args(["./var/cache/debconf", "./etc/debconf.conf"])
        .status()
        .unwrap();
    assert!(tar.success());
    for name in SCRIPTS.iter().chain(&[TEMPLATES]) {
        std::fs::copy(fixture(name), info.join(name)).unwrap();
    }
    std::fs::copy(fixture(EXTRA), root.join(EXTRA)).unwrap();
    for step in [PRESEED, POSTINST, POSTRM] {
        let script = step.replace("$R", &root.display().to_string());
        let status = Command::new("sh")
            .args(["-c", &script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("DPKG_ROOT", root)
            .status()
            .unwrap();
        assert!(status.success());
    }
    Some(())
}

/// A file of a run's tree, with its mode, for comparison.
fn file(root: &Path, rel: &str) -> (String, u32) {
    let path = root.join(rel);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    (String::from_utf8_lossy(&bytes).into_owned(), mode)
}

#[test]
fn a_confmodule_gets_debconfs_answers_and_leaves_debconfs_database() {
    let Some(layout) = debian::layout() else {
        return;
    };
    let debian = tempfile::tempdir().unwrap();
    if debian_run(debian.path()).is_none() {
        return;
    }
    let (_ws, kiln) = kiln_run(&layout);
    // The transcript names the extra file by path: the roots differ only there.
    let transcript = |root: &Path| {
        file(root, "kilntest.log")
            .0
            .replace(&debian.path().display().to_string(), "")
    };
    assert_eq!(transcript(&kiln), transcript(debian.path()));
    assert_eq!(file(&kiln, "out.txt"), file(debian.path(), "out.txt"));
    for dir in ["after-postinst", "var/cache/debconf"] {
        for name in DB_FILES {
            let rel = format!("{dir}/{name}");
            assert_eq!(file(&kiln, &rel), file(debian.path(), &rel), "{rel}");
        }
    }
    // The config's answers are in the database the image's own debconf reads.
    let config = file(&kiln, "after-postinst/config.dat").0;
    assert!(
        config
            .contains("Name: kilntest/toppings\nTemplate: kilntest/toppings\nValue: nuts, cream\n"),
        "{config}"
    );
}

/// The line Dockerfiles set the time zone with: tzdata's config reads the zone from
/// /etc/timezone and /etc/localtime into its debconf answers, and its postinst writes
/// them back.
const TZ_LINE: &str = "ln -snf /usr/share/zoneinfo/Europe/Berlin /etc/localtime \
     && echo Europe/Berlin > /etc/timezone && dpkg-reconfigure -f noninteractive tzdata";

/// The tree after Debian's own dpkg-reconfigure (Perl) ran [`TZ_LINE`] in a chroot of the
/// base; `None` when not root (chroot needs it).
fn debian_tz_run(root: &Path) -> Option<()> {
    let uid = Command::new("id").arg("-u").output().unwrap();
    if text(&uid.stdout).trim() != "0" {
        debian::missing("chroot into the Debian base needs root");
        return None;
    }
    let tar = Command::new("tar")
        .arg("-xf")
        .arg(debian::tarball_path())
        .arg("-C")
        .arg(root)
        .status()
        .unwrap();
    assert!(tar.success());
    let status = Command::new("chroot")
        .arg(root)
        .args(["sh", "-c", TZ_LINE])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .unwrap();
    assert!(status.success());
    Some(())
}

#[test]
fn dpkg_reconfigure_tzdata_sets_the_zone_as_debian_does() {
    let Some(layout) = debian::layout() else {
        return;
    };
    let debian = tempfile::tempdir().unwrap();
    if debian_tz_run(debian.path()).is_none() {
        return;
    }
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        format!("FROM base\nENV DEBIAN_FRONTEND=noninteractive\nRUN {TZ_LINE}\n"),
    );
    let kiln = ws.path("out");
    let dest = format!("type=local,dest={}", kiln.display());
    let base = debian::build_context("base", &layout);
    assert_ok(&ws.build(&["--build-context", &base, "-o", &dest]));
    let link = |root: &Path| std::fs::read_link(root.join("etc/localtime")).unwrap();
    assert_eq!(link(&kiln), link(debian.path()));
    assert_eq!(link(&kiln), Path::new("/usr/share/zoneinfo/Europe/Berlin"));
    assert_eq!(
        file(&kiln, "etc/timezone"),
        file(debian.path(), "etc/timezone")
    );
    for name in DB_FILES {
        let rel = format!("var/cache/debconf/{name}");
        assert_eq!(file(&kiln, &rel), file(debian.path(), &rel), "{rel}");
    }
    let config = file(&kiln, "var/cache/debconf/config.dat").0;
    assert!(
        config
            .contains("Name: tzdata/Zones/Europe\nTemplate: tzdata/Zones/Europe\nValue: Berlin\n"),
        "{config}"
    );
}
