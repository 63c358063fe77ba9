//! Each service's `build:` as a kiln build request: paths resolved against the project
//! directory, args and secrets read from the environment and `.env`, and every option
//! kiln cannot honour refused by name rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_engine::secrets::{SecretId, SecretSource, SecretSpec, Secrets};
use kiln_engine::{BuildRequest, LeakPolicy, NamedContext, Network};
use kiln_oci::Platform;
use serde_yaml_ng::Value;

use crate::error::ComposeError;
use crate::load::Project;
use crate::model::{Build, Grant, Scalar, Service};

/// What the command line sets for every service's build.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub cache_dir: PathBuf,
    pub image_store: Option<PathBuf>,
    /// `--no-cache`: on for every service, whatever its `no_cache:`.
    pub no_cache: bool,
    pub leak_policy: LeakPolicy,
}

/// One service's build: the request and the names its image gets.
pub struct ServiceBuild {
    pub service: String,
    pub request: BuildRequest,
    /// `image:` (or `<project>-<service>`), then `build.tags`.
    pub tags: Vec<String>,
    pub warnings: Vec<String>,
    /// Holds a `dockerfile_inline` file until the build is done.
    _inline: Option<tempfile::TempDir>,
}

/// The builds of `selected` services (all services with a `build:` section and an
/// active profile when empty), as `docker compose build [SERVICE...]` picks them.
pub fn plan(
    project: &Project,
    selected: &[String],
    defaults: &Defaults,
) -> Result<Vec<ServiceBuild>, ComposeError> {
    if project.model.include.is_some() {
        return Err(unsupported(
            "include",
            "the top-level `include`",
            "merge the files with -f instead",
        ));
    }
    let services = &project.model.services;
    for name in selected {
        if !services.contains_key(name) {
            return Err(ComposeError::NoSuchService(name.clone()));
        }
    }
    let profiles = active_profiles(project);
    let chosen = services.iter().filter(|(name, service)| {
        if selected.is_empty() {
            service.profiles.is_empty() || service.profiles.iter().any(|p| profiles.contains(p))
        } else {
            selected.contains(name)
        }
    });
    let mut out = Vec::new();
    for (name, service) in chosen {
        if service.extends.is_some() {
            return Err(unsupported(
                &format!("services.{name}.extends"),
                "`extends`",
                "write the service out, or merge files with -f",
            ));
        }
        if let Some(build) = &service.build {
            out.push(service_build(project, name, service, build, defaults)?);
        }
    }
    Ok(out)
}

/// `COMPOSE_PROFILES`, comma-separated.
fn active_profiles(project: &Project) -> Vec<String> {
    project
        .lookup("COMPOSE_PROFILES")
        .map(|p| p.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn unsupported(at: &str, what: &str, hint: &str) -> ComposeError {
    ComposeError::Unsupported {
        at: at.to_owned(),
        what: what.to_owned(),
        hint: hint.to_owned(),
    }
}

fn service_build(
    project: &Project,
    name: &str,
    service: &Service,
    build: &Build,
    defaults: &Defaults,
) -> Result<ServiceBuild, ComposeError> {
    let at = format!("services.{name}.build");
    refuse_unsupported(build, &at)?;
    let context_dir = context_dir(project, build, &at)?;
    let mut warnings = Vec::new();
    let (dockerfile, inline) = dockerfile(name, build, &context_dir)?;
    let mut request = BuildRequest::new(context_dir, defaults.cache_dir.clone());
    request.dockerfile = dockerfile;
    request.image_store = defaults.image_store.clone();
    request.leak_policy = defaults.leak_policy;
    request.no_cache = defaults.no_cache || build.no_cache;
    request.target = build.target.clone();
    request.build_args = args(project, &build.args);
    request.labels = labels(&build.labels);
    request.secrets = secrets(project, name, &build.secrets, &mut warnings)?;
    request.platform = platform(name, service, build)?;
    request.network = network(build.network.as_deref(), &at)?;
    request.build_contexts = contexts(project, name, &build.additional_contexts)?;
    let image = service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{name}", project.name));
    let mut tags = vec![image];
    tags.extend(build.tags.iter().cloned());
    Ok(ServiceBuild {
        service: name.to_owned(),
        request,
        tags,
        warnings,
        _inline: inline,
    })
}

/// Options kiln has no equivalent for yet fail by name: silently building something else
/// than asked is worse than stopping.
fn refuse_unsupported(build: &Build, at: &str) -> Result<(), ComposeError> {
    if let Some(key) = build.other.keys().next() {
        return Err(unsupported(
            &format!("{at}.{key}"),
            &format!("`{key}`"),
            "remove it to build with kiln",
        ));
    }
    if build.ssh.as_ref().is_some_and(|v| !is_empty(v)) {
        return Err(unsupported(
            &format!("{at}.ssh"),
            "`ssh`",
            "kiln has no SSH agent mounts yet; use a build secret",
        ));
    }
    for (key, list) in [
        ("cache_from", &build.cache_from),
        ("cache_to", &build.cache_to),
    ] {
        if !list.is_empty() {
            return Err(unsupported(
                &format!("{at}.{key}"),
                &format!("`{key}`"),
                "kiln has no registry cache yet; its local cache is always used",
            ));
        }
    }
    if build.pull {
        return Err(unsupported(
            &format!("{at}.pull"),
            "`pull: true`",
            "kiln pulls a base image when its local store lacks it; remove the image from the store to pull it again",
        ));
    }
    Ok(())
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// The context directory; a remote context (git or URL) is refused.
fn context_dir(project: &Project, build: &Build, at: &str) -> Result<PathBuf, ComposeError> {
    let context = build.context.as_deref().unwrap_or(".");
    let remote = context.contains("://")
        || context.starts_with("git@")
        || context.starts_with("github.com/");
    if remote {
        return Err(unsupported(
            &format!("{at}.context"),
            &format!("the remote context {context:?}"),
            "clone it and point `context` at the directory",
        ));
    }
    Ok(project.dir.join(context))
}

/// The Dockerfile's path: `dockerfile` relative to the context (compose's rule), or
/// `dockerfile_inline` written to a private temp file.
fn dockerfile(
    service: &str,
    build: &Build,
    context: &Path,
) -> Result<(PathBuf, Option<tempfile::TempDir>), ComposeError> {
    match (&build.dockerfile, &build.dockerfile_inline) {
        (Some(_), Some(_)) => Err(ComposeError::DockerfileTwice(service.to_owned())),
        (None, Some(text)) => {
            let failed = |source| ComposeError::Inline {
                service: service.to_owned(),
                source,
            };
            let dir = tempfile::Builder::new()
                .prefix("kiln-compose-inline-")
                .tempdir()
                .map_err(failed)?;
            let path = dir.path().join("Dockerfile");
            std::fs::write(&path, text).map_err(failed)?;
            Ok((path, Some(dir)))
        }
        (file, None) => Ok((context.join(file.as_deref().unwrap_or("Dockerfile")), None)),
    }
}

/// Build args; a bare `KEY` takes the environment's value and is dropped when unset.
fn args(project: &Project, args: &BTreeMap<String, Option<Scalar>>) -> Vec<(String, String)> {
    args.iter()
        .filter_map(|(k, v)| {
            let value = match v {
                Some(Scalar(v)) => Some(v.clone()),
                None => project.lookup(k),
            };
            value.map(|v| (k.clone(), v))
        })
        .collect()
}

fn labels(labels: &BTreeMap<String, Option<Scalar>>) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_ref().map(|s| s.0.clone()).unwrap_or_default(),
            )
        })
        .collect()
}

/// The build's secrets: each grant's definition read from its file or variable under
/// the id the Dockerfile asks for (`target`, else the secret's name).
fn secrets(
    project: &Project,
    service: &str,
    grants: &[Grant],
    warnings: &mut Vec<String>,
) -> Result<Secrets, ComposeError> {
    let mut specs = Vec::new();
    for grant in grants {
        specs.push(secret_spec(project, service, grant)?);
        if grant.uid.is_some() || grant.gid.is_some() || grant.mode.is_some() {
            // As docker compose: BuildKit's secret mount options in the Dockerfile set
            // the file's owner and mode, not the grant.
            warnings.push(format!(
                "service {service:?}: secrets `uid`, `gid` and `mode` are not supported by BuildKit, they will be ignored"
            ));
        }
    }
    Secrets::load(&specs, &|name: &str| project.lookup(name)).map_err(|source| {
        ComposeError::Secret {
            service: service.to_owned(),
            source,
        }
    })
}

fn secret_spec(
    project: &Project,
    service: &str,
    grant: &Grant,
) -> Result<SecretSpec, ComposeError> {
    let secret = || grant.source.clone();
    let def =
        project
            .model
            .secrets
            .get(&grant.source)
            .ok_or_else(|| ComposeError::UndefinedSecret {
                service: service.to_owned(),
                secret: secret(),
            })?;
    if def
        .external
        .as_ref()
        .is_some_and(|e| !matches!(e, Value::Bool(false) | Value::Null))
    {
        return Err(ComposeError::ExternalSecret {
            service: service.to_owned(),
            secret: secret(),
        });
    }
    let source = match (&def.file, &def.environment) {
        (Some(file), _) => SecretSource::File(project.dir.join(file)),
        (None, Some(var)) => SecretSource::Env(var.clone()),
        (None, None) => {
            return Err(ComposeError::SecretWithoutSource {
                service: service.to_owned(),
                secret: secret(),
            });
        }
    };
    let id = grant.target.clone().unwrap_or_else(secret);
    let id = SecretId::new(id).map_err(|source| ComposeError::SecretId {
        service: service.to_owned(),
        secret: secret(),
        source,
    })?;
    Ok(SecretSpec { id, source })
}

/// `build.platforms` (one; several need multi-platform builds kiln does not have), else
/// the service's `platform`, else the host's.
fn platform(name: &str, service: &Service, build: &Build) -> Result<Platform, ComposeError> {
    let wanted = match build.platforms.as_slice() {
        [] => service.platform.as_deref(),
        [one] => Some(one.as_str()),
        _ => {
            return Err(unsupported(
                &format!("services.{name}.build.platforms"),
                "more than one platform",
                "kiln builds one platform per image; list one",
            ));
        }
    };
    match wanted {
        None => Ok(Platform::host_linux()),
        Some(p) => p.parse().map_err(|source| ComposeError::Platform {
            service: name.to_owned(),
            platform: p.to_owned(),
            source: Box::new(source),
        }),
    }
}

fn network(mode: Option<&str>, at: &str) -> Result<Network, ComposeError> {
    let enabled = match mode {
        None | Some("default") | Some("host") => true,
        Some("none") => false,
        Some(other) => {
            return Err(unsupported(
                &format!("{at}.network"),
                &format!("network {other:?}"),
                "use default, host or none",
            ));
        }
    };
    Ok(Network {
        enabled,
        allowed_hosts: Vec::new(),
    })
}

/// `additional_contexts` as `--build-context`s, directories relative to the project.
fn contexts(
    project: &Project,
    service: &str,
    contexts: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, NamedContext>, ComposeError> {
    let mut out = BTreeMap::new();
    for (name, value) in contexts {
        if value.starts_with("service:") {
            return Err(unsupported(
                &format!("services.{service}.build.additional_contexts.{name}"),
                &format!("{value:?}"),
                "build that service first and use docker-image://ITS-IMAGE",
            ));
        }
        let (name, mut context) =
            NamedContext::parse(&format!("{name}={value}")).map_err(|source| {
                ComposeError::Context {
                    service: service.to_owned(),
                    source,
                }
            })?;
        if let NamedContext::OciLayout { dir, .. } | NamedContext::Local(dir) = &mut context {
            *dir = project.dir.join(&*dir);
        }
        out.insert(name, context);
    }
    Ok(out)
}
