//! Shell data is bytes; the interpreter keeps it in `String`s, with a lossless encoding
//! at the boundaries where bytes come in (`$(…)` output, `read`, script files, directory
//! names) and go out (builtin output, here-documents, paths, messages).
//!
//! Why an encoding and not a byte-string type: every expansion, pattern and builtin works
//! on `str`/`char`, and brush-parser's AST is `String`s; carrying bytes through all of
//! that would touch every line of the interpreter for the rare non-UTF-8 value. Instead
//! each byte that is not part of valid UTF-8 becomes one code point of a private-use
//! range (like Python's `surrogateescape`, which Rust's `char` cannot express): text
//! stays text, a stray byte is one character for `${#x}` and patterns, as in the C
//! locale. Code points of that range that were really in the input are escaped too (byte
//! by byte), so decoding is exact for any input: `to_bytes(from_bytes(b)) == b`.

use std::borrow::Cow;

/// First of the 256 code points standing for bytes 0x00-0xFF: the end of Supplementary
/// Private Use Area-B, which no real text assigns.
const BASE: u32 = 0x10_FF00;

/// The code point standing for byte `b`.
fn escape(b: u8) -> char {
    // BASE + 0..=255 stays within U+10FFFF, so this never fails.
    char::from_u32(BASE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The byte an escape code point stands for.
fn unescape(c: char) -> Option<u8> {
    u8::try_from(u32::from(c).checked_sub(BASE)?).ok()
}

/// Bytes from outside as a shell string (see the module docs).
pub(crate) fn from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        push_text(&mut out, chunk.valid());
        out.extend(chunk.invalid().iter().map(|&b| escape(b)));
    }
    out
}

/// A Rust string from outside (the script, the environment) as a shell string: only
/// characters of the escape range change (rare), so this usually borrows.
pub(crate) fn from_str(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| unescape(c).is_some()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    push_text(&mut out, s);
    Cow::Owned(out)
}

fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        if unescape(c).is_some() {
            let mut buf = [0u8; 4];
            out.extend(c.encode_utf8(&mut buf).bytes().map(escape));
        } else {
            out.push(c);
        }
    }
}

/// A shell string's bytes as they go out: escape code points become their bytes.
pub(crate) fn to_bytes(s: &str) -> Cow<'_, [u8]> {
    encoded_to_bytes(s.as_bytes())
}

/// [`to_bytes`] for the UTF-8 bytes of a shell string (builtin output built with
/// `format!`). The escape range is encoded as `F4 8F BC..BF 80..BF`, which valid UTF-8
/// uses for nothing else.
pub(crate) fn encoded_to_bytes(b: &[u8]) -> Cow<'_, [u8]> {
    if !b.contains(&0xF4) {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let [0xF4, 0x8F, hi @ 0xBC..=0xBF, lo @ 0x80..=0xBF, ..] = b[i..] {
            out.push(((hi - 0xBC) << 6) | (lo & 0x3F));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// The shell string for one byte value (`printf '\377'`, `$'\xff'`): ASCII as itself,
/// anything else as the escape of that byte.
pub(crate) fn byte_char(b: u8) -> char {
    if b.is_ascii() {
        char::from(b)
    } else {
        escape(b)
    }
}

/// Each character of a shell string with the offset of its first byte in the bytes it
/// came from (for `read`, which records escapes by input offset).
pub(crate) fn char_offsets(s: &str) -> Vec<(char, usize)> {
    let mut at = 0;
    s.chars()
        .map(|c| {
            let start = at;
            at += if unescape(c).is_some() {
                1
            } else {
                c.len_utf8()
            };
            (c, start)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_bytes() {
        let cases: &[&[u8]] = &[
            b"plain",
            b"\xffTOKEN\xfe\x80",
            "caf\u{e9} \u{10FF80} \u{10FFFF}".as_bytes(),
            b"\xf4\x8f\xbe\x80",
            b"\xc3",
            b"",
        ];
        for b in cases {
            let s = from_bytes(b);
            assert_eq!(&*to_bytes(&s), *b, "{s:?}");
        }
        for n in 0..=255u8 {
            assert_eq!(&*to_bytes(&from_bytes(&[n, b'x', n])), [n, b'x', n]);
        }
    }

    #[test]
    fn text_stays_text_and_stray_bytes_are_one_char() {
        assert_eq!(from_bytes("é".as_bytes()), "é");
        assert_eq!(from_bytes(b"\xffA").chars().count(), 2);
        assert_eq!(from_str("abc"), Cow::Borrowed("abc"));
        let s = from_str("\u{10FF41}");
        assert_eq!(&*to_bytes(&s), "\u{10FF41}".as_bytes());
        assert_eq!(&*to_bytes(&byte_char(0xff).to_string()), b"\xff");
    }

    #[test]
    fn offsets_follow_input_bytes() {
        let s = from_bytes(b"a\xffb\xc3\xa9c");
        let offs: Vec<usize> = char_offsets(&s).iter().map(|p| p.1).collect();
        assert_eq!(offs, [0, 1, 2, 3, 5]);
    }
}
