//! Parse throughput over the test corpus: `cargo bench -p kiln-dockerfile`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

use std::time::Instant;

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    let iters = 2000;
    let mut total_bytes = 0usize;
    let start = Instant::now();
    for (name, text) in &files {
        let t = Instant::now();
        for _ in 0..iters {
            let df = kiln_dockerfile::parse(text, name).expect("corpus parses");
            std::hint::black_box(df);
        }
        let per = t.elapsed() / iters;
        total_bytes += text.len() * iters as usize;
        println!(
            "parse {name:32} {:>6} bytes  {per:>10.2?}/parse",
            text.len()
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!("total: {:.1} MB/s", total_bytes as f64 / secs / 1e6);
}
