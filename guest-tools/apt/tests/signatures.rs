//! Release signatures checked with Debian's real archive keys and a real InRelease.

use std::fs;
use std::path::{Path, PathBuf};

use kiln_apt::keyring::Keyring;
use kiln_apt::release::{self, Release};
use kiln_apt::sources::SignedBy;

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// An image root whose /etc/apt/trusted.gpg.d holds the named fixture keys.
fn root_with_keys(name: &str, keys: &[&str]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("kiln-apt-sig-{name}-{}", std::process::id()));
    let dir = root.join("etc/apt/trusted.gpg.d");
    fs::create_dir_all(&dir).unwrap();
    for key in keys {
        fs::write(dir.join(key), fixture(key)).unwrap();
    }
    root
}

const URI: &str = "http://deb.debian.org/debian/";

#[test]
fn debians_inrelease_verifies_with_debians_keys() {
    let root = root_with_keys("good", &["debian-archive-bookworm-automatic.asc"]);
    let ring = Keyring::for_source(&root, &SignedBy::Trusted).unwrap();
    let text = release::verify_inrelease(
        &fixture("debian-bookworm-updates-InRelease"),
        &ring,
        URI,
        "bookworm-updates",
    )
    .unwrap();
    let r = Release::parse(&text, "InRelease").unwrap();
    assert_eq!(r.codename.as_deref(), Some("bookworm-updates"));
    assert!(r.acquire_by_hash);
    assert!(r.entry("main/binary-amd64/Packages.xz").is_some());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_key_is_no_pubkey_with_apts_key_id() {
    let root = root_with_keys("nokey", &[]);
    let ring = Keyring::for_source(&root, &SignedBy::Trusted).unwrap();
    let err = release::verify_inrelease(
        &fixture("debian-bookworm-updates-InRelease"),
        &ring,
        URI,
        "bookworm-updates",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 6ED0E7B82643E131"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn an_edited_inrelease_is_badsig() {
    let root = root_with_keys(
        "bad",
        &[
            "debian-archive-bookworm-automatic.asc",
            "debian-archive-trixie-automatic.asc",
        ],
    );
    let ring = Keyring::for_source(&root, &SignedBy::Trusted).unwrap();
    let data = String::from_utf8(fixture("debian-bookworm-updates-InRelease")).unwrap();
    let edited = data.replacen("Origin: Debian", "Origin: Debiam", 1);
    let err =
        release::verify_inrelease(edited.as_bytes(), &ring, URI, "bookworm-updates").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("The following signatures were invalid: BADSIG "),
        "{err}"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn signed_by_fingerprint_selects_one_trusted_key() {
    let root = root_with_keys(
        "fpr",
        &[
            "debian-archive-bookworm-automatic.asc",
            "debian-archive-trixie-automatic.asc",
        ],
    );
    let data = fixture("debian-bookworm-updates-InRelease");
    // The trixie key alone, named by its primary fingerprint or its signing subkey's (with or
    // without `!`: the host's apt 2.6 accepts all three), verifies its own signature of
    // the same file, made by that subkey.
    for fpr in [
        "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
        "B8E5F13176D2A7A75220028078DBA3BC47EF2265!",
        "B8E5F13176D2A7A75220028078DBA3BC47EF2265",
    ] {
        let ring = Keyring::for_source(&root, &SignedBy::Fingerprints(vec![fpr.into()])).unwrap();
        assert!(
            release::verify_inrelease(&data, &ring, URI, "bookworm-updates").is_ok(),
            "{fpr}"
        );
    }
    let other = SignedBy::Fingerprints(vec!["0000000000000000000000000000000000000000".into()]);
    let ring = Keyring::for_source(&root, &other).unwrap();
    assert!(ring.is_empty());
    assert!(release::verify_inrelease(&data, &ring, URI, "bookworm-updates").is_err());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn signed_by_a_missing_file_warns_and_trusts_nothing() {
    let root = root_with_keys("missing", &["debian-archive-bookworm-automatic.asc"]);
    let by = SignedBy::Files(vec![PathBuf::from("/usr/share/keyrings/none.gpg")]);
    let ring = Keyring::for_source(&root, &by).unwrap();
    assert!(ring.is_empty());
    assert!(
        ring.warnings[0].contains("/usr/share/keyrings/none.gpg"),
        "{:?}",
        ring.warnings
    );
    fs::remove_dir_all(root).unwrap();
}
