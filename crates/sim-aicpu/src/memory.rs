//! Device memory as the simulator's own code reads it: copies out of the
//! window, typed and NUL-terminated reads, each `None` when out of bounds.
//! (Kernels access the mapping directly.)

use std::borrow::Cow;

use bytemuck::Pod;

use crate::sys::Mapping;

/// The device memory window of this process.
#[derive(Clone, Copy, Debug)]
pub struct DeviceMemory {
    window: Mapping,
}

impl DeviceMemory {
    /// Reads through `window`.
    pub fn new(window: Mapping) -> Self {
        Self { window }
    }

    /// A copy of `len` bytes at `addr`, `None` when out of the window.
    pub fn read(&self, addr: u64, len: u64) -> Option<Vec<u8>> {
        if !self.window.contains(addr, len) {
            return None;
        }
        let mut out = vec![0u8; len as usize];
        self.window.copy_out(addr, &mut out)?;
        Some(out)
    }

    /// A copy of the `T` at `addr`, `None` when out of the window.
    pub fn read_pod<T: Pod>(&self, addr: u64) -> Option<T> {
        self.read(addr, std::mem::size_of::<T>() as u64)
            .map(|bytes| bytemuck::pod_read_unaligned(&bytes))
    }

    /// The NUL-terminated name at `addr`, looked for within `max` bytes,
    /// copied into `buf` when it fits there (no allocation), else onto the
    /// heap.
    pub fn read_name<'b>(&self, addr: u64, max: u64, buf: &'b mut [u8]) -> Option<Cow<'b, str>> {
        let end = self.window.end();
        let max = max.min(end - addr.min(end));
        let short = max.min(buf.len() as u64);
        if let Some(len) = self.window.find_nul(addr, short)? {
            self.window.copy_out(addr, &mut buf[..len])?;
            return std::str::from_utf8(&buf[..len]).ok().map(Cow::Borrowed);
        }
        let bytes = self.read(addr, max)?;
        let len = bytes.iter().position(|&b| b == 0)?;
        String::from_utf8(bytes[..len].to_vec())
            .ok()
            .map(Cow::Owned)
    }
}
