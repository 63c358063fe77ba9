//! BuildKit's own Dockerfile frontend tests (moby/buildkit `frontend/dockerfile/*_test.go`),
//! ported where kiln behaved differently: each test names the BuildKit test it mirrors.
//! The Dockerfiles build on `scratch` (kiln's userland is bundled), so no image is pulled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use support::*;

/// Builds the context's Dockerfile with `args`, exported to a fresh directory.
fn export(ws: &Workspace, name: &str, args: &[&str]) -> std::path::PathBuf {
    let dest = ws.path(name);
    let output = format!("type=local,dest={}", dest.display());
    let mut all = vec!["-o", output.as_str()];
    all.extend_from_slice(args);
    assert_ok(&ws.build(&all));
    dest
}

/// testExportedHistory: BuildKit sorts EXPOSE's words as written, so the history entry
/// and the ports read in that order, whatever order the line gives them in.
#[test]
fn expose_lists_its_ports_sorted_in_the_history() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nEXPOSE 2375 5000 1234/udp\nARG P=\"9000 80\"\nEXPOSE $P\n",
    );
    assert_ok(&ws.build(&["-t", "expose"]));
    let config = config_of(&ws, "expose");
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(history[0], "EXPOSE [1234/udp 2375/tcp 5000/tcp]");
    // One word before expansion: its ports stay in the order the variable gives them.
    assert_eq!(history[2], "EXPOSE [9000/tcp 80/tcp]");
}

/// testDockerfileInvalidCommand: a failed RUN names the process it ran, shell included,
/// as `process "/bin/sh -c invalidcmd" did not complete successfully`.
#[test]
fn a_failed_run_names_the_process_it_ran() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "\tFROM scratch\n\tRUN invalidcmd\n");
    let out = ws.build(&[]);
    assert_fails_with(
        &out,
        "process \"/bin/sh -c invalidcmd\" did not complete successfully: exit code: 127",
    );
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN [\"sh\", \"-c\", \"exit 3\"]\n",
    );
    assert_fails_with(
        &ws.build(&[]),
        "process \"sh -c exit 3\" did not complete successfully: exit code: 3",
    );
}

/// testDockerfileCopyFromArgs and testEmptyStages: the errors say what BuildKit's say.
#[test]
fn copy_from_a_variable_and_a_file_without_stages_fail_as_in_buildkit() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nCOPY --from=$FOO . .\n");
    assert_fails_with(
        &ws.build(&[]),
        "variable expansion is not supported for --from",
    );
    ws.write("Dockerfile", "ARG foo=bar");
    assert_fails_with(&ws.build(&[]), "dockerfile contains no stages to build");
}

/// testSourceDateEpochDockerfileDefaultInvalid: a global default that is not a number.
#[test]
fn an_invalid_source_date_epoch_default_is_named() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n",
    );
    assert_fails_with(&ws.build(&[]), "invalid SOURCE_DATE_EPOCH: not-a-timestamp");
}

/// testSecretRequiredWithoutValue: a required secret nobody gave.
#[test]
fn a_required_secret_that_was_not_given_is_not_found() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\t\tRUN --mount=type=secret,required,id=mysecret foo\n",
    );
    assert_fails_with(&ws.build(&[]), "secret mysecret: not found");
}

/// testCopyParentsMissingDirectory (`nonexistentfile`): the missing source is named.
#[test]
fn a_missing_parents_source_is_not_found() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS base\nRUN mkdir -p /test/a\n\
         FROM scratch\nCOPY --from=base --parents /test/nonexistent-file /out/\n",
    );
    assert_fails_with(&ws.build(&[]), "\"/test/nonexistent-file\": not found");
}

/// testDockerfileAddArchiveThroughAbsoluteSymlink: a hard link in a layer is one file with
/// two names in a local export too.
#[cfg(unix)]
#[test]
fn a_local_export_keeps_hard_links() {
    use std::os::unix::fs::MetadataExt;
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN mkdir -p /run/git && echo ref > /run/git/HEAD \
         && ln /run/git/HEAD /run/git/HEAD.link\n",
    );
    let out = export(&ws, "out", &[]);
    let head = std::fs::metadata(out.join("run/git/HEAD")).unwrap();
    let link = std::fs::metadata(out.join("run/git/HEAD.link")).unwrap();
    assert_eq!(head.ino(), link.ino());
    assert_eq!(
        std::fs::read(out.join("run/git/HEAD.link")).unwrap(),
        b"ref\n"
    );
}

/// testCacheMountModeNoCache: `--no-cache` starts a cache mount anew (with or without
/// `mode`), and what that build leaves in it is there for the next build.
#[test]
fn no_cache_starts_cache_mounts_anew() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS base\nARG FOO=abc\n\
         RUN --mount=type=cache,target=/cache,mode=0773 touch /cache/$FOO && ls /cache > /out\n\
         RUN --mount=type=cache,target=/plain echo $FOO >> /plain/seen && cat /plain/seen > /seen\n\
         FROM scratch\nCOPY --from=base /out /seen /\n",
    );
    let read = |dir: &std::path::Path, name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let out = export(&ws, "first", &["--no-cache"]);
    assert_eq!(
        (read(&out, "out"), read(&out, "seen")),
        ("abc\n".into(), "abc\n".into())
    );
    let out = export(&ws, "second", &["--no-cache", "--build-arg", "FOO=def"]);
    assert_eq!(
        (read(&out, "out"), read(&out, "seen")),
        ("def\n".into(), "def\n".into())
    );
    let out = export(&ws, "third", &["--build-arg", "FOO=ghi"]);
    assert_eq!(read(&out, "out"), "def\nghi\n");
    assert_eq!(read(&out, "seen"), "def\nghi\n");
}

/// testStepNames: the progress numbers the steps BuildKit shows (the FROM of an image,
/// RUN, COPY, ADD, WORKDIR), not ENV, ARG or LABEL, and pads the number as BuildKit does.
#[test]
fn progress_numbers_the_steps_buildkit_shows() {
    let ws = Workspace::new();
    ws.write("base.Dockerfile", "FROM scratch\nRUN echo base > /base\n");
    let base = ws.context().join("base.Dockerfile");
    assert_ok(&ws.build(&["-f", base.to_str().unwrap(), "-t", "stepbase"]));
    ws.write(
        "Dockerfile",
        "FROM stepbase AS base\nENV A=1\nWORKDIR /out\nARG B\nRUN echo \"base\" > base\n\
         LABEL l=v\nFROM scratch\nCOPY --from=base --chmod=0644 /out /out\n",
    );
    let out = ws.build(&[]);
    assert_ok(&out);
    let log = text(&out.stderr);
    for step in [
        "[base 1/3] FROM stepbase",
        "[base 2/3] WORKDIR /out",
        "[base 3/3] RUN echo \"base\" > base",
        "[stage-1 1/1] COPY --from=base --chmod=0644 /out /out",
    ] {
        assert!(log.contains(step), "{step} in {log}");
    }
    assert!(!log.contains("ENV A=1") && !log.contains("LABEL"), "{log}");
    let many: String = (1..=10).map(|i| format!("RUN echo {i}\n")).collect();
    ws.write("Dockerfile", format!("FROM scratch\n{many}"));
    let out = ws.build(&[]);
    assert_ok(&out);
    let log = text(&out.stderr);
    assert!(log.contains("[stage-0  1/10] RUN echo 1\n"), "{log}");
    assert!(log.contains("[stage-0 10/10] RUN echo 10\n"), "{log}");
}

/// testDockerfileCheckHostname: `BUILDKIT_SANDBOX_HOSTNAME` names the host RUN steps see,
/// in `/etc/hosts` and to `hostname`; a name that is not one is refused.
#[test]
fn the_sandbox_hostname_build_arg_names_the_steps_host() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN mkdir /etc\n\
         RUN cat /etc/hosts | grep foo\nRUN echo $(hostname) | grep foo\n",
    );
    assert_ok(&ws.build(&["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=foo"]));
    // Without it, the default name: the same steps fail.
    assert_fails_with(&ws.build(&[]), "cat /etc/hosts | grep foo");
    let out = ws.build(&["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=a b"]);
    assert_fails_with(&out, "BUILDKIT_SANDBOX_HOSTNAME=\"a b\" is not a host name");
}

/// testGlobalArgErrors: a global ARG whose `${FOO:?…}` fails names its message, and kiln
/// names its line too; with the build arg given, the build goes through.
#[test]
fn a_failing_global_arg_default_names_its_line() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "\nARG FOO=${FOO:?\"custom error\"}\nFROM scratch\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "Dockerfile:2: FOO: custom error");
    // Said once: the error's cause is not appended after it again.
    assert_eq!(
        text(&out.stderr).matches("custom error").count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert_ok(&ws.build(&["--build-arg", "FOO=bar"]));
}

/// testNoCache: `--no-cache` reruns every stage; `--no-cache-filter s1` (BuildKit's
/// `no-cache=s1`) only the steps of that stage.
#[test]
fn no_cache_filter_reruns_only_the_named_stage() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS s0\nRUN head -c 100 /dev/urandom | sha256sum > unique\n\
         FROM scratch AS s1\nRUN head -c 100 /dev/urandom | sha256sum > unique2\n\
         FROM scratch\nCOPY --from=s0 unique /\nCOPY --from=s1 unique2 /\n",
    );
    let read = |dir: &std::path::Path, name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let first = export(&ws, "first", &[]);
    let second = export(&ws, "second", &["--no-cache"]);
    assert_ne!(read(&first, "unique"), read(&second, "unique"));
    assert_ne!(read(&first, "unique2"), read(&second, "unique2"));
    let third = export(&ws, "third", &["--no-cache-filter", "S1"]);
    assert_eq!(read(&second, "unique"), read(&third, "unique"));
    assert_ne!(read(&second, "unique2"), read(&third, "unique2"));
}
