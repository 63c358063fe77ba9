//! kiln against BuildKit on realistic Dockerfiles: each case under `cases/` is built by
//! kiln and by BuildKit (Debian's docker.io, a private dockerd), both on the same Debian
//! bookworm base served by a loopback registry; the root filesystems (path, type, mode,
//! owner, link target, content hash), the config fields a Dockerfile sets and the history
//! are compared, and every difference is written as a readable line.
//!
//! The comparison itself is `#[ignore]`d (it needs root, docker.io and minutes):
//! `cargo test -p kiln-cli --test differential -- --ignored --nocapture`, optionally with
//! `KILN_DIFF_CASES=umask,slim` to run the cases whose names contain those words. The
//! reader and the diff are unit-tested here in the default run, and so is a kiln build
//! FROM the Debian base.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[path = "../support/mod.rs"]
mod support;

mod compare;
mod dockerd;
mod image;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::*;

use crate::dockerd::Dockerd;

/// The Dockerfiles (one directory each: its `Dockerfile` and build context).
const CASES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/differential/cases"
);

/// How many lines of a failed build's output a difference line quotes.
const ERROR_TAIL: usize = 6;

#[test]
fn kiln_builds_from_the_debian_base() {
    let Some(layout) = debian::layout() else {
        return;
    };
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM debian\nRUN cat /etc/debian_version > /version\n",
    );
    let context = debian::build_context("debian", &layout);
    assert_ok(&ws.build(&["--build-context", &context, "-t", "on-debian"]));
    let out = ws
        .kiln()
        .args(["run", "on-debian", "cat", "/version"])
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(
        text(&out.stdout).starts_with("12."),
        "{}",
        text(&out.stdout)
    );
}

#[test]
#[ignore = "needs root, docker.io and the Debian base; see the README"]
fn kiln_matches_buildkit_on_realistic_dockerfiles() {
    let layout = debian::layout().expect("the Debian base (tests/differential/make-debian-base)");
    let registry = start_registry().expect("docker-registry");
    let base = debian::push(&layout, &registry);
    let dockerd = Dockerd::start();
    let reports = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential");
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).unwrap();
    let mut differing = Vec::new();
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let lines = run_case(&case, &base, &dockerd);
        let report = reports.join(format!("{name}.diff"));
        std::fs::write(&report, lines.join("\n") + "\n").unwrap();
        eprintln!("{name}: {} difference(s)", lines.len());
        for line in &lines {
            eprintln!("    {line}");
        }
        if !lines.is_empty() {
            differing.push(name);
        }
    }
    assert!(
        differing.is_empty(),
        "kiln and BuildKit differ on {differing:?} (details above and in {})",
        reports.display()
    );
}

/// The case directories, sorted, filtered by `KILN_DIFF_CASES` when set.
fn cases() -> Vec<PathBuf> {
    let filter = std::env::var("KILN_DIFF_CASES").unwrap_or_default();
    let words: Vec<&str> = filter.split(',').filter(|w| !w.is_empty()).collect();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CASES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("Dockerfile").is_file())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            words.is_empty() || words.iter().any(|w| name.contains(w))
        })
        .collect();
    dirs.sort();
    dirs
}

/// Builds `case` with both builders and returns the differences (none when both fail:
/// refusing the same Dockerfile is agreeing).
fn run_case(case: &Path, base: &str, dockerd: &Dockerd) -> Vec<String> {
    let ws = Workspace::new();
    copy_dir(case, &ws.context());
    let base_arg = format!("BASE={base}");
    // Both builders at the same moment: BuildKit's useradd and date read the clock,
    // kiln's read SOURCE_DATE_EPOCH.
    let epoch = now().to_string();
    let kiln_tar = ws.path("kiln.tar");
    let kiln = kiln_build(&ws, &[&base_arg, &epoch], "docker", &kiln_tar);
    let tag = format!(
        "kiln-differential/{}",
        case.file_name().unwrap().to_string_lossy()
    );
    let buildkit = dockerd
        .command()
        .args([
            "build",
            "--network=host",
            "--progress=plain",
            "--build-arg",
            &base_arg,
        ])
        .args(["-t", &tag])
        .arg(ws.context())
        .output()
        .unwrap();
    match (buildkit.status.success(), kiln.status.success()) {
        (false, false) => Vec::new(),
        (true, false) => vec![format!(
            "build: buildkit ok | kiln failed:\n{}",
            tail(&kiln)
        )],
        (false, true) => vec![format!(
            "build: kiln ok | buildkit failed:\n{}",
            tail(&buildkit)
        )],
        (true, true) => {
            let saved = ws.path("buildkit.tar");
            let out = dockerd.docker(&["save", "-o", saved.to_str().unwrap(), &tag]);
            assert_ok(&out);
            let buildkit = image::read_archive(&saved).unwrap();
            let kiln = image::read_archive(&kiln_tar).unwrap();
            let mut lines = compare::differences(&buildkit, &kiln);
            lines.extend(local_export_differences(&ws, &[&base_arg, &epoch], &kiln));
            lines
        }
    }
}

/// `kiln build` of the workspace's context with `BASE` and `SOURCE_DATE_EPOCH` from
/// `args`, written by the exporter `kind` to `dest`.
fn kiln_build(ws: &Workspace, [base, epoch]: &[&str; 2], kind: &str, dest: &Path) -> Output {
    ws.kiln()
        .env("SOURCE_DATE_EPOCH", epoch)
        .args(["build", "--progress", "plain", "--build-arg", base])
        .arg("-o")
        .arg(format!("type={kind},dest={}", dest.display()))
        .arg(ws.context())
        .output()
        .unwrap()
}

/// The same build again (every step cached) exported with `-o type=local`: the files
/// must be the image's, special mode bits included, owned by whoever ran the build (as
/// BuildKit's local exporter does: session/filesync gives every file the caller's ids).
fn local_export_differences(ws: &Workspace, args: &[&str; 2], image: &image::Image) -> Vec<String> {
    let dir = ws.path("local");
    let out = kiln_build(ws, args, "local", &dir);
    if !out.status.success() {
        return vec![format!("build: kiln -o type=local failed:\n{}", tail(&out))];
    }
    let local = image::read_local(&dir).unwrap();
    // SAFETY: getuid and getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut expected = image.tree.clone();
    for entry in expected.values_mut() {
        (entry.uid, entry.gid) = (uid.into(), gid.into());
    }
    compare::tree_differences(("image", &expected), ("local export", &local))
        .into_iter()
        .map(|l| format!("kiln -o type=local: {l}"))
        .collect()
}

/// The last lines a failed build printed, indented under its difference line.
fn tail(out: &Output) -> String {
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let lines: Vec<&str> = all.lines().collect();
    let start = lines.len().saturating_sub(ERROR_TAIL);
    lines[start..]
        .iter()
        .map(|l| format!("        {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Copies a case into a build context, keeping file modes (COPY preserves them).
fn copy_dir(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).min_depth(1) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
