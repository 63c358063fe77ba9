//! dpkg's stat overrides (`<admindir>/statoverride`: `user group mode path` per line):
//! the owner and mode an administrator (or a maintainer script, through
//! `dpkg-statoverride`) sets for a path, which dpkg then gives that path whenever it
//! unpacks it, whatever the archive says.

use std::collections::{HashMap, HashSet};

/// The highest mode dpkg accepts (permission and setuid/setgid/sticky bits).
const MAX_MODE: u32 = 0o7777;

/// One override: owner and group as ids, mode, absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub path: String,
}

/// A malformed line: its number (from 1) and what is wrong, in dpkg's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// A mode as dpkg reads it: octal digits only, at most [`MAX_MODE`].
pub fn parse_mode(text: &str) -> Option<u32> {
    let mode = u32::from_str_radix(text, 8).ok()?;
    (text.bytes().all(|b| b.is_ascii_digit()) && mode <= MAX_MODE).then_some(mode)
}

/// dpkg's form of a path: trailing `/` and `/.` trimmed, one leading `/`; slashes inside
/// are kept as given. The flag says whether anything was trimmed (dpkg warns then).
pub fn clean_path(path: &str) -> (String, bool) {
    let mut trimmed = path;
    while trimmed.len() > 1 {
        match trimmed
            .strip_suffix("/.")
            .or_else(|| trimmed.strip_suffix('/'))
        {
            Some(t) => trimmed = t,
            None => break,
        }
    }
    let stripped = trimmed.len() != path.len();
    (format!("/{}", trimmed.trim_start_matches('/')), stripped)
}

/// A user or group given as `#N` or by name (looked up with `by_name`).
pub fn parse_id(spec: &str, by_name: &dyn Fn(&str) -> Option<u32>) -> Option<u32> {
    match spec.strip_prefix('#') {
        Some(n) => n.parse().ok(),
        None => by_name(spec),
    }
}

/// The overrides of a `statoverride` file, in file order; names are resolved with
/// `user` and `group`. Fails on the first bad line, as dpkg does.
pub fn parse(
    text: &str,
    user: &dyn Fn(&str) -> Option<u32>,
    group: &dyn Fn(&str) -> Option<u32>,
) -> Result<Vec<Override>, SyntaxError> {
    let mut db: Vec<Override> = Vec::new();
    // Paths seen so far: the file comes from the image, and a scan of `db` per line
    // would make a large one quadratic.
    let mut seen = HashSet::new();
    for (n, l) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let syntax = |message: String| SyntaxError {
            line: n + 1,
            message,
        };
        let mut words = l.splitn(4, ' ');
        let (Some(u), Some(g), Some(m), Some(p)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(syntax("incomplete line".into()));
        };
        let uid = parse_id(u, user).ok_or_else(|| syntax(format!("unknown user '{u}'")))?;
        let gid = parse_id(g, group).ok_or_else(|| syntax(format!("unknown group '{g}'")))?;
        let mode = parse_mode(m).ok_or_else(|| syntax(format!("invalid mode '{m}'")))?;
        let (path, _) = clean_path(p);
        if !seen.insert(path.clone()) {
            return Err(syntax(format!(
                "multiple statoverrides present for file '{path}'"
            )));
        }
        db.push(Override {
            uid,
            gid,
            mode,
            path,
        });
    }
    Ok(db)
}

/// The overrides by path, for unpacking.
pub fn by_path(db: Vec<Override>) -> HashMap<String, Override> {
    db.into_iter().map(|o| (o.path.clone(), o)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(name: &str) -> Option<u32> {
        match name {
            "root" => Some(0),
            "staff" => Some(50),
            _ => None,
        }
    }

    #[test]
    fn modes_and_paths_are_read_as_dpkg_reads_them() {
        assert_eq!(parse_mode("2775"), Some(0o2775));
        assert_eq!(parse_mode("0644"), Some(0o644));
        for bad in ["10000", "-1", "99z", "", "+7"] {
            assert_eq!(parse_mode(bad), None, "{bad}");
        }
        assert_eq!(clean_path("rel//dir/./"), ("/rel//dir".to_owned(), true));
        assert_eq!(clean_path("/"), ("/".to_owned(), false));
    }

    #[test]
    fn lines_give_ids_modes_and_clean_paths() {
        let db = parse(
            "root staff 2775 /usr/local/share/x/\n\n#7 #8 0644 /a b\n",
            &ids,
            &ids,
        )
        .unwrap();
        assert_eq!(
            db,
            [
                Override {
                    uid: 0,
                    gid: 50,
                    mode: 0o2775,
                    path: "/usr/local/share/x".into()
                },
                Override {
                    uid: 7,
                    gid: 8,
                    mode: 0o644,
                    path: "/a b".into()
                },
            ]
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let err = |text: &str| parse(text, &ids, &ids).unwrap_err();
        assert_eq!(err("root root 644\n").message, "incomplete line");
        assert_eq!(err("\nnobody root 644 /x\n").line, 2);
        assert_eq!(err("root root 9 /x\n").message, "invalid mode '9'");
        assert_eq!(
            err("root root 644 /x\nroot root 600 /x/\n").message,
            "multiple statoverrides present for file '/x'"
        );
    }
}
