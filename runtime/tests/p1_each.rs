//! Every `wasi_snapshot_preview1` function, one by one: each is registered in the
//! runtime's linker with its witx signature (a module importing all of them must
//! instantiate), and each has a test of its own below, named after it. `foreach_p1!`
//! lists them; `assert_tests_exist` turns a function without a test into a compile error.
//!
//! Each test is a small WAT module importing the whole p1 surface whose `_start` computes
//! one number from the calls it makes (their errnos, what they wrote to memory) and exits
//! with it, plus checks of the tree or the output where a call changes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::*;
use kiln_runtime::{Errno, MountTable, SharedTree, Stdio};

/// The 46 functions of `wasi_snapshot_preview1` (the 45 of the original witx, args_get
/// to sock_shutdown, plus sock_accept, added later) with their core-wasm signatures.
macro_rules! foreach_p1 {
    ($m:ident) => {
        $m! {
            args_get "(param i32 i32) (result i32)",
            args_sizes_get "(param i32 i32) (result i32)",
            environ_get "(param i32 i32) (result i32)",
            environ_sizes_get "(param i32 i32) (result i32)",
            clock_res_get "(param i32 i32) (result i32)",
            clock_time_get "(param i32 i64 i32) (result i32)",
            fd_advise "(param i32 i64 i64 i32) (result i32)",
            fd_allocate "(param i32 i64 i64) (result i32)",
            fd_close "(param i32) (result i32)",
            fd_datasync "(param i32) (result i32)",
            fd_fdstat_get "(param i32 i32) (result i32)",
            fd_fdstat_set_flags "(param i32 i32) (result i32)",
            fd_fdstat_set_rights "(param i32 i64 i64) (result i32)",
            fd_filestat_get "(param i32 i32) (result i32)",
            fd_filestat_set_size "(param i32 i64) (result i32)",
            fd_filestat_set_times "(param i32 i64 i64 i32) (result i32)",
            fd_pread "(param i32 i32 i32 i64 i32) (result i32)",
            fd_prestat_get "(param i32 i32) (result i32)",
            fd_prestat_dir_name "(param i32 i32 i32) (result i32)",
            fd_pwrite "(param i32 i32 i32 i64 i32) (result i32)",
            fd_read "(param i32 i32 i32 i32) (result i32)",
            fd_readdir "(param i32 i32 i32 i64 i32) (result i32)",
            fd_renumber "(param i32 i32) (result i32)",
            fd_seek "(param i32 i64 i32 i32) (result i32)",
            fd_sync "(param i32) (result i32)",
            fd_tell "(param i32 i32) (result i32)",
            fd_write "(param i32 i32 i32 i32) (result i32)",
            path_create_directory "(param i32 i32 i32) (result i32)",
            path_filestat_get "(param i32 i32 i32 i32 i32) (result i32)",
            path_filestat_set_times "(param i32 i32 i32 i32 i64 i64 i32) (result i32)",
            path_link "(param i32 i32 i32 i32 i32 i32 i32) (result i32)",
            path_open "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
            path_readlink "(param i32 i32 i32 i32 i32 i32) (result i32)",
            path_remove_directory "(param i32 i32 i32) (result i32)",
            path_rename "(param i32 i32 i32 i32 i32 i32) (result i32)",
            path_symlink "(param i32 i32 i32 i32 i32) (result i32)",
            path_unlink_file "(param i32 i32 i32) (result i32)",
            poll_oneoff "(param i32 i32 i32 i32) (result i32)",
            proc_exit "(param i32)",
            proc_raise "(param i32) (result i32)",
            sched_yield "(result i32)",
            random_get "(param i32 i32) (result i32)",
            sock_accept "(param i32 i32 i32) (result i32)",
            sock_recv "(param i32 i32 i32 i32 i32 i32) (result i32)",
            sock_send "(param i32 i32 i32 i32 i32) (result i32)",
            sock_shutdown "(param i32 i32) (result i32)"
        }
    };
}

macro_rules! signatures {
    ($($name:ident $sig:literal),*) => {
        const P1_FUNCTIONS: &[(&str, &str)] = &[$((stringify!($name), $sig)),*];
    };
}
foreach_p1!(signatures);

macro_rules! assert_tests_exist {
    ($($name:ident $sig:literal),*) => {
        $(#[allow(unused_imports)] use self::$name as _;)*
    };
}
foreach_p1!(assert_tests_exist);

/// Memory the bodies use: constant strings at 100-199 (below), an iovec at 200, results
/// at 296-399, buffers at 400 and up.
const DATA: &str = r#"
  (data (i32.const 100) "d/f")
  (data (i32.const 110) "d/sub")
  (data (i32.const 120) "d/new")
  (data (i32.const 130) "d/lnk")
  (data (i32.const 140) "hello\n")
  (data (i32.const 150) "f")
  (data (i32.const 160) "d/sl")
  (data (i32.const 170) "d/g")
  (data (i32.const 180) "d/nope")
  (data (i32.const 190) "d")
  (global $fd (mut i32) (i32.const 0))
  ;; One iovec at 200 for (ptr, len); returns its address.
  (func $iov (param $p i32) (param $l i32) (result i32)
    (i32.store (i32.const 200) (local.get $p))
    (i32.store (i32.const 204) (local.get $l))
    (i32.const 200))
  ;; Opens a file under the preopen `/` (fd 3) for reading and writing; returns its fd.
  (func $open (param $p i32) (param $l i32) (result i32)
    (drop (call $path_open (i32.const 3) (i32.const 1) (local.get $p) (local.get $l)
      (i32.const 0) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 296)))
    (i32.load (i32.const 296)))
  ;; Opens a directory for listing; returns its fd.
  (func $opendir (param $p i32) (param $l i32) (result i32)
    (drop (call $path_open (i32.const 3) (i32.const 1) (local.get $p) (local.get $l)
      (i32.const 2) (i64.const 16386) (i64.const 0) (i32.const 0) (i32.const 296)))
    (i32.load (i32.const 296)))
  ;; Remembers an fd in $fd for later calls of the same body; returns it.
  (func $keep (param $f i32) (result i32)
    (global.set $fd (local.get $f))
    (local.get $f))
"#;

/// What a run left behind.
struct Ran {
    code: i32,
    stdout: String,
    tree: SharedTree,
}

impl Ran {
    fn file(&self, path: &str) -> Option<String> {
        read_file(&self.tree, path).map(|b| String::from_utf8(b).unwrap())
    }
}

/// Runs a module whose `_start` exits with the i32 expression `verdict`, as `prog one`
/// with env `K=v`, stdin `abc`, and a tree holding `/d/f` ("hello") and `/d/sub/`.
fn p1(verdict: &str) -> Ran {
    let imports: String = P1_FUNCTIONS
        .iter()
        .map(|(name, sig)| {
            format!("(import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} {sig}))\n")
        })
        .collect();
    let wat = format!(
        "(module {imports} (memory (export \"memory\") 1) {DATA}
           (func (export \"_start\") (call $proc_exit {verdict})))"
    );
    let bytes = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"));
    let store = store();
    let tree = new_tree(&store);
    write_file(&tree, "/d/f", b"hello");
    mkdir_p(&tree, "/d/sub");
    let vfs = vfs_with(&tree, MountTable::new());
    let mut s = spec(module(&bytes.into(), "p1"), &["prog", "one"], "/");
    s.env = vec![("K".into(), "v".into())];
    s.stdin = Stdio::Bytes(b"abc".as_slice().into());
    let out = run_spec(&vfs, s);
    Ran {
        code: out.code(),
        stdout: out.stdout,
        tree,
    }
}

fn errno(e: Errno) -> i32 {
    i32::from(e.0)
}

#[test]
fn every_p1_function_is_registered_with_its_witx_signature() {
    assert_eq!(P1_FUNCTIONS.len(), 46);
    // Instantiation fails on any import the linker lacks or types differently.
    assert_eq!(p1("(i32.const 0)").code, 0);
}

#[test]
fn args_get() {
    let body = "(i32.add (call $args_get (i32.const 300) (i32.const 400))
                 (i32.load8_u (i32.load (i32.const 304))))";
    assert_eq!(p1(body).code, i32::from(b'o'));
}

#[test]
fn args_sizes_get() {
    // 2 args, "prog\0one\0" is 9 bytes.
    let body = "(i32.add (call $args_sizes_get (i32.const 300) (i32.const 304))
                 (i32.add (i32.mul (i32.load (i32.const 300)) (i32.const 10))
                          (i32.load (i32.const 304))))";
    assert_eq!(p1(body).code, 29);
}

#[test]
fn environ_get() {
    let body = "(i32.add (call $environ_get (i32.const 300) (i32.const 400))
                 (i32.load8_u (i32.add (i32.load (i32.const 300)) (i32.const 2))))";
    assert_eq!(p1(body).code, i32::from(b'v'));
}

#[test]
fn environ_sizes_get() {
    // K=v and the PWD the runtime adds: "K=v\0PWD=/\0" is 10 bytes.
    let body = "(i32.add (call $environ_sizes_get (i32.const 300) (i32.const 304))
                 (i32.add (i32.mul (i32.load (i32.const 300)) (i32.const 10))
                          (i32.load (i32.const 304))))";
    assert_eq!(p1(body).code, 30);
}

#[test]
fn clock_res_get() {
    let body = "(i32.add (i32.add (call $clock_res_get (i32.const 1) (i32.const 300))
                                  (i64.eq (i64.load (i32.const 300)) (i64.const 1000)))
                         (call $clock_res_get (i32.const 9) (i32.const 300)))";
    assert_eq!(p1(body).code, 1 + errno(Errno::INVAL));
}

#[test]
fn clock_time_get() {
    // The realtime clock reads the runtime's epoch (1234 s in the test runtime).
    let body =
        "(i32.add (i32.add (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 300))
                                  (i64.eq (i64.load (i32.const 300)) (i64.const 1234000000000)))
                         (call $clock_time_get (i32.const 9) (i64.const 1) (i32.const 300)))";
    assert_eq!(p1(body).code, 1 + errno(Errno::INVAL));
}

#[test]
fn random_get() {
    let body = "(i32.add (call $random_get (i32.const 300) (i32.const 16))
                 (i64.ne (i64.or (i64.load (i32.const 300)) (i64.load (i32.const 308)))
                         (i64.const 0)))";
    assert_eq!(p1(body).code, 1);
}

#[test]
fn sched_yield() {
    assert_eq!(p1("(i32.add (call $sched_yield) (i32.const 42))").code, 42);
}

#[test]
fn proc_exit() {
    let body = "(block (result i32) (call $proc_exit (i32.const 77)) (i32.const 1))";
    assert_eq!(p1(body).code, 77);
}

#[test]
fn proc_raise() {
    let body = "(call $proc_raise (i32.const 15))";
    assert_eq!(p1(body).code, errno(Errno::NOSYS));
}

/// A socket call on stdin (no socket) and on a closed fd.
fn sock_verdict(call: &str) -> i32 {
    let body = format!(
        "(i32.add {} {})",
        call.replace("FD", "(i32.const 0)"),
        call.replace("FD", "(i32.const 99)")
    );
    p1(&body).code
}

#[test]
fn sock_accept() {
    let code = sock_verdict("(call $sock_accept FD (i32.const 0) (i32.const 300))");
    assert_eq!(code, errno(Errno::NOTSOCK) + errno(Errno::BADF));
}

#[test]
fn sock_recv() {
    let code = sock_verdict(
        "(call $sock_recv FD (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 300) (i32.const 304))",
    );
    assert_eq!(code, errno(Errno::NOTSOCK) + errno(Errno::BADF));
}

#[test]
fn sock_send() {
    let code = sock_verdict(
        "(call $sock_send FD (i32.const 200) (i32.const 1) (i32.const 0) (i32.const 300))",
    );
    assert_eq!(code, errno(Errno::NOTSOCK) + errno(Errno::BADF));
}

#[test]
fn sock_shutdown() {
    let code = sock_verdict("(call $sock_shutdown FD (i32.const 0))");
    assert_eq!(code, errno(Errno::NOTSOCK) + errno(Errno::BADF));
}

#[test]
fn fd_write() {
    let body = "(i32.add (call $fd_write (i32.const 1) (call $iov (i32.const 140) (i32.const 6))
                                   (i32.const 1) (i32.const 300))
                 (i32.load (i32.const 300)))";
    let ran = p1(body);
    assert_eq!(ran.code, 6);
    assert_eq!(ran.stdout, "hello\n");
}

#[test]
fn fd_read() {
    let body =
        "(i32.add (i32.add (call $fd_read (i32.const 0) (call $iov (i32.const 400) (i32.const 10))
                                           (i32.const 1) (i32.const 300))
                                  (i32.load (i32.const 300)))
                         (i32.load8_u (i32.const 402)))";
    assert_eq!(p1(body).code, 3 + i32::from(b'c'));
}

#[test]
fn fd_pread() {
    let body = "(i32.add (i32.add (call $fd_pread (call $open (i32.const 100) (i32.const 3))
                                            (call $iov (i32.const 400) (i32.const 2))
                                            (i32.const 1) (i64.const 1) (i32.const 300))
                                  (i32.load (i32.const 300)))
                         (i32.load8_u (i32.const 400)))";
    assert_eq!(p1(body).code, 2 + i32::from(b'e'));
}

#[test]
fn fd_pwrite() {
    let body = "(i32.add (call $fd_pwrite (call $open (i32.const 100) (i32.const 3))
                                    (call $iov (i32.const 150) (i32.const 1))
                                    (i32.const 1) (i64.const 4) (i32.const 300))
                 (i32.load (i32.const 300)))";
    let ran = p1(body);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.file("/d/f").unwrap(), "hellf");
}

#[test]
fn fd_close() {
    let body = "(i32.add (call $fd_close (call $keep (call $open (i32.const 100) (i32.const 3))))
                         (call $fd_close (global.get $fd)))";
    assert_eq!(p1(body).code, errno(Errno::BADF));
}

#[test]
fn fd_renumber() {
    // The file takes stdout's place: the write lands in it, not in the output.
    let body = "(i32.add (i32.add (call $fd_renumber (call $open (i32.const 100) (i32.const 3)) (i32.const 1))
                                  (call $fd_write (i32.const 1) (call $iov (i32.const 150) (i32.const 1))
                                                  (i32.const 1) (i32.const 300)))
                         (call $fd_renumber (i32.const 99) (i32.const 1)))";
    let ran = p1(body);
    assert_eq!(ran.code, errno(Errno::BADF));
    assert_eq!(ran.file("/d/f").unwrap(), "fello");
    assert_eq!(ran.stdout, "");
}

#[test]
fn fd_seek() {
    // To one before the end of "hello"; stdout (a capture) cannot seek.
    let body = "(i32.add (i32.add (call $fd_seek (call $open (i32.const 100) (i32.const 3))
                                           (i64.const -1) (i32.const 2) (i32.const 300))
                                  (i32.wrap_i64 (i64.load (i32.const 300))))
                         (call $fd_seek (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 300)))";
    assert_eq!(p1(body).code, 4 + errno(Errno::SPIPE));
}

#[test]
fn fd_tell() {
    let body =
        "(i32.add (i32.add (call $fd_seek (call $keep (call $open (i32.const 100) (i32.const 3)))
                                           (i64.const 3) (i32.const 0) (i32.const 300))
                                  (call $fd_tell (global.get $fd) (i32.const 308)))
                         (i32.wrap_i64 (i64.load (i32.const 308))))";
    assert_eq!(p1(body).code, 3);
}

#[test]
fn fd_fdstat_get() {
    // The preopen is a directory (3), the opened file a regular file (4).
    let body = "(i32.add (i32.add (call $fd_fdstat_get (i32.const 3) (i32.const 300))
                                  (i32.mul (i32.load8_u (i32.const 300)) (i32.const 10)))
                         (i32.add (call $fd_fdstat_get (call $open (i32.const 100) (i32.const 3)) (i32.const 300))
                                  (i32.load8_u (i32.const 300))))";
    assert_eq!(p1(body).code, 34);
}

#[test]
fn fd_fdstat_set_flags() {
    // APPEND set, then read back in the fdstat flags; a write then lands at the end.
    let body = "(i32.add (i32.add (call $fd_fdstat_set_flags (call $keep (call $open (i32.const 100) (i32.const 3)))
                                                       (i32.const 1))
                                  (i32.add (call $fd_fdstat_get (global.get $fd) (i32.const 300))
                                           (i32.load16_u (i32.const 302))))
                         (call $fd_write (global.get $fd) (call $iov (i32.const 150) (i32.const 1))
                                         (i32.const 1) (i32.const 300)))";
    let ran = p1(body);
    assert_eq!(ran.code, 1);
    assert_eq!(ran.file("/d/f").unwrap(), "hellof");
}

#[test]
fn fd_fdstat_set_rights() {
    let body = "(i32.add (call $fd_fdstat_set_rights (i32.const 3) (i64.const 0) (i64.const 0))
                         (call $fd_fdstat_set_rights (i32.const 99) (i64.const 0) (i64.const 0)))";
    assert_eq!(p1(body).code, errno(Errno::BADF));
}

#[test]
fn fd_filestat_get() {
    // Regular file (4) of 5 bytes.
    let body = "(i32.add (call $fd_filestat_get (call $open (i32.const 100) (i32.const 3)) (i32.const 300))
                 (i32.add (i32.mul (i32.load8_u (i32.const 316)) (i32.const 10))
                          (i32.wrap_i64 (i64.load (i32.const 332)))))";
    assert_eq!(p1(body).code, 45);
}

#[test]
fn fd_filestat_set_size() {
    let body = "(i32.add (call $fd_filestat_set_size (call $keep (call $open (i32.const 100) (i32.const 3)))
                                               (i64.const 2))
                 (i32.add (call $fd_filestat_get (global.get $fd) (i32.const 300))
                          (i32.wrap_i64 (i64.load (i32.const 332)))))";
    let ran = p1(body);
    assert_eq!(ran.code, 2);
    assert_eq!(ran.file("/d/f").unwrap(), "he");
}

#[test]
fn fd_filestat_set_times() {
    // mtime set to 5 s; ATIM with ATIM_NOW together is invalid.
    let body = "(i32.add (i32.add (call $fd_filestat_set_times (call $keep (call $open (i32.const 100) (i32.const 3)))
                                                         (i64.const 0) (i64.const 5000000000) (i32.const 4))
                                  (i32.add (call $fd_filestat_get (global.get $fd) (i32.const 300))
                                           (i32.wrap_i64 (i64.div_u (i64.load (i32.const 348))
                                                                    (i64.const 1000000000)))))
                         (call $fd_filestat_set_times (global.get $fd) (i64.const 0) (i64.const 0) (i32.const 3)))";
    assert_eq!(p1(body).code, 5 + errno(Errno::INVAL));
}

#[test]
fn fd_advise() {
    let body = "(i32.add (call $fd_advise (i32.const 3) (i64.const 0) (i64.const 0) (i32.const 0))
                         (call $fd_advise (i32.const 3) (i64.const 0) (i64.const 0) (i32.const 9)))";
    assert_eq!(p1(body).code, errno(Errno::INVAL));
}

#[test]
fn fd_allocate() {
    let body = "(i32.add (call $fd_allocate (call $keep (call $open (i32.const 100) (i32.const 3)))
                                      (i64.const 0) (i64.const 10))
                 (i32.add (call $fd_filestat_get (global.get $fd) (i32.const 300))
                          (i32.wrap_i64 (i64.load (i32.const 332)))))";
    assert_eq!(p1(body).code, 10);
}

#[test]
fn fd_sync() {
    let body = "(i32.add (call $fd_sync (call $open (i32.const 100) (i32.const 3)))
                         (call $fd_sync (i32.const 99)))";
    assert_eq!(p1(body).code, errno(Errno::BADF));
}

#[test]
fn fd_datasync() {
    let body = "(i32.add (call $fd_datasync (call $open (i32.const 100) (i32.const 3)))
                         (call $fd_datasync (i32.const 99)))";
    assert_eq!(p1(body).code, errno(Errno::BADF));
}

#[test]
fn fd_prestat_get() {
    // fd 3 is the preopen "/" (name length 1); stdin is no preopen.
    let body = "(i32.add (i32.add (call $fd_prestat_get (i32.const 3) (i32.const 300))
                                  (i32.load (i32.const 304)))
                         (call $fd_prestat_get (i32.const 0) (i32.const 300)))";
    assert_eq!(p1(body).code, 1 + errno(Errno::BADF));
}

#[test]
fn fd_prestat_dir_name() {
    let body =
        "(i32.add (i32.add (call $fd_prestat_dir_name (i32.const 3) (i32.const 400) (i32.const 1))
                                  (i32.load8_u (i32.const 400)))
                         (call $fd_prestat_dir_name (i32.const 3) (i32.const 400) (i32.const 0)))";
    assert_eq!(p1(body).code, i32::from(b'/') + errno(Errno::NAMETOOLONG));
}

#[test]
fn fd_readdir() {
    // ".", "..", "f", "sub": four 24-byte dirents and 7 bytes of names.
    let body = "(i32.add (call $fd_readdir (call $opendir (i32.const 190) (i32.const 1))
                                     (i32.const 400) (i32.const 256) (i64.const 0) (i32.const 300))
                         (i32.load (i32.const 300)))";
    assert_eq!(p1(body).code, 4 * 24 + 7);
}

#[test]
fn path_open() {
    // The first fd after stdio and the preopen is 4; a missing file is ENOENT.
    let body = "(i32.add (call $open (i32.const 100) (i32.const 3))
                         (call $path_open (i32.const 3) (i32.const 1) (i32.const 180) (i32.const 6)
                                          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0)
                                          (i32.const 300)))";
    assert_eq!(p1(body).code, 4 + errno(Errno::NOENT));
}

#[test]
fn path_create_directory() {
    let body = "(i32.add (call $path_create_directory (i32.const 3) (i32.const 120) (i32.const 5))
                         (call $path_create_directory (i32.const 3) (i32.const 120) (i32.const 5)))";
    let ran = p1(body);
    assert_eq!(ran.code, errno(Errno::EXIST));
    let mut t = ran.tree.lock();
    let root = t.root();
    let d = t.resolve(root, b"d/new", kiln_fs::Follow::Yes).unwrap();
    assert_eq!(
        t.metadata(d).unwrap().file_type,
        kiln_fs::FileType::Directory
    );
}

#[test]
fn path_filestat_get() {
    let body =
        "(i32.add (i32.add (call $path_filestat_get (i32.const 3) (i32.const 1) (i32.const 100)
                                                     (i32.const 3) (i32.const 300))
                                  (i32.wrap_i64 (i64.load (i32.const 332))))
                         (call $path_filestat_get (i32.const 3) (i32.const 1) (i32.const 180)
                                                  (i32.const 6) (i32.const 300)))";
    assert_eq!(p1(body).code, 5 + errno(Errno::NOENT));
}

#[test]
fn path_filestat_set_times() {
    let body = "(i32.add (call $path_filestat_set_times (i32.const 3) (i32.const 1) (i32.const 100) (i32.const 3)
                                                  (i64.const 0) (i64.const 7000000000) (i32.const 4))
                 (i32.add (call $path_filestat_get (i32.const 3) (i32.const 1) (i32.const 100)
                                                   (i32.const 3) (i32.const 300))
                          (i32.wrap_i64 (i64.div_u (i64.load (i32.const 348)) (i64.const 1000000000)))))";
    assert_eq!(p1(body).code, 7);
}

#[test]
fn path_link() {
    // A hard link: one inode, two names (nlink 2).
    let body = "(i32.add (call $path_link (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 3)
                                    (i32.const 3) (i32.const 130) (i32.const 5))
                 (i32.add (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 130)
                                                   (i32.const 5) (i32.const 300))
                          (i32.wrap_i64 (i64.load (i32.const 324)))))";
    let ran = p1(body);
    assert_eq!(ran.code, 2);
    assert_eq!(ran.file("/d/lnk").unwrap(), "hello");
}

#[test]
fn path_readlink() {
    let body = "(i32.add (call $path_symlink (i32.const 150) (i32.const 1) (i32.const 3) (i32.const 160) (i32.const 4))
                 (i32.add (call $path_readlink (i32.const 3) (i32.const 160) (i32.const 4)
                                               (i32.const 400) (i32.const 64) (i32.const 300))
                          (i32.add (i32.load (i32.const 300)) (i32.load8_u (i32.const 400)))))";
    assert_eq!(p1(body).code, 1 + i32::from(b'f'));
}

#[test]
fn path_symlink() {
    // Not followed, the new name is a symlink (7); followed, it reads as the file.
    let body = "(i32.add (call $path_symlink (i32.const 150) (i32.const 1) (i32.const 3) (i32.const 160) (i32.const 4))
                 (i32.add (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 160)
                                                   (i32.const 4) (i32.const 300))
                          (i32.load8_u (i32.const 316))))";
    let ran = p1(body);
    assert_eq!(ran.code, 7);
    assert_eq!(ran.file("/d/sl").unwrap(), "hello");
}

#[test]
fn path_remove_directory() {
    let body = "(i32.add (call $path_remove_directory (i32.const 3) (i32.const 110) (i32.const 5))
                         (call $path_remove_directory (i32.const 3) (i32.const 110) (i32.const 5)))";
    let ran = p1(body);
    assert_eq!(ran.code, errno(Errno::NOENT));
    let mut t = ran.tree.lock();
    let root = t.root();
    assert!(t.resolve(root, b"d/sub", kiln_fs::Follow::Yes).is_err());
}

#[test]
fn path_unlink_file() {
    let body = "(i32.add (call $path_unlink_file (i32.const 3) (i32.const 100) (i32.const 3))
                         (call $path_unlink_file (i32.const 3) (i32.const 100) (i32.const 3)))";
    let ran = p1(body);
    assert_eq!(ran.code, errno(Errno::NOENT));
    assert_eq!(ran.file("/d/f"), None);
}

#[test]
fn path_rename() {
    let body = "(i32.add (call $path_rename (i32.const 3) (i32.const 100) (i32.const 3)
                                      (i32.const 3) (i32.const 170) (i32.const 3))
                         (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 100)
                                                  (i32.const 3) (i32.const 300)))";
    let ran = p1(body);
    assert_eq!(ran.code, errno(Errno::NOENT));
    assert_eq!(ran.file("/d/g").unwrap(), "hello");
}

#[test]
fn poll_oneoff() {
    // One 1 ms monotonic-clock subscription with userdata 5: one event, for it.
    let body = "(block (result i32)
                  (i64.store (i32.const 400) (i64.const 5))
                  (i32.store (i32.const 416) (i32.const 1))
                  (i64.store (i32.const 424) (i64.const 1000000))
                  (i32.add (call $poll_oneoff (i32.const 400) (i32.const 500) (i32.const 1) (i32.const 300))
                           (i32.add (i32.load (i32.const 300))
                                    (i32.wrap_i64 (i64.load (i32.const 500))))))";
    assert_eq!(p1(body).code, 6);
}
