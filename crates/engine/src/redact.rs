//! Secret redaction for everything kiln prints, and the leak scanner for what it writes.
//!
//! Step output arrives in arbitrary chunks, so a secret may be split across two writes.
//! [`Redactor`] holds back the shortest tail that could still grow into a secret and
//! releases it only once it is known not to be one.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use zeroize::Zeroizing;

use crate::secrets::{SecretId, Secrets};

/// The secrets are too large to search for (the automaton's size limit).
#[derive(Debug, thiserror::Error)]
#[error("cannot index the build secrets for redaction: {0}")]
pub struct PatternError(#[source] aho_corasick::BuildError);

/// What a redacted secret is replaced with.
pub(crate) const MASK: &[u8] = b"****";

/// The secrets' values as one automaton, shared by redactors and leak scanners.
/// Deliberately not `Debug`: it holds the values.
#[derive(Clone)]
pub struct SecretPatterns {
    automaton: Option<AhoCorasick>,
    ids: Vec<SecretId>,
    values: Vec<Zeroizing<Vec<u8>>>,
    /// Each value's prefix function (KMP), so the held-back tail of a stream is found in
    /// time linear in the values' length, not quadratic.
    prefixes: Vec<Zeroizing<Vec<usize>>>,
}

impl SecretPatterns {
    /// Patterns for redaction: every non-empty secret value.
    pub fn for_redaction(secrets: &Secrets) -> Result<Self, PatternError> {
        Self::build(secrets, 1)
    }

    /// Patterns for the leak guard: values of at least 8 bytes (shorter ones would match by
    /// chance in ordinary files).
    pub fn for_leak_guard(secrets: &Secrets) -> Result<Self, PatternError> {
        Self::build(secrets, 8)
    }

    fn build(secrets: &Secrets, min_len: usize) -> Result<Self, PatternError> {
        let mut ids = Vec::new();
        let mut values: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for (id, value) in secrets.iter() {
            for candidate in variants(value.expose()) {
                if candidate.len() >= min_len && !values.iter().any(|v| v[..] == candidate[..]) {
                    ids.push(id.clone());
                    values.push(candidate);
                }
            }
        }
        let automaton = if values.is_empty() {
            None
        } else {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                // A DFA of a large value (a key file) takes seconds to build; the NFA
                // builds in linear time and the prefilter keeps searches fast.
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(values.iter().map(|v| &v[..]))
                .map_err(PatternError)?;
            Some(ac)
        };
        let prefixes = values
            .iter()
            .map(|v| Zeroizing::new(prefix_function(v)))
            .collect();
        Ok(Self {
            automaton,
            ids,
            values,
            prefixes,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    fn max_len(&self) -> usize {
        self.values.iter().map(|v| v.len()).max().unwrap_or(0)
    }

    /// Replaces every whole occurrence of a secret in `data`.
    pub fn redact(&self, data: &[u8]) -> Vec<u8> {
        match &self.automaton {
            None => data.to_vec(),
            Some(ac) => {
                let mut out = Vec::with_capacity(data.len());
                ac.replace_all_with_bytes(data, &mut out, |_, _, dst| {
                    dst.extend_from_slice(MASK);
                    true
                });
                out
            }
        }
    }

    /// Redacts a message (an error or a log line) given as text.
    pub fn redact_str(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact(text.as_bytes())).into_owned()
    }

    /// Length of the longest suffix of `data` that is a proper prefix of some secret:
    /// one KMP pass per value over the last `len - 1` bytes (trying every suffix length
    /// against every value would be quadratic in the value's length, per write).
    fn partial_suffix(&self, data: &[u8]) -> usize {
        self.values
            .iter()
            .zip(&self.prefixes)
            .map(|(v, pi)| suffix_prefix(data, v, pi))
            .max()
            .unwrap_or(0)
    }

    /// Where a stream may be cut so that no secret can be split: before the longest tail
    /// that may still grow into a secret, and never inside a complete match.
    fn safe_cut(&self, data: &[u8]) -> usize {
        let cut = data.len() - self.partial_suffix(data);
        let straddling = self.automaton.as_ref().and_then(|ac| {
            ac.find_iter(data)
                .find(|m| m.start() < cut && m.end() > cut)
        });
        match straddling {
            Some(m) => m.start(),
            None => cut,
        }
    }
}

/// The byte strings a value may show up as. Matching is always on bytes; besides the value
/// itself: without a trailing newline (a file written by `echo`; tools often strip it),
/// and, for a value that is not UTF-8, its lossy UTF-8 form (what any text path, such as
/// a `env=` secret variable or an error message, turns it into), so the invalid bytes
/// replaced by U+FFFD cannot carry the rest of the value past the redactor or the guard.
fn variants(bytes: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let trimmed = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut out = Vec::with_capacity(4);
    for v in [bytes, trimmed] {
        out.push(Zeroizing::new(v.to_vec()));
        if std::str::from_utf8(v).is_err() {
            let lossy = String::from_utf8_lossy(v).into_owned().into_bytes();
            out.push(Zeroizing::new(lossy));
        }
    }
    out
}

/// KMP prefix function: `pi[i]` is the length of the longest proper prefix of
/// `v[..=i]` that is also its suffix.
fn prefix_function(v: &[u8]) -> Vec<usize> {
    let mut pi = vec![0; v.len()];
    let mut k = 0;
    for i in 1..v.len() {
        while k > 0 && v[i] != v[k] {
            k = pi[k - 1];
        }
        if v[i] == v[k] {
            k += 1;
        }
        pi[i] = k;
    }
    pi
}

/// Length of the longest suffix of `data` that is a proper prefix of `v` (KMP over the
/// last `v.len() - 1` bytes of `data`, which is as long as such a suffix can be).
fn suffix_prefix(data: &[u8], v: &[u8], pi: &[usize]) -> usize {
    let start = data.len().saturating_sub(v.len().saturating_sub(1));
    let mut q = 0;
    for &b in &data[start..] {
        while q > 0 && (q == v.len() || v[q] != b) {
            q = pi[q - 1];
        }
        if q < v.len() && v[q] == b {
            q += 1;
        }
    }
    q
}

/// Streaming redaction of one output stream.
pub(crate) struct Redactor {
    patterns: SecretPatterns,
    pending: Zeroizing<Vec<u8>>,
}

impl Redactor {
    pub(crate) fn new(patterns: SecretPatterns) -> Self {
        Self {
            patterns,
            pending: Zeroizing::new(Vec::new()),
        }
    }

    /// Feeds a chunk; returns the bytes that are now safe to show.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let cut = self.patterns.safe_cut(&self.pending);
        let out = self.patterns.redact(&self.pending[..cut]);
        self.pending.drain(..cut);
        out
    }

    /// The stream ended: release what was held back.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let out = self.patterns.redact(&self.pending);
        self.pending.clear();
        out
    }
}

/// A secret found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub secret: SecretId,
}

impl SecretPatterns {
    /// The first secret that occurs in `data`, if any.
    pub fn find(&self, data: &[u8]) -> Option<Leak> {
        let m = self.automaton.as_ref()?.find(data)?;
        Some(Leak {
            secret: self.ids[m.pattern().as_usize()].clone(),
        })
    }

    /// Scans a stream in bounded memory, carrying an overlap between chunks so a value that
    /// straddles two reads is still found.
    pub fn find_in_reader(&self, mut reader: impl std::io::Read) -> std::io::Result<Option<Leak>> {
        if self.is_empty() {
            std::io::copy(&mut reader, &mut std::io::sink())?;
            return Ok(None);
        }
        let overlap = self.max_len().saturating_sub(1);
        let mut window = Vec::with_capacity(64 * 1024 + overlap);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = reader.read(&mut buf)?;
            if n == 0 {
                return Ok(self.find(&window));
            }
            window.extend_from_slice(&buf[..n]);
            if let Some(leak) = self.find(&window) {
                // Drain the rest so a tee'd writer upstream still sees the whole stream.
                std::io::copy(&mut reader, &mut std::io::sink())?;
                return Ok(Some(leak));
            }
            let keep = overlap.min(window.len());
            window.drain(..window.len() - keep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretValue;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let mut s = Secrets::default();
        for (id, v) in pairs {
            s.insert(
                SecretId::new(*id).unwrap(),
                SecretValue::new(v.as_bytes().to_vec()),
            );
        }
        s
    }

    fn redact_chunks(s: &Secrets, chunks: &[&str]) -> String {
        let mut r = Redactor::new(SecretPatterns::for_redaction(s).unwrap());
        let mut out = Vec::new();
        for c in chunks {
            out.extend(r.push(c.as_bytes()));
        }
        out.extend(r.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn redacts_whole_values() {
        let s = secrets(&[("a", "s3cr3t-token")]);
        assert_eq!(
            redact_chunks(&s, &["x s3cr3t-token y\n"]),
            "x **** y\n".to_owned()
        );
    }

    #[test]
    fn redacts_values_split_across_every_boundary() {
        let s = secrets(&[("a", "s3cr3t-token"), ("b", "password")]);
        let text = "user password and s3cr3t-token end";
        for i in 0..text.len() {
            for j in i..text.len() {
                let out = redact_chunks(&s, &[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(out, "user **** and **** end", "split at {i},{j}");
            }
        }
    }

    #[test]
    fn a_match_is_never_cut_by_a_longer_candidate() {
        let s = secrets(&[("a", "abcd"), ("b", "cdXY")]);
        assert_eq!(redact_chunks(&s, &["abcd", "ZZ"]), "****ZZ");
        assert_eq!(redact_chunks(&s, &["ab", "cdXY"]), "****XY");
    }

    #[test]
    fn one_byte_at_a_time() {
        let s = secrets(&[("a", "abcabd")]);
        let text = "abcabcabd!";
        let chunks: Vec<String> = text.chars().map(|c| c.to_string()).collect();
        let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
        assert_eq!(redact_chunks(&s, &refs), "abc****!");
    }

    #[test]
    fn holds_nothing_back_without_a_possible_match() {
        let s = secrets(&[("a", "zzzzzzzz")]);
        let mut r = Redactor::new(SecretPatterns::for_redaction(&s).unwrap());
        assert_eq!(r.push(b"hello"), b"hello");
        assert_eq!(r.push(b" zz"), b" ");
        assert_eq!(r.finish(), b"zz");
    }

    #[test]
    fn held_back_tail_matches_the_naive_definition() {
        let values: [&[u8]; 4] = [b"abcabd", b"aaaa", b"abab", b"xyz"];
        let naive = |data: &[u8], v: &[u8]| {
            (1..v.len().min(data.len() + 1))
                .rev()
                .find(|&n| v.starts_with(&data[data.len() - n..]))
                .unwrap_or(0)
        };
        for v in values {
            let pi = prefix_function(v);
            for data in [
                &b"zzabcab"[..],
                b"aaa",
                b"ababab",
                b"abaxy",
                b"",
                b"abcabcab",
            ] {
                assert_eq!(
                    suffix_prefix(data, v, &pi),
                    naive(data, v),
                    "{data:?} {v:?}"
                );
            }
        }
    }

    /// A large value (a certificate, a key file) and output whose every write ends in a
    /// near-miss of it: the held-back tail must be found in time linear in the value's
    /// length. Trying each suffix length against the value costs ~len²/4 per write here
    /// (16 G byte comparisons over this test, many seconds); KMP costs ~len.
    #[test]
    fn held_back_tail_costs_linear_time_in_the_value() {
        let value = b"ab".repeat(8192);
        let mut s = Secrets::default();
        s.insert(SecretId::new("big").unwrap(), SecretValue::new(value));
        let patterns = SecretPatterns::for_redaction(&s).unwrap();
        let mut chunk = b"ab".repeat(2000);
        chunk.extend_from_slice(b"aa");
        let mut r = Redactor::new(patterns);
        let started = std::time::Instant::now();
        let mut out = 0;
        for _ in 0..256 {
            out += r.push(&chunk).len();
        }
        out += r.finish().len();
        assert_eq!(out, 256 * chunk.len());
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    }

    #[test]
    fn trailing_newline_variant_is_redacted() {
        let s = secrets(&[("netrc", "machine h login admin password pw\n")]);
        let out = redact_chunks(&s, &["cat: machine h login admin password pw"]);
        assert_eq!(out, "cat: ****");
    }

    #[test]
    fn leak_guard_ignores_short_values_and_finds_straddling_ones() {
        let s = secrets(&[("short", "abc"), ("long", "0123456789abcdef")]);
        let p = SecretPatterns::for_leak_guard(&s).unwrap();
        assert_eq!(p.find(b"xxabcxx"), None);
        let mut data = vec![b'.'; 200_000];
        data[65_530..65_546].copy_from_slice(b"0123456789abcdef");
        let leak = p.find_in_reader(&data[..]).unwrap().unwrap();
        assert_eq!(leak.secret.as_str(), "long");
        assert_eq!(p.find_in_reader(&[b'.'; 70_000][..]).unwrap(), None);
    }
}
