//! A test host over a real temporary directory running native host commands. It only
//! exists to exercise the interpreter without the wasm runtime; paths in command
//! arguments are not translated, so corpus scripts use relative paths.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use kiln_shell::io::{Endpoint, Stream};
use kiln_shell::{FileKind, FileStat, Host, OpenMode, Program, Resolved, Spawn};

pub(crate) struct NativeHost {
    pub root: PathBuf,
}

struct NativeFile(parking_lot::Mutex<std::fs::File>);
impl Stream for NativeFile {
    fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.lock().read(buf)
    }
    fn write(&self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().write(buf)
    }
}

impl NativeHost {
    fn real(&self, p: &str) -> PathBuf {
        self.root.join(p.trim_start_matches('/'))
    }
}

impl Host for NativeHost {
    fn open(&self, path: &str, m: OpenMode, umask: u32) -> std::io::Result<Endpoint> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = std::fs::OpenOptions::new();
        o.mode(0o666 & !umask);
        o.read(m.read)
            .write(m.write)
            .append(m.append)
            .truncate(m.truncate);
        if m.exclusive {
            o.create_new(true);
        } else {
            o.create(m.create);
        }
        let real = self.real(path);
        if real.is_dir() {
            return Err(std::io::ErrorKind::IsADirectory.into());
        }
        Ok(Arc::new(NativeFile(parking_lot::Mutex::new(o.open(real)?))))
    }

    fn stat(&self, path: &str, follow: bool) -> std::io::Result<FileStat> {
        use std::os::unix::fs::MetadataExt;
        let real = self.real(path);
        let md = if follow {
            std::fs::metadata(&real)?
        } else {
            std::fs::symlink_metadata(&real)?
        };
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::File
        };
        Ok(FileStat {
            kind,
            mode: md.mode() & 0o7777,
            size: md.len(),
            mtime: md.mtime(),
            ino: md.ino(),
        })
    }

    fn read_dir(&self, path: &str) -> std::io::Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(self.real(path))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        Ok(v)
    }

    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.real(path))
    }

    fn resolve(&self, name: &str, _path_var: &str, cwd: &str) -> Resolved {
        let real = if name.contains('/') {
            let abs = if name.starts_with('/') {
                name.to_string()
            } else {
                format!("{cwd}/{name}")
            };
            self.real(&abs)
        } else {
            match ["/usr/bin", "/bin"]
                .iter()
                .map(|d| PathBuf::from(d).join(name))
                .find(|p| p.exists())
            {
                Some(p) => p,
                None => return Resolved::NotFound,
            }
        };
        if !real.is_file() {
            return Resolved::NotFound;
        }
        if let Ok(text) = std::fs::read(&real)
            && text.starts_with(b"#!")
        {
            let line = String::from_utf8_lossy(&text[2..])
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let mut parts = line.splitn(2, ' ');
            let interpreter = parts.next().unwrap_or("").to_string();
            return Resolved::Script {
                path: name.to_string(),
                interpreter,
                arg: parts.next().map(str::to_string),
            };
        }
        Resolved::Program(Program {
            path: real.to_string_lossy().into_owned(),
            handle: Arc::new(real),
        })
    }

    fn spawn(&self, s: Spawn<'_>) -> std::io::Result<i32> {
        let Some(real) = s.program.handle.downcast_ref::<PathBuf>() else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        if real.starts_with(&self.root) && !is_executable(real) {
            return Err(std::io::ErrorKind::PermissionDenied.into());
        }
        let mut cmd = Command::new(real);
        cmd.args(&s.argv[1..])
            .env_clear()
            .envs(s.env.iter().cloned())
            .current_dir(self.real(s.cwd));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let [sin, sout, serr] = s.stdio;
        if let Some(mut ci) = child.stdin.take() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    match sin.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if ci.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let pump = |mut r: Box<dyn Read + Send>, ep: Endpoint| {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 || kiln_shell::io::write_all(&ep, &buf[..n]).is_err() {
                        break;
                    }
                }
            })
        };
        let t1 = child.stdout.take().map(|o| pump(Box::new(o), sout));
        let t2 = child.stderr.take().map(|o| pump(Box::new(o), serr));
        let st = child.wait()?;
        for t in [t1, t2].into_iter().flatten() {
            let _ = t.join();
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
    }
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}
