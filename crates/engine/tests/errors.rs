//! Errors as types, in-process through `kiln_engine::build`: each way a build fails ends
//! in its own variant (an embedder can match on the cause), its text still says where and
//! what to do, it never reads "internal error", and a secret value in it is redacted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kiln_engine::ContextError;
use kiln_engine::progress::{Event, Recorder};
use kiln_engine::secrets::{SecretSpec, Secrets};
use kiln_engine::{
    BuildError, BuildRequest, ImageError, LeakPolicy, NamedContext, Network, StepError, StepLimits,
};

/// A build context and cache in one temp directory.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Self {
        share_module_cache();
        let ws = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(ws.ctx()).unwrap();
        ws
    }

    fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    fn request(&self, dockerfile: &str) -> BuildRequest {
        std::fs::write(self.ctx().join("Dockerfile"), dockerfile).unwrap();
        BuildRequest {
            context_dir: self.ctx(),
            dockerfile: self.ctx().join("Dockerfile"),
            target: None,
            build_args: Vec::new(),
            secrets: Secrets::default(),
            network: Network {
                enabled: false,
                allowed_hosts: Vec::new(),
            },
            no_cache: false,
            no_cache_filter: Vec::new(),
            platform: kiln_oci::Platform::host_linux(),
            labels: Vec::new(),
            epoch: 0,
            leak_policy: LeakPolicy::Error,
            cache_dir: self.dir.path().join("cache"),
            image_store: Some(self.dir.path().join("store")),
            compression: kiln_oci::Compression::Gzip,
            build_contexts: Default::default(),
            step_limits: StepLimits::default(),
            cancel: Default::default(),
        }
    }
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

/// Builds `req`, which must fail; returns the error, its text and the progress events.
fn fail(req: BuildRequest) -> (BuildError, String, Vec<Event>) {
    let recorder = Arc::new(Recorder::default());
    let err = match kiln_engine::build(req, recorder.clone()) {
        Ok(_) => panic!("the build succeeded"),
        Err(e) => e,
    };
    let text = err.to_string();
    assert!(!text.contains("internal error"), "{text}");
    (err, text, recorder.events())
}

/// The cause of a failed step, checking the error names the Dockerfile line.
fn step_cause(err: BuildError, line: usize) -> StepError {
    match err {
        BuildError::Step {
            line: l, source, ..
        } => {
            assert_eq!(l, line);
            *source
        }
        other => panic!("not a step error: {other:?}"),
    }
}

#[test]
fn a_missing_context_file_is_a_context_error_naming_it() {
    let ws = Ws::new();
    let (err, text, _) = fail(ws.request("FROM scratch\nCOPY nope.txt /x\n"));
    assert!(
        text.contains("Dockerfile:2: source \"nope.txt\" not found"),
        "{text}"
    );
    assert!(text.contains("2 | COPY nope.txt /x"), "{text}");
    assert!(matches!(
        step_cause(err, 2),
        StepError::Context(ContextError::NotFound(p)) if p == "nope.txt"
    ));
}

#[test]
fn a_bad_base_image_is_an_image_error() {
    let ws = Ws::new();
    let mut req = ws.request("FROM base\nRUN true\n");
    let missing = ws.dir.path().join("no-such-layout");
    req.build_contexts.insert(
        "base".into(),
        NamedContext::OciLayout {
            dir: missing,
            tag: None,
        },
    );
    let (err, text, _) = fail(req);
    assert!(text.starts_with("base image base: "), "{text}");
    assert!(
        matches!(&err, BuildError::Image(ImageError::Oci { name, .. }) if name == "base"),
        "{err:?}"
    );
    // A Dockerfile may not name a host layout itself: its own variant, saying what to do.
    let (err, text, _) = fail(ws.request("FROM oci-layout:///etc\n"));
    assert!(matches!(
        err,
        BuildError::Image(ImageError::HostLayout { .. })
    ));
    assert!(
        text.contains("--build-context NAME=oci-layout://"),
        "{text}"
    );
}

#[test]
fn a_failing_command_is_an_exit_with_its_output_tail() {
    let ws = Ws::new();
    let (err, text, events) =
        fail(ws.request("FROM scratch\nRUN echo said-before-failing; exit 3\n"));
    assert!(
        text.contains(
            "Dockerfile:2: process \"/bin/sh -c echo said-before-failing; exit 3\" did not complete successfully: exit code: 3"
        ),
        "{text}"
    );
    assert!(
        text.contains("last output:\n  said-before-failing"),
        "{text}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::StepFailed { error, .. }
        if error.contains("exit code: 3")))
    );
    match step_cause(err, 2) {
        StepError::Exit {
            code, output_tail, ..
        } => {
            assert_eq!(code, 3);
            assert_eq!(output_tail, ["said-before-failing"]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_script_that_does_not_parse_is_a_shell_error() {
    let ws = Ws::new();
    let (err, _, _) = fail(ws.request("FROM scratch\nRUN if then fi\n"));
    assert!(matches!(
        step_cause(err, 2),
        StepError::Shell(kiln_shell::ShellError::Syntax(_))
    ));
}

#[test]
fn a_step_past_its_timeout_is_a_timeout_naming_the_flag() {
    let ws = Ws::new();
    let mut req = ws.request("FROM scratch\nRUN while :; do :; done\n");
    req.step_limits.timeout = Some(Duration::from_millis(1500));
    let (err, text, _) = fail(req);
    assert!(
        text.contains("step timeout of 1s500ms (kiln build --step-timeout 1s500ms)"),
        "{text}"
    );
    assert!(matches!(
        step_cause(err, 2),
        StepError::Timeout { limit } if limit == Duration::from_millis(1500)
    ));
}

#[test]
fn a_full_disk_quota_is_a_disk_quota_error_wherever_it_is_hit() {
    // Refused while the step writes, and refused when its sparse file would be stored.
    for script in ["head -c 300000 /dev/zero > /f", "truncate -s 300000 /f"] {
        let ws = Ws::new();
        let mut req = ws.request(&format!("FROM scratch\nRUN {script}\n"));
        req.step_limits.disk_bytes = Some(100_000);
        let (err, text, _) = fail(req);
        assert!(
            text.contains("disk quota of 100000 bytes"),
            "{script}: {text}"
        );
        assert!(text.contains("--disk-quota"), "{script}: {text}");
        let cause = step_cause(err, 2);
        assert!(
            matches!(cause, StepError::DiskQuota { limit: 100_000 }),
            "{script}: {cause:?}"
        );
    }
}

#[test]
fn an_unsupported_feature_says_what_to_do_instead() {
    let ws = Ws::new();
    let (err, text, _) =
        fail(ws.request("FROM scratch\nRUN --mount=type=ssh,required=true true\n"));
    assert!(
        text.contains("RUN --mount=type=ssh is not supported by kiln: kiln has no ssh agent"),
        "{text}"
    );
    assert!(matches!(
        step_cause(err, 2),
        StepError::Unsupported { feature, .. } if feature == "RUN --mount=type=ssh"
    ));
}

#[test]
fn a_typed_error_holding_a_secret_value_comes_out_redacted() {
    const VALUE: &str = "s3cr3t-token-value";
    let ws = Ws::new();
    let mut req = ws.request(&format!(
        "FROM scratch\nRUN --mount=type=secret,id=tok true\nCOPY {VALUE} /x\n"
    ));
    let spec = SecretSpec::parse("id=tok,env=TOKEN_VAR").unwrap();
    req.secrets = Secrets::load(&[spec], &|_: &str| Some(VALUE.to_owned())).unwrap();
    let (err, text, events) = fail(req);
    assert!(!text.contains(VALUE), "{text}");
    assert!(text.contains("source \"****\" not found"), "{text}");
    assert!(!format!("{err:?}").contains(VALUE), "{err:?}");
    for e in events {
        assert!(!format!("{e:?}").contains(VALUE), "{e:?}");
    }
}

#[test]
fn dockerfile_errors_before_any_step_are_typed_too() {
    let ws = Ws::new();
    let (err, text, _) = fail(ws.request("FROM scratch\nNOTANINSTRUCTION x\n"));
    assert!(matches!(err, BuildError::Parse(_)), "{err:?}");
    assert!(text.contains(":2:"), "{text}");
    let mut req = ws.request("FROM scratch AS one\nRUN true\n");
    req.target = Some("two".into());
    let (err, text, _) = fail(req);
    assert!(matches!(err, BuildError::Graph { .. }), "{err:?}");
    assert!(text.contains("two"), "{text}");
    let mut req = ws.request("FROM scratch\n");
    req.dockerfile = ws.ctx().join("Nope.Dockerfile");
    let (err, text, _) = fail(req);
    assert!(matches!(err, BuildError::ReadDockerfile { .. }), "{err:?}");
    assert!(text.starts_with("cannot read Dockerfile "), "{text}");
}

#[test]
fn instruction_level_causes_have_their_variants() {
    let ws = Ws::new();
    std::fs::write(ws.ctx().join("f"), "x").unwrap();
    let (err, text, _) = fail(ws.request("FROM scratch\nENV A=${B:?unset}\n"));
    assert!(text.contains("B: unset"), "{text}");
    assert!(matches!(step_cause(err, 2), StepError::Expand(_)));
    let (err, text, _) = fail(ws.request("FROM scratch\nCOPY f /f\nWORKDIR /f/sub\n"));
    assert!(text.contains("WORKDIR /f/sub: "), "{text}");
    assert!(matches!(step_cause(err, 3), StepError::Workdir { .. }));
    let (err, text, _) = fail(ws.request(
        "FROM scratch\nARG T\nRUN --mount=type=secret,id=s,target=${T:?no target} true\n",
    ));
    assert!(text.contains("invalid --mount: "), "{text}");
    assert!(matches!(step_cause(err, 3), StepError::Mount(_)));
}

#[test]
fn a_failure_in_a_stage_another_waits_on_comes_out_typed() {
    let ws = Ws::new();
    let (err, text, _) = fail(
        ws.request("FROM scratch AS dep\nRUN exit 4\n\nFROM scratch\nCOPY --from=dep /x /x\n"),
    );
    assert!(text.contains("Dockerfile:2: "), "{text}");
    assert!(matches!(
        step_cause(err, 2),
        StepError::Exit { code: 4, .. }
    ));
}
