//! Every instruction form, and the errors BuildKit rejects, with positions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use kiln_dockerfile::{
    ErrorKind, Healthcheck, Instruction, MountError, ParseError, ShellOrExec, Span, parse,
};

fn one(src: &str) -> Instruction {
    let df = parse(&format!("FROM a\n{src}\n"), "Dockerfile").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(df.stages[0].steps.len(), 1, "{src}");
    df.stages[0].steps[0].instruction.clone()
}

fn err(src: &str) -> ParseError {
    parse(src, "Dockerfile").expect_err(src)
}

fn shell(s: &str) -> ShellOrExec {
    ShellOrExec::Shell(s.into())
}

#[test]
fn error_display_has_location_and_caret() {
    let e = err("FROM alpine\nRUN --mount=type=cache,target=/x,mode=9z true\n");
    assert_eq!((e.line, e.column), (2, 34));
    assert_eq!(
        e.to_string(),
        "dockerfile parse error on line 2: invalid --mount: invalid value '9z' for mode\n \
         --> Dockerfile:2:34\n  |\n2 | RUN --mount=type=cache,target=/x,mode=9z true\n  |                                  ^"
    );
    let e = err("FROM a\nRUN --mount=type=cache,target=/x,colour=red true\n");
    assert_eq!((e.line, e.column), (2, 34));
    let e = err("FROM a\nRUN --mount=target=/x,type=nfs true\n");
    assert_eq!((e.line, e.column), (2, 23));
    let e = err("FROM alpine\nRUN echo a \\\n  && echo b \\\n  --bad\nCOPY --nope a b\n");
    assert_eq!((e.line, e.column), (5, 6));
    assert!(matches!(&*e.kind, ErrorKind::UnknownFlag { flag, .. } if flag == "nope"));
}

#[test]
fn error_column_on_continuation_line() {
    let e = err("FROM a\nCOPY --chown=1 \\\n     --chmod=zz a b\n");
    assert_eq!((e.line, e.column), (3, 6));
    assert!(e.to_string().contains("3 |      --chmod=zz a b"), "{e}");
}

#[test]
fn unknown_instruction_suggests() {
    let e = err("FROM a\nRUNN echo\n");
    assert_eq!((e.line, e.column), (2, 1));
    assert_eq!(
        e.kind.to_string(),
        "unknown instruction: RUNN (did you mean RUN?)"
    );
    let e = err("FROM a\nCOPY --form=x a b\n");
    assert_eq!(
        e.kind.to_string(),
        "unknown flag: --form (did you mean from?)"
    );
}

#[test]
fn instruction_names_are_case_insensitive() {
    let df = parse("from a\nRuN echo\nworkdir /x\n", "D").unwrap();
    assert_eq!(df.stages[0].steps.len(), 2);
    assert_eq!(df.stages[0].original, "from a");
}

#[test]
fn structural_errors() {
    assert!(err("").to_string().contains("no instructions"));
    assert!(
        err("# just a comment\n\n")
            .to_string()
            .contains("no instructions")
    );
    assert!(err("ARG A\n").to_string().contains("no FROM"));
    let e = err("ARG A\nRUN x\nFROM a\n");
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("no build stage"));
    assert!(
        err("FROM a b\n")
            .to_string()
            .contains("one or three arguments")
    );
    assert!(err("FROM a AS\n").to_string().contains("one or three"));
    assert!(
        err("FROM a AS 1x\n")
            .to_string()
            .contains("invalid name for build stage")
    );
    assert!(err("FROM a AS b$\n").to_string().contains("invalid name"));
    assert!(err("FROM --platform= a\n").to_string().contains("platform"));
    assert!(
        err("FROM --plat=x a\n")
            .to_string()
            .contains("unknown flag: --plat")
    );
}

#[test]
fn from_forms() {
    let df = parse(
        "FROM --platform=linux/arm64 a:1 AS Build.Stage-1_x\nFROM scratch\n",
        "D",
    )
    .unwrap();
    let s = &df.stages[0];
    assert_eq!(s.name.as_deref(), Some("build.stage-1_x"));
    assert_eq!(s.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(df.stage("BUILD.STAGE-1_X").unwrap().index, 0);
    assert_eq!(df.stage("1").unwrap().base, "scratch");
}

#[test]
fn run_forms() {
    let Instruction::Run(r) = one("RUN [\"a\", \"b\"]") else {
        panic!()
    };
    assert_eq!(r.command, ShellOrExec::Exec(vec!["a".into(), "b".into()]));
    // Invalid JSON falls back to shell form, as in BuildKit.
    let Instruction::Run(r) = one("RUN ['a', 'b']") else {
        panic!()
    };
    assert_eq!(r.command, shell("['a', 'b']"));
    let Instruction::Run(r) = one("RUN [\"a\"] && b") else {
        panic!()
    };
    assert_eq!(r.command, shell("[\"a\"] && b"));
    assert!(
        err("FROM a\nRUN [\"a\", 1]\n")
            .to_string()
            .contains("strings only")
    );
    assert!(err("FROM a\nRUN\n").to_string().contains("at least one"));
    assert!(
        err("FROM a\nRUN --network=bridge x\n")
            .to_string()
            .contains("unsupported network mode")
    );
    assert!(
        err("FROM a\nRUN --security=root x\n")
            .to_string()
            .contains("not supported")
    );
    assert!(
        err("FROM a\nRUN --network x\n")
            .to_string()
            .contains("missing a value")
    );
    assert!(
        err("FROM a\nRUN --network=none --network=host x\n")
            .to_string()
            .contains("duplicate")
    );
    let e = err("FROM a\nRUN --mount=type=secret x\n");
    assert!(matches!(&*e.kind, ErrorKind::Mount(MountError::SecretNoId)));
    let Instruction::Run(r) = one("RUN --mount=type=secret,id=a --mount=type=cache,target=/c x")
    else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].raw, "type=secret,id=a");
}

#[test]
fn copy_add_forms() {
    let Instruction::Copy(c) = one("COPY --link=false --parents a b c/") else {
        panic!()
    };
    assert!(!c.link && c.parents);
    assert_eq!(c.sources, ["a", "b"]);
    assert_eq!(c.dest, "c/");
    assert!(
        err("FROM a\nCOPY a\n")
            .to_string()
            .contains("at least two arguments")
    );
    assert!(
        err("FROM a\nCOPY --link=maybe a b\n")
            .to_string()
            .contains("boolean")
    );
    assert!(
        err("FROM a\nCOPY --checksum=sha256:x a b\n")
            .to_string()
            .contains("unknown flag")
    );
    assert!(
        err("FROM a\nADD --from=x a b\n")
            .to_string()
            .contains("unknown flag")
    );
    assert!(
        err("FROM a\nADD --parents a b\n")
            .to_string()
            .contains("unknown flag")
    );
    assert!(
        err("FROM a\nADD --checksum=md5:00 a b\n")
            .to_string()
            .contains("unsupported checksum")
    );
    assert!(
        err("FROM a\nCOPY --chmod=u+q a b\n")
            .to_string()
            .contains("invalid mode")
    );
    assert!(
        err("FROM a\nCOPY a <<EOF\nx\nEOF\n")
            .to_string()
            .contains("heredoc as a destination")
    );
    // Variables in expanded flags are checked after expansion, not at parse time.
    let Instruction::Add(a) = one("ADD --checksum=$SUM http://x/a b") else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("$SUM"));
    // BuildKit expands ARG/ENV in --chmod, so a variable is checked once expanded.
    let Instruction::Copy(c) = one("COPY --chmod=$M a b") else {
        panic!()
    };
    assert_eq!(c.chmod.as_deref(), Some("$M"));
    assert!(
        err("FROM a\nCOPY --from=$STAGE a b\n")
            .to_string()
            .contains("alias stage")
    );
    let Instruction::Add(a) = one("ADD --chmod=u=rwx,go=rx --chown=1:2 --unpack http://x/y.tgz /")
    else {
        panic!()
    };
    assert_eq!((a.unpack, a.chown.as_deref()), (Some(true), Some("1:2")));
}

#[test]
fn env_label_arg_forms() {
    assert_eq!(
        one("ENV a=1 b=\"2 3\""),
        Instruction::Env {
            vars: vec![("a".into(), "1".into()), ("b".into(), "\"2 3\"".into())],
            legacy: false
        }
    );
    assert_eq!(
        one("ENV a  b c"),
        Instruction::Env {
            vars: vec![("a".into(), "b c".into())],
            legacy: true
        }
    );
    assert!(
        err("FROM a\nENV a\n")
            .to_string()
            .contains("must have two arguments")
    );
    assert!(
        err("FROM a\nENV a=1 b\n")
            .to_string()
            .contains("can't find =")
    );
    assert!(
        err("FROM a\nENV =1\n")
            .to_string()
            .contains("can not be blank")
    );
    assert!(err("FROM a\nENV\n").to_string().contains("at least one"));
    assert!(err("FROM a\nLABEL\n").to_string().contains("at least one"));
    assert!(err("FROM a\nARG\n").to_string().contains("at least one"));
    assert!(err("FROM a\nARG =x\n").to_string().contains("blank"));
    let Instruction::Arg(a) = one("ARG a b=2 c=") else {
        panic!()
    };
    assert_eq!(a.len(), 3);
    assert_eq!(a[2].default.as_deref(), Some(""));
    assert_eq!(
        one("LABEL a=b"),
        Instruction::Label {
            labels: vec![("a".into(), "b".into())],
            legacy: false
        }
    );
}

#[test]
fn simple_forms() {
    assert_eq!(one("WORKDIR /a b"), Instruction::Workdir("/a b".into()));
    assert_eq!(one("USER 1000:1000"), Instruction::User("1000:1000".into()));
    assert_eq!(
        one("STOPSIGNAL SIGKILL"),
        Instruction::StopSignal("SIGKILL".into())
    );
    assert!(err("FROM a\nWORKDIR\n").to_string().contains("exactly one"));
    assert!(
        err("FROM a\nWORKDIR --x=1 /a\n")
            .to_string()
            .contains("unknown flag")
    );
    // Sorted as written, as BuildKit's parser sorts them.
    assert_eq!(
        one("EXPOSE 80 443/tcp"),
        Instruction::Expose(vec!["443/tcp".into(), "80".into()])
    );
    assert!(
        err("FROM a\nEXPOSE 80/xyz\n")
            .to_string()
            .contains("invalid proto")
    );
    assert!(err("FROM a\nEXPOSE\n").to_string().contains("at least one"));
    assert!(
        err("FROM a\nVOLUME [\"\"]\n")
            .to_string()
            .contains("empty string")
    );
    assert_eq!(
        one("VOLUME /a /b"),
        Instruction::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(one("CMD []"), Instruction::Cmd(ShellOrExec::Exec(vec![])));
    assert_eq!(
        one("ENTRYPOINT top -b"),
        Instruction::Entrypoint(shell("top -b"))
    );
    assert_eq!(
        one("SHELL [\"bash\", \"-c\"]"),
        Instruction::Shell(vec!["bash".into(), "-c".into()])
    );
    assert!(
        err("FROM a\nSHELL bash -c\n")
            .to_string()
            .contains("JSON form")
    );
    assert!(
        err("FROM a\nSHELL []\n")
            .to_string()
            .contains("at least one")
    );
    assert_eq!(one("MAINTAINER me"), Instruction::Maintainer("me".into()));
}

#[test]
fn healthcheck_forms() {
    assert_eq!(
        one("HEALTHCHECK none"),
        Instruction::Healthcheck(Healthcheck::None)
    );
    let Instruction::Healthcheck(Healthcheck::Check {
        test,
        retries,
        start_interval,
        ..
    }) = one("HEALTHCHECK --start-interval=2s --retries=0 CMD [\"/ok\"]")
    else {
        panic!()
    };
    assert_eq!(test, ShellOrExec::Exec(vec!["/ok".into()]));
    assert_eq!(retries, Some(0));
    assert_eq!(start_interval, Some(std::time::Duration::from_secs(2)));
    assert!(
        err("FROM a\nHEALTHCHECK NONE x\n")
            .to_string()
            .contains("no arguments")
    );
    assert!(
        err("FROM a\nHEALTHCHECK --interval=1s NONE\n")
            .to_string()
            .contains("unknown flag")
    );
    assert!(
        err("FROM a\nHEALTHCHECK RUN x\n")
            .to_string()
            .contains("try CMD")
    );
    assert!(
        err("FROM a\nHEALTHCHECK CMD\n")
            .to_string()
            .contains("Missing command")
    );
    assert!(
        err("FROM a\nHEALTHCHECK --retries=-1 CMD x\n")
            .to_string()
            .contains("negative")
    );
    assert!(
        err("FROM a\nHEALTHCHECK --interval=5 CMD x\n")
            .to_string()
            .contains("invalid duration")
    );
    assert!(
        err("FROM a\nHEALTHCHECK --timeout=1ns CMD x\n")
            .to_string()
            .contains("less than")
    );
    assert!(
        err("FROM a\nHEALTHCHECK --bogus=1 CMD x\n")
            .to_string()
            .contains("unknown flag")
    );
}

#[test]
fn onbuild_forms() {
    let Instruction::Onbuild { trigger, .. } = one("ONBUILD RUN --mount=type=cache,target=/c make")
    else {
        panic!()
    };
    assert!(matches!(*trigger, Instruction::Run(ref r) if r.mounts.len() == 1));
    assert!(
        err("FROM a\nONBUILD ONBUILD RUN x\n")
            .to_string()
            .contains("Chaining ONBUILD")
    );
    assert!(
        err("FROM a\nONBUILD FROM x\n")
            .to_string()
            .contains("isn't allowed")
    );
    assert!(
        err("FROM a\nONBUILD MAINTAINER x\n")
            .to_string()
            .contains("isn't allowed")
    );
    assert!(
        err("FROM a\nONBUILD\n")
            .to_string()
            .contains("at least one")
    );
    let e = err("FROM a\nONBUILD COPY --nope a b\n");
    assert_eq!((e.line, e.column), (2, 14));
}

#[test]
fn spans_and_originals() {
    let df = parse("FROM a\n\n# c\nRUN a \\\n  b\n\nENV x=1\n", "D").unwrap();
    let st = &df.stages[0].steps;
    assert_eq!(
        st[0].span,
        Span {
            start_line: 4,
            end_line: 5
        }
    );
    assert_eq!(st[0].original, "RUN a   b");
    assert_eq!(st[1].span, Span::line(7));
}

#[test]
fn expansion_through_instruction() {
    let lookup = |n: &str| match n {
        "P" => Some("8080 9090".to_string()),
        "D" => Some("/dst".to_string()),
        _ => None,
    };
    let Instruction::Expose(p) = one("EXPOSE $P 1/udp").expand('\\', &lookup).unwrap() else {
        panic!()
    };
    assert_eq!(p, ["8080", "9090", "1/udp"]);
    let Instruction::Copy(c) = one("COPY --from=img --chown=$D --chmod=644 --exclude=$D src $D")
        .expand('\\', &lookup)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!((c.sources[0].as_str(), c.dest.as_str()), ("src", "/dst"));
    assert_eq!(c.chown.as_deref(), Some("/dst"));
    // --from, --chmod and --exclude are literal in BuildKit.
    assert_eq!(
        (c.from.as_deref(), c.chmod.as_deref(), c.exclude[0].as_str()),
        (Some("img"), Some("644"), "$D")
    );
    let Instruction::Add(a) = one("ADD --checksum=$D http://x/y /y")
        .expand('\\', &lookup)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(a.checksum.as_deref(), Some("/dst"));
    // Shell-form COPY splits on whitespace before expansion (as BuildKit): quotes cannot
    // protect spaces there; the JSON form can.
    assert!(one("COPY \"a b\" /d").expand('\\', &lookup).is_err());
    // RUN/CMD are left for the shell.
    let r = one("RUN echo $D");
    assert_eq!(r.expand('\\', &lookup).unwrap(), r);
    assert!(one("WORKDIR ${D:?unset}").expand('\\', &|_| None).is_err());
}

#[test]
fn onbuild_triggers_from_image_config() {
    let i = kiln_dockerfile::parse_onbuild_trigger("COPY --chown=app . /app/src").unwrap();
    assert!(matches!(i, Instruction::Copy(ref c) if c.chown.as_deref() == Some("app")));
    let i = kiln_dockerfile::parse_onbuild_trigger("RUN make \\\n  install").unwrap();
    assert!(matches!(i, Instruction::Run(ref r) if r.command == shell("make   install")));
    assert!(kiln_dockerfile::parse_onbuild_trigger("FROM x").is_err());
    assert!(kiln_dockerfile::parse_onbuild_trigger("ONBUILD RUN x").is_err());
    assert!(kiln_dockerfile::parse_onbuild_trigger("RUN a\nRUN b").is_err());
    assert!(kiln_dockerfile::parse_onbuild_trigger("").is_err());
    // The expression stored for a stage's ONBUILD parses back to the same trigger.
    let Instruction::Onbuild {
        expression,
        trigger,
    } = one("ONBUILD ADD --chmod=755 a /b")
    else {
        panic!()
    };
    assert_eq!(
        kiln_dockerfile::parse_onbuild_trigger(&expression).unwrap(),
        *trigger
    );
}

#[test]
fn onbuild_run_heredocs_parse_and_round_trip_through_the_config() {
    let df = parse(
        "FROM a\nONBUILD RUN <<EOF\necho one\necho two\nEOF\nRUN true\n",
        "Dockerfile",
    )
    .unwrap();
    let steps = &df.stages[0].steps;
    assert_eq!(steps.len(), 2, "the body is not read as instructions");
    let Instruction::Onbuild {
        expression,
        trigger,
    } = &steps[0].instruction
    else {
        panic!("{:?}", steps[0])
    };
    assert_eq!(expression, "RUN <<EOF\necho one\necho two\nEOF");
    let Instruction::Run(run) = &**trigger else {
        panic!("{trigger:?}")
    };
    assert_eq!(
        run.program(),
        kiln_dockerfile::RunProgram::Shell("echo one\necho two\n".into())
    );
    assert_eq!(
        kiln_dockerfile::parse_onbuild_trigger(expression).unwrap(),
        **trigger
    );
    assert_eq!(steps[1].span.start_line, 6);
}

#[test]
fn dispatch_time_errors_render_with_location() {
    let df = parse("FROM a\n  WORKDIR ${DIR:?set DIR}\n", "build/Dockerfile").unwrap();
    let step = &df.stages[0].steps[0];
    let e = step.instruction.expand('\\', &|_| None).unwrap_err();
    let rendered = df.error_at(step.span, ErrorKind::Expand(e)).to_string();
    assert_eq!(
        rendered,
        "DIR: set DIR\n --> build/Dockerfile:2:3\n  |\n2 |   WORKDIR ${DIR:?set DIR}\n  |   ^"
    );
}
