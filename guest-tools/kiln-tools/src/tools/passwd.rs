//! `passwd -l/-u/-d USER` and `chpasswd` (shadow-utils): edits of /etc/shadow with its
//! `/etc/shadow-` backup. A plain-text password given to chpasswd is hashed with
//! SHA-512 crypt (`$6$`, 16-character random salt, 5000 rounds), which every glibc
//! `crypt` accepts; Debian's chpasswd goes through PAM, whose default is yescrypt.

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha512};

use super::users_db::{Db, SHADOW, today};
use crate::opts::{self, opt};
use crate::util::{self, warn};

/// passwd's exit status for a refused unlock (shadow-utils' E_FAILURE... is 3 here).
const E_REFUSED: i32 = 3;
/// The exit status of a user passwd or chpasswd cannot find.
const E_NOUSER: i32 = 1;

pub fn passwd(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('l', Some("lock"), false),
        opt('u', Some("unlock"), false),
        opt('d', Some("delete"), false),
        opt('q', Some("quiet"), false),
    ];
    let p = match opts::parse(&args, &specs, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    let [user] = p.operands.as_slice() else {
        return util::usage_error(
            name,
            "expected one user name (kiln runs no interactive passwd)",
        );
    };
    let edit: fn(&str) -> Option<String> = match (p.has('l'), p.has('u'), p.has('d')) {
        (true, false, false) => lock,
        (false, true, false) => unlock,
        (false, false, true) => |_| Some(String::new()),
        _ => return util::usage_error(name, "give exactly one of -l, -u or -d"),
    };
    match edit_shadow(user, edit) {
        Ok(true) => {
            if !p.has('q') {
                println!("{name}: password changed.");
            }
            0
        }
        Ok(false) => {
            warn(
                name,
                "unlocking the password would result in a passwordless account.\n\
                 You should set a password with usermod -p to unlock the password of this account.",
            );
            E_REFUSED
        }
        Err((msg, code)) => {
            warn(name, msg);
            code
        }
    }
}

/// `!` in front of the hash, once.
fn lock(pw: &str) -> Option<String> {
    Some(if pw.starts_with('!') {
        pw.to_owned()
    } else {
        format!("!{pw}")
    })
}

/// The hash without its `!`; `None` (refused) when that would leave it empty.
fn unlock(pw: &str) -> Option<String> {
    match pw.strip_prefix('!') {
        Some("") => None,
        Some(rest) => Some(rest.to_owned()),
        None => Some(pw.to_owned()),
    }
}

/// Applies `edit` to `user`'s password field; `Ok(false)` when `edit` refuses.
fn edit_shadow(user: &str, edit: fn(&str) -> Option<String>) -> Result<bool, (String, i32)> {
    let mut shadow = Db::open(SHADOW).map_err(|e| (e, 1))?;
    let i = shadow.find(user).ok_or_else(|| {
        (
            format!("user '{user}' does not exist in {SHADOW}"),
            E_NOUSER,
        )
    })?;
    let mut f = shadow.fields(i, 9);
    let Some(pw) = edit(&f[1]) else {
        return Ok(false);
    };
    f[1] = pw;
    shadow.set(i, &f);
    shadow.save(true).map_err(|e| (e, 1))?;
    Ok(true)
}

pub fn chpasswd(name: &str, args: Vec<String>) -> i32 {
    let specs = [
        opt('e', Some("encrypted"), false),
        opt('c', Some("crypt-method"), true),
    ];
    let p = match opts::parse(&args, &specs, true) {
        Ok(p) => p,
        Err(e) => return util::usage_error(name, e),
    };
    if let Some(m) = p.value('c').filter(|m| *m != "SHA512") {
        warn(
            name,
            format!("unsupported crypt method: {m} (kiln hashes with SHA512)"),
        );
        return 1;
    }
    let mut input = String::new();
    if let Err(e) = io::stdin().lock().read_to_string(&mut input) {
        warn(name, util::describe(&e));
        return 1;
    }
    match set_passwords(&input, p.has('e')) {
        Ok(()) => 0,
        Err(msg) => {
            warn(name, msg);
            warn(name, "error detected, changes ignored");
            1
        }
    }
}

/// Applies every `user:password` line, or none if a line is bad.
fn set_passwords(input: &str, encrypted: bool) -> Result<(), String> {
    let mut shadow = Db::open(SHADOW)?;
    for (n, line) in input.as_bytes().lines().map_while(Result::ok).enumerate() {
        let Some((user, pw)) = line.split_once(':') else {
            return Err(format!("line {}: missing new password", n + 1));
        };
        let i = shadow
            .find(user)
            .ok_or_else(|| format!("line {}: user '{user}' does not exist", n + 1))?;
        let mut f = shadow.fields(i, 9);
        f[1] = if encrypted {
            pw.to_owned()
        } else {
            sha512_crypt(pw.as_bytes(), &random_salt()?, DEFAULT_ROUNDS)
        };
        f[2] = today().to_string();
        shadow.set(i, &f);
    }
    shadow.save(true)
}

/// SHA-crypt's default rounds (no `rounds=` in the hash when used).
const DEFAULT_ROUNDS: usize = 5000;
/// crypt's base-64 alphabet.
const B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Salt length shadow-utils uses for SHA512.
const SALT_LEN: usize = 16;

/// 16 salt characters from /dev/urandom.
fn random_salt() -> Result<Vec<u8>, String> {
    let mut bytes = [0u8; SALT_LEN];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("/dev/urandom: {}", util::describe(&e)))?;
    Ok(bytes.iter().map(|b| B64[usize::from(b & 63)]).collect())
}

fn sha512(parts: &[&[u8]]) -> [u8; 64] {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `src` repeated to `len` bytes.
fn stretch(src: &[u8; 64], len: usize) -> Vec<u8> {
    src.iter().copied().cycle().take(len).collect()
}

/// SHA-512 crypt (Drepper's "Unix crypt using SHA-256 and SHA-512", the `$6$` scheme).
fn sha512_crypt(pw: &[u8], salt: &[u8], rounds: usize) -> String {
    let salt = &salt[..salt.len().min(SALT_LEN)];
    let b = sha512(&[pw, salt, pw]);
    let mut a = Sha512::new();
    a.update(pw);
    a.update(salt);
    let mut left = pw.len();
    while left > 64 {
        a.update(b);
        left -= 64;
    }
    a.update(&b[..left]);
    let mut bits = pw.len();
    while bits > 0 {
        a.update(if bits & 1 == 1 { &b[..] } else { pw });
        bits >>= 1;
    }
    let mut c: [u8; 64] = a.finalize().into();
    let p = stretch(&sha512(&vec![pw; pw.len()]), pw.len());
    let s = stretch(&sha512(&vec![salt; 16 + usize::from(c[0])]), salt.len());
    for i in 0..rounds {
        let mut h = Sha512::new();
        h.update(if i % 2 == 1 { &p[..] } else { &c[..] });
        if i % 3 != 0 {
            h.update(&s);
        }
        if i % 7 != 0 {
            h.update(&p);
        }
        h.update(if i % 2 == 1 { &c[..] } else { &p[..] });
        c = h.finalize().into();
    }
    format!("$6${}${}", String::from_utf8_lossy(salt), encode(&c))
}

/// The hash in crypt's base 64, bytes taken in SHA-512 crypt's order: groups of three
/// `(k, k+21, k+42)` rotated by the group's position, then the last byte alone.
fn encode(c: &[u8; 64]) -> String {
    let mut out = String::new();
    for k in 0..21 {
        let idx = [k, k + 21, k + 42];
        let r = k % 3;
        let (b2, b1, b0) = (idx[r], idx[(r + 1) % 3], idx[(r + 2) % 3]);
        let w = (u32::from(c[b2]) << 16) | (u32::from(c[b1]) << 8) | u32::from(c[b0]);
        push_b64(&mut out, w, 4);
    }
    push_b64(&mut out, u32::from(c[63]), 2);
    out
}

fn push_b64(out: &mut String, mut w: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(B64[(w & 63) as usize]));
        w >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha512_crypt_matches_the_reference_vectors() {
        // The specification's first vector, and two checked with `openssl passwd -6`
        // (a password longer than two SHA-512 blocks, a short salt).
        assert_eq!(
            sha512_crypt(b"Hello world!", b"saltstring", DEFAULT_ROUNDS),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        let long = b"we have a short salt string but not a short password";
        assert_eq!(
            sha512_crypt(long, b"short", DEFAULT_ROUNDS),
            "$6$short$qmfj2meTBr5G2EAGIJ4vjX7RpefsD4JzpEyTAeEUJdzdxlBS6pe8gdMHm5zFftaFSj/2p2bjBwyVS9ZhWpLZt."
        );
        assert_eq!(
            sha512_crypt(&[b'x'; 130], b"abcdefghijklmnop", DEFAULT_ROUNDS),
            "$6$abcdefghijklmnop$0RaDDxnDIdW3wUVFxZEKWndsiMV.U4ZJ0Bm1qKE0tJMr9x4SJYz.3PVJGJ52jrjaGNKV1.cVYMNOo14Wfasjt/"
        );
    }

    #[test]
    fn lock_and_unlock_follow_shadow_utils() {
        assert_eq!(lock("$6$x$y").as_deref(), Some("!$6$x$y"));
        assert_eq!(lock("!").as_deref(), Some("!"));
        assert_eq!(unlock("!$6$x$y").as_deref(), Some("$6$x$y"));
        assert_eq!(unlock("!"), None);
        assert_eq!(unlock("*").as_deref(), Some("*"));
    }
}
