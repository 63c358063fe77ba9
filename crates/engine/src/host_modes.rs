//! What a context entry's mode and name mean on any host, so that the same context gives
//! the same image digest on Linux, macOS and Windows.
//!
//! - A host with Unix modes (Linux, macOS) gives each entry its own mode, as BuildKit
//!   does.
//! - A host without them (Windows) gives a file the executable bit its author committed
//!   when the context is inside a git work tree (index mode 100755 → 0755, 100644 →
//!   0644), else 0644; a directory 0755; a symlink 0777 (what Linux reports for one).
//! - A case-insensitive host (probed, not assumed: macOS and Windows usually are) refuses
//!   to copy a path that the git index holds in two spellings differing only in case: the
//!   checkout kept one of them, so the image would differ from a Linux build.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::path::Path;

use cap_std::fs::Dir;

use crate::context::{ContextError, EntryKind};
use crate::git_index::{IndexEntry, WorkTree};

/// Git's mode for an executable file.
const GIT_EXECUTABLE: u32 = 0o100755;
/// Git's mode for a symlink (on a host without them, checked out as a file holding the
/// target).
pub(crate) const GIT_SYMLINK: u32 = 0o120000;

/// What kiln needs to know about the file system holding the context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostFs {
    /// Whether entries carry Unix permission bits.
    pub unix_modes: bool,
    /// Whether names differing only in case are one name.
    pub case_insensitive: bool,
}

impl HostFs {
    /// This host: Unix modes on Unix; case sensitivity probed in the context itself (a
    /// Linux host may mount a case-insensitive volume, a Mac may have a sensitive one).
    pub(crate) fn probe(dir: &Dir) -> Self {
        Self {
            unix_modes: cfg!(unix),
            case_insensitive: probe_case_insensitive(dir),
        }
    }
}

/// Whether `dir` finds one of its entries under another case of its name.
fn probe_case_insensitive(dir: &Dir) -> bool {
    let Ok(items) = dir.entries() else {
        return false;
    };
    let names: HashSet<String> = items
        .filter_map(Result::ok)
        .filter_map(|item| item.file_name().into_string().ok())
        .collect();
    names
        .iter()
        .map(|name| swap_ascii_case(name))
        .find(|swapped| !names.contains(swapped))
        .is_some_and(|swapped| dir.symlink_metadata(&swapped).is_ok())
}

fn swap_ascii_case(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Where the context's modes come from, and the paths it refuses on this host.
#[derive(Debug, Default)]
pub(crate) struct ContextRules {
    /// `None` on a host with Unix modes; else the git index's modes by context-relative
    /// path (empty outside a work tree).
    portable: Option<HashMap<String, u32>>,
    /// Lower-cased context-relative path → two spellings the index holds for it; filled
    /// only on a case-insensitive host.
    case_clashes: HashMap<String, (String, String)>,
}

impl ContextRules {
    /// The rules for the context at `path` on `host`. The git index is read only when the
    /// host lacks modes or is case-insensitive.
    pub(crate) fn read(path: &Path, host: HostFs) -> Result<Self, ContextError> {
        if host.unix_modes && !host.case_insensitive {
            return Ok(Self::default());
        }
        let tracked = tracked_modes(path)?;
        let case_clashes = if host.case_insensitive {
            case_clashes(tracked.keys())
        } else {
            HashMap::new()
        };
        let portable = (!host.unix_modes).then_some(tracked);
        Ok(Self {
            portable,
            case_clashes,
        })
    }

    /// The mode of the entry `rel` of `kind`, whose host metadata is `meta`.
    pub(crate) fn mode(&self, meta: &cap_std::fs::Metadata, kind: &EntryKind, rel: &str) -> u32 {
        match &self.portable {
            None => host_mode(meta).unwrap_or_else(|| portable_mode(kind, false)),
            Some(tracked) => {
                let executable = tracked.get(rel) == Some(&GIT_EXECUTABLE);
                portable_mode(kind, executable)
            }
        }
    }

    /// Whether `rel` is a symlink that this host checked out as a regular file holding its
    /// target (git's `core.symlinks=false`, Windows without the privilege to make links).
    pub(crate) fn is_checked_out_link(&self, rel: &str) -> bool {
        self.portable
            .as_ref()
            .is_some_and(|tracked| tracked.get(rel) == Some(&GIT_SYMLINK))
    }

    /// An error if `rel` is a path the index holds in two cases on a case-insensitive host.
    pub(crate) fn check_case(&self, rel: &str) -> Result<(), ContextError> {
        if self.case_clashes.is_empty() {
            return Ok(());
        }
        match self.case_clashes.get(&rel.to_lowercase()) {
            Some((a, b)) => Err(ContextError::CaseClash {
                first: a.clone(),
                second: b.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The entry's own permission bits where the host has them.
fn host_mode(meta: &cap_std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use cap_std::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The mode rule for a host without Unix modes.
fn portable_mode(kind: &EntryKind, executable: bool) -> u32 {
    match kind {
        EntryKind::Dir => 0o755,
        EntryKind::Symlink { .. } => 0o777,
        EntryKind::File { .. } if executable => 0o755,
        EntryKind::File { .. } => 0o644,
    }
}

/// The git modes of the tracked paths below the context (context-relative); none outside
/// a work tree.
fn tracked_modes(path: &Path) -> Result<HashMap<String, u32>, ContextError> {
    let canonical = path.canonicalize().map_err(|source| ContextError::Open {
        path: path.to_owned(),
        source,
    })?;
    let Some(tree) = WorkTree::containing(&canonical) else {
        return Ok(HashMap::new());
    };
    let entries = tree.entries().map_err(|source| ContextError::GitIndex {
        path: tree.index_path(),
        source,
    })?;
    let prefix = match canonical.strip_prefix(&tree.top) {
        Ok(rel) => rel_string(rel),
        Err(_) => return Ok(HashMap::new()),
    };
    Ok(below(entries, &prefix))
}

/// `rel` as a `/`-separated string (Windows separates with `\`).
fn rel_string(rel: &Path) -> String {
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// The entries below `prefix` (work-tree-relative), keyed relative to it. Paths that are
/// not UTF-8 are left out: the context walk refuses such names itself.
fn below(entries: Vec<IndexEntry>, prefix: &str) -> HashMap<String, u32> {
    entries
        .into_iter()
        .filter_map(|e| Some((String::from_utf8(e.path).ok()?, e.mode)))
        .filter_map(|(path, mode)| {
            if prefix.is_empty() {
                return Some((path, mode));
            }
            let rel = path.strip_prefix(prefix)?.strip_prefix('/')?;
            Some((rel.to_owned(), mode))
        })
        .collect()
}

/// Each lower-cased path or parent directory of `paths` that has two spellings.
fn case_clashes<'a>(paths: impl Iterator<Item = &'a String>) -> HashMap<String, (String, String)> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut clashes = HashMap::new();
    for path in paths {
        let ends = path.match_indices('/').map(|(i, _)| i).chain([path.len()]);
        for end in ends {
            let spelled = &path[..end];
            match seen.entry(spelled.to_lowercase()) {
                Slot::Vacant(slot) => {
                    slot.insert(spelled);
                }
                Slot::Occupied(slot) if *slot.get() != spelled => {
                    let mut pair = [slot.get().to_string(), spelled.to_owned()];
                    pair.sort();
                    let [first, second] = pair;
                    clashes.insert(slot.key().clone(), (first, second));
                }
                Slot::Occupied(_) => {}
            }
        }
    }
    clashes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git_index::tests::repo;

    #[test]
    fn portable_defaults_without_git() {
        let file = EntryKind::File { size: 1 };
        assert_eq!(portable_mode(&file, false), 0o644);
        assert_eq!(portable_mode(&file, true), 0o755);
        assert_eq!(portable_mode(&EntryKind::Dir, false), 0o755);
        assert_eq!(
            portable_mode(&EntryKind::Symlink { target: vec![] }, false),
            0o777
        );
    }

    #[test]
    fn tracked_modes_are_relative_to_a_context_below_the_work_tree() {
        let tree = repo(
            &[
                ("ctx/bin/tool", "x"),
                ("ctx/a.txt", "a"),
                ("outside.sh", "o"),
            ],
            &["ctx/bin/tool", "outside.sh"],
        );
        let p = tree.path();
        let modes = tracked_modes(&p.join("ctx")).unwrap();
        let mut got: Vec<_> = modes.into_iter().collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("a.txt".to_owned(), 0o100644),
                ("bin/tool".to_owned(), GIT_EXECUTABLE)
            ]
        );
    }

    #[test]
    fn clashes_cover_files_and_the_directories_above_them() {
        let paths = [
            "README".to_owned(),
            "readme".to_owned(),
            "Docs/a".to_owned(),
            "docs/b".to_owned(),
            "src/x".to_owned(),
        ];
        let clashes = case_clashes(paths.iter());
        assert_eq!(
            clashes.get("readme"),
            Some(&("README".to_owned(), "readme".to_owned()))
        );
        assert_eq!(
            clashes.get("docs"),
            Some(&("Docs".to_owned(), "docs".to_owned()))
        );
        assert_eq!(clashes.len(), 2, "{clashes:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_linux_temp_dir_probes_case_sensitive() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "").unwrap();
        let cap = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        assert!(!probe_case_insensitive(&cap));
    }
}
