//! `kiln build --check`: the report `docker buildx build --check` prints (a count line,
//! then each warning with its rule, link, detail and the Dockerfile lines around it;
//! an error after them), with its exit status: 0 only without warnings and errors.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use kiln_dockerfile::{Span, Warning};
use kiln_engine::CheckReport;

/// Runs the check and prints its report; returns the exit status.
pub(crate) fn run(
    dockerfile: &Path,
    context: &Path,
    target: Option<&str>,
    build_args: &[(String, String)],
) -> Result<i32> {
    let report = kiln_engine::check(dockerfile, context, target, build_args)?;
    let name = dockerfile.display().to_string();
    print!("{}", render(&report, &name));
    if let Some(error) = render_error(&report, &name) {
        eprint!("{error}");
        return Ok(1);
    }
    Ok(i32::from(!report.warnings.is_empty()))
}

/// The standard-output part: the count line and the warnings.
fn render(report: &CheckReport, name: &str) -> String {
    let mut out = String::new();
    let count = report.warnings.len();
    match count {
        0 if report.error.is_none() => out.push_str("Check complete, no warnings found.\n"),
        0 => {}
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => {
            let _ = writeln!(out, "Check complete, {n} warnings have been found!");
        }
    }
    for w in &report.warnings {
        out.push_str(&warning(w, &report.source, name));
    }
    out
}

/// BuildKit's rendering of one warning.
fn warning(w: &Warning, source: &str, name: &str) -> String {
    let mut out = format!("\nWARNING: {}", w.rule.name());
    if let Some(url) = w.rule.url() {
        let _ = write!(out, " - {url}");
    }
    let _ = writeln!(out, "\n{}", w.message);
    out.push_str(&excerpt(source, name, w.span));
    out
}

/// The error that ended the check, BuildKit's way: a blank line after the warnings, the
/// message, then the lines it points at.
fn render_error(report: &CheckReport, name: &str) -> Option<String> {
    let (message, span) = report.error.as_ref()?;
    let mut out = String::new();
    if !report.warnings.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "ERROR: {message}");
    if let Some(span) = span {
        out.push_str(&excerpt(&report.source, name, *span));
    }
    Some(out)
}

/// Context lines BuildKit shows around a one-line location; around a longer one, half.
const CONTEXT_ONE_LINE: usize = 4;
const CONTEXT_MANY_LINES: usize = 2;

/// BuildKit's source excerpt: `file:line`, a rule, the lines around `span` with the
/// span's lines marked `>>>`, a rule.
fn excerpt(source: &str, name: &str, span: Span) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let (first, last) = (span.start_line, span.end_line.max(span.start_line));
    if first < 1 || first > lines.len() {
        return String::new();
    }
    let mut end = last.min(lines.len());
    let mut start = first;
    let pad = if end == start {
        CONTEXT_ONE_LINE
    } else {
        CONTEXT_MANY_LINES
    };
    // BuildKit widens one line up and one down per round, counting each round as well.
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{name}:{first}\n--------------------\n");
    for (i, line) in lines.iter().enumerate().take(end).skip(start - 1) {
        let n = i + 1;
        let mark = if (first..=last).contains(&n) {
            ">>>"
        } else {
            "   "
        };
        let (line, _) = kiln_dockerfile::clip_line(line, 1);
        let _ = writeln!(out, " {n:>3} | {mark} {line}");
    }
    out.push_str("--------------------\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_buildkits() {
        let src =
            "#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n";
        assert_eq!(
            excerpt(src, "Dockerfile", Span::line(2)),
            "Dockerfile:2\n--------------------\n   1 |     #check=skip=ConsistentInstructionCasing\n   2 | >>> FROM scratch as base\n   3 |     copy Dockerfile .\n   4 |     \n--------------------\n"
        );
        let long = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
        let shown = excerpt(
            long,
            "D",
            Span {
                start_line: 4,
                end_line: 5,
            },
        );
        assert_eq!(
            shown,
            "D:4\n--------------------\n   3 |     c\n   4 | >>> d\n   5 | >>> e\n   6 |     f\n--------------------\n"
        );
        assert_eq!(excerpt("a\n", "D", Span::line(9)), "");
    }
}
