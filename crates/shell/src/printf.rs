//! `printf` and the backslash escapes shared with `echo`.

use crate::interp::{Interp, Res};

/// Appends `s` to `out` interpreting backslash escapes. `echo_style` octal is `\0NNN`
/// (echo, `%b`); otherwise `\NNN` (format strings). Returns true on `\c` (stop output).
pub(crate) fn escapes(s: &str, out: &mut String, echo_style: bool) -> bool {
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        i += 1;
        if c != '\\' || i >= cs.len() {
            out.push(c);
            continue;
        }
        let e = cs[i];
        i += 1;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'c' => return true,
            'e' => out.push('\x1b'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '0'..='7' => {
                let mut v = 0u32;
                let mut digits = 0;
                let max = if echo_style && e == '0' { 3 } else { 2 };
                if !(echo_style && e == '0') {
                    v = e as u32 - '0' as u32;
                }
                while digits < max && i < cs.len() && ('0'..='7').contains(&cs[i]) {
                    v = v * 8 + (cs[i] as u32 - '0' as u32);
                    i += 1;
                    digits += 1;
                }
                // A byte, not a code point: `\377` is byte 0xff, as in dash.
                out.push(crate::bytes::byte_char((v & 0xff) as u8));
            }
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    false
}

struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, sp: &Spec, numeric: bool) -> String {
    let w = sp.width.unwrap_or(0);
    let n = s.chars().count();
    if n >= w {
        return s;
    }
    let fill = w - n;
    if sp.left {
        format!("{s}{}", " ".repeat(fill))
    } else if sp.zero && numeric {
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        format!("{sign}{}{digits}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

/// Parses a numeric argument like printf(1): `'c` is the character code.
fn num_arg(sh: &Interp, a: &str, bad: &mut bool) -> i64 {
    if let Some(rest) = a.strip_prefix('\'').or_else(|| a.strip_prefix('"')) {
        return rest.chars().next().map(|c| c as i64).unwrap_or(0);
    }
    if a.is_empty() {
        return 0;
    }
    match crate::arith::parse_int(a) {
        Some(v) => v,
        None => {
            let digits: String = a
                .trim_start()
                .chars()
                .enumerate()
                .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
                .map(|(_, c)| c)
                .collect();
            sh.err(&format!("printf: {a}: expected numeric value"));
            *bad = true;
            digits.parse().unwrap_or(0)
        }
    }
}

/// `printf format [args...]`; the format is reused while arguments remain.
pub(crate) fn run(sh: &mut Interp, args: &[String]) -> Res {
    let Some(fmt) = args.first() else {
        sh.err("printf: usage: printf format [arg ...]");
        return Ok(2);
    };
    let fmt: Vec<char> = fmt.chars().collect();
    let rest = &args[1..];
    let mut ai = 0;
    let mut out = String::new();
    let mut bad = false;
    loop {
        let start_ai = ai;
        if format_once(sh, &fmt, rest, &mut ai, &mut out, &mut bad) {
            break;
        }
        if out.len() > sh.budget().memory() {
            break;
        }
        if ai >= rest.len() || ai == start_ai {
            break;
        }
    }
    if out.len() > sh.budget().memory() {
        return Err(sh.trip(crate::limits::LimitError::Memory {
            limit: sh.budget().memory(),
            what: "printf's output",
        }));
    }
    sh.out(out.as_bytes())?;
    Ok(bad as i32)
}

/// One pass over the format; returns true when `\c` stopped output.
fn format_once(
    sh: &Interp,
    fmt: &[char],
    args: &[String],
    ai: &mut usize,
    out: &mut String,
    bad: &mut bool,
) -> bool {
    let next_arg = |ai: &mut usize| -> Option<String> {
        let a = args.get(*ai).cloned();
        if a.is_some() {
            *ai += 1;
        }
        a
    };
    // Widths and precisions never build more than the memory budget; `run` fails once
    // the output passes it.
    let limit = sh.budget().memory();
    let mut i = 0;
    while i < fmt.len() {
        if out.len() > limit {
            return true;
        }
        let c = fmt[i];
        if c == '\\' {
            let mut j = i + 1;
            let mut lit = String::from("\\");
            if j < fmt.len() {
                lit.push(fmt[j]);
                j += 1;
                if ('0'..='7').contains(&fmt[j - 1]) {
                    while j < fmt.len() && j < i + 4 && ('0'..='7').contains(&fmt[j]) {
                        lit.push(fmt[j]);
                        j += 1;
                    }
                }
            }
            if escapes(&lit, out, false) {
                return true;
            }
            i = j;
            continue;
        }
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        if i < fmt.len() && fmt[i] == '%' {
            out.push('%');
            i += 1;
            continue;
        }
        let mut sp = Spec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            alt: false,
            width: None,
            prec: None,
        };
        while i < fmt.len() && "-0+ #".contains(fmt[i]) {
            match fmt[i] {
                '-' => sp.left = true,
                '0' => sp.zero = true,
                '+' => sp.plus = true,
                ' ' => sp.space = true,
                _ => sp.alt = true,
            }
            i += 1;
        }
        let mut read_num = |i: &mut usize, ai: &mut usize| -> Option<usize> {
            if *i < fmt.len() && fmt[*i] == '*' {
                *i += 1;
                let v = next_arg(ai).map(|a| num_arg(sh, &a, bad)).unwrap_or(0);
                return Some(v.max(0) as usize);
            }
            let st = *i;
            while *i < fmt.len() && fmt[*i].is_ascii_digit() {
                *i += 1;
            }
            (st < *i).then(|| fmt[st..*i].iter().collect::<String>().parse().unwrap_or(0))
        };
        // One byte past the budget is enough for `run` to report it.
        sp.width = read_num(&mut i, ai).map(|w| w.min(limit.saturating_add(1)));
        if i < fmt.len() && fmt[i] == '.' {
            i += 1;
            sp.prec = Some(
                read_num(&mut i, ai)
                    .unwrap_or(0)
                    .min(limit.saturating_add(1)),
            );
        }
        let Some(&conv) = fmt.get(i) else {
            out.push('%');
            break;
        };
        i += 1;
        let arg = next_arg(ai);
        match conv {
            's' => {
                let mut s = arg.unwrap_or_default();
                if let Some(p) = sp.prec {
                    s = s.chars().take(p).collect();
                }
                out.push_str(&pad(s, &sp, false));
            }
            'b' => {
                let mut s = String::new();
                let stop = escapes(&arg.unwrap_or_default(), &mut s, true);
                out.push_str(&pad(s, &sp, false));
                if stop {
                    return true;
                }
            }
            'c' => {
                let s: String = arg.unwrap_or_default().chars().take(1).collect();
                out.push_str(&pad(s, &sp, false));
            }
            'd' | 'i' => {
                let v = arg.map(|a| num_arg(sh, &a, bad)).unwrap_or(0);
                let mut s = v.unsigned_abs().to_string();
                if let Some(p) = sp.prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                let sign = if v < 0 {
                    "-"
                } else if sp.plus {
                    "+"
                } else if sp.space {
                    " "
                } else {
                    ""
                };
                out.push_str(&pad(format!("{sign}{s}"), &sp, sp.prec.is_none()));
            }
            'u' | 'o' | 'x' | 'X' => {
                let v = arg.map(|a| num_arg(sh, &a, bad)).unwrap_or(0) as u64;
                let mut s = match conv {
                    'u' => v.to_string(),
                    'o' => format!("{v:o}"),
                    'x' => format!("{v:x}"),
                    _ => format!("{v:X}"),
                };
                if let Some(p) = sp.prec {
                    while s.len() < p {
                        s.insert(0, '0');
                    }
                }
                if sp.alt && v != 0 {
                    s = match conv {
                        'o' => format!("0{s}"),
                        'x' => format!("0x{s}"),
                        'X' => format!("0X{s}"),
                        _ => s,
                    };
                }
                out.push_str(&pad(s, &sp, sp.prec.is_none()));
            }
            'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
                let v: f64 = match arg {
                    Some(a) => a.trim().parse().unwrap_or_else(|_| {
                        sh.err(&format!("printf: {a}: expected numeric value"));
                        *bad = true;
                        0.0
                    }),
                    None => 0.0,
                };
                let p = sp.prec.unwrap_or(6);
                let s = match conv {
                    'f' | 'F' => format!("{v:.p$}"),
                    'e' | 'E' => c_exp(v, p, conv == 'E'),
                    _ => c_general(v, p, conv == 'G'),
                };
                let sign = if v >= 0.0 && sp.plus {
                    "+"
                } else if v >= 0.0 && sp.space {
                    " "
                } else {
                    ""
                };
                out.push_str(&pad(format!("{sign}{s}"), &sp, true));
            }
            other => {
                sh.err(&format!("printf: %{other}: invalid directive"));
                *bad = true;
                return true;
            }
        }
    }
    false
}

fn c_exp(v: f64, p: usize, upper: bool) -> String {
    let s = format!("{v:.p$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    let r = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
    if upper { r.to_uppercase() } else { r }
}

fn c_general(v: f64, p: usize, upper: bool) -> String {
    let p = p.max(1);
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    if exp < -4 || exp >= p as i32 {
        let s = c_exp(v, p - 1, upper);
        let (m, e) = s
            .split_once(if upper { 'E' } else { 'e' })
            .unwrap_or((&s, ""));
        let m = if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.')
        } else {
            m
        };
        format!("{m}{}{e}", if upper { 'E' } else { 'e' })
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}
