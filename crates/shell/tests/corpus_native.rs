//! The differential corpus against kiln's interpreter with native host commands (a
//! development aid; the authoritative run is `corpus_vfs.rs` on the virtual tree).

mod common;

use std::sync::Arc;

#[test]
fn corpus_matches_reference_shells_with_native_commands() {
    let (total, failures) = common::run_corpus(&|| {
        let dir = tempfile::tempdir().unwrap().keep();
        common::write_fixture(&dir.join("work"));
        Arc::new(common::native::NativeHost { root: dir })
    });
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
