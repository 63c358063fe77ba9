//! BuildKit as the bench's first peer: Debian's `docker.io` daemon (dockerd with its
//! embedded BuildKit) started privately for the run (its own socket, data and exec roots
//! in the scratch directory, vfs storage, no iptables or bridge: builds use the host
//! network) and stopped when the bench ends. The same setup as the differential test
//! (tests/differential/dockerd.rs), written again here because a bench must not depend
//! on test code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The docker.io client: a `docker` earlier on PATH may be a newer CLI that wants buildx.
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";
/// dockerd starts its own containerd first: a few seconds usually; bounded so a daemon
/// that cannot start is reported with its log instead of hanging the bench.
const START: Duration = Duration::from_secs(60);
/// How long dockerd gets to stop its containerd after SIGTERM before SIGKILL.
const STOP: Duration = Duration::from_secs(20);

/// A running private dockerd.
pub(crate) struct Dockerd {
    child: Child,
    dir: PathBuf,
}

impl Dockerd {
    /// Starts a daemon under `dir`, or says why this machine cannot.
    pub(crate) fn start(dir: &Path) -> Result<Dockerd> {
        if !Path::new(DOCKERD).is_file() || !Path::new(DOCKER).is_file() {
            bail!("Debian's docker.io is not installed (`apt-get install docker.io`)");
        }
        if !is_root() {
            bail!("dockerd needs root; run the bench as root for BuildKit figures");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("dockerd.log"))?;
        let p = |name: &str| dir.join(name);
        let child = Command::new(DOCKERD)
            .args(["--storage-driver=vfs", "--iptables=false", "--bridge=none"])
            .arg(format!("--host=unix://{}", p("docker.sock").display()))
            .arg(format!("--data-root={}", p("data").display()))
            .arg(format!("--exec-root={}", p("exec").display()))
            .arg(format!("--pidfile={}", p("dockerd.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting dockerd")?;
        let daemon = Dockerd {
            child,
            dir: dir.to_path_buf(),
        };
        daemon.wait_ready()?;
        Ok(daemon)
    }

    fn wait_ready(&self) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < START {
            let ok = self
                .command()
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        bail!(
            "dockerd did not answer within {START:?}; see {}",
            self.dir.join("dockerd.log").display()
        )
    }

    /// A docker client command for this daemon, with BuildKit on.
    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg(format!(
            "--host=unix://{}",
            self.dir.join("docker.sock").display()
        ))
        .env("DOCKER_BUILDKIT", "1");
        c
    }

    /// `docker version`'s server line, for the report.
    pub(crate) fn version(&self) -> Option<String> {
        let out = self
            .command()
            .args(["version", "--format", "dockerd {{.Server.Version}}"])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd and unmount; SIGKILL only if it hangs.
        terminate(&self.child);
        let start = Instant::now();
        while start.elapsed() < STOP {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

#[cfg(unix)]
fn terminate(child: &Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: `pid` is our own child, not yet reaped (Drop reaps it after this).
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// dockerd only runs on Linux; elsewhere `start` has already refused.
#[cfg(not(unix))]
fn terminate(_child: &Child) {}
