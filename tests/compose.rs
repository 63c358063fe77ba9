//! `kiln compose build` end to end, with real compose files: services built concurrently
//! over one cache, file and environment secrets (the netrc scenario), `.env`
//! interpolation, compose's error texts, and the secret guarantees for every service.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::process::Output;

use support::*;

const NETRC: &str = "machine 127.0.0.1 login admin password password\n";

/// Runs `kiln compose ARGS` in the context directory (the project directory).
fn compose(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Output {
    ws.kiln()
        .current_dir(ws.context())
        .arg("compose")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run kiln compose")
}

fn cat_in_image(ws: &Workspace, image: &str, path: &str) -> String {
    let out = ws
        .kiln()
        .args(["run", image, "cat", path])
        .output()
        .unwrap();
    assert_ok(&out);
    text(&out.stdout)
}

fn log(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// The scenario: `web` gets the netrc from a file named in `.env`, `api` the same
/// netrc from an environment variable under another id (long form with `mode`); both
/// `curl -n` the loopback server and get `Hello, Admin`; the value is in no image, cache,
/// store or log; a second run is all cache hits.
#[test]
fn two_services_with_file_and_environment_secrets() {
    let server = HelloServer::start();
    let ws = Workspace::new();
    let url = server.url();
    ws.write("netrc", NETRC);
    ws.write(".env", "NETRC_FILE=./netrc\nGREETING=hi-from-dotenv\n");
    ws.write(
        "web/Dockerfile",
        format!(
            "FROM scratch\nARG GREETING\n\
             RUN --mount=type=secret,id=netrc,target=/root/.netrc curl -n {url} > /message.txt\n\
             RUN echo \"$GREETING\" > /greeting.txt\n"
        ),
    );
    ws.write(
        "compose.yaml",
        format!(
            "name: demo\n\
             services:\n\
             \x20 web:\n\
             \x20   image: web:test\n\
             \x20   build:\n\
             \x20     context: ./web\n\
             \x20     args:\n\
             \x20       GREETING: ${{GREETING:?set GREETING in .env}}\n\
             \x20     secrets: [netrc]\n\
             \x20 api:\n\
             \x20   build:\n\
             \x20     context: .\n\
             \x20     dockerfile_inline: |\n\
             \x20       FROM scratch\n\
             \x20       RUN --mount=type=secret,id=npm_token,target=/root/.netrc curl -n {url} > /message.txt\n\
             \x20     secrets:\n\
             \x20       - source: netrc_env\n\
             \x20         target: npm_token\n\
             \x20         mode: 0440\n\
             \x20 db:\n\
             \x20   image: postgres:16\n\
             secrets:\n\
             \x20 netrc:\n\
             \x20   file: ${{NETRC_FILE}}\n\
             \x20 netrc_env:\n\
             \x20   environment: NETRC_VALUE\n"
        ),
    );
    let env = [("NETRC_VALUE", NETRC)];
    let out = compose(&ws, &["build", "--progress", "plain"], &env);
    assert_ok(&out);
    let first = log(&out);
    assert!(first.contains("[web "), "{first}");
    assert!(first.contains("[api "), "{first}");
    assert!(
        first.contains("secrets `uid`, `gid` and `mode` are not supported by BuildKit"),
        "{first}"
    );

    assert_eq!(
        cat_in_image(&ws, "web:test", "/message.txt"),
        "Hello, Admin\n"
    );
    assert_eq!(
        cat_in_image(&ws, "demo-api", "/message.txt"),
        "Hello, Admin\n"
    );
    assert_eq!(
        cat_in_image(&ws, "web:test", "/greeting.txt"),
        "hi-from-dotenv\n"
    );
    assert!(server.hits.load(std::sync::atomic::Ordering::SeqCst) >= 2);

    // Again: every step of both services is a hit in the one shared cache.
    let again = compose(&ws, &["build", "--progress", "plain"], &env);
    assert_ok(&again);
    let second = log(&again);
    // Every RUN of both services is a hit (ARG, metadata only, prints DONE as in BuildKit).
    // Services build concurrently, so a step's lines need not be adjacent: match by `#N`.
    let runs: Vec<&str> = second
        .lines()
        .filter(|l| l.contains("] RUN "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(runs.len(), 3, "{second}");
    for id in runs {
        assert!(
            second.lines().any(|l| l == format!("{id} CACHED")),
            "{second}"
        );
    }

    for dir in [ws.cache(), ws.store()] {
        assert_eq!(
            find_in_tree(&dir, b"password password"),
            None,
            "{}",
            dir.display()
        );
    }
    assert!(!first.contains("password password") && !second.contains("password password"));
}

#[test]
fn a_missing_required_variable_fails_with_composes_text() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\n");
    ws.write(
        "compose.yaml",
        "services:\n  app:\n    image: ${TAG:?TAG must be set}\n    build: .\n",
    );
    let out = compose(&ws, &["build"], &[]);
    assert_fails_with(
        &out,
        "error while interpolating services.app.image: required variable TAG is missing a value: TAG must be set",
    );
    // Given in the environment (or .env), the same file builds.
    assert_ok(&compose(&ws, &["build"], &[("TAG", "tagged:1")]));
    let images = text(&ws.kiln().arg("images").output().unwrap().stdout);
    assert!(images.contains("tagged:1"), "{images}");
}

#[test]
fn a_mistyped_key_fails_naming_it() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\n");
    let file = ws.write(
        "docker-compose.yml",
        "services:\n  app:\n    build:\n      contxt: .\n",
    );
    let out = compose(&ws, &["build"], &[]);
    assert_fails_with(
        &out,
        &format!(
            "validating {}: services.app.build additional properties 'contxt' not allowed",
            file.display()
        ),
    );
}

/// A failing service is named with its Dockerfile line and step; the other service
/// still builds.
#[test]
fn a_failure_names_the_service_line_and_step() {
    let ws = Workspace::new();
    ws.write("good/Dockerfile", "FROM scratch\nRUN echo ok > /ok\n");
    ws.write("bad/Dockerfile", "FROM scratch\nRUN echo ok\nRUN exit 3\n");
    ws.write(
        "compose.yaml",
        "services:\n  good: {build: ./good, image: good:1}\n  bad: {build: ./bad, image: bad:1}\n",
    );
    let out = compose(&ws, &["build", "--progress", "plain"], &[]);
    assert_fails_with(&out, "service \"bad\" failed to build");
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains("RUN exit 3"), "{err}");
    assert_eq!(cat_in_image(&ws, "good:1", "/ok"), "ok\n");
}

/// The leak guard runs for each service: a step that writes its secret into a layer
/// fails that service's build, naming the secret, and nothing keeps the value.
#[test]
fn the_leak_guard_covers_every_service() {
    let ws = Workspace::new();
    ws.write(
        "a/Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=tok true\n",
    );
    ws.write(
        "b/Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /leak\n",
    );
    ws.write(
        "compose.yaml",
        "services:\n  a: {build: {context: ./a, secrets: [tok]}, image: a:1}\n  \
         b: {build: {context: ./b, secrets: [tok]}, image: b:1}\n\
         secrets:\n  tok: {environment: TOK}\n",
    );
    let value = "s3cr3t-compose-value-never-kept";
    let out = compose(&ws, &["build", "--progress", "plain"], &[("TOK", value)]);
    assert_fails_with(&out, "service \"b\" failed to build");
    let err = log(&out);
    assert!(err.contains("/leak") && err.contains("tok"), "{err}");
    assert!(!err.contains(value), "{err}");
    for dir in [ws.cache(), ws.store()] {
        assert_eq!(find_in_tree(&dir, value.as_bytes()), None);
    }
}

/// `-f` files merge in order over the default lookup, and `build SERVICE` builds only it.
#[test]
fn files_merge_in_order_and_services_can_be_picked() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nARG WHO=base\nRUN echo \"$WHO\" > /who\n",
    );
    ws.write(
        "compose.yaml",
        "services:\n  one: {build: ., image: one:1}\n  two: {build: ., image: two:1}\n",
    );
    ws.write(
        "compose.override.yaml",
        "services:\n  one:\n    build:\n      args: [WHO=override]\n",
    );
    ws.write(
        "extra.yaml",
        "services:\n  one:\n    build:\n      args: {WHO: extra}\n",
    );
    assert_ok(&compose(&ws, &["build", "one"], &[]));
    assert_eq!(cat_in_image(&ws, "one:1", "/who"), "override\n");
    let images = text(&ws.kiln().arg("images").output().unwrap().stdout);
    assert!(!images.contains("two:1"), "{images}");

    let out = compose(
        &ws,
        &["-f", "compose.yaml", "-f", "extra.yaml", "build", "one"],
        &[],
    );
    assert_ok(&out);
    assert_eq!(cat_in_image(&ws, "one:1", "/who"), "extra\n");
    assert_fails_with(
        &compose(&ws, &["build", "nope"], &[]),
        "no such service: nope",
    );
}
