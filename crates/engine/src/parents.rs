//! `COPY --parents`: a source keeps its path below a pivot. As BuildKit, a source is split
//! at its first `/./` into the directory paths are kept from (the pivot; the context or
//! stage root without one) and a pattern below it (`*`, `?`, `[...]`, `**`); what the
//! pattern matches is copied with every directory between the pivot and it, so
//! `COPY --parents a/./b/c /out/` gives `/out/b/c`, and `COPY --parents a/b/c /out/`
//! gives `/out/a/b/c`.

use std::collections::HashSet;

use globset::GlobMatcher;

use crate::context::{
    ContextError, Entry, clean_rel, compile_glob, has_glob_meta, matches_self_or_parent,
};

/// One `--parents` source, split and compiled.
pub(crate) struct ParentsSpec {
    /// The pivot: context- or root-relative, cleaned; may itself be a pattern.
    pub(crate) base: String,
    /// The components of the pattern before its first wildcard: the walk starts there.
    pub(crate) prefix: String,
    /// The pattern, relative to the pivot; `None` selects everything below it.
    matcher: Option<GlobMatcher>,
    /// A source without wildcards names a path that must exist (BuildKit's required
    /// paths); a pattern may match nothing.
    pub(crate) required: bool,
}

impl ParentsSpec {
    pub(crate) fn parse(source: &str) -> Result<Self, ContextError> {
        let (base, pattern) = source.split_once("/./").unwrap_or(("", source));
        let outside = || ContextError::Outside(source.to_owned());
        let base = clean_rel(base).ok_or_else(outside)?;
        let pattern = clean_rel(pattern).ok_or_else(outside)?;
        let matcher = (!pattern.is_empty())
            .then(|| compile_glob(&pattern))
            .transpose()
            .map_err(|why| ContextError::BadPattern {
                pattern: source.to_owned(),
                why,
            })?;
        let prefix: Vec<&str> = pattern
            .split('/')
            .take_while(|c| !has_glob_meta(c))
            .collect();
        Ok(Self {
            required: !has_glob_meta(&base) && !has_glob_meta(&pattern),
            prefix: prefix.join("/"),
            base,
            matcher,
        })
    }

    /// Whether `rel` (relative to the pivot) is copied: it, or a directory above it,
    /// matches (a matched directory is copied whole).
    fn selects(&self, rel: &str) -> bool {
        self.matcher
            .as_ref()
            .is_none_or(|m| matches_self_or_parent(m, rel))
    }

    /// What to copy of `walked` (entries below the pivot `base`, in walk order): the
    /// selected entries and every directory between the pivot and them.
    pub(crate) fn select(&self, base: &str, walked: Vec<Entry>) -> Vec<Entry> {
        fn inner<'r>(rel: &'r str, base: &str) -> &'r str {
            rel[base.len().min(rel.len())..].trim_start_matches('/')
        }
        let mut keep: HashSet<String> = HashSet::new();
        for entry in walked.iter().filter(|e| self.selects(inner(&e.rel, base))) {
            let mut path = entry.rel.as_str();
            // The entry and its parents up to (not including) the pivot.
            while path.len() > base.len() && keep.insert(path.to_owned()) {
                path = path.rfind('/').map_or("", |i| &path[..i]);
            }
        }
        walked
            .into_iter()
            .filter(|e| keep.contains(&e.rel))
            .collect()
    }
}

/// `rel` joined below `base` (both context- or root-relative, `""` for the root).
pub(crate) fn join_rel(base: &str, rel: &str) -> String {
    match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_owned(),
        (_, true) => base.to_owned(),
        _ => format!("{base}/{rel}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::EntryKind;

    fn entries(rels: &[&str]) -> Vec<Entry> {
        rels.iter()
            .map(|r| Entry {
                rel: (*r).to_owned(),
                kind: EntryKind::Dir,
                mode: 0o755,
                owner: (0, 0),
            })
            .collect()
    }

    fn chosen(source: &str, base: &str, walked: &[&str]) -> Vec<String> {
        let spec = ParentsSpec::parse(source).unwrap();
        spec.select(base, entries(walked))
            .into_iter()
            .map(|e| e.rel)
            .collect()
    }

    #[test]
    fn the_pivot_splits_at_the_first_dot_component() {
        let s = ParentsSpec::parse("/test/a/./b/./c").unwrap();
        assert_eq!((s.base.as_str(), s.prefix.as_str()), ("test/a", "b/c"));
        assert!(s.required);
        let s = ParentsSpec::parse("test/a/b*/./c/**/e").unwrap();
        assert_eq!((s.base.as_str(), s.prefix.as_str()), ("test/a/b*", "c"));
        assert!(!s.required);
        let s = ParentsSpec::parse("/test/a/b/c/d/.").unwrap();
        assert_eq!((s.base.as_str(), s.prefix.as_str()), ("", "test/a/b/c/d"));
        assert!(matches!(
            ParentsSpec::parse("../x"),
            Err(ContextError::Outside(_))
        ));
    }

    #[test]
    fn matches_come_with_their_parents_and_their_contents() {
        let walked = [
            "a",
            "a/b",
            "a/b/c",
            "a/b/c/d",
            "a/b/c/d/e",
            "a/b/c/d/foo",
            "a/b2",
            "a/b2/c",
        ];
        assert_eq!(
            chosen("a/b/c/d", "", &walked),
            ["a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e", "a/b/c/d/foo"]
        );
        // Below the pivot `a`, `*/c` selects both c directories.
        assert_eq!(
            chosen("a/./*/c", "a", &walked),
            [
                "a/b",
                "a/b/c",
                "a/b/c/d",
                "a/b/c/d/e",
                "a/b/c/d/foo",
                "a/b2",
                "a/b2/c"
            ]
        );
        assert_eq!(
            chosen("a/./**/foo", "a", &walked),
            ["a/b", "a/b/c", "a/b/c/d", "a/b/c/d/foo"]
        );
        assert!(chosen("a/./nope*", "a", &walked).is_empty());
    }
}
