//! The per-step disk quota: bytes a step may write to disk through its trees (spill
//! files and store blobs). Sparse extensions cost nothing until they are stored, so a
//! `truncate -s 1T` is refused when its contents would be written, not when it is made.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::{FsError, Result};

/// Bytes one step may write to disk when the embedder sets no quota. Large enough for
/// any ordinary step (toolchains, node_modules, a compiled project are a few GiB), small
/// enough that a hostile step cannot fill a typical disk before it is stopped.
pub const DEFAULT_DISK_QUOTA: u64 = 10 << 30;

/// A disk-byte budget shared by clones: give every tree of one step the same quota to
/// bound the step as a whole.
#[derive(Clone, Debug)]
pub struct DiskQuota {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limit: u64,
    used: AtomicU64,
    /// Set when a charge was refused, so the embedder can name the quota in its error
    /// even though the step only saw `EDQUOT`.
    refused: AtomicBool,
}

impl Default for DiskQuota {
    fn default() -> Self {
        DiskQuota::new(DEFAULT_DISK_QUOTA)
    }
}

impl DiskQuota {
    pub fn new(limit: u64) -> DiskQuota {
        DiskQuota {
            inner: Arc::new(Inner {
                limit,
                used: AtomicU64::new(0),
                refused: AtomicBool::new(false),
            }),
        }
    }

    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// Bytes charged so far.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Whether some write was refused for passing the limit.
    pub fn exceeded(&self) -> bool {
        self.inner.refused.load(Ordering::Relaxed)
    }

    /// Charges `n` bytes, or fails (charging nothing) if that would pass the limit.
    pub(crate) fn charge(&self, n: u64) -> Result<()> {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= limit)
            })
            .map(drop)
            .map_err(|_| {
                self.inner.refused.store(true, Ordering::Relaxed);
                FsError::DiskQuota { limit }
            })
    }
}

/// A reader that charges every byte it yields to a quota, for streams of unknown
/// length (`write_from`). Past the quota it fails; [`ChargedReader::hit`] tells the
/// caller the failure was the quota and not the source.
pub(crate) struct ChargedReader<'a, R> {
    pub(crate) inner: R,
    pub(crate) quota: &'a DiskQuota,
    pub(crate) hit: &'a AtomicBool,
}

impl<R: Read> Read for ChargedReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.quota.charge(n as u64).is_err() {
            self.hit.store(true, Ordering::Relaxed);
            return Err(io::Error::other("disk quota exceeded"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_shared_and_bounded() {
        let q = DiskQuota::new(100);
        let clone = q.clone();
        q.charge(60).unwrap();
        assert!(!q.exceeded());
        assert!(matches!(
            clone.charge(41),
            Err(FsError::DiskQuota { limit: 100 })
        ));
        // A refusal is remembered by every clone, though it charged nothing.
        assert!(q.exceeded());
        clone.charge(40).unwrap();
        assert_eq!(q.used(), 100);
        assert!(q.charge(u64::MAX).is_err());
    }
}
