//! Throughput of the paths a build leans on: inode operations (what a WASI host
//! calls), streaming files into the tree, freezing, and layer tar out and in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::io::{self, Read};
use std::time::Instant;

use kiln_fs::{Follow, Snapshot, Store, Timestamp, Tree, write_snapshot};

fn per_op(label: &str, n: u64, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let el = start.elapsed();
    println!(
        "{label:<46} {:>9.3} us/op  ({n} ops, {:.1} ms)",
        el.as_secs_f64() * 1e6 / n as f64,
        el.as_secs_f64() * 1e3
    );
}

fn rate(label: &str, bytes: u64, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    let el = start.elapsed().as_secs_f64();
    println!(
        "{label:<46} {:>9.1} MB/s   ({:.1} MB in {:.1} ms)",
        bytes as f64 / el / 1e6,
        bytes as f64 / 1e6,
        el * 1e3
    );
}

/// Deterministic pseudo-random bytes (so blobs are not all identical).
struct Noise(u64, u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1 as usize);
        for b in &mut buf[..n] {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
        self.1 -= n as u64;
        Ok(n)
    }
}

fn main() {
    let store = Store::temp().expect("store");
    let mut t = Tree::new(&store);
    t.set_clock(Timestamp::from_secs(1));
    let root = t.root();

    let files = 20_000u64;
    let dirs: Vec<_> = (0..100)
        .map(|i| {
            t.mkdir(root, format!("d{i:03}").as_bytes(), 0o755, 0, 0)
                .expect("mkdir")
        })
        .collect();
    per_op("create_file + 100-byte write_at", files, || {
        for i in 0..files {
            let d = dirs[(i % 100) as usize];
            let f = t
                .create_file(d, format!("f{i:06}").as_bytes(), 0o644, 0, 0)
                .expect("create");
            t.write_at(f, 0, &[b'x'; 100]).expect("write");
        }
    });
    per_op("resolve /dNNN/fNNNNNN", files, || {
        for i in 0..files {
            let p = format!("/d{:03}/f{i:06}", i % 100);
            std::hint::black_box(t.resolve(root, p.as_bytes(), Follow::Yes).expect("resolve"));
        }
    });
    let f = t
        .resolve(root, b"/d000/f000000", Follow::Yes)
        .expect("resolve");
    per_op("metadata", 100_000, || {
        for _ in 0..100_000 {
            std::hint::black_box(t.metadata(f).expect("stat"));
        }
    });
    per_op("readdir of a 200-entry directory", 1_000, || {
        for _ in 0..1_000 {
            std::hint::black_box(t.readdir(dirs[0]).expect("readdir"));
        }
    });

    let big = 8u64 << 20;
    let count = 8;
    let bigdir = t.mkdir(root, b"big", 0o755, 0, 0).expect("mkdir");
    rate("write_from (streamed into the store)", big * count, || {
        for i in 0..count {
            let f = t
                .create_file(bigdir, format!("b{i}").as_bytes(), 0o644, 0, 0)
                .expect("create");
            t.write_from(f, Noise(i + 1, big)).expect("write_from");
        }
    });
    let b0 = t.resolve(root, b"/big/b0", Follow::Yes).expect("resolve");
    let mut buf = vec![0u8; 64 * 1024];
    rate("read_at 64 KiB chunks of a blob", big, || {
        let mut off = 0;
        while off < big {
            off += t.read_at(b0, off, &mut buf).expect("read") as u64;
        }
    });

    let mut snap = Snapshot::empty(&store);
    per_op(
        "snapshot (freeze) of the new tree, per node",
        files + 100,
        || {
            snap = t.snapshot().expect("snapshot");
        },
    );
    per_op("snapshot id of the new tree, per node", files + 100, || {
        std::hint::black_box(snap.id());
    });
    let total = files * 100 + big * count;
    let mut tar = Vec::new();
    rate("write_snapshot (tar out, contents bytes)", total, || {
        tar = write_snapshot(&snap, 0, Vec::new()).expect("tar out");
    });
    rate("apply_layer (tar in, contents bytes)", total, || {
        let mut t2 = Tree::new(&store);
        t2.apply_layer(tar.as_slice()).expect("tar in");
        std::hint::black_box(t2.snapshot().expect("snapshot"));
    });
}
