//! Shared test support: the differential corpus runner.

#![allow(dead_code)]

#[cfg(unix)]
pub(crate) mod native;
#[cfg(feature = "runtime")]
pub(crate) mod vfs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kiln_shell::io::Capture;
use kiln_shell::{Host, Shell, ShellOptions};

/// Files every corpus script starts with, in `/work` (kiln) or `$TMP/work` (dash).
pub(crate) const FIXTURE: &[(&str, &str)] = &[
    ("a.txt", "alpha\nbeta\ngamma\n"),
    ("b.txt", "one two three\n"),
    ("c.log", "line1\nline2\n"),
    (".hidden", "secret-ish\n"),
    ("dir/x.txt", "x\n"),
    ("dir/y.txt", "y\n"),
    ("dir/sub/z.md", "z\n"),
    ("nums", "3\n1\n2\n"),
];

pub(crate) fn write_fixture(root: &Path) {
    for (p, c) in FIXTURE {
        let f = root.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, c).unwrap();
    }
}

pub(crate) struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

pub(crate) const ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/root"),
    ("LC_ALL", "C"),
];

/// Which reference shell a script names with `# shell: bash`; dash by default.
pub(crate) fn reference_shell(script: &str) -> &'static str {
    if script.lines().take(3).any(|l| l.trim() == "# shell: bash") {
        "bash"
    } else {
        "dash"
    }
}

/// Runs the reference shell in a temp dir holding the fixture under `work/`.
pub(crate) fn run_reference(script: &str) -> Outcome {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    write_fixture(&work);
    let shell = reference_shell(script);
    let out = Command::new(shell)
        .arg("-c")
        .arg(script)
        .arg("sh")
        .env_clear()
        .envs(ENV.iter().copied())
        .env("PWD", &work)
        .current_dir(&work)
        .output()
        .unwrap();
    let root = tmp.path().to_string_lossy().into_owned();
    let norm = |b: &[u8]| String::from_utf8_lossy(b).replace(&root, "");
    Outcome {
        stdout: norm(&out.stdout),
        stderr: normalize_stderr(&norm(&out.stderr)),
        status: out.status.code().unwrap_or(-1),
    }
}

/// dash prefixes messages with `sh: LINE: `, bash with `sh: line LINE: `; kiln prints
/// `sh: ` (no line numbers), so the line number is the one thing normalised away.
pub(crate) fn normalize_stderr(s: &str) -> String {
    s.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("sh: ") {
                let rest = rest.strip_prefix("line ").unwrap_or(rest);
                let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 && rest[digits..].starts_with(": ") {
                    return format!("sh: {}", &rest[digits + 2..]);
                }
            }
            l.to_string()
        })
        .map(|l| l + "\n")
        .collect()
}

/// Runs kiln's interpreter over `host` (whose `/work` holds the fixture).
pub(crate) fn run_kiln(host: Arc<dyn Host>, script: &str) -> Option<Outcome> {
    let script = script.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            let out = Capture::new();
            let err = Capture::new();
            let opts = ShellOptions {
                env: ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .chain([("PWD".to_string(), "/work".to_string())])
                    .collect(),
                cwd: "/work".into(),
                stdout: out.clone(),
                stderr: err.clone(),
                ..Default::default()
            };
            let mut sh = Shell::new(host, opts);
            let status = match sh.run_script(&script) {
                Ok(s) => s.0,
                Err(e) => {
                    kiln_shell::io::write_all(
                        &(err.clone() as kiln_shell::Endpoint),
                        format!("sh: {e}\n").as_bytes(),
                    )
                    .unwrap();
                    2
                }
            };
            let _ = tx.send(Outcome {
                stdout: String::from_utf8_lossy(&out.take()).into_owned(),
                stderr: String::from_utf8_lossy(&err.take()).into_owned(),
                status,
            });
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(120)).ok()
}

pub(crate) fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let filter = std::env::var("KILN_CORPUS_FILTER").unwrap_or_default();
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sh"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    v.sort();
    v
}

/// Runs every corpus script through the reference shell and kiln; returns failures.
pub(crate) fn run_corpus(make_host: &dyn Fn() -> Arc<dyn Host>) -> (usize, Vec<String>) {
    let files = corpus_files();
    let mut failures = Vec::new();
    for f in &files {
        let script = std::fs::read_to_string(f).unwrap();
        let want = run_reference(&script);
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let Some(got) = run_kiln(make_host(), &script) else {
            failures.push(format!("{name}: kiln timed out"));
            continue;
        };
        let mut diffs = Vec::new();
        if got.stdout != want.stdout {
            diffs.push(format!(
                "  stdout: want {:?}\n          got  {:?}",
                want.stdout, got.stdout
            ));
        }
        if got.stderr != want.stderr {
            diffs.push(format!(
                "  stderr: want {:?}\n          got  {:?}",
                want.stderr, got.stderr
            ));
        }
        if got.status != want.status {
            diffs.push(format!("  status: want {} got {}", want.status, got.status));
        }
        if !diffs.is_empty() {
            failures.push(format!("{name}:\n{}", diffs.join("\n")));
        }
    }
    (files.len(), failures)
}
