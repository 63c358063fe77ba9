//! The seed scenario, end to end through the real binary: a secret netrc reaches one RUN
//! step, `curl -n` uses it against a loopback server, and the secret is nowhere in the
//! image, the cache, the store or the log.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use support::*;

const NETRC: &str = "machine 127.0.0.1 login admin password password\n";

fn dockerfile(url: &str, mount_opts: &str) -> String {
    format!(
        "FROM scratch\n\
         RUN --mount=type=secret,id=netrc,target=/root/.netrc{mount_opts} curl -n {url} > message.txt\n"
    )
}

/// Extracts one file of the built image through `kiln run`.
fn cat_in_image(ws: &Workspace, image: &str, path: &str) -> std::process::Output {
    ws.kiln()
        .args(["run", image, "cat", path])
        .output()
        .expect("kiln run")
}

#[test]
fn secret_reaches_the_step_and_nothing_else() {
    let server = HelloServer::start();
    let ws = Workspace::new();
    ws.write("Dockerfile", dockerfile(&server.url(), ""));
    let netrc = ws.path("netrc");
    std::fs::write(&netrc, NETRC).unwrap();
    let oci_dir = ws.path("out-oci");

    let out = ws.build(&[
        "-t",
        "seed:latest",
        "--secret",
        &format!("id=netrc,src={}", netrc.display()),
        "-o",
        &format!("type=oci,dest={},tar=false", oci_dir.display()),
    ]);
    assert_ok(&out);
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));

    // The image got the authenticated answer.
    let msg = cat_in_image(&ws, "seed:latest", "/message.txt");
    assert_ok(&msg);
    assert_eq!(text(&msg.stdout), "Hello, Admin\n");

    // No /root/.netrc, not even an empty stub or its parent directory.
    let netrc_in_image = cat_in_image(&ws, "seed:latest", "/root/.netrc");
    assert!(!netrc_in_image.status.success());
    let ls_root = ws
        .kiln()
        .args(["run", "seed:latest", "ls", "-a", "/"])
        .output()
        .unwrap();
    assert_ok(&ls_root);
    assert!(
        !text(&ls_root.stdout).contains("root"),
        "{}",
        text(&ls_root.stdout)
    );

    // The secret value is in no layer, config, history, cache file, store file or log line.
    let secret = b"password password";
    for dir in [oci_dir, ws.cache(), ws.store()] {
        assert_eq!(
            find_in_tree(&dir, secret),
            None,
            "secret found under {}",
            dir.display()
        );
        assert_eq!(find_in_tree(&dir, NETRC.as_bytes()), None);
    }
    assert!(!log.contains("password password"), "{log}");
    assert!(server.hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);
}

#[test]
fn without_the_secret_the_step_runs_as_guest() {
    let server = HelloServer::start();
    let ws = Workspace::new();
    ws.write("Dockerfile", dockerfile(&server.url(), ""));
    let out = ws.build(&["-t", "guest:latest"]);
    assert_ok(&out);
    let msg = cat_in_image(&ws, "guest:latest", "/message.txt");
    assert_ok(&msg);
    assert_eq!(text(&msg.stdout), "Hello, guest\n");

    // With the secret, the same cache must not hand back the guest result, and the
    // other way round.
    let netrc = ws.path("netrc");
    std::fs::write(&netrc, NETRC).unwrap();
    let secret = format!("id=netrc,src={}", netrc.display());
    assert_ok(&ws.build(&["-t", "admin:latest", "--secret", &secret]));
    let msg = cat_in_image(&ws, "admin:latest", "/message.txt");
    assert_eq!(text(&msg.stdout), "Hello, Admin\n");
    assert_ok(&ws.build(&["-t", "guest2:latest"]));
    let msg = cat_in_image(&ws, "guest2:latest", "/message.txt");
    assert_eq!(text(&msg.stdout), "Hello, guest\n");
}

#[test]
fn a_missing_required_secret_fails_before_any_step_runs() {
    let server = HelloServer::start();
    let ws = Workspace::new();
    ws.write("Dockerfile", dockerfile(&server.url(), ",required=true"));
    let out = ws.build(&["-t", "req:latest"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("netrc"), "{err}");
    assert_eq!(server.hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn the_leak_guard_stops_a_step_that_copies_the_secret() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=x cat /run/secrets/x > /leak\n",
    );
    let secret = ws.path("x.txt");
    std::fs::write(&secret, "s3cr3t-value-that-must-not-leak").unwrap();
    let out = ws.build(&[
        "-t",
        "leak:latest",
        "--secret",
        &format!("id=x,src={}", secret.display()),
    ]);
    assert!(!out.status.success(), "a leaking build must fail");
    let err = text(&out.stderr);
    assert!(err.contains("/leak"), "{err}");
    assert!(err.contains("\"x\"") || err.contains(" x "), "{err}");
    assert!(!err.contains("s3cr3t-value"), "{err}");
    // Nothing was tagged, and nothing kept in the cache or store holds the value.
    let images = ws.kiln().arg("images").output().unwrap();
    assert!(!text(&images.stdout).contains("leak:latest"));
    for dir in [ws.cache(), ws.store()] {
        assert_eq!(find_in_tree(&dir, b"s3cr3t-value-that-must-not-leak"), None);
    }
}

#[test]
fn secret_values_printed_by_a_step_are_redacted_in_the_log_and_errors() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=tok cat /run/secrets/tok && echo && sed 's/^/again: /' /run/secrets/tok\n\
         RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo \"failing with $TOKEN\" >&2; exit 1'\n",
    );
    let secret = ws.path("tok.txt");
    std::fs::write(&secret, "tok-3f9a8b7c6d5e").unwrap();
    let out = ws.build(&["--secret", &format!("id=tok,src={}", secret.display())]);
    assert!(!out.status.success());
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!log.contains("tok-3f9a8b7c6d5e"), "{log}");
    assert!(log.contains("again: ****"), "{log}");
    assert!(log.contains("failing with ****"), "{log}");
}

/// A path-like id (`aws/credentials`) is one id for `--secret` and the Dockerfile, as in
/// buildx (its default target is its last component), and an `env=` secret reaches the
/// step's variables byte for byte (a non-UTF-8 value included).
#[test]
fn path_like_ids_and_env_secrets_work_as_in_buildkit() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=aws/credentials --mount=type=secret,id=tok,env=TOKEN \
         printf %s \"$TOKEN\" | cmp -s - /run/secrets/credentials && echo same > /out\n",
    );
    let value = b"key=\xffsecret-value-1234";
    std::fs::write(ws.path("creds"), value).unwrap();
    let out = ws.build(&[
        "-t",
        "ids:latest",
        "--secret",
        &format!("id=aws/credentials,src={}", ws.path("creds").display()),
        "--secret",
        &format!("id=tok,src={}", ws.path("creds").display()),
    ]);
    assert_ok(&out);
    let same = cat_in_image(&ws, "ids:latest", "/out");
    assert_ok(&same);
    assert_eq!(text(&same.stdout), "same\n");
    assert_eq!(find_in_tree(&ws.store(), b"secret-value-1234"), None);
}
