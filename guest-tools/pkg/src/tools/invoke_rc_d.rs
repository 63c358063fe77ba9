//! `invoke-rc.d [options] <basename> <action> [params]`: how maintainer scripts start,
//! stop and restart services (init-system-helpers' interface, its exit codes 100-106).
//!
//! Images normally carry Debian's own invoke-rc.d (a `/bin/sh` script kiln's shell runs);
//! this one serves images that lack it. A kiln RUN step has no init system: nothing runs
//! as PID 1 to supervise a service and no process outlives the step, exactly the case of
//! Debian's script in a container without init, where it answers "No init system and
//! policy-rc.d missing! Defaulting to block." and exits 0 so the postinst that asked to
//! start a daemon still succeeds. Debian decides "no init" by the absence of /sbin/init;
//! here no init runs whether or not the file exists, so without a policy the action is
//! always blocked. A local policy (`/usr/sbin/policy-rc.d`, the Debian policy layer that
//! Dockerfiles often write as `exit 101`) is consulted first and obeyed: when it allows
//! the action, or with `--force`, the init script runs as Debian runs it.

use std::io::Write;

use crate::util;

const TOOL: &str = "invoke-rc.d";

/// The init script directory Debian's invoke-rc.d uses.
const INITD: &str = "/etc/init.d/";

/// Exit codes of invoke-rc.d(8).
const OK_RUN: i32 = 104;
const DENIED: i32 = 101;
const SUBSYSTEM_ERROR: i32 = 102;
const SYNTAX_ERROR: i32 = 103;
/// policy-rc.d's "behaviour undefined": invoke-rc.d treats it as allowed.
const UNDEFINED: i32 = 105;
/// policy-rc.d asks for fallback actions (printed on its stdout); kiln cannot read them
/// back through a plain spawn, so it behaves as with `--no-fallback`.
const FALLBACK: i32 = 106;

#[derive(Default)]
struct Opts {
    quiet: bool,
    force: bool,
    disclose_deny: bool,
    query: bool,
    id: String,
    action: String,
    params: Vec<String>,
}

pub(crate) fn main(_name: &str, args: Vec<String>) -> i32 {
    let opts = match parse(args) {
        Ok(Some(opts)) => opts,
        Ok(None) => return usage(),
        Err(msg) => {
            say(false, &format!("syntax error: {msg}"));
            return SYNTAX_ERROR;
        }
    };
    let script = format!("{INITD}{}", opts.id);
    let runnable = is_executable(&script);
    if !runnable {
        say(
            opts.quiet,
            &format!("unknown initscript, {script} not found."),
        );
    }
    // Debian's script asks /sbin/runlevel, which no kiln step has a meaning for.
    say(opts.quiet, "could not determine current runlevel");
    // As Debian: the policy layer is only asked about a script that could run.
    let rc = if runnable { policy(&opts) } else { DENIED };
    if opts.query {
        return rc;
    }
    if opts.force || rc == OK_RUN {
        return if runnable {
            run_initscript(&opts, script)
        } else {
            SUBSYSTEM_ERROR
        };
    }
    if rc == DENIED && !opts.disclose_deny {
        if opts.action == "status" {
            say(
                opts.quiet,
                "emulating initscript action \"status\", returning \"unknown\"",
            );
            return 4;
        }
        return 0;
    }
    say(
        opts.quiet,
        &format!("initscript action \"{}\" not executed.", opts.action),
    );
    rc
}

fn is_executable(path: &str) -> bool {
    kiln_abi::stat(path, true).is_ok_and(|st| st.is_file() && st.perm() & 0o111 != 0)
}

/// `Ok(None)` for `--help`.
fn parse(args: Vec<String>) -> Result<Option<Opts>, String> {
    if args.is_empty() {
        return Err("missing required parameter, --help assumed".into());
    }
    let mut opts = Opts::default();
    let mut positional = Vec::new();
    let mut iter = args.into_iter();
    for arg in iter.by_ref() {
        match arg.as_str() {
            "--help" => return Ok(None),
            "--quiet" => opts.quiet = true,
            "--force" => opts.force = true,
            "--disclose-deny" => opts.disclose_deny = true,
            "--query" => {
                opts.query = true;
                opts.disclose_deny = true;
            }
            // Retrying and fallbacks only matter with a policy layer that asks for them.
            "--try-anyway" | "--no-fallback" | "--skip-systemd-native" => {}
            a if a.starts_with("--") => return Err(format!("unknown option \"{a}\"")),
            "" => return Err("invalid empty parameter".into()),
            a if a.contains([' ', '\t']) => {
                return Err(format!("embedded blanks are not allowed in \"{a}\""));
            }
            _ => positional.push(arg),
        }
        if positional.len() == 2 {
            break;
        }
    }
    let [id, action] =
        <[String; 2]>::try_from(positional).map_err(|_| "missing required parameter".to_owned())?;
    opts.id = id;
    opts.action = action;
    opts.params = iter.collect();
    Ok(Some(opts))
}

/// invoke-rc.d's policy answer: [`OK_RUN`], [`DENIED`] or another 10x code.
fn policy(opts: &Opts) -> i32 {
    let root = std::env::var("DPKG_ROOT").unwrap_or_default();
    let helper = format!("{root}/usr/sbin/policy-rc.d");
    let executable =
        kiln_abi::stat(&helper, true).is_ok_and(|st| st.is_file() && st.perm() & 0o111 != 0);
    if !executable {
        if opts.force {
            say(
                opts.quiet,
                "WARNING: No init system and policy-rc.d missing, but force specified so proceeding.",
            );
            return OK_RUN;
        }
        say(
            opts.quiet,
            "WARNING: No init system and policy-rc.d missing! Defaulting to block.",
        );
        return DENIED;
    }
    let mut argv = vec![helper];
    if opts.quiet {
        argv.push("--quiet".into());
    }
    argv.extend([opts.id.clone(), opts.action.clone()]);
    let rc = kiln_abi::run(&kiln_abi::Command::new(argv)).unwrap_or(SUBSYSTEM_ERROR);
    policy_answer(opts, rc)
}

fn policy_answer(opts: &Opts, rc: i32) -> i32 {
    let action = &opts.action;
    match rc {
        0 | OK_RUN => OK_RUN,
        1 | UNDEFINED => {
            say(
                opts.quiet,
                "policy-rc.d query returned \"behaviour undefined\",",
            );
            say(opts.quiet, &format!("assuming \"{action}\" is allowed."));
            OK_RUN
        }
        DENIED if opts.force => {
            say(
                opts.quiet,
                &format!("Overriding policy-rc.d denied execution of {action}."),
            );
            OK_RUN
        }
        DENIED => {
            say(
                opts.quiet,
                &format!("policy-rc.d denied execution of {action}."),
            );
            DENIED
        }
        FALLBACK => {
            say(
                opts.quiet,
                &format!("ignoring policy-rc.d fallback request: {action}."),
            );
            DENIED
        }
        100..=106 => rc,
        _ => {
            say(
                opts.quiet,
                &format!(
                    "WARNING: policy-rc.d returned unexpected error status {rc}, 102 used instead."
                ),
            );
            SUBSYSTEM_ERROR
        }
    }
}

fn run_initscript(opts: &Opts, script: String) -> i32 {
    let mut argv = vec![script, opts.action.clone()];
    argv.extend(opts.params.iter().cloned());
    match kiln_abi::run(&kiln_abi::Command::new(argv)) {
        Ok(0) => 0,
        Ok(rc) => {
            say(
                opts.quiet,
                &format!("initscript {}, action \"{}\" failed.", opts.id, opts.action),
            );
            rc
        }
        Err(e) => {
            say(opts.quiet, &format!("initscript {}: {e}", opts.id));
            SUBSYSTEM_ERROR
        }
    }
}

/// invoke-rc.d's `printerror`: `invoke-rc.d: message` unless `--quiet`.
fn say(quiet: bool, msg: &str) {
    if !quiet {
        util::warn(TOOL, msg);
    }
}

fn usage() -> i32 {
    let _ = writeln!(
        std::io::stdout(),
        "Usage:\n  invoke-rc.d [options] <basename> <action> [extra parameters]\n\n  \
         basename - Initscript ID, as per update-rc.d(8)\n  \
         action   - Initscript action. Known actions are:\n                \
         start, [force-]stop, [try-]restart,\n                \
         [force-]reload, status\n\n\
         Options:\n  --quiet --force --try-anyway --disclose-deny --query --no-fallback\n  \
         --skip-systemd-native --help"
    );
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_options_id_action_and_extra_parameters() {
        let opts = parse(args(&["--quiet", "cron", "restart", "x"]))
            .unwrap()
            .unwrap();
        assert!(opts.quiet);
        assert_eq!(
            (opts.id.as_str(), opts.action.as_str()),
            ("cron", "restart")
        );
        assert_eq!(opts.params, ["x"]);
        assert!(parse(args(&["--help"])).unwrap().is_none());
    }

    #[test]
    fn syntax_errors_are_103() {
        for bad in [
            &[][..],
            &["cron"],
            &["--bogus", "a", "b"],
            &["a b", "start"],
            &["", "start"],
        ] {
            assert!(parse(args(bad)).is_err(), "{bad:?}");
            assert_eq!(main(TOOL, args(bad)), SYNTAX_ERROR, "{bad:?}");
        }
    }

    #[test]
    fn policy_codes_map_as_debian_maps_them() {
        let opts = parse(args(&["--quiet", "cron", "start"])).unwrap().unwrap();
        assert_eq!(policy_answer(&opts, 0), OK_RUN);
        assert_eq!(policy_answer(&opts, 105), OK_RUN);
        assert_eq!(policy_answer(&opts, 101), DENIED);
        assert_eq!(policy_answer(&opts, 106), DENIED);
        assert_eq!(policy_answer(&opts, 7), SUBSYSTEM_ERROR);
        let forced = parse(args(&["--quiet", "--force", "cron", "start"]))
            .unwrap()
            .unwrap();
        assert_eq!(policy_answer(&forced, 101), OK_RUN);
    }
}
