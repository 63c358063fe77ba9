//! Byte-path helpers. Paths are bytes (a guest may use any non-NUL bytes in names).

/// An absolute path as its components; the root is the empty list.
pub(crate) type MountPath = Vec<Vec<u8>>;

/// Components of an absolute, lexically normalised path; `None` if relative or if it
/// contains `..` (mount targets must be plain paths).
pub(crate) fn split_absolute(path: &[u8]) -> Option<MountPath> {
    if path.first() != Some(&b'/') || path.contains(&0) {
        return None;
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => out.push(c.to_vec()),
        }
    }
    Some(out)
}

/// `/a/b` from components.
pub(crate) fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    if comps.is_empty() {
        return b"/".to_vec();
    }
    let mut out = Vec::new();
    for c in comps {
        out.push(b'/');
        out.extend_from_slice(c);
    }
    out
}

/// A stable inode number for nodes that have none of their own (virtual directories,
/// host files): FNV-1a of the path, so listings are the same on every host.
pub(crate) fn path_ino(comps: &[Vec<u8>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in comps {
        for &b in c.iter().chain(std::iter::once(&b'/')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h | 1 << 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_relative_and_dotdot() {
        assert_eq!(
            split_absolute(b"/a//b/./c/"),
            Some(vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        );
        assert_eq!(split_absolute(b"/"), Some(vec![]));
        assert_eq!(split_absolute(b"a/b"), None);
        assert_eq!(split_absolute(b"/a/../b"), None);
        assert_eq!(join(&split_absolute(b"/x/y").unwrap()), b"/x/y");
    }
}
