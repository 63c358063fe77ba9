//! A private Docker daemon (Debian's `docker.io`) for the BuildKit side: its own socket,
//! data and exec roots in a temp dir, no iptables or bridge (builds use the host
//! network), vfs storage (works on any filesystem). Stopped with SIGTERM on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The docker.io client; `docker` on PATH may be a newer CLI that wants buildx.
const DOCKER: &str = "/usr/bin/docker";
const DOCKERD: &str = "/usr/sbin/dockerd";

/// dockerd starts its own containerd first; a few seconds usually, bounded so a daemon
/// that cannot start fails the test with its log instead of hanging it.
const START: Duration = Duration::from_secs(60);
/// How long dockerd gets to shut its containerd down after SIGTERM before SIGKILL.
const STOP: Duration = Duration::from_secs(20);

pub(crate) struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Dockerd {
    /// Starts the daemon; panics with how to get one when this machine cannot.
    pub(crate) fn start() -> Self {
        assert!(
            Path::new(DOCKERD).exists() && Path::new(DOCKER).exists(),
            "the differential test needs Debian's docker.io (apt-get install docker.io)"
        );
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "dockerd must run as root");
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("dockerd.log")).unwrap();
        let p = |name: &str| dir.path().join(name);
        let child = Command::new(DOCKERD)
            .args(["--storage-driver=vfs", "--iptables=false", "--bridge=none"])
            .arg(format!("--host=unix://{}", p("docker.sock").display()))
            .arg(format!("--data-root={}", p("data").display()))
            .arg(format!("--exec-root={}", p("exec").display()))
            .arg(format!("--pidfile={}", p("dockerd.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Self { child, dir };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < START {
            if self.docker(&["version"]).status.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("dockerd did not answer within {START:?}:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A docker client command for this daemon, with BuildKit on.
    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg(format!("--host=unix://{}", self.socket().display()))
            .env("DOCKER_BUILDKIT", "1")
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn docker(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd and unmount; SIGKILL only if it hangs.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: `pid` is our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
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
