//! Loading and planning real compose projects in a temp directory: lookup, override
//! files, `.env`, `--env-file`, the mapping of every `build:` option, and the clear
//! refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_compose::{ComposeError, Defaults, LoadOptions, ServiceBuild, load, plan};

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, body).unwrap();
        }
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            cwd: self.path().to_owned(),
            ..LoadOptions::default()
        }
    }

    fn plan_with(
        &self,
        opts: &LoadOptions,
        env: &[(&str, &str)],
        services: &[&str],
    ) -> Result<Vec<ServiceBuild>, ComposeError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let project = load(opts, env)?;
        let defaults = Defaults {
            cache_dir: self.path().join("cache"),
            image_store: None,
            no_cache: false,
            leak_policy: kiln_engine::LeakPolicy::Error,
        };
        let services: Vec<String> = services.iter().map(|s| s.to_string()).collect();
        plan(&project, &services, &defaults)
    }

    fn plan(&self, env: &[(&str, &str)]) -> Result<Vec<ServiceBuild>, ComposeError> {
        self.plan_with(&self.opts(), env, &[])
    }

    fn error(&self, env: &[(&str, &str)]) -> String {
        match self.plan(env) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }
}

fn one(p: &Project, env: &[(&str, &str)]) -> ServiceBuild {
    let mut all = p.plan(env).unwrap();
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn every_build_option_maps_onto_the_request() {
    let p = Project::new(&[
        (
            "compose.yaml",
            "name: Shop_App\nservices:\n  web:\n    build:\n      context: ./src\n      dockerfile: docker/Web.Dockerfile\n      args: [A=1, FROM_ENV, UNSET_ARG]\n      target: prod\n      labels: {l: v}\n      tags: [extra:1]\n      platforms: [linux/arm64]\n      network: none\n      no_cache: ${NOCACHE:-false}\n      additional_contexts: {assets: ./assets, base: docker-image://alpine:3}\n      secrets: [tok]\nsecrets:\n  tok: {file: ./tok.txt}\n",
        ),
        ("tok.txt", "token-value"),
    ]);
    let b = one(&p, &[("FROM_ENV", "e"), ("NOCACHE", "true")]);
    let r = &b.request;
    assert_eq!(b.service, "web");
    assert_eq!(b.tags, ["shop_app-web", "extra:1"]);
    assert_eq!(r.context_dir, p.path().join("./src"));
    assert_eq!(
        r.dockerfile,
        p.path().join("./src").join("docker/Web.Dockerfile")
    );
    assert_eq!(
        r.build_args,
        [
            ("A".to_string(), "1".to_string()),
            ("FROM_ENV".into(), "e".into())
        ]
    );
    assert_eq!(r.target.as_deref(), Some("prod"));
    assert_eq!(r.labels, [("l".to_string(), "v".to_string())]);
    assert_eq!(r.platform.to_string(), "linux/arm64");
    assert!(!r.network.enabled);
    assert!(r.no_cache);
    assert_eq!(r.secrets.get("tok").unwrap().expose(), b"token-value");
    assert_eq!(
        r.build_contexts["assets"],
        kiln_engine::NamedContext::Local(p.path().join("./assets"))
    );
    assert_eq!(
        r.build_contexts["base"],
        kiln_engine::NamedContext::DockerImage("alpine:3".into())
    );
}

#[test]
fn lookup_finds_the_file_and_its_override_from_a_subdirectory() {
    let p = Project::new(&[
        (
            "docker-compose.yml",
            "services:\n  a: {build: ., image: a}\n",
        ),
        (
            "docker-compose.override.yml",
            "services:\n  a: {build: {target: t}}\n",
        ),
        (".env", "UNUSED=1\n"),
        ("sub/dir/keep", ""),
    ]);
    let opts = LoadOptions {
        cwd: p.path().join("sub/dir"),
        ..LoadOptions::default()
    };
    let b = p.plan_with(&opts, &[], &[]).unwrap().remove(0);
    assert_eq!(b.request.target.as_deref(), Some("t"));
    assert_eq!(b.request.context_dir, p.path().join("."));

    let empty = Project::new(&[]);
    let err = empty.plan(&[]).err().unwrap().to_string();
    assert!(
        err.starts_with("no configuration file provided: not found"),
        "{err}"
    );
}

#[test]
fn env_files_and_precedence() {
    let p = Project::new(&[
        (
            "compose.yaml",
            "services:\n  a:\n    image: ${NAME}:${TAG:-latest}\n    build: .\n",
        ),
        (".env", "NAME=from-dotenv\nTAG=dotenv\n"),
        ("other.env", "NAME=from-other\n"),
    ]);
    // The process environment wins over .env.
    let b = one(&p, &[("TAG", "os")]);
    assert_eq!(b.tags, ["from-dotenv:os"]);
    // --env-file replaces .env.
    let opts = LoadOptions {
        env_files: vec![PathBuf::from("other.env")],
        ..p.opts()
    };
    let b = p.plan_with(&opts, &[], &[]).unwrap().remove(0);
    assert_eq!(b.tags, ["from-other:latest"]);
    let opts = LoadOptions {
        env_files: vec![PathBuf::from("missing.env")],
        ..p.opts()
    };
    let err = p.plan_with(&opts, &[], &[]).err().unwrap().to_string();
    assert!(err.starts_with("couldn't find env file:"), "{err}");
}

#[test]
fn project_directory_moves_relative_paths() {
    let p = Project::new(&[
        ("files/compose.yaml", "services:\n  a:\n    build: ./app\n"),
        ("elsewhere/.env", "X=1\n"),
    ]);
    let opts = LoadOptions {
        files: vec![PathBuf::from("files/compose.yaml")],
        project_directory: Some(PathBuf::from("elsewhere")),
        ..p.opts()
    };
    let b = p.plan_with(&opts, &[], &[]).unwrap().remove(0);
    assert_eq!(
        b.request.context_dir,
        p.path().join("elsewhere").join("./app")
    );
    assert_eq!(b.tags, ["elsewhere-a"]);
}

#[test]
fn dockerfile_inline_is_written_for_the_build() {
    let p = Project::new(&[(
        "compose.yaml",
        "services:\n  a:\n    build:\n      dockerfile_inline: |\n        FROM scratch\n        LABEL a=$$HOME\n",
    )]);
    let b = one(&p, &[]);
    let text = std::fs::read_to_string(&b.request.dockerfile).unwrap();
    assert_eq!(text, "FROM scratch\nLABEL a=$HOME\n");
    let path = b.request.dockerfile.clone();
    drop(b);
    assert!(!path.exists(), "the inline Dockerfile goes with the build");
}

#[test]
fn options_kiln_cannot_honour_are_refused_by_name() {
    let cases = [
        (
            "build: {context: ., ssh: [default]}",
            "services.a.build.ssh: `ssh` is not supported",
        ),
        (
            "build: {context: ., cache_from: [r/x]}",
            "services.a.build.cache_from: `cache_from`",
        ),
        (
            "build: {context: ., cache_to: [r/x]}",
            "services.a.build.cache_to: `cache_to`",
        ),
        (
            "build: {context: ., pull: true}",
            "services.a.build.pull: `pull: true`",
        ),
        (
            "build: {context: ., platforms: [linux/amd64, linux/arm64]}",
            "more than one platform",
        ),
        (
            "build: {context: ., extra_hosts: [a:1.2.3.4]}",
            "services.a.build.extra_hosts: `extra_hosts`",
        ),
        (
            "build: {context: 'https://github.com/x/y.git'}",
            "the remote context",
        ),
        (
            "build: {context: 'git@github.com:x/y.git'}",
            "the remote context",
        ),
        ("build: {context: ., network: bridge}", "network \"bridge\""),
        (
            "build: {context: ., dockerfile: D, dockerfile_inline: x}",
            "service a declares mutually exclusive dockerfile and dockerfile_inline",
        ),
        (
            "build: {context: ., secrets: [nope]}",
            "service \"a\" refers to undefined secret nope",
        ),
        (
            "build: {context: ., secrets: [ext]}",
            "build secret \"ext\" is external",
        ),
        (
            "build: {context: ., secrets: [envless]}",
            "only supports environment or file-based secrets",
        ),
        (
            "build: {context: ., secrets: [fromenv]}",
            "environment variable NOPE_UNSET is not set",
        ),
        (
            "build: {context: ., additional_contexts: {x: 'service:b'}}",
            "\"service:b\"",
        ),
        (
            "build: {context: ., no_cache: maybe}",
            "services.a.build.no_cache",
        ),
        ("extends: {service: b}\n    build: .", "`extends`"),
    ];
    for (service, want) in cases {
        let yaml = format!(
            "services:\n  a:\n    {service}\nsecrets:\n  ext: {{external: true}}\n  envless: {{name: x}}\n  fromenv: {{environment: NOPE_UNSET}}\n"
        );
        let p = Project::new(&[("compose.yaml", &yaml)]);
        let err = p.error(&[]);
        assert!(err.contains(want), "{service}: {err}");
    }
}

#[test]
fn services_are_picked_as_compose_does() {
    let p = Project::new(&[(
        "compose.yaml",
        "services:\n  a: {build: .}\n  b: {build: ., profiles: [debug]}\n  c: {image: redis}\n",
    )]);
    let names = |env: &[(&str, &str)], picked: &[&str]| -> Vec<String> {
        p.plan_with(&p.opts(), env, picked)
            .unwrap()
            .into_iter()
            .map(|b| b.service)
            .collect()
    };
    assert_eq!(names(&[], &[]), ["a"]);
    assert_eq!(names(&[("COMPOSE_PROFILES", "debug")], &[]), ["a", "b"]);
    assert_eq!(names(&[], &["b", "c"]), ["b"]);
    let err = p.plan_with(&p.opts(), &[], &["zz"]).err().unwrap();
    assert_eq!(err.to_string(), "no such service: zz");
}

#[test]
fn yaml_anchors_merge_keys_and_bad_shapes() {
    let p = Project::new(&[(
        "compose.yaml",
        "x-build: &b {context: ., target: shared}\nservices:\n  a:\n    build:\n      <<: *b\n      args: {N: 1}\n",
    )]);
    let b = one(&p, &[]);
    assert_eq!(b.request.target.as_deref(), Some("shared"));
    assert_eq!(b.request.build_args, [("N".to_string(), "1".to_string())]);

    let p = Project::new(&[("compose.yaml", "- a\n- b\n")]);
    assert!(p.error(&[]).contains("Top-level object must be a mapping"));
    let p = Project::new(&[("compose.yaml", "services:\n  a:\n    build: {args: 5}\n")]);
    assert!(p.error(&[]).contains("services.a.build.args"));
}
