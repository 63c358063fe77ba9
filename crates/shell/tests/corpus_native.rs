#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
#![cfg(unix)]
//! The differential corpus against kiln's interpreter with native host commands (a
//! development aid; the authoritative run is `corpus_vfs.rs` on the virtual tree).

mod common;

use std::sync::Arc;

#[test]
fn corpus_matches_reference_shells_with_native_commands() {
    let (total, failures) = common::run_corpus(&|| {
        let dir = tempfile::tempdir().unwrap().keep();
        common::write_fixture(&dir.join("work"));
        std::fs::create_dir_all(dir.join("root")).unwrap();
        Arc::new(common::native::NativeHost { root: dir })
    });
    // Native commands get host paths in their arguments (only the shell's own paths are
    // mapped into the temp root), so scripts that hand absolute paths to programs differ.
    // The test host gives a native process only stdio (the shell's other descriptors are
    // its own in-process endpoints), so a script passing fd 3 through a program differs.
    const NATIVE_ONLY: &[&str] = &["472_dockerfile_style_run.sh", "211_fd3_through_programs.sh"];
    let failures: Vec<String> = failures
        .into_iter()
        .filter(|f| !NATIVE_ONLY.iter().any(|k| f.starts_with(k)))
        .collect();
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!(
        "corpus (native host): {}/{} pass",
        total - failures.len(),
        total
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus scripts differ",
        failures.len(),
        total
    );
}
