//! Cache keys, in-process through `kiln_engine::build`: a changed input must make its step
//! miss (and the steps after it), an unchanged or ignored one must hit. The stale-cache
//! reproductions of issue 13 (bind mounts of stages and images keyed only by name) come
//! first, then the table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_engine::progress::{Event, Recorder};
use kiln_engine::secrets::{SecretSpec, Secrets};
use kiln_engine::{BuildRequest, Built, LeakPolicy, NamedContext, Network};

/// A build context, cache and image store in one temp directory; every build of one
/// workspace shares the cache, as successive `kiln build`s on one machine do.
struct Ws {
    dir: tempfile::TempDir,
    /// A second workspace whose cache holds the images a test makes (`Change::Image`).
    side: std::sync::OnceLock<Box<Ws>>,
}

/// What one build is given besides the workspace's files.
#[derive(Default, Clone)]
struct Opts {
    build_args: Vec<(String, String)>,
    /// `(id, value)`, given as `--secret id=ID,env=…`.
    secrets: Vec<(String, String)>,
    network_off: bool,
    allowed_hosts: Vec<String>,
    no_cache: bool,
    platform: Option<String>,
    epoch: i64,
    contexts: BTreeMap<String, NamedContext>,
    target: Option<String>,
}

/// What a build did: each step's outcome by its progress name (`stage 2/3`).
struct Outcome {
    built: Built,
    events: Vec<Event>,
}

impl Ws {
    fn new() -> Self {
        let ws = Self {
            dir: tempfile::tempdir().unwrap(),
            side: std::sync::OnceLock::new(),
        };
        std::fs::create_dir_all(ws.ctx()).unwrap();
        ws
    }

    fn ctx(&self) -> PathBuf {
        self.dir.path().join("ctx")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// Writes `rel` under the workspace (`ctx/…` is the build context).
    fn write(&self, rel: &str, body: &str) {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }

    fn build(&self, dockerfile: &str, opts: &Opts) -> Outcome {
        self.try_build(dockerfile, opts)
            .unwrap_or_else(|e| panic!("build failed: {e}\n{dockerfile}"))
    }

    fn try_build(&self, dockerfile: &str, opts: &Opts) -> Result<Outcome, String> {
        self.run(dockerfile, self.request(opts))
    }

    /// Builds `dockerfile` (written into the context) as `req` says.
    fn run(&self, dockerfile: &str, req: BuildRequest) -> Result<Outcome, String> {
        self.write("ctx/Dockerfile", dockerfile);
        let recorder = Arc::new(Recorder::default());
        let built = kiln_engine::build(req, recorder.clone()).map_err(|e| e.to_string())?;
        Ok(Outcome {
            built,
            events: recorder.events(),
        })
    }

    fn request(&self, opts: &Opts) -> BuildRequest {
        let platform = match &opts.platform {
            Some(p) => p.parse().unwrap(),
            None => kiln_oci::Platform::host_linux(),
        };
        BuildRequest {
            context_dir: self.ctx(),
            dockerfile: self.ctx().join("Dockerfile"),
            target: opts.target.clone(),
            build_args: opts.build_args.clone(),
            secrets: secrets(&opts.secrets),
            network: Network {
                enabled: !opts.network_off,
                allowed_hosts: opts.allowed_hosts.clone(),
            },
            no_cache: opts.no_cache,
            no_cache_filter: Vec::new(),
            platform,
            labels: Vec::new(),
            epoch: opts.epoch,
            leak_policy: LeakPolicy::Error,
            cache_dir: self.cache(),
            image_store: Some(self.dir.path().join("store")),
            compression: kiln_oci::Compression::Gzip,
            build_contexts: opts.contexts.clone(),
            step_limits: kiln_engine::StepLimits::default(),
            cancel: Default::default(),
        }
    }
}

fn secrets(given: &[(String, String)]) -> Secrets {
    let specs: Vec<SecretSpec> = given
        .iter()
        .map(|(id, _)| SecretSpec::parse(&format!("id={id},env=V_{id}")).unwrap())
        .collect();
    let lookup = |var: &str| {
        given
            .iter()
            .find(|(id, _)| var == format!("V_{id}"))
            .map(|(_, v)| v.clone())
    };
    Secrets::load(&specs, &lookup).unwrap()
}

/// Compiled wasm is shared by every test of this binary (it holds no image data), so the
/// bundled tools are compiled once, not once per workspace.
fn share_module_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kiln-modules");
        // SAFETY: set once, before any build of this process reads the environment.
        unsafe { std::env::set_var("KILN_MODULE_CACHE", dir) };
    });
}

impl Outcome {
    /// Whether the step named `stage index/total` (as progress shows it) was a cache hit;
    /// panics if it neither hit nor ran.
    fn cached(&self, step: &str) -> bool {
        for e in &self.events {
            match e {
                Event::StepCached { step: s, .. } if name_of(s) == step => return true,
                Event::StepDone { step: s, .. } if name_of(s) == step => return false,
                _ => {}
            }
        }
        panic!("no step {step} in {:?}", self.names())
    }

    fn names(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { step, .. } => Some(name_of(step)),
                _ => None,
            })
            .collect()
    }

    /// The content of `path` in the built image.
    fn file(&mut self, path: &str) -> String {
        let snap = self.built.snapshot().unwrap();
        let mut tree = kiln_fs::Tree::from_snapshot(&snap);
        let root = tree.root();
        let ino = tree
            .resolve(root, path.as_bytes(), kiln_fs::Follow::Yes)
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut out = String::new();
        std::io::Read::read_to_string(&mut tree.open_read(ino).unwrap(), &mut out).unwrap();
        out
    }
}

fn name_of(step: &kiln_engine::progress::StepId) -> String {
    format!("{} {}/{}", step.stage, step.index, step.total)
}

fn ws() -> Ws {
    share_module_cache();
    Ws::new()
}

// ---- the stale-cache reproductions (issue 13) ----

#[test]
fn a_context_bind_reruns_when_the_file_changes() {
    let ws = ws();
    let df = "FROM scratch\nRUN --mount=type=bind,source=.,target=/ctx cat /ctx/f > /out\n";
    ws.write("ctx/f", "one");
    assert_eq!(ws.build(df, &Opts::default()).file("/out"), "one");
    ws.write("ctx/f", "two");
    let mut second = ws.build(df, &Opts::default());
    assert!(!second.cached("stage-0 1/1"));
    assert_eq!(second.file("/out"), "two");
}

const STAGE_BIND: &str = "FROM scratch AS src\nCOPY f /f\n\
    FROM scratch\nRUN --mount=type=bind,from=src,target=/s cat /s/f > /out\n";

#[test]
fn a_stage_bind_reruns_when_the_stage_changes() {
    let ws = ws();
    ws.write("ctx/f", "one");
    assert_eq!(ws.build(STAGE_BIND, &Opts::default()).file("/out"), "one");
    ws.write("ctx/f", "two");
    let mut second = ws.build(STAGE_BIND, &Opts::default());
    assert!(!second.cached("stage-1 1/1"));
    assert_eq!(second.file("/out"), "two");
}

#[test]
fn two_branches_sharing_a_cache_do_not_get_each_others_output() {
    // Two checkouts of one project (other content, same Dockerfile) with one cache.
    let (a, b) = (ws(), ws());
    a.write("ctx/f", "branch a");
    b.write("ctx/f", "branch b");
    let shared_cache = a.cache();
    let build = |ctx: &Ws| {
        let mut req = ctx.request(&Opts::default());
        req.cache_dir = shared_cache.clone();
        ctx.run(STAGE_BIND, req).unwrap()
    };
    assert_eq!(build(&a).file("/out"), "branch a");
    assert_eq!(build(&b).file("/out"), "branch b");
    assert_eq!(build(&a).file("/out"), "branch a");
}

/// Builds `FROM scratch / COPY f /f` with `f` = `body` in `ws` and tags it `v` in that
/// workspace's blob layout: an OCI layout another build can name with --build-context.
fn image_with(ws: &Ws, body: &str) -> PathBuf {
    ws.write("ctx/f", body);
    let built = ws
        .build("FROM scratch\nCOPY f /f\n", &Opts::default())
        .built;
    let layout = kiln_oci::Layout::open(ws.cache().join("blobs")).unwrap();
    layout.tag("v", &built.image.descriptor).unwrap();
    layout.root().to_owned()
}

#[test]
fn an_image_bind_reruns_when_the_image_changes() {
    let (base, ws) = (ws(), ws());
    let df = "FROM scratch\nRUN --mount=type=bind,from=base,target=/b cat /b/f > /out\n";
    let opts = |dir: &Path| Opts {
        contexts: BTreeMap::from([(
            "base".to_owned(),
            NamedContext::OciLayout {
                dir: dir.to_owned(),
                tag: Some("v".into()),
            },
        )]),
        ..Opts::default()
    };
    let layout = image_with(&base, "one");
    assert_eq!(ws.build(df, &opts(&layout)).file("/out"), "one");
    image_with(&base, "two");
    let mut second = ws.build(df, &opts(&layout));
    assert!(!second.cached("stage-0 1/1"));
    assert_eq!(second.file("/out"), "two");
}

#[test]
fn a_named_context_bind_reruns_when_its_directory_changes() {
    let ws = ws();
    let df = "FROM scratch\nRUN --mount=type=bind,from=extra,target=/e cat /e/f > /out\n";
    let opts = Opts {
        contexts: BTreeMap::from([(
            "extra".to_owned(),
            NamedContext::Local(ws.dir.path().join("extra")),
        )]),
        ..Opts::default()
    };
    ws.write("extra/f", "one");
    assert_eq!(ws.build(df, &opts).file("/out"), "one");
    ws.write("extra/f", "two");
    let mut second = ws.build(df, &opts);
    assert!(!second.cached("stage-0 1/1"));
    assert_eq!(second.file("/out"), "two");
}

// ---- a fully cached build never opens a tree ----

/// The layer blobs the cache holds that `image` does not use: the source stage's.
fn blobs_outside(ws: &Ws, image: &kiln_oci::Image) -> Vec<PathBuf> {
    let used: Vec<String> = image
        .manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect();
    let mut out = Vec::new();
    for record in std::fs::read_dir(ws.cache().join("steps")).unwrap() {
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record.unwrap().path()).unwrap()).unwrap();
        let Some(digest) = json["layer"]["digest"].as_str() else {
            continue;
        };
        if !used.iter().any(|u| u == digest) {
            let hex = digest.trim_start_matches("sha256:");
            out.push(ws.cache().join("blobs/blobs/sha256").join(hex));
        }
    }
    out
}

#[test]
fn a_cached_copy_from_does_not_open_the_source_stage() {
    let ws = ws();
    ws.write("ctx/f", "payload");
    let df = "FROM scratch AS src\nCOPY f /f\nRUN cat /f /f > /g\n\
        FROM scratch\nCOPY --from=src /g /copied\n\
        RUN --mount=type=bind,from=src,target=/s cat /s/g > /h\n";
    let first = ws.build(df, &Opts::default());
    // Garble the source stage's layers (same names, other bytes): a build that opened
    // the stage's tree would fail its digest check; a cached build never reads them.
    let garbled = blobs_outside(&ws, &first.built.image);
    assert_eq!(garbled.len(), 2, "the stage's COPY and RUN layers");
    for blob in &garbled {
        let mut perms = std::fs::metadata(blob).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(blob, perms).unwrap();
        std::fs::write(blob, b"not a layer").unwrap();
    }
    let mut second = ws.build(df, &Opts::default());
    for step in ["src 1/2", "src 2/2", "stage-1 1/2", "stage-1 2/2"] {
        assert!(second.cached(step), "{step} reran");
    }
    assert_eq!(second.file("/h"), "payloadpayload");
}

// ---- the table ----

/// One change to a build's inputs.
#[derive(Clone, Copy)]
enum Change {
    /// Writes a file in the workspace (`ctx/…` is the build context).
    File(&'static str, &'static str),
    /// Sets a file's permission bits.
    Mode(&'static str, u32),
    Dockerfile(&'static str),
    BuildArg(&'static str, &'static str),
    /// Gives secret `id` this value, or takes it away (`None`).
    Secret(&'static str, Option<&'static str>),
    NetworkOff,
    AllowHost(&'static str),
    NoCache,
    Platform(&'static str),
    Epoch(i64),
    /// `--build-context NAME=DIR` for the workspace directory `DIR`.
    LocalContext(&'static str, &'static str),
    /// `--build-context NAME=oci-layout://…` for an image holding `/f` = the text.
    Image(&'static str, &'static str),
}

/// Whether the named step must be a cache hit after the change.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    Hit,
    Miss,
}
use Expect::{Hit, Miss};

/// A Dockerfile and its context, built once, changed, built again; `step` (as progress
/// names it) must then hit or miss.
struct Row {
    name: &'static str,
    dockerfile: &'static str,
    /// Before the first build (context files, options).
    setup: &'static [Change],
    change: &'static [Change],
    step: &'static str,
    expect: Expect,
}

const COPY_F: &str = "FROM scratch\nCOPY f /f\n";
const COPY_ALL: &str = "FROM scratch\nCOPY . /c\n";
const RUN_ECHO: &str = "FROM scratch\nRUN echo hi > /o\n";
const F: Change = Change::File("ctx/f", "one");
const D: Change = Change::File("ctx/d/f", "one");
const IGNORE_X: Change = Change::File("ctx/.dockerignore", "x\nDockerfile\n");
const BIND_F: &str = "FROM scratch\nRUN --mount=type=bind,source=d,target=/m cat /m/f > /o\n";
const BIND_DIR: &str = "FROM scratch\nRUN --mount=type=bind,target=/m cat /m/f > /o\n";
const STAGE: &str =
    "FROM scratch AS src\nCOPY g /g\nFROM scratch\nCOPY f /f\nCOPY --from=src /g /g\n";
const BIND_STAGE: &str = "FROM scratch AS src\nCOPY g /g\n\
    FROM scratch\nRUN --mount=type=bind,from=src,target=/s cat /s/g > /o\n";
const SECRET: &str =
    "FROM scratch\nRUN --mount=type=secret,id=s cat /run/secrets/s > /dev/null || true\n";
const SECRET_S: Change = Change::Secret("s", Some("hunter22"));
const G: Change = Change::File("ctx/g", "gee");

const ROWS: &[Row] = &[
    Row {
        name: "nothing changed",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "copied file content",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::File("ctx/f", "two")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "copied file mode",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Mode("ctx/f", 0o755)],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a file not copied",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::File("ctx/other", "x")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "a .dockerignored file",
        dockerfile: COPY_ALL,
        setup: &[F, IGNORE_X, Change::File("ctx/x", "1")],
        change: &[Change::File("ctx/x", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "a file newly in the copied directory",
        dockerfile: COPY_ALL,
        setup: &[F, IGNORE_X],
        change: &[Change::File("ctx/new", "2")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: ".dockerignore itself",
        dockerfile: COPY_ALL,
        setup: &[F, IGNORE_X],
        change: &[Change::File("ctx/.dockerignore", "Dockerfile\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a file --exclude'd",
        dockerfile: "FROM scratch\nCOPY --exclude=*.log . /c\n",
        setup: &[F, Change::File("ctx/a.log", "1")],
        change: &[Change::File("ctx/a.log", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "COPY destination",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Dockerfile("FROM scratch\nCOPY f /g\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "COPY --chown",
        dockerfile: "FROM scratch\nCOPY --chown=1:1 f /f\n",
        setup: &[F],
        change: &[Change::Dockerfile("FROM scratch\nCOPY --chown=2:2 f /f\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "COPY --chmod",
        dockerfile: "FROM scratch\nCOPY --chmod=644 f /f\n",
        setup: &[F],
        change: &[Change::Dockerfile("FROM scratch\nCOPY --chmod=600 f /f\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "ADD instead of COPY",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Dockerfile("FROM scratch\nADD f /f\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "COPY heredoc body",
        dockerfile: "FROM scratch\nCOPY <<EOF /h\none\nEOF\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nCOPY <<EOF /h\ntwo\nEOF\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "WORKDIR before a relative COPY",
        dockerfile: "FROM scratch\nWORKDIR /a\nCOPY f f\n",
        setup: &[F],
        change: &[Change::Dockerfile("FROM scratch\nWORKDIR /b\nCOPY f f\n")],
        step: "stage-0 2/2",
        expect: Miss,
    },
    Row {
        name: "a comment and blank lines",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Dockerfile(
            "# a comment\nFROM scratch\n\n# another\nCOPY f /f\n",
        )],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "SOURCE_DATE_EPOCH (file times)",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Epoch(1_700_000_000)],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "--no-cache",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::NoCache],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        // A step that does not read the platform is shared by every platform.
        name: "--platform, a step that does not read it",
        dockerfile: COPY_F,
        setup: &[F],
        change: &[Change::Platform("linux/s390x")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "--platform, a RUN in a stage declaring TARGETARCH",
        dockerfile: "FROM scratch\nARG TARGETARCH\nRUN echo $TARGETARCH > /o\n",
        setup: &[],
        change: &[Change::Platform("linux/s390x")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a step after the changed one",
        dockerfile: "FROM scratch\nCOPY f /f\nRUN echo hi > /o\n",
        setup: &[F],
        change: &[Change::File("ctx/f", "two")],
        step: "stage-0 2/2",
        expect: Miss,
    },
    Row {
        name: "COPY --from stage content",
        dockerfile: STAGE,
        setup: &[F, G],
        change: &[Change::File("ctx/g", "two")],
        step: "stage-1 2/2",
        expect: Miss,
    },
    Row {
        name: "a stage this step does not read",
        dockerfile: STAGE,
        setup: &[F, G],
        change: &[Change::File("ctx/g", "two")],
        step: "stage-1 1/2",
        expect: Hit,
    },
    Row {
        name: "COPY --from a named directory",
        dockerfile: "FROM scratch\nCOPY --from=extra f /f\n",
        setup: &[
            Change::File("extra/f", "1"),
            Change::LocalContext("extra", "extra"),
        ],
        change: &[Change::File("extra/f", "2")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "RUN script",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::Dockerfile("FROM scratch\nRUN echo ho > /o\n")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "RUN exec form",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN [\"sh\", \"-c\", \"echo hi > /o\"]\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "RUN heredoc body",
        dockerfile: "FROM scratch\nRUN <<EOF\necho one > /o\nEOF\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN <<EOF\necho two > /o\nEOF\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "ARG default",
        dockerfile: "FROM scratch\nARG V=1\nRUN echo $V > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nARG V=2\nRUN echo $V > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "--build-arg of a declared ARG",
        dockerfile: "FROM scratch\nARG V\nRUN echo $V > /o\n",
        setup: &[Change::BuildArg("V", "1")],
        change: &[Change::BuildArg("V", "2")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "--build-arg nothing declares",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::BuildArg("UNUSED", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "ENV before RUN",
        dockerfile: "FROM scratch\nENV A=1\nRUN echo $A > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nENV A=2\nRUN echo $A > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "ENV after RUN",
        dockerfile: "FROM scratch\nRUN echo hi > /o\nENV A=1\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN echo hi > /o\nENV A=2\n",
        )],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "WORKDIR before RUN",
        dockerfile: "FROM scratch\nWORKDIR /a\nRUN echo hi > o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nWORKDIR /b\nRUN echo hi > o\n",
        )],
        step: "stage-0 2/2",
        expect: Miss,
    },
    Row {
        name: "USER before RUN",
        dockerfile: "FROM scratch\nUSER 0\nRUN echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nUSER 0:0\nRUN echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "SHELL before RUN",
        dockerfile: "FROM scratch\nSHELL [\"/bin/sh\", \"-c\"]\nRUN echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nSHELL [\"/bin/bash\", \"-c\"]\nRUN echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "RUN --network=none",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --network=none echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "--network none for the build",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::NetworkOff],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "--allow-host",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::AllowHost("example.com")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "context bind: file content",
        dockerfile: BIND_F,
        setup: &[D],
        change: &[Change::File("ctx/d/f", "two")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "context bind: a .dockerignored file",
        dockerfile: BIND_DIR,
        setup: &[F, IGNORE_X, Change::File("ctx/x", "1")],
        change: &[Change::File("ctx/x", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "context bind: a file outside its source",
        dockerfile: BIND_F,
        setup: &[D],
        change: &[Change::File("ctx/other", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "bind target",
        dockerfile: BIND_F,
        setup: &[D],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=bind,source=d,target=/n cat /n/f > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "bind rw",
        dockerfile: BIND_F,
        setup: &[D],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=bind,source=d,target=/m,rw cat /m/f > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "bind source",
        dockerfile: BIND_F,
        setup: &[D, Change::File("ctx/e/f", "one")],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=bind,source=e,target=/m cat /m/f > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "bind from a stage: its content",
        dockerfile: BIND_STAGE,
        setup: &[G],
        change: &[Change::File("ctx/g", "two")],
        step: "stage-1 1/1",
        expect: Miss,
    },
    Row {
        name: "bind from a stage: an ARG of that stage",
        dockerfile: "FROM scratch AS src\nARG V\nRUN echo $V > /g\n\
            FROM scratch\nRUN --mount=type=bind,from=src,target=/s cat /s/g > /o\n",
        setup: &[Change::BuildArg("V", "1")],
        change: &[Change::BuildArg("V", "2")],
        step: "stage-1 1/1",
        expect: Miss,
    },
    Row {
        name: "bind from a named directory",
        dockerfile: "FROM scratch\nRUN --mount=type=bind,from=extra,target=/e cat /e/f > /o\n",
        setup: &[
            Change::File("extra/f", "1"),
            Change::LocalContext("extra", "extra"),
        ],
        change: &[Change::File("extra/f", "2")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "bind from an image",
        dockerfile: "FROM scratch\nRUN --mount=type=bind,from=base,target=/b cat /b/f > /o\n",
        setup: &[Change::Image("base", "1")],
        change: &[Change::Image("base", "2")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "base image content",
        dockerfile: "FROM base\nRUN cat /f > /o\n",
        setup: &[Change::Image("base", "1")],
        change: &[Change::Image("base", "2")],
        // The FROM of an image is the stage's first step, as BuildKit shows it.
        step: "stage-0 2/2",
        expect: Miss,
    },
    Row {
        name: "cache mount id",
        dockerfile: "FROM scratch\nRUN --mount=type=cache,id=a,target=/c echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=cache,id=b,target=/c echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a proxy build arg the stage does not declare",
        dockerfile: RUN_ECHO,
        setup: &[Change::BuildArg("HTTP_PROXY", "http://a:3128")],
        change: &[Change::BuildArg("HTTP_PROXY", "http://b:3128")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "a proxy ARG the stage declares",
        dockerfile: "FROM scratch\nARG HTTP_PROXY\nRUN echo $HTTP_PROXY > /o\n",
        setup: &[Change::BuildArg("HTTP_PROXY", "http://a:3128")],
        change: &[Change::BuildArg("HTTP_PROXY", "http://b:3128")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "cache mount from a stage: its content",
        dockerfile: "FROM scratch AS src\nCOPY g /g\n\
            FROM scratch\nRUN --mount=type=cache,from=src,target=/c cat /c/g > /o\n",
        setup: &[G],
        change: &[Change::File("ctx/g", "two")],
        step: "stage-1 1/1",
        expect: Miss,
    },
    Row {
        name: "cache mount sharing (no effect on what the step sees)",
        dockerfile: "FROM scratch\nRUN --mount=type=cache,id=a,target=/c echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=cache,id=a,target=/c,sharing=locked echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "the stage a FROM names",
        dockerfile: "FROM scratch AS base\nCOPY g /g\nFROM base\nRUN cat /g > /o\n",
        setup: &[G],
        change: &[Change::File("ctx/g", "two")],
        step: "stage-1 1/1",
        expect: Miss,
    },
    Row {
        name: "a file ignored by <Dockerfile>.dockerignore",
        dockerfile: COPY_ALL,
        setup: &[
            F,
            Change::File("ctx/Dockerfile.dockerignore", "x\nDockerfile*\n"),
            Change::File("ctx/x", "1"),
        ],
        change: &[Change::File("ctx/x", "2")],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "tmpfs mount",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=tmpfs,target=/t echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret: the same value",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "secret: another value",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[Change::Secret("s", Some("hunter33"))],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret: given, then not",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[Change::Secret("s", None)],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret: not given, then given",
        dockerfile: SECRET,
        setup: &[],
        change: &[SECRET_S],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret target",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=secret,id=s,target=/t cat /t > /dev/null || true\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret mode",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=secret,id=s,mode=0444 cat /run/secrets/s > /dev/null || true\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "secret as env",
        dockerfile: SECRET,
        setup: &[SECRET_S],
        change: &[Change::Dockerfile(
            "FROM scratch\nRUN --mount=type=secret,id=s,env=S cat /run/secrets/s > /dev/null || true\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a secret the step does not mount",
        dockerfile: RUN_ECHO,
        setup: &[SECRET_S],
        change: &[Change::Secret("s", Some("hunter33"))],
        step: "stage-0 1/1",
        expect: Hit,
    },
    // Metadata no later step sees does not rerun the steps after it (as BuildKit), what
    // RUN sees does, and a parent's ONBUILD triggers are instructions of the child.
    Row {
        name: "a LABEL before a RUN",
        dockerfile: "FROM scratch\nLABEL a=1\nRUN echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nLABEL a=2\nRUN echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "every metadata-only instruction before a COPY",
        dockerfile: "FROM scratch\nCMD a\nEXPOSE 80\nSTOPSIGNAL 1\nVOLUME /v\nHEALTHCHECK NONE\n\
            MAINTAINER m\nENTRYPOINT x\nONBUILD RUN a\nCOPY f /f\n",
        setup: &[F],
        change: &[Change::Dockerfile(
            "FROM scratch\nCMD b\nEXPOSE 81\nSTOPSIGNAL 9\nVOLUME /w\n\
             HEALTHCHECK CMD true\nMAINTAINER n\nENTRYPOINT y\nONBUILD RUN b\nCOPY f /f\n",
        )],
        step: "stage-0 1/1",
        expect: Hit,
    },
    Row {
        name: "an ENV before a RUN",
        dockerfile: "FROM scratch\nENV A=1\nRUN echo hi > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nENV A=2\nRUN echo hi > /o\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a USER before a RUN",
        dockerfile: "FROM scratch\nUSER 1\nRUN echo hi > /tmp-o || true\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch\nUSER 2\nRUN echo hi > /tmp-o || true\n",
        )],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "BUILDKIT_SANDBOX_HOSTNAME (what /etc/hosts says)",
        dockerfile: RUN_ECHO,
        setup: &[],
        change: &[Change::BuildArg("BUILDKIT_SANDBOX_HOSTNAME", "foo")],
        step: "stage-0 1/1",
        expect: Miss,
    },
    Row {
        name: "a parent stage's ONBUILD trigger",
        dockerfile: "FROM scratch AS p\nONBUILD RUN echo a > /t\nFROM p\nRUN cat /t > /o\n",
        setup: &[],
        change: &[Change::Dockerfile(
            "FROM scratch AS p\nONBUILD RUN echo b > /t\nFROM p\nRUN cat /t > /o\n",
        )],
        step: "stage-1 2/2",
        expect: Miss,
    },
];

/// The inputs of one build of a row.
struct Inputs {
    dockerfile: &'static str,
    opts: Opts,
}

fn apply(ws: &Ws, inputs: &mut Inputs, changes: &[Change]) {
    for change in changes {
        match *change {
            Change::File(rel, body) => ws.write(rel, body),
            Change::Mode(rel, mode) => {
                use std::os::unix::fs::PermissionsExt;
                let path = ws.dir.path().join(rel);
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            Change::Dockerfile(text) => inputs.dockerfile = text,
            Change::BuildArg(k, v) => {
                inputs.opts.build_args.retain(|(n, _)| n != k);
                inputs.opts.build_args.push((k.into(), v.into()));
            }
            Change::Secret(id, value) => {
                inputs.opts.secrets.retain(|(n, _)| n != id);
                if let Some(v) = value {
                    inputs.opts.secrets.push((id.into(), v.into()));
                }
            }
            Change::NetworkOff => inputs.opts.network_off = true,
            Change::AllowHost(host) => inputs.opts.allowed_hosts.push(host.into()),
            Change::NoCache => inputs.opts.no_cache = true,
            Change::Platform(p) => inputs.opts.platform = Some(p.into()),
            Change::Epoch(e) => inputs.opts.epoch = e,
            Change::LocalContext(name, dir) => {
                let dir = NamedContext::Local(ws.dir.path().join(dir));
                inputs.opts.contexts.insert(name.into(), dir);
            }
            Change::Image(name, body) => {
                let side = ws.side.get_or_init(|| Box::new(Ws::new()));
                let dir = NamedContext::OciLayout {
                    dir: image_with(side, body),
                    tag: Some("v".into()),
                };
                inputs.opts.contexts.insert(name.into(), dir);
            }
        }
    }
}

/// Runs one row; `Err` says how it went wrong.
fn check(row: &Row) -> Result<(), String> {
    let ws = ws();
    let mut inputs = Inputs {
        dockerfile: row.dockerfile,
        opts: Opts::default(),
    };
    apply(&ws, &mut inputs, row.setup);
    ws.try_build(inputs.dockerfile, &inputs.opts)?;
    apply(&ws, &mut inputs, row.change);
    let second = ws.try_build(inputs.dockerfile, &inputs.opts)?;
    let got = if second.cached(row.step) { Hit } else { Miss };
    if got != row.expect {
        return Err(format!("{} was a {got:?}", row.step));
    }
    // A miss must be the change's doing: the changed build, repeated, hits again.
    if got == Miss && !inputs.opts.no_cache {
        let third = ws.try_build(inputs.dockerfile, &inputs.opts)?;
        if !third.cached(row.step) {
            return Err(format!("{} missed again with nothing changed", row.step));
        }
    }
    Ok(())
}

/// Rows run on this many threads: the machine's cores, as `cargo test` runs tests.
const TABLE_THREADS: usize = 2;

#[test]
fn the_cache_key_table() {
    let started = std::time::Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..TABLE_THREADS)
            .map(|t| {
                scope.spawn(move || {
                    ROWS.iter()
                        .skip(t)
                        .step_by(TABLE_THREADS)
                        .filter_map(|row| check(row).err().map(|e| format!("{}: {e}", row.name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    eprintln!("{} rows in {:?}", ROWS.len(), started.elapsed());
    assert!(ROWS.len() >= 40);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn step_records_hold_a_keyed_digest_never_the_secret_or_its_hash() {
    use sha2::Digest as _;
    let ws = ws();
    let value = "correct horse battery";
    let opts = Opts {
        secrets: vec![("s".into(), value.into())],
        ..Opts::default()
    };
    ws.build(SECRET, &opts);
    let plain_hash = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    let mut digests = 0;
    for record in std::fs::read_dir(ws.cache().join("steps")).unwrap() {
        let text = std::fs::read_to_string(record.unwrap().path()).unwrap();
        assert!(!text.contains(value), "{text}");
        assert!(!text.contains(&plain_hash), "{text}");
        digests += usize::from(text.contains("\"secrets\""));
    }
    assert_eq!(digests, 1, "the RUN step's record keeps the keyed digest");
}

#[test]
fn a_glob_source_is_keyed_on_what_it_matches() {
    // As BuildKit, a lone pattern needs no trailing slash: each match lands on `/d`. A
    // file that starts to match is a new key (the digest covers the matches), so the
    // cached one-match result is not replayed.
    let ws = ws();
    ws.write("ctx/f", "one");
    let mut fresh = ws.build("FROM scratch\nCOPY f* /d\n", &Opts::default());
    assert_eq!(fresh.file("/d"), "one");
    ws.write("ctx/f2", "two");
    let mut more = ws.build("FROM scratch\nCOPY f* /d\n", &Opts::default());
    assert_eq!(more.file("/d"), "two");
}

#[test]
fn a_build_asking_for_another_compression_gets_layers_of_that_kind() {
    // A cached layer is reused as stored: a gzip record must not answer a zstd build,
    // or the image (and its digest) would depend on what was built before.
    let ws = ws();
    ws.write("ctx/f", "one");
    let layer_types = |compression| {
        let mut req = ws.request(&Opts::default());
        req.compression = compression;
        let image = ws.run(COPY_F, req).unwrap().built.image;
        image
            .manifest
            .layers()
            .iter()
            .map(|l| l.media_type().to_string())
            .collect::<Vec<_>>()
    };
    let gzip = layer_types(kiln_oci::Compression::Gzip);
    let zstd = layer_types(kiln_oci::Compression::Zstd);
    assert!(gzip.iter().all(|t| t.ends_with("+gzip")), "{gzip:?}");
    assert!(zstd.iter().all(|t| t.ends_with("+zstd")), "{zstd:?}");
}
