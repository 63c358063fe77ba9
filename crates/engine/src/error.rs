//! Build errors, as types: an embedder matches on the cause, the CLI prints the text.
//!
//! Every message that can carry text from a step (its output, a command line, a path it
//! created) is redacted before it leaves the engine (`engine.rs` `redact_error`).

use std::time::Duration;

use crate::add::AddError;
use crate::cache::CacheError;
use crate::context::ContextError;
use crate::copy::CopyError;
use crate::images::ImageError;
use crate::redact::PatternError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A Dockerfile that does not parse; the text shows file, line and caret.
    #[error(transparent)]
    Parse(#[from] kiln_dockerfile::ParseError),
    /// A global `ARG` whose default does not expand.
    /// (`error` is not a `source`: this message already says all of it, and a cause
    /// would repeat it after it.)
    #[error("{file}:{}: {}", .error.line, .error.source)]
    Args {
        file: String,
        error: kiln_dockerfile::args::GlobalArgError,
    },
    /// A global `ARG SOURCE_DATE_EPOCH=` whose value is not a number of seconds.
    #[error(
        "{file}:{line}: invalid SOURCE_DATE_EPOCH: {value} (ARG SOURCE_DATE_EPOCH must be a \
         number of seconds since 1970; give an integer such as the last commit's time: \
         git log -1 --format=%ct)"
    )]
    SourceDateEpoch {
        file: String,
        line: usize,
        value: String,
    },
    /// Stages that do not resolve (`--target`, `FROM`, `--from`).
    #[error("{file}: {source}")]
    Graph {
        file: String,
        source: kiln_dockerfile::graph::GraphError,
    },
    /// Checked before any step runs: the instructions alone overflow the config.
    #[error(
        "{file}:{line}: this instruction ({bytes} bytes, {json_bytes} as JSON) takes the image history over {} MiB, the largest image config kiln writes (MAX_CONFIG_SIZE); put the script in a file in the build context and run that file instead",
        kiln_oci::MAX_CONFIG_SIZE >> 20
    )]
    HistoryTooLarge {
        file: String,
        line: usize,
        bytes: usize,
        json_bytes: usize,
    },
    /// Checked again once the base image's history, ENV and labels are added.
    #[error(
        "the image config would be {bytes} bytes, over the {} MiB limit (MAX_CONFIG_SIZE): the base image's history and config plus this Dockerfile's instructions are too large; move long scripts and values into files in the context",
        kiln_oci::MAX_CONFIG_SIZE >> 20
    )]
    ConfigTooLarge { bytes: usize },
    #[error("cannot read Dockerfile {}: {source}", path.display())]
    ReadDockerfile {
        path: std::path::PathBuf,
        source: ContextError,
    },
    #[error("cannot create cache directory {}: {source}", path.display())]
    CacheDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the file store in the cache: {0}")]
    Store(kiln_fs::FsError),
    #[error(
        "secret {id}: not found: the mount at {location} requires it; pass --secret id={id},src=PATH"
    )]
    MissingSecret {
        id: kiln_dockerfile::SecretId,
        location: String,
    },
    /// A step failed: where (file, line, the instruction under a caret), why, and the
    /// last lines of its output when it was a command that failed.
    #[error("{file}:{line}: {source}\n{}{}", excerpt(*.line, .instruction), tail(.source.output_tail()))]
    Step {
        file: String,
        line: usize,
        instruction: String,
        /// Boxed: the other variants are small, and this one is only built on failure.
        source: Box<StepError>,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "secret leak: the value of secret {secret:?} was found in {location}; the image was not written (use --secret-leak=warn to only warn)"
    )]
    Leak {
        secret: kiln_dockerfile::SecretId,
        location: String,
    },
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Guard(#[from] crate::leak::LeakError),
    /// The final stage's filesystem could not be rebuilt from its layers.
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Patterns(#[from] PatternError),
    #[error("the cache's blob layout {path}: {source}")]
    Blobs {
        path: std::path::PathBuf,
        source: kiln_oci::OciError,
    },
    #[error("starting the scheduler: {0}")]
    Scheduler(std::io::Error),
    #[error("writing the image config and manifest to the cache: {0}")]
    WriteImage(kiln_oci::OciError),
    /// A broken invariant of the engine itself (a bug), never an input or I/O failure.
    #[error("internal error: {0}")]
    Internal(String),
    /// A stage's error, already rendered (shared between the stages waiting on it), or
    /// an error whose text had to be redacted.
    #[error("{0}")]
    Failed(String),
}

/// The instruction under its line number with a caret, like the parser's errors.
fn excerpt(line: usize, instruction: &str) -> String {
    let num = line.to_string();
    let pad = " ".repeat(num.len());
    let (first, _) = kiln_dockerfile::clip_line(instruction.lines().next().unwrap_or(""), 1);
    let word = first
        .split_whitespace()
        .next()
        .map_or(1, |w| w.chars().count());
    format!("{pad} |\n{num} | {first}\n{pad} | {}", "^".repeat(word))
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nlast output:");
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// Why a step failed; the engine adds where ([`BuildError::Step`]).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// Started by the first step that runs a program.
    #[error("starting the wasm runtime: {0}")]
    Runtime(#[from] kiln_runtime::RuntimeError),
    /// `COPY --chown` or `USER` names a user or group the image does not have.
    #[error(transparent)]
    Passwd(#[from] crate::passwd::PasswdError),
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Add(#[from] AddError),
    /// The step's filesystem refused an operation (a full disk quota is [`Self::DiskQuota`]).
    #[error(transparent)]
    Fs(kiln_fs::FsError),
    /// The script did not parse, or hit one of the shell's own bounds.
    #[error(transparent)]
    Shell(#[from] kiln_shell::ShellError),
    /// The command ran and failed. `command` is its argv as BuildKit shows it (joined
    /// by spaces, Go-quoted, see [`shown_command`]); `output_tail` is its last lines,
    /// already redacted.
    #[error("process {command} did not complete successfully: exit code: {code}")]
    Exit {
        command: String,
        code: i32,
        output_tail: Vec<String>,
    },
    /// The step was still running at `--step-timeout`.
    #[error(
        "the step did not finish within the step timeout of {shown} (kiln build --step-timeout {shown}); raise it with --step-timeout DURATION, or leave it out for no limit",
        shown = show_duration(*.limit)
    )]
    Timeout { limit: Duration },
    /// The embedder cancelled the build ([`crate::BuildRequest::cancel`]).
    #[error("the build was cancelled")]
    Cancelled,
    /// The step wrote more than `--disk-quota`.
    #[error("{}", kiln_fs::FsError::DiskQuota { limit: *.limit })]
    DiskQuota { limit: u64 },
    /// The instruction, as expanded, takes the image history (or its EXPOSE ports) over
    /// the config limit: caught at the step, before many more such steps pile up.
    #[error(
        "this instruction, as expanded, takes the image config to {bytes} bytes, over the {} MiB limit (MAX_CONFIG_SIZE); move large values into files in the build context",
        kiln_oci::MAX_CONFIG_SIZE >> 20
    )]
    ConfigTooLarge { bytes: u64 },
    /// A Dockerfile feature kiln does not implement, and what to write instead.
    #[error("{feature} is not supported by kiln: {instead}")]
    Unsupported {
        feature: String,
        instead: &'static str,
    },
    #[error("invalid --mount: {0}")]
    Mount(#[from] kiln_dockerfile::MountError),
    #[error(
        "BUILDKIT_SANDBOX_HOSTNAME={0:?} is not a host name: use at most 64 letters, digits, '-' and '.'"
    )]
    Hostname(String),
    /// The instruction's words do not expand (`${VAR:?}`, an unterminated `${`).
    #[error(transparent)]
    Expand(#[from] kiln_dockerfile::ExpandError),
    #[error("--chmod={text}: {why}")]
    Chmod { text: String, why: String },
    /// An EXPOSE port that is invalid once its variables are expanded.
    #[error("EXPOSE: {0}")]
    Expose(String),
    #[error("WORKDIR {path}: {source}")]
    Workdir {
        path: String,
        source: kiln_fs::FsError,
    },
    #[error("bind source {path:?}: {source}")]
    BindSource {
        path: String,
        source: kiln_fs::FsError,
    },
    #[error("secret {id}: not found: the step requires it; pass --secret id={id},src=PATH")]
    MissingSecret { id: kiln_dockerfile::SecretId },
    #[error("secret {id:?}: {source}")]
    SecretMount {
        id: kiln_dockerfile::SecretId,
        source: kiln_runtime::MountError,
    },
    #[error(transparent)]
    MountTable(#[from] kiln_runtime::MountError),
    #[error("cache mount {id:?}: {source}; run `kiln prune`")]
    CacheMountCorrupt {
        id: String,
        source: kiln_fs::FsError,
    },
    #[error("cache mount {id:?}: {source}")]
    CacheMountRead { id: String, source: std::io::Error },
    /// A broken invariant of the engine itself (a bug), never an input or I/O failure.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl StepError {
    /// The last lines of output of a command that failed (empty for other causes).
    pub fn output_tail(&self) -> &[String] {
        match self {
            StepError::Exit { output_tail, .. } => output_tail,
            _ => &[],
        }
    }
}

/// A failed command's argv as BuildKit's error names it: joined by spaces and quoted as
/// Go's `%q` (`"/bin/sh -c make"`), clipped as any quoted input is
/// ([`kiln_dockerfile::clip_line`]): a RUN heredoc can hold a script of any length, and
/// the line and caret already say which step it was.
pub(crate) fn shown_command(argv: &[String]) -> String {
    let (shown, _) = kiln_dockerfile::clip_line(&argv.join(" "), 1);
    crate::history::go_quote(&shown)
}

/// A full quota is its own variant wherever the refusal comes from (a write, a freeze).
impl From<kiln_fs::FsError> for StepError {
    fn from(e: kiln_fs::FsError) -> Self {
        match e {
            kiln_fs::FsError::DiskQuota { limit } => StepError::DiskQuota { limit },
            other => StepError::Fs(other),
        }
    }
}

/// `90s` -> `1m30s`, as `--step-timeout` accepts it back.
fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let (h, m, s, rest) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (rest, "ms")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(source: StepError) -> BuildError {
        BuildError::Step {
            file: "Dockerfile".into(),
            line: 12,
            instruction: "RUN make \\\n  all".into(),
            source: Box::new(source),
        }
    }

    #[test]
    fn a_step_error_shows_where_why_and_the_last_output() {
        let exit = StepError::Exit {
            command: shown_command(&["/bin/sh".into(), "-c".into(), "make \\\n  all".into()]),
            code: 2,
            output_tail: vec!["cc: error".into(), "make: *** [all] Error 1".into()],
        };
        assert_eq!(
            step(exit).to_string(),
            "Dockerfile:12: process \"/bin/sh -c make \\\\\\n  all\" did not complete successfully: exit code: 2\n   |\n12 | RUN make \\\n   | ^^^\nlast output:\n  cc: error\n  make: *** [all] Error 1"
        );
        // Causes other than a command's exit have no output to show.
        let quota = step(StepError::DiskQuota { limit: 5 }).to_string();
        assert!(
            quota.starts_with("Dockerfile:12: disk quota of 5 bytes"),
            "{quota}"
        );
        assert!(!quota.contains("last output"), "{quota}");
    }

    #[test]
    fn a_full_quota_is_one_variant_wherever_it_comes_from() {
        let from_fs = StepError::from(kiln_fs::FsError::DiskQuota { limit: 7 });
        assert!(matches!(from_fs, StepError::DiskQuota { limit: 7 }));
        let other = StepError::from(kiln_fs::FsError::NotFound);
        assert!(matches!(other, StepError::Fs(kiln_fs::FsError::NotFound)));
    }

    #[test]
    fn timeouts_are_shown_as_the_flag_takes_them() {
        let cases = [
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_secs(7200), "2h"),
            (Duration::ZERO, "0s"),
        ];
        for (d, shown) in cases {
            assert_eq!(show_duration(d), shown);
            let text = StepError::Timeout { limit: d }.to_string();
            assert!(text.contains(&format!("--step-timeout {shown})")), "{text}");
        }
    }
}
