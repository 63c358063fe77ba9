//! The decompressors a `.deb` member or an apt index may need, all pure Rust so they
//! build for wasm32-wasip1: xz (lzma-rust2), zstd (ruzstd), gzip (flate2's Rust backend).

use std::io::{self, Read};

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// Memory an xz block's decoder may take: `xz -9` needs a 64 MiB dictionary, Debian
/// builds with `-6` (8 MiB); a hostile header asking for more is refused before any
/// allocation instead of exhausting the guest's memory.
pub const XZ_MEMORY_LIMIT_KIB: u32 = 96 * 1024;

impl Compression {
    /// The compression named by a file name's extension (`data.tar.xz`, `Packages.gz`);
    /// `None` for no known extension.
    pub fn from_extension(name: &str) -> Option<Compression> {
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("xz") => Some(Compression::Xz),
            Some("zst") => Some(Compression::Zstd),
            Some("gz") => Some(Compression::Gzip),
            _ => None,
        }
    }

    /// Wraps `reader` in this compression's decoder. zstd's window is bounded by
    /// ruzstd's default (128 MiB), which is what zstd itself accepts without `--long`.
    pub fn decoder<'a>(self, reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(reader),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
            Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
                reader,
                true,
                XZ_MEMORY_LIMIT_KIB,
            )),
            Compression::Zstd => Box::new(
                ruzstd::decoding::StreamingDecoder::new(reader)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?,
            ),
        })
    }
}
