//! Maintainer scripts, run as dpkg 1.21 runs them: the script's path (in
//! `/var/lib/dpkg/info` or the unpacked control directory) as `argv[0]`, the arguments
//! the dpkg manual gives for each call (`configure <old-version>`, `install`, `remove`,
//! ...), `/` as the working directory, and dpkg's environment. The script is started
//! through the embedder like any command, so its `#!` line decides what runs it: kiln's
//! own shell for `#!/bin/sh` and `#!/bin/bash`, a WASI module, or, for a native-only
//! interpreter or program, the shell's "cannot execute native binary" error naming it,
//! which fails the script and so the package, as a failing script does under dpkg.

use kiln_abi::{Command, Stdio};
use kiln_deb::ops::{MaintScript, ScriptRunner};

use crate::query::{ADMIN_DIR, Db};

/// The dpkg whose behaviour kiln-pkg reproduces (Debian bookworm's), as scripts see it in
/// `DPKG_RUNNING_VERSION` and `dpkg --version` prints it.
pub const DPKG_VERSION: &str = "1.21.22";

/// Runs maintainer scripts in the step's filesystem, whose root is the package root.
#[derive(Debug, Clone)]
pub struct Runner {
    /// `DPKG_FRONTEND_LOCKED`: apt holds the frontend lock and runs dpkg's work (scripts
    /// such as debconf's check it to know a frontend is driving them).
    pub frontend_locked: bool,
}

impl Runner {
    /// A runner for dpkg itself (`frontend_locked: false`) or for apt (`true`).
    pub fn new(frontend_locked: bool) -> Runner {
        Runner { frontend_locked }
    }

    /// The environment dpkg gives a maintainer script: the caller's, plus dpkg's own
    /// variables (set by dpkg at startup: admin dir, root) and the per-script ones.
    pub fn environment(&self, script: &MaintScript<'_>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| !k.starts_with("DPKG_MAINTSCRIPT_") && k != "DPKG_FRONTEND_LOCKED")
            .collect();
        let refcount = installed_instances(script.package).to_string();
        let mut set = |k: &str, v: &str| {
            env.retain(|(key, _)| key != k);
            env.push((k.to_owned(), v.to_owned()));
        };
        set("DPKG_ADMINDIR", ADMIN_DIR);
        set("DPKG_ROOT", "");
        set("DPKG_RUNNING_VERSION", DPKG_VERSION);
        set("DPKG_MAINTSCRIPT_PACKAGE", script.package);
        set("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", &refcount);
        set("DPKG_MAINTSCRIPT_ARCH", script.arch);
        set("DPKG_MAINTSCRIPT_NAME", script.name);
        set("DPKG_MAINTSCRIPT_DEBUG", "0");
        if self.frontend_locked {
            set("DPKG_FRONTEND_LOCKED", "1");
        }
        env
    }
}

/// `DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT`: how many architectures of the package are
/// installed (more than one only for Multi-Arch: same), at least the one being handled.
fn installed_instances(package: &str) -> usize {
    let Ok(db) = Db::load(ADMIN_DIR) else {
        return 1;
    };
    let count = db
        .find(package)
        .filter(|p| !matches!(p.state(), "not-installed" | "config-files"))
        .count();
    count.max(1)
}

impl ScriptRunner for Runner {
    fn run(&mut self, script: &MaintScript<'_>) -> kiln_deb::Result<i32> {
        let mut argv = vec![script.path.to_owned()];
        argv.extend(script.args.iter().map(|a| (*a).to_owned()));
        let cmd = Command {
            argv,
            env: Some(self.environment(script)),
            cwd: Some("/".to_owned()),
            stdin: Stdio::Inherit,
        };
        kiln_abi::run(&cmd).map_err(|e| kiln_deb::Error::io(script.path, e))
    }
}

/// dpkg's reason line for a failed operation: a maintainer script's failure in dpkg's
/// words (`installed jq package post-installation script subprocess returned error exit
/// status 1`), anything else as kiln-deb words it.
pub fn describe(err: &kiln_deb::Error) -> String {
    let kiln_deb::Error::Script {
        package,
        script,
        status,
    } = err
    else {
        return err.to_string();
    };
    let (when, what) = match script.as_str() {
        "preinst" => ("new", "pre-installation"),
        "postinst" => ("installed", "post-installation"),
        "prerm" => ("installed", "pre-removal"),
        "postrm" => ("installed", "post-removal"),
        other => ("installed", other),
    };
    format!("{when} {package} package {what} script subprocess returned error exit status {status}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn script_failures_in_dpkgs_words() {
        let err = kiln_deb::Error::Script {
            package: "jq".into(),
            script: "postinst".into(),
            status: 1,
        };
        assert_eq!(
            describe(&err),
            "installed jq package post-installation script subprocess returned error exit status 1"
        );
    }

    #[test]
    fn scripts_get_dpkgs_environment() {
        let script = MaintScript {
            package: "less",
            arch: "arm64",
            name: "postinst",
            path: "/var/lib/dpkg/info/less.postinst",
            args: &["configure", ""],
        };
        let env = Runner::new(true).environment(&script);
        for (k, v) in [
            ("DPKG_MAINTSCRIPT_PACKAGE", "less"),
            ("DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT", "1"),
            ("DPKG_MAINTSCRIPT_ARCH", "arm64"),
            ("DPKG_MAINTSCRIPT_NAME", "postinst"),
            ("DPKG_MAINTSCRIPT_DEBUG", "0"),
            ("DPKG_RUNNING_VERSION", DPKG_VERSION),
            ("DPKG_ADMINDIR", "/var/lib/dpkg"),
            ("DPKG_ROOT", ""),
            ("DPKG_FRONTEND_LOCKED", "1"),
        ] {
            assert_eq!(get(&env, k), Some(v), "{k}");
        }
        let plain = Runner::new(false).environment(&script);
        assert_eq!(get(&plain, "DPKG_FRONTEND_LOCKED"), None);
        assert_eq!(plain.iter().filter(|(k, _)| k == "DPKG_ROOT").count(), 1);
    }
}
