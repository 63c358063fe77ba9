//! kiln-bench: builds the same Dockerfiles with kiln, BuildKit (a private dockerd) and
//! buildah, alternating, and reports min/median per tool, the ratios, and physical-limit
//! references (issues 7 and 16).
//!
//! It is NOT part of `cargo test` or CI: it needs root for dockerd, buildah, minutes of
//! CPU and a quiet machine. It installs nothing; a missing peer is reported and the
//! others run.

mod base;
mod buildkit;
mod context;
mod debian;
mod instantiate;
mod measure;
mod report;
mod scenarios;
mod server;
mod tools;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::scenarios::Outcome;
use crate::tools::{Env, which};

#[derive(Debug, Parser)]
#[command(
    name = "kiln-bench",
    about = "Benchmark kiln side by side with BuildKit and buildah"
)]
struct Args {
    /// Timed repetitions per scenario (default: 5, or 3 for the heavy ones).
    #[arg(long)]
    reps: Option<usize>,
    /// Run only these scenarios (repeatable): cold, steps, cached, copy, secret, stages,
    /// bigfile, apt, instantiate.
    #[arg(long)]
    scenario: Vec<String>,
    /// The kiln binary (default: `kiln` next to this program, i.e. target/release/kiln).
    #[arg(long)]
    kiln: Option<PathBuf>,
    /// Also write the results into this markdown file, between kiln-bench's markers.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the scratch directory (for looking at logs) instead of deleting it.
    #[arg(long)]
    keep: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    for s in &args.scenario {
        if !scenarios::NAMES.contains(&s.as_str()) {
            bail!(
                "unknown scenario {s:?}; known: {}",
                scenarios::NAMES.join(", ")
            );
        }
    }
    let kiln = match &args.kiln {
        Some(k) => k.clone(),
        None => default_kiln()?,
    };
    if !kiln.is_file() {
        bail!(
            "kiln binary {} not found; build it with `cargo build --release -p kiln-cli`",
            kiln.display()
        );
    }
    let buildah = find_buildah();
    // buildah turns `oci:PATH` into a reference name, which must be lowercase: no random
    // mixed-case suffix in the scratch path.
    let scratch = tempfile::Builder::new()
        .prefix(&format!("kiln-bench-{}", std::process::id()))
        .rand_bytes(0)
        .tempdir()?;
    let work = scratch.path().to_path_buf();
    eprintln!("scratch directory: {}", work.display());
    let busybox = PathBuf::from(base::BUSYBOX);
    if !busybox.is_file() {
        bail!(
            "{} not found; install it with `apt-get install busybox-static`",
            busybox.display()
        );
    }
    let mut env = Env {
        kiln: kiln.clone(),
        buildah: buildah.clone(),
        buildkit: Err("not started yet".into()),
        base: base::write_busybox_layout(&busybox, &work.join("base"))?,
        module_cache: work.join("modules"),
    };
    env.buildkit = start_buildkit(&env, &work).map_err(|e| {
        eprintln!("NOTE: no BuildKit figures: {e:#}");
        format!("{e:#}")
    });
    let buildkit_version = env.buildkit.as_ref().ok().and_then(|d| d.version());

    let chosen: Vec<&str> = if args.scenario.is_empty() {
        scenarios::NAMES.to_vec()
    } else {
        args.scenario.iter().map(String::as_str).collect()
    };
    let mut outcomes = Vec::new();
    for name in &chosen {
        let reps = args.reps.unwrap_or_else(|| scenarios::default_reps(name));
        eprintln!("scenario {name} ({reps} repetitions)");
        outcomes.push(match scenarios::run(name, &env, &work, reps) {
            Ok(o) => o,
            Err(e) => failed(name, &e),
        });
    }

    let reps = args.reps.map_or(
        "5 (3 for cold, copy, stages, bigfile, apt)".to_owned(),
        |n| n.to_string(),
    );
    let machine = report::Machine::describe(
        &version(&kiln).unwrap_or_else(|| "unknown version".into()),
        buildkit_version.as_deref(),
        buildah.as_deref().and_then(version).as_deref(),
        &reps,
    );
    let results = report::render(&machine, &reproduce(&args), &outcomes);
    println!("{results}");
    if let Some(out) = &args.out {
        report::write_into(out, &results)?;
        eprintln!("results written to {}", out.display());
    }
    if args.keep {
        eprintln!("kept {}", scratch.keep().display());
    }
    Ok(())
}

/// Starts the private dockerd and loads the busybox base into it under the name kiln's
/// Dockerfiles use.
fn start_buildkit(env: &Env, work: &std::path::Path) -> Result<buildkit::Dockerd> {
    let daemon = buildkit::Dockerd::start(&work.join("dockerd"))?;
    let sb = tools::Sandbox::new(work, "base-export")?;
    sb.load_into_dockerd(env, &daemon, &env.kiln_from(), &[])
        .context("loading the base into dockerd")?;
    Ok(daemon)
}

fn default_kiln() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating kiln-bench")?;
    let dir = me.parent().context("kiln-bench has no parent directory")?;
    Ok(dir.join(format!("kiln{}", std::env::consts::EXE_SUFFIX)))
}

/// buildah runs Linux containers only; elsewhere (or when absent) kiln runs alone.
fn find_buildah() -> Option<PathBuf> {
    let found = if cfg!(target_os = "linux") {
        which("buildah")
    } else {
        None
    };
    if found.is_none() {
        eprintln!(
            "NOTE: buildah not found; install it with `apt-get install buildah` (Debian/Ubuntu). \
             Running kiln only: the report will have no buildah figures or ratios."
        );
    }
    found
}

fn version(bin: &std::path::Path) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next()?.trim().to_owned())
}

fn reproduce(args: &Args) -> String {
    let mut cmd =
        "cargo build --release -p kiln-cli -p kiln-bench\ncargo run --release -p kiln-bench --"
            .to_owned();
    if let Some(n) = args.reps {
        cmd.push_str(&format!(" --reps {n}"));
    }
    for s in &args.scenario {
        cmd.push_str(&format!(" --scenario {s}"));
    }
    cmd.push_str(" --out BENCHMARKS.md");
    cmd
}

fn failed(name: &str, e: &anyhow::Error) -> Outcome {
    eprintln!("scenario {name} failed: {e:#}");
    let mut o = Outcome::failed(name);
    o.lines.push(format!("**Failed**:\n\n```\n{e:#}\n```"));
    o
}
