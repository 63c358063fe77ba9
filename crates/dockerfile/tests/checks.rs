//! Every one of BuildKit's 22 build checks fires on a Dockerfile that breaks it and stays
//! quiet on one that does not; the table must cover every rule of the registry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::BTreeSet;

use kiln_dockerfile::args::Platform;
use kiln_dockerfile::lint::{self, IgnoreRules};
use kiln_dockerfile::{Rule, Warning, parse};

/// The rule names of BuildKit's linter registry (`frontend/dockerfile/linter/ruleset.go`).
const BUILDKIT_RULES: [&str; 22] = [
    "StageNameCasing",
    "FromAsCasing",
    "NoEmptyContinuation",
    "ConsistentInstructionCasing",
    "DuplicateStageName",
    "ReservedStageName",
    "JSONArgsRecommended",
    "MaintainerDeprecated",
    "UndefinedArgInFrom",
    "WorkdirRelativePath",
    "UndefinedVar",
    "MultipleInstructionsDisallowed",
    "LegacyKeyValueFormat",
    "InvalidBaseImagePlatform",
    "RedundantTargetPlatform",
    "SecretsUsedInArgOrEnv",
    "InvalidDefaultArgInFrom",
    "FromPlatformFlagConstDisallowed",
    "CopyIgnoredFile",
    "InvalidDefinitionDescription",
    "ExposeProtoCasing",
    "ExposeInvalidFormat",
];

/// A way to run the checks: a Dockerfile, or a check the engine runs with build knowledge.
#[derive(Clone, Copy)]
enum Input {
    Src(&'static str),
    Run(fn() -> Vec<Warning>),
}

use Input::{Run, Src};

/// (rule, input that breaks it, input that does not).
const CASES: &[(Rule, Input, Input)] = &[
    (
        Rule::StageNameCasing,
        Src("FROM a AS Build\n"),
        Src("FROM a AS build\n"),
    ),
    (
        Rule::FromAsCasing,
        Src("FROM a as b\n"),
        Src("FROM a AS b\nfrom c as d\n"),
    ),
    (
        Rule::NoEmptyContinuation,
        Src("FROM a\nRUN a \\\n\n b\n"),
        Src("FROM a\nRUN a \\\n b\n"),
    ),
    (
        Rule::ConsistentInstructionCasing,
        Src("FROM a\nrun x\nRUN y\n"),
        Src("from a\nrun x\n"),
    ),
    (
        Rule::DuplicateStageName,
        Src("FROM a AS x\nFROM b AS x\n"),
        Src("FROM a AS x\nFROM b AS y\n"),
    ),
    (
        Rule::ReservedStageName,
        Src("FROM a AS context\n"),
        Src("FROM scratch\nFROM scratch AS a\n"),
    ),
    (
        Rule::JsonArgsRecommended,
        Src("FROM a\nCMD echo hi\n"),
        Src("FROM a\nCMD [\"echo\", \"hi\"]\n"),
    ),
    (
        Rule::MaintainerDeprecated,
        Src("FROM a\nMAINTAINER me\n"),
        Src("FROM a\nLABEL org.opencontainers.image.authors=me\n"),
    ),
    (
        Rule::UndefinedArgInFrom,
        Src("FROM alpine:$VERSION\n"),
        Src("ARG VERSION=3\nFROM alpine:$VERSION\n"),
    ),
    (
        Rule::WorkdirRelativePath,
        Src("FROM a\nWORKDIR app\n"),
        Src("FROM a\nWORKDIR /app\nWORKDIR sub\n"),
    ),
    (
        Rule::UndefinedVar,
        Src("FROM scratch\nCOPY $foo .\nARG foo=bar\n"),
        Src("FROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n"),
    ),
    (
        Rule::MultipleInstructionsDisallowed,
        Src("FROM a\nCMD [\"a\"]\nCMD [\"b\"]\n"),
        Src("FROM a\nCMD [\"a\"]\nFROM b\nCMD [\"b\"]\n"),
    ),
    (
        Rule::LegacyKeyValueFormat,
        Src("FROM a\nENV A b\n"),
        Src("FROM a\nENV A=b\n"),
    ),
    (
        Rule::InvalidBaseImagePlatform,
        Run(|| platform_check("linux/arm64")),
        Run(|| platform_check("linux/amd64")),
    ),
    (
        Rule::RedundantTargetPlatform,
        Src("FROM --platform=$TARGETPLATFORM a\n"),
        Src("FROM --platform=$BUILDPLATFORM a\n"),
    ),
    (
        Rule::SecretsUsedInArgOrEnv,
        Src("FROM a\nARG API_KEY\n"),
        Src("FROM a\nARG PUBLIC_KEY\nENV password_file=x\nARG AUTH_MODULE_VERSION\n"),
    ),
    (
        Rule::InvalidDefaultArgInFrom,
        Src("ARG TAG\nFROM alpine:$TAG\n"),
        Src("ARG TAG=3.19\nFROM alpine:$TAG\n"),
    ),
    (
        Rule::FromPlatformFlagConstDisallowed,
        Src("FROM --platform=linux/amd64 a AS build\n"),
        Src("FROM --platform=linux/amd64 a AS build-amd64\n"),
    ),
    (
        Rule::CopyIgnoredFile,
        Run(|| ignored_check("FROM scratch\nCOPY Dockerfile .\nADD Dockerfile /w\n")),
        Run(|| ignored_check("FROM scratch\nCOPY src .\nCOPY --from=a Dockerfile .\n")),
    ),
    (
        Rule::InvalidDefinitionDescription,
        Src(
            "# check=experimental=InvalidDefinitionDescription\n# bar is the bar\nARG foo=bar\n# BasE the base\nFROM scratch AS base\n",
        ),
        Src(
            "# check=experimental=InvalidDefinitionDescription\n# foo is the foo\nARG foo=bar\n\n#\nARG bit=bat\n# base the base\nFROM scratch AS base\n",
        ),
    ),
    (
        Rule::ExposeProtoCasing,
        Src("FROM a\nEXPOSE 80/TcP\n"),
        Src("FROM a\nEXPOSE 80/tcp 81\n"),
    ),
    (
        Rule::ExposeInvalidFormat,
        Src("FROM a\nEXPOSE 0.0.0.0:80:80\n"),
        Src("FROM a\nEXPOSE 80\n"),
    ),
];

/// `.dockerignore` rules `Dockerfile` (no exceptions), as the engine would answer.
struct IgnoreDockerfile;

impl IgnoreRules for IgnoreDockerfile {
    fn has_exceptions(&self) -> bool {
        false
    }
    fn excludes_root(&self) -> bool {
        false
    }
    fn is_excluded(&self, rel: &str) -> bool {
        rel == "Dockerfile"
    }
}

fn ignored_check(src: &str) -> Vec<Warning> {
    let df = parse(src, "Dockerfile").unwrap();
    let all: Vec<usize> = (0..df.stages.len()).collect();
    lint::copy_ignored_files(&df, &all, &IgnoreDockerfile)
}

fn platform_check(actual: &str) -> Vec<Warning> {
    let df = parse("FROM busybox\n", "Dockerfile").unwrap();
    let expected = Platform::parse("linux/amd64").unwrap();
    let actual = Platform::parse(actual).unwrap();
    lint::base_image_platform(&df, 0, "busybox", &expected, &actual)
}

fn warnings(input: Input) -> Vec<Warning> {
    match input {
        Src(src) => parse(src, "Dockerfile").unwrap().warnings,
        Run(check) => check(),
    }
}

#[test]
fn every_check_fires_and_stays_quiet() {
    for &(rule, breaks, keeps) in CASES {
        let fired = warnings(breaks);
        assert!(
            fired.iter().any(|w| w.rule == rule),
            "{} did not fire: {fired:?}",
            rule.name()
        );
        let quiet = warnings(keeps);
        assert!(
            !quiet.iter().any(|w| w.rule == rule),
            "{} fired on the negative case: {quiet:?}",
            rule.name()
        );
    }
}

#[test]
fn every_buildkit_rule_is_implemented_and_tested() {
    let buildkit: BTreeSet<&str> = BUILDKIT_RULES.into_iter().collect();
    let registry: BTreeSet<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        registry, buildkit,
        "kiln's rule registry against BuildKit's"
    );
    let tested: BTreeSet<&str> = CASES.iter().map(|c| c.0.name()).collect();
    let missing: Vec<&&str> = registry.difference(&tested).collect();
    assert!(missing.is_empty(), "rules without a case: {missing:?}");
}

#[test]
fn every_rule_has_buildkits_description_and_link() {
    for rule in Rule::ALL {
        assert!(!rule.description().is_empty(), "{}", rule.name());
        let url = rule.url();
        // BuildKit's registry gives InvalidBaseImagePlatform no documentation page.
        if rule == Rule::InvalidBaseImagePlatform {
            assert_eq!(url, None);
        } else {
            let url = url.unwrap();
            assert!(
                url.starts_with("https://docs.docker.com/go/dockerfile/rule/"),
                "{url}"
            );
        }
    }
    assert_eq!(
        Rule::CopyIgnoredFile.url().as_deref(),
        Some("https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/")
    );
}

/// (rule, line, detail) of each warning, as BuildKit's check tests state them.
fn found(src: &str) -> Vec<(&'static str, usize, String)> {
    let df = parse(src, "Dockerfile").unwrap();
    shown(&df.warnings)
}

fn shown(w: &[Warning]) -> Vec<(&'static str, usize, String)> {
    w.iter()
        .map(|w| (w.rule.name(), w.span.start_line, w.message.clone()))
        .collect()
}

fn one(rule: &'static str, line: usize, detail: &str) -> Vec<(&'static str, usize, String)> {
    vec![(rule, line, detail.to_string())]
}

#[test]
fn buildkit_messages_and_lines() {
    assert_eq!(
        found("#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n"),
        one(
            "FromAsCasing",
            2,
            "'as' and 'FROM' keywords' casing do not match"
        )
    );
    assert_eq!(
        found(
            "\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n"
        ),
        one("NoEmptyContinuation", 6, "Empty continuation line")
    );
    assert_eq!(
        found("\nFROM scratch AS b\nFROM scratch AS b\n"),
        one(
            "DuplicateStageName",
            3,
            "Duplicate stage name \"b\", stage names should be unique"
        )
    );
    assert_eq!(
        found("\nFROM scratch AS scratch\nFROM scratch AS context\n"),
        vec![
            (
                "ReservedStageName",
                2,
                "Stage name should not use the same name as reserved stage \"scratch\"".into()
            ),
            (
                "ReservedStageName",
                3,
                "Stage name should not use the same name as reserved stage \"context\"".into()
            ),
        ]
    );
    assert_eq!(
        found("\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n"),
        one(
            "UndefinedArgInFrom",
            3,
            "FROM argument 'version' is not declared"
        )
    );
    assert_eq!(
        found("\nFROM --platform=$BULIDPLATFORM scratch\n"),
        one(
            "UndefinedArgInFrom",
            2,
            "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"
        )
    );
    assert_eq!(
        found(
            "\nFROM scratch\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nCOPY $DIR_ASSET .\n"
        ),
        one(
            "UndefinedVar",
            5,
            "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"
        )
    );
}

#[test]
fn check_comments_apply_to_the_next_instruction() {
    // BuildKit's testSecretsUsedInArgOrEnv tail: a `# check=` comment is local.
    let src = "FROM scratch\n\
               # check=skip=SecretsUsedInArgOrEnv // allow secret in environment\n\
               ENV password=bar\n\
               # check=skip=all // is local to only this instruction\n\
               ARG alternate_password\n\
               ARG token\n";
    assert_eq!(
        found(src),
        one(
            "SecretsUsedInArgOrEnv",
            6,
            "Do not use ARG or ENV instructions for sensitive data (ARG \"token\")"
        )
    );
    for skipped in [
        "FROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n",
        "FROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n",
        "FROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n",
        "FROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n",
        // Blank lines do not end the comment block.
        "FROM scratch\n# check=skip=LegacyKeyValueFormat\n\nLABEL key value\n",
    ] {
        assert_eq!(found(skipped), vec![], "{skipped}");
    }
    // A comment's check never affects other instructions, nor whole-file checks.
    assert_eq!(
        found("FROM scratch\n# check=skip=all\nENV a b\nENV c d\n").len(),
        1
    );
    assert_eq!(
        found("FROM a AS x\n# check=skip=DuplicateStageName\nFROM b AS x\n").len(),
        1
    );
    // A directive is not a comment of the first instruction.
    assert_eq!(found("# check=skip=all\nFROM a AS B\n"), vec![]);
}

#[test]
fn definition_descriptions_are_experimental() {
    let src = "# check=experimental=InvalidDefinitionDescription\n\
               # bar this is the bar\nARG foo=bar\n\
               # BasE this is the BasE image\nFROM scratch AS base\n\
               # definitely a bad comment\nARG version=latest\n\
               # definitely a bad comment\nARG foo=baz bar=qux baz=quux\n";
    let detail = |what: &str, name: &str| {
        format!("Comment for {what} should follow the format: `# {name} <description>`")
    };
    assert_eq!(
        found(src),
        vec![
            ("InvalidDefinitionDescription", 3, detail("ARG", "foo")),
            ("InvalidDefinitionDescription", 5, detail("FROM", "base")),
            ("InvalidDefinitionDescription", 7, detail("ARG", "version")),
            (
                "InvalidDefinitionDescription",
                9,
                detail("ARG", "<arg_key>")
            ),
        ]
    );
    // Off unless enabled, even though other rules run; `skip=all` leaves it on.
    assert_eq!(found(&src.replacen("experimental=", "skip=", 1)), vec![]);
    let both = src.replacen("experimental=", "skip=all;experimental=", 1);
    assert_eq!(found(&both).len(), 4);
}

#[test]
fn warnings_before_a_parse_error() {
    let e = parse(
        "\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n",
        "Dockerfile",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string().lines().next().unwrap(),
        "dockerfile parse error on line 4: unknown instruction: BADCMD"
    );
    assert_eq!(
        shown(&e.warnings),
        vec![
            (
                "StageNameCasing",
                2,
                "Stage name 'BadStageName' should be lowercase".into()
            ),
            (
                "MaintainerDeprecated",
                3,
                "Maintainer instruction is deprecated in favor of using label".into()
            ),
        ]
    );
    // The file's configuration applies to them.
    let e = parse(
        "# check=skip=all\nFROM scratch AS Bad\nBADCMD\n",
        "Dockerfile",
    )
    .unwrap_err();
    assert!(e.warnings.is_empty());
}

#[test]
fn copy_ignored_file_messages() {
    let w = ignored_check("\nFROM scratch\nCOPY Dockerfile .\nADD ./Dockerfile /windy\n");
    assert_eq!(
        shown(&w),
        vec![
            (
                "CopyIgnoredFile",
                3,
                "Attempting to Copy file \"Dockerfile\" that is excluded by .dockerignore".into()
            ),
            (
                "CopyIgnoredFile",
                4,
                "Attempting to Add file \"Dockerfile\" that is excluded by .dockerignore".into()
            ),
        ]
    );
    let skipped = "# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\n";
    assert!(ignored_check(skipped).is_empty());

    /// `*` (root excluded) or `**` + `!Dockerfile` (an exception: BuildKit skips the check).
    struct Rules {
        exceptions: bool,
    }
    impl IgnoreRules for Rules {
        fn has_exceptions(&self) -> bool {
            self.exceptions
        }
        fn excludes_root(&self) -> bool {
            true
        }
        fn is_excluded(&self, _: &str) -> bool {
            true
        }
    }
    let df = parse("FROM scratch\nCOPY . .\n", "Dockerfile").unwrap();
    let root = lint::copy_ignored_files(&df, &[0], &Rules { exceptions: false });
    assert_eq!(
        shown(&root),
        one(
            "CopyIgnoredFile",
            2,
            "Attempting to Copy file \".\" that is excluded by .dockerignore"
        )
    );
    assert!(lint::copy_ignored_files(&df, &[0], &Rules { exceptions: true }).is_empty());
}

#[test]
fn base_image_platform_message() {
    assert_eq!(
        shown(&platform_check("linux/arm64")),
        one(
            "InvalidBaseImagePlatform",
            1,
            "Base image busybox was pulled with platform \"linux/arm64\", expected \"linux/amd64\" for current build"
        )
    );
}
