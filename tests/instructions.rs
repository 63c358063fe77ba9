//! ONBUILD, EXPOSE, built-in args, history and config defaults as BuildKit writes them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use serde_json::Value;
use support::*;

/// Reads a JSON blob of the local image store by digest.
fn blob(ws: &Workspace, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    let path = ws.store().join("blobs/sha256").join(hex);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The config of the image tagged `tag` in the workspace's local image store.
fn config_of(ws: &Workspace, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(ws.store().join("index.json")).unwrap()).unwrap();
    let name = format!("{tag}:latest");
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name.as_str())
        .unwrap_or_else(|| panic!("no {name} in {index}"));
    let manifest = blob(ws, manifest["digest"].as_str().unwrap());
    blob(ws, manifest["config"]["digest"].as_str().unwrap())
}

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
