#![cfg(all(unix, feature = "runtime"))]
//! The differential corpus: every `tests/corpus/*.sh` is run by the host's dash (or bash
//! when the script says `# shell: bash`) in a temp directory and by kiln's interpreter on
//! a virtual tree with the same files and kiln's bundled wasm tools; stdout, stderr and
//! exit status must match. Only dash's `sh: LINE: ` message prefix is normalised (kiln
//! prints `sh: `) and the temp directory's path is replaced by `` so `pwd` compares.

mod common;

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
    assert!(
        failures.is_empty(),
        "{} of {} corpus scripts differ",
        failures.len(),
        total
    );
}
