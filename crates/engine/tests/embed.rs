//! kiln as a library: several builds at once through the `serve` example (one cache, one
//! process), and cancellation through `BuildRequest::cancel`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

#[path = "../examples/serve.rs"]
mod serve;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_engine::progress::Recorder;
use kiln_engine::{BuildError, BuildRequest, StepError};

/// Compiled wasm is shared by every test of this binary (it holds no image data).
fn share_module_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules");
        // SAFETY: set once, before any build of this process reads the environment.
        unsafe { std::env::set_var("KILN_MODULE_CACHE", dir) };
    });
}

/// A context tarball holding just `dockerfile`.
fn context_tar(dockerfile: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(dockerfile.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "Dockerfile", dockerfile.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

/// A service on a free loopback port with its own cache; its address.
fn start_service(cache: PathBuf) -> String {
    share_module_cache();
    let server = serve::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    std::thread::spawn(move || serve::serve(server, cache));
    format!("http://{addr}")
}

/// What one build through the service said: its JSON lines.
fn post(base: &str, query: &str, body: Vec<u8>) -> Result<Vec<serde_json::Value>, u16> {
    let resp = ureq::post(format!("{base}/build{query}")).send(&body[..]);
    let resp = match resp {
        Ok(r) => r,
        Err(ureq::Error::StatusCode(code)) => return Err(code),
        Err(e) => panic!("request failed: {e}"),
    };
    let reader = BufReader::new(resp.into_body().into_reader());
    Ok(reader
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect())
}

fn digest_of(lines: &[serde_json::Value]) -> String {
    let last = lines.last().expect("no output");
    last["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("build failed: {last}"))
        .to_owned()
}

fn cached_steps(lines: &[serde_json::Value]) -> usize {
    lines.iter().filter(|l| l["event"] == "step_cached").count()
}

#[test]
fn several_builds_at_once_share_one_cache_through_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let base = start_service(dir.path().join("cache"));
    let dockerfile =
        |n: usize| format!("FROM scratch\nRUN echo shared > /shared\nRUN echo build {n} > /n\n");
    let round = || -> Vec<Vec<serde_json::Value>> {
        let clients: Vec<_> = (0..serve::MAX_BUILDS)
            .map(|n| {
                let base = base.clone();
                let body = context_tar(&dockerfile(n));
                std::thread::spawn(move || post(&base, "", body).unwrap())
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    };
    let first = round();
    let digests: Vec<String> = first.iter().map(|l| digest_of(l)).collect();
    let mut distinct = digests.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        digests.len(),
        "each build has its own image"
    );
    for lines in &first {
        assert!(
            lines.iter().any(|l| l["event"] == "step_started"),
            "the log streams the engine's events: {lines:?}"
        );
    }
    // The same builds again: every RUN step is a hit in the one shared cache, and each
    // image is the same.
    let second = round();
    for (n, lines) in second.iter().enumerate() {
        assert_eq!(digest_of(lines), digests[n]);
        assert_eq!(cached_steps(lines), 2, "{lines:?}");
    }
}

#[test]
fn the_service_refuses_what_it_must_not_build() {
    let dir = tempfile::tempdir().unwrap();
    let base = start_service(dir.path().join("cache"));
    let ok = context_tar("FROM scratch\n");
    // A Dockerfile path that climbs out of the context.
    assert_eq!(post(&base, "?dockerfile=../../etc/passwd", ok), Err(400));
    // Not a tarball, or one without a Dockerfile.
    assert_eq!(post(&base, "", b"not a tar".to_vec()), Err(400));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_cksum();
    b.append_data(&mut h, "README", &b"x"[..]).unwrap();
    assert_eq!(post(&base, "", b.into_inner().unwrap()), Err(400));
    // Only loopback: the example has no authentication.
    assert!(serve::bind("0.0.0.0:0".parse().unwrap()).is_err());
}

#[test]
fn a_build_error_is_the_streams_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let base = start_service(dir.path().join("cache"));
    let lines = post(&base, "", context_tar("FROM scratch\nRUN exit 3\n")).unwrap();
    let last = lines.last().unwrap();
    let error = last["error"].as_str().expect("an error line");
    assert!(error.contains("exit code: 3"), "{error}");
}

#[test]
fn cancelling_stops_a_running_step_and_the_build() {
    share_module_cache();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    // A shell loop (only builtins) and a wasm program sleeping: both must notice.
    for script in ["while :; do :; done", "sleep 600"] {
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM scratch\nRUN {script}\nRUN echo never > /x\n"),
        )
        .unwrap();
        let req = BuildRequest::new(ctx.clone(), dir.path().join("cache"));
        let cancel = req.cancel.clone();
        let started = Instant::now();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            cancel.cancel();
        });
        let err = match kiln_engine::build(req, Arc::new(Recorder::default())) {
            Ok(_) => panic!("{script}: a cancelled build succeeded"),
            Err(e) => e,
        };
        canceller.join().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{script}: took {:?}",
            started.elapsed()
        );
        assert!(err.to_string().contains("cancelled"), "{script}: {err}");
        assert!(is_cancelled(&err), "{script}: {err:?}");
    }
}

#[test]
fn a_build_cancelled_before_it_starts_runs_no_step() {
    share_module_cache();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nRUN echo hi > /x\n").unwrap();
    let req = BuildRequest::new(ctx, dir.path().join("cache"));
    req.cancel.cancel();
    let events = Arc::new(Recorder::default());
    let err = match kiln_engine::build(req, events.clone()) {
        Ok(_) => panic!("a cancelled build succeeded"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(
        !events
            .events()
            .iter()
            .any(|e| matches!(e, kiln_engine::progress::Event::StepStarted { .. })),
        "no step started"
    );
    assert!(is_cancelled(&err), "{err:?}");
}

/// The typed cause an embedder matches on.
fn is_cancelled(e: &BuildError) -> bool {
    matches!(e, BuildError::Step { source, .. } if matches!(**source, StepError::Cancelled))
}
