#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure
#![cfg(all(unix, feature = "runtime"))]
//! The differential corpus: every `tests/corpus/*.sh` is run by the host's dash (or bash
//! when the script says `# shell: bash`) in a temp directory and by kiln's interpreter on
//! a virtual tree with the same files and kiln's bundled wasm tools; stdout, stderr and
//! exit status must match. Only dash's `sh: LINE: ` message prefix is normalised (kiln
//! prints `sh: `) and the temp directory's path is replaced by `` so `pwd` compares.

mod common;

/// Scripts whose difference lies outside the shell, with the reason. The test fails if
/// one of these starts to pass (so the list cannot rot) or if any other script differs.
/// (Empty since uu_cat reads devices: see guest-tools/vendor/README.md.)
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn corpus_matches_reference_shells_on_virtual_tree() {
    let (total, failures) = common::run_corpus(&|| common::vfs::host_with(common::FIXTURE));
    for f in &failures {
        eprintln!("{f}");
    }
    eprintln!(
        "corpus (virtual tree, wasm tools): {}/{} pass",
        total - failures.len(),
        total
    );
    let is_known = |f: &String| KNOWN.iter().any(|(k, _)| f.starts_with(&format!("{k}:")));
    let unexpected: Vec<&String> = failures.iter().filter(|f| !is_known(f)).collect();
    assert!(
        unexpected.is_empty(),
        "{} corpus scripts differ unexpectedly",
        unexpected.len()
    );
    if std::env::var("KILN_CORPUS_FILTER").is_err() {
        for (k, why) in KNOWN {
            assert!(
                failures.iter().any(|f| f.starts_with(&format!("{k}:"))),
                "{k} now passes; remove it from KNOWN ({why})"
            );
        }
    }
}
