//! `kiln compose build`: the builds of a compose project's services (as `docker compose
//! build`), run concurrently over one cache, each service's progress under its name.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, anyhow};
use clap::{Args, Subcommand};
use kiln_compose::{Defaults, LoadOptions, ServiceBuild};
use kiln_engine::export::{ExportRequest, Exported};
use kiln_engine::progress::{Event, EventSink};
use kiln_engine::{LeakPolicy, places};

use crate::args::Progress;

/// At most this many services build at once. Each build has its own wasm runtime and
/// tokio workers; with more, they only contend for the same cores and memory.
const MAX_PARALLEL_SERVICES: usize = 4;

#[derive(Debug, Args)]
pub(crate) struct ComposeArgs {
    /// Compose file (repeatable, merged in order; default: compose.yaml or
    /// docker-compose.yml and its override file, here or in a parent directory).
    #[arg(short = 'f', long = "file", global = true)]
    pub files: Vec<PathBuf>,
    /// Where relative paths in the files point from (default: the first file's directory).
    #[arg(long = "project-directory", global = true)]
    pub project_directory: Option<PathBuf>,
    /// Variables for interpolation (repeatable; default: `.env` in the project directory).
    #[arg(long = "env-file", global = true)]
    pub env_files: Vec<PathBuf>,
    /// Project name (default: the file's `name:`, else the project directory's name).
    #[arg(short = 'p', long = "project-name", global = true)]
    pub project_name: Option<String>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ComposeCommand {
    /// Build the services' images (all services with a `build:` section by default).
    Build(ComposeBuildArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ComposeBuildArgs {
    /// Services to build.
    pub services: Vec<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Print only the image IDs.
    #[arg(short, long)]
    pub quiet: bool,
}

pub(crate) fn run(args: ComposeArgs) -> Result<i32> {
    let ComposeCommand::Build(build) = args.command;
    let opts = LoadOptions {
        files: args.files,
        project_directory: args.project_directory,
        env_files: args.env_files,
        project_name: args.project_name,
        cwd: std::env::current_dir().context("the current directory")?,
    };
    // Variables that are not UTF-8 cannot be interpolated into a YAML string: skipped.
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let project = kiln_compose::load(&opts, env)?;
    for warning in &project.warnings {
        eprintln!("WARNING: {warning}");
    }
    let defaults = Defaults {
        cache_dir: places::cache_dir()?,
        image_store: Some(places::store_dir()?),
        no_cache: build.no_cache,
        leak_policy: LeakPolicy::Error,
    };
    let plans = kiln_compose::plan(&project, &build.services, &defaults)?;
    let sink: Arc<dyn EventSink> = Arc::from(crate::render::sink(build.progress, build.quiet));
    let failures = build_all(plans, &sink, build.quiet)?;
    for failure in &failures {
        eprintln!("error: {failure}");
    }
    Ok(if failures.is_empty() { 0 } else { 1 })
}

/// Runs the builds, [`MAX_PARALLEL_SERVICES`] at a time; returns each failure's text.
fn build_all(
    plans: Vec<ServiceBuild>,
    sink: &Arc<dyn EventSink>,
    quiet: bool,
) -> Result<Vec<String>> {
    let store = places::store_dir()?;
    let queue = Mutex::new(VecDeque::from(plans));
    let failures = Mutex::new(Vec::new());
    let next = || queue.lock().ok().and_then(|mut q| q.pop_front());
    std::thread::scope(|scope| {
        for _ in 0..MAX_PARALLEL_SERVICES {
            scope.spawn(|| {
                while let Some(plan) = next() {
                    let service = plan.service.clone();
                    if let Err(e) = build_one(plan, sink, &store, quiet) {
                        let text =
                            format!("service {service:?} failed to build: {}", crate::render(&e));
                        if let Ok(mut f) = failures.lock() {
                            f.push(text);
                        }
                    }
                }
            });
        }
    });
    let mut failures = failures
        .into_inner()
        .map_err(|_| anyhow!("a build thread panicked"))?;
    failures.sort();
    Ok(failures)
}

fn build_one(
    plan: ServiceBuild,
    sink: &Arc<dyn EventSink>,
    store: &std::path::Path,
    quiet: bool,
) -> Result<()> {
    let ServiceBuild {
        service,
        mut request,
        tags,
        warnings,
        ..
    } = plan;
    let events: Arc<dyn EventSink> = Arc::new(Prefixed {
        service: service.clone(),
        inner: sink.clone(),
    });
    for message in warnings {
        events.emit(Event::Warning { message });
    }
    crate::commands::epoch_arg_from_env(&mut request.build_args);
    request.epoch = crate::commands::source_date_epoch(&request.build_args)?;
    let mut built = kiln_engine::build(request, events)?;
    let req = ExportRequest {
        tags: tags
            .iter()
            .map(|t| kiln_engine::normalize_name(t))
            .collect(),
        store: store.to_owned(),
        targets: Vec::new(),
    };
    // The store's index is updated under kiln-oci's lock (in-process and across
    // processes), so concurrent exports into it are safe.
    kiln_engine::export::export(&mut built, &req, &mut |_: Exported| {})?;
    let config = built.image.config_digest()?;
    if quiet {
        println!("{config}");
    } else {
        eprintln!(
            "built {service}: {} ({})",
            req.tags.join(", "),
            built.image.digest()?
        );
    }
    Ok(())
}

/// Puts the service's name before each step's stage (`[app build 2/4]`, as buildx bake
/// shows targets) and before warnings and exports, so interleaved builds stay apart.
struct Prefixed {
    service: String,
    inner: Arc<dyn EventSink>,
}

impl EventSink for Prefixed {
    fn emit(&self, mut event: Event) {
        match &mut event {
            Event::StepStarted { step, .. }
            | Event::StepCached { step, .. }
            | Event::StepOutput { step, .. }
            | Event::StepDone { step, .. }
            | Event::StepFailed { step, .. } => {
                step.stage = format!("{} {}", self.service, step.stage);
            }
            Event::Warning { message: text } | Event::Exporting { what: text, .. } => {
                *text = format!("{}: {text}", self.service);
            }
        }
        self.inner.emit(event);
    }
}
