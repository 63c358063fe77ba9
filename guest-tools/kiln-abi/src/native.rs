//! Host-OS implementations used when the tools are built natively for unit tests.

use std::io;

use crate::{Stat, Stdio, Time};

#[cfg(unix)]
pub fn stat(path: &str, follow: bool) -> io::Result<Stat> {
    use std::os::unix::fs::MetadataExt;
    let m = if follow {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    let t = |sec: i64, nsec: i64| Time {
        sec,
        nsec: nsec.clamp(0, 999_999_999) as u32,
    };
    Ok(Stat {
        dev: m.dev(),
        ino: m.ino(),
        mode: m.mode(),
        nlink: m.nlink(),
        uid: m.uid(),
        gid: m.gid(),
        rdev: m.rdev(),
        size: m.size(),
        atime: t(m.atime(), m.atime_nsec()),
        mtime: t(m.mtime(), m.mtime_nsec()),
        ctime: t(m.ctime(), m.ctime_nsec()),
    })
}

#[cfg(unix)]
pub fn chmod(path: &str, mode: u32, follow: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if !follow && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        // Linux cannot change a symlink's mode; it is always 0777 there.
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(unix)]
pub fn chown(path: &str, uid: Option<u32>, gid: Option<u32>, follow: bool) -> io::Result<()> {
    if follow {
        std::os::unix::fs::chown(path, uid, gid)
    } else {
        std::os::unix::fs::lchown(path, uid, gid)
    }
}

#[cfg(unix)]
pub fn identity() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    // Without libc: a file we just created is owned by our effective ids.
    let probe = std::env::temp_dir().join(format!(".kiln-abi-id-{}", std::process::id()));
    let ids = std::fs::File::create(&probe)
        .and_then(|f| f.metadata())
        .map(|m| (m.uid(), m.gid()))
        .unwrap_or((0, 0));
    let _ = std::fs::remove_file(probe);
    ids
}

/// The supplementary groups from `/proc/self/status` (Linux), else the primary group.
pub fn groups() -> Vec<u32> {
    let listed = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find_map(|l| l.strip_prefix("Groups:"))?;
            Some(
                line.split_whitespace()
                    .filter_map(|g| g.parse().ok())
                    .collect::<Vec<u32>>(),
            )
        });
    listed.unwrap_or_else(|| vec![identity().1])
}

#[cfg(not(unix))]
pub fn stat(_path: &str, _follow: bool) -> io::Result<Stat> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(not(unix))]
pub fn chmod(_path: &str, _mode: u32, _follow: bool) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(not(unix))]
pub fn chown(_path: &str, _uid: Option<u32>, _gid: Option<u32>, _follow: bool) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// The mask from `/proc/self/status` (Linux); 022 where the OS does not say.
pub fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let v = s.lines().find_map(|l| l.strip_prefix("Umask:"))?;
            u32::from_str_radix(v.trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

#[cfg(not(unix))]
pub fn identity() -> (u32, u32) {
    (0, 0)
}

/// `argv` as a host command with exactly `env`, in `cwd`.
fn command(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    stdin: Stdio,
) -> io::Result<std::process::Command> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().cloned())
        .current_dir(cwd);
    if stdin == Stdio::Null {
        cmd.stdin(std::process::Stdio::null());
    }
    Ok(cmd)
}

pub fn run(argv: &[String], env: &[(String, String)], cwd: &str, stdin: Stdio) -> io::Result<i32> {
    match command(argv, env, cwd, stdin)?.status() {
        Ok(status) => Ok(status.code().unwrap_or(128)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("{}: command not found", argv[0]);
            Ok(127)
        }
        Err(e) => Err(e),
    }
}

pub type Child = std::process::Child;

pub fn spawn_piped(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    stdin: Stdio,
) -> io::Result<(Box<dyn io::Read>, Child)> {
    let mut child = command(argv, env, cwd, stdin)?
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
    Ok((Box::new(stdout), child))
}

/// A coprocess's stdin (written by the caller), its stdout (read) and the child.
pub type CoprocessEnds = (Box<dyn io::Write>, Box<dyn io::Read>, Child);

pub fn spawn_coprocess(
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> io::Result<CoprocessEnds> {
    let mut child = command(argv, env, cwd, Stdio::Inherit)?
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().ok_or(io::ErrorKind::BrokenPipe)?;
    let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
    Ok((Box::new(stdin), Box::new(stdout), child))
}

pub fn wait(mut child: Child) -> io::Result<i32> {
    Ok(child.wait()?.code().unwrap_or(128))
}

/// Native builds have no host to ask; curl's logic is tested through its own transport
/// abstraction instead.
pub struct Body;

impl io::Read for Body {
    fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

pub fn http_request(
    _req: &crate::http::Request,
) -> Result<crate::http::Response, crate::http::HttpError> {
    Err(crate::http::HttpError::NetworkDisabled(
        "HTTP needs the kiln host".into(),
    ))
}
