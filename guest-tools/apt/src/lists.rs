//! `/var/lib/apt/lists`: where indexes live and what apt names them, so a later apt (or
//! `rm -rf /var/lib/apt/lists/*`) sees exactly what it would after its own update.

use std::path::{Path, PathBuf};

use crate::sources::Source;

/// The lists directory, relative to the image root.
pub const LISTS_DIR: &str = "var/lib/apt/lists";

/// The lists directory of the image under `root`.
pub fn dir(root: &Path) -> PathBuf {
    root.join(LISTS_DIR)
}

/// apt's `URItoFileName`: the URI without scheme and credentials, the characters apt
/// quotes written as `%xx`, then every `/` turned into `_`.
pub fn file_name(url: &str) -> String {
    // `scheme://host/path` has an authority; `file:/path` (no `//`) has only a path.
    let (rest, has_host) = match url.split_once("://") {
        Some((_, r)) => (r, true),
        None => (url.split_once(':').map_or(url, |(_, r)| r), false),
    };
    let host_end = if has_host {
        rest.find('/').unwrap_or(rest.len())
    } else {
        0
    };
    let (authority, path) = rest.split_at(host_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut out = String::new();
    for b in host.bytes().chain(path.bytes()) {
        if needs_quoting(b) {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(if b == b'/' { '_' } else { char::from(b) });
        }
    }
    out
}

/// apt's QuoteString set for file names, plus controls, space, `%` and non-ASCII.
fn needs_quoting(b: u8) -> bool {
    b <= 0x20 || b >= 0x7f || b"\\|{}[]<>\"^~_=!@#$%&*".contains(&b)
}

/// Where a source's signed Release files are: `<uri>dists/<suite>/` or, for a flat
/// repository, `<uri><suite>`.
pub fn dist_url(src: &Source) -> String {
    if src.suite.ends_with('/') {
        format!("{}{}", src.uri, src.suite)
    } else {
        format!("{}dists/{}/", src.uri, src.suite)
    }
}

/// The path of a component's binary Packages index inside `dists/<suite>/`.
pub fn packages_path(component: &str, arch: &str) -> String {
    if component.is_empty() {
        "Packages".to_string()
    } else {
        format!("{component}/binary-{arch}/Packages")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_apts() {
        assert_eq!(
            file_name("http://127.0.0.1:8080/debian/dists/bookworm/InRelease"),
            "127.0.0.1:8080_debian_dists_bookworm_InRelease"
        );
        assert_eq!(
            file_name("http://deb.debian.org/debian/dists/bookworm/main/binary-amd64/Packages"),
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
        );
        // A file: URI has no host: the name is its path.
        assert_eq!(
            file_name("file:/srv/repo/dists/x/InRelease"),
            "_srv_repo_dists_x_InRelease"
        );
        // Credentials never reach a file name; apt's quoted characters are %xx.
        assert_eq!(
            file_name("https://user:pw@h/a_b/~c/dists/x/InRelease"),
            "h_a%5fb_%7ec_dists_x_InRelease"
        );
    }
}
