//! A small getopt_long-style parser. Hand-written rather than clap because the tools need
//! exact GNU/busybox command-line behaviour (clustered short flags, `-fVALUE`, `--x=v`,
//! stop-at-first-operand for env/xargs) and clap would add ~1 MiB to the module.

use std::fmt;

/// Identifier of a long-only option (never a real short flag character).
pub const fn long_id(n: u32) -> char {
    match char::from_u32(0xE000 + n) {
        Some(c) => c,
        None => '\0',
    }
}

/// One option: its short character (or a [`long_id`]), optional long name, and whether it
/// takes a value.
#[derive(Clone, Copy)]
pub struct OptSpec {
    pub id: char,
    pub long: Option<&'static str>,
    pub value: bool,
}

/// Shorthand for building an [`OptSpec`] table.
pub const fn opt(id: char, long: Option<&'static str>, value: bool) -> OptSpec {
    OptSpec { id, long, value }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptError {
    Unknown(String),
    MissingValue(String),
    UnexpectedValue(String),
    Ambiguous(String),
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptError::Unknown(o) => write!(f, "unrecognized option '{o}'"),
            OptError::MissingValue(o) => write!(f, "option requires an argument -- '{o}'"),
            OptError::UnexpectedValue(o) => write!(f, "option '{o}' doesn't allow an argument"),
            OptError::Ambiguous(o) => write!(f, "option '{o}' is ambiguous"),
        }
    }
}

/// The parsed command line: options in order, then the operands.
#[derive(Debug, Default)]
pub struct Parsed {
    pub opts: Vec<(char, Option<String>)>,
    pub operands: Vec<String>,
}

impl Parsed {
    pub fn has(&self, id: char) -> bool {
        self.opts.iter().any(|(o, _)| *o == id)
    }

    /// The last value given for `id`.
    pub fn value(&self, id: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(o, _)| *o == id)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `id`, in order.
    pub fn values(&self, id: char) -> impl Iterator<Item = &str> {
        self.opts
            .iter()
            .filter(move |(o, _)| *o == id)
            .filter_map(|(_, v)| v.as_deref())
    }
}

/// Parses `args` (without argv[0]). With `permute`, options may follow operands (GNU);
/// without, the first operand ends option parsing (POSIX; needed by env, xargs).
pub fn parse(args: &[String], specs: &[OptSpec], permute: bool) -> Result<Parsed, OptError> {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            parsed.operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let spec = find_long(specs, name)?;
            let value = match (spec.value, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| OptError::MissingValue(format!("--{name}")))?;
                    i += 1;
                    Some(v.clone())
                }
                (false, Some(_)) => return Err(OptError::UnexpectedValue(format!("--{name}"))),
                (false, None) => None,
            };
            parsed.opts.push((spec.id, value));
        } else if arg.len() > 1 && arg.starts_with('-') {
            let body = &arg[1..];
            for (pos, c) in body.char_indices() {
                let spec = specs
                    .iter()
                    .find(|s| s.id == c)
                    .ok_or_else(|| OptError::Unknown(format!("-{c}")))?;
                if spec.value {
                    let rest = &body[pos + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args
                            .get(i)
                            .ok_or_else(|| OptError::MissingValue(c.to_string()))?;
                        i += 1;
                        v.clone()
                    } else {
                        rest.to_owned()
                    };
                    parsed.opts.push((c, Some(value)));
                    break;
                }
                parsed.opts.push((c, None));
            }
        } else if permute {
            parsed.operands.push(arg.clone());
        } else {
            parsed.operands.extend(args[i - 1..].iter().cloned());
            break;
        }
    }
    Ok(parsed)
}

/// Exact long name, else a unique prefix (getopt_long's abbreviation rule).
fn find_long<'a>(specs: &'a [OptSpec], name: &str) -> Result<&'a OptSpec, OptError> {
    if let Some(spec) = specs.iter().find(|s| s.long == Some(name)) {
        return Ok(spec);
    }
    let mut matches = specs
        .iter()
        .filter(|s| s.long.is_some_and(|l| l.starts_with(name)) && !name.is_empty());
    match (matches.next(), matches.next()) {
        (Some(spec), None) => Ok(spec),
        (Some(_), Some(_)) => Err(OptError::Ambiguous(format!("--{name}"))),
        _ => Err(OptError::Unknown(format!("--{name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[OptSpec] = &[
        opt('a', Some("all"), false),
        opt('o', Some("output"), true),
        opt(long_id(1), Some("netrc-file"), true),
        opt(long_id(2), Some("netrc-optional"), false),
    ];

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn clusters_values_and_permutation() {
        let p = parse(
            &args(&["x", "-ao", "f", "y", "-ofile", "--", "-a"]),
            SPECS,
            true,
        )
        .unwrap();
        assert_eq!(p.operands, ["x", "y", "-a"]);
        assert!(p.has('a'));
        assert_eq!(p.values('o').collect::<Vec<_>>(), ["f", "file"]);
        assert_eq!(p.value('o'), Some("file"));
    }

    #[test]
    fn long_options_and_prefixes() {
        let p = parse(
            &args(&["--output=o", "--netrc-f", "n", "--al"]),
            SPECS,
            true,
        )
        .unwrap();
        assert_eq!(p.value('o'), Some("o"));
        assert_eq!(p.value(long_id(1)), Some("n"));
        assert!(p.has('a'));
        assert_eq!(
            parse(&args(&["--netrc"]), SPECS, true).unwrap_err(),
            OptError::Ambiguous("--netrc".into())
        );
        assert!(matches!(
            parse(&args(&["--all=1"]), SPECS, true),
            Err(OptError::UnexpectedValue(_))
        ));
        assert!(matches!(
            parse(&args(&["-o"]), SPECS, true),
            Err(OptError::MissingValue(_))
        ));
        assert!(matches!(
            parse(&args(&["-z"]), SPECS, true),
            Err(OptError::Unknown(_))
        ));
    }

    #[test]
    fn posix_mode_stops_at_first_operand() {
        let p = parse(&args(&["-a", "cmd", "-o", "x"]), SPECS, false).unwrap();
        assert_eq!(p.operands, ["cmd", "-o", "x"]);
        let p = parse(&args(&["-", "-a"]), SPECS, false).unwrap();
        assert_eq!(p.operands, ["-", "-a"]);
    }
}
