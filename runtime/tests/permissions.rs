//! The step's identity and umask in the step filesystem: Unix permission checks for a
//! non-root process (owner/group/other bits, search on directories, sticky `/tmp`,
//! chmod/chown rules, mounts), root's bypasses, the umask on every creation, and the
//! `kiln_v1.identity` answer the bundled `id`/`groups`/`whoami` print.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_fs::Follow;
use kiln_runtime::{
    Errno, Identity, MountTable, OpenOptions, Opened, Program, Resolved, SharedTree, Vfs, Zeroizing,
};

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\nsudo:x:27:app\napp:x:1000:\n";

fn app() -> Identity {
    Identity::new(1000, 1000, vec![27])
}

/// Sets mode and owner of `path` in `tree` (fixtures are made as root, 0755/0644).
fn set(tree: &SharedTree, path: &str, mode: u32, uid: u32, gid: u32) {
    let mut t = tree.lock();
    let root = t.root();
    let ino = t.resolve(root, path.as_bytes(), Follow::No).unwrap();
    t.chmod(ino, mode).unwrap();
    t.chown(ino, Some(uid), Some(gid)).unwrap();
}

fn mode_of(tree: &SharedTree, path: &str) -> (u32, u32, u32) {
    let mut t = tree.lock();
    let root = t.root();
    let ino = t.resolve(root, path.as_bytes(), Follow::No).unwrap();
    let m = t.metadata(ino).unwrap();
    (m.mode, m.uid, m.gid)
}

/// A root-owned image: `/etc` databases, `/app` 0755, `/tmp` 1777, `/private` 0700,
/// `/team` 0775 root:sudo, `/listless` 0711; secrets readable by root only, by group
/// app, and owned by app.
fn image() -> (SharedTree, Vfs) {
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/etc/passwd", PASSWD);
    write_file(&tree, "/etc/group", GROUP);
    write_file(&tree, "/app/config", b"cfg\n");
    write_file(&tree, "/private/key", b"k\n");
    write_file(&tree, "/listless/known", b"x\n");
    mkdir_p(&tree, "/tmp");
    mkdir_p(&tree, "/team");
    write_file(&tree, "/tmp/roots", b"r\n");
    set(&tree, "/tmp", 0o1777, 0, 0);
    set(&tree, "/private", 0o700, 0, 0);
    set(&tree, "/team", 0o775, 0, 27);
    set(&tree, "/listless", 0o711, 0, 0);
    let mut mounts = MountTable::new();
    let secret = |v: &[u8]| Zeroizing::new(v.to_vec());
    mounts
        .add_secret("/run/secrets/rootonly", secret(b"s1"), 0o400, 0, 0)
        .unwrap();
    mounts
        .add_secret("/run/secrets/group", secret(b"s2"), 0o440, 0, 1000)
        .unwrap();
    mounts
        .add_secret("/run/secrets/mine", secret(b"s3"), 0o400, 1000, 1000)
        .unwrap();
    let vfs = vfs_with(&tree, mounts);
    (tree, vfs)
}

fn open(v: &Vfs, path: &str, opts: &OpenOptions) -> Result<(), Errno> {
    v.open(b"/", path.as_bytes(), opts).map(|_| ())
}

#[test]
fn a_user_cannot_write_where_root_owns_and_can_where_a_group_allows() {
    let (tree, root) = image();
    let v = root.with_identity(app());
    let create = OpenOptions::write_truncate();
    assert_eq!(open(&v, "/app/new", &create), Err(Errno::ACCES));
    assert_eq!(v.mkdir(b"/", b"/app/dir", 0o777), Err(Errno::ACCES));
    assert_eq!(v.symlink(b"x", b"/", b"/app/link"), Err(Errno::ACCES));
    assert_eq!(open(&v, "/app/config", &create), Err(Errno::ACCES));
    assert_eq!(open(&v, "/app/config", &OpenOptions::read_only()), Ok(()));
    assert_eq!(v.remove_file(b"/", b"/app/config"), Err(Errno::ACCES));
    assert_eq!(
        v.rename(b"/", b"/app/config", b"/", b"/tmp/stolen"),
        Err(Errno::ACCES)
    );
    // Group sudo may write /team; the new file is app's, with the umask applied.
    assert_eq!(open(&v, "/team/notes", &create), Ok(()));
    assert_eq!(mode_of(&tree, "/team/notes"), (0o644, 1000, 1000));
    // Root writes anywhere.
    assert_eq!(open(&root, "/app/new", &create), Ok(()));
}

#[test]
fn directories_need_search_to_be_walked_and_read_to_be_listed() {
    let (_tree, root) = image();
    let v = root.with_identity(app());
    assert_eq!(
        v.stat(b"/", b"/private/key", true).map(|_| ()),
        Err(Errno::ACCES)
    );
    assert_eq!(
        open(&v, "/private/key", &OpenOptions::read_only()),
        Err(Errno::ACCES)
    );
    assert!(v.stat(b"/", b"/private", true).is_ok(), "the dir itself");
    // 0711: a known name is reachable, the listing is not.
    assert!(v.stat(b"/", b"/listless/known", true).is_ok());
    assert_eq!(
        v.read_dir(b"/", b"/listless").map(|_| ()),
        Err(Errno::ACCES)
    );
    assert_eq!(
        open(&v, "/listless", &OpenOptions::read_only()),
        Err(Errno::ACCES)
    );
    assert!(root.read_dir(b"/", b"/private").is_ok());
}

#[test]
fn the_sticky_tmp_protects_other_users_files() {
    let (_tree, root) = image();
    let v = root.with_identity(app());
    assert_eq!(v.remove_file(b"/", b"/tmp/roots"), Err(Errno::PERM));
    assert_eq!(
        v.rename(b"/", b"/tmp/roots", b"/", b"/tmp/mine"),
        Err(Errno::PERM)
    );
    assert_eq!(open(&v, "/tmp/own", &OpenOptions::write_truncate()), Ok(()));
    assert_eq!(v.rename(b"/", b"/tmp/own", b"/", b"/tmp/own2"), Ok(()));
    // Replacing root's file by renaming over it is removing it: refused.
    assert_eq!(
        v.rename(b"/", b"/tmp/own2", b"/", b"/tmp/roots"),
        Err(Errno::PERM)
    );
    assert_eq!(v.remove_file(b"/", b"/tmp/own2"), Ok(()));
    assert_eq!(root.remove_file(b"/", b"/tmp/roots"), Ok(()));
}

#[test]
fn only_owners_change_modes_and_owners_give_files_to_their_groups() {
    let (tree, root) = image();
    let v = root.with_identity(app());
    assert_eq!(v.chmod(b"/", b"/app/config", true, 0o777), Err(Errno::PERM));
    assert_eq!(
        v.chown(b"/", b"/app/config", true, Some(1000), None),
        Err(Errno::PERM)
    );
    assert_eq!(open(&v, "/tmp/f", &OpenOptions::write_truncate()), Ok(()));
    assert_eq!(v.chmod(b"/", b"/tmp/f", true, 0o2755), Ok(()));
    assert_eq!(mode_of(&tree, "/tmp/f"), (0o2755, 1000, 1000));
    assert_eq!(v.chown(b"/", b"/tmp/f", true, None, Some(27)), Ok(()));
    assert_eq!(mode_of(&tree, "/tmp/f").2, 27);
    assert_eq!(
        v.chown(b"/", b"/tmp/f", true, Some(0), None),
        Err(Errno::PERM)
    );
    assert_eq!(
        v.chown(b"/", b"/tmp/f", true, None, Some(0)),
        Err(Errno::PERM)
    );
    // Outside the file's group, chmod drops setgid, as Linux does.
    set(&tree, "/tmp/f", 0o644, 1000, 50);
    assert_eq!(v.chmod(b"/", b"/tmp/f", true, 0o2755), Ok(()));
    assert_eq!(mode_of(&tree, "/tmp/f").0, 0o755);
    assert_eq!(root.chown(b"/", b"/tmp/f", true, Some(7), Some(7)), Ok(()));
}

#[test]
fn secret_mounts_obey_their_mode_and_owner() {
    let (_tree, root) = image();
    let v = root.with_identity(app());
    let read = OpenOptions::read_only();
    assert_eq!(open(&v, "/run/secrets/rootonly", &read), Err(Errno::ACCES));
    assert_eq!(open(&v, "/run/secrets/group", &read), Ok(()));
    assert_eq!(open(&v, "/run/secrets/mine", &read), Ok(()));
    assert_eq!(open(&root, "/run/secrets/rootonly", &read), Ok(()));
    let other = root.with_identity(Identity::new(2000, 2000, Vec::new()));
    assert_eq!(open(&other, "/run/secrets/group", &read), Err(Errno::ACCES));
}

#[test]
fn the_umask_applies_to_every_creation() {
    let (tree, root) = image();
    let v = root.with_umask(0o077);
    assert_eq!(open(&v, "/app/f", &OpenOptions::write_truncate()), Ok(()));
    v.mkdir(b"/", b"/app/d", 0o777).unwrap();
    assert_eq!(mode_of(&tree, "/app/f").0, 0o600);
    assert_eq!(mode_of(&tree, "/app/d").0, 0o700);
    let open_umask = root.with_umask(0);
    assert_eq!(
        open(&open_umask, "/app/g", &OpenOptions::write_truncate()),
        Ok(())
    );
    assert_eq!(mode_of(&tree, "/app/g").0, 0o666);
    // An explicit chmod sets exactly what it asks.
    v.chmod(b"/", b"/app/f", true, 0o666).unwrap();
    assert_eq!(mode_of(&tree, "/app/f").0, 0o666);
    // A guest's mkdir goes through the same mask.
    let out = run_spec(
        &v,
        spec(Program::Bundled("mkdir".into()), &["mkdir", "/app/m"], "/"),
    );
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert_eq!(mode_of(&tree, "/app/m").0, 0o700);
}

#[test]
fn programs_on_path_need_an_exec_bit_root_included() {
    let (tree, root) = image();
    write_file(&tree, "/opt/bin/tool", b"\0asm\x01\0\0\0");
    let v = root.with_identity(app());
    let find = |v: &Vfs| runtime().resolve_command(v, "tool", "/opt/bin", "/");
    let module = Resolved::Module("/opt/bin/tool".into());
    assert_eq!(find(&root), Resolved::NotFound, "0644: not even root");
    set(&tree, "/opt/bin/tool", 0o744, 0, 0);
    assert_eq!(find(&root), module);
    assert_eq!(find(&v), Resolved::NotFound, "owner-only x");
    // Named by its path, a file one may not execute is refused, not skipped.
    let by_path = runtime().resolve_command(&v, "/opt/bin/tool", "", "/");
    let denied = Resolved::Denied {
        path: "/opt/bin/tool".into(),
    };
    assert_eq!(by_path, denied);
    set(&tree, "/opt/bin/tool", 0o754, 0, 27);
    assert_eq!(find(&v), module, "x through group sudo");
}

/// Runs a bundled tool as `v` and returns (status, stdout, stderr).
fn tool(v: &Vfs, argv: &[&str]) -> (i32, String, String) {
    let out = run_spec(v, spec(Program::Bundled(argv[0].into()), argv, "/"));
    (out.code(), out.stdout, out.stderr)
}

#[test]
fn guests_see_the_steps_identity() {
    let (_tree, root) = image();
    let v = root.with_identity(app());
    let id = "uid=1000(app) gid=1000(app) groups=1000(app),27(sudo)\n";
    assert_eq!(tool(&v, &["id"]).1, id);
    assert_eq!(tool(&v, &["id", "-un"]).1, "app\n");
    assert_eq!(tool(&v, &["id", "-G"]).1, "1000 27\n");
    assert_eq!(tool(&v, &["whoami"]).1, "app\n");
    assert_eq!(tool(&v, &["groups"]).1, "app sudo\n");
    let root_id = "uid=0(root) gid=0(root) groups=0(root)\n";
    assert_eq!(tool(&root, &["id"]).1, root_id);
    // A uid without an entry prints numbers, as under BuildKit's `USER 4242`.
    let lone = root.with_identity(Identity::new(4242, 0, Vec::new()));
    assert_eq!(
        tool(&lone, &["id"]).1,
        "uid=4242 gid=0(root) groups=0(root)\n"
    );
    let (status, _, err) = tool(&lone, &["whoami"]);
    assert_eq!(status, 1);
    assert!(err.contains("cannot find name for user ID 4242"), "{err}");
}

#[test]
fn guests_get_eacces_and_their_tools_say_permission_denied() {
    let (_tree, root) = image();
    let v = root.with_identity(app());
    let (status, _, err) = tool(&v, &["touch", "/app/x"]);
    assert_eq!(status, 1);
    assert!(err.contains("Permission denied"), "{err}");
    let (status, _, err) = tool(&v, &["cat", "/private/key"]);
    assert_eq!(status, 1);
    assert!(err.contains("Permission denied"), "{err}");
    // EPERM (the sticky bit; uutils words both errnos alike): the file stays.
    let (status, _, err) = tool(&v, &["rm", "/tmp/roots"]);
    assert_eq!(status, 1);
    assert!(err.contains("cannot remove '/tmp/roots'"), "{err}");
    assert!(v.stat(b"/", b"/tmp/roots", false).is_ok());
    let Ok(Opened::File(_)) = v.open(b"/", b"/app/config", &OpenOptions::read_only()) else {
        panic!("app reads a 0644 file");
    };
}

/// A raw guest of `kiln_v1.identity` and `kiln_v1.umask`: each check that fails exits
/// with its own status; the last makes a directory after `umask(077)`.
const IDENTITY_GUEST: &str = r#"(module
  (import "kiln_v1" "identity" (func $identity (param i32 i32 i32 i32) (result i32)))
  (import "kiln_v1" "umask" (func $umask (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "d")
  (func $expect (param $addr i32) (param $want i32) (param $code i32)
    (if (i32.ne (i32.load (local.get $addr)) (local.get $want))
      (then (call $exit (local.get $code)))))
  (func (export "_start")
    ;; ids at 0, room for one group at 8, the count at 64; memory past 8 stays 0
    (if (call $identity (i32.const 0) (i32.const 8) (i32.const 1) (i32.const 64))
      (then (call $exit (i32.const 10))))
    (call $expect (i32.const 0) (i32.const 1000) (i32.const 11))
    (call $expect (i32.const 4) (i32.const 1000) (i32.const 12))
    (call $expect (i32.const 64) (i32.const 2) (i32.const 13))
    (call $expect (i32.const 8) (i32.const 27) (i32.const 14))
    (call $expect (i32.const 12) (i32.const 0) (i32.const 15))
    ;; umask(-1) reads, umask(077) sets and gives the old one back
    (drop (call $umask (i32.const -1) (i32.const 68)))
    (call $expect (i32.const 68) (i32.const 0x12) (i32.const 16))
    (drop (call $umask (i32.const 0x3f) (i32.const 72)))
    (call $expect (i32.const 72) (i32.const 0x12) (i32.const 17))
    (call $exit (call $mkdir (i32.const 3) (i32.const 100) (i32.const 1)))))"#;

#[test]
fn the_identity_and_umask_imports_answer_as_abi_md_says() {
    let (tree, root) = image();
    set(&tree, "/", 0o777, 0, 0);
    let bytes: std::sync::Arc<[u8]> = wat::parse_str(IDENTITY_GUEST).unwrap().into();
    let out = run_spec(
        &root.with_identity(app()),
        spec(module(&bytes, "ids"), &["ids"], "/"),
    );
    assert_eq!(out.code(), 0);
    assert_eq!(mode_of(&tree, "/d"), (0o700, 1000, 1000));
}
