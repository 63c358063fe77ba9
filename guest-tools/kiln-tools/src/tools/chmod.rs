//! chmod MODE[,MODE]... FILE... with octal and symbolic modes, -R, -v, -c, -f,
//! --reference. Symlinks named on the command line are followed; symlinks met while
//! recursing are skipped, as GNU chmod does.

use crate::mode;
use crate::sys;
use crate::util::{self, describe, warn};
use crate::walk;

/// Any mask: syntax checks only (the step's umask limits clauses without a `who` part
/// when the mode is applied).
const ANY_UMASK: u32 = 0o022;

pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut recursive = false;
    let mut verbose = false;
    let mut changes = false;
    let mut quiet = false;
    let mut reference: Option<String> = None;
    let mut mode_expr: Option<String> = None;
    let mut files = Vec::new();
    let mut only_operands = false;
    for arg in args {
        if only_operands || !arg.starts_with('-') || arg == "-" {
            if mode_expr.is_none() && reference.is_none() {
                mode_expr = Some(arg);
            } else {
                files.push(arg);
            }
            continue;
        }
        match arg.as_str() {
            "--" => only_operands = true,
            "-R" | "--recursive" => recursive = true,
            "-v" | "--verbose" => verbose = true,
            "-c" | "--changes" => changes = true,
            "-f" | "--silent" | "--quiet" => quiet = true,
            a if a.starts_with("--reference=") => {
                reference = Some(a["--reference=".len()..].to_owned())
            }
            // `-w`, `-x,g+r`: a mode that looks like an option.
            a if mode_expr.is_none() && mode::apply(a, 0, false, ANY_UMASK).is_ok() => {
                mode_expr = Some(a.to_owned())
            }
            a if a.len() > 2
                && !a.starts_with("--")
                && a[1..].chars().all(|c| "Rvcf".contains(c)) =>
            {
                recursive |= a.contains('R');
                verbose |= a.contains('v');
                changes |= a.contains('c');
                quiet |= a.contains('f');
            }
            a => {
                return util::usage_error(
                    name,
                    format!("invalid option -- '{}'", a.trim_start_matches('-')),
                );
            }
        }
    }
    let reference_mode = match &reference {
        Some(r) => match sys::stat(r, true) {
            Ok(st) => Some(st.perm()),
            Err(e) => {
                warn(
                    name,
                    format!("failed to get attributes of '{r}': {}", describe(&e)),
                );
                return 1;
            }
        },
        None => None,
    };
    let Some(expr) = mode_expr.or_else(|| reference_mode.map(|m| format!("{m:o}"))) else {
        return util::usage_error(name, "missing operand");
    };
    if reference.is_some() && files.is_empty() {
        return util::usage_error(name, "missing operand");
    }
    if files.is_empty() {
        return util::usage_error(name, format!("missing operand after '{expr}'"));
    }
    if mode::apply(&expr, 0, false, ANY_UMASK).is_err() {
        warn(name, format!("invalid mode: '{expr}'"));
        return 1;
    }
    let umask = sys::umask();
    let mut status = 0;
    for file in &files {
        let result = walk::walk(file, recursive, true, &mut |path, st, depth| {
            if depth > 0 && st.is_symlink() {
                return Ok(());
            }
            let st = if st.is_symlink() {
                sys::stat(path, true)?
            } else {
                st
            };
            let new = mode::apply(&expr, st.perm(), st.is_dir(), umask).unwrap_or(st.perm());
            if new != st.perm() || verbose {
                if new != st.perm() {
                    sys::chmod(path, new, true)?;
                }
                if verbose || changes {
                    let how = if new == st.perm() {
                        "retained as"
                    } else {
                        "changed from"
                    };
                    if new == st.perm() {
                        println!(
                            "mode of '{path}' {how} {:04o} ({})",
                            new,
                            &mode::render(new)[1..]
                        );
                    } else {
                        println!(
                            "mode of '{path}' {how} {:04o} ({}) to {:04o} ({})",
                            st.perm(),
                            &mode::render(st.perm())[1..],
                            new,
                            &mode::render(new)[1..]
                        );
                    }
                }
            }
            Ok(())
        });
        if let Err((path, e)) = result {
            if !quiet {
                let what = if e.kind() == std::io::ErrorKind::NotFound {
                    "cannot access"
                } else {
                    "changing permissions of"
                };
                warn(name, format!("{what} '{path}': {}", describe(&e)));
            }
            status = 1;
        }
    }
    status
}
