//! The raw CANN API: one table of C function pointers resolved from the
//! loaded libraries, and thin wrappers that make each call safe to use from
//! the rest of the crate. Every `unsafe` block of the crate lives in this
//! module.
//!
//! Device addresses cross this boundary as plain `u64`: the host never
//! dereferences them, and CANN (or the simulator) validates them against its
//! own allocations, so a wrong one is a CANN error or device-side damage,
//! never host memory unsafety. Host memory always crosses as a Rust slice,
//! whose pointer and length are valid for the duration of the call.

use std::ffi::{c_char, c_void, CStr};
use std::mem::size_of;
use std::path::PathBuf;
use std::ptr::{self, NonNull};

use bytemuck::Pod;
use libloading::Library;
use simpler_abi::cann::{memcpy_kind, ACL_MEM_MALLOC_HUGE_FIRST};
use simpler_abi::sim::{SIM_DEVICE_MACHINE_SYMBOL, SIM_GET_STATS_SYMBOL};
use simpler_abi::{AicpuArgsEx, SimStats};

use crate::error::LoadError;

/// `aclError` / `rtError_t`: 0 is success.
pub(crate) type AclError = i32;

type AclInit = unsafe extern "C" fn(*const c_char) -> AclError;
type GetDeviceCount = unsafe extern "C" fn(*mut u32) -> AclError;
type DeviceFn = unsafe extern "C" fn(i32) -> AclError;
type CreateStream = unsafe extern "C" fn(*mut *mut c_void) -> AclError;
type DestroyStream = unsafe extern "C" fn(*mut c_void) -> AclError;
type SyncStream = unsafe extern "C" fn(*mut c_void, i32) -> AclError;
type Malloc = unsafe extern "C" fn(*mut *mut c_void, usize, u32) -> AclError;
type Free = unsafe extern "C" fn(*mut c_void) -> AclError;
type Memcpy = unsafe extern "C" fn(*mut c_void, usize, *const c_void, usize, u32) -> AclError;
type RecentErrMsg = unsafe extern "C" fn() -> *const c_char;
type Launch = unsafe extern "C" fn(
    u32,
    *const c_char,
    u32,
    *const AicpuArgsEx,
    *mut c_void,
    *mut c_void,
    u32,
) -> AclError;
type SimGetStats = unsafe extern "C" fn(i32, *mut SimStats) -> i32;
type SimDeviceMachine = unsafe extern "C" fn() -> u32;

/// One resolved symbol and the library it came from, for `simpler doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSymbol {
    /// The C symbol name.
    pub symbol: &'static str,
    /// The library that provided it, `None` for an optional symbol that no
    /// library exports.
    pub library: Option<PathBuf>,
}

/// An `aclrtStream` handle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawStream(NonNull<c_void>);

// SAFETY: an aclrtStream is an opaque process-wide handle, not tied to the
// thread that created it (CANN lets any thread that has set the device use
// it). The crate only launches on and synchronises a stream through
// `&mut DeviceRunner`, so it is never used from two threads at once.
unsafe impl Send for RawStream {}
// SAFETY: as above; shared references never issue calls on the handle.
unsafe impl Sync for RawStream {}

/// The CANN API of DESIGN section 3, resolved from one or more libraries.
pub(crate) struct Api {
    acl_init: AclInit,
    get_device_count: GetDeviceCount,
    set_device: DeviceFn,
    reset_device: DeviceFn,
    create_stream: CreateStream,
    destroy_stream: DestroyStream,
    sync_stream: SyncStream,
    malloc: Malloc,
    free: Free,
    memcpy: Memcpy,
    recent_err_msg: RecentErrMsg,
    launch: Launch,
    sim_get_stats: Option<SimGetStats>,
    sim_device_machine: Option<SimDeviceMachine>,
    symbols: Vec<ResolvedSymbol>,
    // Declared last: dropped after the pointers above. In practice the API
    // lives in a process-wide table and is never dropped, because CANN does
    // not support being unloaded while its threads run.
    _libraries: Vec<Library>,
}

/// Opens `paths` in order and resolves every required symbol from the
/// first library that exports it.
pub(crate) fn load(paths: &[PathBuf]) -> Result<Api, LoadError> {
    let mut libraries = Vec::with_capacity(paths.len());
    for path in paths {
        // SAFETY: opening a library runs its initialisers. The caller chose
        // these files as CANN (or CANN-compatible) libraries; running their
        // initialisers is the documented way to use them.
        let lib = unsafe { Library::new(path) }.map_err(|e| LoadError::Open {
            library: path.clone(),
            reason: e.to_string(),
        })?;
        libraries.push(lib);
    }
    let mut resolver = Resolver {
        paths,
        libraries: &libraries,
        symbols: Vec::new(),
    };
    // SAFETY: for every `required`/`optional` call below, the function
    // pointer type is the C signature DESIGN section 3 gives for that name
    // (CANN 8.x/9.x headers; the simulator exports the same signatures).
    let mut api = unsafe {
        Api {
            acl_init: resolver.required(b"aclInit\0")?,
            get_device_count: resolver.required(b"aclrtGetDeviceCount\0")?,
            set_device: resolver.required(b"aclrtSetDevice\0")?,
            reset_device: resolver.required(b"aclrtResetDevice\0")?,
            create_stream: resolver.required(b"aclrtCreateStream\0")?,
            destroy_stream: resolver.required(b"aclrtDestroyStream\0")?,
            sync_stream: resolver.required(b"aclrtSynchronizeStreamWithTimeout\0")?,
            malloc: resolver.required(b"aclrtMalloc\0")?,
            free: resolver.required(b"aclrtFree\0")?,
            memcpy: resolver.required(b"aclrtMemcpy\0")?,
            recent_err_msg: resolver.required(b"aclGetRecentErrMsg\0")?,
            launch: resolver.required(b"rtAicpuKernelLaunchExWithArgs\0")?,
            sim_get_stats: resolver.optional(SIM_GET_STATS),
            sim_device_machine: resolver.optional(SIM_DEVICE_MACHINE),
            symbols: Vec::new(),
            _libraries: Vec::new(),
        }
    };
    api.symbols = resolver.symbols;
    api._libraries = libraries;
    Ok(api)
}

const SIM_GET_STATS: &[u8] = b"simpler_sim_get_stats\0";
const SIM_DEVICE_MACHINE: &[u8] = b"simpler_sim_device_machine\0";
const _: () = assert!(same_name(SIM_GET_STATS, SIM_GET_STATS_SYMBOL));
const _: () = assert!(same_name(SIM_DEVICE_MACHINE, SIM_DEVICE_MACHINE_SYMBOL));

/// Whether `c_name` is `name` followed by one NUL.
const fn same_name(c_name: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    if c_name.len() != name.len() + 1 || c_name[name.len()] != 0 {
        return false;
    }
    let mut i = 0;
    while i < name.len() {
        if c_name[i] != name[i] {
            return false;
        }
        i += 1;
    }
    true
}

struct Resolver<'a> {
    paths: &'a [PathBuf],
    libraries: &'a [Library],
    symbols: Vec<ResolvedSymbol>,
}

impl Resolver<'_> {
    /// Looks `name` (NUL-terminated) up in each library in order.
    ///
    /// # Safety
    /// `T` must be the function pointer type of the C symbol `name`.
    unsafe fn find<T: Copy>(&mut self, name: &'static [u8]) -> Option<T> {
        let text = symbol_text(name);
        for (lib, path) in self.libraries.iter().zip(self.paths) {
            // SAFETY: the caller guarantees `T` matches the symbol's type;
            // the pointer is copied out and stays valid because the library
            // is kept loaded by `Api::_libraries` for as long as `Api` lives.
            if let Ok(sym) = unsafe { lib.get::<T>(name) } {
                self.symbols.push(ResolvedSymbol {
                    symbol: text,
                    library: Some(path.clone()),
                });
                return Some(*sym);
            }
        }
        None
    }

    /// # Safety
    /// As [`Resolver::find`].
    unsafe fn required<T: Copy>(&mut self, name: &'static [u8]) -> Result<T, LoadError> {
        // SAFETY: forwarded to the caller.
        unsafe { self.find(name) }.ok_or_else(|| LoadError::MissingSymbol {
            symbol: symbol_text(name),
            libraries: self.paths.to_vec(),
        })
    }

    /// # Safety
    /// As [`Resolver::find`].
    unsafe fn optional<T: Copy>(&mut self, name: &'static [u8]) -> Option<T> {
        // SAFETY: forwarded to the caller.
        let found = unsafe { self.find(name) };
        if found.is_none() {
            self.symbols.push(ResolvedSymbol {
                symbol: symbol_text(name),
                library: None,
            });
        }
        found
    }
}

fn symbol_text(name: &'static [u8]) -> &'static str {
    CStr::from_bytes_with_nul(name)
        .ok()
        .and_then(|c| c.to_str().ok())
        .unwrap_or("?")
}

fn check(code: AclError) -> Result<(), AclError> {
    if code == 0 {
        Ok(())
    } else {
        Err(code)
    }
}

impl Api {
    /// Every symbol looked up, with the library that provided it.
    pub(crate) fn symbols(&self) -> &[ResolvedSymbol] {
        &self.symbols
    }

    /// `aclInit(NULL)`.
    pub(crate) fn init(&self) -> Result<(), AclError> {
        // SAFETY: a null config path is documented as "no config file".
        check(unsafe { (self.acl_init)(ptr::null()) })
    }

    /// `aclrtGetDeviceCount`.
    pub(crate) fn device_count(&self) -> Result<u32, AclError> {
        let mut count = 0u32;
        // SAFETY: `count` is a valid, writable u32 for the call.
        check(unsafe { (self.get_device_count)(&mut count) })?;
        Ok(count)
    }

    /// `aclrtSetDevice`.
    pub(crate) fn set_device(&self, device: i32) -> Result<(), AclError> {
        // SAFETY: plain integer argument.
        check(unsafe { (self.set_device)(device) })
    }

    /// `aclrtResetDevice`.
    pub(crate) fn reset_device(&self, device: i32) -> Result<(), AclError> {
        // SAFETY: plain integer argument.
        check(unsafe { (self.reset_device)(device) })
    }

    /// `aclrtCreateStream`.
    pub(crate) fn create_stream(&self) -> Result<RawStream, AclError> {
        let mut raw: *mut c_void = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer for the call.
        check(unsafe { (self.create_stream)(&mut raw) })?;
        // A success with a null handle would be a broken library; report it
        // as CANN's own "bad argument" rather than carry a null around.
        NonNull::new(raw)
            .map(RawStream)
            .ok_or(simpler_abi::cann::error::ACL_ERROR_RT_PARAM_INVALID)
    }

    /// `aclrtDestroyStream`.
    pub(crate) fn destroy_stream(&self, stream: RawStream) -> Result<(), AclError> {
        // SAFETY: `stream` came from `create_stream` and the caller destroys
        // it exactly once (the owning `Stream` is being dropped).
        check(unsafe { (self.destroy_stream)(stream.0.as_ptr()) })
    }

    /// The two calls made on a stream per launch, copied out so that a
    /// [`StreamCalls`] reaches them without going through the `Api`.
    pub(crate) fn stream_calls(&self) -> StreamCalls {
        StreamCalls {
            launch: self.launch,
            sync: self.sync_stream,
        }
    }

    /// `aclrtMalloc(len, HUGE_FIRST)`, returning the device address.
    pub(crate) fn malloc(&self, len: usize) -> Result<u64, AclError> {
        let mut raw: *mut c_void = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; the policy is a C enum value.
        check(unsafe { (self.malloc)(&mut raw, len, ACL_MEM_MALLOC_HUGE_FIRST) })?;
        Ok(raw as u64)
    }

    /// `aclrtFree` of an address returned by [`Api::malloc`].
    pub(crate) fn free(&self, addr: u64) -> Result<(), AclError> {
        // SAFETY: the address is a device allocation the caller owns and
        // frees exactly once; the host never dereferences it.
        check(unsafe { (self.free)(addr as *mut c_void) })
    }

    /// `aclrtMemcpy` host → device: `src` to `dst`, where `dst_capacity`
    /// bytes starting at `dst` belong to one device allocation.
    pub(crate) fn copy_to_device(
        &self,
        dst: u64,
        dst_capacity: usize,
        src: &[u8],
    ) -> Result<(), AclError> {
        // SAFETY: `src` is a live slice of `src.len()` readable bytes; the
        // device side is validated by CANN against `dst_capacity`.
        check(unsafe {
            (self.memcpy)(
                dst as *mut c_void,
                dst_capacity,
                src.as_ptr().cast(),
                src.len(),
                memcpy_kind::HOST_TO_DEVICE,
            )
        })
    }

    /// `aclrtMemcpy` device → host: `dst.len()` bytes from `src`.
    pub(crate) fn copy_from_device(&self, dst: &mut [u8], src: u64) -> Result<(), AclError> {
        // SAFETY: `dst` is a live, exclusively borrowed slice of
        // `dst.len()` writable bytes, passed as its own capacity.
        check(unsafe {
            (self.memcpy)(
                dst.as_mut_ptr().cast(),
                dst.len(),
                src as *const c_void,
                dst.len(),
                memcpy_kind::DEVICE_TO_HOST,
            )
        })
    }

    /// `aclGetRecentErrMsg`, if the library has a message.
    pub(crate) fn recent_error(&self) -> Option<String> {
        // SAFETY: no arguments; the result is null or a NUL-terminated
        // string owned by the library.
        let msg = unsafe { (self.recent_err_msg)() };
        if msg.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated, valid until the next ACL call on
        // this thread; copied out before returning.
        let text = unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .trim()
            .to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// `simpler_sim_get_stats`, when the library is the simulator.
    pub(crate) fn sim_stats(&self, device: i32) -> Option<Result<SimStats, AclError>> {
        let get = self.sim_get_stats?;
        let mut stats = SimStats::default();
        // SAFETY: `stats` is a valid, writable SimStats for the call.
        Some(check(unsafe { get(device, &mut stats) }).map(|()| stats))
    }

    /// Whether the library exports the simulator's symbols.
    pub(crate) fn is_simulator(&self) -> bool {
        self.sim_device_machine.is_some()
    }

    /// `simpler_sim_device_machine`, when the library is the simulator.
    pub(crate) fn sim_device_machine(&self) -> Option<u32> {
        let get = self.sim_device_machine?;
        // SAFETY: no arguments, returns a plain integer.
        Some(unsafe { get() })
    }
}

/// `rtAicpuKernelLaunchExWithArgs` and `aclrtSynchronizeStreamWithTimeout`
/// of one [`Api`], for the launch hot path: one load each instead of a
/// walk through the handles that own the `Api`.
///
/// Valid while the libraries of its `Api` stay loaded; every holder also
/// holds (through its `Device`) the `Cann` that owns the `Api`.
#[derive(Clone, Copy)]
pub(crate) struct StreamCalls {
    launch: Launch,
    sync: SyncStream,
}

impl StreamCalls {
    /// `aclrtSynchronizeStreamWithTimeout`; `timeout_ms` -1 waits forever.
    pub(crate) fn sync(&self, stream: RawStream, timeout_ms: i32) -> Result<(), AclError> {
        // SAFETY: `stream` is a live handle owned by the caller; the
        // pointer's library is loaded (see the type's documentation).
        check(unsafe { (self.sync)(stream.0.as_ptr(), timeout_ms) })
    }

    /// `rtAicpuKernelLaunchExWithArgs(kernel_type, op_name, block_dim, …)`
    /// with `block` as the argument block and the two name offsets inside
    /// it. The runtime copies `block` to device memory before returning.
    pub(crate) fn launch(
        &self,
        launch: &LaunchDesc<'_>,
        stream: RawStream,
    ) -> Result<(), AclError> {
        let args = AicpuArgsEx {
            args: launch.block.as_ptr() as u64,
            args_size: launch.block.len() as u32,
            so_name_addr_offset: launch.so_name_offset,
            kernel_name_addr_offset: launch.kernel_name_offset,
            is_no_need_h2d_copy: 0,
            ..AicpuArgsEx::default()
        };
        // SAFETY: `args` describes `launch.block`, a live slice borrowed for
        // the whole call.
        unsafe {
            self.raw_launch(
                launch.kernel_type,
                launch.op_name,
                launch.block_dim,
                &args,
                stream,
            )
        }
    }

    /// [`StreamCalls::launch`] of a launch prepared once.
    #[inline]
    pub(crate) fn launch_prepared<B: Pod>(
        &self,
        launch: &PreparedLaunch<B>,
        stream: RawStream,
    ) -> Result<(), AclError> {
        let parts = &*launch.parts;
        // SAFETY: `parts.args` was made by `PreparedLaunch::new` to describe
        // `parts.block`, which lives in the same box, is borrowed (shared)
        // for the whole call and has the size `args_size` says.
        unsafe {
            self.raw_launch(
                launch.kernel_type,
                launch.op_name,
                launch.block_dim,
                &parts.args,
                stream,
            )
        }
    }

    /// # Safety
    /// `args.args` is the address of `args.args_size` readable bytes, live
    /// for the call, with NUL-terminated names at the two offsets.
    #[inline]
    unsafe fn raw_launch(
        &self,
        kernel_type: u32,
        op_name: &CStr,
        block_dim: u32,
        args: &AicpuArgsEx,
        stream: RawStream,
    ) -> Result<(), AclError> {
        // SAFETY: the block is as the caller guarantees; the runtime copies
        // it before it returns (DESIGN section 3), so nothing refers to it
        // or to `args` afterwards. `op_name` is NUL-terminated; `smDesc`
        // may be null; `stream` is a live handle; the pointer's library is
        // loaded (see the type).
        check(unsafe {
            (self.launch)(
                kernel_type,
                op_name.as_ptr(),
                block_dim,
                args,
                ptr::null_mut(),
                stream.0.as_ptr(),
                0,
            )
        })
    }
}

/// A launch made many times with the same names and a new payload each
/// time (the per-task launch): its argument block and `rtAicpuArgsEx_t`
/// are built once, and a call rewrites only what changed.
pub(crate) struct PreparedLaunch<B> {
    /// Boxed so that `args.args`, the block's address, stays true when
    /// the owner moves.
    parts: Box<Prepared<B>>,
    kernel_type: u32,
    op_name: &'static CStr,
    block_dim: u32,
}

struct Prepared<B> {
    block: B,
    args: AicpuArgsEx,
}

impl<B: Pod> PreparedLaunch<B> {
    /// `block` (names at the two offsets) launched as `kernel_type`
    /// `op_name` on `block_dim` AICPU threads.
    pub(crate) fn new(
        kernel_type: u32,
        op_name: &'static CStr,
        block_dim: u32,
        block: B,
        so_name_offset: u32,
        kernel_name_offset: u32,
    ) -> Self {
        let mut parts = Box::new(Prepared {
            block,
            args: AicpuArgsEx::default(),
        });
        parts.args = AicpuArgsEx {
            args: ptr::from_ref(&parts.block) as u64,
            args_size: size_of::<B>() as u32,
            so_name_addr_offset: so_name_offset,
            kernel_name_addr_offset: kernel_name_offset,
            is_no_need_h2d_copy: 0,
            ..AicpuArgsEx::default()
        };
        Self {
            parts,
            kernel_type,
            op_name,
            block_dim,
        }
    }

    /// The argument block, to rewrite between launches (its address does
    /// not change).
    pub(crate) fn block_mut(&mut self) -> &mut B {
        &mut self.parts.block
    }
}

/// What [`StreamCalls::launch`] sends.
pub(crate) struct LaunchDesc<'a> {
    /// `KERNEL_TYPE_AICPU` or `KERNEL_TYPE_AICPU_KFC`.
    pub kernel_type: u32,
    /// `opName`.
    pub op_name: &'a CStr,
    /// `blockDim`.
    pub block_dim: u32,
    /// The whole argument block (names included).
    pub block: &'a [u8],
    /// `soNameAddrOffset`.
    pub so_name_offset: u32,
    /// `kernelNameAddrOffset`.
    pub kernel_name_offset: u32,
}
