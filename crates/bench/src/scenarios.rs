//! The scenarios of issue 7. Each builds the same Dockerfile (apart from how the base is
//! named, and the fetch tool in the secret scenario) with kiln and with buildah,
//! alternating, and returns the samples plus the notes the report needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::context;
use crate::measure::{self, Run, Samples};
use crate::server::{self, Server};
use crate::tools::{Env, Sandbox};

pub(crate) const NAMES: &[&str] = &[
    "steps",
    "cached",
    "copy",
    "secret",
    "stages",
    "bigfile",
    "instantiate",
];

/// A figure a scenario must reach (issue 7), and whether it did.
pub(crate) struct Target {
    pub text: String,
    pub met: bool,
}

pub(crate) struct Outcome {
    pub title: String,
    /// What each tool was asked to do (markdown).
    pub setup: Vec<String>,
    pub kiln: Samples,
    pub buildah: Option<Samples>,
    /// Why buildah has no figures, when it has none.
    pub buildah_note: Option<String>,
    /// Divide times by this many units (e.g. 20 RUN steps) for a per-unit row.
    pub per_unit: Option<(u32, &'static str)>,
    /// Further measured lines (references, checks).
    pub lines: Vec<String>,
    pub targets: Vec<Target>,
}

impl Outcome {
    pub(crate) fn failed(name: &str) -> Outcome {
        Outcome::new(&format!("Scenario `{name}`"))
    }

    fn new(title: &str) -> Outcome {
        Outcome {
            title: title.to_owned(),
            setup: Vec::new(),
            kiln: Samples::default(),
            buildah: None,
            buildah_note: None,
            per_unit: None,
            lines: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// Default repetitions: more for the cheap scenarios, fewer for the heavy ones.
pub(crate) fn default_reps(name: &str) -> usize {
    match name {
        "copy" | "bigfile" | "stages" => 3,
        _ => 5,
    }
}

pub(crate) fn run(name: &str, env: &Env, work: &Path, reps: usize) -> Result<Outcome> {
    let sb = Sandbox::new(work, name)?;
    match name {
        "steps" => steps(env, &sb, reps, false),
        "cached" => steps(env, &sb, reps, true),
        "copy" => copy(env, &sb, reps),
        "secret" => secret(env, &sb, reps),
        "stages" => stages(env, &sb, reps),
        "bigfile" => bigfile(env, &sb, reps),
        "instantiate" => crate::instantiate::run(reps),
        other => bail!("unknown scenario {other:?} (known: {})", NAMES.join(", ")),
    }
}

/// One timed build by each tool per repetition, kiln first. `before_kiln` and
/// `after_buildah` run untimed. A buildah failure does not stop the scenario: kiln's
/// figures are still worth having, and the failure is reported.
struct Alternation<'a> {
    env: &'a Env,
    sb: &'a Sandbox,
    out: Outcome,
}

impl<'a> Alternation<'a> {
    fn new(env: &'a Env, sb: &'a Sandbox, title: &str) -> Alternation<'a> {
        let mut out = Outcome::new(title);
        if env.buildah.is_some() {
            out.buildah = Some(Samples::default());
        } else {
            out.buildah_note = Some("buildah is not installed (`apt-get install buildah`)".into());
        }
        Alternation { env, sb, out }
    }

    fn rep(
        &mut self,
        timed: bool,
        kiln: &mut dyn FnMut(&Env, &Sandbox) -> Result<Run>,
        buildah: &mut dyn FnMut(&Env, &Sandbox) -> Result<Run>,
    ) -> Result<()> {
        let k = kiln(self.env, self.sb).context("kiln build")?;
        if timed {
            self.out.kiln.push(k);
        }
        if self.out.buildah.is_some() {
            match buildah(self.env, self.sb) {
                Ok(b) if timed => self.out.buildah.iter_mut().for_each(|s| s.push(b)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("  buildah failed: {e:#}");
                    self.out.buildah = None;
                    self.out.buildah_note = Some(format!("buildah failed: {}", first_line(&e)));
                }
            }
        }
        Ok(())
    }

    /// A warm-up round (imports the base, compiles/loads modules, fills caches), then
    /// `reps` timed rounds.
    fn run(
        mut self,
        reps: usize,
        kiln: &mut dyn FnMut(&Env, &Sandbox) -> Result<Run>,
        buildah: &mut dyn FnMut(&Env, &Sandbox) -> Result<Run>,
    ) -> Result<Outcome> {
        eprintln!("  warm-up");
        self.rep(false, kiln, buildah)?;
        for i in 1..=reps {
            eprintln!("  repetition {i}/{reps}");
            self.rep(true, kiln, buildah)?;
        }
        Ok(self.out)
    }
}

/// The error's first line and, when the log tail follows, its last line (where the
/// tools print their actual complaint).
fn first_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    match lines.next_back() {
        Some(last) => format!("{first} … {}", last.trim()),
        None => first.to_owned(),
    }
}

fn empty_context(sb: &Sandbox) -> Result<PathBuf> {
    let ctx = sb.path("ctx");
    std::fs::create_dir_all(&ctx)?;
    Ok(ctx)
}

fn buildah_cmd(sb: &Sandbox, env: &Env, args: &[&str]) -> Result<Command> {
    sb.buildah(env, args).context("buildah is not installed")
}

fn p(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))
}

const STEPS: u32 = 20;

fn steps_dockerfile(from: &str) -> String {
    let mut d = format!("FROM {from}\n");
    for i in 1..=STEPS {
        d.push_str(&format!("RUN echo step {i} > /step{i}\n"));
    }
    d
}

/// Scenarios 1 and 2: per-step overhead, without cache and fully cached.
fn steps(env: &Env, sb: &Sandbox, reps: usize, cached: bool) -> Result<Outcome> {
    let ctx = empty_context(sb)?;
    let kdf = sb.write("kiln.Dockerfile", &steps_dockerfile(&env.kiln_from()))?;
    let bdf = sb.write("buildah.Dockerfile", &steps_dockerfile(&env.buildah_from()))?;
    let (ctx, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let title = if cached {
        "2. The same 20 steps, fully cached rebuild"
    } else {
        "1. 20 trivial RUN steps, no cache"
    };
    let cache_flag = if cached { "--layers" } else { "--no-cache" };
    let kiln_flags: &[&str] = if cached { &[] } else { &["--no-cache"] };
    let mut a = Alternation::new(env, sb, title);
    a.out.setup = vec![
        format!("Dockerfile: `FROM <busybox base>` + {STEPS} × `RUN echo step N > /stepN`."),
        format!(
            "kiln: `kiln build --progress plain {}-f Dockerfile -t bench CTX`.",
            kiln_flags
                .iter()
                .map(|f| format!("{f} "))
                .collect::<String>()
        ),
        format!(
            "buildah: `buildah --storage-driver vfs bud --isolation chroot {cache_flag} -f Dockerfile -t bench CTX`{}.",
            if cached {
                " (`--layers` is what makes buildah cache steps)"
            } else {
                " (buildah's default: one layer committed at the end, which favours buildah)"
            }
        ),
    ];
    if cached {
        a.out.setup.push(
            "The warm-up round fills both caches; every timed run is a full cache hit.".into(),
        );
    }
    a.out.per_unit = Some((STEPS, "RUN step"));
    let mut kiln = |env: &Env, sb: &Sandbox| {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(kiln_flags);
        args.extend_from_slice(&["-f", kdf, "-t", "bench", ctx]);
        sb.run_kiln(&mut sb.kiln(env, &args))
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let args = [
            "bud",
            "--isolation",
            "chroot",
            cache_flag,
            "-f",
            bdf,
            "-t",
            "bench",
            ctx,
        ];
        sb.run_buildah(&mut buildah_cmd(sb, env, &args)?)
    };
    let mut out = a.run(reps, &mut kiln, &mut buildah)?;
    if cached {
        let min = out.kiln.min().unwrap_or_default();
        out.targets.push(Target {
            text: format!(
                "20-step cached rebuild under 100 ms: kiln min {}",
                crate::report::dur(min)
            ),
            met: min < Duration::from_millis(100),
        });
    } else if let (Some(k), Some(b)) = (out.kiln.min(), out.buildah.as_ref().and_then(|b| b.min()))
    {
        let ratio = b.as_secs_f64() / k.as_secs_f64();
        out.targets.push(Target {
            text: format!("kiln ≥ 20× faster per RUN step than buildah: {ratio:.1}× (min vs min)"),
            met: ratio >= 20.0,
        });
    }
    Ok(out)
}

fn copy_dockerfile(from: &str) -> String {
    format!("FROM {from}\nCOPY data /data\n")
}

/// Scenario 3: COPY of a 200 MB, 10,000-file context, exported as a gzip OCI archive;
/// against `sha256sum`, `gzip -6` and `zstd -3` on the same bytes.
fn copy(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let ctx = sb.path("ctx");
    eprintln!("  generating the context");
    let stats = context::generate(&ctx.join("data"))?;
    let kdf = sb.write("kiln.Dockerfile", &copy_dockerfile(&env.kiln_from()))?;
    let bdf = sb.write("buildah.Dockerfile", &copy_dockerfile(&env.buildah_from()))?;
    let out_tar = sb.path("out.tar");
    let (ctx_s, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx_s, kdf, bdf) = (ctx_s.as_str(), kdf.as_str(), bdf.as_str());
    let out_s = p(&out_tar)?.to_owned();
    let mut a = Alternation::new(
        env,
        sb,
        "3. COPY of a 200 MB, 10,000-file context, exported (gzip)",
    );
    a.out.setup = vec![
        format!(
            "Context: {} files in {} directories, {:.0} MB of pseudo-random hex text (compresses ~2:1).",
            stats.files,
            stats.dirs,
            stats.bytes as f64 / 1e6
        ),
        "Dockerfile: `FROM <busybox base>` + `COPY data /data`.".into(),
        "kiln: `kiln build --no-cache -f Dockerfile -o type=oci,dest=out.tar CTX`, with empty cache and store dirs each run (cold; only the compiled-module cache is warm).".into(),
        "buildah: `bud --isolation chroot --no-cache -f Dockerfile -t bench CTX` + `push bench oci-archive:out.tar` (gzip layers), timed together; image removed between runs.".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        remove_kiln_state(sb)?;
        let _ = std::fs::remove_file(&out_tar);
        let oarg = format!("type=oci,dest={out_s}");
        let args = [
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "-f",
            kdf,
            "-o",
            oarg.as_str(),
            ctx_s,
        ];
        sb.run_kiln(&mut sb.kiln(env, args))
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let _ = std::fs::remove_file(&out_tar);
        let bud = [
            "bud",
            "--isolation",
            "chroot",
            "--no-cache",
            "-f",
            bdf,
            "-t",
            "bench",
            ctx_s,
        ];
        let r1 = sb.run_buildah(&mut buildah_cmd(sb, env, &bud)?)?;
        let dest = format!("oci-archive:{out_s}");
        let r2 = sb.run_buildah(&mut buildah_cmd(
            sb,
            env,
            &["push", "bench", dest.as_str()],
        )?)?;
        sb.buildah_cleanup(env, "bench")?;
        Ok(Run {
            wall: r1.wall + r2.wall,
            max_rss_kib: r1.max_rss_kib.max(r2.max_rss_kib),
        })
    };
    let mut out = a.run(reps, &mut kiln, &mut buildah)?;
    let _ = std::fs::remove_file(&out_tar);

    eprintln!("  references on the same bytes");
    let tar_path = sb.path("context.tar");
    let tar_bytes = context::tar_dir(&ctx.join("data"), &tar_path)?;
    let refs = references(sb, &tar_path, reps)?;
    out.lines.push(format!(
        "Physical-limit references on the same bytes (the context as one {:.0} MB tar, in page cache; min of {reps} runs, one core each):",
        tar_bytes as f64 / 1e6
    ));
    out.lines.push(String::new());
    out.lines.push("| reference | min | throughput |".into());
    out.lines.push("|---|---|---|".into());
    for (name, d) in &refs {
        out.lines.push(format!(
            "| `{name}` | {} | {:.0} MB/s |",
            crate::report::dur(*d),
            tar_bytes as f64 / 1e6 / d.as_secs_f64()
        ));
    }
    let get = |n: &str| refs.iter().find(|(k, _)| k.starts_with(n)).map(|(_, d)| *d);
    if let (Some(sha), Some(gz), Some(k)) = (get("sha256sum"), get("gzip"), out.kiln.min()) {
        let reference = sha + gz;
        let ratio = k.as_secs_f64() / reference.as_secs_f64();
        out.lines.push(String::new());
        out.lines.push(format!(
            "Reference for a gzip export = `sha256sum` + `gzip -6` = {} (read, hash and compress once, one core).",
            crate::report::dur(reference)
        ));
        out.targets.push(Target {
            text: format!(
                "within 2× of the physical-limit reference: kiln min is {ratio:.2}× the reference"
            ),
            met: ratio <= 2.0,
        });
    }
    let _ = std::fs::remove_file(&tar_path);
    Ok(out)
}

fn references(sb: &Sandbox, file: &Path, reps: usize) -> Result<Vec<(String, Duration)>> {
    let f = p(file)?;
    let cmds: [(&str, &[&str]); 3] = [
        ("sha256sum", &["sha256sum", f]),
        ("gzip -6", &["gzip", "-6", "-c", f]),
        ("zstd -3", &["zstd", "-3", "-q", "-c", f]),
    ];
    let mut out = Vec::new();
    for (name, argv) in cmds {
        let mut s = Samples::default();
        for _ in 0..reps.max(1) {
            let mut c = Command::new(argv[0]);
            c.args(&argv[1..]);
            match measure::run_discarding(&mut c, &sb.path("reference.log")) {
                Ok(r) => s.push(r),
                Err(e) => eprintln!("  reference {name} unavailable: {e:#}"),
            }
        }
        if let Some(m) = s.min() {
            out.push((name.to_owned(), m));
        }
    }
    Ok(out)
}

fn remove_kiln_state(sb: &Sandbox) -> Result<()> {
    for d in ["kiln-cache", "kiln-store"] {
        let path = sb.path(d);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}

/// Scenario 4: a secret mounted as ~/.netrc for `curl -n` against a loopback server.
fn secret(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let srv = Server::start()?;
    let url = format!("http://127.0.0.1:{}/", srv.port);
    let ctx = empty_context(sb)?;
    let netrc = sb.write(
        "netrc",
        &format!(
            "machine 127.0.0.1 login {} password {}\n",
            server::USER,
            server::PASSWORD
        ),
    )?;
    let cred = sb.write("cred", &format!("{}:{}", server::USER, server::PASSWORD))?;
    let kdf = sb.write(
        "kiln.Dockerfile",
        &format!(
            "FROM {}\nRUN --mount=type=secret,id=netrc,target=/root/.netrc curl -n {url} > /m\n",
            env.kiln_from()
        ),
    )?;
    // busybox has wget, not curl, and its wget reads no netrc: the same secret travels
    // as a basic-auth header built inside the step.
    let bdf = sb.write(
        "buildah.Dockerfile",
        &format!(
            "FROM {}\nRUN --mount=type=secret,id=cred wget -q -O /m --header \"Authorization: Basic $(base64 /run/secrets/cred)\" {url}\n",
            env.buildah_from()
        ),
    )?;
    let (ctx, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let ksecret = format!("id=netrc,src={}", p(&netrc)?);
    let bsecret = format!("id=cred,src={}", p(&cred)?);
    let mut a = Alternation::new(
        env,
        sb,
        "4. Secret: netrc mount, `curl -n` to a loopback server",
    );
    a.out.setup = vec![
        "A basic-auth HTTP server on 127.0.0.1 in the bench answers `Hello, Admin` to admin/password; each build must get that answer (the server counts them).".into(),
        "kiln: `RUN --mount=type=secret,id=netrc,target=/root/.netrc curl -n URL > /m`, `--no-cache --secret id=netrc,src=FILE`.".into(),
        "buildah: busybox has `wget`, not `curl`, and busybox wget reads no netrc, so: `RUN --mount=type=secret,id=cred wget -q -O /m --header \"Authorization: Basic $(base64 /run/secrets/cred)\" URL`, `--no-cache --secret id=cred,src=FILE`.".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        let before = srv.served();
        let args = [
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "--secret",
            ksecret.as_str(),
            "-f",
            kdf,
            "-t",
            "bench",
            ctx,
        ];
        let r = sb.run_kiln(&mut sb.kiln(env, args))?;
        check_served(&srv, before)?;
        Ok(r)
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let before = srv.served();
        let args = [
            "bud",
            "--isolation",
            "chroot",
            "--no-cache",
            "--secret",
            bsecret.as_str(),
            "-f",
            bdf,
            "-t",
            "bench",
            ctx,
        ];
        let r = sb.run_buildah(&mut buildah_cmd(sb, env, &args)?)?;
        check_served(&srv, before)?;
        Ok(r)
    };
    let out = a.run(reps, &mut kiln, &mut buildah)?;
    Ok(out)
}

fn check_served(srv: &Server, before: usize) -> Result<()> {
    if srv.served() <= before {
        bail!("the build succeeded but the server saw no authenticated request");
    }
    Ok(())
}

fn stages_dockerfile(from: &str) -> String {
    format!(
        "FROM {from} AS a\nRUN seq 1 1000000 | sha256sum > /a\n\
         FROM {from} AS b\nRUN seq 1000001 2000000 | sha256sum > /b\n\
         FROM {from}\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n"
    )
}

/// Scenario 5: two independent stages joined by a third.
fn stages(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let ctx = empty_context(sb)?;
    let kdf = sb.write("kiln.Dockerfile", &stages_dockerfile(&env.kiln_from()))?;
    let bdf = sb.write(
        "buildah.Dockerfile",
        &stages_dockerfile(&env.buildah_from()),
    )?;
    let (ctx, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let mut a = Alternation::new(env, sb, "5. Two independent stages joined by a third");
    a.out.setup = vec![
        "Stages `a` and `b` each run `seq` over a million numbers into `sha256sum` (wasm uutils in kiln, native busybox in buildah); the final stage copies both results and runs `cat`.".into(),
        "kiln: `kiln build --no-cache` (independent stages run concurrently).".into(),
        "buildah: `bud --isolation chroot --no-cache --jobs 2` (buildah's stage parallelism switched on).".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        let args = [
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "-f",
            kdf,
            "-t",
            "bench",
            ctx,
        ];
        sb.run_kiln(&mut sb.kiln(env, args))
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let args = [
            "bud",
            "--isolation",
            "chroot",
            "--no-cache",
            "--jobs",
            "2",
            "-f",
            bdf,
            "-t",
            "bench",
            ctx,
        ];
        sb.run_buildah(&mut buildah_cmd(sb, env, &args)?)
    };
    a.run(reps, &mut kiln, &mut buildah)
}

const BIG: u64 = 1_000_000_000;

/// Scenario 6: a 1 GB file written inside a RUN step; time and peak RSS.
fn bigfile(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let ctx = empty_context(sb)?;
    let df = |from: &str| format!("FROM {from}\nRUN head -c {BIG} /dev/zero > /big\n");
    let kdf = sb.write("kiln.Dockerfile", &df(&env.kiln_from()))?;
    let bdf = sb.write("buildah.Dockerfile", &df(&env.buildah_from()))?;
    let (ctx, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let mut a = Alternation::new(env, sb, "6. A 1 GB file written inside a RUN step");
    a.out.setup = vec![
        format!("Dockerfile: `FROM <busybox base>` + `RUN head -c {BIG} /dev/zero > /big`."),
        "kiln: `kiln build --no-cache -t bench`, empty cache and store dirs each run; buildah: `bud --isolation chroot --no-cache -t bench`, image removed between runs.".into(),
        "Peak RSS is the process's `ru_maxrss` from `wait4` (for buildah: the buildah process and the children it waited for).".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        remove_kiln_state(sb)?;
        let args = [
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "-f",
            kdf,
            "-t",
            "bench",
            ctx,
        ];
        sb.run_kiln(&mut sb.kiln(env, args))
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let args = [
            "bud",
            "--isolation",
            "chroot",
            "--no-cache",
            "-f",
            bdf,
            "-t",
            "bench",
            ctx,
        ];
        let r = sb.run_buildah(&mut buildah_cmd(sb, env, &args)?)?;
        sb.buildah_cleanup(env, "bench")?;
        Ok(r)
    };
    let mut out = a.run(reps, &mut kiln, &mut buildah)?;
    remove_kiln_state(sb)?;
    match out.kiln.max_rss_kib() {
        Some(kib) => out.targets.push(Target {
            text: format!(
                "kiln peak RSS under 300 MB: worst run {:.0} MB",
                kib as f64 * 1024.0 / 1e6
            ),
            met: kib * 1024 < 300_000_000,
        }),
        None => out
            .lines
            .push("Peak RSS is not available on this platform.".into()),
    }
    Ok(out)
}
