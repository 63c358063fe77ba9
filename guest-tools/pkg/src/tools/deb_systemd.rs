//! `deb-systemd-helper` and `deb-systemd-invoke` (init-system-helpers), which debhelper's
//! maintainer script snippets call for packages that ship systemd units. Debian's are Perl
//! scripts, which cannot run in a kiln step (no Perl interpreter as WASI), so kiln serves
//! them.
//!
//! A kiln RUN step, like a container build, runs no systemd: `deb-systemd-invoke` never has
//! a service manager to start, stop or restart units with. It consults the local policy
//! layer as Debian's does (`/usr/sbin/policy-rc.d`, whose 101 it reports) and then has
//! nothing to do, so it exits 0. `deb-systemd-helper` is a no-op, as issue #15 decides:
//! it would record enablement state under /var/lib/systemd for a systemd that is not
//! running; its queries answer as Debian's does on a system where the helper never ran
//! (`was-enabled` yes so a first install enables, `debian-installed` and `is-enabled` no).

use std::io::Write as _;

/// deb-systemd-helper's actions; the queries among them answer with an exit status.
const HELPER_ACTIONS: &[&str] = &[
    "enable",
    "disable",
    "purge",
    "mask",
    "unmask",
    "is-enabled",
    "was-enabled",
    "debian-installed",
    "update-state",
    "reenable",
];

pub(crate) fn helper(_name: &str, args: Vec<String>) -> i32 {
    let rest: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !matches!(*a, "--quiet" | "--user" | "--system"))
        .collect();
    let (Some(action), [_, ..]) = (rest.first(), rest.get(1..).unwrap_or_default()) else {
        return helper_usage();
    };
    if !HELPER_ACTIONS.contains(action) {
        return helper_usage();
    }
    match *action {
        "is-enabled" | "debian-installed" => 1,
        _ => 0,
    }
}

fn helper_usage() -> i32 {
    let _ = writeln!(
        std::io::stderr(),
        "Syntax: deb-systemd-helper <action> <unit file> [<unit file> ...]"
    );
    1
}

pub(crate) fn invoke(_name: &str, args: Vec<String>) -> i32 {
    if args.len() < 2 {
        let _ = writeln!(
            std::io::stderr(),
            "Syntax: deb-systemd-invoke <action> <unit file> [<unit file> ...]"
        );
        return 1;
    }
    let rest: Vec<&String> = args
        .iter()
        .filter(|a| !matches!(a.as_str(), "--user" | "--system"))
        .collect();
    let Some((action, units)) = rest.split_first() else {
        return 0;
    };
    let root = std::env::var("DPKG_ROOT").unwrap_or_default();
    let policy = format!("{root}/usr/sbin/policy-rc.d");
    let runnable =
        kiln_abi::stat(&policy, true).is_ok_and(|s| s.is_file() && s.perm() & 0o111 != 0);
    if runnable {
        for unit in units {
            let argv = vec![policy.clone(), (*unit).clone(), (*action).clone()];
            let code = kiln_abi::run(&kiln_abi::Command::new(argv)).unwrap_or(0);
            match code {
                101 => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{policy} returned 101, not running '{}'",
                        args.join(" ")
                    );
                    return 0;
                }
                0 | 104 => {}
                other => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "deb-systemd-invoke only supports {policy} return codes 0, 101, and 104!\n\
                         Got return code {other}, ignoring."
                    );
                }
            }
        }
    }
    // No service manager runs in a build step: nothing to start or stop.
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn helper_answers_as_on_a_system_where_it_never_ran() {
        assert_eq!(
            helper("", args(&["--quiet", "was-enabled", "cron.service"])),
            0
        );
        assert_eq!(helper("", args(&["debian-installed", "cron.service"])), 1);
        assert_eq!(helper("", args(&["enable", "cron.service"])), 0);
        assert_eq!(helper("", args(&["enable"])), 1);
        assert_eq!(helper("", args(&["frobnicate", "x.service"])), 1);
        assert_eq!(invoke("", args(&["start"])), 1);
    }
}
