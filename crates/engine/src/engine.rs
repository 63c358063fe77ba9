//! The solver: runs the stages a target needs, independent stages concurrently (tokio),
//! each stage's steps in order, consulting the cache for every step.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kiln_dockerfile::args::{BuildArgs, GlobalScope};
use kiln_dockerfile::graph::{StageGraph, StageSource};
use kiln_dockerfile::{Dockerfile, Instruction, Mount};
use kiln_fs::Store;
use kiln_oci::{Compression, Image, ImageConfig, Layout, Platform};
use kiln_runtime::Cancel;

use crate::cache::Cache;
use crate::context::Context;
use crate::error::{BuildError, StepError};
use crate::leak;
use crate::progress::{Event, EventSink, Redacting, StepId, now_us};
use crate::redact::SecretPatterns;
use crate::secrets::Secrets;
use crate::state::StageState;
use crate::step;

/// What to do when the leak guard finds a secret value in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakPolicy {
    Error,
    Warn,
}

/// Network access for RUN steps (`--network`, `--allow-host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub enabled: bool,
    /// Empty means any host.
    pub allowed_hosts: Vec<String>,
}

/// Everything one `kiln build` needs.
#[derive(Clone)]
pub struct BuildRequest {
    pub context_dir: PathBuf,
    /// Path of the Dockerfile on the host (default: `<context>/Dockerfile`).
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub build_args: Vec<(String, String)>,
    pub secrets: Secrets,
    pub network: Network,
    pub no_cache: bool,
    /// `--no-cache-filter`: the stages (by name) whose steps ignore the cache, as buildx's
    /// flag (BuildKit's `no-cache=NAME`); the other stages use it.
    pub no_cache_filter: Vec<String>,
    pub platform: Platform,
    pub labels: Vec<(String, String)>,
    /// `SOURCE_DATE_EPOCH`: layer times, config `created` and history.
    pub epoch: i64,
    pub leak_policy: LeakPolicy,
    pub cache_dir: PathBuf,
    /// Where `FROM name` looks for images that are not stages (the local image store).
    pub image_store: Option<PathBuf>,
    pub compression: Compression,
    /// `--build-context NAME=VALUE`: what `FROM NAME` and `--from=NAME` resolve to.
    pub build_contexts: std::collections::BTreeMap<String, crate::images::NamedContext>,
    /// `--step-timeout`, `--memory`: bounds for every RUN step.
    pub step_limits: crate::sandbox::StepLimits,
    /// Stops the build when cancelled (from any thread): no step starts after that, and
    /// the running ones stop within about 50 ms; `build` returns
    /// [`StepError::Cancelled`](crate::StepError::Cancelled) wrapped in the step's context.
    pub cancel: Cancel,
}

impl BuildRequest {
    /// A build of `<context_dir>/Dockerfile` for the host's platform, caching in
    /// `cache_dir`, with nothing else asked: no target, build args, secrets, labels or
    /// named contexts, network on for any host, source date epoch 0, a leaked secret an
    /// error, gzip layers, the default step limits, and no image store (`FROM name` is a
    /// stage or a registry image). Set the fields to ask for more.
    pub fn new(context_dir: PathBuf, cache_dir: PathBuf) -> BuildRequest {
        BuildRequest {
            dockerfile: context_dir.join("Dockerfile"),
            context_dir,
            target: None,
            build_args: Vec::new(),
            secrets: Secrets::default(),
            network: Network {
                enabled: true,
                allowed_hosts: Vec::new(),
            },
            no_cache: false,
            no_cache_filter: Vec::new(),
            platform: Platform::host_linux(),
            labels: Vec::new(),
            epoch: 0,
            leak_policy: LeakPolicy::Error,
            cache_dir,
            image_store: None,
            compression: Compression::Gzip,
            build_contexts: Default::default(),
            step_limits: Default::default(),
            cancel: Cancel::default(),
        }
    }
}

/// A finished build: the image (in the cache's blob layout) and how to get at its files.
pub struct Built {
    pub image: Image,
    pub warnings: Vec<String>,
    /// The step records this build hit or wrote (what `--cache-to` exports).
    pub(crate) used_records: Vec<(crate::cache::CacheKey, crate::cache::StepRecord)>,
    state: StageState,
    /// Exports after the build still use the file store: the cache stays locked (shared)
    /// until they are done, so no other build sweeps their temp files.
    _cache_lock: crate::cache::CacheLock,
}

impl Built {
    /// The final filesystem (materialised on demand, e.g. for `type=local`).
    pub fn snapshot(&mut self) -> Result<kiln_fs::Snapshot, BuildError> {
        Ok(self.state.snapshot()?)
    }
}

/// Shared, read-only parts of one build.
pub(crate) struct Shared_ {
    pub req: BuildRequest,
    /// The part of every stage's root key that is the same for the whole build
    /// (platform, compression, this kiln): see [`crate::inputs::Toolchain`].
    pub toolchain: crate::cache::CacheKey,
    pub dockerfile: Dockerfile,
    pub build_args: BuildArgs,
    pub global: GlobalScope,
    /// The stage graph, with the ONBUILD triggers of resolved base images added.
    pub graph: StageGraph,
    /// The base image of each needed stage built on one, resolved before any stage runs
    /// (its ONBUILD triggers can add stages to the build).
    pub bases: BTreeMap<usize, Image>,
    /// `RUN --mount=type=cache` trees, by id, shared by the steps of this build.
    pub cache_mounts: std::sync::Mutex<HashMap<String, kiln_runtime::SharedTree>>,
    pub file_name: String,
    pub context: Context,
    pub cache: Cache,
    pub store: Arc<Store>,
    pub blobs: Layout,
    /// Started by the first step that runs a program: a fully cached build never pays
    /// for the wasm engine, its linker and its epoch thread.
    runtime: parking_lot::Mutex<Option<kiln_runtime::Runtime>>,
    pub events: Arc<dyn EventSink>,
    pub redact: SecretPatterns,
    pub guard: leak::Guard,
    /// Every layer a step of this build wrote or reused, in any stage: the leak guard
    /// scans them all, not only the final image's.
    /// By digest, so a layer reused by several stages is scanned once.
    pub written: std::sync::Mutex<BTreeMap<String, crate::state::StageLayer>>,
    /// When the build started: store files older than this are not its output.
    pub started: std::time::SystemTime,
    /// In a multi-platform build, the platform shown before each stage's name in
    /// progress (`[linux/arm64 stage-0 1/2]`, as BuildKit shows it).
    pub platform_label: Option<String>,
}

type StageFuture = Shared<BoxFuture<'static, Result<Arc<StageState>, Arc<BuildError>>>>;

/// Builds the target of `req`; progress goes to `events`.
pub fn build(req: BuildRequest, events: Arc<dyn EventSink>) -> Result<Built, BuildError> {
    build_labelled(req, events, None, &[])
}

/// Builds the target of `req` once for each of `platforms` (`req.platform` is ignored),
/// in that order, into one cache: a step whose typed inputs do not depend on the platform
/// (a `scratch` or `FROM --platform=$BUILDPLATFORM` stage that reads no `TARGET*` ARG)
/// has one key for every platform, so it runs once and the later platforms hit it.
/// One platform after another rather than concurrently for that reason: two builds
/// racing would both run the shared steps. Returns one [`Built`] per platform.
///
/// `cache_from` (`--cache-from`) are asked for a step this cache has no record of.
pub fn build_platforms(
    req: BuildRequest,
    platforms: &[Platform],
    cache_from: &[crate::cache_remote::CacheImport],
    events: Arc<dyn EventSink>,
) -> Result<Vec<Built>, BuildError> {
    let several = platforms.len() > 1;
    platforms
        .iter()
        .map(|p| {
            let req = BuildRequest {
                platform: p.clone(),
                ..req.clone()
            };
            let label = several.then(|| p.to_string());
            build_labelled(req, events.clone(), label, cache_from)
        })
        .collect()
}

fn build_labelled(
    req: BuildRequest,
    events: Arc<dyn EventSink>,
    platform_label: Option<String>,
    cache_from: &[crate::cache_remote::CacheImport],
) -> Result<Built, BuildError> {
    let redact = SecretPatterns::for_redaction(&req.secrets)?;
    // Every event passes through redaction, whatever part of the engine emits it.
    let events: Arc<dyn EventSink> = Arc::new(Redacting::new(events, redact.clone()));
    build_redacted(req, events, platform_label, cache_from).map_err(|e| redact_error(e, &redact))
}

/// An error whose text holds a secret value (a path a step created, a message quoting
/// output) is replaced by its redacted rendering.
fn redact_error(e: BuildError, redact: &SecretPatterns) -> BuildError {
    let text = e.to_string();
    let shown = redact.redact_str(&text);
    if shown == text {
        e
    } else {
        BuildError::Failed(shown)
    }
}

fn build_redacted(
    req: BuildRequest,
    events: Arc<dyn EventSink>,
    platform_label: Option<String>,
    cache_from: &[crate::cache_remote::CacheImport],
) -> Result<Built, BuildError> {
    let started = std::time::SystemTime::now();
    let text = crate::context::read_build_file(&req.dockerfile).map_err(|source| {
        BuildError::ReadDockerfile {
            path: req.dockerfile.clone(),
            source,
        }
    })?;
    let file_name = req.dockerfile.display().to_string();
    let dockerfile = crate::checks::parse(&text, &file_name, &req.build_args, events.as_ref())?;
    let graph_err = |source| BuildError::Graph {
        file: file_name.clone(),
        source,
    };
    let build_args = BuildArgs {
        values: req.build_args.iter().cloned().collect(),
        target_platform: frontend_platform(&req.platform),
        build_platform: frontend_platform(&Platform::host_linux()),
        target_stage: req.target.clone(),
    };
    let global = GlobalScope::new(&dockerfile, &build_args).map_err(|error| BuildError::Args {
        file: file_name.clone(),
        error,
    })?;
    let mut req = req;
    if let Some(epoch) = dockerfile_epoch(&dockerfile, &req, &global, &file_name)? {
        req.epoch = epoch;
    }
    let graph = StageGraph::new(&dockerfile, &global).map_err(graph_err)?;
    let target = StageGraph::target(&dockerfile, req.target.as_deref()).map_err(graph_err)?;
    let needed = graph.required(target);
    check_required_secrets(
        &dockerfile,
        &graph,
        &global,
        &needed,
        &req.secrets,
        &file_name,
    )?;
    check_history_size(&dockerfile, &graph, target, &file_name)?;

    let ignore_file = dockerignore_beside(&req.dockerfile);
    let context = Context::open(&req.context_dir, ignore_file.as_deref())?;
    std::fs::create_dir_all(&req.cache_dir).map_err(|source| BuildError::CacheDir {
        path: req.cache_dir.clone(),
        source,
    })?;
    let mut cache = Cache::open(&req.cache_dir)?;
    let store = Store::open(crate::places::CacheLayout::new(&req.cache_dir).files())
        .map_err(BuildError::Store)?;
    let blobs_dir = crate::places::CacheLayout::new(&req.cache_dir).blobs();
    let blobs = Layout::open_or_create(&blobs_dir).map_err(|source| BuildError::Blobs {
        path: blobs_dir.clone(),
        source,
    })?;
    if !cache_from.is_empty() {
        let imported = cache_from
            .iter()
            .map(|i| crate::cache_remote::RemoteCache::open(i, &blobs))
            .filter_map(Result::transpose)
            .collect::<Result<Vec<_>, _>>()
            .map_err(crate::cache::CacheError::from)?;
        cache.import(imported, blobs.clone());
    }
    let redact = SecretPatterns::for_redaction(&req.secrets)?;
    let guard = leak::Guard::new(&req.secrets).map_err(leak::LeakError::from)?;
    let toolchain = crate::inputs::Toolchain::of(&req).key()?;
    let mut shared = Shared_ {
        toolchain,
        req,
        dockerfile,
        build_args,
        global,
        graph,
        bases: BTreeMap::new(),
        cache_mounts: std::sync::Mutex::new(HashMap::new()),
        file_name,
        context,
        cache,
        store,
        blobs,
        runtime: parking_lot::Mutex::new(None),
        events,
        redact,
        guard,
        written: std::sync::Mutex::new(BTreeMap::new()),
        started,
        platform_label,
    };
    let needed = resolve_bases(&mut shared, target)?;
    // Warnings and `check=error=true` cover the stages this build needs.
    let warnings = crate::checks::report(&shared, &needed)?;
    if needed
        .iter()
        .any(|i| !shared.graph.nodes[*i].onbuild.is_empty())
    {
        // Triggers can mount secrets and bring in stages: checked as the rest was.
        let s = &shared;
        check_required_secrets(
            &s.dockerfile,
            &s.graph,
            &s.global,
            &needed,
            &s.req.secrets,
            &s.file_name,
        )?;
    }
    let shared = Arc::new(shared);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BuildError::Scheduler)?;
    let built = rt.block_on(run_stages(shared.clone(), needed, target));
    // Cache mounts outlive the build whether it succeeded or not, as in BuildKit.
    let mounts = shared.persist_cache_mounts();
    if built.is_err() || mounts.is_err() {
        // A failed build's layers are at rest in the cache all the same.
        leak::guard_build(&shared, None)?;
    }
    mounts?;
    let state = built?;
    let mut state = Arc::try_unwrap(state).unwrap_or_else(|arc| (*arc).clone());
    let image = assemble(&shared, &mut state)?;
    Ok(Built {
        image,
        warnings,
        used_records: shared.cache.used(),
        state,
        _cache_lock: shared.cache.lock(),
    })
}

pub(crate) fn frontend_platform(p: &Platform) -> kiln_dockerfile::args::Platform {
    kiln_dockerfile::args::Platform {
        os: p.os.clone(),
        arch: p.architecture.clone(),
        variant: p.variant.clone(),
    }
}

/// The source date epoch a global `ARG SOURCE_DATE_EPOCH=<seconds>` sets, as BuildKit
/// honours it, when no `--build-arg SOURCE_DATE_EPOCH` (which wins) was given. An empty
/// value sets none; anything but an integer is an error naming the line.
fn dockerfile_epoch(
    dockerfile: &Dockerfile,
    req: &BuildRequest,
    global: &GlobalScope,
    file: &str,
) -> Result<Option<i64>, BuildError> {
    const NAME: &str = "SOURCE_DATE_EPOCH";
    if req.build_args.iter().any(|(k, _)| k == NAME) {
        return Ok(None);
    }
    let declared = dockerfile.global_args.iter().rev().find(|s| {
        matches!(&s.instruction, Instruction::Arg(decls) if decls.iter().any(|d| d.name == NAME))
    });
    let (Some(step), Some(value)) = (declared, global.get(NAME)) else {
        return Ok(None);
    };
    if value.is_empty() {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| BuildError::SourceDateEpoch {
            file: file.to_owned(),
            line: step.span.start_line,
            value: value.to_owned(),
        })
}

/// BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile before the context's.
pub(crate) fn dockerignore_beside(dockerfile: &std::path::Path) -> Option<PathBuf> {
    let name = dockerfile.file_name()?.to_str()?;
    let candidate = dockerfile.with_file_name(format!("{name}.dockerignore"));
    candidate.is_file().then_some(candidate)
}

/// A required secret that was not given fails the build before any step runs.
fn check_required_secrets(
    dockerfile: &Dockerfile,
    graph: &StageGraph,
    global: &GlobalScope,
    needed: &[usize],
    secrets: &Secrets,
    file: &str,
) -> Result<(), BuildError> {
    let lookup = |name: &str| global.get(name).map(str::to_owned);
    for &i in needed {
        for step in graph.nodes[i].steps(&dockerfile.stages[i]) {
            let Instruction::Run(run) = &step.instruction else {
                continue;
            };
            // Stage ARGs in mount options are only known at run time; checked there too.
            let Ok(mounts) = run.resolve_mounts(dockerfile.directives.escape, &lookup) else {
                continue;
            };
            for m in mounts {
                if let Mount::Secret { id, required, .. } = m
                    && required
                    && secrets.get(id.as_str()).is_none()
                {
                    return Err(BuildError::MissingSecret {
                        id,
                        location: format!("{file}:{}", step.span.start_line),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Each instruction of the target stage and the stages it is built `FROM` becomes a
/// history entry of the image config, which may not exceed [`kiln_oci::MAX_CONFIG_SIZE`]
/// (kiln refuses to read a larger one, as registries do). A Dockerfile over it fails here,
/// naming the line that crosses it, instead of after every step has run.
fn check_history_size(
    dockerfile: &Dockerfile,
    graph: &StageGraph,
    target: usize,
    file: &str,
) -> Result<(), BuildError> {
    let mut chain = vec![target];
    while let Some(&i) = chain.last()
        && let StageSource::Stage(parent) = graph.nodes[i].base
        && !chain.contains(&parent)
    {
        chain.push(parent);
    }
    let mut total: u64 = 0;
    for &i in chain.iter().rev() {
        for step in graph.nodes[i].steps(&dockerfile.stages[i]) {
            // As the config stores it: JSON escaping can double a line (`"`, `\`) or
            // make a control byte six bytes.
            let stored = serde_json::to_string(&step.original)
                .map_or(step.original.len(), |json| json.len());
            total += (stored + HISTORY_ENTRY_OVERHEAD) as u64;
            if total > kiln_oci::MAX_CONFIG_SIZE {
                return Err(BuildError::HistoryTooLarge {
                    file: file.to_owned(),
                    line: step.span.start_line,
                    bytes: step.original.len(),
                    json_bytes: stored,
                });
            }
        }
    }
    Ok(())
}

/// What a history entry holds besides its instruction text (`created`, `comment`,
/// `empty_layer` and the JSON around them), rounded up.
const HISTORY_ENTRY_OVERHEAD: usize = 128;

/// At most this many base images are resolved (pulled if absent) at once: a Dockerfile
/// can name any number of images, and each resolution holds a thread and a connection.
const MAX_CONCURRENT_BASES: usize = 4;

/// Resolves the base image of every needed stage built on one, adds each image's ONBUILD
/// triggers to the graph, and repeats while triggers bring in more stages (as BuildKit
/// does before it dispatches). Returns the stages the target needs, dependencies first.
fn resolve_bases(shared: &mut Shared_, target: usize) -> Result<Vec<usize>, BuildError> {
    loop {
        let needed = shared.graph.required(target);
        let todo: Vec<(usize, String)> = needed
            .iter()
            .filter_map(|&i| match &shared.graph.nodes[i].base {
                StageSource::Image(name) if !shared.bases.contains_key(&i) => {
                    Some((i, name.clone()))
                }
                _ => None,
            })
            .collect();
        if todo.is_empty() {
            return Ok(needed);
        }
        for chunk in todo.chunks(MAX_CONCURRENT_BASES) {
            for (i, image) in resolve_images(shared, chunk)? {
                let triggers = image.config.docker.on_build.clone().unwrap_or_default();
                shared
                    .graph
                    .add_image_triggers(&shared.dockerfile, i, &triggers)
                    .map_err(|source| BuildError::Graph {
                        file: shared.file_name.clone(),
                        source,
                    })?;
                shared.bases.insert(i, image);
            }
        }
    }
}

/// The images `bases` name (stage, reference), resolved concurrently.
fn resolve_images(
    shared: &Shared_,
    bases: &[(usize, String)],
) -> Result<Vec<(usize, Image)>, BuildError> {
    std::thread::scope(|s| {
        let running: Vec<_> = bases
            .iter()
            .map(|(i, name)| {
                let platform = shared.stage_platform(*i);
                let task = s.spawn(move || crate::images::resolve_base(shared, name, &platform));
                (*i, task)
            })
            .collect();
        running
            .into_iter()
            .map(|(i, task)| match task.join() {
                Ok(image) => Ok((i, image?)),
                Err(_) => Err(BuildError::Internal(
                    "base image resolution panicked".into(),
                )),
            })
            .collect()
    })
}

async fn run_stages(
    shared: Arc<Shared_>,
    needed: Vec<usize>,
    final_stage: usize,
) -> Result<Arc<StageState>, BuildError> {
    let mut futures: HashMap<usize, StageFuture> = HashMap::new();
    for &i in &needed {
        let deps: Vec<(usize, StageFuture)> = shared.graph.nodes[i]
            .stage_deps()
            .into_iter()
            .filter_map(|d| futures.get(&d).map(|f| (d, f.clone())))
            .collect();
        let shared = shared.clone();
        let fut = async move {
            let mut done = BTreeMap::new();
            for (d, f) in deps {
                done.insert(d, f.await?);
            }
            let task = tokio::task::spawn_blocking(move || run_stage(&shared, i, &done));
            match task.await {
                Ok(r) => r.map(Arc::new).map_err(Arc::new),
                Err(e) => Err(Arc::new(BuildError::Internal(format!("stage task: {e}")))),
            }
        }
        .boxed()
        .shared();
        futures.insert(i, fut);
    }
    // Drive every needed stage (so failures anywhere surface), then return the target.
    let all: Vec<_> = needed
        .iter()
        .filter_map(|i| futures.get(i).cloned())
        .collect();
    let failed = futures::future::join_all(all)
        .await
        .into_iter()
        .find_map(Result::err);
    if let Some(e) = failed {
        // With every other holder of the stages' results gone, the first failure comes
        // out typed, not as its text.
        drop(futures);
        return Err(unshare(e));
    }
    match futures.remove(&final_stage) {
        Some(f) => f.await.map_err(unshare),
        None => Err(BuildError::Internal(
            "target stage was not scheduled".into(),
        )),
    }
}

/// A stage's error as the caller's own, or its text if another holder remains.
fn unshare(e: Arc<BuildError>) -> BuildError {
    Arc::try_unwrap(e).unwrap_or_else(|e| BuildError::Failed(e.to_string()))
}

/// Builds one stage, given the finished stages it depends on.
fn run_stage(
    shared: &Shared_,
    index: usize,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<StageState, BuildError> {
    let stage = &shared.dockerfile.stages[index];
    let node = &shared.graph.nodes[index];
    let mut id = first_step_id(shared, index);
    let started = Instant::now();
    let mut state = base_state(shared, index, deps)?;
    if let StageSource::Image(name) = &node.base {
        show_from(shared, &mut id, name, started);
    }
    // The base's triggers run here (below) and never pass on, as in BuildKit.
    state.config.docker.on_build = None;
    state.ignore_cache = shared.req.no_cache || named_no_cache(&shared.req, stage);
    let mut scope = kiln_dockerfile::args::StageScope::from_parent(
        &shared.build_args,
        &shared.global,
        shared.dockerfile.directives.escape,
        step::env_of(&state),
        &state.inherited,
    );
    for (n, step) in node.steps(stage).enumerate() {
        // As in BuildKit's progress, only the steps that make a layer (and the base's
        // triggers) are shown and numbered; ENV, LABEL and the like change the config only.
        let shows = has_progress(n < node.onbuild.len(), step);
        id.index += usize::from(shows);
        let shown = shared.redact.redact_str(&step.original);
        let shown = if n < node.onbuild.len() {
            format!("ONBUILD {shown}")
        } else {
            shown
        };
        // Cancelled: the step is not started (an embedder sees no StepStarted for it).
        if shared.req.cancel.is_cancelled() {
            return Err(step_failed(
                shared,
                step.span.start_line,
                shown,
                StepError::Cancelled,
            ));
        }
        let started = Instant::now();
        let emit = |event: Event| {
            if shows {
                shared.events.emit(event);
            }
        };
        emit(Event::StepStarted {
            step: id.clone(),
            name: shown.clone(),
            at_us: now_us(),
        });
        let at = step::At {
            stage: index,
            step: n,
            id: &id,
        };
        let result = step::run(shared, &mut state, &mut scope, step, &at, deps)
            .and_then(|outcome| within_config_limit(&state).map(|()| outcome));
        match result {
            Ok(step::Outcome::Cached) => emit(Event::StepCached {
                step: id.clone(),
                at_us: now_us(),
            }),
            Ok(step::Outcome::Done) => emit(Event::StepDone {
                step: id.clone(),
                at_us: now_us(),
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            }),
            Err(source) => {
                emit(Event::StepFailed {
                    step: id.clone(),
                    at_us: now_us(),
                    error: shared.redact.redact_str(&source.to_string()),
                });
                // Typed, so an embedder can match on the cause; its text (and the output
                // tail) is redacted with the whole error when it leaves `build`.
                return Err(step_failed(shared, step.span.start_line, shown, source));
            }
        }
    }
    state.inherited = scope.inherited();
    Ok(state)
}

/// The progress name of a stage before its first step (`[base 0/3]`): its label and how
/// many steps it shows.
fn first_step_id(shared: &Shared_, index: usize) -> StepId {
    let stage = &shared.dockerfile.stages[index];
    let node = &shared.graph.nodes[index];
    let label = stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", stage.index));
    let label = match &shared.platform_label {
        Some(platform) => format!("{platform} {label}"),
        None => label,
    };
    let from = usize::from(matches!(node.base, StageSource::Image(_)));
    let shown = node
        .steps(stage)
        .enumerate()
        .filter(|(n, step)| has_progress(*n < node.onbuild.len(), step))
        .count();
    StepId {
        stage: label,
        index: 0,
        total: from + shown,
    }
}

/// BuildKit's first step of a stage built on an image: its FROM, done once the base is
/// resolved and its filesystem ready.
fn show_from(shared: &Shared_, id: &mut StepId, name: &str, started: Instant) {
    id.index = 1;
    shared.events.emit(Event::StepStarted {
        step: id.clone(),
        name: format!("FROM {name}"),
        at_us: now_us(),
    });
    shared.events.emit(Event::StepDone {
        step: id.clone(),
        at_us: now_us(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
}

/// Whether `--no-cache-filter` names this stage (stage names are case-insensitive).
fn named_no_cache(req: &BuildRequest, stage: &kiln_dockerfile::Stage) -> bool {
    stage.name.as_deref().is_some_and(|name| {
        req.no_cache_filter
            .iter()
            .any(|f| f.eq_ignore_ascii_case(name))
    })
}

/// Whether a step is shown in the progress (and counted in `[stage i/n]`), as BuildKit
/// shows it: RUN, COPY, ADD and WORKDIR, and every trigger of the base's ONBUILD.
fn has_progress(trigger: bool, step: &kiln_dockerfile::Step) -> bool {
    trigger
        || matches!(
            step.instruction,
            Instruction::Run(_)
                | Instruction::Copy(_)
                | Instruction::Add(_)
                | Instruction::Workdir(_)
        )
}

/// Fails the step that took the history past the config limit: each LABEL or EXPOSE line
/// can expand to megabytes, and without this 300 of them took 2 GB before the config was
/// assembled (and refused) at the end.
fn within_config_limit(state: &StageState) -> Result<(), StepError> {
    let bytes = state.config.history_bytes();
    if bytes > kiln_oci::MAX_CONFIG_SIZE {
        return Err(StepError::ConfigTooLarge { bytes });
    }
    Ok(())
}

/// A step's error with where it stands: the Dockerfile, its line and the instruction.
fn step_failed(
    shared: &Shared_,
    line: usize,
    instruction: String,
    source: StepError,
) -> BuildError {
    BuildError::Step {
        file: shared.file_name.clone(),
        line,
        instruction,
        source: Box::new(source),
    }
}

/// The state a stage starts from: `scratch`, another stage, or an image.
fn base_state(
    shared: &Shared_,
    index: usize,
    deps: &BTreeMap<usize, Arc<StageState>>,
) -> Result<StageState, BuildError> {
    // As BuildKit's empty image, `scratch` is the target platform's, `--platform` or not.
    let platform = &shared.req.platform;
    match &shared.graph.nodes[index].base {
        StageSource::Stage(parent) => deps
            .get(parent)
            .map(|p| (**p).clone())
            .ok_or_else(|| BuildError::Internal(format!("stage {parent} not built"))),
        StageSource::Scratch => {
            // BuildKit's empty image: the default PATH and `/` as the working directory.
            let mut config = ImageConfig::new(platform, shared.req.epoch);
            config.update_container(|c| {
                c.set_env(Some(vec![format!("PATH={}", kiln_shell::DEFAULT_PATH)]));
                c.set_working_dir(Some("/".into()));
            });
            Ok(StageState::new(
                crate::inputs::stage_root("scratch", shared.toolchain),
                config,
                Vec::new(),
                shared.store.clone(),
                shared.blobs.clone(),
            ))
        }
        StageSource::Image(name) => {
            let image = shared.bases.get(&index).ok_or_else(|| {
                BuildError::Internal(format!("base image of stage {index} not resolved"))
            })?;
            let mut state = crate::images::state_of_image(shared, image, name)?;
            // BuildKit makes sure PATH is always set: an image without one gets the
            // default, so `ENV PATH=/opt/bin:$PATH` extends it.
            if !step::env_of(&state).iter().any(|(k, _)| k == "PATH") {
                state.config.set_env_var("PATH", kiln_shell::DEFAULT_PATH);
            }
            Ok(state)
        }
    }
}

/// Writes the final config and manifest, after the leak guard has passed.
fn assemble(shared: &Shared_, state: &mut StageState) -> Result<Image, BuildError> {
    let mut config = state.config.clone();
    if !shared.req.labels.is_empty() {
        config.update_container(|c| {
            let mut labels = c.labels().clone().unwrap_or_default();
            for (k, v) in &shared.req.labels {
                labels.insert(k.clone(), v.clone());
            }
            c.set_labels(Some(labels));
        });
    }
    config.set_created(shared.req.epoch);
    if shared.platform_label.is_some() {
        // As BuildKit with an explicit target platform: the image is the target's, even
        // when its last stage was built `FROM --platform=$BUILDPLATFORM`, so every entry
        // of the index names its own platform.
        config.set_platform(&shared.req.platform);
    }
    let config_json = config.to_json().map_err(BuildError::WriteImage)?;
    leak::guard_build(shared, Some(&config_json))?;
    // The Dockerfile alone was checked before any step ran; the base image's history,
    // ENV and labels come on top, so the whole config is checked again here.
    if config_json.len() as u64 > kiln_oci::MAX_CONFIG_SIZE {
        return Err(BuildError::ConfigTooLarge {
            bytes: config_json.len(),
        });
    }
    let layers: Vec<kiln_oci::Layer> = state.layers.iter().map(|l| l.layer.clone()).collect();
    let desc = shared
        .blobs
        .write_image(&config, &layers, &BTreeMap::new())
        .map_err(BuildError::WriteImage)?;
    shared
        .blobs
        .load_descriptor(&desc, Some(&shared.req.platform))
        .map_err(BuildError::WriteImage)
}

impl Shared_ {
    /// The platform stage `index` is built for: its `FROM --platform` (checked when the
    /// graph was made), else the build's.
    pub(crate) fn stage_platform(&self, index: usize) -> Platform {
        self.graph.nodes[index]
            .platform
            .as_deref()
            .and_then(|p| p.parse::<Platform>().ok())
            .unwrap_or_else(|| self.req.platform.clone())
    }

    /// The build's wasm runtime, started on first use.
    pub(crate) fn runtime(&self) -> Result<kiln_runtime::Runtime, kiln_runtime::RuntimeError> {
        let mut slot = self.runtime.lock();
        if let Some(rt) = &*slot {
            return Ok(rt.clone());
        }
        let rt = crate::sandbox::runtime(&self.req.cache_dir, self.req.epoch)?;
        *slot = Some(rt.clone());
        Ok(rt)
    }

    /// Notes a layer a step of this build wrote or reused, for the leak guard.
    pub(crate) fn note_layer(&self, layer: &crate::state::StageLayer) {
        if let Ok(mut written) = self.written.lock() {
            let digest = layer.layer.descriptor.digest().to_string();
            written.entry(digest).or_insert_with(|| layer.clone());
        }
    }

    fn cache_mount_file(&self, id: &str) -> PathBuf {
        use sha2::Digest as _;
        let name = hex::encode(sha2::Sha256::digest(id.as_bytes()));
        crate::places::CacheLayout::new(&self.req.cache_dir)
            .mounts()
            .join(format!("{name}.tar"))
    }

    /// The tree behind `RUN --mount=type=cache,id=ID`: loaded from the cache directory on
    /// first use in this build (else a new one, which `seed` fills), then shared by this
    /// build's steps as `sharing` says. While a running step holds it, a `private` mount
    /// gets a new tree of its own (dropped after the step) and a `locked` one waits.
    pub(crate) fn cache_mount(
        &self,
        id: &str,
        sharing: kiln_dockerfile::CacheSharing,
        seed: &dyn Fn() -> Result<kiln_fs::Tree, StepError>,
    ) -> Result<kiln_runtime::SharedTree, StepError> {
        use kiln_dockerfile::CacheSharing;
        /// How often a `locked` cache mount checks whether it is free: BuildKit's
        /// interval; a step holding a cache runs for milliseconds at least.
        const LOCKED_POLL: std::time::Duration = std::time::Duration::from_millis(100);
        loop {
            let mounts = self
                .cache_mounts
                .lock()
                .map_err(|_| StepError::Internal("cache mount table poisoned"))?;
            let Some(tree) = mounts.get(id) else {
                return self.load_cache_mount(mounts, id, seed);
            };
            // The table holds one reference; a running step's mount table holds the others.
            let busy = Arc::strong_count(tree) > 1;
            match sharing {
                CacheSharing::Private if busy => {
                    return Ok(Arc::new(parking_lot::Mutex::new(seed()?)));
                }
                CacheSharing::Locked if busy => drop(mounts),
                _ => return Ok(tree.clone()),
            }
            std::thread::sleep(LOCKED_POLL);
        }
    }

    /// A cache mount's first use in this build: its saved tree, else `seed`'s. With
    /// `--no-cache` the saved tree is ignored, as BuildKit's `--no-cache` starts every
    /// cache mount anew (this build's contents are still saved for the next one).
    fn load_cache_mount(
        &self,
        mut mounts: std::sync::MutexGuard<'_, HashMap<String, kiln_runtime::SharedTree>>,
        id: &str,
        seed: &dyn Fn() -> Result<kiln_fs::Tree, StepError>,
    ) -> Result<kiln_runtime::SharedTree, StepError> {
        let saved = if self.req.no_cache {
            Err(std::io::ErrorKind::NotFound.into())
        } else {
            std::fs::File::open(self.cache_mount_file(id))
        };
        let tree = match saved {
            Ok(file) => {
                let mut tree = kiln_fs::Tree::new(&self.store);
                tree.apply_layer(std::io::BufReader::new(file))
                    .map_err(|source| StepError::CacheMountCorrupt {
                        id: id.to_owned(),
                        source,
                    })?;
                tree
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => seed()?,
            Err(source) => {
                return Err(StepError::CacheMountRead {
                    id: id.to_owned(),
                    source,
                });
            }
        };
        let tree = Arc::new(parking_lot::Mutex::new(tree));
        mounts.insert(id.to_owned(), tree.clone());
        Ok(tree)
    }

    /// Writes every cache mount used by this build back to the cache directory (a tar of
    /// its tree, written to a temp file and renamed), unless it holds a secret value: then
    /// its new contents are dropped and, with `--secret-leak=error`, the build fails.
    fn persist_cache_mounts(&self) -> Result<(), BuildError> {
        let mounts = self
            .cache_mounts
            .lock()
            .map_err(|_| BuildError::Internal("cache mount table poisoned".into()))?;
        let mut leaks = Vec::new();
        for (id, tree) in mounts.iter() {
            if let Some(f) = self.save_cache_mount(id, tree)? {
                leaks.push(f);
            }
        }
        leak::mount_leaks(self, &leaks)
    }

    /// Saves one cache mount; returns where it holds a secret value instead, if it does.
    fn save_cache_mount(
        &self,
        id: &str,
        tree: &kiln_runtime::SharedTree,
    ) -> Result<Option<leak::Finding>, BuildError> {
        use std::io::Seek as _;
        let dir = crate::places::CacheLayout::new(&self.req.cache_dir).mounts();
        let io = |e: std::io::Error| crate::cache::CacheError::Io {
            path: dir.join(format!("(cache mount {id:?})")),
            source: e,
        };
        let fs = |source: kiln_fs::FsError| crate::cache::CacheError::Fs {
            path: dir.join(format!("(cache mount {id:?})")),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let snapshot = tree.lock().snapshot().map_err(fs)?;
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        let out = std::io::BufWriter::new(tmp);
        let out = kiln_fs::write_snapshot(&snapshot, self.req.epoch, out).map_err(fs)?;
        let mut tmp = out.into_inner().map_err(|e| io(e.into_error()))?;
        // Scanned before it is renamed into place; a leaking tar is deleted with `tmp`.
        tmp.as_file_mut().rewind().map_err(io)?;
        let reader = std::io::BufReader::new(tmp.as_file());
        if let Some(mut f) = self.guard.scan_layer(reader).map_err(io)? {
            f.location = format!("{} in cache mount {id:?} (not saved)", f.location);
            return Ok(Some(f));
        }
        tmp.persist(self.cache_mount_file(id))
            .map_err(|e| io(e.error))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(text: &str) -> (Dockerfile, GlobalScope, StageGraph) {
        let df = kiln_dockerfile::parse(text, "Dockerfile").unwrap();
        let platform = frontend_platform(&Platform::host_linux());
        let args = BuildArgs {
            values: BTreeMap::new(),
            target_platform: platform.clone(),
            build_platform: platform,
            target_stage: None,
        };
        let global = GlobalScope::new(&df, &args).unwrap();
        let graph = StageGraph::new(&df, &global).unwrap();
        (df, global, graph)
    }

    #[test]
    fn a_required_secret_not_given_fails_naming_its_line() {
        let text = "FROM scratch AS a\nRUN true\n\
            FROM scratch\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n";
        let (df, global, graph) = planned(text);
        let err = check_required_secrets(&df, &graph, &global, &[0, 1], &Secrets::default(), "Df")
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::MissingSecret { id, location } if id.as_str() == "tok" && location == "Df:4"),
            "{err}"
        );
        // A stage that is not needed is not checked.
        assert!(
            check_required_secrets(&df, &graph, &global, &[0], &Secrets::default(), "Df").is_ok()
        );
    }

    #[test]
    fn history_over_the_config_limit_fails_before_any_step() {
        // Counted as JSON stores it: a control byte is six bytes (`\u0001`), so 3 MiB of
        // them are 18 MiB of history, over the 16 MiB limit.
        let line = "\u{1}".repeat(1 << 20);
        let mut text = String::from("FROM scratch\n");
        for _ in 0..3 {
            text.push_str(&format!("LABEL a={line}\n"));
        }
        let (df, _, graph) = planned(&text);
        let err = check_history_size(&df, &graph, 0, "Df").unwrap_err();
        assert!(err.to_string().contains("Df:4"), "{err}");
        let (small, _, graph) = planned("FROM scratch\nLABEL a=b\n");
        assert!(check_history_size(&small, &graph, 0, "Df").is_ok());
    }

    #[test]
    fn the_dockerignore_beside_the_dockerfile_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("app.Dockerfile");
        assert_eq!(dockerignore_beside(&df), None);
        std::fs::write(dir.path().join("app.Dockerfile.dockerignore"), "x\n").unwrap();
        assert_eq!(
            dockerignore_beside(&df),
            Some(dir.path().join("app.Dockerfile.dockerignore"))
        );
    }
}
