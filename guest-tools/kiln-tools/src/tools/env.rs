//! env [-i] [-u NAME] [-0] [-C DIR] [NAME=VALUE]... [COMMAND [ARG]...]: prints the
//! environment or runs COMMAND through the embedder (kiln_v1 spawn), so builtins, PATH
//! and scripts resolve as in the shell.

use std::io::Write;

use crate::sys;
use crate::util::{self, warn};

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut clear = false;
    let mut unset: Vec<String> = Vec::new();
    let mut null = false;
    let mut chdir: Option<String> = None;
    let mut i = 0;
    // Options end at the first NAME=VALUE or command word (POSIX).
    while i < args.len() {
        let a = &args[i];
        match a.as_str() {
            "-" | "-i" | "--ignore-environment" => clear = true,
            "-0" | "--null" => null = true,
            "--" => {
                i += 1;
                break;
            }
            "-u" | "--unset" | "-C" | "--chdir" => {
                let Some(v) = args.get(i + 1) else {
                    return util::usage_error(
                        name,
                        format!(
                            "option requires an argument -- '{}'",
                            a.trim_start_matches('-')
                        ),
                    );
                };
                if a.contains('u') {
                    unset.push(v.clone());
                } else {
                    chdir = Some(v.clone());
                }
                i += 1;
            }
            s if s.starts_with("--unset=") => unset.push(s["--unset=".len()..].to_owned()),
            s if s.starts_with("-u") && s.len() > 2 => unset.push(s[2..].to_owned()),
            s if s.starts_with("-C") && s.len() > 2 => chdir = Some(s[2..].to_owned()),
            s if s.starts_with('-')
                && s.len() > 1
                && s[1..].chars().all(|c| c == 'i' || c == '0') =>
            {
                clear |= s.contains('i');
                null |= s.contains('0');
            }
            s if s.starts_with('-') && s.len() > 1 => {
                return util::usage_error(name, format!("invalid option -- '{}'", &s[1..]));
            }
            _ => break,
        }
        i += 1;
    }
    let mut vars: Vec<(String, String)> = if clear {
        Vec::new()
    } else {
        std::env::vars().collect()
    };
    vars.retain(|(k, _)| !unset.contains(k));
    while let Some((k, v)) = args.get(i).and_then(|a| a.split_once('=')) {
        if k.is_empty() {
            break;
        }
        vars.retain(|(existing, _)| existing != k);
        vars.push((k.to_owned(), v.to_owned()));
        i += 1;
    }
    let command = &args[i..];
    if command.is_empty() {
        if chdir.is_some() {
            return util::usage_error(name, "must specify command with --chdir (-C)");
        }
        let mut out = util::stdout();
        for (k, v) in &vars {
            let _ = write!(out, "{k}={v}{}", if null { '\0' } else { '\n' });
        }
        return if out.flush().is_ok() { 0 } else { 125 };
    }
    if null {
        return util::usage_error(name, "cannot specify --null (-0) with command");
    }
    let mut cmd = sys::Command::new(command.to_vec());
    cmd.env = Some(vars);
    cmd.cwd = chdir;
    match sys::run(&cmd) {
        Ok(code) => code,
        Err(e) => {
            warn(name, format!("'{}': {}", command[0], util::describe(&e)));
            126
        }
    }
}
