//! First-fit allocator over one device's memory window. Tracks the exact
//! requested size of every live block, which is what `aclrtMemcpy`'s bounds
//! checks and the accounting use.

use std::collections::BTreeMap;

/// Every block starts on this boundary (CANN's own is at least 32 bytes).
pub const ALIGN: u64 = 64;

/// One live block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// Bytes the caller asked for.
    pub len: u64,
    /// Bytes taken from the window (`len` rounded up to [`ALIGN`]).
    span: u64,
    /// Allocated by the simulator itself (launch argument copies), not by
    /// `aclrtMalloc`; excluded from the accounting.
    pub internal: bool,
}

/// The allocator of one device window of `capacity` bytes; offsets are
/// relative to the window's base.
#[derive(Debug)]
pub struct Allocator {
    /// Free ranges, start → length, never adjacent (always coalesced).
    free: BTreeMap<u64, u64>,
    live: BTreeMap<u64, Block>,
}

impl Allocator {
    /// An empty allocator for `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        let capacity = capacity / ALIGN * ALIGN;
        let mut free = BTreeMap::new();
        if capacity > 0 {
            free.insert(0, capacity);
        }
        Self {
            free,
            live: BTreeMap::new(),
        }
    }

    /// Allocates `len` (> 0) bytes; `None` when no free range is big enough.
    pub fn alloc(&mut self, len: u64, internal: bool) -> Option<u64> {
        let span = len.checked_add(ALIGN - 1)? / ALIGN * ALIGN;
        let (&start, &free_len) = self.free.iter().find(|(_, &l)| l >= span)?;
        self.free.remove(&start);
        if free_len > span {
            self.free.insert(start + span, free_len - span);
        }
        self.live.insert(
            start,
            Block {
                len,
                span,
                internal,
            },
        );
        Some(start)
    }

    /// Frees the block starting at `off`; `None` if no block starts there.
    pub fn free(&mut self, off: u64) -> Option<Block> {
        let block = self.live.remove(&off)?;
        let mut start = off;
        let mut len = block.span;
        if let Some((&prev, &prev_len)) = self.free.range(..off).next_back() {
            if prev + prev_len == off {
                self.free.remove(&prev);
                start = prev;
                len += prev_len;
            }
        }
        if let Some(next_len) = self.free.remove(&(off + block.span)) {
            len += next_len;
        }
        self.free.insert(start, len);
        Some(block)
    }

    /// The live block containing `off`, with its start.
    pub fn containing(&self, off: u64) -> Option<(u64, Block)> {
        let (&start, &block) = self.live.range(..=off).next_back()?;
        (off < start + block.len).then_some((start, block))
    }

    /// Live blocks made by `aclrtMalloc`: (count, requested bytes).
    pub fn user_usage(&self) -> (u64, u64) {
        self.live
            .values()
            .filter(|b| !b.internal)
            .fold((0, 0), |(n, bytes), b| (n + 1, bytes + b.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_fit_reuses_and_coalesces() {
        let mut a = Allocator::new(1024);
        let x = a.alloc(100, false).unwrap();
        let y = a.alloc(64, false).unwrap();
        let z = a.alloc(1, true).unwrap();
        assert_eq!((x, y, z), (0, 128, 192));
        assert_eq!(a.user_usage(), (2, 164));
        assert_eq!(a.containing(99).map(|(s, _)| s), Some(0));
        assert_eq!(a.containing(100), None, "past the requested size");
        assert!(a.free(y).is_some());
        assert!(a.free(y).is_none(), "double free");
        assert!(a.free(x).is_some());
        assert_eq!(a.alloc(192, false), Some(0), "x and y coalesced");
        assert!(a.alloc(1024, false).is_none());
        assert!(a.free(0).is_some() && a.free(z).is_some());
        assert_eq!(a.alloc(1024, false), Some(0), "everything coalesced");
    }
}
