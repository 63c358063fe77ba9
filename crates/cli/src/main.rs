//! `kiln`: builds OCI images from Dockerfiles with every RUN step in WebAssembly.
//!
//! This binary is the edge: it parses docker-compatible flags, loads secrets, picks the
//! cache and image store, renders progress, and turns errors into messages with context.
//! The work happens in `kiln-engine` and below.

mod args;
mod commands;
mod render;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    let code = match commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
