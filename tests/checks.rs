//! Build checks as BuildKit runs them: `--check`, warnings, `# check=` directives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::process::Output;

use support::*;

/// `kiln build --check` with `args` on a context holding `dockerfile`.
fn check(ws: &Workspace, dockerfile: &str, args: &[&str]) -> Output {
    ws.write("Dockerfile", dockerfile);
    let mut all = vec!["--check"];
    all.extend_from_slice(args);
    ws.build(&all)
}

fn stdout(out: &Output) -> String {
    text(&out.stdout)
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

const CASING: &str =
    "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n";

#[test]
fn check_reports_as_buildx_and_exits_one_on_warnings() {
    let ws = Workspace::new();
    let clean = check(&ws, "FROM scratch\nCOPY Dockerfile /\n", &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert_eq!(stdout(&clean), "Check complete, no warnings found.\n");

    let one = check(&ws, CASING, &[]);
    assert_eq!(one.status.code(), Some(1));
    let dockerfile = ws.context().join("Dockerfile");
    let expected = format!(
        "Check complete, 1 warning has been found!\n\
         \n\
         WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/\n\
         'as' and 'FROM' keywords' casing do not match\n\
         {}:2\n\
         --------------------\n   \
         1 |     #check=skip=ConsistentInstructionCasing\n   \
         2 | >>> FROM scratch as base\n   \
         3 |     copy Dockerfile .\n   \
         4 |     \n\
         --------------------\n",
        dockerfile.display()
    );
    assert_eq!(stdout(&one), expected);

    let two = check(&ws, "FROM scratch as base\nMAINTAINER me\n", &[]);
    assert_eq!(two.status.code(), Some(1));
    assert!(
        stdout(&two).starts_with("Check complete, 2 warnings have been found!\n"),
        "{}",
        stdout(&two)
    );
}

#[test]
fn check_errors_come_after_the_warnings() {
    let ws = Workspace::new();
    let lint = check(
        &ws,
        &CASING.replace(
            "ConsistentInstructionCasing",
            "ConsistentInstructionCasing;error=true",
        ),
        &[],
    );
    assert_eq!(lint.status.code(), Some(1));
    assert!(
        stdout(&lint).contains("WARNING: FromAsCasing"),
        "{}",
        stdout(&lint)
    );
    assert!(
        stderr(&lint).starts_with("\nERROR: lint violation found for rules: FromAsCasing\n"),
        "{}",
        stderr(&lint)
    );
    let parse = check(
        &ws,
        "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n",
        &[],
    );
    assert_eq!(parse.status.code(), Some(1));
    assert!(
        stdout(&parse).contains("WARNING: StageNameCasing"),
        "{}",
        stdout(&parse)
    );
    assert!(
        stdout(&parse).contains("WARNING: MaintainerDeprecated"),
        "{}",
        stdout(&parse)
    );
    assert!(
        stderr(&parse)
            .contains("ERROR: dockerfile parse error on line 4: unknown instruction: BADCMD"),
        "{}",
        stderr(&parse)
    );
    let target = check(&ws, "FROM scratch AS build\n", &["--target", "bulid"]);
    assert_eq!(target.status.code(), Some(1));
    assert!(
        stderr(&target).contains("target stage \"bulid\" could not be found (did you mean build?)"),
        "{}",
        stderr(&target)
    );
}

#[test]
fn check_covers_the_targets_stages_and_the_dockerignore() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "secret.txt\n");
    ws.write("secret.txt", "x");
    let src = "FROM scratch AS a\nCMD echo a\nFROM scratch AS b\nCOPY secret.txt /\n";
    let all = check(&ws, src, &[]);
    let shown = stdout(&all);
    assert!(shown.contains("WARNING: JSONArgsRecommended"), "{shown}");
    assert!(shown.contains("WARNING: CopyIgnoredFile - https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/\nAttempting to Copy file \"secret.txt\" that is excluded by .dockerignore\n"), "{shown}");
    let b = check(&ws, src, &["--target", "b"]);
    assert!(
        !stdout(&b).contains("JSONArgsRecommended"),
        "{}",
        stdout(&b)
    );
    assert!(stdout(&b).contains("CopyIgnoredFile"));
}

#[test]
fn the_check_build_arg_replaces_the_directive() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "#check=error=true\nFROM scratch as base\ncopy Dockerfile .\n",
    );
    assert_fails_with(&ws.build(&[]), "lint violation found for rules:");
    assert_ok(&ws.build(&["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all"]));
    ws.write(
        "Dockerfile",
        CASING
            .replace("ConsistentInstructionCasing", "all")
            .as_str(),
    );
    assert_ok(&ws.build(&[]));
    let out = ws.build(&[
        "--build-arg",
        "BUILDKIT_DOCKERFILE_CHECK=skip=ConsistentInstructionCasing;error=true",
    ]);
    assert_fails_with(&out, "lint violation found for rules: FromAsCasing");
    assert_fails_with(
        &ws.build(&["--build-arg", "BUILDKIT_DOCKERFILE_CHECK=bogus"]),
        "failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option \"bogus\"",
    );
}

#[test]
fn a_build_warns_for_the_stages_it_builds() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS Other\nCMD echo other\nFROM scratch AS b\nFROM scratch AS b\nCOPY Dockerfile /\n",
    );
    let out = ws.build(&["--target", "b"]);
    assert_ok(&out);
    let err = stderr(&out);
    // Whole-file checks, as BuildKit's: also for a stage not built.
    assert!(
        err.contains("WARNING: StageNameCasing: Stage name 'Other' should be lowercase (line 1)"),
        "{err}"
    );
    assert!(err.contains("WARNING: DuplicateStageName: Duplicate stage name \"b\", stage names should be unique (line 4)"), "{err}");
    // A check of a stage's instructions: only for stages the target needs.
    assert!(!err.contains("JSONArgsRecommended"), "{err}");
    assert_ok(&ws.build(&["--target", "other"]));
    assert!(stderr(&ws.build(&["--target", "other"])).contains("JSONArgsRecommended"));
}

#[test]
fn a_parse_error_follows_the_warnings_found_before_it() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(
        &out,
        "dockerfile parse error on line 4: unknown instruction: BADCMD",
    );
    let err = stderr(&out);
    let warned = err.find("MaintainerDeprecated").unwrap();
    assert!(
        warned < err.find("dockerfile parse error").unwrap(),
        "{err}"
    );
    assert!(err.contains("StageNameCasing"), "{err}");
}

#[test]
fn copying_an_ignored_file_warns_before_it_fails() {
    let ws = Workspace::new();
    ws.write(".dockerignore", "secret.txt\n");
    ws.write("secret.txt", "x");
    ws.write("Dockerfile", "FROM scratch\nCOPY secret.txt /\n");
    let out = ws.build(&[]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("WARNING: CopyIgnoredFile: Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore (line 2)"),
        "{}",
        stderr(&out)
    );
    // With an exception among the rules BuildKit does not guess.
    ws.write(".dockerignore", "secret.txt\n!keep\n");
    assert!(!stderr(&ws.build(&[])).contains("CopyIgnoredFile"));
}

/// `--build-context base=oci-layout://DIR` for a one-image layout `name` with `env`.
fn image(ws: &Workspace, name: &str, arch: &str, env: &[&str]) -> String {
    let dir = ws.path(name);
    write_layout(&dir, arch, serde_json::json!({ "Env": env }));
    format!("base=oci-layout://{}", dir.display())
}

#[test]
fn undefined_vars_are_checked_against_the_base_images_environment() {
    let ws = Workspace::new();
    let base = image(&ws, "go", host_arch(), &["PATH=/usr/bin", "GOPATH=/go"]);
    ws.write(
        "Dockerfile",
        "FROM base\nWORKDIR $GOPATH/src\nENV PATH=$PAHT:/tmp/bin\nLABEL x=$NOPE\n",
    );
    let out = ws.build(&["--build-context", &base]);
    assert_ok(&out);
    let err = stderr(&out);
    assert!(!err.contains("'$GOPATH'"), "{err}");
    assert!(
        err.contains(
            "UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?) (line 3)"
        ),
        "{err}"
    );
    assert!(
        err.contains("UndefinedVar: Usage of undefined variable '$NOPE' (line 4)"),
        "{err}"
    );
}

#[test]
fn a_base_image_of_another_platform_is_reported() {
    let ws = Workspace::new();
    let other = if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    };
    let base = image(&ws, "other", other, &[]);
    ws.write("Dockerfile", "FROM base\nENV foo=bar\n");
    let out = ws.build(&["--build-context", &base]);
    let err = stderr(&out);
    let expected = format!(
        "InvalidBaseImagePlatform: Base image base was pulled with platform \"linux/{other}\", expected \"linux/{}\" for current build (line 1)",
        host_arch()
    );
    assert!(err.contains(&expected), "{err}");
    let same = image(&ws, "same", host_arch(), &[]);
    let out = ws.build(&["--build-context", &same]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("InvalidBaseImagePlatform"));
}

#[test]
fn mistyped_words_get_buildkits_hints() {
    let ws = Workspace::new();
    let cases = [
        (
            "ARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} scratch\n",
            "failed to parse platform linux/${MYARCH}",
            "(did you mean MY_ARCH?)",
        ),
        (
            "FROM scratch\nRUN --mont=type=cache,target=/c true\n",
            "unknown flag: --mont (did you mean mount?)",
            "Dockerfile:2",
        ),
        (
            "FROM scratch\nRUN --mount=type=cahce,target=/c true\n",
            "unsupported mount type \"cahce\" (did you mean cache?)",
            "dockerfile parse error on line 2",
        ),
        (
            "FROM scratch\nRUN --mount=type=cache,targt=/c true\n",
            "unexpected key 'targt' in 'targt=/c' (did you mean target?)",
            "line 2",
        ),
    ];
    for (dockerfile, error, detail) in cases {
        ws.write("Dockerfile", dockerfile);
        let out = ws.build(&[]);
        assert_fails_with(&out, error);
        assert_fails_with(&out, detail);
    }
    ws.write("Dockerfile", "FROM scratch AS build\n");
    assert_fails_with(
        &ws.build(&["--target", "bulid"]),
        "target stage \"bulid\" could not be found (did you mean build?)",
    );
}
