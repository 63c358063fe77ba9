//! kiln-oci: OCI images on disk and on the wire.
//!
//! It turns layer tar streams into compressed, content-addressed blobs, writes image
//! configs, manifests and indexes (deterministically: same input, same bytes), keeps them
//! in an OCI image layout directory, exports that as an OCI layout, OCI archive or
//! docker-archive, imports base images from those formats, and pushes/pulls images to and
//! from registries.
//!
//! It is NOT a filesystem: it never looks inside a layer tar. The filesystem crate produces
//! and consumes the tar streams (`impl Write` / `impl Read`); the build engine joins them.
//!
//! A build, in calls: `Layout::open_or_create(store)`; a base image from
//! `RegistryClient::pull` / `import_*` / `Layout::load_image`; for each base layer
//! `image.open_layer(&layer)` -> fs layer import -> `reader.finish()`; for each new layer
//! `LayerWriter::new(&layout, Compression::Gzip)` <- fs layer tar, `finish()` -> `Layer`;
//! `ImageConfig::add_layer` / `add_empty_layer_history`; `layout.write_image(&config,
//! &layers, &annotations)` -> manifest descriptor; `layout.tag(name, &desc)`; then
//! `write_oci_archive` / `write_docker_archive` (through `write_file_atomic`),
//! `export_oci_layout` or `RegistryClient::push`.

mod auth;
mod canonical;
mod config;
mod digest;
mod error;
mod export;
mod image;
mod import;
mod index;
mod layer;
mod layout;
mod pgzip;
mod reference;
mod registry;

pub use auth::{CredentialStore, Credentials};
pub use canonical::{rfc3339, to_canonical_json};
pub use config::{DockerExtensions, Healthcheck, ImageConfig, Platform};
pub use digest::{Digest, DigestAlgorithm, Hasher, VerifyingReader};
pub use error::{OciError, Result};
pub use export::{
    export_oci_layout, write_docker_archive, write_file_atomic, write_oci_archive,
    write_oci_archive_index,
};
pub use image::{GcStats, Image};
pub use import::{import_docker_archive, import_oci_archive, import_oci_layout};
pub use index::{PlatformIndex, export_oci_layout_index};
pub use layer::{Compression, Layer, LayerWriter, decompress_layer, verified_layer_reader};
pub use layout::{
    ANNOTATION_CREATED, ANNOTATION_REF_NAME, BlobReader, BlobWriter, Layout, MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
};
/// The oci-spec types that appear in this crate's API.
pub use oci_spec::image::{
    Config, Descriptor, History, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
};
pub use reference::Reference;
pub use registry::{PushReport, RegistryClient, RegistryOptions};
