//! Device memory as the host library manages it: `aclrtMalloc` blocks from
//! the device's allocator, the bounds check every access passes, and the
//! copies between host slices and the device's memory object.

use std::sync::atomic::Ordering;

use simpler_abi::sim::env;

use super::{lock, Device, State};
use crate::error::*;

impl Device {
    /// Checks that `[addr, addr + len)` lies inside one live user block and
    /// returns its offset in the window.
    pub(super) fn check_range(
        &self,
        st: &State,
        addr: u64,
        len: u64,
        what: &str,
    ) -> AclResult<u64> {
        let off = addr - self.base;
        let Some((start, block)) = st.alloc.containing(off).filter(|(_, b)| !b.internal) else {
            return Err(AclError::param(format!(
                "{what} {addr:#x} is not inside a live allocation of device {}",
                self.id
            )));
        };
        if off + len > start + block.len {
            return Err(AclError::param(format!(
                "{what} {addr:#x} + {len} bytes runs past the allocation at {:#x} of {} bytes by {} bytes",
                self.base + start,
                block.len,
                off + len - start - block.len
            )));
        }
        Ok(off)
    }

    /// `aclrtMalloc` of `size` (> 0) bytes; the device address.
    pub fn alloc(&self, size: usize) -> AclResult<u64> {
        let mut st = self.live_state()?;
        let off = st.alloc.alloc(size as u64, false).ok_or_else(|| {
            let (n, live) = st.alloc.user_usage();
            AclError::new(
                ACL_ERROR_RT_MEMORY_ALLOCATION,
                format!(
                    "device {} has no free block of {size} bytes ({live} bytes in {n} allocations live, {} bytes total; {})",
                    self.id,
                    self.size,
                    env::DEVICE_MEM
                ),
            )
        })?;
        let (_, bytes) = st.alloc.user_usage();
        self.counters.peak_bytes.fetch_max(bytes, Ordering::Relaxed);
        Ok(self.base + off)
    }

    /// `aclrtFree` of the block at `addr`, which must be its start. Works on
    /// a device whose process died, so cleanup after a crash releases
    /// memory as on hardware.
    pub fn free(&self, addr: u64) -> AclResult<()> {
        let mut st = lock(&self.state);
        let off = addr - self.base;
        match st.alloc.containing(off) {
            Some((start, b)) if start == off && !b.internal => {
                st.alloc.free(off);
                Ok(())
            }
            Some((start, b)) if !b.internal => Err(AclError::param(format!(
                "devPtr {addr:#x} points inside the allocation at {:#x}, not at its start",
                self.base + start
            ))),
            _ => Err(AclError::param(format!(
                "devPtr {addr:#x} is not a live allocation (double free?)"
            ))),
        }
    }

    /// Live `aclrtMalloc` blocks: (count, requested bytes), whether or not
    /// the process is alive.
    pub fn usage(&self) -> (u64, u64) {
        lock(&self.state).alloc.user_usage()
    }

    /// Copies `src` to device address `dst`, inside one live block.
    pub fn copy_in(&self, dst: u64, src: &[u8]) -> AclResult<()> {
        let st = self.live_state()?;
        let off = self.check_range(&st, dst, src.len() as u64, "dst")?;
        self.mem.write(off, src);
        Ok(())
    }

    /// Fills `dst` from device address `src`, inside one live block.
    pub fn copy_out(&self, dst: &mut [u8], src: u64) -> AclResult<()> {
        let st = self.live_state()?;
        let off = self.check_range(&st, src, dst.len() as u64, "src")?;
        self.mem.read(off, dst);
        Ok(())
    }

    /// Copies `len` bytes from device address `src` to `dst`, each inside
    /// one live block (overlap allowed).
    pub fn copy_within(&self, dst: u64, src: u64, len: usize) -> AclResult<()> {
        let st = self.live_state()?;
        let s = self.check_range(&st, src, len as u64, "src")?;
        let d = self.check_range(&st, dst, len as u64, "dst")?;
        self.mem.copy_within(s, d, len);
        Ok(())
    }
}
