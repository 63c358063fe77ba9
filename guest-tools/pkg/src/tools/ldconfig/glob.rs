//! The `include` globs of `ld.so.conf` (glob(3) without flags: matches sorted in C
//! collation, `*` and `?` never match a leading `.`), expanded inside the root.

use std::fs;

use super::root::Root;

/// Names a glob may expand to: a hostile `include /*/*/*` must not list the whole tree.
const MAX_MATCHES: usize = 4096;

/// The existing files (inside the root) `pattern` names, sorted.
pub(super) fn expand(root: &Root, pattern: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for dir in &found {
            if has_magic(part) {
                next.extend(
                    matching(root, dir, part)
                        .into_iter()
                        .map(|n| format!("{dir}/{n}")),
                );
            } else {
                next.push(format!("{dir}/{part}"));
            }
            if next.len() > MAX_MATCHES {
                next.truncate(MAX_MATCHES);
                break;
            }
        }
        found = next;
    }
    found.retain(|f| root.canon(f).is_ok_and(|real| fs::metadata(real).is_ok()));
    found
}

fn has_magic(part: &str) -> bool {
    part.contains(['*', '?', '['])
}

/// The names in `dir` matching `part`, sorted.
fn matching(root: &Root, dir: &str, part: &str) -> Vec<String> {
    let real = match root.canon(if dir.is_empty() { "/" } else { dir }) {
        Ok(real) => real,
        Err(_) => return Vec::new(),
    };
    let Ok(list) = fs::read_dir(real) else {
        return Vec::new();
    };
    let mut names: Vec<String> = list
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.') || part.starts_with('.'))
        .filter(|n| kiln_tools::glob::matches(part.as_bytes(), n.as_bytes()))
        .collect();
    names.sort();
    names
}
