//! debconf's `frontend` program (Debian's `/usr/share/debconf/frontend`): run by a
//! maintainer script's confmodule as `frontend <script> <args>...`, it finds the package,
//! loads its templates, runs its `config` script first when the script is a postinst or
//! preinst (`config configure <version>`, as debconf's frontend does when the package was
//! not preconfigured), then the script itself, each as a coprocess with
//! `DEBIAN_HAS_FRONTEND=1`, and saves the database. Its exit status is the script's.

use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};

use super::Error;
use super::model::Db;
use super::server::{Reply, Session, Settings};

/// A protocol line is read whole before it is answered. The longest real one is a
/// SUBST or SET of a long list (ca-certificates' every-certificate list is 6 KiB);
/// 1 MiB is far past that and bounds what a script can make the frontend hold.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// The scripts whose templates and config debconf's frontend looks for beside them.
const MAINTAINER_SCRIPTS: &[&str] = &["preinst", "postinst", "prerm", "postrm"];

/// One run of the frontend.
pub struct Frontend {
    db: Db,
    settings: Settings,
    /// The package whose script runs (`''` when it cannot be told).
    package: String,
    title: String,
}

/// The package a script belongs to, as debconf's frontend finds it, and whether the
/// script runs for a trigger (then no title is set).
fn package_of(script: &str, action: Option<&str>, root: &Path) -> (Option<String>, bool) {
    if let Some(package) = std::env::var("DEBCONF_PACKAGE")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return (Some(package), false);
    }
    if let Some((_, name)) = script.rsplit_once('/') {
        let package = [".postinst", ".postrm", ".prerm"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix));
        if let Some(package) = package {
            return (Some(package.to_owned()), action == Some("triggered"));
        }
    }
    (package_being_unpacked(root), false)
}

/// A preinst runs from dpkg's unpack directory: the package is its control file's.
fn package_being_unpacked(root: &Path) -> Option<String> {
    let control = root.join("var/lib/dpkg/tmp.ci/control");
    let text = super::db::read_bounded(&control, super::templates::MAX_TEMPLATES_BYTES).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Package: "))
        .map(str::to_owned)
}

/// `<dir>/<pkg>.` (or `<dir>/`) when `script` is a maintainer script, with its kind.
fn script_base(script: &str) -> Option<(&str, &str)> {
    MAINTAINER_SCRIPTS.iter().find_map(|kind| {
        let base = script.strip_suffix(kind)?;
        base.ends_with(['.', '/']).then_some((base, *kind))
    })
}

impl Frontend {
    /// Loads the database of the system at `root` and works out the package of `script`.
    pub fn new(root: &Path, script: &str, action: Option<&str>) -> Result<Self, Error> {
        let mut db = Db::load(root)?;
        let settings = Settings::new(&db, |k| std::env::var(k).ok());
        let (package, no_title) = package_of(script, action, root);
        if package.is_none() {
            load_stray_templates(&mut db, script)?;
        }
        let mut frontend = Frontend {
            db,
            settings,
            package: String::new(),
            title: String::new(),
        };
        frontend.set_package(&package.unwrap_or_default(), !no_title);
        Ok(frontend)
    }

    /// A frontend for several packages in turn (dpkg-reconfigure's), with the settings
    /// `settings` makes from the loaded database.
    pub fn with_settings(
        root: &Path,
        settings: impl FnOnce(&Db) -> Settings,
    ) -> Result<Self, Error> {
        let db = Db::load(root)?;
        let settings = settings(&db);
        Ok(Frontend {
            db,
            settings,
            package: String::new(),
            title: String::new(),
        })
    }

    /// The package whose scripts run next (the owner of what they register), with the
    /// `Configuring <package>` title unless `titled` is false.
    pub fn set_package(&mut self, package: &str, titled: bool) {
        self.package = package.to_owned();
        self.title = if package.is_empty() || !titled {
            String::new()
        } else {
            format!("Configuring {package}")
        };
    }

    /// Loads a templates file for the current package.
    pub fn load_templates(&mut self, path: &Path) -> Result<(), Error> {
        self.db.load_templates_file(path, &self.package)
    }

    /// Writes the database.
    pub fn save(&mut self) -> Result<(), Error> {
        self.db.save()
    }

    /// Reads the database again (after a program that is no confmodule may have changed
    /// it).
    pub fn reload(&mut self, root: &Path) -> Result<(), Error> {
        self.db = Db::load(root)?;
        Ok(())
    }

    /// Runs `argv` (a confmodule and its arguments) with its config first, as debconf's
    /// frontend does; the exit status to leave with.
    pub fn run(&mut self, argv: &[String]) -> Result<i32, Error> {
        let Some(script) = argv.first() else {
            return Ok(0);
        };
        if let Some((base, kind)) = script_base(script) {
            let templates = PathBuf::from(format!("{base}templates"));
            if templates.exists() {
                self.db.load_templates_file(&templates, &self.package)?;
            }
            let config = format!("{base}config");
            if matches!(kind, "postinst" | "preinst") && Path::new(&config).exists() {
                let version = argv.get(2).cloned().unwrap_or_default();
                let status =
                    self.converse(vec![config, "configure".to_owned(), version], &[], None)?;
                if status > 0 {
                    // debconf leaves without saving what the failed config did.
                    return Ok(status);
                }
            }
        }
        let status = self.converse(argv.to_vec(), &[], None)?;
        self.db.save()?;
        Ok(status)
    }

    /// Runs one confmodule as a coprocess (with `extra` environment variables, in `cwd`
    /// when given) and answers it until it stops or ends; its exit status.
    pub fn converse(
        &mut self,
        argv: Vec<String>,
        extra: &[(String, String)],
        cwd: Option<&str>,
    ) -> Result<i32, Error> {
        let program = argv.first().cloned().unwrap_or_default();
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k != "DEBIAN_HAS_FRONTEND" && !extra.iter().any(|(e, _)| e == k))
            .collect();
        env.extend(extra.iter().cloned());
        env.push(("DEBIAN_HAS_FRONTEND".to_owned(), "1".to_owned()));
        let mut cmd = kiln_abi::Command::new(argv);
        cmd.env = Some(env);
        cmd.cwd = cwd.map(str::to_owned);
        let mut child = kiln_abi::spawn_coprocess(&cmd).map_err(|source| Error::Spawn {
            program: program.clone(),
            source,
        })?;
        let mut session = Session::new(
            &mut self.db,
            self.settings.clone(),
            &self.package,
            Box::new(std::io::stdout()),
        );
        session.set_title(&self.title);
        let mut reader = BufReader::new(std::mem::replace(
            &mut child.stdout,
            Box::new(std::io::empty()),
        ));
        let answered = answer(&mut session, &mut reader, &mut child.stdin, &program);
        session.finish();
        // The script may go on after STOP: it reads EOF on stdin, and what it still
        // writes is drained so it can never block on a full pipe.
        child.stdin = Box::new(std::io::sink());
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        let status = child.wait().map_err(|source| Error::Pipe {
            program: program.clone(),
            source,
        })?;
        // A script that closed its stdin before reading an answer is ended as debconf's
        // SIGPIPE handler ends it.
        Ok(if answered? { status } else { 128 })
    }
}

/// Answers command lines until STOP or EOF; `false` when an answer could not be written.
fn answer(
    session: &mut Session<'_>,
    reader: &mut impl BufRead,
    writer: &mut dyn std::io::Write,
    program: &str,
) -> Result<bool, Error> {
    while let Some(line) = read_line(reader, program)? {
        // debconf answers STOP only after the script has ended, when no one reads the
        // answer: nothing is sent, and the script's stdin is closed.
        let Reply::Line(text) = session.handle(&line) else {
            break;
        };
        let sent = writer
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| writer.flush());
        if sent.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One line without its newline; `None` at EOF.
fn read_line(reader: &mut impl BufRead, program: &str) -> Result<Option<String>, Error> {
    let mut buf = Vec::new();
    reader
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|source| Error::Pipe {
            program: program.to_owned(),
            source,
        })?;
    if buf.is_empty() {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        return Err(Error::LineTooLong {
            program: program.to_owned(),
            limit: MAX_LINE_BYTES,
        });
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// A confmodule that is not a maintainer script: its templates are looked for beside it
/// (`<script>.templates`, `<x>templates` for `<x>config`) and in debconf's own directory.
fn load_stray_templates(db: &mut Db, script: &str) -> Result<(), Error> {
    let name = script.rsplit('/').next().unwrap_or(script);
    let mut candidates = vec![format!("{script}.templates")];
    if let Some(base) = script.strip_suffix("config") {
        candidates.push(format!("{base}templates"));
    }
    candidates.push(format!("/usr/share/debconf/templates/{name}.templates"));
    match candidates.iter().map(Path::new).find(|p| p.exists()) {
        Some(path) => db.load_templates_file(path, ""),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintainer_scripts_name_their_package_and_templates() {
        let root = Path::new("/nonexistent");
        let (package, no_title) =
            package_of("/var/lib/dpkg/info/ca-certificates.postinst", None, root);
        assert_eq!(package.as_deref(), Some("ca-certificates"));
        assert!(!no_title);
        let (_, no_title) = package_of("/x/libc-bin.postinst", Some("triggered"), root);
        assert!(no_title, "a trigger run sets no title");
        assert_eq!(package_of("postinst", None, root).0, None);
        assert_eq!(
            script_base("/var/lib/dpkg/info/ca-certificates.postinst"),
            Some(("/var/lib/dpkg/info/ca-certificates.", "postinst"))
        );
        assert_eq!(
            script_base("/var/lib/dpkg/tmp.ci/preinst"),
            Some(("/var/lib/dpkg/tmp.ci/", "preinst"))
        );
        assert_eq!(script_base("/usr/bin/mypostinst"), None);
    }

    #[test]
    fn lines_are_read_whole_and_bounded() {
        let mut input = std::io::Cursor::new(b"GET a/b\nlast".to_vec());
        assert_eq!(
            read_line(&mut input, "s").unwrap().as_deref(),
            Some("GET a/b")
        );
        assert_eq!(read_line(&mut input, "s").unwrap().as_deref(), Some("last"));
        assert_eq!(read_line(&mut input, "s").unwrap(), None);
        let long = vec![b'x'; MAX_LINE_BYTES + 2];
        let err = read_line(&mut std::io::Cursor::new(long), "s").unwrap_err();
        assert!(matches!(err, Error::LineTooLong { .. }), "{err}");
    }
}
