//! Command resolution (brief decision 6): a WASI module on `PATH` in the image, else
//! kiln's bundled tool by basename (so `/bin/ls` of an Alpine base runs the bundled
//! `ls`), else a clear "native executable" error. Shell builtins come before this and are
//! the shell's business.

use crate::engine::Runtime;
use crate::vfs::{OpenOptions, Opened, Vfs};

/// `PATH` when the environment has none (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a command name resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// A WebAssembly module in the step filesystem (absolute path).
    Module(String),
    /// A bundled tool, by name.
    Bundled(String),
    /// A `#!` script: run `interpreter [arg] path args...`.
    Script {
        path: String,
        interpreter: String,
        arg: Option<String>,
    },
    NotFound,
    /// A native (ELF, Mach-O, ...) program with no bundled replacement.
    NotWasm {
        path: String,
    },
    /// A file named by its path that this process may not execute (no x bit that
    /// applies; root needs one too): `EACCES`, "Permission denied" to a shell.
    Denied {
        path: String,
    },
}

enum Kind {
    Wasm,
    Script {
        interpreter: String,
        arg: Option<String>,
    },
    Native,
}

fn bundled(name: &str) -> Option<Resolved> {
    crate::bundled::lookup(name).map(|t| Resolved::Bundled(t.name.to_owned()))
}

/// Native-interpreter scripts served by a bundled tool of another name, because their own
/// name is too generic to bundle a tool under: debconf's Perl `frontend`, which every
/// maintainer script using debconf execs.
const STAND_INS: &[(&str, &str)] = &[("/usr/share/debconf/frontend", "debconf-frontend")];

/// The bundled tool standing in for the native-interpreter script at `path`.
fn stand_in(path: &str, base: &str) -> Option<Resolved> {
    STAND_INS
        .iter()
        .find(|(script, _)| *script == path)
        .and_then(|(_, tool)| bundled(tool))
        .or_else(|| bundled(base))
}

fn absolute(cwd: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{}/{}", cwd.trim_end_matches('/'), path)
    }
}

/// Classifies a regular file by its first bytes, with whether this process may execute
/// it; `None` if it is not a regular file it can read.
fn classify(vfs: &Vfs, cwd: &str, path: &str) -> Option<(Kind, bool)> {
    let st = vfs.stat(cwd.as_bytes(), path.as_bytes(), true).ok()?;
    if st.file_type != kiln_fs::FileType::Regular {
        return None;
    }
    let exec = vfs.may_exec(&st);
    Some((read_kind(vfs, cwd, path)?, exec))
}

/// What the first bytes of the file `path` make it.
fn read_kind(vfs: &Vfs, cwd: &str, path: &str) -> Option<Kind> {
    let Ok(Opened::File(f)) = vfs.open(cwd.as_bytes(), path.as_bytes(), &OpenOptions::read_only())
    else {
        return None;
    };
    let mut head = [0u8; 256];
    let n = f.read(&mut head).ok()?;
    let head = &head[..n];
    if head.starts_with(b"\0asm") {
        return Some(Kind::Wasm);
    }
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut parts = line.trim().splitn(2, [' ', '\t']);
        let interpreter = parts.next().unwrap_or_default().to_owned();
        let arg = parts
            .next()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        if !interpreter.is_empty() {
            return Some(Kind::Script { interpreter, arg });
        }
    }
    Some(Kind::Native)
}

/// Whether `interpreter` is a native program kiln cannot run. Shells are not: kiln's own
/// shell interprets `#!/bin/sh` scripts whatever `/bin/sh` is in the image.
fn native_interpreter(vfs: &Vfs, cwd: &str, interpreter: &str) -> bool {
    let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
    if matches!(name, "sh" | "bash" | "dash" | "ash") {
        return false;
    }
    matches!(read_kind(vfs, cwd, interpreter), Some(Kind::Native))
}

impl Runtime {
    /// Resolves `name` as a RUN command would (after shell builtins).
    pub fn resolve_command(&self, vfs: &Vfs, name: &str, path_env: &str, cwd: &str) -> Resolved {
        if name.is_empty() {
            return Resolved::NotFound;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        let decide = |path: String, kind: Kind| match kind {
            Kind::Wasm => Resolved::Module(path),
            // A script for an interpreter that exists only as a native program (Debian's
            // deb-systemd-helper is Perl) cannot run either: a bundled tool of the same
            // name stands in for it as for a native program.
            Kind::Script { interpreter, arg } => match stand_in(&path, base) {
                Some(tool) if native_interpreter(vfs, cwd, &interpreter) => tool,
                _ => Resolved::Script {
                    path,
                    interpreter,
                    arg,
                },
            },
            Kind::Native => bundled(base).unwrap_or(Resolved::NotWasm { path }),
        };
        if name.contains('/') {
            let path = absolute(cwd, name);
            return match classify(vfs, cwd, &path) {
                Some((kind, true)) => decide(path, kind),
                Some((_, false)) => Resolved::Denied { path },
                None => bundled(base).unwrap_or(Resolved::NotFound),
            };
        }
        for dir in path_env.split(':') {
            let dir = if dir.is_empty() { "." } else { dir };
            let path = absolute(cwd, &format!("{}/{name}", dir.trim_end_matches('/')));
            if let Some((kind, true)) = classify(vfs, cwd, &path) {
                return decide(path, kind);
            }
        }
        bundled(name).unwrap_or(Resolved::NotFound)
    }
}
