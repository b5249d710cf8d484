//! Device memory as the device process sees it: the host's shared memory
//! object mapped at the device's fixed address, plus bounds-checked reads
//! for the simulator's own accesses (kernels access it directly).

use std::borrow::Cow;
use std::ffi::c_void;
use std::io;

use bytemuck::Pod;

/// The mapped window `[base, base + size)`.
#[derive(Clone, Copy, Debug)]
pub struct DeviceMemory {
    base: u64,
    size: u64,
}

impl DeviceMemory {
    /// Maps `fd` at exactly `base`; fails rather than replace a mapping.
    pub fn map(fd: i32, base: u64, size: u64) -> io::Result<Self> {
        let len = usize::try_from(size).map_err(io::Error::other)?;
        // SAFETY: MAP_FIXED_NOREPLACE refuses to replace existing mappings,
        // so this cannot clobber memory of this process.
        let got = unsafe {
            libc::mmap(
                base as *mut c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                fd,
                0,
            )
        };
        if got == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        if got as u64 != base {
            // SAFETY: unmapping the mapping just made, which nothing uses.
            unsafe { libc::munmap(got, len) };
            return Err(io::Error::other(format!(
                "mapped at {got:p} instead of {base:#x} (MAP_FIXED_NOREPLACE unsupported?)"
            )));
        }
        Ok(Self { base, size })
    }

    /// Whether `[addr, addr + len)` lies inside the window.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.base
            && addr
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.size)
    }

    /// A copy of `len` bytes at `addr`, `None` when out of the window.
    pub fn read(&self, addr: u64, len: u64) -> Option<Vec<u8>> {
        if !self.contains(addr, len) {
            return None;
        }
        let mut out = vec![0u8; len as usize];
        // SAFETY: the range was checked to lie in the mapping, which stays
        // mapped for the life of the process.
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), out.len()) };
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
        let max = max.min(self.base + self.size - addr.min(self.base + self.size));
        let short = max.min(buf.len() as u64);
        if !self.contains(addr, short) {
            return None;
        }
        // SAFETY: the range was checked to lie in the mapping, which stays
        // mapped for the life of the process.
        let nul = unsafe { libc::memchr(addr as *const c_void, 0, short as usize) };
        if !nul.is_null() {
            let end = nul as usize - addr as usize;
            // SAFETY: `end < short <= buf.len()` bytes of the checked range.
            unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), end) };
            return std::str::from_utf8(&buf[..end]).ok().map(Cow::Borrowed);
        }
        let bytes = self.read(addr, max)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        String::from_utf8(bytes[..end].to_vec())
            .ok()
            .map(Cow::Owned)
    }
}
