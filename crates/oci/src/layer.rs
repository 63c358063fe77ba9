//! Layer blobs: compressing a layer tar stream into a layout (digest and diff_id in one
//! pass), and opening a stored layer decompressed for the filesystem crate's import.

use std::io::{self, BufRead, BufReader, Read, Write};

use oci_spec::image::{Descriptor, MediaType};

use crate::digest::{DigestAlgorithm, Hasher, VerifyingReader};
use crate::error::{OciError, Result};
use crate::layout::{BlobWriter, Layout};
use crate::pgzip::ParGzEncoder;
use crate::{Digest, digest::unwrap_io};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// gzip level 6 with a fixed header (mtime 0, no name, OS byte 255): what every
    /// registry and runtime accepts. Compressed in parallel, deterministically (see
    /// `pgzip`).
    #[default]
    Gzip,
    /// zstd level 3, multi-threaded. Output is identical for any worker count >= 1, so
    /// the digest does not depend on the host's core count.
    Zstd,
    /// Uncompressed tar (digest == diff_id).
    None,
}

impl Compression {
    /// The OCI layer media type for this compression.
    pub fn media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
            Compression::None => MediaType::ImageLayer,
        }
    }

    /// The compression a layer media type (OCI or Docker) declares, if it is a layer type.
    pub fn from_media_type(media_type: &MediaType) -> Option<Compression> {
        let mt = media_type.as_ref();
        if !is_layer_media_type(mt) {
            return None;
        }
        Some(if mt.ends_with("gzip") {
            Compression::Gzip
        } else if mt.ends_with("zstd") {
            Compression::Zstd
        } else {
            Compression::None
        })
    }
}

fn is_layer_media_type(mt: &str) -> bool {
    mt.starts_with("application/vnd.oci.image.layer.")
        || mt.starts_with("application/vnd.docker.image.rootfs.")
}

/// A layer stored in a layout: the manifest descriptor of the (compressed) blob and the
/// `diff_id` (digest of the uncompressed tar) that goes into the config's rootfs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

const GZIP_LEVEL: u32 = 6;
const ZSTD_LEVEL: i32 = 3;

enum Encoder {
    Gzip(ParGzEncoder<BlobWriter>),
    Zstd(zstd::Encoder<'static, BlobWriter>),
    None(BlobWriter),
}

/// Receives an uncompressed layer tar stream (`impl Write`) and stores the compressed blob
/// in a layout. Memory use is bounded by the compressor's window, whatever the layer size.
pub struct LayerWriter {
    encoder: Encoder,
    compression: Compression,
    diff_hasher: Hasher,
}

impl LayerWriter {
    pub fn new(layout: &Layout, compression: Compression) -> Result<LayerWriter> {
        let blob = layout.blob_writer()?;
        let encoder = match compression {
            Compression::Gzip => Encoder::Gzip(
                ParGzEncoder::new(blob, GZIP_LEVEL, worker_threads() as usize)
                    .map_err(|e| OciError::stream("starting gzip", e))?,
            ),
            Compression::Zstd => {
                let mut enc = zstd::Encoder::new(blob, ZSTD_LEVEL)
                    .map_err(|e| OciError::stream("starting zstd", e))?;
                enc.multithread(worker_threads())
                    .map_err(|e| OciError::stream("enabling zstd threads", e))?;
                Encoder::Zstd(enc)
            }
            Compression::None => Encoder::None(blob),
        };
        Ok(LayerWriter {
            encoder,
            compression,
            diff_hasher: Hasher::new(DigestAlgorithm::Sha256),
        })
    }

    /// Finish compression and commit the blob. Dropping the writer instead discards it.
    pub fn finish(self) -> Result<Layer> {
        let blob = match self.encoder {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(b) => Ok(b),
        }
        .map_err(|e| OciError::stream("finishing layer compression", e))?;
        let (digest, size) = blob.commit()?;
        Ok(Layer {
            descriptor: Descriptor::new(self.compression.media_type(), size, digest.to_oci()),
            diff_id: self.diff_hasher.finish(),
        })
    }
}

/// Compression threads: the host's parallelism, asked once per process (std reads the
/// cgroup files on every call, which showed in every small layer's cost).
fn worker_threads() -> u32 {
    static THREADS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *THREADS
        .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(8) as u32))
}

impl Write for LayerWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.encoder {
            Encoder::Gzip(e) => e.write(buf)?,
            Encoder::Zstd(e) => e.write(buf)?,
            Encoder::None(b) => b.write(buf)?,
        };
        self.diff_hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(b) => b.flush(),
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Wrap a (compressed) layer blob reader so it yields the uncompressed tar stream.
///
/// The media type decides; the content's magic bytes must agree with it, so a blob whose
/// media type lies gets a clear error instead of a confusing tar failure later. An
/// uncompressed layer type whose content is actually gzip/zstd (seen in the wild, e.g.
/// old docker-archive exports) is decompressed according to its magic.
pub fn decompress_layer<R: Read + Send + 'static>(
    reader: R,
    media_type: &MediaType,
    what: &str,
) -> Result<Box<dyn Read + Send>> {
    let declared =
        Compression::from_media_type(media_type).ok_or_else(|| OciError::UnsupportedMediaType {
            what: what.to_owned(),
            media_type: media_type.to_string(),
        })?;
    let mut reader = BufReader::with_capacity(128 << 10, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| unwrap_io(&format!("reading {what}"), e))?;
    let sniffed = if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::None
    };
    if declared != Compression::None && declared != sniffed {
        return Err(OciError::invalid(
            what,
            format!("media type {media_type} does not match the content ({sniffed:?} data)"),
        ));
    }
    Ok(match sniffed {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::Decoder::with_buffer(reader)
                .map_err(|e| OciError::stream(format!("starting zstd for {what}"), e))?,
        ),
        Compression::None => Box::new(reader),
    })
}

/// [`decompress_layer`] plus a check, at end of stream, that the uncompressed tar hashes
/// to `diff_id`.
pub fn verified_layer_reader<R: Read + Send + 'static>(
    reader: R,
    media_type: &MediaType,
    diff_id: &Digest,
    what: &str,
) -> Result<VerifyingReader<Box<dyn Read + Send>>> {
    let inner = decompress_layer(reader, media_type, what)?;
    Ok(VerifyingReader::new(
        inner,
        diff_id.clone(),
        None,
        format!("{what} (uncompressed, diff_id)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(c: Compression) -> (Layer, Layout, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::open_or_create(dir.path()).unwrap();
        let mut w = LayerWriter::new(&layout, c).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        w.write_all(&data).unwrap();
        let layer = w.finish().unwrap();
        assert_eq!(layer.diff_id, Digest::sha256_of(&data));
        let d = Digest::from_oci(layer.descriptor.digest()).unwrap();
        let blob = layout.open_blob(&d).unwrap();
        let mut out = Vec::new();
        verified_layer_reader(blob, layer.descriptor.media_type(), &layer.diff_id, "l")
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        (layer, layout, dir)
    }

    #[test]
    fn all_compressions_roundtrip_and_are_deterministic() {
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let (a, _l1, _d1) = roundtrip(c);
            let (b, _l2, _d2) = roundtrip(c);
            assert_eq!(a, b, "{c:?} not deterministic");
        }
        let (none, _, _) = roundtrip(Compression::None);
        assert_eq!(none.descriptor.digest().as_ref(), none.diff_id.to_string());
    }

    #[test]
    fn gzip_header_is_fixed() {
        let (layer, layout, _d) = roundtrip(Compression::Gzip);
        let d = Digest::from_oci(layer.descriptor.digest()).unwrap();
        let bytes = std::fs::read(layout.blob_path(&d)).unwrap();
        // magic, CM=deflate, FLG=0 (no name), MTIME=0, XFL, OS=255
        assert_eq!(&bytes[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[9], 255);
    }

    #[test]
    fn media_type_must_match_content() {
        let e = decompress_layer(
            &b"plain tar bytes"[..],
            &MediaType::ImageLayerGzip,
            "layer x",
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = decompress_layer(&b"x"[..], &MediaType::ImageConfig, "layer y")
            .err()
            .unwrap();
        assert!(matches!(e, OciError::UnsupportedMediaType { .. }));
    }
}
