//! `kiln`: builds OCI images from Dockerfiles with every RUN step in WebAssembly.
//!
//! This binary is the edge: it parses docker-compatible flags, loads secrets, picks the
//! cache and image store, renders progress, and turns errors into messages with context.
//! The work happens in `kiln-engine` and below.

mod args;
mod check;
mod commands;
mod compose;
mod compression;
mod render;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", render(&e));
            1
        }
    };
    std::process::exit(code);
}

/// The error and its causes, each said once. kiln's typed errors already show their
/// cause in their own message (`{path}: {source}`, a step's error under its excerpt),
/// so a cause whose text is already there is not repeated; a context added with
/// `anyhow` (`writing --iidfile X`) still gets its cause appended. A cause is clipped as
/// errors clip the input they quote, so one already shown clipped is recognised too.
fn render(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let (text, _) = kiln_dockerfile::clip_line(&cause.to_string(), 1);
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}: {source}")]
    struct Shown {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn causes_are_said_once() {
        let io = || std::io::Error::other("disk on fire");
        let typed = anyhow::Error::new(Shown {
            path: "/x",
            source: io(),
        });
        assert_eq!(render(&typed), "reading /x: disk on fire");
        let with_context = anyhow::Error::new(io()).context("writing --iidfile f");
        assert_eq!(render(&with_context), "writing --iidfile f: disk on fire");
    }
}
