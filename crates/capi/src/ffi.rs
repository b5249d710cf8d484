//! The exported functions. Each one checks its pointers, turns those it
//! reads or writes into references and slices (the only `unsafe` of the
//! crate), runs the safe code of [`crate::handles`] inside
//! [`crate::status::guard`], and returns a code.

use std::ffi::{c_char, c_int, c_void, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

use simpler_host::CannSource;

use crate::handles::{self, simpler_buffer, simpler_cann, simpler_module, ModuleRequest};
use crate::status::{self, guard, quietly, Failure};

fn non_null<T>(ptr: *const T, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        Err(Failure::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// # Safety
/// `ptr` is NULL or a NUL-terminated string that lives for `'a`.
unsafe fn c_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a CStr, Failure> {
    non_null(ptr, what)?;
    // SAFETY: non-NULL, and the caller guarantees NUL termination.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

/// # Safety
/// As [`c_str`].
unsafe fn c_path(ptr: *const c_char, what: &str) -> Result<PathBuf, Failure> {
    // SAFETY: forwarded to the caller.
    let text = unsafe { c_str(ptr, what) }?;
    if text.is_empty() {
        return Err(Failure::invalid(format!("{what} is empty")));
    }
    Ok(PathBuf::from(OsStr::from_bytes(text.to_bytes())))
}

/// # Safety
/// `ptr` is NULL or points to `count` readable pointers, each NULL or a
/// NUL-terminated string, all living for `'a`.
unsafe fn c_strings<'a>(
    ptr: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<&'a CStr>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    non_null(ptr, what)?;
    // SAFETY: non-NULL; the caller guarantees `count` readable pointers.
    let items = unsafe { std::slice::from_raw_parts(ptr, count) };
    items
        .iter()
        .enumerate()
        // SAFETY: each element is NULL or NUL-terminated (the caller).
        .map(|(i, &item)| unsafe { c_str(item, &format!("{what}[{i}]")) })
        .collect()
}

/// Stores a new handle in `*out`, which was checked non-NULL.
///
/// # Safety
/// `out` is writable.
unsafe fn put<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller guarantees `out` is writable.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
}

/// Opens `source` into `*out`.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn open(source: CannSource, out: *mut *mut simpler_cann) -> c_int {
    guard(|| {
        non_null(out, "out")?;
        let cann = simpler_cann::open(&source)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { put(out, cann) };
        Ok(())
    })
}

/// Loads the CANN simulator (`libsimpler_cann_sim.so` from the artifacts
/// directories: `$SIMPLER_ARTIFACTS_DIR`, or `artifacts/<triple>` next to
/// the program) and stores the handle in `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn simpler_cann_open_simulator(out: *mut *mut simpler_cann) -> c_int {
    // SAFETY: forwarded to the caller.
    unsafe { open(CannSource::Simulator, out) }
}

/// Loads the CANN API from `count` libraries, each symbol from the first
/// that exports it, and stores the handle in `*out`.
///
/// # Safety
/// `paths` points to `count` NUL-terminated strings; `out` is NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn simpler_cann_open_libraries(
    paths: *const *const c_char,
    count: usize,
    out: *mut *mut simpler_cann,
) -> c_int {
    guard(|| {
        non_null(out, "out")?;
        // SAFETY: the caller guarantees `count` strings at `paths`.
        let paths = unsafe { c_strings(paths, count, "paths") }?;
        if paths.is_empty() {
            return Err(Failure::invalid("count is 0: name at least one library"));
        }
        let libraries = paths
            .iter()
            .map(|p| PathBuf::from(OsStr::from_bytes(p.to_bytes())))
            .collect();
        let cann = simpler_cann::open(&CannSource::Libraries(libraries))?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { put(out, cann) };
        Ok(())
    })
}

/// Loads `libascendcl.so` and `libruntime.so` from `$ASCEND_HOME_PATH/lib64`
/// (else `$ASCEND_TOOLKIT_HOME/lib64`) and stores the handle in `*out`.
///
/// # Safety
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn simpler_cann_open_toolkit(out: *mut *mut simpler_cann) -> c_int {
    // SAFETY: forwarded to the caller.
    unsafe { open(CannSource::Toolkit, out) }
}

/// Releases a handle from a `simpler_cann_open_*` function; NULL is
/// ignored. Modules and buffers made with it stay usable. The libraries
/// stay loaded until the process exits (CANN cannot be unloaded).
///
/// # Safety
/// `cann` is NULL or a handle not yet closed.
#[no_mangle]
pub unsafe extern "C" fn simpler_cann_close(cann: *mut simpler_cann) {
    if cann.is_null() {
        return;
    }
    // SAFETY: a live handle from `put`, released exactly once.
    let cann = unsafe { Box::from_raw(cann) };
    quietly("simpler_cann_close", || drop(cann));
}

/// Installs `so_path` on `device` through the dispatcher (NULL
/// `dispatcher_path`: the default one), checks that each of the `count`
/// kernels is an exported function of it, and resolves them for
/// `launch_path` (0 = type2, 1 = binary). Stores the module in `*out`.
///
/// # Safety
/// `cann` is NULL or a live handle; `so_path` and `dispatcher_path` are
/// NULL or NUL-terminated; `kernels` points to `count` NUL-terminated
/// strings; `out` is NULL or writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn simpler_module_load(
    cann: *mut simpler_cann,
    device: i32,
    so_path: *const c_char,
    dispatcher_path: *const c_char,
    kernels: *const *const c_char,
    count: usize,
    launch_path: c_int,
    out: *mut *mut simpler_module,
) -> c_int {
    guard(|| {
        non_null(out, "out")?;
        non_null(cann, "cann")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let cann = unsafe { &*cann };
        // SAFETY: NUL-terminated or NULL (the caller).
        let so = unsafe { c_path(so_path, "so_path") }?;
        let dispatcher = if dispatcher_path.is_null() {
            None
        } else {
            // SAFETY: non-NULL and NUL-terminated (the caller).
            Some(unsafe { c_path(dispatcher_path, "dispatcher_path") }?)
        };
        // SAFETY: `count` NUL-terminated strings at `kernels` (the caller).
        let names = unsafe { c_strings(kernels, count, "kernels") }?;
        let kernels = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                name.to_str()
                    .map_err(|_| Failure::invalid(format!("kernels[{i}] is not UTF-8")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let module = simpler_module::load(
            cann,
            ModuleRequest {
                device,
                so,
                dispatcher,
                kernels,
                launch_path: handles::launch_path(launch_path)?,
            },
        )?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { put(out, module) };
        Ok(())
    })
}

/// Releases a module; NULL is ignored. Its stream is destroyed; the SO
/// stays installed on the device; a binary-path registration is unloaded
/// when no other module of the same SO uses it.
///
/// # Safety
/// `module` is NULL or a handle not yet unloaded, with no launch on it
/// running in another thread.
#[no_mangle]
pub unsafe extern "C" fn simpler_module_unload(module: *mut simpler_module) {
    if module.is_null() {
        return;
    }
    // SAFETY: a live handle from `put`, released exactly once.
    let module = unsafe { Box::from_raw(module) };
    quietly("simpler_module_unload", || drop(module));
}

/// Launches `kernel` on `threads` AICPU threads with the `payload_len`
/// bytes at `payload` at the start of its argument block, and waits up to
/// `timeout_ms` (negative: no limit). A kernel that returns non-zero gives
/// `SIMPLER_ERROR_KERNEL`, with the CANN code it surfaced as (507018) in
/// `simpler_last_cann_code()` and a message naming the kernel and the SO.
/// Launches on one module run one at a time.
///
/// # Safety
/// `module` is NULL or a live handle; `kernel` is NULL or NUL-terminated;
/// `payload` is readable for `payload_len` bytes (may be NULL when
/// `payload_len` is 0).
#[no_mangle]
pub unsafe extern "C" fn simpler_launch(
    module: *mut simpler_module,
    kernel: *const c_char,
    threads: u32,
    payload: *const c_void,
    payload_len: usize,
    timeout_ms: i32,
) -> c_int {
    guard(|| {
        non_null(module, "module")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let module = unsafe { &*module };
        // SAFETY: NUL-terminated or NULL (the caller).
        let kernel = unsafe { c_str(kernel, "kernel") }?
            .to_str()
            .map_err(|_| Failure::invalid("kernel is not UTF-8"))?;
        let payload: &[u8] = if payload_len == 0 {
            &[]
        } else {
            non_null(payload, "payload")?;
            // SAFETY: non-NULL and readable for `payload_len` bytes (the
            // caller).
            unsafe { std::slice::from_raw_parts(payload.cast::<u8>(), payload_len) }
        };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        module.launch(kernel, threads, payload, timeout)
    })
}

/// Allocates `len` bytes of device memory on `device` into `*out`.
///
/// # Safety
/// `cann` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn simpler_buffer_alloc(
    cann: *mut simpler_cann,
    device: i32,
    len: usize,
    out: *mut *mut simpler_buffer,
) -> c_int {
    guard(|| {
        non_null(out, "out")?;
        non_null(cann, "cann")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let buffer = simpler_buffer::alloc(unsafe { &*cann }, device, len)?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { put(out, buffer) };
        Ok(())
    })
}

/// The buffer's device address (to put in a payload), 0 for NULL.
///
/// # Safety
/// `buffer` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn simpler_buffer_device_addr(buffer: *const simpler_buffer) -> u64 {
    if buffer.is_null() {
        return 0;
    }
    // SAFETY: non-NULL; a live handle (the caller).
    unsafe { &*buffer }.device_addr()
}

/// Copies `len` bytes from `src` to the buffer at `offset`.
///
/// # Safety
/// `buffer` is NULL or a live handle; `src` is readable for `len` bytes
/// (may be NULL when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn simpler_buffer_write(
    buffer: *mut simpler_buffer,
    offset: usize,
    src: *const c_void,
    len: usize,
) -> c_int {
    guard(|| {
        non_null(buffer, "buffer")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let buffer = unsafe { &*buffer };
        if len == 0 {
            return Ok(());
        }
        non_null(src, "src")?;
        // SAFETY: non-NULL and readable for `len` bytes (the caller).
        let src = unsafe { std::slice::from_raw_parts(src.cast::<u8>(), len) };
        buffer.write(offset, src)
    })
}

/// Copies `len` bytes of the buffer at `offset` to `dst`.
///
/// # Safety
/// `buffer` is NULL or a live handle; `dst` is writable for `len` bytes
/// (may be NULL when `len` is 0) and not read or written by anyone else
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn simpler_buffer_read(
    buffer: *const simpler_buffer,
    offset: usize,
    dst: *mut c_void,
    len: usize,
) -> c_int {
    guard(|| {
        non_null(buffer, "buffer")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let buffer = unsafe { &*buffer };
        if len == 0 {
            return Ok(());
        }
        non_null(dst, "dst")?;
        // SAFETY: non-NULL, writable for `len` bytes and not aliased during
        // the call (the caller).
        let dst = unsafe { std::slice::from_raw_parts_mut(dst.cast::<u8>(), len) };
        buffer.read(offset, dst)
    })
}

/// Frees a buffer; NULL is ignored.
///
/// # Safety
/// `buffer` is NULL or a handle not yet freed, not in use by another
/// thread.
#[no_mangle]
pub unsafe extern "C" fn simpler_buffer_free(buffer: *mut simpler_buffer) {
    if buffer.is_null() {
        return;
    }
    // SAFETY: a live handle from `put`, released exactly once.
    let buffer = unsafe { Box::from_raw(buffer) };
    quietly("simpler_buffer_free", || drop(buffer));
}

/// This thread's last error message, or NULL when its latest call
/// succeeded; valid until this thread's next call into libsimpler.
#[no_mangle]
pub extern "C" fn simpler_last_error() -> *const c_char {
    status::last_error()
}

/// The CANN code behind this thread's last error, or 0.
#[no_mangle]
pub extern "C" fn simpler_last_cann_code() -> i32 {
    status::last_cann_code()
}

/// 1 if the loaded CANN API has `launch_path` (0 = type2, 1 = binary), 0
/// if it lacks it, or a negative error.
///
/// # Safety
/// `cann` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn simpler_cann_supports(
    cann: *const simpler_cann,
    launch_path: c_int,
) -> c_int {
    let mut supported = false;
    let code = guard(|| {
        non_null(cann, "cann")?;
        let path = handles::launch_path(launch_path)?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        supported = unsafe { &*cann }.cann().supports(path);
        Ok(())
    });
    if code == status::SIMPLER_OK {
        c_int::from(supported)
    } else {
        code
    }
}

/// The simulator's count of device bytes allocated and not freed on
/// `device`, in `*out` (for leak checks); an error on real CANN.
///
/// # Safety
/// `cann` is NULL or a live handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn simpler_sim_live_bytes(
    cann: *const simpler_cann,
    device: i32,
    out: *mut u64,
) -> c_int {
    guard(|| {
        non_null(cann, "cann")?;
        non_null(out, "out")?;
        // SAFETY: checked non-NULL; a live handle (the caller).
        let stats = unsafe { &*cann }.cann().sim_stats(device)?.ok_or_else(|| {
            Failure::invalid("the loaded CANN API is not the simulator: it keeps no accounting")
        })?;
        // SAFETY: checked non-NULL; the caller guarantees it is writable.
        unsafe { out.write(stats.live_bytes) };
        Ok(())
    })
}
