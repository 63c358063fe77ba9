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

/// UTC calendar fields of a Unix time: (year, month 1-12, day, hour, minute, second).
pub fn civil(sec: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = sec.div_euclid(86_400);
    let secs = sec.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// Abbreviated English month name, 1-based.
pub fn month_name(month: u32) -> &'static str {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    NAMES[(month.clamp(1, 12) - 1) as usize]
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(super::civil(951_782_400 + 3661), (2000, 2, 29, 1, 1, 1));
        assert_eq!(super::civil(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(super::civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
    }
}
