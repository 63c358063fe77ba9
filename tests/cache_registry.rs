//! `--cache-to` / `--cache-from` through the binary: two kiln processes with separate
//! empty caches share one through a registry (or a directory); the second hits every
//! step, fetches only the layers its image needs and writes the identical image.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use support::start_registry;
use support::{Workspace, assert_ok, text};

const DOCKERFILE: &str = "FROM scratch\n\
    COPY f /f\n\
    RUN cat /f /f > /g\n\
    RUN --mount=type=secret,id=tok cat /run/secrets/tok > /dev/null; echo used > /s\n";

/// Two workspaces with the same context: two machines with empty caches.
fn machine() -> Workspace {
    let ws = Workspace::new();
    ws.write("Dockerfile", DOCKERFILE);
    ws.write("f", "content\n");
    ws.write("tok", "hunter2-secret-value\n");
    ws
}

fn secret(ws: &Workspace) -> String {
    format!("id=tok,src={}", ws.context().join("tok").display())
}

/// The `[stage-0 N/3]` step lines of a plain log, each with whether it was CACHED.
fn cached_steps(log: &str) -> Vec<(String, bool)> {
    log.lines()
        .filter(|l| l.contains("[stage-0 "))
        .map(|l| {
            let number = l.split_whitespace().next().unwrap_or_default();
            let step = l.split(']').next().unwrap_or_default().to_owned();
            (step, log.contains(&format!("{number} CACHED")))
        })
        .collect()
}

/// The manifest digest a build reports (`built image (sha256:...)`).
fn built_digest(log: &str) -> String {
    let line = log.lines().find(|l| l.starts_with("built ")).unwrap();
    line.split('(')
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_owned()
}

/// A loopback TCP proxy in front of `target` that records the request line of every
/// HTTP request it forwards (kiln's client sends each request's headers in one go).
struct Proxy {
    addr: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(upstream) = TcpStream::connect(&target) else {
                    return;
                };
                let seen = seen.clone();
                pipe(
                    upstream.try_clone().unwrap(),
                    client.try_clone().unwrap(),
                    None,
                );
                pipe(client, upstream, Some(seen));
            }
        });
        Proxy { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Copies `from` to `to` on a thread; with `log`, notes each request line that starts a
/// chunk (`GET /v2/...`).
fn pipe(mut from: TcpStream, mut to: TcpStream, log: Option<Arc<Mutex<Vec<String>>>>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(log) = &log {
                let chunk = String::from_utf8_lossy(&buf[..n]);
                for line in chunk.lines() {
                    let methods = ["GET /", "HEAD /", "PUT /", "POST /", "PATCH /"];
                    if methods.iter().any(|m| line.starts_with(m)) {
                        log.lock().unwrap().push(line.to_owned());
                    }
                }
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn a_second_machine_hits_every_step_through_a_registry_and_fetches_only_its_layers() {
    let Some(reg) = start_registry() else { return };
    let first = machine();
    let cache = format!("{}/kiln/cache:main", reg.addr);
    let out = first.build(&[
        "--secret",
        &secret(&first),
        "--cache-to",
        &format!("type=registry,ref={cache},mode=max"),
    ]);
    assert_ok(&out);
    let first_log = text(&out.stderr);
    assert!(
        first_log.contains("exported the build cache"),
        "{first_log}"
    );

    // The second machine reads the cache through a proxy that counts its requests.
    let proxy = Proxy::start(reg.addr.clone());
    let second = machine();
    let from = format!("type=registry,ref={}/kiln/cache:main", proxy.addr);
    let out = second.build(&["--secret", &secret(&second), "--cache-from", &from]);
    assert_ok(&out);
    let log = text(&out.stderr);
    let steps = cached_steps(&log);
    assert_eq!(steps.len(), 3, "{log}");
    // COPY and the plain RUN hit; the secret step's record never left the first machine.
    assert!(steps[0].1 && steps[1].1, "{log}");
    assert!(!steps[2].1, "the secret step was exported: {log}");
    assert_eq!(built_digest(&log), built_digest(&first_log));

    // One manifest, the records (config) and the two layers of the hit steps: nothing else.
    let requests = proxy.requests();
    let blob_gets = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
        .count();
    let manifest_gets = requests
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/manifests/"))
        .count();
    assert_eq!((manifest_gets, blob_gets), (1, 3), "{requests:#?}");
}

#[test]
fn a_local_cache_directory_round_trips_and_a_missing_one_is_a_cold_start() {
    let first = machine();
    let dir = first.path("shared-cache");
    let to = format!("type=local,dest={},mode=min", dir.display());
    let out = first.build(&["--secret", &secret(&first), "--cache-to", &to]);
    assert_ok(&out);
    let first_log = text(&out.stderr);

    let second = machine();
    let from = format!("type=local,src={}", dir.display());
    let out = second.build(&["--secret", &secret(&second), "--cache-from", &from]);
    assert_ok(&out);
    let log = text(&out.stderr);
    let steps = cached_steps(&log);
    assert!(steps[0].1 && steps[1].1 && !steps[2].1, "{log}");
    assert_eq!(built_digest(&log), built_digest(&first_log));

    // A cache that is not there yet is no error: the build runs every step.
    let third = machine();
    let from = format!("type=local,src={}", third.path("nothing").display());
    let out = third.build(&["--secret", &secret(&third), "--cache-from", &from]);
    assert_ok(&out);
    assert!(cached_steps(&text(&out.stderr)).iter().all(|(_, hit)| !hit));
}

#[test]
fn bad_cache_flags_fail_clearly() {
    let ws = machine();
    for (flag, spec, message) in [
        (
            "--cache-to",
            "type=registry",
            "type=registry needs ref=NAME",
        ),
        ("--cache-to", "type=inline", "type=inline is not supported"),
        ("--cache-to", "type=local,dest=x,mode=all", "mode=all"),
        ("--cache-from", "type=local", "type=local needs src=DIR"),
    ] {
        let out = ws.build(&[flag, spec]);
        support::assert_fails_with(&out, message);
    }
}
