//! Hostile inputs: secrets. Each test is an attack that tries to get a secret value to
//! rest somewhere (a log, an error, a layer, the cache) or to crash the guard; each
//! checks the exact outcome and then that the value is nowhere under the cache.

use std::path::PathBuf;

use crate::support::*;

/// A workspace with the secret `s` (value `value`) in a file beside the context.
fn with_secret(value: &[u8]) -> (Workspace, String) {
    let ws = Workspace::new();
    let file = ws.path("secret-s");
    std::fs::write(&file, value).expect("secret file");
    let flag = format!("id=s,src={}", file.display());
    (ws, flag)
}

fn log_of(out: &std::process::Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

/// Panics if `needle` is anywhere under the cache (blobs, steps, files, mounts).
fn assert_nowhere_at_rest(ws: &Workspace, needle: &[u8]) {
    let found: Option<PathBuf> = find_in_tree(&ws.cache(), needle);
    assert_eq!(found, None, "the secret value is at rest in the cache");
}

#[test]
fn warn_policy_warns_and_still_writes_the_image() {
    let (ws, secret) = with_secret(b"warn-policy-value-1234");
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=s cp /run/secrets/s /copied\n",
    );
    let out = ws.build(&["-t", "warned", "--secret", &secret, "--secret-leak=warn"]);
    assert_ok(&out);
    let log = log_of(&out);
    assert!(
        log.contains("secret leak: the value of secret \"s\" was found in /copied"),
        "{log}"
    );
    assert!(!log.contains("warn-policy-value"), "{log}");
    // The image exists and holds what the step wrote (the user chose to only warn).
    let cat = ws.kiln().args(["run", "warned", "cat", "/copied"]).output();
    let cat = cat.expect("kiln run");
    assert_ok(&cat);
    assert_eq!(text(&cat.stdout), "warn-policy-value-1234");
}

#[test]
fn a_path_made_of_the_value_is_redacted_in_the_guard_error_and_json_events() {
    let value = b"TOPSECRET-path-4242";
    let (ws, secret) = with_secret(value);
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=s touch \"/$(cat /run/secrets/s)\"\n",
    );
    let out = ws.build(&["--secret", &secret]);
    assert_fails_with(
        &out,
        "secret leak: the value of secret \"s\" was found in /**** (layer sha256:",
    );
    assert!(!log_of(&out).contains("TOPSECRET"), "{}", log_of(&out));
    assert_nowhere_at_rest(&ws, value);

    // The same attack under `--secret-leak=warn` with machine-readable progress.
    let out = ws
        .kiln()
        .args(["build", "--progress=rawjson", "--secret", &secret])
        .args(["--secret-leak=warn", "--no-cache"])
        .arg(ws.context())
        .output()
        .expect("run kiln");
    assert_ok(&out);
    let log = log_of(&out);
    assert!(log.contains("was found in /****"), "{log}");
    assert!(!log.contains("TOPSECRET"), "{log}");
}

#[test]
fn a_binary_value_is_redacted_and_caught_by_the_guard() {
    let value = b"\xffTOKEN-binary-secret\n";
    let (ws, secret) = with_secret(value);
    // The raw bytes reach the log through a program's own output.
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=secret,id=s cat /run/secrets/s\n",
    );
    let out = ws.build(&["--secret", &secret]);
    assert_ok(&out);
    let log = log_of(&out);
    assert!(!log.contains("TOKEN-binary"), "{log}");
    assert!(log.contains("****"), "{log}");

    // And into a layer, directly and through an `env=` secret (a text variable).
    for run in [
        "cat /run/secrets/s > /leak",
        "--mount=type=secret,id=s,env=TOK printf '%s' \"$TOK\" > /leak",
    ] {
        let mount = if run.starts_with("--") {
            ""
        } else {
            "--mount=type=secret,id=s "
        };
        ws.write("Dockerfile", format!("FROM scratch\nRUN {mount}{run}\n"));
        let out = ws.build(&["--secret", &secret]);
        assert_fails_with(
            &out,
            "secret leak: the value of secret \"s\" was found in /leak",
        );
        assert!(!log_of(&out).contains("TOKEN-binary"), "{}", log_of(&out));
        assert_nowhere_at_rest(&ws, b"TOKEN-binary-secret");
    }
}

/// Builds the image `tag` with the secret `s` set to `value` in a fresh secret file.
fn build_with_value(ws: &Workspace, tag: &str, value: &[u8]) -> std::process::Output {
    let file = ws.path("secret-s");
    std::fs::write(&file, value).expect("secret file");
    ws.build(&[
        "-t",
        tag,
        "--secret",
        &format!("id=s,src={}", file.display()),
    ])
}

fn cat_file(ws: &Workspace, image: &str, path: &str) -> String {
    let out = ws.kiln().args(["run", image, "cat", path]).output();
    let out = out.expect("kiln run");
    assert_ok(&out);
    text(&out.stdout)
}

#[test]
fn another_secret_value_never_replays_a_cached_result() {
    let ws = Workspace::new();
    // The first step's result depends on the value (its length); the second step depends
    // on the first, so it must not be replayed either.
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=s wc -c < /run/secrets/s > /len\n\
         RUN cp /len /len2\n",
    );
    let first = b"first-value-aaaa";
    assert_ok(&build_with_value(&ws, "one", first));
    assert_eq!(cat_file(&ws, "one", "/len2").trim(), "16");

    // Same value: a hit. Another value: both steps run again.
    let again = build_with_value(&ws, "one", first);
    assert_ok(&again);
    assert_eq!(
        log_of(&again).matches("CACHED").count(),
        2,
        "{}",
        log_of(&again)
    );
    let other = build_with_value(&ws, "two", b"the-second-value-is-longer");
    assert_ok(&other);
    assert!(!log_of(&other).contains("CACHED"), "{}", log_of(&other));
    assert_eq!(cat_file(&ws, "two", "/len2").trim(), "26");

    // The key file is private to the cache; no value nor plain hash is at rest.
    let key = ws.cache().join("secret-key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("secret key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    use sha2::Digest as _;
    for v in [&first[..], b"the-second-value-is-longer"] {
        assert_nowhere_at_rest(&ws, v);
        assert_nowhere_at_rest(&ws, hex::encode(sha2::Sha256::digest(v)).as_bytes());
    }
}

#[test]
fn a_cache_mount_holding_a_secret_is_not_saved() {
    let value = b"cache-mount-token-7777";
    let (ws, secret) = with_secret(value);
    // A small file (inline in the mount's tree) and a large one (in the file store).
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=s --mount=type=cache,id=m,target=/root/.cache \
         cp /run/secrets/s /root/.cache/token && \
         { seq 1 30000; cat /run/secrets/s; } > /root/.cache/big\n",
    );
    let out = ws.build(&["--secret", &secret]);
    assert_fails_with(
        &out,
        "secret leak: the value of secret \"s\" was found in /big in cache mount \"m\" (not saved)",
    );
    assert_nowhere_at_rest(&ws, value);

    // Under warn: a warning, the image is built, the mount's new state is dropped.
    let out = ws.build(&["--secret", &secret, "--secret-leak=warn", "--no-cache"]);
    assert_ok(&out);
    assert!(
        log_of(&out).contains("in cache mount \"m\" (not saved)"),
        "{}",
        log_of(&out)
    );
    assert_nowhere_at_rest(&ws, value);

    // A later build without the secret finds no token in the mount.
    ws.write(
        "Dockerfile",
        "FROM scratch\nRUN --mount=type=cache,id=m,target=/c ls -a /c\n",
    );
    let out = ws.build(&["--no-cache"]);
    assert_ok(&out);
    assert!(!log_of(&out).contains("token"), "{}", log_of(&out));
}

#[test]
fn a_secret_left_in_a_builder_stage_is_caught_and_purged() {
    let value = b"builder-stage-token-31337";
    let (ws, secret) = with_secret(value);
    // Only the artifact reaches the final image; the token sits in the builder's layer.
    ws.write(
        "Dockerfile",
        "FROM scratch AS builder\n\
         RUN --mount=type=secret,id=s cp /run/secrets/s /token && echo built > /artifact\n\
         FROM scratch\n\
         COPY --from=builder /artifact /artifact\n",
    );
    let out = ws.build(&["--secret", &secret]);
    assert_fails_with(
        &out,
        "secret leak: the value of secret \"s\" was found in /token (layer sha256:",
    );
    assert_nowhere_at_rest(&ws, value);
    // Its step record went with the layer: the next build runs the step again (step #1;
    // the clean COPY may be a hit).
    let out = ws.build(&["--secret", &secret]);
    assert_fails_with(&out, "was found in /token");
    assert!(log_of(&out).contains("#1 DONE"), "{}", log_of(&out));
}

#[test]
fn a_caught_leak_leaves_no_copy_in_the_file_store() {
    let value = b"file-store-token-55555";
    let (ws, secret) = with_secret(value);
    // A file over the inline limit (64 KiB) is kept in `files/blobs` when the step's
    // tree is frozen, beside the layer.
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=secret,id=s { seq 1 30000; cat /run/secrets/s; } > /big\n",
    );
    let out = ws.build(&["--secret", &secret]);
    assert_fails_with(&out, "was found in /big (layer sha256:");
    assert_nowhere_at_rest(&ws, value);
    // A clean file of the same size stays: only content holding a value is removed.
    ws.write("Dockerfile", "FROM scratch\nRUN seq 1 30000 > /big\n");
    assert_ok(&ws.build(&["--secret", &secret]));
    assert!(
        all_files(&ws.cache().join("files/blobs")).len() == 1,
        "{:?}",
        all_files(&ws.cache().join("files/blobs"))
    );
}

#[test]
fn leftover_temp_files_are_swept_only_when_no_other_build_runs() {
    let value = b"left-in-a-temp-file-999";
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nRUN echo hi > /hi\n");
    assert_ok(&ws.build(&[]));
    // What a build killed mid-write leaves: temp files that may hold a step's data.
    let cache = ws.cache();
    let leftovers = [
        cache.join("files/tmp/.put-killed"),
        cache.join("steps/.tmpKilled"),
        cache.join("blobs/.kiln-tmp-killed"),
    ];
    for p in &leftovers {
        std::fs::write(p, value).expect("plant a temp file");
    }
    // Another build holds the cache lock shared: its temp files must survive.
    let lock = std::fs::File::open(cache.join("lock")).expect("lock file");
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open fd; flock has no memory effects.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH) }, 0);
    assert_ok(&ws.build(&[]));
    assert!(leftovers.iter().all(|p| p.exists()), "swept under a build");
    drop(lock);
    assert_ok(&ws.build(&[]));
    for p in &leftovers {
        assert!(!p.exists(), "{} was not swept", p.display());
    }
    assert_nowhere_at_rest(&ws, value);
}

/// Runs `kiln build --no-cache -q` and returns (output, CPU seconds, peak RSS KiB).
fn timed_build(ws: &Workspace, args: &[&str]) -> (std::process::Output, f64, u64) {
    let mut cmd = ws.kiln();
    cmd.args(["build", "-q", "--no-cache"])
        .args(args)
        .arg(ws.context());
    let (out, usage) = run_with_usage(&mut cmd);
    (out, usage.cpu_s, usage.peak_kib)
}

#[test]
fn one_huge_output_line_costs_linear_time_and_bounded_memory() {
    const LINE: usize = 32 << 20;
    let (ws, secret) = with_secret(b"huge-line-secret-0001");
    ws.write("big", vec![b'a'; LINE]);
    // Baseline: the same step with its output thrown away.
    ws.write(
        "Dockerfile",
        "FROM scratch\nCOPY big /big\nRUN cat /big > /dev/null\n",
    );
    let (out, quiet_s, quiet_rss) = timed_build(&ws, &["--secret", &secret]);
    assert_ok(&out);
    // One 32 MiB line through the redactor and the error tail (was searched from its
    // start on every write, and held whole).
    ws.write("Dockerfile", "FROM scratch\nCOPY big /big\nRUN cat /big\n");
    let (out, loud_s, loud_rss) = timed_build(&ws, &["--secret", &secret]);
    assert_ok(&out);
    assert!(
        loud_rss < quiet_rss + (LINE as u64 / 1024) / 2,
        "peak RSS {loud_rss} KiB printing the line vs {quiet_rss} KiB without"
    );
    assert!(
        loud_s < quiet_s * 3.0 + 1.0,
        "printing the line took {loud_s:.1} CPU s vs {quiet_s:.1} without"
    );
}

#[test]
fn many_label_lines_cost_linear_time() {
    let ws = Workspace::new();
    let timed = |lines: usize| {
        let mut df = String::from("FROM scratch\n");
        for i in 0..lines {
            df.push_str(&format!("LABEL l{i}=v{i}\n"));
        }
        ws.write("Dockerfile", df);
        let (out, secs, _) = timed_build(&ws, &[]);
        assert_ok(&out);
        secs
    };
    let small = timed(2_000);
    let large = timed(8_000);
    // 4x the lines: linear is ~4x; quadratic (a copy of every label per line) was 16x.
    assert!(
        large < small * 8.0 + 0.5,
        "8,000 LABEL lines took {large:.2} CPU s, 2,000 took {small:.2}"
    );
}

#[test]
fn a_run_line_over_the_config_limit_fails_before_any_step_runs() {
    let ws = Workspace::new();
    // 9 MiB of `"`: under the Dockerfile size limit, but 18 MiB once the history entry
    // escapes it as JSON.
    let mut df = String::from("FROM scratch\nRUN echo first > /f\nRUN true '");
    df.push_str(&"\"".repeat(9 << 20));
    df.push_str("'\n");
    ws.write("Dockerfile", df);
    let out = ws.build(&[]);
    assert_fails_with(
        &out,
        "Dockerfile:3: this instruction (9437195 bytes, 18874381 as JSON) takes the image \
         history over 16 MiB",
    );
    // Nothing ran: no step started, no layer was written.
    assert!(!text(&out.stderr).contains("#1 "), "{}", text(&out.stderr));
    assert!(all_files(&ws.cache().join("steps")).is_empty());
}

#[test]
fn a_config_grown_by_expansion_over_the_limit_is_a_clear_error() {
    let ws = Workspace::new();
    // 1 MiB of text, then 17 copies of it through variable expansion in two labels (each
    // value under the 16 MiB bound of one expansion, and labels are not variables of the
    // stage): the Dockerfile is small, the config would be 18 MiB.
    let df = format!(
        "FROM scratch\nENV A={}\nLABEL B={} C={}\n",
        "a".repeat(1 << 20),
        "$A".repeat(9),
        "$A".repeat(8)
    );
    ws.write("Dockerfile", df);
    let out = ws.build(&[]);
    assert_fails_with(&out, "over the 16 MiB limit (MAX_CONFIG_SIZE)");
    assert!(!text(&out.stderr).contains("internal error"));
}

/// Builds `FROM scratch` plus `body`: it must fail naming `limit`, below 1 GiB of RSS.
fn fails_within_a_gib(body: &str, limit: &str) {
    let ws = Workspace::new();
    ws.write("Dockerfile", format!("FROM scratch\n{body}"));
    let mut cmd = ws.kiln();
    cmd.args(["build", "--progress", "plain"]).arg(ws.context());
    let (out, peak_kib) = run_measured(&mut cmd);
    assert_fails_with(&out, limit);
    assert!(peak_kib < 1 << 20, "peak RSS {peak_kib} KiB");
}

#[test]
fn variables_doubled_line_by_line_stop_at_their_bound() {
    // `ENV a=$a$a` on every line doubles a value per line: 30 lines are 16 GiB. One
    // expansion is bounded (MAX_EXPANSION_BYTES), all of a stage's variables together
    // (MAX_STAGE_VARIABLE_BYTES: many names holding one large value) and the history
    // holding them (MAX_CONFIG_SIZE): whichever a Dockerfile reaches first stops it, at a
    // few hundred MB. Before the bounds it took 3.7 GB within a minute.
    let four_mib = "ENV a=$a$a\n".repeat(18);
    let copies: String = (0..400).map(|i| format!("ENV b{i}=$a\n")).collect();
    for (body, limit) in [
        ("ENV a=$a$a\n".repeat(30), "(MAX_"),
        ("ARG a=$a$a\n".repeat(30), "(MAX_"),
        (four_mib.clone() + &copies, "(MAX_"),
        (four_mib + "LABEL x=$a$a$a$a$a\n", "(MAX_EXPANSION_BYTES)"),
    ] {
        fails_within_a_gib(&format!("ENV a=0123456789abcdef\n{body}"), limit);
    }
}

#[test]
fn a_pattern_substitution_cannot_square_time_or_memory() {
    // `${a//*b/c}` matched again from every position of a 200 KB value (hours);
    // `${a//?/$a}` put a copy of the value in place of each of its characters (40 GB).
    let value = "a".repeat(200_000);
    for (word, limit) in [
        ("${a//*b/c}", "(MAX_PATTERN_STEPS)"),
        ("${a//?/$a}", "(MAX_EXPANSION_BYTES)"),
    ] {
        fails_within_a_gib(&format!("ENV a={value}\nENV b={word}\n"), limit);
    }
}

#[test]
fn labels_and_port_ranges_stop_at_the_config_limit_at_their_line() {
    // Each line expands to megabytes of labels or ports (and as much history): 300 such
    // lines took 2 GB before the config was refused at the end; one EXPOSE line of 300
    // ranges made a vector of 19.6 million ports.
    let ranges = "1-65535/udp ".repeat(40);
    let all_protocols = "EXPOSE 1-65535/tcp 1-65535/udp 1-65535/sctp\n".repeat(300);
    let labels: String = (0..300).map(|i| format!("LABEL l{i}=$a\n")).collect();
    for body in [
        format!("EXPOSE {ranges}\n"),
        all_protocols,
        format!(
            "ARG a=0123456789abcdef\n{}{labels}",
            "ARG a=$a$a\n".repeat(18)
        ),
    ] {
        fails_within_a_gib(&body, "(MAX_CONFIG_SIZE)");
    }
}
