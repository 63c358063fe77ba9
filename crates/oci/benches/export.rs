//! Export throughput: a layer tar stream through kiln's `LayerWriter` (gzip, zstd) next to
//! `gzip -6` and `zstd -3 -T0` on the same bytes. Size: `KILN_BENCH_MB` (default 500).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use kiln_oci::{Compression, LayerWriter, Layout};

/// xorshift64*: deterministic, fast, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const WORDS: &[&str] = &[
    "the", "image", "layer", "build", "kiln", "error", "return", "struct", "impl", "fn", "let",
    "mut", "0x1f", "config", "digest", "sha256", "usr", "lib", "bin", "share",
];

/// Semi-compressible file content: a mix of random bytes (binaries, compressed assets),
/// word soup (text, source) and runs (padding, zeroed tables).
fn fill(rng: &mut Rng, out: &mut Vec<u8>, len: usize) {
    out.clear();
    while out.len() < len {
        let kind = rng.next() % 10;
        let n = 512 + (rng.next() % 4096) as usize;
        match kind {
            0..=2 => (0..n / 8).for_each(|_| out.extend(rng.next().to_le_bytes())),
            3..=8 => {
                let end = out.len() + n;
                while out.len() < end {
                    let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
                    out.extend(w.as_bytes());
                    out.push(if rng.next().is_multiple_of(9) {
                        b'\n'
                    } else {
                        b' '
                    });
                }
            }
            _ => out.extend(std::iter::repeat_n((rng.next() % 4) as u8, n)),
        }
    }
    out.truncate(len);
}

fn make_tar(path: &std::path::Path, total: u64) {
    let mut b = tar::Builder::new(BufWriter::new(File::create(path).unwrap()));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    let mut written = 0u64;
    let mut i = 0;
    while written < total {
        let size = (4096 + rng.next() % (4 << 20)).min(total - written) as usize;
        fill(&mut rng, &mut buf, size);
        let mut h = tar::Header::new_ustar();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("data/{:03}/file{i}", i % 97), &buf[..])
            .unwrap();
        written += size as u64;
        i += 1;
    }
    b.into_inner().unwrap().flush().unwrap();
}

fn kiln(layout: &Layout, tar: &std::path::Path, c: Compression) -> (f64, u64) {
    let start = Instant::now();
    let mut f = File::open(tar).unwrap();
    let mut w = LayerWriter::new(layout, c).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).unwrap();
    }
    let layer = w.finish().unwrap();
    (start.elapsed().as_secs_f64(), layer.descriptor.size())
}

fn tool(script: &str) -> Option<(f64, u64)> {
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return None;
    }
    let size = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((secs, size))
}

fn main() {
    let mb: u64 = std::env::var("KILN_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("layer.tar");
    make_tar(&tar, mb << 20);
    let bytes = std::fs::metadata(&tar).unwrap().len();
    let layout = Layout::open_or_create(dir.path().join("layout")).unwrap();
    let t = tar.display();
    // Tools write a file and fsync it, as kiln does for every blob, so the rows compare
    // the same work.
    let out = dir.path().join("tool.out");
    let o = out.display();
    println!(
        "export benchmark: {:.0} MB layer tar, {} cores",
        bytes as f64 / 1e6,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let rows = [
        (
            "gzip",
            Compression::Gzip,
            format!("cat {t} | gzip -6 > {o} && sync {o} && wc -c < {o}"),
        ),
        (
            "zstd",
            Compression::Zstd,
            format!("zstd -3 -T0 -q -c {t} > {o} && sync {o} && wc -c < {o}"),
        ),
        // No compression: kiln hashes twice and writes the blob; the tool hashes and copies.
        (
            "none",
            Compression::None,
            format!("sha256sum {t} >/dev/null && cp {t} {o} && sync {o} && wc -c < {o}"),
        ),
    ];
    for (name, c, script) in rows {
        let (ks, ksize) = kiln(&layout, &tar, c);
        let mbps = |s: f64| bytes as f64 / 1e6 / s;
        print!(
            "{name:5} kiln {ks:6.2}s {:7.1} MB/s ratio {:.2}",
            mbps(ks),
            bytes as f64 / ksize as f64
        );
        match tool(&script) {
            Some((ts, tsize)) => println!(
                " | tool {ts:6.2}s {:7.1} MB/s ratio {:.2} | kiln/tool time {:.2}",
                mbps(ts),
                bytes as f64 / tsize as f64,
                ks / ts
            ),
            None => println!(" | tool not available"),
        }
    }
}
