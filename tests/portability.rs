//! The same image on every host: what a Windows or macOS checkout changes about a context
//! (line endings, modes) must not change the digest. The Windows run itself is
//! tests/windows/run-under-wine (CI); the mode rule for hosts without Unix modes is tested
//! in crates/engine (context.rs, host_modes.rs) by simulating such a host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use support::*;

/// A Dockerfile using continuations, JSON and shell forms, and an ignore file.
const DOCKERFILE: &str = "FROM scratch\n\
ARG GREETING=hello\n\
LABEL org.example.note=\"two \\\n      lines\"\n\
COPY . /ctx/\n\
RUN test ! -e /ctx/secret.txt && \\\n    echo \"$GREETING\" > /ctx/out.txt\n\
ENV A=1 \\\n    B=2\n\
CMD [\"cat\", \"/ctx/out.txt\"]\n";

const IGNORE: &str = "# build files stay out of the image\nDockerfile\n.dockerignore\nsecret.txt\n";

/// The manifest digest of a build of a context holding `dockerfile` and `ignore`.
fn digest_with(dockerfile: &str, ignore: &str) -> String {
    let ws = Workspace::new();
    ws.write("Dockerfile", dockerfile);
    ws.write(".dockerignore", ignore);
    ws.write("keep.txt", "kept\n");
    ws.write("secret.txt", "not for the image\n");
    let meta = ws.path("meta.json");
    let out = ws.build(&["--metadata-file", meta.to_str().unwrap()]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    v["containerimage.digest"].as_str().unwrap().to_owned()
}

#[test]
fn crlf_dockerfile_and_dockerignore_give_the_lf_digest() {
    let crlf = |s: &str| s.replace('\n', "\r\n");
    let lf = digest_with(DOCKERFILE, IGNORE);
    assert_eq!(digest_with(&crlf(DOCKERFILE), &crlf(IGNORE)), lf);
}

/// A context path longer than Windows' MAX_PATH (260 characters) and a name of 255 bytes
/// build like any other: the limit is the host's API's, not kiln's. (Under Wine, which
/// cannot name such paths, kiln.exe says so instead: tests/windows/run-under-wine.)
#[test]
fn context_paths_longer_than_max_path_are_copied() {
    let ws = Workspace::new();
    let deep: Vec<String> = (1..=6)
        .map(|i| format!("level-{i}-of-a-context-whose-full-path-is-longer-than-max-path"))
        .collect();
    let rel = format!("{}/{}", deep.join("/"), "n".repeat(255));
    let file = ws.write(&rel, "deep\n");
    assert!(file.to_str().unwrap().len() > 600, "{}", file.display());
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nCOPY . /ctx/\nRUN test \"$(cat '/ctx/{rel}')\" = deep\n"),
    );
    assert_ok(&ws.build(&[]));
}
