//! Debian versions (`[epoch:]upstream[-revision]`) with dpkg's ordering: letters sort
//! before non-letters, `~` before everything (even the end), digit runs numerically.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A parsed version. Equality is dpkg's (`1.0` equals `1.00`), so there is no `Hash`.
#[derive(Debug, Clone)]
pub struct Version {
    pub epoch: u32,
    pub upstream: String,
    /// Empty when the version has no `-revision`.
    pub revision: String,
}

impl FromStr for Version {
    type Err = Error;

    /// Parses as dpkg's `parseversion`: the errors are dpkg's; what dpkg only warns about
    /// (an upstream part not starting with a digit, odd characters) is accepted.
    fn from_str(text: &str) -> Result<Version> {
        let bad = |reason| Error::InvalidVersion {
            version: text.to_string(),
            reason,
        };
        let s = text.trim();
        if s.is_empty() {
            return Err(bad("version string is empty"));
        }
        if s.contains(char::is_whitespace) {
            return Err(bad("version string has embedded spaces"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => (parse_epoch(e).map_err(bad)?, rest),
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((_, "")) => return Err(bad("revision number is empty")),
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(bad("version number is empty"));
        }
        Ok(Version {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }
}

fn parse_epoch(text: &str) -> std::result::Result<u32, &'static str> {
    // dpkg reads the epoch with strtol: no leading digit is "empty", a sign is allowed.
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("epoch in version is empty");
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("epoch in version is not number");
    }
    if text.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return Err("epoch in version is negative");
    }
    // dpkg keeps epochs in an int: anything above INT_MAX is "too big".
    match digits.parse::<u32>() {
        Ok(e) if e <= i32::MAX as u32 => Ok(e),
        _ => Err("epoch in version is too big"),
    }
}

impl fmt::Display for Version {
    /// The version as dpkg prints it (epoch only when non-zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch > 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Version) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Version) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Version) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

/// The weight of one byte in a non-digit run (`None` = end of string), as dpkg's `order`.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp` over one part (upstream or revision).
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    while !a.is_empty() || !b.is_empty() {
        let (na, nb) = (non_digit_len(a), non_digit_len(b));
        for i in 0..na.max(nb) {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(i).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
        }
        (a, b) = (&a[na..], &b[nb..]);
        let (da, rest_a) = digit_run(a);
        let (db, rest_b) = digit_run(b);
        let numeric = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if numeric != Ordering::Equal {
            return numeric;
        }
        (a, b) = (rest_a, rest_b);
    }
    Ordering::Equal
}

fn non_digit_len(s: &[u8]) -> usize {
    s.iter().position(u8::is_ascii_digit).unwrap_or(s.len())
}

/// The digit run at the start of `s` without leading zeros, and what follows it.
fn digit_run(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    (&digits[zeros..], rest)
}
