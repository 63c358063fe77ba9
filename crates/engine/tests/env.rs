//! ENV in-process through `kiln_engine::build`: the image's `Env` keeps each name where it
//! was first set (BuildKit's `addEnv`), RUN sees ARG over ENV, and a stage of 10,000 ENV
//! lines builds in time linear in their number.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_engine::progress::Recorder;
use kiln_engine::{BuildRequest, Built};

/// Builds `dockerfile` in a fresh context and cache.
fn build(dockerfile: &str) -> (tempfile::TempDir, Built) {
    share_module_cache();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    let req = BuildRequest::new(ctx, dir.path().join("cache"));
    let built = kiln_engine::build(req, Arc::new(Recorder::default()))
        .unwrap_or_else(|e| panic!("build failed: {e}"));
    (dir, built)
}

/// Compiled wasm is shared by every test of this binary (it holds no image data).
fn share_module_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules");
        // SAFETY: set once, before any build of this process reads the environment.
        unsafe { std::env::set_var("KILN_MODULE_CACHE", dir) };
    });
}

/// The content of `path` in the built image.
fn file(built: &mut Built, path: &str) -> String {
    let mut tree = kiln_fs::Tree::from_snapshot(&built.snapshot().unwrap());
    let root = tree.root();
    let ino = tree
        .resolve(root, path.as_bytes(), kiln_fs::Follow::Yes)
        .unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut tree.open_read(ino).unwrap(), &mut out).unwrap();
    out
}

#[test]
fn a_redefined_variable_keeps_its_place_in_the_image_env() {
    let (_dir, mut built) = build(
        "FROM scratch\n\
         ENV A=0\n\
         ENV A=1 B=$A\n\
         ENV PATH=/x:$PATH A=2\n\
         ARG B=argb\n\
         ENV C=$B\n\
         RUN echo \"$A $B $C\" > /out\n",
    );
    // `B=$A` sees the A from before its line; an ARG shadows ENV for expansion and RUN
    // but never reaches the image.
    let path = format!("PATH=/x:{}", kiln_shell::DEFAULT_PATH);
    assert_eq!(built.image.config.env(), [&path, "A=2", "B=0", "C=argb"]);
    assert_eq!(file(&mut built, "/out"), "2 argb argb\n");
}

/// Lines of ENV in the bounded-time test.
const MANY: usize = 10_000;

/// Far above what the linear path takes in a debug build on a loaded two-core machine
/// (about 2 s), far below the quadratic one's 34 s (50 s under load).
const BOUND: Duration = Duration::from_secs(20);

#[test]
fn ten_thousand_env_lines_build_in_linear_time() {
    // Each line also reads the variable the line before set, as lookups scanned too.
    let mut df = String::from("FROM scratch\nENV V0=v0 LAST=none\n");
    for i in 1..MANY {
        df.push_str(&format!("ENV V{i}=v{i} LAST=$V{}\n", i - 1));
    }
    df.push_str("ENV V0=again\nRUN echo \"$V0 $LAST\" > /out\n");
    let started = Instant::now();
    let (_dir, mut built) = build(&df);
    let took = started.elapsed();
    assert!(took < BOUND, "{MANY} ENV lines took {took:?}");
    let env = built.image.config.env();
    assert_eq!(env.len(), MANY + 2, "PATH, every V and LAST");
    assert_eq!(env[1], "V0=again");
    assert_eq!(env[2], format!("LAST=v{}", MANY - 2));
    assert_eq!(env[MANY + 1], format!("V{}=v{}", MANY - 1, MANY - 1));
    assert_eq!(file(&mut built, "/out"), format!("again v{}\n", MANY - 2));
}
