//! The builders, each with its own state directories so nothing global is touched.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::base::TAG;
use crate::buildkit::Dockerd;
use crate::measure::{self, Run};

/// The name kiln's Dockerfiles give the base image (see [`Env::kiln_from`]).
const KILN_BASE: &str = "kiln-bench-base";

/// What every scenario shares: the binaries, the base image and the module cache.
pub(crate) struct Env {
    pub kiln: PathBuf,
    /// `None` when buildah is not installed: the bench then runs kiln alone.
    pub buildah: Option<PathBuf>,
    /// The private dockerd whose BuildKit is the first peer, or why there is none.
    pub buildkit: Result<Dockerd, String>,
    pub base: PathBuf,
    pub module_cache: PathBuf,
}

impl Env {
    /// The base image as kiln's Dockerfiles name it: a named context that
    /// [`Sandbox::kiln`] points at the layout (a Dockerfile cannot name a host directory).
    pub(crate) fn kiln_from(&self) -> String {
        KILN_BASE.to_owned()
    }

    /// `--build-context` value giving [`KILN_BASE`] the base layout.
    fn kiln_base_context(&self) -> String {
        format!("{KILN_BASE}=oci-layout://{}:{TAG}", self.base.display())
    }

    /// Why BuildKit has no figures, when it has none.
    pub(crate) fn buildkit_missing(&self) -> Option<&str> {
        self.buildkit.as_ref().err().map(String::as_str)
    }

    /// The base image as buildah names it.
    pub(crate) fn buildah_from(&self) -> String {
        format!("oci:{}:{TAG}", self.base.display())
    }
}

/// A scenario's private directory: kiln's cache and store, buildah's storage, logs.
pub(crate) struct Sandbox {
    pub dir: PathBuf,
}

impl Sandbox {
    pub(crate) fn new(parent: &Path, name: &str) -> Result<Sandbox> {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Sandbox { dir })
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Write a file into the sandbox and return its path.
    pub(crate) fn write(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.path(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }

    /// `kiln <args>` with this sandbox's cache and store and the shared module cache.
    pub(crate) fn kiln<I, S>(&self, env: &Env, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<S> = args.into_iter().collect();
        let mut c = Command::new(&env.kiln);
        c.env("KILN_CACHE", self.path("kiln-cache"))
            .env("KILN_STORE", self.path("kiln-store"))
            .env("KILN_MODULE_CACHE", &env.module_cache);
        match args.split_first() {
            Some((first, rest)) if first.as_ref() == "build" => {
                c.arg(first)
                    .args(["--build-context", &env.kiln_base_context()])
                    .args(rest);
            }
            _ => {
                c.args(&args);
            }
        }
        c
    }

    /// `buildah --root .. --runroot .. --storage-driver vfs <args>`.
    pub(crate) fn buildah<I, S>(&self, env: &Env, args: I) -> Option<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let bin = env.buildah.as_ref()?;
        let mut c = Command::new(bin);
        c.arg("--root")
            .arg(self.path("buildah-root"))
            .arg("--runroot")
            .arg(self.path("buildah-runroot"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        Some(c)
    }

    /// `docker build --network=host --progress=plain <args>` on the private daemon (host
    /// network, as kiln's steps have it, and the bench's loopback server needs).
    pub(crate) fn buildkit_build(&self, env: &Env, args: &[&str]) -> Result<Run> {
        let daemon = env.buildkit.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut c = daemon.command();
        c.args(["build", "--network=host", "--progress=plain"])
            .args(args);
        // The client's peak RSS says nothing about the daemon, which does the work: its
        // process tree is sampled instead.
        let sampler = daemon.sample_rss();
        let run = measure::run(&mut c, &self.path("buildkit.log"));
        let peak = sampler.stop();
        Ok(Run {
            wall: run?.wall,
            max_rss_kib: peak,
        })
    }

    /// Drop the image tagged `tag` and BuildKit's build cache between repetitions
    /// (untimed), so vfs storage does not grow by a full copy per run.
    pub(crate) fn buildkit_cleanup(&self, env: &Env, tag: &str) -> Result<()> {
        let daemon = env.buildkit.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
        for args in [
            &["rmi", "--force", tag][..],
            &["builder", "prune", "--all", "--force"],
        ] {
            measure::run(daemon.command().args(args), &self.path("buildkit.log"))?;
        }
        Ok(())
    }

    /// Puts the image kiln's Dockerfiles call `from` into dockerd's store under that name,
    /// exported by kiln itself as a docker archive (`extra`: more `kiln build` flags, such
    /// as the `--build-context` that names it).
    pub(crate) fn load_into_dockerd(
        &self,
        env: &Env,
        daemon: &Dockerd,
        from: &str,
        extra: &[&str],
    ) -> Result<()> {
        let ctx = self.path("export-ctx");
        std::fs::create_dir_all(&ctx)?;
        let df = self.write("export.Dockerfile", &format!("FROM {from}\n"))?;
        let tar = self.path("export.tar");
        let name = format!("{from}:{TAG}");
        let dest = format!("type=docker,dest={}", tar.display());
        let utf8 = |p: &Path| p.to_str().map(str::to_owned).context("non-UTF-8 path");
        let (df, ctx) = (utf8(&df)?, utf8(&ctx)?);
        let mut args = vec!["build"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["-f", &df, "-t", &name, "-o", &dest, &ctx]);
        self.run_kiln(&mut self.kiln(env, args))
            .with_context(|| format!("exporting {from} for dockerd"))?;
        let mut load = daemon.command();
        load.arg("load").arg("-i").arg(&tar);
        measure::run(&mut load, &self.path("docker-load.log"))
            .with_context(|| format!("docker load of {from}"))?;
        std::fs::remove_file(&tar)?;
        Ok(())
    }

    pub(crate) fn run_kiln(&self, cmd: &mut Command) -> Result<Run> {
        measure::run(cmd, &self.path("kiln.log"))
    }

    pub(crate) fn run_buildah(&self, cmd: &mut Command) -> Result<Run> {
        measure::run(cmd, &self.path("buildah.log"))
    }

    /// Drop buildah's containers and the image tagged `tag` between repetitions
    /// (untimed) so its vfs storage does not grow by a full copy per run; the pulled base
    /// stays, as kiln's imported base does.
    pub(crate) fn buildah_cleanup(&self, env: &Env, tag: &str) -> Result<()> {
        let steps: [&[&str]; 3] = [
            &["rm", "--all"],
            &["rmi", "--force", tag],
            &["rmi", "--prune"],
        ];
        for args in steps {
            if let Some(mut c) = self.buildah(env, args) {
                self.run_buildah(&mut c)?;
            }
        }
        Ok(())
    }
}

/// Where `name` is on `PATH`, if anywhere.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}
