//! Real tools the interop tests drive: a check that a tool is installed (skipping
//! locally, failing in CI) and a private `docker-registry` on a loopback port.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `tool` is on PATH. Missing tools skip a test with a notice, except under CI,
/// where `.ci/run` installs them and a silent skip would hide a broken setup.
pub(crate) fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var_os("CI").is_some() {
        panic!("{tool} is required in CI (installed by .ci/run)");
    }
    if !found {
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// A `docker-registry` on a free loopback port, killed on drop. Docker and kiln both
/// speak plain HTTP to 127.0.0.1, so no TLS setup is needed.
pub(crate) struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`, the prefix of image names pushed here.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long a fresh registry gets to answer on its port (it starts in well under a
/// second; a stuck one fails the test instead of hanging it).
const REGISTRY_START: Duration = Duration::from_secs(5);

/// Starts a registry with its storage in a temp dir; `None` (with a notice) when
/// `docker-registry` is not installed outside CI.
pub(crate) fn start_registry() -> Option<Registry> {
    if !have("docker-registry") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Owned at once, so the process is killed and reaped on every path.
    let registry = Registry {
        child,
        addr,
        _dir: dir,
    };
    let start = std::time::Instant::now();
    while start.elapsed() < REGISTRY_START {
        if std::net::TcpStream::connect(&registry.addr).is_ok() {
            return Some(registry);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("docker-registry did not start on {}", registry.addr);
}
