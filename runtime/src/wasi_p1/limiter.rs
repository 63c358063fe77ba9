//! The store's [`ResourceLimiter`]: linear memory and table elements of one process.

use wasmtime::ResourceLimiter;

/// Table elements allowed in one process, summed over all its tables. Rust and C
/// guests use one function table of a few thousand entries; a million is far above any
/// real program and caps the host memory tables can take (8-16 bytes an element).
const TABLE_ELEMENTS_MAX: usize = 1 << 20;

/// Caps the memory a process's store may hold: the sum of all its linear memories (a
/// module with several memories, or one that grows many, is bounded as a whole, not per
/// memory) and the sum of its table elements. Remembers a refusal so a resulting trap
/// is reported as the limit.
pub(crate) struct MemLimiter {
    pub(crate) max: u64,
    pub(crate) hit: bool,
    /// Bytes of linear memory granted so far, over every memory of the store.
    memory_total: u64,
    /// Table elements granted so far, over every table of the store.
    table_total: usize,
    /// The last growth granted, taken back if wasmtime then fails to perform it.
    pending_memory: u64,
    pending_table: usize,
}

impl MemLimiter {
    pub(crate) fn new(max: u64) -> MemLimiter {
        MemLimiter {
            max,
            hit: false,
            memory_total: 0,
            table_total: 0,
            pending_memory: 0,
            pending_table: 0,
        }
    }
}

impl ResourceLimiter for MemLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = (desired as u64).saturating_sub(current as u64);
        let total = self.memory_total.saturating_add(grow);
        if total > self.max {
            self.hit = true;
            return Ok(false);
        }
        self.memory_total = total;
        self.pending_memory = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory_total -= std::mem::take(&mut self.pending_memory);
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        let total = self.table_total.saturating_add(grow);
        if total > TABLE_ELEMENTS_MAX {
            self.hit = true;
            return Ok(false);
        }
        self.table_total = total;
        self.pending_table = grow;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.table_total -= std::mem::take(&mut self.pending_table);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: usize = 1 << 30;

    #[test]
    fn memories_are_bounded_by_their_sum() {
        let mut l = MemLimiter::new(4 << 30);
        // Three memories of 1.5 GiB each: each alone is under 4 GiB, together not.
        assert!(l.memory_growing(0, GIB, None).unwrap());
        assert!(l.memory_growing(GIB, GIB + GIB / 2, None).unwrap());
        assert!(l.memory_growing(0, GIB + GIB / 2, None).unwrap());
        assert!(!l.memory_growing(0, GIB + GIB / 2, None).unwrap());
        assert!(l.hit);
        assert_eq!(l.memory_total, 3 << 30);
    }

    #[test]
    fn a_failed_growth_is_given_back() {
        let mut l = MemLimiter::new(2 << 30);
        assert!(l.memory_growing(0, GIB, None).unwrap());
        assert!(l.memory_growing(GIB, 2 * GIB, None).unwrap());
        l.memory_grow_failed(wasmtime::format_err!("mmap failed"))
            .unwrap();
        assert_eq!(l.memory_total, 1 << 30);
        assert!(l.memory_growing(GIB, 2 * GIB, None).unwrap());
    }

    #[test]
    fn tables_are_bounded_by_their_sum() {
        let mut l = MemLimiter::new(4 << 30);
        let half = TABLE_ELEMENTS_MAX / 2;
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(l.table_growing(0, half, None).unwrap());
        assert!(!l.table_growing(0, 1, None).unwrap());
        assert!(l.hit);
    }
}
