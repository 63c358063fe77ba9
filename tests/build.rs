//! `kiln build` end to end: reproducible digests, multi-stage concurrency and `--target`,
//! exports read by real OCI tools, and error messages that point at the Dockerfile.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod support;

use std::process::Command;

use support::*;

trait UmaskExt {
    fn output_with_umask(&mut self, args: &[&str]) -> std::process::Output;
}

impl UmaskExt for Command {
    /// Runs `sh -c 'umask 077; exec kiln ARGS'` with this command's environment.
    fn output_with_umask(&mut self, args: &[&str]) -> std::process::Output {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg("umask 077 && exec \"$KILN_UNDER_TEST\" \"$@\"")
            .arg("kiln")
            .args(args);
        for (k, v) in self.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        if let Some(dir) = self.get_current_dir() {
            sh.current_dir(dir);
        }
        sh.output().expect("run kiln under sh")
    }
}

/// The manifest digest kiln reports through `--metadata-file`.
fn manifest_digest(ws: &Workspace, extra: &[&str]) -> String {
    let meta = ws.path("meta.json");
    let mut args = vec!["--metadata-file", meta.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = ws.build(&args);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    v["containerimage.digest"].as_str().unwrap().to_owned()
}

const REPRO: &str = "FROM scratch\n\
WORKDIR /app\n\
COPY . /app/src/\n\
RUN mkdir -p out && cat src/a.txt src/b.txt > out/ab.txt && date > out/when && ls -l src > out/listing\n\
ENV MODE=release\n\
CMD [\"cat\", \"/app/out/ab.txt\"]\n";

#[test]
fn same_inputs_same_digest_cold_warm_umask_tz() {
    let ws = Workspace::new();
    ws.write("Dockerfile", REPRO);
    ws.write("a.txt", "alpha\n");
    ws.write("b.txt", "beta\n");
    let cold = manifest_digest(&ws, &[]);
    let warm = manifest_digest(&ws, &[]);
    assert_eq!(cold, warm, "warm cache changed the digest");

    // A second workspace: fresh cache, files written in the other order, another umask,
    // time zone and locale, and another working directory.
    let other = Workspace::new();
    other.write("b.txt", "beta\n");
    other.write("a.txt", "alpha\n");
    other.write("Dockerfile", REPRO);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // What a umask of 077 would have produced on checkout.
        for f in ["a.txt", "b.txt", "Dockerfile"] {
            let p = other.context().join(f);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let meta = other.path("meta.json");
    // kiln itself runs under umask 077 (through sh, which sets it before exec).
    let mut cmd = other.kiln();
    let kiln = cmd.get_program().to_owned();
    let out = cmd
        .env("TZ", "Pacific/Kiritimati")
        .env("LC_ALL", "C")
        .current_dir("/")
        .env("KILN_UNDER_TEST", &kiln)
        .output_with_umask(&[
            "build",
            "--progress",
            "plain",
            "--metadata-file",
            meta.to_str().unwrap(),
            other.context().to_str().unwrap(),
        ]);
    assert_ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(v["containerimage.digest"].as_str().unwrap(), cold);

    // SOURCE_DATE_EPOCH is part of the input: a different epoch, a different image.
    let dated = manifest_digest(&ws, &["--build-arg", "SOURCE_DATE_EPOCH=1700000000"]);
    assert_ne!(dated, cold);
}

#[test]
fn independent_stages_run_concurrently_and_target_builds_only_what_it_needs() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch AS left\n\
         RUN seq 1 300000 > /left.txt && sha256sum /left.txt > /left.sum\n\
         FROM scratch AS right\n\
         RUN seq 1 300000 > /right.txt && sha256sum /right.txt > /right.sum\n\
         FROM scratch AS unused\n\
         RUN echo never > /never\n\
         FROM scratch AS final\n\
         COPY --from=left /left.sum /sums/\n\
         COPY --from=right /right.sum /sums/\n\
         RUN cat /sums/left.sum /sums/right.sum > /all.sum\n",
    );
    let out = ws
        .kiln()
        .args(["build", "--progress", "rawjson", "-t", "multi"])
        .arg(ws.context())
        .output()
        .unwrap();
    assert_ok(&out);
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let time = |stage: &str, kind: &str| -> u128 {
        events
            .iter()
            .find(|e| e["event"] == kind && e["step"]["stage"] == stage)
            .and_then(|e| e["at_us"].as_u64())
            .unwrap_or_else(|| panic!("no {kind} for {stage}: {}", text(&out.stderr)))
            as u128
    };
    let (ls, ld) = (time("left", "step_started"), time("left", "step_done"));
    let (rs, rd) = (time("right", "step_started"), time("right", "step_done"));
    assert!(
        ls < rd && rs < ld,
        "left [{ls},{ld}] and right [{rs},{rd}] did not overlap"
    );
    // The unused stage never ran; the final stage ran after both.
    assert!(!events.iter().any(|e| e["step"]["stage"] == "unused"));
    assert!(time("final", "step_started") >= ld.max(rd));

    // --target right builds only `right`.
    let out = ws
        .kiln()
        .args([
            "build",
            "--progress",
            "rawjson",
            "--target",
            "right",
            "-t",
            "r",
        ])
        .arg(ws.context())
        .output()
        .unwrap();
    assert_ok(&out);
    let log = text(&out.stderr);
    assert!(log.contains("\"right\""), "{log}");
    assert!(
        !log.contains("\"left\"") && !log.contains("\"final\""),
        "{log}"
    );
    let sum = ws
        .kiln()
        .args(["run", "multi", "cat", "/all.sum"])
        .output()
        .unwrap();
    assert_ok(&sum);
    assert_eq!(text(&sum.stdout).lines().count(), 2);
}

#[test]
fn skopeo_and_umoci_read_what_kiln_engines() {
    if !have("skopeo") || !have("umoci") {
        return;
    }
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY hello.txt /srv/\nRUN ln -s /srv/hello.txt /srv/link && chmod 0750 /srv\nUSER 1000\n",
    );
    ws.write("hello.txt", "hi\n");
    let layout = ws.path("layout");
    let archive = ws.path("image.tar");
    let out = ws.build(&[
        "-t",
        "interop:v1",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        "-o",
        &format!("type=docker,dest={}", archive.display()),
    ]);
    assert_ok(&out);
    let inspect = Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:interop:v1", layout.display()))
        .output()
        .unwrap();
    assert_ok(&inspect);
    let config: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(config["config"]["User"], "1000");
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    let docker = Command::new("skopeo")
        .args(["inspect"])
        .arg(format!("docker-archive:{}", archive.display()))
        .output()
        .unwrap();
    assert_ok(&docker);

    let bundle = ws.path("bundle");
    let unpack = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:interop:v1", layout.display()))
        .arg(&bundle)
        .output()
        .unwrap();
    assert_ok(&unpack);
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/hello.txt")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("srv/link")).unwrap(),
        std::path::Path::new("/srv/hello.txt")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(rootfs.join("srv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
    }
}

#[test]
fn errors_point_at_the_dockerfile_line() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN echo ok\nCOPY --bogus a b\n",
    );
    let out = ws.build(&[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(err.contains('^'), "{err}");

    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN echo first line && echo second line >&2 && exit 3\n",
    );
    let out = ws.build(&[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("Dockerfile:2"), "{err}");
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("second line"), "{err}");
    // The cause is said once, not again after the output tail.
    let error = &err[err.find("error: ").expect("an error line")..];
    assert_eq!(error.matches("exit code: 3").count(), 1, "{err}");
    assert!(error.trim_end().ends_with("second line"), "{err}");

    ws.write("Dockerfile", "FROM scratch\nCOPY ../../etc/passwd /\n");
    let out = ws.build(&[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("outside the build context"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn local_export_and_cache_hits() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY a.txt /\nRUN cp /a.txt /b.txt\n",
    );
    ws.write("a.txt", "A\n");
    let dest = ws.path("rootfs");
    let out = ws.build(&["-o", &format!("type=local,dest={}", dest.display())]);
    assert_ok(&out);
    assert_eq!(std::fs::read_to_string(dest.join("b.txt")).unwrap(), "A\n");
    let again = ws.build(&[]);
    assert_ok(&again);
    let log = text(&again.stderr);
    assert_eq!(log.matches("CACHED").count(), 2, "{log}");
    // A changed source invalidates the COPY and everything after it.
    ws.write("a.txt", "changed\n");
    let changed = ws.build(&[]);
    assert_ok(&changed);
    assert_eq!(text(&changed.stderr).matches("CACHED").count(), 0);
}

#[test]
fn add_unpacks_archives_fetches_urls_and_copy_excludes() {
    let server = HelloServer::start();
    let ws = Workspace::new();
    // A gzip tar in the context.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o755);
    h.set_cksum();
    tar.append_data(&mut h, "bin/tool", &b"#!x"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    ws.write("tool.tar.gz", gz.finish().unwrap());
    ws.write("src/keep.rs", "k");
    ws.write("src/skip.tmp", "s");
    let body_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b"Hello, guest\n"))
    };
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch\n\
             ADD tool.tar.gz /opt/\n\
             ADD --checksum=sha256:{body_sha} {url}greeting /dl/\n\
             COPY --exclude=*.tmp src /src\n",
            url = server.url()
        ),
    );
    let out = ws.build(&["-t", "adds"]);
    assert_ok(&out);
    let ls = ws
        .kiln()
        .args(["run", "adds", "ls", "-lR", "/opt", "/dl", "/src"])
        .output()
        .unwrap();
    assert_ok(&ls);
    let listing = text(&ls.stdout);
    assert!(
        listing.contains("-rwxr-xr-x") && listing.contains("tool"),
        "{listing}"
    );
    assert!(listing.contains("greeting"), "{listing}");
    assert!(
        listing.contains("keep.rs") && !listing.contains("skip.tmp"),
        "{listing}"
    );
    let dl = ws
        .kiln()
        .args(["run", "adds", "cat", "/dl/greeting"])
        .output()
        .unwrap();
    assert_eq!(text(&dl.stdout), "Hello, guest\n");

    // A wrong checksum fails the build and names both digests.
    ws.write(
        "Dockerfile",
        format!(
            "FROM scratch\nADD --checksum=sha256:{} {}x /x\n",
            "0".repeat(64),
            server.url()
        ),
    );
    let out = ws.build(&[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("checksum mismatch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn cache_mounts_persist_between_builds_but_stay_out_of_the_image() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         ARG N\n\
         RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/log && wc -l < /var/cache/app/log > /runs\n",
    );
    // A new N reruns the step; `--no-cache` would start the cache mount anew.
    for expected in ["1", "2"] {
        let out = ws.build(&["--build-arg", &format!("N={expected}"), "-t", "cm"]);
        assert_ok(&out);
        let runs = ws
            .kiln()
            .args(["run", "cm", "cat", "/runs"])
            .output()
            .unwrap();
        assert_eq!(text(&runs.stdout).trim(), expected);
    }
    let ls = ws
        .kiln()
        .args(["run", "cm", "ls", "/var/cache/app"])
        .output()
        .unwrap();
    assert!(
        !ls.status.success(),
        "the cache mount leaked into the image"
    );
}

/// A WASI program that prints its first argument and exits 3.
const ECHO_WAT: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hello from a wasm file\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 23))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $exit (i32.const 3))))
"#;

#[test]
fn kiln_run_runs_a_wasm_file_from_a_bind_mount_and_passes_the_status() {
    let ws = Workspace::new();
    let dir = ws.path("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join("hello.wasm");
    std::fs::write(&wasm, wat::parse_str(ECHO_WAT).unwrap()).unwrap();
    let run = || {
        ws.kiln()
            .args(["run", "--mount"])
            .arg(format!("type=bind,source={},target=/w", dir.display()))
            .args(["scratch", "/w/hello.wasm"])
            .output()
            .unwrap()
    };
    // As `docker run` with a bind mount: a file without an execute bit does not run.
    let denied = run();
    assert_eq!(denied.status.code(), Some(126), "{}", text(&denied.stderr));
    assert!(text(&denied.stderr).contains("Permission denied"));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&wasm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run();
    assert_eq!(
        text(&out.stdout),
        "hello from a wasm file\n",
        "stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));
    let env = ws
        .kiln()
        .args([
            "run",
            "-e",
            "GREETING=hi",
            "-w",
            "/tmp",
            "scratch",
            "sh",
            "-c",
        ])
        .arg("echo $GREETING $HOME; pwd")
        .output()
        .unwrap();
    assert_eq!(text(&env.stdout), "hi /root\n/tmp\n");
}

/// `kiln run` runs in the same sandbox as a RUN step: the image's USER, and HOME from its
/// /etc/passwd, as `docker run` gives them (before, `kiln run` ignored USER).
#[test]
fn kiln_run_takes_user_and_home_from_the_image_like_a_run_step() {
    let ws = Workspace::new();
    ws.write(
        "passwd",
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    );
    ws.write(
        "Dockerfile",
        // app may not write into root's `/` (BuildKit refuses too): a sticky /tmp it may.
        "FROM scratch\nCOPY passwd /etc/passwd\nRUN mkdir -m 1777 /tmp\nUSER app\n\
         RUN echo \"$HOME\" > /tmp/seen\n",
    );
    assert_ok(&ws.build(&["-t", "users:latest"]));
    let run = ws
        .kiln()
        .args(["run", "users:latest", "sh", "-c"])
        .arg("cat /tmp/seen; echo \"$HOME\"; echo x > /tmp/mine; stat -c %u:%g /tmp/mine")
        .output()
        .unwrap();
    assert_ok(&run);
    assert_eq!(text(&run.stdout), "/home/app\n/home/app\n1000:1000\n");
}

#[test]
fn guests_that_spawn_a_shell_come_back_to_kiln() {
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN echo a b | xargs -n1 sh -c 'echo item $0' > /out && env FOO=1 sh -c 'echo $FOO' >> /out\n",
    );
    assert_ok(&ws.build(&["-t", "spawn"]));
    let out = ws
        .kiln()
        .args(["run", "spawn", "cat", "/out"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "item a\nitem b\n1\n");
}

#[test]
fn the_guest_clock_reads_the_source_date_epoch() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nRUN date -u +%s > /now\n");
    assert_ok(&ws.build(&["-t", "clock", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"]));
    let out = ws
        .kiln()
        .args(["run", "clock", "cat", "/now"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "1700000000\n");
}

#[test]
fn push_to_a_real_registry_and_build_from_it_again() {
    let Some(reg) = start_registry() else { return };
    let ws = Workspace::new();
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY msg.txt /\nCMD [\"cat\", \"/msg.txt\"]\n",
    );
    ws.write("msg.txt", "pushed\n");
    let name = format!("{}/kiln/demo:1", reg.addr);
    let out = ws.build(&["-t", &name, "--push"]);
    assert_ok(&out);
    if have("skopeo") {
        let inspect = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false"])
            .arg(format!("docker://{name}"))
            .output()
            .unwrap();
        assert_ok(&inspect);
        let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    }
    // `kiln push` of the stored image works too.
    let out = ws.kiln().args(["push", &name]).output().unwrap();
    assert_ok(&out);

    // A fresh machine (empty store and cache) builds FROM the pushed image: kiln pulls it.
    let other = Workspace::new();
    other.write(
        "Dockerfile",
        format!(
            "FROM {name}
RUN cat /msg.txt > /copy.txt
"
        ),
    );
    assert_ok(&other.build(&["-t", "derived"]));
    let copy = other
        .kiln()
        .args(["run", "derived", "cat", "/copy.txt"])
        .output()
        .unwrap();
    assert_eq!(text(&copy.stdout), "pushed\n");
}
