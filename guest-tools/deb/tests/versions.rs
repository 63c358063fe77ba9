//! kiln-deb's version ordering against a table made with dpkg itself
//! (tests/data/dpkg-compare-versions.txt: every ordered pair of 42 versions).

use std::cmp::Ordering;

use kiln_deb::version::Version;

#[test]
fn ordering_matches_dpkg_compare_versions() {
    let table = include_str!("data/dpkg-compare-versions.txt");
    let mut checked = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let [a, op, b] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("bad table line {line:?}");
        };
        let want = match op {
            "lt" => Ordering::Less,
            "eq" => Ordering::Equal,
            "gt" => Ordering::Greater,
            _ => panic!("bad op in {line:?}"),
        };
        let (va, vb): (Version, Version) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(va.cmp(&vb), want, "{a} vs {b}");
        assert_eq!(va == vb, want == Ordering::Equal, "{a} == {b}");
        checked += 1;
    }
    assert_eq!(checked, 42 * 42);
}

#[test]
fn parts_and_display() {
    let v: Version = "2:1.0~rc1-1+b1".parse().unwrap();
    assert_eq!(
        (v.epoch, v.upstream.as_str(), v.revision.as_str()),
        (2, "1.0~rc1", "1+b1")
    );
    assert_eq!(v.to_string(), "2:1.0~rc1-1+b1");
    let v: Version = "0:1.2-3-4".parse().unwrap();
    assert_eq!((v.upstream.as_str(), v.revision.as_str()), ("1.2-3", "4"));
    assert_eq!(v.to_string(), "1.2-3-4");
}

#[test]
fn rejects_what_dpkg_rejects() {
    for (bad, reason) in [
        ("", "version string is empty"),
        ("1.0 2", "version string has embedded spaces"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch in version is empty"),
        ("1a:1.0", "epoch in version is not number"),
        ("-1:1.0", "epoch in version is negative"),
        ("99999999999:1", "epoch in version is too big"),
        ("1.0-", "revision number is empty"),
        ("-1", "version number is empty"),
    ] {
        let err = bad.parse::<Version>().unwrap_err().to_string();
        assert!(err.contains(reason), "{bad:?}: {err}");
    }
}
