//! kiln-apt: the client side of apt, as a library the `apt-get`/`apt` kiln tools use.
//!
//! What it is: reading `sources.list` (one-line and deb822 `.sources`), loading the
//! keyrings the image trusts, verifying `InRelease` / `Release` + `Release.gpg` with a
//! pure-Rust OpenPGP implementation, parsing Release files, downloading package indexes
//! (bounded, checked against the Release's SHA256 and size) into `/var/lib/apt/lists`
//! with apt's own file names, and loading them back as a table of candidate packages.
//! C's resolver, install plan and archive download live beside these modules.
//!
//! What it is not: it never talks to the network itself (a [`fetch::Transport`] does:
//! `kiln_abi::http` in a guest, anything in tests), runs no maintainer scripts and
//! touches no dpkg state (that is `kiln-deb`). Everything Debian-specific stays in this
//! crate and `kiln-deb`, so Alpine's apk can get its own crates beside them.

pub mod archives;
mod error;
pub mod fetch;
pub mod index;
pub mod keyring;
pub mod lists;
pub mod plan;
pub mod release;
pub mod resolve;
pub mod sources;
pub mod update;

pub use error::{Error, Result};
