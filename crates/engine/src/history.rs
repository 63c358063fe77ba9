//! The `created_by` text of each history entry, as BuildKit's Dockerfile frontend writes
//! it: the instruction name and its values after expansion, lists in Go's `%v` form
//! (`[a b]`), CMD and ENTRYPOINT in Go's `%q` form (`["a" "b"]`), HEALTHCHECK as Go's
//! `%+v` of its config, RUN as `RUN |N NAME=value… <argv joined by spaces> # buildkit`
//! with the stage's ARGs. Only RUN, COPY and ADD carry the ` # buildkit` suffix, and
//! ONBUILD writes no entry at all.

use kiln_dockerfile::RunProgram;

/// BuildKit's Dockerfile frontend writes its name into every entry's `comment`.
pub(crate) const COMMENT: &str = "buildkit.dockerfile.v0";

/// `NAME [a b c]`: a list as Go's `%v` prints it (EXPOSE, VOLUME, SHELL).
pub(crate) fn listed(name: &str, items: &[String]) -> String {
    format!("{name} [{}]", items.join(" "))
}

/// `NAME ["a" "b"]`: a list as Go's `%q` prints it (CMD, ENTRYPOINT).
pub(crate) fn quoted(name: &str, items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("{name} [{}]", quoted.join(" "))
}

/// `ENV a=1 b=2`, `LABEL k=v`: each pair as `key=value`, values as expanded.
pub(crate) fn pairs(name: &str, pairs: &[(String, String)]) -> String {
    let mut text = name.to_owned();
    for (k, v) in pairs {
        text.push_str(&format!(" {k}={v}"));
    }
    text
}

/// `ARG a=1 b`: each declared name with the value it got, if any.
pub(crate) fn arg(decls: &[kiln_dockerfile::ArgDecl]) -> String {
    let words: Vec<String> = decls
        .iter()
        .map(|d| match &d.default {
            Some(v) => format!("{}={v}", d.name),
            None => d.name.clone(),
        })
        .collect();
    format!("ARG {}", words.join(" "))
}

/// `HEALTHCHECK {Test:[CMD-SHELL curl -f x] Interval:30s Timeout:0s StartPeriod:0s
/// StartInterval:0s Retries:3}`: Go's `%+v` of Docker's health check config.
pub(crate) fn healthcheck(h: &kiln_oci::Healthcheck) -> String {
    let d = |n: Option<u64>| go_duration(n.unwrap_or(0));
    format!(
        "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        h.test.join(" "),
        d(h.interval),
        d(h.timeout),
        d(h.start_period),
        d(h.start_interval),
        h.retries.unwrap_or(0)
    )
}

/// `COPY --chown=a --chmod=644 src… <<EOF dest # buildkit` (and ADD): the flags that
/// decide what lands (not `--from`, `--link` or `--exclude`, which BuildKit leaves out),
/// the sources, the heredocs by name and the destination, as written after expansion.
pub(crate) fn copy(add: bool, c: &kiln_dockerfile::Copy) -> String {
    let mut words = vec![if add { "ADD" } else { "COPY" }.to_owned()];
    if c.parents {
        words.push("--parents".into());
    }
    words.extend(c.chown.as_ref().map(|v| format!("--chown={v}")));
    words.extend(c.chmod.as_ref().map(|v| format!("--chmod={v}")));
    words.extend(c.sources.iter().cloned());
    words.extend(c.heredocs.iter().map(|h| format!("<<{}", h.name)));
    words.push(c.dest.clone());
    format!("{} # buildkit", words.join(" "))
}

/// `RUN |2 a=1 b=2 /bin/sh -c make # buildkit`: the stage's ARGs (when it has any), then
/// the argv the step runs, joined by spaces; mount and network flags are not shown.
pub(crate) fn run(shell: &[String], program: &RunProgram, args: &[(String, String)]) -> String {
    let mut words: Vec<String> = Vec::new();
    if !args.is_empty() {
        words.push(format!("|{}", args.len()));
        words.extend(args.iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(run_argv(shell, program));
    format!("RUN {} # buildkit", words.join(" "))
}

/// The argv a RUN step runs: exec form as written, shell form as the stage's `SHELL`
/// plus the script (a `#!` heredoc: plus the path of its script file). BuildKit shows
/// it joined by spaces in the history and in the error of a command that fails.
pub(crate) fn run_argv(shell: &[String], program: &RunProgram) -> Vec<String> {
    match program {
        RunProgram::Exec(argv) => argv.clone(),
        RunProgram::Shell(script) => shell.iter().cloned().chain([script.clone()]).collect(),
        RunProgram::ScriptFile { name, .. } => shell
            .iter()
            .cloned()
            .chain([crate::run::script_path(name)])
            .collect(),
    }
}

/// Go's `strconv.Quote`: `"` and `\` escaped, the usual C escapes, other control and
/// invisible characters as `\x..`/`\u....`/`\U........`, everything printable as is.
/// (Go's printable set is Unicode's letters, marks, numbers, punctuation and symbols;
/// this approximates it with Rust's control, whitespace and format ranges.)
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn go_printable(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{e000}'..='\u{f8ff}'))
}

/// Go's `time.Duration.String`: `0s`, `1.5s`, `2m0s`, `1h0m0s`, `500ms`, `1µs`, `3ns`.
fn go_duration(nanos: u64) -> String {
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;
    match nanos {
        0 => "0s".into(),
        n if n < US => format!("{n}ns"),
        n if n < MS => format!("{}µs", decimal(n, US)),
        n if n < S => format!("{}ms", decimal(n, MS)),
        n => {
            let (h, m) = (n / (3600 * S), n / (60 * S) % 60);
            let s = decimal(n % (60 * S), S);
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, m) => format!("{m}m{s}s"),
                (h, m) => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

/// `n / unit` with its fraction, trailing zeros dropped (`1500, 1000` → `1.5`).
fn decimal(n: u64, unit: u64) -> String {
    let (whole, frac) = (n / unit, n % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lists_print_as_go_prints_them() {
        assert_eq!(
            listed("EXPOSE", &strings(&["80/tcp", "81/udp"])),
            "EXPOSE [80/tcp 81/udp]"
        );
        assert_eq!(
            quoted("CMD", &strings(&["/bin/sh", "-c", "echo \"hi\"\tthere\\"])),
            r#"CMD ["/bin/sh" "-c" "echo \"hi\"\tthere\\"]"#
        );
        assert_eq!(
            quoted("ENTRYPOINT", &strings(&["é\u{1}\u{7f}\u{ad}"])),
            r#"ENTRYPOINT ["é\x01\x7f\u00ad"]"#
        );
        let env = [
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "x y".to_owned()),
        ];
        assert_eq!(pairs("ENV", &env), "ENV A=1 B=x y");
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let s = 1_000_000_000;
        for (n, text) in [
            (0, "0s"),
            (3, "3ns"),
            (1_500, "1.5µs"),
            (500_000_000, "500ms"),
            (s, "1s"),
            (1_500_000_000, "1.5s"),
            (90 * s, "1m30s"),
            (120 * s, "2m0s"),
            (3600 * s, "1h0m0s"),
            (3725 * s + 5, "1h2m5.000000005s"),
        ] {
            assert_eq!(go_duration(n), text, "{n}");
        }
    }

    #[test]
    fn a_healthcheck_prints_as_its_go_struct() {
        let h = kiln_oci::Healthcheck {
            test: strings(&["CMD-SHELL", "curl -f localhost"]),
            interval: Some(30_000_000_000),
            retries: Some(3),
            ..Default::default()
        };
        assert_eq!(
            healthcheck(&h),
            "HEALTHCHECK {Test:[CMD-SHELL curl -f localhost] Interval:30s Timeout:0s \
             StartPeriod:0s StartInterval:0s Retries:3}"
        );
    }

    #[test]
    fn copy_shows_the_flags_that_decide_what_lands() {
        let c = kiln_dockerfile::Copy {
            sources: strings(&["a", "b*"]),
            dest: "d/".into(),
            from: Some("build".into()),
            chown: Some("1:2".into()),
            chmod: Some("644".into()),
            link: true,
            exclude: strings(&["*.log"]),
            heredocs: vec![kiln_dockerfile::HeredocFile {
                name: "EOF".into(),
                content: "x\n".into(),
                expand: true,
            }],
            ..Default::default()
        };
        assert_eq!(
            copy(false, &c),
            "COPY --chown=1:2 --chmod=644 a b* <<EOF d/ # buildkit"
        );
        let plain = kiln_dockerfile::Copy {
            sources: strings(&["https://x/f"]),
            dest: "/f".into(),
            parents: true,
            ..Default::default()
        };
        assert_eq!(
            copy(true, &plain),
            "ADD --parents https://x/f /f # buildkit"
        );
    }

    #[test]
    fn run_lists_the_stage_args_then_the_argv() {
        let sh = strings(&["/bin/sh", "-c"]);
        let shell = RunProgram::Shell("make all".into());
        assert_eq!(run(&sh, &shell, &[]), "RUN /bin/sh -c make all # buildkit");
        let args = [
            ("a".to_owned(), "b".to_owned()),
            ("c".to_owned(), String::new()),
        ];
        assert_eq!(
            run(&sh, &shell, &args),
            "RUN |2 a=b c= /bin/sh -c make all # buildkit"
        );
        let exec = RunProgram::Exec(strings(&["echo", "a b"]));
        assert_eq!(run(&sh, &exec, &[]), "RUN echo a b # buildkit");
        let script = RunProgram::ScriptFile {
            name: "EOF".into(),
            content: "#!/bin/sh\necho hi\n".into(),
        };
        assert_eq!(
            run(&sh, &script, &[]),
            "RUN /bin/sh -c /dev/pipes/EOF # buildkit"
        );
    }
}
