//! kiln-deb's .deb reader against dpkg-deb: packages it builds with each compression,
//! and every real package of the test mirror.

mod common;

use std::process::Command;

use kiln_deb::archive::{DataEntry, DebFile, EntryKind, normalize};

/// An entry as `dpkg-deb -c` lists it, without the date: type+mode, owner, size, path.
fn listing(e: &DataEntry) -> String {
    let (kind, suffix) = match &e.kind {
        EntryKind::File => ('-', String::new()),
        EntryKind::Directory => ('d', String::new()),
        EntryKind::Symlink { target } => ('l', format!(" -> {target}")),
        EntryKind::HardLink { target } => ('h', format!(" link to {target}")),
        EntryKind::CharDevice { .. } => ('c', String::new()),
        EntryKind::BlockDevice { .. } => ('b', String::new()),
        EntryKind::Fifo => ('p', String::new()),
    };
    let owner = format!(
        "{}/{}",
        e.user.as_deref().unwrap_or("?"),
        e.group.as_deref().unwrap_or("?")
    );
    let size = if matches!(e.kind, EntryKind::File) {
        e.size
    } else {
        0
    };
    format!(
        "{kind}{} {owner} {size} {}{suffix}",
        mode_string(e.mode),
        e.path
    )
}

fn mode_string(mode: u32) -> String {
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .iter()
    .collect()
}

/// `dpkg-deb -c` output in [`listing`]'s form (date and time columns dropped, paths
/// normalised).
fn dpkg_listing(deb: &std::path::Path) -> Vec<String> {
    let out = common::run(Command::new("dpkg-deb").arg("-c").arg(deb));
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().take(5).collect();
            let rest = after_fields(line, 5);
            let (path, suffix) = match rest
                .split_once(" -> ")
                .or_else(|| rest.split_once(" link to "))
            {
                Some((p, t)) if rest.contains(" link to ") => {
                    (p, format!(" link to {}", normalize(t).unwrap()))
                }
                Some((p, t)) => (p, format!(" -> {t}")),
                None => (rest, String::new()),
            };
            let size = cols[2].parse::<u64>().unwrap();
            format!(
                "{} {} {size} {}{suffix}",
                cols[0],
                cols[1],
                normalize(path).unwrap()
            )
        })
        .collect()
}

/// What follows the first `n` blank-separated fields of `line`.
fn after_fields(line: &str, n: usize) -> &str {
    let mut rest = line;
    for _ in 0..n {
        rest = rest.trim_start();
        rest = &rest[rest.find(' ').unwrap_or(rest.len())..];
    }
    rest.trim_start()
}

fn kiln_listing(deb: &DebFile) -> Vec<String> {
    let mut lines = Vec::new();
    deb.data_entries(&mut |e, _| {
        lines.push(listing(e));
        Ok(())
    })
    .unwrap();
    lines
}

#[test]
fn reads_every_compression_dpkg_deb_writes() {
    for compression in ["xz", "zstd", "gzip", "none"] {
        let dir = tempfile::tempdir().unwrap();
        let path = common::build_test_deb(dir.path(), compression);
        let deb = DebFile::open(&path).unwrap();
        let control = deb.control().unwrap();
        assert_eq!(control.get("Package"), Some("test-pkg"), "{compression}");
        assert_eq!(
            control.get("description"),
            Some("a test package\n with two lines")
        );
        let files = deb.control_files().unwrap();
        let names: Vec<_> = files.iter().map(|f| (f.name.as_str(), f.mode)).collect();
        assert!(names.contains(&("postinst", 0o755)), "{names:?}");
        assert!(names.contains(&("conffiles", 0o644)), "{names:?}");
        assert_eq!(kiln_listing(&deb), dpkg_listing(&path), "{compression}");
    }
}

#[test]
fn file_contents_stream_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let deb = DebFile::open(&common::build_test_deb(dir.path(), "xz")).unwrap();
    let mut conf = String::new();
    deb.data_entries(&mut |e, r| {
        if e.path == "/etc/test-pkg.conf" {
            r.read_to_string(&mut conf).unwrap();
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(conf, "setting=1\n");
}

#[test]
fn matches_dpkg_deb_on_every_mirror_package() {
    let Some(debs) = common::mirror_debs("amd64") else {
        return;
    };
    assert!(debs.len() > 50, "{} packages", debs.len());
    for path in &debs {
        let deb = DebFile::open(path).unwrap_or_else(|e| panic!("{e}"));
        let control = deb.control().unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            name.starts_with(&format!("{}_", control.get("Package").unwrap())),
            "{name}"
        );
        assert_eq!(kiln_listing(&deb), dpkg_listing(path), "{name}");
    }
}

#[test]
fn rejects_what_is_not_a_deb() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        ("empty", b"", "too short"),
        ("text", b"hello world, not an archive", "bad magic"),
        (
            "truncated",
            b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n",
            "missing control.tar",
        ),
        (
            "badheader",
            b"!<arch>\ndebian-binary   0           0     0     100644  x         `\n",
            "bad size",
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = DebFile::open(&path).unwrap_err().to_string();
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// An ar archive of `members`, as dpkg-deb writes one.
fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, data) in members {
        let header = format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            0,
            0,
            0,
            100644,
            data.len()
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        if data.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

/// A tar with one file whose raw name is `name` (written past the tar crate's checks).
fn tar_with(name: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_size(4);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"evil"[..]).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn hostile_archives_end_in_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let control = {
        let text = b"Package: evil\nVersion: 1\nArchitecture: all\n";
        let mut header = tar::Header::new_gnu();
        header.set_path("./control").unwrap();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &text[..]).unwrap();
        builder.into_inner().unwrap()
    };
    let deb = |name: &str, data: Vec<u8>| {
        let path = dir.path().join(name);
        let members = [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar", control.clone()),
            ("data.tar", data),
        ];
        std::fs::write(&path, ar(&members)).unwrap();
        DebFile::open(&path).unwrap()
    };
    let escape = deb("escape.deb", tar_with(b"./usr/../../etc/evil"));
    assert_eq!(escape.control().unwrap().get("Package"), Some("evil"));
    let err = escape
        .data_entries(&mut |_, _| Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsafe path './usr/../../etc/evil'"), "{err}");
    let garbage = deb(
        "garbage.deb",
        b"not a tar at all, but long enough to be read as a header".repeat(20),
    );
    assert!(garbage.data_entries(&mut |_, _| Ok(())).is_err());
    let many: Vec<(&str, Vec<u8>)> = (0..20).map(|_| ("_extra", Vec::new())).collect();
    std::fs::write(dir.path().join("many.deb"), ar(&many)).unwrap();
    let err = DebFile::open(&dir.path().join("many.deb"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 16 ar members"), "{err}");
    let bz2 = dir.path().join("bz2.deb");
    let members = [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.bz2", Vec::new()),
        ("data.tar", Vec::new()),
    ];
    std::fs::write(&bz2, ar(&members)).unwrap();
    let err = DebFile::open(&bz2).unwrap_err().to_string();
    assert!(
        err.contains("control.tar.bz2 compression is not supported"),
        "{err}"
    );
}
