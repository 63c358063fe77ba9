//! Realistic Dockerfiles (tests/corpus/) parsed to the expected model.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Duration;

use kiln_dockerfile::args::{BuildArgs, GlobalScope, Platform, StageScope};
use kiln_dockerfile::graph::{Edge, EdgeKind, StageGraph, StageSource};
use kiln_dockerfile::{
    ArgDecl, CacheSharing, Chmod, Copy, Dockerfile, Healthcheck, HeredocFile, Instruction, Mount,
    NetworkMode, Rule, RunProgram, SecurityMode, ShellOrExec, Span,
};

fn load(name: &str) -> Dockerfile {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    kiln_dockerfile::parse(&text, name).unwrap_or_else(|e| panic!("{e}"))
}

fn build_args(values: &[(&str, &str)]) -> BuildArgs {
    BuildArgs {
        values: values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        target_platform: Platform::parse("linux/amd64").unwrap(),
        build_platform: Platform::parse("linux/arm64").unwrap(),
        target_stage: None,
    }
}

fn rules(df: &Dockerfile) -> Vec<Rule> {
    df.warnings.iter().map(|w| w.rule).collect()
}

/// Expands every step of a stage in order, as the engine does at dispatch time.
fn dispatch_all(df: &Dockerfile, stage: usize, b: &BuildArgs) -> Vec<Instruction> {
    let g = GlobalScope::new(df, b).unwrap();
    let mut s = StageScope::new(b, &g, df.directives.escape, Vec::new());
    df.stages[stage]
        .steps
        .iter()
        .map(|st| s.dispatch(&st.instruction).unwrap())
        .collect()
}

fn shell(s: &str) -> ShellOrExec {
    ShellOrExec::Shell(s.into())
}

fn exec(v: &[&str]) -> ShellOrExec {
    ShellOrExec::Exec(v.iter().map(|s| s.to_string()).collect())
}

fn run(i: &Instruction) -> &kiln_dockerfile::Run {
    match i {
        Instruction::Run(r) => r,
        other => panic!("expected RUN, got {other:?}"),
    }
}

fn copy(i: &Instruction) -> &Copy {
    match i {
        Instruction::Copy(c) | Instruction::Add(c) => c,
        other => panic!("expected COPY/ADD, got {other:?}"),
    }
}

#[test]
fn go_multistage() {
    let df = load("go-multistage.Dockerfile");
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.check.skip, ["JSONArgsRecommended"]);
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(df.stages.len(), 2);
    let s0 = &df.stages[0];
    assert_eq!(s0.name.as_deref(), Some("build"));
    assert_eq!(s0.base, "golang:${GO_VERSION}-alpine${ALPINE_VERSION}");
    assert_eq!(s0.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(s0.span, Span::line(7));
    assert_eq!(s0.steps[0].instruction, Instruction::Workdir("/src".into()));
    assert_eq!(
        s0.steps[1].instruction,
        Instruction::Arg(vec![
            ArgDecl {
                name: "TARGETOS".into(),
                default: None
            },
            ArgDecl {
                name: "TARGETARCH".into(),
                default: None
            },
        ])
    );
    let r = run(&s0.steps[2].instruction);
    assert_eq!(r.command, shell("go mod download -x"));
    assert_eq!(
        s0.steps[2].span,
        Span {
            start_line: 11,
            end_line: 14
        }
    );
    let mounts = r.resolve_mounts('\\', &|_| None).unwrap();
    assert!(
        matches!(&mounts[0], Mount::Cache { target, id, .. } if target == "/go/pkg/mod" && id == "/go/pkg/mod")
    );
    assert_eq!(
        mounts[1],
        Mount::Bind {
            target: "go.sum".into(),
            source: "go.sum".into(),
            from: None,
            readwrite: false
        }
    );
    let s1 = &df.stages[1];
    assert_eq!(s1.name.as_deref(), Some("final"));
    let adduser = run(&s1.steps[2].instruction);
    let ShellOrExec::Shell(script) = &adduser.command else {
        panic!()
    };
    assert!(
        script.starts_with("adduser     --disabled-password"),
        "{script}"
    );
    assert!(script.contains("--uid \"${UID}\"     appuser"));
    assert_eq!(s1.steps[3].instruction, Instruction::User("appuser".into()));
    assert_eq!(
        copy(&s1.steps[4].instruction).from.as_deref(),
        Some("build")
    );
    assert_eq!(
        s1.steps[5].instruction,
        Instruction::Expose(vec!["8000".into()])
    );
    assert_eq!(
        s1.steps[6].instruction,
        Instruction::Entrypoint(exec(&["/bin/server"]))
    );
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);

    let b = build_args(&[]);
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap()).unwrap();
    assert_eq!(
        g.nodes[0].base,
        StageSource::Image("golang:1.22-alpine3.19".into())
    );
    assert_eq!(g.nodes[0].platform.as_deref(), Some("linux/arm64"));
    assert_eq!(g.nodes[1].base, StageSource::Image("alpine:3.19".into()));
    assert_eq!(
        g.nodes[1].edges,
        [Edge {
            kind: EdgeKind::Copy { step: 4 },
            source: StageSource::Stage(0)
        }]
    );
    assert_eq!(g.required(1), [0, 1]);
    let d = dispatch_all(&df, 0, &b);
    assert!(matches!(&d[1], Instruction::Arg(a) if a.len() == 2));
}

#[test]
fn node_app() {
    let df = load("node-app.Dockerfile");
    let s0 = &df.stages[0];
    let mounts = run(&s0.steps[2].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert!(matches!(
        &mounts[0],
        Mount::Cache {
            sharing: CacheSharing::Locked,
            ..
        }
    ));
    assert!(
        matches!(&mounts[1], Mount::Secret { id, target: Some(t), mode: 0o400, required: false, .. }
        if id.as_str() == "npmrc" && t == "/root/.npmrc")
    );
    let s1 = &df.stages[1];
    assert_eq!(s1.base, "node:20-bookworm-slim");
    assert_eq!(s1.name, None);
    assert_eq!(
        s1.steps[0].instruction,
        Instruction::Env {
            vars: vec![
                ("NODE_ENV".into(), "production".into()),
                ("PORT".into(), "3000".into())
            ],
            legacy: false
        }
    );
    let c = copy(&s1.steps[3].instruction);
    assert_eq!(
        (c.from.as_deref(), c.chown.as_deref()),
        (Some("deps"), Some("node:node"))
    );
    let c = copy(&s1.steps[4].instruction);
    assert_eq!(
        (c.sources.as_slice(), c.dest.as_str()),
        (&[".".to_string()][..], ".")
    );
    assert_eq!(
        Chmod::parse(c.chmod.as_deref().unwrap()),
        Ok(Chmod::Octal(0o644))
    );
    assert_eq!(
        s1.steps[7].instruction,
        Instruction::Healthcheck(Healthcheck::Check {
            test: shell("curl -f http://localhost:${PORT}/health || exit 1"),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(3)),
            start_period: Some(Duration::from_secs(5)),
            start_interval: None,
            retries: Some(3),
        })
    );
    assert_eq!(
        s1.steps[8].instruction,
        Instruction::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        s1.steps[9].instruction,
        Instruction::Cmd(exec(&["node", "server.js"]))
    );
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);

    let d = dispatch_all(&df, 1, &build_args(&[]));
    assert_eq!(
        d[1],
        Instruction::Label {
            labels: vec![
                ("org.opencontainers.image.title".into(), "web".into()),
                (
                    "org.opencontainers.image.source".into(),
                    "https://example.com/web".into()
                ),
                ("maintainer".into(), "team@example.com".into()),
            ],
            legacy: false
        }
    );
    assert_eq!(d[6], Instruction::Expose(vec!["3000/tcp".into()]));
    // HEALTHCHECK is not expanded by the frontend.
    assert_eq!(d[7], s1.steps[7].instruction);
}

#[test]
fn heredocs() {
    let df = load("heredocs.Dockerfile");
    let st = &df.stages[0].steps;
    assert_eq!(
        st[0].span,
        Span {
            start_line: 3,
            end_line: 6
        }
    );
    assert_eq!(
        run(&st[0].instruction).program(),
        RunProgram::Shell(
            "apt-get update\napt-get install -y --no-install-recommends vim\n".into()
        )
    );
    assert_eq!(
        run(&st[1].instruction).program(),
        RunProgram::Shell("<<EOT bash\n  set -ex\n  echo \"hello $HOME\"\nEOT".into())
    );
    assert_eq!(
        run(&st[2].instruction).program(),
        RunProgram::ScriptFile {
            name: "SCRIPT".into(),
            content: "#!/usr/bin/env python3\nprint(\"hello world\")\n".into()
        }
    );
    let r = run(&st[3].instruction);
    assert_eq!(r.heredocs.len(), 2);
    assert_eq!(r.heredocs[1].content, "I am\nsecond\n");
    assert_eq!(
        r.program(),
        RunProgram::Shell(
            "cat <<FILE1 >/file1 && cat <<FILE2 >/file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2"
                .into()
        )
    );
    let c = copy(&st[5].instruction);
    assert!(c.sources.is_empty());
    assert_eq!(c.dest, "/app/foo");
    assert_eq!(
        c.heredocs,
        [HeredocFile {
            name: "EOT".into(),
            content: "hello ${FOO}\n".into(),
            expand: true
        }]
    );
    let c = copy(&st[6].instruction);
    assert_eq!(c.heredocs.len(), 2);
    assert!(c.heredocs[0].expand && !c.heredocs[1].expand);
    assert_eq!(c.heredocs[1].name, "humans.txt");
    let d = dispatch_all(&df, 0, &build_args(&[]));
    assert_eq!(copy(&d[5]).heredocs[0].content, "hello bar\n");
    assert_eq!(
        copy(&d[6]).heredocs[1].content,
        "/* TEAM $NOT_EXPANDED */\n"
    );
    assert!(
        matches!(run(&st[7].instruction).program(), RunProgram::Shell(s) if s.ends_with("print(\"Hello\", file=f)\nEOF"))
    );
    assert_eq!(st.len(), 8);
}

#[test]
fn windows_escape() {
    let df = load("windows-escape.Dockerfile");
    assert_eq!(df.directives.escape, '`');
    let st = &df.stages[0].steps;
    assert_eq!(
        st[0].instruction,
        Instruction::Shell(vec![
            "powershell".into(),
            "-Command".into(),
            "$ErrorActionPreference = 'Stop';".into()
        ])
    );
    assert_eq!(copy(&st[1].instruction).dest, "c:\\");
    assert_eq!(
        run(&st[2].instruction).command,
        shell("dir c:\\     && echo done")
    );
    assert_eq!(st[3].instruction, Instruction::Workdir("C:\\app".into()));
    let d = dispatch_all(&df, 0, &build_args(&[]));
    assert_eq!(
        d[4],
        Instruction::Env {
            vars: vec![("APP_HOME".into(), "C:\\app".into())],
            legacy: false
        }
    );
    assert_eq!(copy(&d[5]).dest, "C:\\tools\\tool.zip");
    assert!(!rules(&df).contains(&Rule::WorkdirRelativePath));
}

#[test]
fn reference_examples() {
    let df = load("reference.Dockerfile");
    let st = &df.stages[0].steps;
    let d = dispatch_all(&df, 0, &build_args(&[("buildno", "7")]));
    assert_eq!(d[1], Instruction::Workdir("/bar".into()));
    assert_eq!(copy(&d[2]).dest, "/bar");
    assert_eq!(copy(&d[3]).sources, ["$FOO"]);
    let env = |i: usize| match &d[i] {
        Instruction::Env { vars, legacy } => (vars.clone(), *legacy),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        env(5).0,
        [("abc".into(), "bye".into()), ("def".into(), "hello".into())]
    );
    assert_eq!(env(6).0, [("ghi".to_string(), "bye".to_string())]);
    assert_eq!(
        env(7).0,
        [
            ("MY_NAME".into(), "John Doe".into()),
            ("MY_DOG".into(), "Rex The Dog".into()),
            ("MY_CAT".into(), "fluffy".into())
        ]
    );
    assert_eq!(env(8), (vec![("MY_VAR".into(), "my-value".into())], true));
    let Instruction::Label { labels, .. } = &d[9] else {
        panic!()
    };
    assert_eq!(
        labels[0],
        ("com.example.vendor".into(), "ACME Incorporated".into())
    );
    let Instruction::Label { labels, .. } = &d[12] else {
        panic!()
    };
    assert_eq!(
        labels[0].1,
        "This text illustrates that label-values can span multiple lines."
    );
    assert_eq!(
        d[15],
        Instruction::Expose(vec!["80/tcp".into(), "8000-8010".into()])
    );
    assert_eq!(d[16], Instruction::Volume(vec!["/data".into()]));
    assert_eq!(
        d[17],
        Instruction::Volume(vec!["/var/log".into(), "/var/db".into()])
    );
    assert_eq!(d[18], Instruction::User("patrick:staff".into()));
    assert_eq!(
        d[20],
        Instruction::Arg(vec![ArgDecl {
            name: "buildno".into(),
            default: Some("7".into())
        }])
    );
    assert_eq!(
        env(22).0,
        [("CONT_IMG_VER".to_string(), "v1.0.0".to_string())]
    );
    let Instruction::Onbuild {
        expression,
        trigger,
    } = &st[23].instruction
    else {
        panic!()
    };
    assert_eq!(expression, "ADD . /app/src");
    assert_eq!(copy(trigger).dest, "/app/src");
    assert!(matches!(
        &*match &st[24].instruction {
            Instruction::Onbuild { trigger, .. } => trigger.clone(),
            _ => panic!(),
        },
        Instruction::Run(_)
    ));
    assert_eq!(st[25].instruction, Instruction::StopSignal("9".into()));
    assert_eq!(
        st[26].instruction,
        Instruction::Healthcheck(Healthcheck::None)
    );
    assert_eq!(
        st[27].instruction,
        Instruction::Maintainer("Someone <someone@example.com>".into())
    );
    assert_eq!(
        run(&st[28].instruction).command,
        exec(&["/bin/bash", "-c", "echo hello"])
    );
    assert_eq!(run(&st[29].instruction).command, exec(&["echo", "$HOME"]));
    assert_eq!(run(&st[31].instruction).network, Some(NetworkMode::None));
    assert_eq!(
        run(&st[32].instruction).security,
        Some(SecurityMode::Insecure)
    );
    let m = run(&st[33].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert_eq!(
        m[0],
        Mount::Ssh {
            id: "default".into(),
            target: Some("/run/buildkit/ssh_agent.0".into()),
            required: true,
            mode: 0o600,
            uid: 0,
            gid: 0
        }
    );
    let m = run(&st[34].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert_eq!(
        m[0],
        Mount::Tmpfs {
            target: "/scratch".into(),
            size: Some(1 << 30)
        }
    );
    let m = run(&st[35].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert!(matches!(&m[0], Mount::Secret { target: None, env: Some(e), .. } if e == "AWS_SECRET"));
    assert!(matches!(&m[1], Mount::Secret { target: Some(t), .. } if t == "/run/secrets/token"));
    assert_eq!(
        st[36].instruction,
        Instruction::Cmd(shell("echo \"This is a test.\" | wc -"))
    );
    assert_eq!(
        st[37].instruction,
        Instruction::Entrypoint(shell("exec top -b"))
    );

    let c = &df.stages[1].steps;
    let c0 = copy(&c[0].instruction);
    assert!(c0.link);
    assert_eq!(c0.chmod.as_deref(), Some("755"));
    assert!(copy(&c[1].instruction).parents);
    assert_eq!(copy(&c[2].instruction).exclude, ["*.md", "*.txt"]);
    assert!(
        matches!(&c[3].instruction, Instruction::Add(a) if a.checksum.as_deref().unwrap().starts_with("sha256:2445"))
    );
    assert!(matches!(&c[4].instruction, Instruction::Add(a) if a.keep_git_dir));
    assert!(matches!(&c[5].instruction, Instruction::Add(a) if a.unpack == Some(false)));
    let j = copy(&c[6].instruction);
    assert!(j.json);
    assert_eq!(
        (j.sources.as_slice(), j.dest.as_str()),
        (&["a file.txt".to_string()][..], "/dest dir/")
    );

    let mut r = rules(&df);
    r.dedup();
    assert_eq!(
        r,
        [
            Rule::LegacyKeyValueFormat,
            Rule::MaintainerDeprecated,
            Rule::JsonArgsRecommended
        ]
    );
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &build_args(&[])).unwrap()).unwrap();
    assert_eq!(g.nodes[1].base, StageSource::Stage(0));
    // Stage 0's two ONBUILD triggers run first in stage 1, so its steps count from 2.
    assert_eq!(g.nodes[1].onbuild.len(), 2);
    assert_eq!(
        g.nodes[1].edges,
        [
            Edge {
                kind: EdgeKind::Copy { step: 9 },
                source: StageSource::Image("nginx:latest".into())
            },
            Edge {
                kind: EdgeKind::Copy { step: 10 },
                source: StageSource::Stage(0)
            },
        ]
    );
}

#[test]
fn args_scope() {
    let df = load("args-scope.Dockerfile");
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
    let b = build_args(&[]);
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap()).unwrap();
    assert_eq!(g.nodes[0].base, StageSource::Image("base:latest".into()));
    assert_eq!(g.nodes[1].base, StageSource::Image("extras:latest".into()));
    assert_eq!(
        g.nodes[2].base,
        StageSource::Image("docker.io/library/alpine".into())
    );
    let b2 = build_args(&[("REGISTRY", "reg.example"), ("CODE_VERSION", "2")]);
    let g2 = StageGraph::new(&df, &GlobalScope::new(&df, &b2).unwrap()).unwrap();
    assert_eq!(
        g2.nodes[2].base,
        StageSource::Image("reg.example/library/alpine".into())
    );
    assert_eq!(g2.nodes[0].base, StageSource::Image("base:2".into()));

    let gs = GlobalScope::new(&df, &b).unwrap();
    let mut s = StageScope::new(&b, &gs, '\\', Vec::new());
    for st in &df.stages[1].steps {
        s.dispatch(&st.instruction).unwrap();
    }
    assert_eq!(s.lookup("CODE_VERSION").as_deref(), Some("latest"));
    assert_eq!(s.lookup("SETTINGS"), None);
    let mut s = StageScope::new(&b, &gs, '\\', Vec::new());
    s.dispatch(&df.stages[2].steps[0].instruction).unwrap();
    assert_eq!(s.lookup("TARGETPLATFORM").as_deref(), Some("linux/amd64"));
}

#[test]
fn lints_corpus() {
    let df = load("lints.Dockerfile");
    let mut r = rules(&df);
    r.sort();
    r.dedup();
    assert_eq!(
        r,
        [
            Rule::StageNameCasing,
            Rule::ConsistentInstructionCasing,
            Rule::DuplicateStageName,
            Rule::JsonArgsRecommended,
            Rule::MaintainerDeprecated,
            Rule::WorkdirRelativePath,
            Rule::MultipleInstructionsDisallowed,
            Rule::LegacyKeyValueFormat,
            Rule::SecretsUsedInArgOrEnv,
        ]
    );
    let casing: Vec<_> = df
        .warnings
        .iter()
        .filter(|w| w.rule == Rule::ConsistentInstructionCasing)
        .collect();
    assert_eq!(casing.len(), 1);
    assert_eq!(casing[0].span, Span::line(3));
    assert_eq!(
        casing[0].message,
        "Command 'RUN' should match the case of the command majority (lowercase)"
    );
    // A duplicated stage name warns and builds, as in BuildKit: `FROM Builder` is the
    // stage defined before it.
    let b = build_args(&[]);
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap()).unwrap();
    assert_eq!(g.nodes[1].base, StageSource::Stage(0));
}

#[test]
fn rust_cargo_heredoc_with_mounts() {
    let df = load("rust-cargo.Dockerfile");
    assert_eq!(
        df.directives.syntax.as_deref(),
        Some("docker/dockerfile:1.7")
    );
    let st = &df.stages[0].steps;
    let r = run(&st[2].instruction);
    assert_eq!(
        st[2].span,
        Span {
            start_line: 8,
            end_line: 19
        }
    );
    assert_eq!(r.mounts.len(), 7);
    assert_eq!(
        r.program(),
        RunProgram::Shell(
            "set -e\ncargo build --locked --release\ncp ./target/release/$APP_NAME /bin/server\n"
                .into()
        )
    );
    let b = build_args(&[]);
    let g = GlobalScope::new(&df, &b).unwrap();
    let mut scope = StageScope::new(&b, &g, '\\', Vec::new());
    scope.dispatch(&st[0].instruction).unwrap();
    let m = r.resolve_mounts('\\', &|n| scope.lookup(n)).unwrap();
    assert!(
        matches!(&m[0], Mount::Ssh { target: Some(t), .. } if t == "/run/buildkit/ssh_agent.0")
    );
    assert!(matches!(&m[4], Mount::Cache { id, .. } if id == "rust-target-server"));
    assert!(matches!(
        &m[6],
        Mount::Cache {
            sharing: CacheSharing::Private,
            ..
        }
    ));
    let d = dispatch_all(&df, 1, &b);
    assert_eq!(d[2], Instruction::User("10001".into()));
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
}

#[test]
fn python_targets() {
    let df = load("python-targets.Dockerfile");
    let b = build_args(&[]);
    let g = StageGraph::new(&df, &GlobalScope::new(&df, &b).unwrap()).unwrap();
    let t = |name: &str| g.required(StageGraph::target(&df, Some(name)).unwrap());
    assert_eq!(t("base"), [0]);
    assert_eq!(t("test"), [0, 1, 2]);
    assert_eq!(t("docs"), [0, 1, 2, 3]);
    assert_eq!(t("prod"), [0, 1, 4]);
    assert_eq!(
        g.required(StageGraph::target(&df, None).unwrap()),
        [0, 1, 4]
    );
    assert_eq!(
        g.nodes[3].edges,
        [Edge {
            kind: EdgeKind::Mount { step: 0, mount: 0 },
            source: StageSource::Stage(2)
        }]
    );
    let docs = run(&df.stages[3].steps[0].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert_eq!(
        docs[0],
        Mount::Bind {
            target: "/docs".into(),
            source: "/app/docs".into(),
            from: Some("test".into()),
            readwrite: true
        }
    );
    assert_eq!(
        copy(&df.stages[4].steps[1].instruction).exclude,
        ["tests", "*.pyc"]
    );
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
}

#[test]
fn static_site() {
    let df = load("static-site.Dockerfile");
    let s1 = &df.stages[1].steps;
    let c = copy(&s1[0].instruction);
    assert!(c.link);
    let mode = Chmod::parse(c.chmod.as_deref().unwrap()).unwrap();
    assert_eq!(mode.apply(0o777, false), 0o644);
    let m = run(&df.stages[0].steps[4].instruction)
        .resolve_mounts('\\', &|_| None)
        .unwrap();
    assert_eq!(
        m[0],
        Mount::Tmpfs {
            target: "/tmp".into(),
            size: None
        }
    );
    assert!(matches!(
        &s1[2].instruction,
        Instruction::Healthcheck(Healthcheck::Check {
            retries: Some(5),
            test: ShellOrExec::Exec(_),
            ..
        })
    ));
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
}

#[test]
fn every_corpus_file_is_checked() {
    let dir = format!("{}/tests/corpus", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let src = include_str!("corpus.rs");
    for n in names {
        assert!(
            src.contains(&format!("load(\"{n}\")")),
            "corpus file {n} has no test"
        );
    }
}
