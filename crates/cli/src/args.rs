//! Command-line syntax: docker-build-compatible flags, parsed with clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kiln_engine::export::{ImageTarget, Target};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build OCI images from Dockerfiles: every RUN step is WebAssembly; no daemon, no root, no VM",
    long_about = None
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile and a build context.
    Build(Box<BuildArgs>),
    /// Run a command in an image's filesystem with kiln's runtime (like `docker run --rm`).
    Run(RunArgs),
    /// List the images in kiln's local image store.
    Images,
    /// Push an image from the local store to its registry.
    Push(PushArgs),
    /// Write an image from the local store to a tar archive.
    Save(SaveArgs),
    /// Delete kiln's build cache.
    Prune,
    /// Build a compose project's services (like `docker compose build`).
    Compose(crate::compose::ComposeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    Auto,
    Tty,
    Plain,
    Rawjson,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LeakMode {
    Error,
    Warn,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// The build context directory.
    #[arg(default_value = ".")]
    pub context: PathBuf,
    /// Name of the Dockerfile (default: PATH/Dockerfile).
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Name and optionally a tag (`name:tag`); repeatable.
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// Build this stage and only what it needs.
    #[arg(long)]
    pub target: Option<String>,
    /// Set a build-time variable (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Expose a secret to the build (`id=X,src=PATH`, `id=X,env=VAR`, `id=X`).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Networking for RUN steps: `default` (allowed) or `none`.
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Hosts RUN steps may reach over HTTP(S) (repeatable; default: any).
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Do not use the cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Do not use the cache for the steps of this stage (repeatable, or comma-separated).
    #[arg(long = "no-cache-filter", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Output destination (`type=oci|docker|local|registry,dest=...`).
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Shorthand for `--output=type=registry`.
    #[arg(long)]
    pub push: bool,
    /// Target platform (`linux/amd64`), or a comma-separated list built into one index.
    #[arg(long)]
    pub platform: Option<String>,
    /// Export the build cache: `type=registry,ref=NAME[,mode=min|max]` or
    /// `type=local,dest=DIR[,mode=...]` (repeatable).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Import a build cache: `type=registry,ref=NAME`, `type=local,src=DIR` or `NAME`
    /// (repeatable).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Set metadata for the image (`KEY=VALUE`).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image ID (config digest) to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write build result metadata (JSON) to this file.
    #[arg(long)]
    pub metadata_file: Option<PathBuf>,
    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only check the Dockerfile (lints) and exit.
    #[arg(long)]
    pub check: bool,
    /// What to do when a secret value is found in the image.
    #[arg(long = "secret-leak", value_enum, default_value = "error")]
    pub secret_leak: LeakMode,
    /// A named context for `FROM NAME` / `COPY --from=NAME`: `NAME=oci-layout:///DIR[:TAG]`,
    /// `NAME=docker-image://REF`, or `NAME=DIR` (COPY --from / RUN --mount from= only).
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Wall-clock limit for each RUN step (`500ms`, `90s`, `5m`, `1h30m`; default: none).
    #[arg(long = "step-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub step_timeout: Option<std::time::Duration>,
    /// Memory limit for each wasm process of a RUN step (bytes, or with k/m/g; default: 4g).
    #[arg(long = "memory", value_name = "BYTES", value_parser = parse_bytes)]
    pub memory: Option<u64>,
    /// File data each RUN step may write to disk (bytes, or with k/m/g/t; default: 10g).
    #[arg(long = "disk-quota", value_name = "BYTES", value_parser = parse_bytes)]
    pub disk_quota: Option<u64>,
}

/// Parses `1h30m`, `90s`, `500ms`, `2.5s` or a bare number of seconds. Hand-written: the
/// grammar is a few lines and it keeps a dependency out of the CLI.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {text:?}: use e.g. 500ms, 90s, 5m or 1h30m");
    if let Ok(secs) = text.parse::<f64>() {
        return std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if text.is_empty() {
        return Err(bad());
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Parses a byte count as docker's `--memory` does: a number with an optional `b`, `k`,
/// `m`, `g` (or `t`) suffix (binary units, case-insensitive).
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {text:?}: use e.g. 512m, 2g or a number of bytes");
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower
        .strip_suffix("ib")
        .map_or(lower.clone(), |s| s.to_owned());
    let (digits, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        Some('t') => (&lower[..lower.len() - 1], 40),
        Some('b') => (&lower[..lower.len() - 1], 0),
        _ => (lower.as_str(), 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift)
        .filter(|&b| b > 0)
        .ok_or_else(bad)
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Set an environment variable (`KEY=VALUE`).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the image.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Bind a host directory: `type=bind,source=DIR,target=PATH[,rw]`.
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Allow network access (HTTP through the runtime).
    #[arg(long, default_value = "default")]
    pub network: String,
    /// An image in the local store, or `scratch`.
    pub image: String,
    /// The command and its arguments (default: the image's ENTRYPOINT + CMD).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// `registry/repository:tag` of an image in the local store.
    pub name: String,
    /// Allow plain HTTP and unverified TLS for this registry.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// Image name in the local store.
    pub name: String,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Archive format.
    #[arg(long, value_enum, default_value = "docker")]
    pub format: SaveFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SaveFormat {
    Docker,
    Oci,
}

/// One `--output`, as buildx spells it, as the engine's export target.
pub(crate) fn parse_output(spec: &str) -> Result<Target, String> {
    if !spec.contains('=') {
        // buildx: a bare path means a local export.
        return Ok(Target::Local { dest: spec.into() });
    }
    let mut kind = None;
    let mut dest = None;
    let mut tar = true;
    let mut names = Vec::new();
    let mut insecure = false;
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid --output field {field:?}: expected key=value"))?;
        match k {
            "type" => kind = Some(v.to_owned()),
            "dest" => dest = Some(PathBuf::from(v)),
            "tar" => tar = parse_bool(k, v)?,
            "name" => names = vec![v.to_owned()],
            "push" => {
                if !parse_bool(k, v)? {
                    return Err("type=registry always pushes; omit push=false".into());
                }
            }
            "registry.insecure" => insecure = parse_bool(k, v)?,
            // Layer compression is the build's, not the target's: see compression.rs.
            k if crate::compression::KEYS.contains(&k) => {}
            other => return Err(format!("unknown --output key {other:?}")),
        }
    }
    let need_dest = |dest: Option<PathBuf>, t: &str| {
        dest.ok_or_else(|| format!("--output type={t} needs dest=PATH"))
    };
    let image = match kind.as_deref() {
        Some("oci") if tar => ImageTarget::OciArchive {
            dest: need_dest(dest, "oci")?,
        },
        Some("oci") => ImageTarget::OciLayout {
            dest: need_dest(dest, "oci")?,
        },
        Some("docker") => ImageTarget::DockerArchive {
            dest: need_dest(dest, "docker")?,
        },
        Some("local") => {
            return Ok(Target::Local {
                dest: need_dest(dest, "local")?,
            });
        }
        Some("registry") | Some("image") => ImageTarget::Registry { names, insecure },
        Some(other) => {
            return Err(format!(
                "unknown output type {other:?}: use oci, docker, local or registry"
            ));
        }
        None => return Err("--output needs type=oci|docker|local|registry".into()),
    };
    Ok(Target::Image(image))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{key}={value:?}: expected true or false")),
    }
}

/// Splits `KEY=VALUE`; a bare `KEY` takes its value from the environment (docker's rule
/// for `--build-arg` and `-e`), and is dropped if unset.
pub(crate) fn key_values(
    items: &[String],
    what: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for item in items {
        match item.split_once('=') {
            Some(("", _)) => return Err(format!("invalid {what} {item:?}")),
            Some((k, v)) => out.push((k.to_owned(), v.to_owned())),
            None => {
                if let Some(v) = env(item) {
                    out.push((item.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_like_buildx() {
        let image = |t| Ok(Target::Image(t));
        assert_eq!(
            parse_output("type=oci,dest=x.tar"),
            image(ImageTarget::OciArchive {
                dest: "x.tar".into()
            })
        );
        assert_eq!(
            parse_output("type=oci,dest=dir,tar=false"),
            image(ImageTarget::OciLayout { dest: "dir".into() })
        );
        assert_eq!(
            parse_output("type=docker,dest=x.tar"),
            image(ImageTarget::DockerArchive {
                dest: "x.tar".into()
            })
        );
        assert_eq!(
            parse_output("out"),
            Ok(Target::Local { dest: "out".into() })
        );
        assert_eq!(
            parse_output("type=registry"),
            image(ImageTarget::Registry {
                names: Vec::new(),
                insecure: false
            })
        );
        assert_eq!(
            parse_output("type=image,name=r/a:1,registry.insecure=true"),
            image(ImageTarget::Registry {
                names: vec!["r/a:1".into()],
                insecure: true
            })
        );
        for bad in [
            "type=oci",
            "type=ftp,dest=x",
            "type=oci,dest=x,tar=maybe",
            "dest=x",
        ] {
            assert!(parse_output(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_values_take_bare_keys_from_env() {
        let env = |k: &str| (k == "HOME").then(|| "/root".to_owned());
        let kv = key_values(
            &["A=1".into(), "HOME".into(), "UNSET".into(), "B=x=y".into()],
            "--build-arg",
            &env,
        )
        .unwrap();
        assert_eq!(
            kv,
            vec![
                ("A".into(), "1".into()),
                ("HOME".into(), "/root".into()),
                ("B".into(), "x=y".into())
            ]
        );
        assert!(key_values(&["=v".into()], "--build-arg", &env).is_err());
    }

    #[test]
    fn durations_and_sizes() {
        use std::time::Duration;
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        for bad in ["", "s", "5x", "-1s", "1e400", "2 s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("1t"), Ok(1 << 40));
        for bad in ["", "0", "m", "-1", "99999999999g", "1p"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
