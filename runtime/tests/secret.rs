//! Secrets are mounts, never files: readable where mounted, immutable, listed in their
//! parent directories, and absent from the step's snapshot, diff and layer.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_runtime::{MountTable, Zeroizing};

#[test]
fn secret_mounts_leave_no_trace_in_the_tree() {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/root/.profile", b"export A=1\n");
    mkdir_p(&tree, "/tmp");
    let before = tree.lock().snapshot().unwrap();

    let mut mounts = MountTable::new();
    mounts
        .add_secret(
            "/run/secrets/x",
            Zeroizing::new(b"s3cr3t-value".to_vec()),
            0o400,
            0,
            0,
        )
        .unwrap();
    mounts
        .add_secret(
            "/root/.netrc",
            Zeroizing::new(b"machine example.com password hunter2".to_vec()),
            0o600,
            0,
            0,
        )
        .unwrap();
    let vfs = vfs_with(&tree, mounts);
    let out = run(
        &vfs,
        &rust_guest(),
        &["guest", "secret", "/run/secrets/x", "/root/.netrc"],
        "/",
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let expected = "\
read /run/secrets/x: ok s3cr3t-value
write /run/secrets/x: PermissionDenied
append /run/secrets/x: PermissionDenied
delete /run/secrets/x: ResourceBusy
rename /run/secrets/x: ResourceBusy
rename-onto /run/secrets/x: ResourceBusy
stat /run/secrets/x: Ok(12)
read /root/.netrc: ok machine example.com password hunter2
write /root/.netrc: PermissionDenied
append /root/.netrc: PermissionDenied
delete /root/.netrc: ResourceBusy
rename /root/.netrc: ResourceBusy
rename-onto /root/.netrc: ResourceBusy
stat /root/.netrc: Ok(36)
ls /run: secrets
ls /run/secrets: x
ls /root: .netrc,.profile
mkdir in /run/secrets: ReadOnlyFilesystem
rmdir /run/secrets: ResourceBusy
";
    assert_eq!(out.stdout, expected);

    let after = tree.lock().snapshot().unwrap();
    let changes = kiln_fs::diff(&before, &after);
    let paths: Vec<String> = changes
        .iter()
        .map(|c| String::from_utf8_lossy(&c.path).into_owned())
        .collect();
    // The guest's own /victim file is the only change; nothing of the mounts.
    assert_eq!(paths, ["/victim"].map(String::from).to_vec(), "{paths:?}");
    let mut layer = Vec::new();
    kiln_fs::write_layer(&before, &after, 0, &mut layer).unwrap();
    let full = {
        let mut v = Vec::new();
        kiln_fs::write_snapshot(&after, 0, &mut v).unwrap();
        v
    };
    for blob in [&layer, &full] {
        for needle in [&b"s3cr3t"[..], b"hunter2", b".netrc", b"secrets"] {
            assert!(
                !blob.windows(needle.len()).any(|w| w == needle),
                "{:?} leaked",
                String::from_utf8_lossy(needle)
            );
        }
    }
    let mut t = tree.lock();
    let root = t.root();
    assert!(t.lookup(root, b"run").is_err(), "no /run node was created");
}
