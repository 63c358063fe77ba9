//! `kiln run`: a command in an image's filesystem, with the same runtime, shell and
//! bundled tools as a RUN step (like `docker run --rm`). Changes are discarded.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use kiln_fs::{Store, Timestamp, Tree};
use kiln_oci::{Image, Layout, Platform};
use kiln_runtime::{MountTable, NetworkPolicy, Vfs};
use kiln_shell::{Shell, ShellOptions};

use crate::cache::CacheKey;
use crate::error::BuildError;
use crate::state::{StageLayer, StageState};

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

fn err(what: &str) -> impl FnOnce(String) -> BuildError + '_ {
    move |why| BuildError::Input {
        what: what.to_owned(),
        why,
    }
}

/// Runs the command; returns its exit status (stdio passes through).
pub fn run(req: RunRequest) -> Result<i32, BuildError> {
    // Held shared for the whole run, as builds hold it: the file store's temp files are
    // live, so a build starting now must not sweep them (nor `kiln prune` remove them).
    let _cache_lock = crate::cache::Cache::open(&req.cache_dir)?;
    let store = Store::open(crate::places::CacheLayout::new(&req.cache_dir).files())
        .map_err(|e| err("file store")(e.to_string()))?;
    let (state, config) = if req.image == "scratch" {
        (empty_state(&store, &req)?, None)
    } else {
        let layout = Layout::open(&req.store).map_err(|e| {
            err(&format!("image {}", req.image))(format!("{e} (is it built? see `kiln images`)"))
        })?;
        let image = layout
            .load_image(
                Some(&crate::images::normalize_name(&req.image)),
                Some(&req.platform),
            )
            .map_err(|e| err(&format!("image {}", req.image))(e.to_string()))?;
        let config = image.config.container();
        (image_state(&store, &layout, &image)?, Some(config))
    };
    let mut state = state;
    let snapshot = state
        .snapshot()
        .map_err(|e| err("materialising the image")(e.to_string()))?;
    let mut tree = Tree::from_snapshot(&snapshot);
    tree.set_clock(Timestamp::from_secs(req.epoch));

    let mut env: Vec<(String, String)> = config
        .as_ref()
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
    if !env.iter().any(|(k, _)| k == "HOME") {
        let home = crate::passwd::home_of(&mut tree, 0)
            .map_err(|e| err("HOME")(e.to_string()))?
            .unwrap_or_else(|| "/root".into());
        env.push(("HOME".into(), home));
    }
    let cwd = req
        .workdir
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let argv = if req.command.is_empty() {
        let c = config.as_ref();
        let mut v = c.and_then(|c| c.entrypoint().clone()).unwrap_or_default();
        v.extend(c.and_then(|c| c.cmd().clone()).unwrap_or_default());
        v
    } else {
        req.command.clone()
    };
    if argv.is_empty() {
        return Err(err("kiln run")(
            "no command given and the image has no CMD or ENTRYPOINT".into(),
        ));
    }

    let mut table = MountTable::new();
    for b in &req.binds {
        let dir = cap_std::fs::Dir::open_ambient_dir(&b.source, cap_std::ambient_authority())
            .map_err(|e| err(&format!("bind source {}", b.source.display()))(e.to_string()))?;
        let added = if b.readwrite {
            table.add_bind_rw(&b.target, &dir, &store)
        } else {
            table.add_bind(&b.target, dir)
        };
        added.map_err(|e| err("bind mount")(e.to_string()))?;
    }
    let runtime = kiln_runtime::Runtime::new(kiln_runtime::RuntimeConfig {
        cache_dir: Some(crate::places::CacheLayout::new(&req.cache_dir).modules()),
        realtime_epoch: req.epoch,
    })
    .map_err(|e| err("starting the wasm runtime")(e.to_string()))?;
    let vfs = Vfs::new(Arc::new(parking_lot::Mutex::new(tree)), table);
    let network = NetworkPolicy {
        enabled: req.network,
        allowed_hosts: Vec::new(),
    };
    let mut shell = Shell::on_runtime(
        runtime,
        vfs,
        kiln_runtime::Limits::default(),
        network,
        ShellOptions {
            env,
            cwd,
            stdin: Arc::new(HostStdin),
            stdout: Arc::new(HostOut(false)),
            stderr: Arc::new(HostOut(true)),
            ..ShellOptions::default()
        },
    );
    let status = shell
        .run_argv(&argv)
        .map_err(|e| err("kiln run")(e.to_string()))?;
    Ok(status.0)
}

fn empty_state(store: &Arc<Store>, req: &RunRequest) -> Result<StageState, BuildError> {
    let blobs = Layout::open_or_create(crate::places::CacheLayout::new(&req.cache_dir).blobs())
        .map_err(|e| err("cache")(e.to_string()))?;
    Ok(StageState::new(
        CacheKey::root("scratch", ""),
        kiln_oci::ImageConfig::default(),
        Vec::new(),
        store.clone(),
        blobs,
    ))
}

fn image_state(
    store: &Arc<Store>,
    layout: &Layout,
    image: &Image,
) -> Result<StageState, BuildError> {
    let layers = StageLayer::all_of(image).map_err(|e| err("image layers")(e.to_string()))?;
    Ok(StageState::new(
        CacheKey::root("run", ""),
        image.config.clone(),
        layers,
        store.clone(),
        layout.clone(),
    ))
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
