//! The subcommands, each a thin layer over `kiln-engine` / `kiln-oci`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow, bail};
use kiln_engine::secrets::Secrets;
use kiln_engine::{BuildRequest, LeakPolicy, Network, places};
use kiln_oci::{Layout, Platform};

use kiln_engine::export::{ExportRequest, Exported, ImageTarget, Target};

use crate::args::{
    BuildArgs, Cli, Command, LeakMode, PushArgs, RunArgs, SaveArgs, SaveFormat, key_values,
    parse_output,
};

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub(crate) fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Build(args) => build(*args),
        Command::Run(args) => run(args),
        Command::Images => images(),
        Command::Push(args) => push(args),
        Command::Save(args) => save(args),
        Command::Prune => prune(),
        Command::Compose(args) => crate::compose::run(args),
    }
}

/// `--build-context NAME=VALUE`s by name; a name given twice is an error, and a
/// directory (layout or local) is made absolute against the current directory.
fn build_contexts(
    specs: &[String],
) -> Result<std::collections::BTreeMap<String, kiln_engine::NamedContext>> {
    let mut out = std::collections::BTreeMap::new();
    for spec in specs {
        let (name, mut context) = kiln_engine::NamedContext::parse(spec)?;
        if let kiln_engine::NamedContext::OciLayout { dir, .. }
        | kiln_engine::NamedContext::Local(dir) = &mut context
        {
            *dir = std::path::absolute(&*dir)
                .with_context(|| format!("--build-context {spec}: {}", dir.display()))?;
        }
        if out.insert(name.clone(), context).is_some() {
            bail!("--build-context {name} is given twice");
        }
    }
    Ok(out)
}

/// `--platform`: one platform or a comma-separated list (each built, then one index);
/// the host's Linux platform when absent.
fn platforms(arg: Option<&str>) -> Result<Vec<Platform>> {
    match arg {
        None => Ok(vec![Platform::host_linux()]),
        Some(p) => Platform::parse_list(p).map_err(|e| anyhow!("--platform: {e}")),
    }
}

/// The Dockerfile to read: `path`, or when a file named `Dockerfile` is absent, a
/// lowercase `dockerfile` beside it, as BuildKit's frontend falls back.
fn dockerfile_path(path: PathBuf) -> PathBuf {
    let lowercase = path.with_file_name("dockerfile");
    let fallback = path.file_name().is_some_and(|n| n == "Dockerfile")
        && std::fs::symlink_metadata(&path).is_err()
        && std::fs::symlink_metadata(&lowercase).is_ok();
    if fallback { lowercase } else { path }
}

/// As buildx: SOURCE_DATE_EPOCH from the environment is a build arg (unless one is
/// given), so it wins over an `ARG SOURCE_DATE_EPOCH=` default in the Dockerfile.
pub(crate) fn epoch_arg_from_env(build_args: &mut Vec<(String, String)>) {
    if !build_args.iter().any(|(k, _)| k == "SOURCE_DATE_EPOCH")
        && let Some(v) = env_lookup("SOURCE_DATE_EPOCH")
    {
        build_args.push(("SOURCE_DATE_EPOCH".into(), v));
    }
}

/// `SOURCE_DATE_EPOCH` from `--build-arg`, then the environment, default 0.
pub(crate) fn source_date_epoch(build_args: &[(String, String)]) -> Result<i64> {
    let value = build_args
        .iter()
        .find(|(k, _)| k == "SOURCE_DATE_EPOCH")
        .map(|(_, v)| v.clone())
        .or_else(|| env_lookup("SOURCE_DATE_EPOCH"));
    match value {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
    }
}

fn network(mode: &str, allow_hosts: Vec<String>) -> Result<Network> {
    let enabled = match mode {
        "default" | "host" => true,
        "none" => false,
        other => bail!("--network={other}: use default or none"),
    };
    Ok(Network {
        enabled,
        allowed_hosts: allow_hosts,
    })
}

fn build(a: BuildArgs) -> Result<i32> {
    let mut build_args =
        key_values(&a.build_args, "--build-arg", &env_lookup).map_err(|e| anyhow!(e))?;
    epoch_arg_from_env(&mut build_args);
    let labels = key_values(&a.labels, "--label", &env_lookup).map_err(|e| anyhow!(e))?;
    let mut targets = a
        .outputs
        .iter()
        .map(|o| parse_output(o).map_err(|e| anyhow!(e)))
        .collect::<Result<Vec<_>>>()?;
    if a.push {
        targets.push(Target::Image(ImageTarget::Registry {
            names: Vec::new(),
            insecure: false,
        }));
    }
    let dockerfile = dockerfile_path(
        a.file
            .clone()
            .unwrap_or_else(|| a.context.join("Dockerfile")),
    );
    if a.check {
        return crate::check::run(&dockerfile, &a.context, a.target.as_deref(), &build_args);
    }
    let secrets = Secrets::from_flags(&a.secrets, &env_lookup)?;
    let epoch = source_date_epoch(&build_args)?;
    let platforms = platforms(a.platform.as_deref())?;
    let cache_to = a
        .cache_to
        .iter()
        .map(|c| kiln_engine::cache_remote::CacheExport::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let cache_from = a
        .cache_from
        .iter()
        .map(|c| kiln_engine::cache_remote::CacheImport::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let store_dir = places::store_dir()?;
    let req = BuildRequest {
        context_dir: a.context.clone(),
        dockerfile,
        target: a.target.clone(),
        build_args,
        secrets,
        network: network(&a.network, a.allow_hosts.clone())?,
        no_cache: a.no_cache,
        no_cache_filter: a.no_cache_filter.clone(),
        platform: platforms
            .first()
            .cloned()
            .unwrap_or_else(Platform::host_linux),
        labels,
        epoch,
        leak_policy: match a.secret_leak {
            LeakMode::Error => LeakPolicy::Error,
            LeakMode::Warn => LeakPolicy::Warn,
        },
        cache_dir: places::cache_dir()?,
        image_store: Some(store_dir.clone()),
        compression: crate::compression::from_outputs(&a.outputs).map_err(|e| anyhow!(e))?,
        build_contexts: build_contexts(&a.build_contexts)?,
        step_limits: kiln_engine::StepLimits {
            timeout: a.step_timeout,
            memory_bytes: a.memory,
            disk_bytes: a.disk_quota,
        },
        cancel: Default::default(),
    };
    let sink: Arc<dyn kiln_engine::progress::EventSink> =
        Arc::from(crate::render::sink(a.progress, a.quiet));
    let tags: Vec<String> = a
        .tags
        .iter()
        .map(|t| kiln_engine::normalize_name(t))
        .collect();
    let export_req = ExportRequest {
        tags,
        store: store_dir,
        targets,
    };
    let mut stored = false;
    let mut seen = |done: Exported| {
        stored |= done == Exported::Stored;
        report(&done);
    };
    let mut builds = kiln_engine::build_platforms(req, &platforms, &cache_from, sink)?;
    let (manifest_digest, config_digest) = match builds.as_mut_slice() {
        [built] => {
            kiln_engine::export::export(built, &export_req, &mut seen)?;
            let image = &built.image;
            let config = image.config_digest()?.to_string();
            (image.digest()?.to_string(), Some(config))
        }
        several => {
            let index = kiln_engine::export::platform_index(several)?;
            kiln_engine::export::export_index(several, &index, &export_req, &mut seen)?;
            // As buildx: a multi-platform result has no one config; its id is the index's.
            (index.digest()?.to_string(), None)
        }
    };
    for export in &cache_to {
        let digest = kiln_engine::cache_remote::export_cache(&builds, export)?;
        if !a.quiet {
            eprintln!("exported the build cache to {} ({digest})", export.place);
        }
    }
    let tags = export_req.tags;
    let image_id = config_digest.as_deref().unwrap_or(&manifest_digest);
    if let Some(path) = &a.iidfile {
        std::fs::write(path, image_id)
            .with_context(|| format!("writing --iidfile {}", path.display()))?;
    }
    if let Some(path) = &a.metadata_file {
        let mut meta = serde_json::json!({
            "containerimage.digest": manifest_digest,
            "image.name": tags.join(","),
        });
        if let Some(config) = &config_digest {
            meta["containerimage.config.digest"] = config.as_str().into();
        }
        std::fs::write(path, serde_json::to_vec_pretty(&meta)?)
            .with_context(|| format!("writing --metadata-file {}", path.display()))?;
    }
    if a.quiet {
        println!("{image_id}");
    } else {
        eprintln!(
            "built {} ({manifest_digest}){}",
            if tags.is_empty() {
                "image".to_owned()
            } else {
                tags.join(", ")
            },
            if stored {
                " into the local image store"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

/// Tells the user about an export that is done.
fn report(done: &Exported) {
    if let Exported::Pushed { name, digest } = done {
        eprintln!("pushed {name}@{digest}");
    }
}

fn run(a: RunArgs) -> Result<i32> {
    let env = key_values(&a.env, "-e", &env_lookup).map_err(|e| anyhow!(e))?;
    let binds = a
        .mounts
        .iter()
        .map(|m| parse_bind(m))
        .collect::<Result<Vec<_>>>()?;
    let network = network(&a.network, Vec::new())?;
    let req = kiln_engine::container::RunRequest {
        image: a.image,
        store: places::store_dir()?,
        cache_dir: places::cache_dir()?,
        command: a.command,
        env,
        workdir: a.workdir,
        binds,
        network: network.enabled,
        platform: Platform::host_linux(),
        epoch: source_date_epoch(&[])?,
    };
    Ok(kiln_engine::container::run(req)?)
}

/// `type=bind,source=DIR,target=PATH[,rw|readonly]` (docker run's --mount).
fn parse_bind(spec: &str) -> Result<kiln_engine::container::Bind> {
    let mut source = None;
    let mut target = None;
    let mut readwrite = false;
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" if v == "bind" => {}
            "type" => bail!("--mount {spec:?}: only type=bind is supported by kiln run"),
            "source" | "src" => source = Some(PathBuf::from(v)),
            "target" | "dst" | "destination" => target = Some(v.to_owned()),
            "rw" | "readwrite" => readwrite = v.is_empty() || v == "true",
            "ro" | "readonly" => readwrite = !(v.is_empty() || v == "true"),
            other => bail!("--mount {spec:?}: unknown option {other:?}"),
        }
    }
    let source = source.ok_or_else(|| anyhow!("--mount {spec:?}: source=DIR is required"))?;
    let target = target.ok_or_else(|| anyhow!("--mount {spec:?}: target=PATH is required"))?;
    if !target.starts_with('/') {
        bail!("--mount {spec:?}: target must be an absolute path");
    }
    let source = std::fs::canonicalize(&source)
        .with_context(|| format!("--mount source {}", source.display()))?;
    Ok(kiln_engine::container::Bind {
        source,
        target,
        readwrite,
    })
}

fn images() -> Result<i32> {
    let store = places::store_dir()?;
    let Ok(layout) = Layout::open(&store) else {
        println!("REPOSITORY:TAG\tDIGEST\tSIZE");
        return Ok(0);
    };
    println!("REPOSITORY:TAG\tDIGEST\tSIZE");
    for (name, desc) in layout.tags()? {
        let size = layout
            .load_descriptor(&desc, None)
            .map(|img| img.manifest.layers().iter().map(|l| l.size()).sum::<u64>())
            .unwrap_or(0);
        println!("{name}\t{}\t{}", desc.digest(), human(size));
    }
    Ok(0)
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}

fn load_from_store(name: &str) -> Result<kiln_oci::Image> {
    let store = places::store_dir()?;
    let layout = Layout::open(&store)
        .with_context(|| format!("kiln's image store {} is empty", store.display()))?;
    layout
        .load_image(Some(&kiln_engine::normalize_name(name)), None)
        .with_context(|| format!("image {name} is not in the local store (see `kiln images`)"))
}

fn push(a: PushArgs) -> Result<i32> {
    let image = load_from_store(&a.name)?;
    let target = ImageTarget::Registry {
        names: vec![a.name],
        insecure: a.insecure,
    };
    kiln_engine::export::export_image(&image, &target, &[], &mut |done| report(&done))?;
    Ok(0)
}

fn save(a: SaveArgs) -> Result<i32> {
    let image = load_from_store(&a.name)?;
    let name = kiln_engine::normalize_name(&a.name);
    let dest = a.output;
    let target = match a.format {
        SaveFormat::Docker => ImageTarget::DockerArchive { dest },
        SaveFormat::Oci => ImageTarget::OciArchive { dest },
    };
    kiln_engine::export::export_image(&image, &target, &[name], &mut |_| {})?;
    Ok(0)
}

fn prune() -> Result<i32> {
    let dir = places::cache_dir()?;
    let freed = kiln_engine::prune(&dir)?;
    println!("Total reclaimed space: {}", human(freed));
    Ok(0)
}
