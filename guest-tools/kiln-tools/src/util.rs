//! Shared plumbing: diagnostics in the `tool: message` form scripts expect, and input and
//! output helpers where `-` means standard input or output.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};

/// Prints `tool: message` to standard error.
pub fn warn(tool: &str, msg: impl std::fmt::Display) {
    let _ = writeln!(io::stderr(), "{tool}: {msg}");
}

/// Like [`warn`], for usage errors: also points at `--help` as GNU tools do.
pub fn usage_error(tool: &str, msg: impl std::fmt::Display) -> i32 {
    warn(tool, msg);
    let _ = writeln!(io::stderr(), "Try '{tool} --help' for more information.");
    2
}

/// The message GNU tools print for an I/O error (`No such file or directory`, ...).
pub fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::NotFound => "No such file or directory".into(),
        io::ErrorKind::PermissionDenied => "Permission denied".into(),
        io::ErrorKind::AlreadyExists => "File exists".into(),
        io::ErrorKind::IsADirectory => "Is a directory".into(),
        io::ErrorKind::NotADirectory => "Not a directory".into(),
        io::ErrorKind::DirectoryNotEmpty => "Directory not empty".into(),
        _ => {
            let text = err.to_string();
            // std appends " (os error N)"; GNU prints only the strerror text.
            match text.find(" (os error") {
                Some(pos) => text[..pos].to_owned(),
                None => text,
            }
        }
    }
}

/// Opens `path` for reading; `-` is standard input.
pub fn open_input(path: &str) -> io::Result<Box<dyn Read>> {
    if path == "-" {
        Ok(Box::new(io::stdin()))
    } else {
        Ok(Box::new(File::open(path)?))
    }
}

/// Buffered standard output.
pub fn stdout() -> BufWriter<io::Stdout> {
    BufWriter::with_capacity(64 * 1024, io::stdout())
}

/// True when a write failed because the reader went away (`yes | head`): not an error.
pub fn is_broken_pipe(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}
