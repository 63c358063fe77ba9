//! BuildKit as the bench's first peer: Debian's `docker.io` daemon (dockerd with its
//! embedded BuildKit) started privately for the run (its own socket, data and exec roots
//! in the scratch directory, vfs storage, no iptables or bridge: builds use the host
//! network) and stopped when the bench ends. The same setup as the differential test
//! (tests/differential/dockerd.rs), written again here because a bench must not depend
//! on test code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
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

/// How often the daemon's process tree is sampled during a build. BuildKit's work
/// happens in dockerd and the processes under it, not in the timed client, so its
/// memory is read from /proc; a peak shorter than this can be missed, which only ever
/// flatters BuildKit.
const RSS_SAMPLE: Duration = Duration::from_millis(10);

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

    /// Starts sampling the summed RSS of dockerd and every process under it (its
    /// containerd, runc, and the processes of the step being built) until
    /// [`RssSampler::stop`].
    pub(crate) fn sample_rss(&self) -> RssSampler {
        let root = self.child.id();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(tree_rss_kib(root).unwrap_or(0));
                std::thread::sleep(RSS_SAMPLE);
            }
            peak
        });
        RssSampler { stop, thread }
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

/// A running sample of the daemon tree's memory.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    /// The highest summed RSS seen, in KiB (`None` where /proc is not there to read).
    pub(crate) fn stop(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().ok().filter(|&kib| kib > 0)
    }
}

/// The summed resident set of `root` and all its descendants, in KiB, from
/// `/proc/<pid>/stat` (field 4 is the parent, field 24 the RSS in pages).
fn tree_rss_kib(root: u32) -> Option<u64> {
    let page_kib = page_size()? / 1024;
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut rss: HashMap<u32, u64> = HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may exit between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name (field 2) may hold spaces and parentheses: fields are counted
        // from the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(pages)) = (
            fields.get(1).and_then(|f| f.parse::<u32>().ok()),
            fields.get(21).and_then(|f| f.parse::<u64>().ok()),
        ) else {
            continue;
        };
        children.entry(ppid).or_default().push(pid);
        rss.insert(pid, pages * page_kib);
    }
    let mut total = 0;
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        total += rss.get(&pid).copied().unwrap_or(0);
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    Some(total)
}

#[cfg(unix)]
fn page_size() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()
}

#[cfg(not(unix))]
fn page_size() -> Option<u64> {
    None
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
