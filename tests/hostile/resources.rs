//! Hostile inputs: resources. Archives and files built to exhaust the host's memory or
//! disk, measured through the real binary.

use std::io::{Read, Write};

use crate::support::*;

/// A tar.gz of `files` files of 64 KiB each (the largest size kept inline in a tree):
/// tiny compressed, `files` x 64 KiB once unpacked.
fn small_file_bomb(files: usize) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let body = vec![b'z'; 64 << 10];
    for i in 0..files {
        let mut h = tar::Header::new_ustar();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("f/{i:05}"), &body[..])
            .expect("tar entry");
    }
    let mut gz = tar.into_inner().expect("tar");
    gz.flush().expect("flush");
    gz.finish().expect("gzip")
}

/// Files in the bomb: 2,500 x 64 KiB = 156 MiB unpacked, about 0.8 MB packed. Small
/// enough to stay quick (the layer is still gzipped), large enough to pass the budget.
const BOMB_FILES: usize = 2500;
/// What kiln may take for it: the tree's 64 MiB inline budget plus the process's own
/// footprint (measured: 145 MB peak, the same as for 6,000 files). With every file
/// inline the peak was 276 MB.
const BOMB_RSS_LIMIT_KIB: u64 = 200 << 10;

#[test]
fn many_small_files_from_add_stay_within_the_inline_budget() {
    let ws = Workspace::new();
    ws.write("bomb.tar.gz", small_file_bomb(BOMB_FILES));
    ws.write("Dockerfile", "FROM scratch\nADD bomb.tar.gz /d/\n");
    let (out, peak_kib) = run_measured(
        ws.kiln()
            .args(["build", "--progress", "plain"])
            .arg(ws.context()),
    );
    assert_ok(&out);
    eprintln!("peak RSS for {BOMB_FILES} x 64 KiB files: {peak_kib} KiB");
    assert!(
        peak_kib < BOMB_RSS_LIMIT_KIB,
        "peak RSS {peak_kib} KiB for {BOMB_FILES} small files"
    );
}

#[test]
fn a_terabyte_sparse_file_hits_the_disk_quota_not_the_disk() {
    let ws = Workspace::new();
    ws.write("Dockerfile", "FROM scratch\nRUN truncate -s 1T /big\n");
    let out = ws.build(&[]);
    assert_fails_with(&out, "disk quota of 10737418240 bytes");
    // Refused before anything was stored: the cache holds no large file.
    let largest = all_files(&ws.cache())
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    assert!(largest < 64 << 20, "a {largest}-byte file was written");
}

#[test]
fn tmpfs_writes_share_the_step_disk_quota() {
    let ws = Workspace::new();
    // 3 MB into a tmpfs and 3 MB into the tree: each alone fits a 4 MB quota, together
    // they do not.
    ws.write(
        "Dockerfile",
        "FROM scratch\n\
         RUN --mount=type=tmpfs,target=/t head -c 3000000 /dev/zero > /t/x \
         && head -c 3000000 /dev/zero > /y\n",
    );
    let out = ws.build(&["--disk-quota", "4000000"]);
    assert_fails_with(&out, "disk quota of 4000000 bytes");
}

#[test]
fn add_and_copy_obey_the_disk_quota_flag() {
    // `--disk-quota` bounded RUN steps only: a gzip of 64 MiB of zeros (64 KB packed, a
    // 1000:1 bomb) unpacked by ADD past a 1 MiB quota, as did a plain COPY.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_ustar();
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "zeros", std::io::repeat(0).take(64 << 20))
        .expect("tar entry");
    let bomb = tar.into_inner().expect("tar").finish().expect("gzip");
    let ws = Workspace::new();
    ws.write("bomb.tar.gz", bomb);
    ws.write("big", vec![7u8; 2 << 20]);
    for step in ["ADD bomb.tar.gz /b/", "COPY big /big"] {
        ws.write("Dockerfile", format!("FROM scratch\n{step}\n"));
        let out = ws.build(&["--disk-quota", "1m"]);
        assert_fails_with(&out, "disk quota of 1048576 bytes for one step exceeded");
        assert_ok(&ws.build(&[]));
    }
}

/// A tar holding `mid`, a GNU sparse file of 1 MiB whose only data is `HELLO` at 500,000,
/// and a regular file `after`.
fn sparse_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path("mid").expect("path");
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(5);
    let gnu = h.as_gnu_mut().expect("gnu header");
    gnu.sparse[0].set_offset(500_000);
    gnu.sparse[0].set_length(5);
    // The trailing hole, as GNU tar writes it: an empty chunk at the end.
    gnu.sparse[1].set_offset(1 << 20);
    gnu.sparse[1].set_length(0);
    gnu.set_real_size(1 << 20);
    h.set_cksum();
    tar.append(&h, &b"HELLO"[..]).expect("sparse entry");
    let mut h = tar::Header::new_ustar();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "after", &b"after\n"[..])
        .expect("tar entry");
    tar.into_inner().expect("tar")
}

#[test]
fn add_unpacks_gnu_sparse_files_instead_of_dropping_them() {
    // ADD skipped a GNU sparse entry (type `S`) as an unknown type: the file was silently
    // missing from the image. BuildKit (Go's archive/tar) extracts it.
    let ws = Workspace::new();
    ws.write("s.tar", sparse_tar());
    ws.write(
        "Dockerfile",
        "FROM scratch\nADD s.tar /t/\nRUN head -c 500005 /t/mid | tail -c 5; echo; wc -c < /t/mid; cat /t/after\n",
    );
    let out = ws.build(&[]);
    assert_ok(&out);
    let log = text(&out.stdout) + &text(&out.stderr);
    for expected in ["HELLO", "1048576", "after"] {
        assert!(log.contains(expected), "{expected} missing: {log}");
    }
}

/// A megabyte-long instruction line: the build's log shows at most
/// MAX_SHOWN_LINE_CHARS of it wherever it is echoed (the step's progress line, the
/// error's excerpt, a parse error, a check report), not the megabyte.
#[test]
fn a_megabyte_line_is_clipped_in_progress_errors_and_checks() {
    let filler = "a".repeat(1 << 20);
    for (dockerfile, extra) in [
        (format!("FROM scratch\nRUN false #{filler}\n"), &[][..]),
        (
            format!("FROM scratch\nRUN --mount=type=bogus{filler} true\n"),
            &[][..],
        ),
        (
            format!("FROM scratch\nrun true #{filler}\n"),
            &["--check"][..],
        ),
    ] {
        let ws = Workspace::new();
        ws.write("Dockerfile", &dockerfile);
        let out = ws.build(extra);
        let log = [text(&out.stdout), text(&out.stderr)].concat();
        assert!(
            log.len() < 64 << 10,
            "{} bytes of log for {extra:?}",
            log.len()
        );
        assert!(log.contains("aaaa…"), "{extra:?}: {log}");
    }
}
