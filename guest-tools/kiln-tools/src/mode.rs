//! chmod/install mode expressions: octal (`755`, `4755`) and symbolic
//! (`u+x,go-w`, `a=rX`, `g=u`, `+t`, `=644` style as GNU accepts `-755`-less forms).

/// A mode expression that is neither octal nor valid symbolic syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMode(pub String);

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Applies `expr` to `mode` (permission bits 0o7777). `umask` limits clauses without a
/// `who` part, as in GNU chmod.
pub fn apply(expr: &str, mode: u32, is_dir: bool, umask: u32) -> Result<u32, InvalidMode> {
    let bad = || InvalidMode(expr.to_owned());
    if !expr.is_empty() && expr.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let value = u32::from_str_radix(expr, 8).map_err(|_| bad())?;
        if value > 0o7777 {
            return Err(bad());
        }
        // GNU keeps a directory's set-id bits unless a 5th-digit-free octal names them.
        if is_dir && expr.len() < 5 && value & (S_ISUID | S_ISGID) == 0 && expr.len() <= 3 {
            return Ok(value | (mode & (S_ISUID | S_ISGID)));
        }
        return Ok(value);
    }
    let mut mode = mode & 0o7777;
    for clause in expr.split(',') {
        mode = apply_clause(clause, mode, is_dir, umask).ok_or_else(bad)?;
    }
    Ok(mode)
}

fn apply_clause(clause: &str, mut mode: u32, is_dir: bool, umask: u32) -> Option<u32> {
    let bytes = clause.as_bytes();
    let mut i = 0;
    let mut who = 0u32;
    while let Some(&c) = bytes.get(i) {
        who |= match c {
            b'u' => S_ISUID | 0o700,
            b'g' => S_ISGID | 0o070,
            b'o' => 0o007,
            b'a' => S_ISUID | S_ISGID | 0o777,
            _ => break,
        };
        i += 1;
    }
    let implicit = who == 0;
    if implicit {
        who = S_ISUID | S_ISGID | 0o777;
    }
    if i == bytes.len() {
        return None;
    }
    while i < bytes.len() {
        let op = bytes[i];
        if !matches!(op, b'+' | b'-' | b'=') {
            return None;
        }
        i += 1;
        let start = i;
        let mut bits = 0u32;
        if let Some(&src) = bytes.get(i).filter(|c| matches!(c, b'u' | b'g' | b'o')) {
            // Copy another class's current permissions (`g=u`).
            let perms = match src {
                b'u' => (mode >> 6) & 7,
                b'g' => (mode >> 3) & 7,
                _ => mode & 7,
            };
            bits = perms * 0o111;
            i += 1;
        } else if bytes.get(i).is_some_and(u8::is_ascii_digit) {
            let end = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii_digit())
                .map_or(bytes.len(), |p| i + p);
            let digits = std::str::from_utf8(&bytes[i..end]).ok()?;
            if !implicit || !digits.bytes().all(|b| b < b'8') {
                return None;
            }
            bits = u32::from_str_radix(digits, 8)
                .ok()
                .filter(|v| *v <= 0o7777)?;
            i = end;
            mode = match op {
                b'+' => mode | bits,
                b'-' => mode & !bits,
                _ => bits,
            };
            continue;
        } else {
            while let Some(&c) = bytes.get(i) {
                bits |= match c {
                    b'r' => 0o444,
                    b'w' => 0o222,
                    b'x' => 0o111,
                    b'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    b'X' => 0,
                    b's' => S_ISUID | S_ISGID,
                    b't' => S_ISVTX,
                    _ => break,
                };
                i += 1;
            }
        }
        let _ = start;
        let mut mask = who
            | if who & 0o007 != 0 || implicit {
                S_ISVTX
            } else {
                0
            };
        if implicit {
            mask &= !umask;
        }
        let change = bits & mask;
        mode = match op {
            b'+' => mode | change,
            b'-' => mode & !change,
            _ => {
                // `=` clears the class's bits (but not set-id bits on directories, as GNU).
                let mut clear = who & 0o777;
                if !is_dir {
                    clear |= who & (S_ISUID | S_ISGID);
                }
                if who & 0o007 != 0 {
                    clear |= S_ISVTX;
                }
                (mode & !clear) | change
            }
        };
    }
    Some(mode)
}

/// Renders `ls -l`'s 10-character mode string for a full st_mode (type bits included).
pub fn render(st_mode: u32) -> String {
    let kind = match st_mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let special = [(S_ISUID, 's'), (S_ISGID, 's'), (S_ISVTX, 't')];
    for (class, (bit, letter)) in special.iter().enumerate() {
        let shift = 6 - 3 * class as u32;
        let perms = (st_mode >> shift) & 7;
        s.push(if perms & 4 != 0 { 'r' } else { '-' });
        s.push(if perms & 2 != 0 { 'w' } else { '-' });
        let exec = perms & 1 != 0;
        s.push(match (st_mode & bit != 0, exec) {
            (true, true) => *letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(expr: &str, mode: u32) -> u32 {
        apply(expr, mode, false, 0o022).unwrap()
    }

    #[test]
    fn octal() {
        assert_eq!(sym("755", 0o644), 0o755);
        assert_eq!(sym("4755", 0), 0o4755);
        assert_eq!(sym("0", 0o777), 0);
        assert_eq!(apply("755", 0o2700, true, 0o022).unwrap(), 0o2755);
        assert_eq!(apply("00755", 0o2700, true, 0o022).unwrap(), 0o755);
        assert!(apply("8", 0, false, 0).is_err());
        assert!(apply("17777", 0, false, 0).is_err());
    }

    #[test]
    fn symbolic() {
        assert_eq!(sym("u+x", 0o644), 0o744);
        assert_eq!(sym("go-w", 0o666), 0o644);
        assert_eq!(sym("a=r", 0o777), 0o444);
        assert_eq!(sym("+x", 0o644), 0o755);
        assert_eq!(sym("+w", 0o444), 0o644, "umask 022 limits who-less clauses");
        assert_eq!(sym("u=rwx,g=rx,o=", 0o000), 0o750);
        assert_eq!(sym("g=u", 0o640), 0o660);
        assert_eq!(sym("u+s,+t", 0o755), 0o5755);
        assert_eq!(sym("o+t", 0o755), 0o1755);
        assert_eq!(sym("a-x", 0o755), 0o644);
        assert_eq!(sym("u+rw-x", 0o100), 0o600);
        assert_eq!(sym("=644", 0o777), 0o644);
        assert_eq!(sym("u=", 0o4755), 0o055);
    }

    #[test]
    fn capital_x() {
        assert_eq!(sym("a+X", 0o644), 0o644);
        assert_eq!(sym("a+X", 0o744), 0o755);
        assert_eq!(apply("a+X", 0o600, true, 0).unwrap(), 0o711);
    }

    #[test]
    fn invalid() {
        for bad in ["", "u", "z+x", "u+q", "u+x,", "u+7"] {
            assert!(apply(bad, 0o644, false, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn render_modes() {
        assert_eq!(render(0o100644), "-rw-r--r--");
        assert_eq!(render(0o040755), "drwxr-xr-x");
        assert_eq!(render(0o120777), "lrwxrwxrwx");
        assert_eq!(render(0o104755), "-rwsr-xr-x");
        assert_eq!(render(0o102644), "-rw-r-Sr--");
        assert_eq!(render(0o041777), "drwxrwxrwt");
        assert_eq!(render(0o041776), "drwxrwxrwT");
    }
}
