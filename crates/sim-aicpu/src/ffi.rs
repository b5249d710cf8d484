//! Where the device process meets C: the kernel SOs it opens and calls,
//! and the device log's `DlogRecord` (defined in `dlog.c`, which hands
//! every formatted line back through `simpler_sim_dlog_line`).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;

use libloading::os::unix::{Library, RTLD_GLOBAL, RTLD_LAZY, RTLD_LOCAL, RTLD_NOW};

use crate::sink;

/// The C shape of an AICPU kernel: the device address of the argument block
/// in, 0 for success out.
type KernelFn = unsafe extern "C" fn(*mut c_void) -> u32;

/// An AICPU kernel entry point resolved in a loaded SO.
#[derive(Clone, Copy, Debug)]
pub struct Kernel(KernelFn);

impl Kernel {
    /// Calls the kernel with the device address of its parameter (the
    /// argument block, or a header inside it).
    pub fn call(self, args: u64) -> u32 {
        // SAFETY: the function was resolved from a loaded SO (which stays
        // loaded for the life of the process) under a name the AICPU
        // contract gives this signature; the argument is the device address
        // of the launch's argument block, as on hardware. A kernel that is
        // not one is the SO author's bug, as on hardware.
        unsafe { (self.0)(args as *mut c_void) }
    }
}

/// How an SO's symbols are bound and whom they are visible to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// `RTLD_LAZY | RTLD_GLOBAL`, as CANN's AICPU scheduler opens kernel
    /// SOs (`ae_so_manager.cc`): functions are bound at their first call,
    /// and the SO's default-visibility symbols take part in the resolution
    /// of every SO opened later — a second SO's call of a function both
    /// define goes to the first one's.
    Scheduler,
    /// `RTLD_NOW | RTLD_LOCAL`: the latched dispatcher, which only this
    /// process's KFC emulation calls into.
    Private,
}

/// Opens the SO at `path` with `binding`, for the life of the process (SOs
/// are never closed, as on the device).
pub fn open(path: &Path, binding: Binding) -> Result<&'static Library, libloading::Error> {
    let flags = match binding {
        Binding::Scheduler => RTLD_LAZY | RTLD_GLOBAL,
        Binding::Private => RTLD_NOW | RTLD_LOCAL,
    };
    // SAFETY: opening an SO runs its initialisers; running the device SOs
    // it is given is what the AICPU OS (and so this process) is for.
    let library = unsafe { Library::open(Some(path), flags) }?;
    Ok(Box::leak(Box::new(library)))
}

/// Whether `library` exports `symbol`.
pub fn exports(library: &Library, symbol: &str) -> bool {
    // SAFETY: only the address is looked up; nothing is called or read.
    unsafe { library.get::<*const c_void>(symbol.as_bytes()) }.is_ok()
}

/// The kernel `name` in `library`.
pub fn kernel(library: &'static Library, name: &str) -> Result<Kernel, libloading::Error> {
    // SAFETY: AICPU kernels (and the dispatcher's init, which has their
    // shape) have the `KernelFn` signature by contract; the library is
    // never closed, so the pointer stays valid.
    let symbol = unsafe { library.get::<KernelFn>(name.as_bytes()) }?;
    Ok(Kernel(*symbol))
}

extern "C" {
    fn DlogRecord(module: c_int, level: c_int, fmt: *const c_char, ...);
}

/// Logs `text` through `DlogRecord`, as a device SO would.
pub fn dlog(module: c_int, level: c_int, text: &CStr) {
    // SAFETY: a "%s" format with one NUL-terminated string argument.
    unsafe { DlogRecord(module, level, c"%s".as_ptr(), text.as_ptr()) };
}

/// Receives every formatted `DlogRecord` line (called from `dlog.c`).
///
/// # Safety
/// `text` is a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn simpler_sim_dlog_line(module: c_int, level: c_int, text: *const c_char) {
    // SAFETY: dlog.c always passes its NUL-terminated buffer.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    sink::record(module, level, &text);
}
