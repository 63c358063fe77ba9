//! `kiln run`: a command in an image's filesystem, in the same sandbox as a RUN step
//! ([`crate::sandbox::Sandbox`]: runtime, shell, bundled tools, the image's USER and
//! HOME), like `docker run --rm`. Changes are discarded. This module only turns the
//! image and the flags into what the sandbox takes.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use kiln_fs::{Store, Timestamp, Tree};
use kiln_oci::{Config, Image, Layout, OciError, Platform};
use kiln_runtime::{MountTable, NetworkPolicy};

use crate::cache::{CacheError, CacheKey};
use crate::error::StepError;
use crate::places::CacheLayout;
use crate::sandbox::{Sandbox, Stdio, StepSpec};
use crate::state::{StageLayer, StageState, StateError};

/// A host directory to bind into the container.
#[derive(Debug, Clone)]
pub struct Bind {
    pub source: PathBuf,
    pub target: String,
    pub readwrite: bool,
}

pub struct RunRequest {
    /// An image name in the store, or `scratch`.
    pub image: String,
    pub store: PathBuf,
    pub cache_dir: PathBuf,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub binds: Vec<Bind>,
    pub network: bool,
    pub platform: Platform,
    pub epoch: i64,
}

/// Variable names only: `-e TOKEN=...` is a common way to hand a container a secret.
impl fmt::Debug for RunRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunRequest")
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &kiln_runtime::EnvNames(&self.env))
            .field("workdir", &self.workdir)
            .field("binds", &self.binds)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("file store: {0}")]
    Store(kiln_fs::FsError),
    #[error("cache: {0}")]
    Blobs(OciError),
    #[error("image {image}: {source} (is it built? see `kiln images`)")]
    NoStore { image: String, source: OciError },
    #[error("image {image}: {source}")]
    Image { image: String, source: OciError },
    #[error("image layers: {0}")]
    Layers(OciError),
    #[error("materialising the image: {0}")]
    Materialise(StateError),
    #[error("kiln run: no command given and the image has no CMD or ENTRYPOINT")]
    NoCommand,
    #[error("bind source {path}: {source}")]
    BindSource {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bind mount: {0}")]
    Bind(kiln_runtime::MountError),
    #[error("starting the wasm runtime: {0}")]
    Runtime(kiln_runtime::RuntimeError),
    /// The sandbox could not start (an unknown USER) or stop.
    #[error("kiln run: {0}")]
    Sandbox(StepError),
    #[error("kiln run: {0}")]
    Shell(kiln_shell::ShellError),
}

/// Runs the command; returns its exit status (stdio passes through).
pub fn run(req: RunRequest) -> Result<i32, RunError> {
    // Held shared for the whole run, as builds hold it: the file store's temp files are
    // live, so a build starting now must not sweep them (nor `kiln prune` remove them).
    let _cache_lock = crate::cache::Cache::open(&req.cache_dir)?;
    let store = Store::open(CacheLayout::new(&req.cache_dir).files()).map_err(RunError::Store)?;
    let (mut state, config) = if req.image == "scratch" {
        (empty_state(&store, &req)?, None)
    } else {
        let (state, image) = image_state(&store, &req)?;
        (state, Some(image.config.container()))
    };
    let snapshot = state.snapshot().map_err(RunError::Materialise)?;
    let mut tree = Tree::from_snapshot(&snapshot);
    tree.set_clock(Timestamp::from_secs(req.epoch));
    let argv = command(&req, config.as_ref())?;
    let spec = StepSpec {
        user: config
            .as_ref()
            .and_then(|c| c.user().clone())
            .unwrap_or_default(),
        env: environment(&req, config.as_ref()),
        secret_env: Vec::new(),
        cwd: workdir(&req, config.as_ref()),
        network: NetworkPolicy {
            enabled: req.network,
            allowed_hosts: Vec::new(),
        },
        limits: kiln_runtime::Limits::default(),
        shell_memory: kiln_shell::limits::DEFAULT_MEMORY_LIMIT,
        stdio: Stdio {
            stdin: Arc::new(HostStdin),
            stdout: Arc::new(HostOut(false)),
            stderr: Arc::new(HostOut(true)),
        },
    };
    let table = host_binds(&req.binds, &store)?;
    let runtime = crate::sandbox::runtime(&req.cache_dir, req.epoch).map_err(RunError::Runtime)?;
    let mut sandbox =
        Sandbox::open(runtime, &mut tree, &store, table, spec).map_err(RunError::Sandbox)?;
    let status = sandbox.shell().run_argv(&argv).map_err(RunError::Shell);
    sandbox.close(&mut tree).map_err(RunError::Sandbox)?;
    Ok(status?.0)
}

/// The image's environment (or Docker's default PATH), then `-e` on top.
fn environment(req: &RunRequest, config: Option<&Config>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = config
        .and_then(|c| c.env().clone())
        .unwrap_or_else(|| vec![format!("PATH={}", kiln_shell::DEFAULT_PATH)])
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        })
        .collect();
    for (k, v) in &req.env {
        env.retain(|(e, _)| e != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// `-w`, else the image's WORKDIR, else `/`.
fn workdir(req: &RunRequest, config: Option<&Config>) -> String {
    req.workdir
        .clone()
        .or_else(|| config.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// The command given, else the image's ENTRYPOINT and CMD.
fn command(req: &RunRequest, config: Option<&Config>) -> Result<Vec<String>, RunError> {
    let argv = if req.command.is_empty() {
        let mut v = config
            .and_then(|c| c.entrypoint().clone())
            .unwrap_or_default();
        v.extend(config.and_then(|c| c.cmd().clone()).unwrap_or_default());
        v
    } else {
        req.command.clone()
    };
    if argv.is_empty() {
        return Err(RunError::NoCommand);
    }
    Ok(argv)
}

/// `--mount type=bind,...`: host directories through capabilities, writable ones over a
/// private copy-on-write layer.
fn host_binds(binds: &[Bind], store: &Arc<Store>) -> Result<MountTable, RunError> {
    let mut table = MountTable::new();
    for b in binds {
        let dir = cap_std::fs::Dir::open_ambient_dir(&b.source, cap_std::ambient_authority())
            .map_err(|source| RunError::BindSource {
                path: b.source.clone(),
                source,
            })?;
        let added = if b.readwrite {
            table.add_bind_rw(&b.target, &dir, store)
        } else {
            table.add_bind(&b.target, dir)
        };
        added.map_err(RunError::Bind)?;
    }
    Ok(table)
}

fn empty_state(store: &Arc<Store>, req: &RunRequest) -> Result<StageState, RunError> {
    let blobs = Layout::open_or_create(CacheLayout::new(&req.cache_dir).blobs())
        .map_err(RunError::Blobs)?;
    Ok(StageState::new(
        CacheKey::root("scratch", ""),
        kiln_oci::ImageConfig::default(),
        Vec::new(),
        store.clone(),
        blobs,
    ))
}

/// The image `req` names, from the local store, as a stage state over its layers.
fn image_state(store: &Arc<Store>, req: &RunRequest) -> Result<(StageState, Image), RunError> {
    let layout = Layout::open(&req.store).map_err(|source| RunError::NoStore {
        image: req.image.clone(),
        source,
    })?;
    let image = layout
        .load_image(
            Some(&crate::images::normalize_name(&req.image)),
            Some(&req.platform),
        )
        .map_err(|source| RunError::Image {
            image: req.image.clone(),
            source,
        })?;
    let layers = StageLayer::all_of(&image).map_err(RunError::Layers)?;
    let state = StageState::new(
        CacheKey::root("run", ""),
        image.config.clone(),
        layers,
        store.clone(),
        layout,
    );
    Ok((state, image))
}

/// The process's own stdin, read on demand.
struct HostStdin;

impl kiln_shell::io::Stream for HostStdin {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::stdin().lock().read(buf)
    }
}

/// The process's stdout (`false`) or stderr (`true`).
struct HostOut(bool);

impl kiln_shell::io::Stream for HostOut {
    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0 {
            let mut e = std::io::stderr().lock();
            e.write_all(buf)?;
            e.flush()?;
        } else {
            let mut o = std::io::stdout().lock();
            o.write_all(buf)?;
            o.flush()?;
        }
        Ok(buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &[&str], env: &[(&str, &str)]) -> RunRequest {
        RunRequest {
            image: "app".into(),
            store: "/nowhere".into(),
            cache_dir: "/nowhere".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            workdir: None,
            binds: Vec::new(),
            network: false,
            platform: Platform::host_linux(),
            epoch: 0,
        }
    }

    fn config(env: &[&str], entrypoint: &[&str], cmd: &[&str], workdir: &str) -> Config {
        let strings = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        let mut c = Config::default();
        c.set_env(strings(env));
        c.set_entrypoint(strings(entrypoint));
        c.set_cmd(strings(cmd));
        c.set_working_dir(Some(workdir.into()));
        c
    }

    #[test]
    fn flags_override_the_image_config() {
        let c = config(&["PATH=/img", "A=1"], &["/bin/tool"], &["--x"], "/srv");
        let req = request(&[], &[("A", "2"), ("B", "3")]);
        let env = environment(&req, Some(&c));
        assert_eq!(
            env,
            [("PATH", "/img"), ("A", "2"), ("B", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(command(&req, Some(&c)).unwrap(), ["/bin/tool", "--x"]);
        assert_eq!(workdir(&req, Some(&c)), "/srv");
        let mut req = request(&["ls"], &[]);
        req.workdir = Some("/tmp".into());
        assert_eq!(command(&req, Some(&c)).unwrap(), ["ls"]);
        assert_eq!(workdir(&req, Some(&c)), "/tmp");
    }

    #[test]
    fn scratch_gets_docker_defaults() {
        let req = request(&[], &[]);
        assert_eq!(
            environment(&req, None),
            [("PATH".to_string(), kiln_shell::DEFAULT_PATH.to_string())]
        );
        assert_eq!(workdir(&req, None), "/");
        assert!(matches!(command(&req, None), Err(RunError::NoCommand)));
    }

    #[test]
    fn a_missing_bind_source_names_it() {
        let store = Store::temp().unwrap();
        let bind = Bind {
            source: "/surely/not/here".into(),
            target: "/mnt".into(),
            readwrite: false,
        };
        let err = host_binds(&[bind], &store).err().unwrap();
        assert!(
            err.to_string().starts_with("bind source /surely/not/here:"),
            "{err}"
        );
    }

    #[test]
    fn debug_hides_env_values() {
        let shown = format!("{:?}", request(&["env"], &[("TOKEN", "hunter2hunter2")]));
        assert!(shown.contains("TOKEN"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
