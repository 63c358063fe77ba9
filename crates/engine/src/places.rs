//! Where kiln keeps things on the host: the build cache and the local image store.
//!
//! Both default to the user's platform directories (XDG on Linux, `~/Library` on macOS,
//! `%LOCALAPPDATA%` on Windows) and can be moved with `KILN_CACHE` / `KILN_STORE`.

use std::path::PathBuf;

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

/// Compiled wasm modules (machine code for the bundled tools and image programs): under
/// the cache, or `KILN_MODULE_CACHE` to share one between caches (kiln's own tests do).
/// It holds no image data, only code compiled from public modules.
pub fn module_cache_dir(cache: &std::path::Path) -> PathBuf {
    match std::env::var_os("KILN_MODULE_CACHE") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => cache.join("modules"),
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
