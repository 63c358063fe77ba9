//! `dpkg-trigger [--no-await|--await] [--by-package=<pkg>] <trigger>`: queues an explicit
//! trigger in `/var/lib/dpkg/triggers/Unincorp` (`<trigger> <awaiting packages>|-` per
//! line, as dpkg writes it), which the running dpkg or apt-get takes in and processes at
//! its end ([`crate::triggers`]). `--check-supported` answers yes.

use std::fs;
use std::io::Write as _;

use crate::query::ADMIN_DIR;

const TOOL: &str = "dpkg-trigger";

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let mut admindir = std::env::var("DPKG_ADMINDIR").unwrap_or_else(|_| ADMIN_DIR.into());
    let mut by = std::env::var("DPKG_MAINTSCRIPT_PACKAGE").ok();
    let mut await_it = true;
    let mut no_act = false;
    let mut names = Vec::new();
    for arg in args {
        match arg.split_once('=') {
            Some(("--admindir", dir)) => admindir = dir.to_owned(),
            Some(("--by-package", pkg)) => by = Some(pkg.to_owned()),
            _ => match arg.as_str() {
                "--no-await" => await_it = false,
                "--await" => await_it = true,
                "--no-act" => no_act = true,
                "--check-supported" => return 0,
                a if a.starts_with("--") => return bad_usage(&format!("unknown option '{a}'")),
                _ => names.push(arg),
            },
        }
    }
    let [name] = names.as_slice() else {
        return bad_usage("takes one argument, the trigger name");
    };
    if let Some(msg) = illegal_name(name) {
        return bad_usage(&format!("invalid trigger name '{name}': {msg}"));
    }
    if no_act {
        return 0;
    }
    let awaiter = match (&by, await_it) {
        (Some(pkg), true) => pkg.clone(),
        _ => "-".to_owned(),
    };
    match queue(&format!("{admindir}/triggers/Unincorp"), name, &awaiter) {
        Ok(()) => 0,
        Err(msg) => {
            crate::util::warn(TOOL, format!("error: {msg}"));
            2
        }
    }
}

/// dpkg's rule for trigger names: printable ASCII without spaces.
fn illegal_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("empty trigger names are not permitted")
    } else if name.bytes().any(|b| !(b'!'..=b'~').contains(&b)) {
        Some("trigger name contains invalid character")
    } else {
        None
    }
}

/// Adds `awaiter` to `name`'s line of the queue (a new line if it has none).
fn queue(path: &str, name: &str, awaiter: &str) -> Result<(), String> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut found = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut words: Vec<&str> = line.split_whitespace().collect();
            if words.first() == Some(&name) {
                found = true;
                if !words.contains(&awaiter) {
                    words.push(awaiter);
                }
            }
            words.join(" ")
        })
        .collect();
    if !found {
        lines.push(format!("{name} {awaiter}"));
    }
    if let Some(dir) = path.rsplit_once('/').map(|(d, _)| d) {
        fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    }
    fs::write(path, lines.join("\n") + "\n").map_err(|e| format!("{path}: {e}"))
}

fn bad_usage(msg: &str) -> i32 {
    let _ = writeln!(
        std::io::stderr(),
        "{TOOL}: error: {msg}\n\nType dpkg-trigger --help for help about this utility."
    );
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_each_trigger_once_with_its_awaiters() {
        let dir = std::env::temp_dir().join(format!("kiln-dpkg-trigger-{}", std::process::id()));
        let path = format!("{}/triggers/Unincorp", dir.display());
        queue(&path, "ldconfig", "-").unwrap();
        queue(&path, "update-ca-certificates", "ca-certificates-java").unwrap();
        queue(&path, "ldconfig", "libfoo").unwrap();
        queue(&path, "ldconfig", "libfoo").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "ldconfig - libfoo\nupdate-ca-certificates ca-certificates-java\n"
        );
        let _ = fs::remove_dir_all(&dir);
        assert!(illegal_name("a b").is_some());
        assert!(illegal_name("").is_some());
        assert!(illegal_name("/usr/share/man").is_none());
        assert_eq!(main(TOOL, vec![]), 2);
    }
}
