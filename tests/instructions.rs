//! ONBUILD, EXPOSE, built-in args, history and config defaults as BuildKit writes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use serde_json::Value;
use support::*;

/// Builds `dockerfile` (a file of the context) tagged `tag`; the build must succeed.
fn build_tagged(ws: &Workspace, dockerfile: &str, tag: &str, extra: &[&str]) -> String {
    let file = ws.context().join(dockerfile);
    let mut args = vec!["-f", file.to_str().unwrap(), "-t", tag];
    args.extend_from_slice(extra);
    let out = ws.build(&args);
    assert_ok(&out);
    text(&out.stderr)
}

/// The files of the image tagged `tag`, exported to a fresh directory.
fn exported(ws: &Workspace, dockerfile: &str, tag: &str, extra: &[&str]) -> std::path::PathBuf {
    let dest = ws.path(&format!("out-{tag}"));
    let output = format!("type=local,dest={}", dest.display());
    let mut args = vec!["-o", output.as_str()];
    args.extend_from_slice(extra);
    build_tagged(ws, dockerfile, tag, &args);
    dest
}

fn read(dir: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn onbuild_triggers_of_a_parent_stage_run_in_the_child_with_their_dependencies() {
    let ws = Workspace::new();
    ws.write("tool.txt", "tool\n");
    ws.write(
        "Dockerfile",
        "FROM scratch AS tools\n\
         COPY tool.txt /tool.txt\n\
         FROM scratch AS parent\n\
         ONBUILD COPY --from=tools /tool.txt /from-tools.txt\n\
         ONBUILD RUN <<EOF\n\
         echo built by a heredoc trigger > /onbuild.txt\n\
         EOF\n\
         ONBUILD RUN --mount=type=cache,target=/cache echo cached > /cache/x && cp /cache/x /cached.txt\n\
         RUN echo parent > /parent.txt\n\
         FROM parent AS child\n\
         RUN cat /from-tools.txt /onbuild.txt /cached.txt > /all.txt\n",
    );
    let out = exported(&ws, "Dockerfile", "child", &[]);
    assert_eq!(
        read(&out, "all.txt"),
        "tool\nbuilt by a heredoc trigger\ncached\n"
    );
    // The triggers ran in the child, not in the parent.
    let parent = exported(&ws, "Dockerfile", "parent", &["--target", "parent"]);
    assert!(!parent.join("onbuild.txt").exists());
    assert_eq!(read(&parent, "parent.txt"), "parent\n");
    assert_eq!(
        config_of(&ws, "parent")["config"]["OnBuild"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // The child's config does not pass them on.
    assert!(config_of(&ws, "child")["config"].get("OnBuild").is_none());
}

#[test]
fn onbuild_triggers_of_a_base_image_run_first_and_may_use_the_childs_stages() {
    let ws = Workspace::new();
    ws.write("h.txt", "helper\n");
    ws.write(
        "parent.Dockerfile",
        "FROM scratch\n\
         ONBUILD COPY --from=helper /h.txt /h-copied.txt\n\
         ONBUILD RUN <<EOF\n\
         echo $(cat /h-copied.txt) seen by a trigger > /trigger.txt\n\
         EOF\n",
    );
    build_tagged(&ws, "parent.Dockerfile", "onbuild-parent", &[]);
    let triggers = config_of(&ws, "onbuild-parent")["config"]["OnBuild"].clone();
    assert_eq!(
        triggers[1],
        "RUN <<EOF\necho $(cat /h-copied.txt) seen by a trigger > /trigger.txt\nEOF"
    );
    ws.write(
        "Dockerfile",
        "FROM scratch AS helper\n\
         COPY h.txt /h.txt\n\
         FROM onbuild-parent\n\
         RUN cat /trigger.txt > /child.txt\n",
    );
    let out = exported(&ws, "Dockerfile", "onbuild-child", &[]);
    assert_eq!(read(&out, "child.txt"), "helper seen by a trigger\n");
    assert!(
        config_of(&ws, "onbuild-child")["config"]
            .get("OnBuild")
            .is_none()
    );
    // Triggers are steps like any other: a second build replays them from the cache.
    let again = build_tagged(&ws, "Dockerfile", "onbuild-child", &[]);
    assert!(again.contains("ONBUILD RUN <<EOF"), "{again}");
    assert_eq!(again.matches("CACHED").count(), 4, "{again}");
    // A trigger naming a stage the child does not define pulls it as an image.
    ws.write("Dockerfile", "FROM onbuild-parent\n");
    let out = ws.build(&[]);
    assert_fails_with(&out, "helper");
}

/// The `created_by` of each history entry, and whether it has a layer.
fn history(config: &Value) -> Vec<(String, bool)> {
    config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let text = h["created_by"].as_str().unwrap().to_owned();
            (text, h["empty_layer"] != true)
        })
        .collect()
}

#[test]
fn expose_is_normalised_and_history_is_worded_as_buildkit_writes_it() {
    let ws = Workspace::new();
    ws.write("f1", "one");
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         ARG a=b c=d\n\
         ENV E=1 F=two\n\
         LABEL l=v\n\
         EXPOSE 3333-3334 80/TcP 0.0.0.0:1234-1235:3333-3334 80\n\
         WORKDIR /app\n\
         WORKDIR /\n\
         VOLUME /data /logs\n\
         STOPSIGNAL SIGTERM\n\
         SHELL [\"/bin/sh\", \"-c\"]\n\
         HEALTHCHECK --interval=30s --retries=3 CMD curl -f localhost\n\
         ONBUILD RUN true\n\
         MAINTAINER someone\n\
         RUN --network=none true\n\
         RUN [\"echo\", \"a b\"]\n\
         COPY --link --chown=1:2 --chmod=644 f1 /d/\n\
         USER 1000\n\
         CMD [\"run\", \"x\"]\n\
         ENTRYPOINT echo \"hi\"\n",
    );
    build_tagged(&ws, "Dockerfile", "worded", &[]);
    let config = config_of(&ws, "worded");
    let ports: Vec<&String> = config["config"]["ExposedPorts"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(ports, ["3333/tcp", "3334/tcp", "80/tcp"]);
    assert_eq!(config["author"], "someone");
    assert_eq!(config["config"]["WorkingDir"], "/");
    let expected = [
        ("ARG a=b c=d", false),
        ("ENV E=1 F=two", false),
        ("LABEL l=v", false),
        (
            // The words sorted as written, then each expanded, as BuildKit does.
            "EXPOSE [3333/tcp 3334/tcp 3333/tcp 3334/tcp 80/tcp 80/tcp]",
            false,
        ),
        ("WORKDIR /app", true),
        ("WORKDIR /", false),
        ("VOLUME [/data /logs]", false),
        ("STOPSIGNAL SIGTERM", false),
        ("SHELL [/bin/sh -c]", false),
        (
            "HEALTHCHECK {Test:[CMD-SHELL curl -f localhost] Interval:30s Timeout:0s \
             StartPeriod:0s StartInterval:0s Retries:3}",
            false,
        ),
        ("MAINTAINER someone", false),
        // A RUN that changes nothing still has its (empty) layer, as in BuildKit.
        ("RUN |2 a=b c=d /bin/sh -c true # buildkit", true),
        ("RUN |2 a=b c=d echo a b # buildkit", true),
        ("COPY --chown=1:2 --chmod=644 f1 /d/ # buildkit", true),
        ("USER 1000", false),
        ("CMD [\"run\" \"x\"]", false),
        ("ENTRYPOINT [\"/bin/sh\" \"-c\" \"echo \\\"hi\\\"\"]", false),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(t, l)| (t.to_string(), *l)).collect();
    assert_eq!(history(&config), expected);
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    // A port that is only invalid once expanded fails at its line.
    ws.write("Dockerfile", "FROM scratch\nARG P=99999\nEXPOSE $P\n");
    let out = ws.build(&[]);
    assert_fails_with(&out, "EXPOSE");
    assert_fails_with(&out, ":3");
}

/// An OCI layout at `ws/NAME` holding one image of this host's platform with no layers
/// and `config` as its container config, as a `--build-context` value.
fn bare_image(ws: &Workspace, name: &str, config: Value) -> String {
    let dir = ws.path(name);
    write_layout(&dir, host_arch(), config);
    format!("{name}=oci-layout://{}", dir.display())
}

#[test]
fn config_defaults_are_buildkits_path_and_a_scratch_workdir() {
    let ws = Workspace::new();
    let base = bare_image(&ws, "noenv", serde_json::json!({"User": "0"}));
    ws.write(
        "Dockerfile",
        "FROM noenv\nENV PATH=/opt/tools/bin:$PATH\nRUN echo \"$PATH\" > /path.txt\n",
    );
    let out = exported(
        &ws,
        "Dockerfile",
        "path-default",
        &["--build-context", &base],
    );
    let path = "/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    assert_eq!(read(&out, "path.txt"), format!("{path}\n"));
    let config = config_of(&ws, "path-default");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!([format!("PATH={path}")])
    );
    // An image keeps its own (empty) working directory; scratch gets `/`.
    assert!(config["config"].get("WorkingDir").is_none());
    ws.write("Dockerfile", "FROM scratch\nLABEL a=b\n");
    build_tagged(&ws, "Dockerfile", "scratch-defaults", &[]);
    let config = config_of(&ws, "scratch-defaults");
    assert_eq!(config["config"]["WorkingDir"], "/");
    assert_eq!(
        config["config"]["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
    );
}

#[test]
fn targetstage_proxies_and_a_dockerfile_source_date_epoch() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "ARG SOURCE_DATE_EPOCH=1700000000\n\
         FROM scratch AS first\n\
         ARG TARGETSTAGE\n\
         RUN echo \"$TARGETSTAGE\" > /stage.txt\n\
         FROM scratch AS last\n\
         ARG TARGETSTAGE\n\
         RUN echo \"$TARGETSTAGE $HTTP_PROXY $http_proxy $NO_PROXY\" > /stage.txt\n",
    );
    let proxy = [
        "--build-arg",
        "http_proxy=http://proxy.one:3128",
        "--build-arg",
        "NO_PROXY=x",
    ];
    let out = exported(&ws, "Dockerfile", "last", &proxy);
    assert_eq!(
        read(&out, "stage.txt"),
        "last http://proxy.one:3128 http://proxy.one:3128 x\n"
    );
    let first = exported(&ws, "Dockerfile", "first", &["--target", "first"]);
    assert_eq!(read(&first, "stage.txt"), "first\n");
    // The Dockerfile's epoch dates the image (and no proxy reaches its history).
    let config = config_of(&ws, "last");
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    assert!(!config.to_string().contains("proxy.one"));
    // Another proxy is not another input: the step is replayed.
    let other = [
        "--build-arg",
        "HTTP_PROXY=http://proxy.two:3128",
        "--build-arg",
        "NO_PROXY=x",
    ];
    let log = build_tagged(&ws, "Dockerfile", "last", &other);
    assert_eq!(log.matches("CACHED").count(), 1, "{log}");
    // A build arg wins over the Dockerfile's value; a bad value names its line.
    build_tagged(
        &ws,
        "Dockerfile",
        "dated",
        &["--build-arg", "SOURCE_DATE_EPOCH=0"],
    );
    assert_eq!(config_of(&ws, "dated")["created"], "1970-01-01T00:00:00Z");
    ws.write(
        "Dockerfile",
        "ARG SOURCE_DATE_EPOCH=yesterday\nFROM scratch\n",
    );
    let out = ws.build(&[]);
    assert_fails_with(&out, "Dockerfile:1: invalid SOURCE_DATE_EPOCH: yesterday");
}

#[test]
fn a_stage_built_from_a_stage_inherits_its_args() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS base\nARG V=1\nFROM base\nRUN echo \"$V\" > /v\n",
    );
    let out = exported(&ws, "Dockerfile", "inherits", &[]);
    assert_eq!(read(&out, "v"), "1\n");
    let config = config_of(&ws, "inherits");
    let texts: Vec<String> = history(&config).into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        texts,
        [
            "ARG V=1",
            "RUN |1 V=1 /bin/sh -c echo \"$V\" > /v # buildkit"
        ]
    );
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(
        !env.iter().any(|e| e.as_str().unwrap().starts_with("V=")),
        "{env:?}"
    );
}
