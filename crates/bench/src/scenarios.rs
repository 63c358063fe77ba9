//! The scenarios of issue 7. Each builds the same Dockerfile (apart from how the base is
//! named, and the fetch tool in the secret scenario) with kiln and with buildah,
//! alternating, and returns the samples plus the notes the report needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::context;
use crate::debian;
use crate::measure::{self, Run, Samples};
use crate::server::{self, FileServer, Server};
use crate::tools::{Env, Sandbox};

pub(crate) const NAMES: &[&str] = &[
    "cold",
    "steps",
    "cached",
    "copy",
    "secret",
    "stages",
    "bigfile",
    "apt",
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
    /// The other builders, BuildKit first.
    pub peers: Vec<Peer>,
    /// Divide times by this many units (e.g. 20 RUN steps) for a per-unit row.
    pub per_unit: Option<(u32, &'static str)>,
    /// Further measured lines (references, checks).
    pub lines: Vec<String>,
    pub targets: Vec<Target>,
}

/// One peer builder's figures in a scenario.
pub(crate) struct Peer {
    pub name: &'static str,
    /// `None` when the peer did not run (see `note`).
    pub samples: Option<Samples>,
    /// Why the peer has no figures, when it has none.
    pub note: Option<String>,
}

impl Peer {
    fn new(name: &'static str, missing: Option<&str>) -> Peer {
        Peer {
            name,
            samples: missing.is_none().then(Samples::default),
            note: missing.map(str::to_owned),
        }
    }
}

impl Outcome {
    /// Adds the target "kiln is at least `times`× faster than `peer`" (min vs min), when
    /// both have figures.
    fn ratio_target(&mut self, peer: &str, times: f64) {
        let peer_min = self
            .peers
            .iter()
            .find(|p| p.name == peer)
            .and_then(|p| p.samples.as_ref()?.min());
        if let (Some(k), Some(b)) = (self.kiln.min(), peer_min) {
            let ratio = b.as_secs_f64() / k.as_secs_f64();
            self.targets.push(Target {
                text: format!("kiln ≥ {times}× faster than {peer}: {ratio:.1}× (min vs min)"),
                met: ratio >= times,
            });
        }
    }
}

/// A peer's build of one repetition.
type Build<'a> = &'a mut dyn FnMut(&Env, &Sandbox) -> Result<Run>;

impl Outcome {
    pub(crate) fn failed(name: &str) -> Outcome {
        Outcome::new(&format!("Scenario `{name}`"))
    }

    fn new(title: &str) -> Outcome {
        Outcome {
            title: title.to_owned(),
            setup: Vec::new(),
            kiln: Samples::default(),
            peers: Vec::new(),
            per_unit: None,
            lines: Vec::new(),
            targets: Vec::new(),
        }
    }
}

/// Default repetitions: more for the cheap scenarios, fewer for the heavy ones.
pub(crate) fn default_reps(name: &str) -> usize {
    match name {
        "copy" | "bigfile" | "stages" | "cold" | "apt" => 3,
        _ => 5,
    }
}

pub(crate) fn run(name: &str, env: &Env, work: &Path, reps: usize) -> Result<Outcome> {
    let sb = Sandbox::new(work, name)?;
    match name {
        "cold" => cold(env, &sb, reps),
        "steps" => steps(env, &sb, reps, false),
        "cached" => steps(env, &sb, reps, true),
        "copy" => copy(env, &sb, reps),
        "secret" => secret(env, &sb, reps),
        "stages" => stages(env, &sb, reps),
        "bigfile" => bigfile(env, &sb, reps),
        "apt" => apt(env, &sb, reps),
        "instantiate" => crate::instantiate::run(reps),
        other => bail!("unknown scenario {other:?} (known: {})", NAMES.join(", ")),
    }
}

/// One timed build by each tool per repetition: kiln, then BuildKit, then buildah. A
/// warm-up round runs first, untimed. A peer's failure does not stop the scenario: the
/// other figures are still worth having, and the failure is reported.
struct Alternation<'a> {
    env: &'a Env,
    sb: &'a Sandbox,
    out: Outcome,
}

impl<'a> Alternation<'a> {
    fn new(env: &'a Env, sb: &'a Sandbox, title: &str) -> Alternation<'a> {
        let mut out = Outcome::new(title);
        out.peers = vec![
            Peer::new("BuildKit", env.buildkit_missing()),
            Peer::new(
                "buildah",
                env.buildah
                    .is_none()
                    .then_some("buildah is not installed (`apt-get install buildah`)"),
            ),
        ];
        Alternation { env, sb, out }
    }

    fn rep(&mut self, timed: bool, kiln: Build, peers: &mut [Build; 2]) -> Result<()> {
        let k = kiln(self.env, self.sb).context("kiln build")?;
        if timed {
            self.out.kiln.push(k);
        }
        for (peer, build) in self.out.peers.iter_mut().zip(peers.iter_mut()) {
            if peer.samples.is_none() {
                continue;
            }
            match build(self.env, self.sb) {
                Ok(r) if timed => peer.samples.iter_mut().for_each(|s| s.push(r)),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("  {} failed: {e:#}", peer.name);
                    peer.samples = None;
                    peer.note = Some(format!("{} failed: {}", peer.name, first_line(&e)));
                }
            }
        }
        Ok(())
    }

    /// A warm-up round (imports the base, compiles/loads modules, fills caches), then
    /// `reps` timed rounds. `peers` are BuildKit's and buildah's builds, in that order.
    fn run(mut self, reps: usize, kiln: Build, mut peers: [Build; 2]) -> Result<Outcome> {
        eprintln!("  warm-up");
        self.rep(false, kiln, &mut peers)?;
        for i in 1..=reps {
            eprintln!("  repetition {i}/{reps}");
            self.rep(true, kiln, &mut peers)?;
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

/// An empty context, and the Dockerfile `text` gives for kiln's base and for buildah's,
/// as UTF-8 paths: `[context, kiln's Dockerfile, buildah's Dockerfile]`.
fn dockerfiles(env: &Env, sb: &Sandbox, text: &dyn Fn(&str) -> String) -> Result<[String; 3]> {
    let ctx = empty_context(sb)?;
    let kdf = sb.write("kiln.Dockerfile", &text(&env.kiln_from()))?;
    let bdf = sb.write("buildah.Dockerfile", &text(&env.buildah_from()))?;
    Ok([
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    ])
}

fn buildah_cmd(sb: &Sandbox, env: &Env, args: &[&str]) -> Result<Command> {
    sb.buildah(env, args).context("buildah is not installed")
}

/// `kiln build --progress plain --no-cache -f <df> -t bench <ctx>`.
fn kiln_no_cache(env: &Env, sb: &Sandbox, df: &str, ctx: &str) -> Command {
    let args = [
        "build",
        "--progress",
        "plain",
        "--no-cache",
        "-f",
        df,
        "-t",
        "bench",
        ctx,
    ];
    sb.kiln(env, args)
}

/// `buildah bud --isolation chroot --no-cache <extra> -f <df> -t bench <ctx>`.
fn buildah_bud(env: &Env, sb: &Sandbox, extra: &[&str], df: &str, ctx: &str) -> Result<Run> {
    let mut args = vec!["bud", "--isolation", "chroot", "--no-cache"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-f", df, "-t", "bench", ctx]);
    sb.run_buildah(&mut buildah_cmd(sb, env, &args)?)
}

/// BuildKit's `docker build --no-cache -f <df> -t bench <ctx>`, then its image and build
/// cache removed (untimed) so vfs storage does not grow by a copy per run.
fn buildkit_fresh(env: &Env, sb: &Sandbox, df: &str, ctx: &str) -> Result<Run> {
    let r = sb.buildkit_build(env, &["--no-cache", "-f", df, "-t", "bench", ctx])?;
    sb.buildkit_cleanup(env, "bench")?;
    Ok(r)
}

/// buildah's `bud --isolation chroot --no-cache`, then its image removed (untimed).
fn buildah_fresh(env: &Env, sb: &Sandbox, df: &str, ctx: &str) -> Result<Run> {
    let r = buildah_bud(env, sb, &[], df, ctx)?;
    sb.buildah_cleanup(env, "bench")?;
    Ok(r)
}

fn p(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))
}

/// Issue 16's cold-start target: a fresh machine's first build, one RUN step.
const COLD_TARGET: Duration = Duration::from_millis(200);

/// The cold start: one RUN calling three bundled tools, with empty kiln cache, store AND
/// compiled-module cache every run, as on a fresh machine, CI runner or serverless worker.
fn cold(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let df = |from: &str| {
        format!("FROM {from}\nRUN echo cold | tr a-z A-Z | sha256sum > /h && ls / > /l\n")
    };
    let [ctx, kdf, bdf] = dockerfiles(env, sb, &df)?;
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let modules = sb.path("modules");
    let mut a = Alternation::new(env, sb, "0. Cold start: first build with empty caches");
    a.out.setup = vec![
        "Dockerfile: `FROM <busybox base>` + `RUN echo cold | tr a-z A-Z | sha256sum > /h && ls / > /l`.".into(),
        "kiln: `kiln build --no-cache -t bench`, with empty cache, store and compiled-module cache dirs every run (the bundled tools' code comes from the binary, compiled when kiln was built).".into(),
        "BuildKit: `docker build --no-cache -t bench` (a running daemon: it has nothing to compile); buildah: `bud --isolation chroot --no-cache -t bench`.".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        remove_kiln_state(sb)?;
        if modules.exists() {
            std::fs::remove_dir_all(&modules)?;
        }
        sb.run_kiln(kiln_no_cache(env, sb, kdf, ctx).env("KILN_MODULE_CACHE", &modules))
    };
    let mut buildkit = |env: &Env, sb: &Sandbox| {
        sb.buildkit_build(env, &["--no-cache", "-f", kdf, "-t", "bench", ctx])
    };
    let mut buildah = |env: &Env, sb: &Sandbox| buildah_bud(env, sb, &[], bdf, ctx);
    let mut out = a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])?;
    let min = out.kiln.min().unwrap_or_default();
    out.targets.push(Target {
        text: format!(
            "first build with empty caches under {}: kiln min {}",
            crate::report::dur(COLD_TARGET),
            crate::report::dur(min)
        ),
        met: min < COLD_TARGET,
    });
    Ok(out)
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
    let [ctx, kdf, bdf] = dockerfiles(env, sb, &steps_dockerfile)?;
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
            "BuildKit: `DOCKER_BUILDKIT=1 docker build --network=host --progress=plain {}-f Dockerfile -t bench CTX` on the private dockerd.",
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
    let mut buildkit = |env: &Env, sb: &Sandbox| {
        let mut args = kiln_flags.to_vec();
        args.extend_from_slice(&["-f", kdf, "-t", "bench", ctx]);
        sb.buildkit_build(env, &args)
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
    let mut out = a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])?;
    if cached {
        let min = out.kiln.min().unwrap_or_default();
        out.targets.push(Target {
            text: format!(
                "20-step cached rebuild under 100 ms: kiln min {}",
                crate::report::dur(min)
            ),
            met: min < Duration::from_millis(100),
        });
    }
    // Issue 16's targets against BuildKit, issue 7's against buildah (min vs min).
    let (buildkit_x, buildah_x) = if cached {
        (30.0, None)
    } else {
        (200.0, Some(20.0))
    };
    out.ratio_target("BuildKit", buildkit_x);
    if let Some(x) = buildah_x {
        out.ratio_target("buildah", x);
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
        "BuildKit: `docker build --no-cache -f Dockerfile -t bench CTX` into dockerd's store (dockerd's embedded BuildKit has no OCI exporter; its layers stay uncompressed there), image and build cache removed between runs.".into(),
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
    let mut buildkit = |env: &Env, sb: &Sandbox| buildkit_fresh(env, sb, kdf, ctx_s);
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
    let mut out = a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])?;
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
    // BuildKit runs the same busybox step as buildah, on the base loaded into dockerd.
    let text = std::fs::read_to_string(&bdf)?.replacen(&env.buildah_from(), &env.kiln_from(), 1);
    let kitdf = sb.write("buildkit.Dockerfile", &text)?;
    let (ctx, kdf, bdf, kitdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
        p(&kitdf)?.to_owned(),
    );
    let (ctx, kdf, bdf, kitdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str(), kitdf.as_str());
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
        "buildah and BuildKit: busybox has `wget`, not `curl`, and busybox wget reads no netrc, so: `RUN --mount=type=secret,id=cred wget -q -O /m --header \"Authorization: Basic $(base64 /run/secrets/cred)\" URL`, `--no-cache --secret id=cred,src=FILE` (BuildKit with `--network=host`).".into(),
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
    let mut buildkit = |env: &Env, sb: &Sandbox| {
        let before = srv.served();
        let args = [
            "--no-cache",
            "--secret",
            bsecret.as_str(),
            "-f",
            kitdf,
            "-t",
            "bench",
            ctx,
        ];
        let r = sb.buildkit_build(env, &args)?;
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
    a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])
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
    let [ctx, kdf, bdf] = dockerfiles(env, sb, &stages_dockerfile)?;
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let mut a = Alternation::new(env, sb, "5. Two independent stages joined by a third");
    a.out.setup = vec![
        "Stages `a` and `b` each run `seq` over a million numbers into `sha256sum` (wasm uutils in kiln, native busybox in buildah); the final stage copies both results and runs `cat`.".into(),
        "kiln: `kiln build --no-cache` (independent stages run concurrently).".into(),
        "BuildKit: `docker build --no-cache` (BuildKit runs independent stages concurrently).".into(),
        "buildah: `bud --isolation chroot --no-cache --jobs 2` (buildah's stage parallelism switched on).".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| sb.run_kiln(&mut kiln_no_cache(env, sb, kdf, ctx));
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
    let mut buildkit = |env: &Env, sb: &Sandbox| {
        sb.buildkit_build(env, &["--no-cache", "-f", kdf, "-t", "bench", ctx])
    };
    a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])
}

const BIG: u64 = 1_000_000_000;

/// Scenario 6: a 1 GB file written inside a RUN step; time and peak RSS.
fn bigfile(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let df = |from: &str| format!("FROM {from}\nRUN head -c {BIG} /dev/zero > /big\n");
    let [ctx, kdf, bdf] = dockerfiles(env, sb, &df)?;
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let mut a = Alternation::new(env, sb, "6. A 1 GB file written inside a RUN step");
    a.out.setup = vec![
        format!("Dockerfile: `FROM <busybox base>` + `RUN head -c {BIG} /dev/zero > /big`."),
        "kiln: `kiln build --no-cache -t bench`, empty cache and store dirs each run; BuildKit: `docker build --no-cache -t bench`, image and build cache removed between runs; buildah: `bud --isolation chroot --no-cache -t bench`, image removed between runs.".into(),
        "Peak RSS is the process's `ru_maxrss` from `wait4` (for buildah: the buildah process and the children it waited for; BuildKit's work happens in the daemon, not measured).".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        remove_kiln_state(sb)?;
        sb.run_kiln(&mut kiln_no_cache(env, sb, kdf, ctx))
    };
    let mut buildah = |env: &Env, sb: &Sandbox| buildah_fresh(env, sb, bdf, ctx);
    let mut buildkit = |env: &Env, sb: &Sandbox| buildkit_fresh(env, sb, kdf, ctx);
    let mut out = a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])?;
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

/// The packages of the apt scenario: the line (`ca-certificates curl`), plus `jq`
/// and `less`, as kiln's package tests install them.
const APT_PACKAGES: &str = "ca-certificates curl jq less";

/// What kiln's and BuildKit's Dockerfiles call the Debian base (buildah reads the layout).
const DEBIAN_BASE: &str = "kiln-bench-debian";

fn apt_dockerfile(from: &str, port: u16) -> String {
    format!(
        "FROM {from}\n\
         COPY kiln-test.gpg {keyring}\n\
         RUN echo 'deb [signed-by={keyring}] http://127.0.0.1:{port}/ {suite} main' > /etc/apt/sources.list\n\
         RUN apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES} \\\n    && rm -rf /var/lib/apt/lists/*\n",
        keyring = debian::KEYRING,
        suite = debian::SUITE,
    )
}

/// Scenario 7: the most common RUN line of real Dockerfiles, `apt-get update && apt-get
/// install`, on a Debian bookworm base from a signed loopback mirror of real packages.
fn apt(env: &Env, sb: &Sandbox, reps: usize) -> Result<Outcome> {
    let inputs = debian::inputs()?;
    eprintln!("  writing the Debian base");
    let layout = debian::write_layout(&inputs.base_tar, &sb.path("debian-layout"))?;
    let mirror = FileServer::start(&inputs.mirror)?;
    let ctx = empty_context(sb)?;
    std::fs::copy(
        inputs.mirror.join("kiln-test.gpg"),
        ctx.join("kiln-test.gpg"),
    )
    .context("copying the mirror's key into the context")?;
    let kdf = sb.write("kiln.Dockerfile", &apt_dockerfile(DEBIAN_BASE, mirror.port))?;
    let buildah_from = format!("oci:{}:{}", layout.display(), crate::base::TAG);
    let bdf = sb.write(
        "buildah.Dockerfile",
        &apt_dockerfile(&buildah_from, mirror.port),
    )?;
    let base_context = format!(
        "{DEBIAN_BASE}=oci-layout://{}:{}",
        layout.display(),
        crate::base::TAG
    );
    if let Ok(daemon) = &env.buildkit {
        eprintln!("  loading the Debian base into dockerd");
        sb.load_into_dockerd(
            env,
            daemon,
            DEBIAN_BASE,
            &["--build-context", &base_context],
        )?;
    }
    let (ctx, kdf, bdf) = (
        p(&ctx)?.to_owned(),
        p(&kdf)?.to_owned(),
        p(&bdf)?.to_owned(),
    );
    let (ctx, kdf, bdf) = (ctx.as_str(), kdf.as_str(), bdf.as_str());
    let mut a = Alternation::new(
        env,
        sb,
        "7. `apt-get install` on Debian bookworm from a signed loopback mirror",
    );
    a.out.setup = vec![
        "Base: Debian bookworm minbase (mmdebstrap, `tests/differential/make-debian-base`); mirror: real bookworm `.deb`s, signed Release (`tests/packages/make-debian-mirror`), served by the bench on 127.0.0.1.".into(),
        format!("Dockerfile: `FROM <debian base>` + `COPY kiln-test.gpg {}` + a `sources.list` line for the mirror + `RUN apt-get update && apt-get install -y --no-install-recommends {APT_PACKAGES} && rm -rf /var/lib/apt/lists/*`.", debian::KEYRING),
        "kiln: `kiln build --no-cache -t bench` (apt-get, dpkg and the maintainer scripts as WASI programs); BuildKit: `docker build --no-cache -t bench` (the image's own apt, natively), image and build cache removed between runs; buildah: `bud --isolation chroot --no-cache -t bench`, image removed between runs.".into(),
        "BuildKit's peak RSS is the summed RSS of dockerd and every process under it (containerd, runc, the step's apt and dpkg), sampled every 10 ms during the build.".into(),
    ];
    let mut kiln = |env: &Env, sb: &Sandbox| {
        let before = mirror.served();
        let args = [
            "build",
            "--build-context",
            base_context.as_str(),
            "--progress",
            "plain",
            "--no-cache",
            "-f",
            kdf,
            "-t",
            "bench",
            ctx,
        ];
        let r = sb.run_kiln(&mut sb.kiln(env, args))?;
        check_fetched(&mirror, before)?;
        Ok(r)
    };
    let mut buildkit = |env: &Env, sb: &Sandbox| {
        let before = mirror.served();
        let r = buildkit_fresh(env, sb, kdf, ctx)?;
        check_fetched(&mirror, before)?;
        Ok(r)
    };
    let mut buildah = |env: &Env, sb: &Sandbox| {
        let before = mirror.served();
        let r = buildah_fresh(env, sb, bdf, ctx)?;
        check_fetched(&mirror, before)?;
        Ok(r)
    };
    a.run(reps, &mut kiln, [&mut buildkit, &mut buildah])
}

/// The fewest files an install of [`APT_PACKAGES`] fetches: InRelease, Packages, and a
/// `.deb` per package at least.
const APT_MIN_FETCHES: usize = 6;

fn check_fetched(mirror: &FileServer, before: usize) -> Result<()> {
    let fetched = mirror.served() - before;
    if fetched < APT_MIN_FETCHES {
        bail!(
            "the build succeeded but fetched only {fetched} files from the mirror (at least {APT_MIN_FETCHES} expected)"
        );
    }
    Ok(())
}
