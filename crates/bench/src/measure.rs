//! Running a command under the clock, with its peak memory where the OS tells us.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// One timed run of an external command.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Run {
    pub wall: Duration,
    /// Peak resident set size of the process (and the children it waited for), in KiB.
    pub max_rss_kib: Option<u64>,
}

/// Run `cmd` to completion with stdout and stderr appended to `log`; fail (quoting the
/// log's tail) when it exits non-zero, since a failed build's time means nothing.
pub(crate) fn run(cmd: &mut Command, log: &Path) -> Result<Run> {
    run_with(cmd, log, false)
}

/// Like [`run`] but stdout goes nowhere (for commands whose output is large and useless,
/// such as compressors writing to stdout).
pub(crate) fn run_discarding(cmd: &mut Command, log: &Path) -> Result<Run> {
    run_with(cmd, log, true)
}

fn run_with(cmd: &mut Command, log: &Path, discard_stdout: bool) -> Result<Run> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    let stdout = if discard_stdout {
        Stdio::null()
    } else {
        Stdio::from(out)
    };
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(err);
    let start = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let (status, max_rss_kib) = wait(child)?;
    let wall = start.elapsed();
    if !status.success() {
        bail!(
            "{:?} failed ({status}); last lines of {}:\n{}",
            cmd.get_program(),
            log.display(),
            tail(log, 15)
        );
    }
    Ok(Run { wall, max_rss_kib })
}

/// Wait with `wait4` so the kernel hands us the child's peak RSS (`ru_maxrss`, KiB on
/// Linux): polling `/proc/<pid>/status` could miss a short peak.
#[cfg(unix)]
fn wait(child: std::process::Child) -> Result<(ExitStatus, Option<u64>)> {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std never waited on it); the
        // pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waiting for child");
        }
    }
    let rss = u64::try_from(usage.ru_maxrss).ok();
    Ok((ExitStatus::from_raw(status), rss))
}

#[cfg(not(unix))]
fn wait(mut child: std::process::Child) -> Result<(ExitStatus, Option<u64>)> {
    Ok((child.wait().context("waiting for child")?, None))
}

fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Samples of one quantity; the summary favours the minimum because the machine is shared
/// and noise only ever adds time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Samples {
    pub runs: Vec<Run>,
}

impl Samples {
    pub(crate) fn push(&mut self, r: Run) {
        self.runs.push(r);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v: Vec<Duration> = self.runs.iter().map(|r| r.wall).collect();
        v.sort();
        v
    }

    pub(crate) fn min(&self) -> Option<Duration> {
        self.sorted().first().copied()
    }

    pub(crate) fn median(&self) -> Option<Duration> {
        let v = self.sorted();
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2),
        }
    }

    pub(crate) fn max_rss_kib(&self) -> Option<u64> {
        self.runs.iter().filter_map(|r| r.max_rss_kib).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: &[u64]) -> Samples {
        Samples {
            runs: ms
                .iter()
                .map(|&m| Run {
                    wall: Duration::from_millis(m),
                    max_rss_kib: Some(m),
                })
                .collect(),
        }
    }

    #[test]
    fn min_median_rss() {
        let x = s(&[30, 10, 20, 40]);
        assert_eq!(x.min(), Some(Duration::from_millis(10)));
        assert_eq!(x.median(), Some(Duration::from_millis(25)));
        assert_eq!(x.max_rss_kib(), Some(40));
        assert_eq!(s(&[5, 1, 3]).median(), Some(Duration::from_millis(3)));
        assert_eq!(Samples::default().min(), None);
    }
}
