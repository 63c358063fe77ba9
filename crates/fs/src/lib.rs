//! kiln-fs: the snapshot filesystem under every build step.
//!
//! A virtual Unix tree (modes, owners, mtimes, symlinks, hard links, device nodes,
//! xattrs) that never touches the host filesystem except through its content
//! [`Store`]. A [`Snapshot`] is an immutable, structurally shared tree (O(1) to
//! clone, O(changes) to [`diff`]); a [`Tree`] is the mutable working state a WASI
//! host drives through inode operations, frozen back into a snapshot with
//! [`Tree::snapshot`]. Layers go out and in as deterministic tar streams; a snapshot
//! also encodes to bytes and back ([`Snapshot::encode`]), so a later process can reopen it.
//!
//! It is NOT a host filesystem, a mount table (secrets, binds and caches are the
//! runtime's), a permission checker, or aware of wasm, Dockerfiles or OCI manifests.

mod codec;
mod diff;
mod error;
mod mac_key;
mod node;
mod quota;
mod store;
mod tar_in;
mod tar_out;
mod tree;

pub use diff::{Change, ChangeKind, Walk, WalkEntry, diff};
pub use error::{FsError, Result};
pub use mac_key::{KeyError, MAC_KEY_LEN, MAC_LEN, MacKey};
pub use node::{FileType, Snapshot, SnapshotId, Timestamp};
pub use quota::{DEFAULT_DISK_QUOTA, DiskQuota};
pub use store::{Digest, Store};
pub use tar_in::LayerStats;
pub use tar_out::{write_layer, write_snapshot};
pub use tree::{
    ContentReader, DirEntry, Follow, INLINE_BUDGET, Ino, MAX_DEPTH, Metadata, NAME_MAX, Tree,
};

/// Regular files up to this size live inline in the tree; larger ones are store
/// blobs (and spill files while being written), never held whole in memory.
pub const INLINE_MAX: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    fn shareable<T: Send + Sync>() {}

    #[test]
    fn types_can_cross_threads() {
        shareable::<crate::Tree>();
        shareable::<crate::Snapshot>();
        shareable::<crate::Store>();
        shareable::<crate::FsError>();
    }
}
