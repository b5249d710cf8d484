//! The raw side of a bootstrap case: guarded anonymous mappings, the
//! dispatcher SO opened with `dlopen`, and the call of its Init on memory
//! laid out so that every address Init may follow is one of those
//! mappings.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::path::Path;

use simpler_abi::names::{DISPATCHER_INIT_SYMBOL, DISPATCHER_INIT_SYMBOL_C, MAX_INNER_SO_LEN};
use simpler_abi::{BootstrapArgs, BootstrapReport, DeviceArgs};

/// The signature of `DynTileFwkBackendKernelServerInit`.
type InitFn = unsafe extern "C" fn(*mut c_void) -> i32;

/// A dispatcher SO, loaded, and its Init.
pub struct Dispatcher {
    init: InitFn,
    _lib: libloading::Library,
}

impl Dispatcher {
    /// Opens the dispatcher SO at `path` and resolves its Init; the error
    /// names the file or the symbol.
    pub fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: the dispatcher SO runs no initialisers beyond libc's.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("dlopen {}: {e}", path.display()))?;
        // SAFETY: the dispatcher exports Init with the `InitFn` signature,
        // the one CANN's AICPU scheduler calls it with.
        let init = *unsafe { lib.get::<InitFn>(DISPATCHER_INIT_SYMBOL_C.to_bytes_with_nul()) }
            .map_err(|e| format!("{}: {DISPATCHER_INIT_SYMBOL}: {e}", path.display()))?;
        Ok(Self { init, _lib: lib })
    }

    /// Calls Init on `call`'s block (or a null pointer, if the block is
    /// not linked) and returns what it returns.
    pub(crate) fn init(&self, call: &Call) -> i32 {
        let block = if call.links.block {
            call.block.start.cast::<c_void>()
        } else {
            std::ptr::null_mut()
        };
        // SAFETY: `Call::new` is the only way to make a `Call`: in its
        // block and its `DeviceArgs`, every address Init's contract lets it
        // follow is 0 or the start of one of the call's live mappings, each
        // as long as the type Init reads there (the image covers
        // `inner_so_len` whenever that is within the cap). The other fields
        // hold noise the contract says Init never dereferences.
        unsafe { (self.init)(block) }
    }
}

/// Which addresses of a call are set (the others are 0).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Links {
    /// `DeviceArgs::inner_so_bin`: the image.
    pub image: bool,
    /// `DeviceArgs::report`: the report.
    pub report: bool,
    /// `BootstrapArgs::device_args`: the `DeviceArgs`.
    pub device_args: bool,
    /// The argument of Init itself: the block.
    pub block: bool,
}

/// The memory of one Init call, owned together so that every address
/// written into it stays valid for the call. The image, the `DeviceArgs`
/// and the block are read-only: Init only reads them.
pub(crate) struct Call {
    image: Guarded,
    report: Guarded,
    _device: Guarded,
    block: Guarded,
    links: Links,
}

impl Call {
    /// Lays out a call: `device` (whose other fields the caller filled)
    /// gets the image's and the report's addresses, is copied into a
    /// mapping ending `device_slack` bytes before its guard page, and
    /// `block` (filled by the caller) gets that mapping's address.
    pub(crate) fn new(
        mut image: Guarded,
        report: Guarded,
        mut device: DeviceArgs,
        device_slack: u8,
        mut block: Guarded,
        links: Links,
    ) -> Self {
        assert!(
            device.inner_so_len > MAX_INNER_SO_LEN
                || device.inner_so_len <= image.len as u64
                || !links.image,
            "the image must cover inner_so_len"
        );
        assert!(
            block.len >= size_of::<BootstrapArgs>() && report.len >= size_of::<BootstrapReport>()
        );
        device.inner_so_bin = if links.image { image.addr() } else { 0 };
        device.report = if links.report { report.addr() } else { 0 };
        let mut device_mem = Guarded::new(size_of::<DeviceArgs>(), device_slack);
        device_mem
            .bytes_mut()
            .copy_from_slice(bytemuck::bytes_of(&device));
        let device_args = if links.device_args {
            device_mem.addr()
        } else {
            0
        };
        let at = offset_of!(BootstrapArgs, device_args);
        block.bytes_mut()[at..at + 8].copy_from_slice(&device_args.to_le_bytes());
        image.seal();
        device_mem.seal();
        block.seal();
        Self {
            image,
            report,
            _device: device_mem,
            block,
            links,
        }
    }

    /// The image's bytes (all of the mapping's readable part).
    pub(crate) fn image(&self) -> &[u8] {
        self.image.bytes()
    }

    /// The report's bytes.
    pub(crate) fn report(&self) -> &[u8] {
        self.report.bytes()
    }
}

/// `len` bytes of private anonymous memory ending `slack` bytes before a
/// `PROT_NONE` page. Pages never written are never backed, so a readable
/// region as large as the 256 MiB cap costs almost nothing.
pub(crate) struct Guarded {
    map: *mut u8,
    map_len: usize,
    start: *mut u8,
    len: usize,
}

impl Guarded {
    /// A fresh, zeroed, writable region.
    pub(crate) fn new(len: usize, slack: u8) -> Self {
        let page = page_size();
        let body = (len + usize::from(slack)).div_ceil(page) * page;
        let map_len = body + page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(map, libc::MAP_FAILED, "mmap of {map_len} bytes failed");
        let map = map.cast::<u8>();
        // SAFETY: the last page lies inside the mapping just made.
        let guard = unsafe { map.add(body) };
        // SAFETY: `guard` is page-aligned and inside the mapping.
        let rc = unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) };
        assert_eq!(rc, 0, "mprotect of the guard page failed");
        // SAFETY: `len + slack <= body`, so `start` lies inside the mapping.
        let start = unsafe { guard.sub(len + usize::from(slack)) };
        Self {
            map,
            map_len,
            start,
            len,
        }
    }

    /// Makes the body read-only. Private: a sealed region is only read
    /// again through `bytes`, never written.
    fn seal(&mut self) {
        let body = self.map_len - page_size();
        // SAFETY: `map..map + body` is the body of the mapping `new` made.
        let rc = unsafe { libc::mprotect(self.map.cast(), body, libc::PROT_READ) };
        assert_eq!(rc, 0, "mprotect read-only failed");
    }

    fn addr(&self) -> u64 {
        self.start as u64
    }

    /// The region.
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `start..start + len` is readable, owned by `self`, and
        // only reachable through `self` while borrowed.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }

    /// The region, to fill before it is handed to a [`Call`] (which seals
    /// what must stay read-only).
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; the region is writable until sealed, which
        // only `Call::new` does after taking it by value, and `&mut self`
        // makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.start, self.len) }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; no borrow of it
        // outlives `self`.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}
