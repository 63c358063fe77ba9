//! The large build context of scenario 3: 10,000 files, 200 MB, generated from a fixed
//! seed so every run (and every machine) copies the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

pub(crate) const DIRS: u32 = 100;
pub(crate) const FILES_PER_DIR: u32 = 100;
/// Mean file size; sizes are spread uniformly over `MEAN/2 ..= 3*MEAN/2`.
pub(crate) const MEAN_SIZE: u64 = 20_000;

pub(crate) struct Stats {
    pub dirs: u32,
    pub files: u32,
    pub bytes: u64,
}

/// xorshift64*: fast, seedable, and good enough to defeat compressors' long matches.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Write the context under `dir` (created; existing files are overwritten).
pub(crate) fn generate(dir: &Path) -> Result<Stats> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stats = Stats {
        dirs: DIRS,
        files: 0,
        bytes: 0,
    };
    let mut buf = Vec::with_capacity(2 * MEAN_SIZE as usize);
    for d in 0..DIRS {
        let sub = dir.join(format!("d{d:03}"));
        std::fs::create_dir_all(&sub).with_context(|| format!("creating {}", sub.display()))?;
        for f in 0..FILES_PER_DIR {
            let size = MEAN_SIZE / 2 + rng.next() % (MEAN_SIZE + 1);
            buf.clear();
            // Hex text: 4 bits of entropy per byte, so gzip/zstd get roughly 2:1 as on
            // typical source trees, without long repeats that would flatter them.
            while (buf.len() as u64) < size {
                let mut x = rng.next();
                for _ in 0..16 {
                    buf.push(HEX[(x & 15) as usize]);
                    x >>= 4;
                }
            }
            buf.truncate(size as usize);
            let path = sub.join(format!("f{f:03}.txt"));
            let mut w = BufWriter::new(
                File::create(&path).with_context(|| format!("creating {}", path.display()))?,
            );
            w.write_all(&buf)?;
            w.flush()?;
            stats.files += 1;
            stats.bytes += size;
        }
    }
    Ok(stats)
}

/// Tar `dir` into `out` (the bytes the references read); returns the tar's size.
pub(crate) fn tar_dir(dir: &Path, out: &Path) -> Result<u64> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    tar.append_dir_all("data", dir)?;
    tar.into_inner()?.flush()?;
    Ok(std::fs::metadata(out)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spreads() {
        let mut a = Rng(1);
        let mut b = Rng(1);
        let xs: Vec<u64> = (0..4).map(|_| a.next()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next()).collect();
        assert_eq!(xs, ys);
        assert!(xs.windows(2).all(|w| w[0] != w[1]));
    }
}
