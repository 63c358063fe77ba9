//! Where kiln keeps things on the host: the build cache and the local image store.
//!
//! Both default to the user's platform directories (XDG on Linux, `~/Library` on macOS,
//! `%LOCALAPPDATA%` on Windows) and can be moved with `KILN_CACHE` / `KILN_STORE`.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot find a {what} directory for this user; set {var}")]
pub struct NoHome {
    what: &'static str,
    var: &'static str,
}

/// The build cache: step records, layer blobs, the file content store and compiled
/// modules. Safe to delete at any time (`kiln prune`).
pub fn cache_dir() -> Result<PathBuf, NoHome> {
    from_env_or(
        "KILN_CACHE",
        dirs::cache_dir().map(|d| d.join("kiln")),
        "cache",
    )
}

/// The local image store: an OCI image layout holding the images `kiln build` tagged.
pub fn store_dir() -> Result<PathBuf, NoHome> {
    from_env_or(
        "KILN_STORE",
        dirs::data_dir().map(|d| d.join("kiln").join("images")),
        "data",
    )
}

/// What lives where inside a cache directory: each sub-path is named here and nowhere
/// else, so a sweep, a prune and a build cannot disagree about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheLayout {
    root: PathBuf,
}

impl CacheLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Step records, `<key>.json`, each written atomically.
    pub fn steps(&self) -> PathBuf {
        self.root.join("steps")
    }

    /// The OCI layout holding every layer blob and image the builds produced.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The file content store (`kiln_fs::Store`).
    pub fn files(&self) -> PathBuf {
        self.root.join("files")
    }

    /// Base images' filesystems, one encoded snapshot per chain of base layers, MAC'd
    /// (see `base_cache`).
    pub fn bases(&self) -> PathBuf {
        self.root.join("bases")
    }

    /// Saved `RUN --mount=type=cache` trees, one tar per id.
    pub fn mounts(&self) -> PathBuf {
        self.root.join("mounts")
    }

    /// The private key of keyed secret digests and of the MACs of base records (32 random
    /// bytes, 0600, never exported).
    pub fn secret_key(&self) -> PathBuf {
        self.root.join("secret-key")
    }

    /// Held shared by builds and `kiln run`, exclusively by `kiln prune` and the sweep.
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Compiled wasm modules (machine code for the bundled tools and image programs):
    /// `modules/` here, or `KILN_MODULE_CACHE` to share one between caches (kiln's own
    /// tests do). It holds no image data, only code compiled from public modules.
    pub fn modules(&self) -> PathBuf {
        match std::env::var_os("KILN_MODULE_CACHE") {
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => self.root.join("modules"),
        }
    }
}

fn from_env_or(
    var: &'static str,
    default: Option<PathBuf>,
    what: &'static str,
) -> Result<PathBuf, NoHome> {
    match std::env::var_os(var) {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => default.ok_or(NoHome { what, var }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cache_path_is_a_distinct_child_of_the_root() {
        let layout = CacheLayout::new("/c");
        let paths = [
            layout.steps(),
            layout.blobs(),
            layout.files(),
            layout.mounts(),
            layout.secret_key(),
            layout.lock(),
        ];
        let names: std::collections::BTreeSet<_> = paths
            .iter()
            .map(|p| {
                assert_eq!(p.parent(), Some(layout.root()), "{}", p.display());
                p.file_name().unwrap().to_owned()
            })
            .collect();
        assert_eq!(names.len(), paths.len());
        // The names are what ARCHITECTURE.md documents and earlier caches hold.
        assert_eq!(layout.steps(), Path::new("/c/steps"));
        assert_eq!(layout.secret_key(), Path::new("/c/secret-key"));
    }

    #[test]
    fn an_empty_variable_is_no_override() {
        assert_eq!(
            from_env_or("KILN_TEST_SURELY_UNSET_VAR", Some("/d".into()), "cache").unwrap(),
            Path::new("/d")
        );
        let err = from_env_or("KILN_TEST_SURELY_UNSET_VAR", None, "cache").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot find a cache directory for this user; set KILN_TEST_SURELY_UNSET_VAR"
        );
    }
}
