//! COPY and ADD as BuildKit does them: --chmod, wildcards, --from owners, --parents, ADD --unpack, .dockerignore.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use support::*;

/// Builds the workspace's Dockerfile tagged `tag` (with `args`), then prints
/// `stat -c FORMAT paths...` inside the image.
fn stat_in(ws: &Workspace, tag: &str, args: &[&str], format: &str, paths: &[&str]) -> String {
    let mut all = vec!["-t", tag];
    all.extend_from_slice(args);
    assert_ok(&ws.build(&all));
    let out = ws
        .kiln()
        .args(["run", tag, "stat", "-c", format])
        .args(paths)
        .output()
        .unwrap();
    assert_ok(&out);
    text(&out.stdout)
}

/// Runs `argv` in the image `tag` and returns its stdout.
fn run_in(ws: &Workspace, tag: &str, argv: &[&str]) -> String {
    let out = ws.kiln().arg("run").arg(tag).args(argv).output().unwrap();
    assert_ok(&out);
    text(&out.stdout)
}

/// BuildKit's testCopyChmod: octal modes, the parents `--chmod` creates, `${mode}`.
#[test]
fn chmod_sets_modes_of_files_and_created_parents_and_expands_args() {
    let ws = Workspace::new();
    ws.write("foo", "foo-contents");
    ws.write("bar", "bar-contents");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         COPY --chmod=0644 foo /\n\
         COPY --chmod=777 bar /baz\n\
         COPY --chmod=0 foo /foobis\n\
         COPY --chmod=777 foo /parent/foo\n\
         COPY --chmod=770 foo /parent/sub/foo\n\
         ARG mode\n\
         COPY --chmod=${mode} foo /footer\n\
         ADD --chmod=$mode bar /added\n\
         COPY --chmod=u=rwx,go= foo /sym/foo\n",
    );
    let got = stat_in(
        &ws,
        "chmod",
        &["--build-arg", "mode=755"],
        "%a %n",
        &[
            "/foo",
            "/baz",
            "/foobis",
            "/parent",
            "/parent/sub",
            "/footer",
            "/added",
            "/sym",
            "/sym/foo",
        ],
    );
    assert_eq!(
        got,
        "644 /foo\n777 /baz\n0 /foobis\n777 /parent\n770 /parent/sub\n755 /footer\n\
         755 /added\n755 /sym\n700 /sym/foo\n"
    );
    // Another value of the ARG is another result, not a cache hit.
    let again = stat_in(
        &ws,
        "chmod",
        &["--build-arg", "mode=700"],
        "%a",
        &["/footer"],
    );
    assert_eq!(again, "700\n");
}

#[test]
fn a_chmod_that_is_no_mode_fails_with_buildkits_words() {
    let ws = Workspace::new();
    ws.write("foo", "x");
    ws.write("Dockerfile", "FROM scratch\nCOPY --chmod=64a foo /\n");
    assert_fails_with(
        &ws.build(&[]),
        "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777",
    );
    // After expansion too.
    ws.write(
        "Dockerfile",
        "FROM scratch\nARG m=10000\nCOPY --chmod=$m foo /\n",
    );
    assert_fails_with(&ws.build(&[]), "invalid chmod parameter: '10000'");
}

/// BuildKit's testEmptyWildcard and testCopyWildcards, and a matched link followed.
#[test]
fn wildcards_may_match_nothing_and_one_match_needs_no_trailing_slash() {
    let ws = Workspace::new();
    ws.write("foo", "contents0");
    ws.write("foo.go", "foo-contents");
    ws.write("bar.go", "bar-contents");
    ws.write("sub/dir1/dir2/foo", "deep");
    ws.write("target.txt", "through the link");
    std::os::unix::fs::symlink("target.txt", ws.context().join("link.txt")).unwrap();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         COPY foo nomatch* /\n\
         COPY nothing* /none/\n\
         COPY *.go /gofiles/\n\
         COPY f*.go foo2.go\n\
         COPY sub/*/dir2/foo /subdest3/bar\n\
         COPY lin*.txt /linked\n",
    );
    assert_ok(&ws.build(&["-t", "wild"]));
    let cat = run_in(
        &ws,
        "wild",
        &[
            "cat",
            "/foo",
            "/gofiles/foo.go",
            "/gofiles/bar.go",
            "/foo2.go",
            "/subdest3/bar",
            "/linked",
        ],
    );
    assert_eq!(
        cat,
        "contents0foo-contentsbar-contentsfoo-contentsdeepthrough the link"
    );
    // The link was followed: /linked is a regular file, not a link.
    assert_eq!(
        run_in(&ws, "wild", &["stat", "-c", "%F", "/linked"]),
        "regular file\n"
    );
    // Nothing matched, so nothing was made.
    let ls = ws
        .kiln()
        .args(["run", "wild", "ls", "/none"])
        .output()
        .unwrap();
    assert!(!ls.status.success(), "{}", text(&ls.stdout));
}

/// `COPY --from` keeps the source's owners (BuildKit: 100:200 stays 100:200) unless
/// `--chown`; the context's files are root's.
#[test]
fn copy_from_keeps_the_source_owner_unless_chown() {
    let ws = Workspace::new();
    ws.write("foo", "f");
    ws.write(
        "Dockerfile",
        "FROM scratch AS base\n\
         COPY --chown=100:200 foo /out/foo\n\
         COPY --chown=100:200 foo /out/sub/deep\n\
         FROM scratch\n\
         COPY --from=base /out/foo /kept\n\
         COPY --from=base /out /keptdir\n\
         COPY --from=base /out/f* /globbed/\n\
         COPY --from=base --chown=7:8 /out/foo /changed\n\
         COPY foo /ctx\n",
    );
    let got = stat_in(
        &ws,
        "owners",
        &[],
        "%u:%g %n",
        &[
            "/kept",
            "/keptdir/foo",
            "/keptdir/sub",
            "/keptdir/sub/deep",
            "/globbed/foo",
            "/changed",
            "/ctx",
        ],
    );
    assert_eq!(
        got,
        "100:200 /kept\n100:200 /keptdir/foo\n100:200 /keptdir/sub\n100:200 /keptdir/sub/deep\n\
         100:200 /globbed/foo\n7:8 /changed\n0:0 /ctx\n"
    );
}

/// BuildKit's testCopySocket: a socket in the context does not stop `COPY . /`; it
/// arrives as an empty regular file. A FIFO is skipped.
#[test]
fn a_socket_in_the_context_is_copied_as_an_empty_file() {
    let ws = Workspace::new();
    ws.write("a.txt", "a");
    let _sock = std::os::unix::net::UnixListener::bind(ws.context().join("socket.sock")).unwrap();
    let fifo = std::ffi::CString::new(ws.context().join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    ws.write("Dockerfile", "FROM scratch\nCOPY . /\n");
    let got = stat_in(&ws, "sock", &[], "%F %s %n", &["/a.txt", "/socket.sock"]);
    assert_eq!(
        got,
        "regular file 1 /a.txt\nregular empty file 0 /socket.sock\n"
    );
    let ls = ws
        .kiln()
        .args(["run", "sock", "ls", "/pipe"])
        .output()
        .unwrap();
    assert!(!ls.status.success());
}

/// Issue #21: `!docs/keep/README.md` after `docs` re-includes that file (and the
/// directories holding it), as BuildKit's walker does.
#[test]
fn a_dockerignore_exception_reincludes_a_file_of_an_excluded_directory() {
    let ws = Workspace::new();
    ws.write("docs/a.md", "a");
    ws.write("docs/keep/README.md", "readme");
    ws.write("docs/keep/other.md", "o");
    ws.write("src/main.rs", "m");
    ws.write(".dockerignore", "docs\n!docs/keep/README.md\n");
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY . /all/\nCOPY docs /docs\n",
    );
    assert_ok(&ws.build(&["-t", "ign"]));
    let found = run_in(&ws, "ign", &["find", "/all", "/docs"]);
    assert_eq!(
        found,
        "/all\n/all/.dockerignore\n/all/Dockerfile\n/all/docs\n/all/docs/keep\n\
         /all/docs/keep/README.md\n/all/src\n/all/src/main.rs\n\
         /docs\n/docs/keep\n/docs/keep/README.md\n"
    );
}

/// BuildKit's testDockerignoreInvalid: a bare `!` is an error, not a hang or a no-op.
#[test]
fn a_dockerignore_of_only_a_bang_is_an_error() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "!\n");
    ws.write("Dockerfile", "FROM scratch\nCOPY . .\n");
    assert_fails_with(&ws.build(&[]), "illegal exclusion pattern: \"!\"");
}

/// A gzip tar holding `files`.
fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *body).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// `ADD --unpack=true <url>` unpacks the archive; without it (BuildKit's default for a
/// URL) the download stays a file, and the two are not one cache entry.
#[test]
fn add_unpacks_a_url_archive_only_when_asked() {
    let tgz = tar_gz(&[("app/hello.txt", b"hi")]);
    let server = RouteServer::start(move |_| (200, Vec::new(), tgz.clone()));
    let ws = Workspace::new();
    let url = server.url("/tool.tar.gz");
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD --unpack=true {url} /unpacked/\nADD {url} /kept/\n"),
    );
    assert_ok(&ws.build(&["-t", "unpack"]));
    assert_eq!(
        run_in(&ws, "unpack", &["cat", "/unpacked/app/hello.txt"]),
        "hi"
    );
    let kept = run_in(&ws, "unpack", &["stat", "-c", "%F %n", "/kept/tool.tar.gz"]);
    assert_eq!(kept, "regular file /kept/tool.tar.gz\n");
    let gone = ws
        .kiln()
        .args(["run", "unpack", "ls", "/unpacked/tool.tar.gz"])
        .output()
        .unwrap();
    assert!(!gone.status.success());
    // --unpack=true of something that is no archive copies it as a file.
    let plain = RouteServer::start(|_| (200, Vec::new(), b"just text".to_vec()));
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch\nADD --unpack=true {} /dl/\n",
            plain.url("/notes.txt")
        ),
    );
    assert_ok(&ws.build(&["-t", "plain"]));
    assert_eq!(run_in(&ws, "plain", &["cat", "/dl/notes.txt"]), "just text");
}

/// BuildKit refuses `ADD --checksum` unless its one source is a URL.
#[test]
fn add_checksum_needs_one_url_source() {
    let ws = Workspace::new();
    ws.write("local.txt", "x");
    let sum = format!("sha256:{}", "0".repeat(64));
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD --checksum={sum} local.txt /\n"),
    );
    assert_fails_with(&ws.build(&[]), "checksum requires HTTP(S) or Git sources");
    ws.write(
        "Dockerfile",
        format!("FROM scratch\nADD --checksum={sum} local.txt local.txt /d/\n"),
    );
    assert_fails_with(
        &ws.build(&[]),
        "checksum can't be specified for multiple sources",
    );
}

/// BuildKit's testDockerfileLowercase: without `Dockerfile`, `dockerfile` is read.
#[test]
fn a_lowercase_dockerfile_is_found_when_dockerfile_is_absent() {
    let ws = Workspace::new();
    ws.write("a", "lower");
    ws.write("dockerfile", "FROM scratch\nCOPY a /a\n");
    assert_ok(&ws.build(&["-t", "lower"]));
    assert_eq!(run_in(&ws, "lower", &["cat", "/a"]), "lower");
    // A Dockerfile named with -f is not replaced by anything.
    let missing = ws.build(&["-f", ws.path("nowhere/Dockerfile").to_str().unwrap()]);
    assert!(!missing.status.success());
}

/// The `org.opencontainers.image.ref.name` of each manifest in an `index.json`.
fn ref_names(index: &[u8]) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_slice(index).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Several `-t` give one index entry per name in an OCI export, archive or layout.
#[test]
fn every_tag_names_the_image_in_an_oci_export() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nCOPY Dockerfile /\n");
    let archive = ws.path("image.tar");
    let layout = ws.path("layout");
    assert_ok(&ws.build(&[
        "-t",
        "one:1",
        "-t",
        "two:2",
        "-o",
        &format!("type=oci,dest={}", archive.display()),
        "-o",
        &format!("type=oci,tar=false,dest={}", layout.display()),
    ]));
    let mut tar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let mut index = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("index.json") {
            std::io::Read::read_to_end(&mut entry, &mut index).unwrap();
        }
    }
    let expected = ["one:1", "two:2"];
    assert_eq!(ref_names(&index), expected);
    let index = std::fs::read(layout.join("index.json")).unwrap();
    assert_eq!(ref_names(&index), expected);
}

/// BuildKit's testCopyParents and testCopyRelativeParents: `--parents` keeps each
/// match's path (below a `/./` pivot when there is one), with `*` and `**`.
#[test]
fn copy_parents_keeps_paths_below_the_pivot() {
    let ws = Workspace::new();
    ws.write("foo1/foo2/bar", "testing");
    ws.write("foo1/foo2/baz", "testing2");
    for file in [
        "a/b/c/d/foo",
        "a/b/c/d/e/bay",
        "a/b2/c/d/e/bar",
        "a/b/c2/d/e/baz",
        "a/b/c2/d/e2/baz",
    ] {
        ws.write(&format!("test/{file}"), file);
    }
    ws.write(
        "Dockerfile",
        "FROM scratch AS base\n\
         COPY test /test\n\
         FROM scratch\n\
         COPY --parents foo1/foo2/bar /\n\
         WORKDIR /test\n\
         COPY --parents foo1/foo2/ba* .\n\
         COPY --parents test/a/b/./c/d /middle/\n\
         COPY --from=base --parents /test/a/./b/./c /double/\n\
         COPY --from=base --parents /test/a/./*/c /wildcard/\n\
         COPY --from=base --parents /test/a/b*/./c/**/e /doublewild/\n\
         COPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /inputs/\n\
         COPY --from=base --parents /test/a/b3*/c /nomatch/\n",
    );
    assert_ok(&ws.build(&["-t", "parents"]));
    let found = run_in(
        &ws,
        "parents",
        &[
            "find",
            "/foo1",
            "/test/foo1",
            "/middle",
            "/double",
            "/wildcard",
            "/doublewild",
            "/inputs",
            "/nomatch",
            "-type",
            "f",
        ],
    );
    let expected = [
        "/foo1/foo2/bar",
        "/test/foo1/foo2/bar",
        "/test/foo1/foo2/baz",
        "/middle/c/d/e/bay",
        "/middle/c/d/foo",
        "/double/b/c/d/e/bay",
        "/double/b/c/d/foo",
        "/wildcard/b/c/d/e/bay",
        "/wildcard/b/c/d/foo",
        "/wildcard/b2/c/d/e/bar",
        "/doublewild/c/d/e/bar",
        "/doublewild/c/d/e/bay",
        "/inputs/c/d/e/bar",
        "/inputs/d/e/baz",
        "/inputs/d/e2/baz",
    ];
    let mut got: Vec<&str> = found.lines().collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(got, want);
    // A path without wildcards must exist.
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY --parents test/nonexistent-file /out/\n",
    );
    assert_fails_with(&ws.build(&[]), "test/nonexistent-file");
}

/// BuildKit's testSymlinkDestination: a destination reached through a dangling symlink
/// lands where the link points.
#[test]
fn copy_through_a_dangling_symlink_lands_at_its_target() {
    let ws = Workspace::new();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o755);
    tar.append_link(&mut h, "symlink", "../tmp/symlink-target")
        .unwrap();
    ws.write("t.tar", tar.into_inner().unwrap());
    ws.write("foo", "content0");
    ws.write(
        "Dockerfile",
        "FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n",
    );
    assert_ok(&ws.build(&["-t", "dangling"]));
    let cat = run_in(&ws, "dangling", &["cat", "/tmp/symlink-target/foo"]);
    assert_eq!(cat, "content0");
}

/// `--parents` and `--unpack` are in the step's key: the same sources without them are
/// no cache hit (a hit would give the first build's layout). Each step is first in its
/// stage, so only its own inputs decide its key.
#[test]
fn parents_and_unpack_are_keyed() {
    let tgz = tar_gz(&[("inner.txt", b"in")]);
    let server = RouteServer::start(move |_| (200, Vec::new(), tgz.clone()));
    let url = server.url("/a.tgz");
    let ws = Workspace::new();
    ws.write("a/b/f", "f");
    ws.write(
        "Dockerfile",
        format!("FROM scratch AS dl\nADD {url} /d/\nFROM scratch\nCOPY a/b /out/\nCOPY --from=dl /d /d\n"),
    );
    assert_ok(&ws.build(&["-t", "keyed"]));
    assert_eq!(run_in(&ws, "keyed", &["cat", "/out/f"]), "f");
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch AS dl\nADD --unpack=true {url} /d/\n\
             FROM scratch\nCOPY --parents a/b /out/\nCOPY --from=dl /d /d\n"
        ),
    );
    assert_ok(&ws.build(&["-t", "keyed"]));
    let got = run_in(&ws, "keyed", &["cat", "/out/a/b/f", "/d/inner.txt"]);
    assert_eq!(got, "fin");
}
