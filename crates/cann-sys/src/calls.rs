//! Thin wrappers: each call of the [`Api`] table made safe to use, its
//! code turned into a `Result`. Host memory crosses only as Rust slices,
//! whose pointer and length are valid for the duration of the call; device
//! memory crosses as plain `u64` addresses, which the host never
//! dereferences and CANN (or the simulator) validates against its own
//! allocations, so a wrong one is a CANN error or device-side damage,
//! never host memory unsafety.

use std::ffi::{c_void, CStr};
use std::mem::size_of;
use std::ptr::{self, NonNull};

use bytemuck::Pod;
use simpler_abi::cann::{memcpy_kind, ACL_MEM_MALLOC_HUGE_FIRST};
use simpler_abi::{AicpuArgsEx, SimStats};

use crate::sys::{AclError, Launch, SyncStream};
use crate::Api;

/// An `aclrtStream` handle made by [`Api::create_stream`]; not `Copy`, so
/// that [`Api::destroy_stream`], which consumes it, is the last use.
#[derive(Debug)]
pub struct RawStream(NonNull<c_void>);

// SAFETY: an aclrtStream is an opaque process-wide handle, not tied to the
// thread that created it (CANN lets any thread that has set the device use
// it). Its owner serialises the calls made on it.
unsafe impl Send for RawStream {}
// SAFETY: as above; shared references never issue calls on the handle.
unsafe impl Sync for RawStream {}

impl RawStream {
    /// The handle as C sees it.
    pub fn as_ptr(&self) -> *mut c_void {
        self.0.as_ptr()
    }
}

/// `argsSize` of `block`: a `uint32_t`, so a larger block is CANN's "bad
/// argument" rather than a truncated size.
fn args_size(block: &[u8]) -> Result<u32, AclError> {
    u32::try_from(block.len()).map_err(|_| simpler_abi::cann::error::ACL_ERROR_RT_PARAM_INVALID)
}

/// `Ok` for 0, the code otherwise.
pub fn check(code: AclError) -> Result<(), AclError> {
    if code == 0 {
        Ok(())
    } else {
        Err(code)
    }
}

impl Api {
    /// `aclInit(NULL)`.
    pub fn init(&self) -> Result<(), AclError> {
        // SAFETY: a null config path is documented as "no config file".
        check(unsafe { (self.acl_init)(ptr::null()) })
    }

    /// `aclrtGetDeviceCount`.
    pub fn device_count(&self) -> Result<u32, AclError> {
        let mut count = 0u32;
        // SAFETY: `count` is a valid, writable u32 for the call.
        check(unsafe { (self.get_device_count)(&mut count) })?;
        Ok(count)
    }

    /// `aclrtSetDevice`.
    pub fn set_device(&self, device: i32) -> Result<(), AclError> {
        // SAFETY: plain integer argument.
        check(unsafe { (self.set_device)(device) })
    }

    /// `aclrtResetDevice`.
    pub fn reset_device(&self, device: i32) -> Result<(), AclError> {
        // SAFETY: plain integer argument.
        check(unsafe { (self.reset_device)(device) })
    }

    /// `aclrtCreateStream`.
    pub fn create_stream(&self) -> Result<RawStream, AclError> {
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
    pub fn destroy_stream(&self, stream: RawStream) -> Result<(), AclError> {
        // SAFETY: `stream` came from `create_stream` and is consumed here, so
        // no call is made on it afterwards.
        check(unsafe { (self.destroy_stream)(stream.0.as_ptr()) })
    }

    /// The two calls made on a stream per launch, copied out so that a
    /// [`StreamCalls`] reaches them without going through the `Api`.
    pub fn stream_calls(&self) -> StreamCalls {
        StreamCalls {
            launch: self.launch,
            sync: self.sync_stream,
        }
    }

    /// `aclrtMalloc(len, HUGE_FIRST)`, returning the device address.
    pub fn malloc(&self, len: usize) -> Result<u64, AclError> {
        let mut raw: *mut c_void = ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; the policy is a C enum value.
        check(unsafe { (self.malloc)(&mut raw, len, ACL_MEM_MALLOC_HUGE_FIRST) })?;
        Ok(raw as u64)
    }

    /// `aclrtFree` of an address returned by [`Api::malloc`].
    pub fn free(&self, addr: u64) -> Result<(), AclError> {
        // SAFETY: the address is a device allocation the caller owns and
        // frees exactly once; the host never dereferences it.
        check(unsafe { (self.free)(addr as *mut c_void) })
    }

    /// `aclrtMemcpy` host → device: `src` to `dst`, where `dst_capacity`
    /// bytes starting at `dst` belong to one device allocation.
    pub fn copy_to_device(
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
    pub fn copy_from_device(&self, dst: &mut [u8], src: u64) -> Result<(), AclError> {
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
    pub fn recent_error(&self) -> Option<String> {
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
    pub fn sim_stats(&self, device: i32) -> Option<Result<SimStats, AclError>> {
        let get = self.sim_get_stats?;
        let mut stats = SimStats::default();
        // SAFETY: `stats` is a valid, writable SimStats for the call.
        Some(check(unsafe { get(device, &mut stats) }).map(|()| stats))
    }

    /// `simpler_sim_device_machine`, when the library is the simulator.
    pub fn sim_device_machine(&self) -> Option<u32> {
        let get = self.sim_device_machine?;
        // SAFETY: no arguments, returns a plain integer.
        Some(unsafe { get() })
    }

    /// `simpler_sim_ping`: `count` round trips over the control channel of
    /// the calling thread's current device, when the library is the
    /// simulator.
    pub fn sim_ping(&self, count: u32) -> Option<Result<(), AclError>> {
        let ping = self.sim_ping?;
        // SAFETY: a plain integer argument; the simulator answers a thread
        // without a current device with an error code.
        Some(check(unsafe { ping(count) }))
    }
}

/// `rtAicpuKernelLaunchExWithArgs` and `aclrtSynchronizeStreamWithTimeout`
/// of one [`Api`], for the launch hot path: one load each instead of a
/// walk through the handles that own the `Api`.
///
/// Valid while the libraries of its `Api` stay loaded; every holder also
/// holds (through its `Device`) the `Cann` that owns the `Api`.
#[derive(Clone, Copy)]
pub struct StreamCalls {
    launch: Launch,
    sync: SyncStream,
}

impl StreamCalls {
    /// `aclrtSynchronizeStreamWithTimeout`; `timeout_ms` -1 waits forever.
    pub fn sync(&self, stream: &RawStream, timeout_ms: i32) -> Result<(), AclError> {
        // SAFETY: `stream` is a live handle owned by the caller; the
        // pointer's library is loaded (see the type's documentation).
        check(unsafe { (self.sync)(stream.0.as_ptr(), timeout_ms) })
    }

    /// `rtAicpuKernelLaunchExWithArgs(kernel_type, op_name, block_dim, …)`
    /// with `block` as the argument block and the two name offsets inside
    /// it. The runtime copies `block` to device memory before returning.
    pub fn launch(&self, launch: &LaunchDesc<'_>, stream: &RawStream) -> Result<(), AclError> {
        let args = AicpuArgsEx {
            args: launch.block.as_ptr() as u64,
            args_size: args_size(launch.block)?,
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
    pub fn launch_prepared<B: Pod>(
        &self,
        launch: &PreparedLaunch<B>,
        stream: &RawStream,
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
        stream: &RawStream,
    ) -> Result<(), AclError> {
        // SAFETY: the block is as the caller guarantees; the runtime copies
        // it before it returns (`docs/design.md`), so nothing refers to it
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
pub struct PreparedLaunch<B> {
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
    pub fn new(
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
    pub fn block_mut(&mut self) -> &mut B {
        &mut self.parts.block
    }
}

/// What [`StreamCalls::launch`] sends.
pub struct LaunchDesc<'a> {
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

/// An `aclrtStream` the application created and owns, lent to simpler: it
/// is launched on and synchronised, never destroyed.
#[derive(Debug)]
pub struct BorrowedStream(RawStream);

impl BorrowedStream {
    /// Lends `stream` to simpler; `None` for NULL.
    ///
    /// # Safety
    /// `stream` is an `aclrtStream` of the CANN library simpler loaded,
    /// created on the device it is used with, and stays alive (not
    /// destroyed, its device not reset) for as long as the returned value
    /// and anything made from it live.
    pub unsafe fn new(stream: *mut c_void) -> Option<BorrowedStream> {
        NonNull::new(stream).map(|raw| BorrowedStream(RawStream(raw)))
    }

    /// The handle, for the launch and sync calls.
    pub fn raw(&self) -> &RawStream {
        &self.0
    }
}

/// A binary loaded by [`BinaryCalls::load_json`]; not `Copy`, so that
/// [`BinaryCalls::unload`], which consumes it, is the last use.
#[derive(Debug)]
pub struct RawBinary(NonNull<c_void>);

/// A kernel of a [`RawBinary`], valid until that binary is unloaded (CANN
/// answers a stale one with `ACL_ERROR_RT_INVALID_HANDLE`).
#[derive(Clone, Copy, Debug)]
pub struct RawFunc(NonNull<c_void>);

// SAFETY: binary and function handles are process-wide CANN objects, not
// tied to the thread that made them; CANN locks its own registries.
unsafe impl Send for RawBinary {}
// SAFETY: as above; shared references only launch through the handle.
unsafe impl Sync for RawBinary {}
// SAFETY: as for RawBinary.
unsafe impl Send for RawFunc {}
// SAFETY: as for RawBinary.
unsafe impl Sync for RawFunc {}

/// The four calls of the binary-handle launch path, copied out of the
/// [`Api`] (present only when the libraries export all of them).
///
/// Valid while the libraries of its `Api` stay loaded, as [`StreamCalls`].
#[derive(Clone, Copy)]
pub struct BinaryCalls {
    pub(crate) load_from_file: crate::sys::BinaryLoadFromFile,
    pub(crate) unload: crate::sys::BinaryUnload,
    pub(crate) func_get_by_name: crate::sys::FuncGetByName,
    pub(crate) launch_cpu_kernel: crate::sys::LaunchCpuKernel,
}

impl std::fmt::Debug for BinaryCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryCalls").finish_non_exhaustive()
    }
}

impl BinaryCalls {
    /// `rtsBinaryLoadFromFile(path, {CPU_KERNEL_MODE = 0})`: registers the
    /// CPU kernels of the JSON op descriptor at `path` (CANN reads the path
    /// with its extension replaced by `.json`) whose SOs are already on
    /// the device.
    pub fn load_json(&self, path: &CStr) -> Result<RawBinary, AclError> {
        let option = simpler_abi::rts::LoadBinaryOption::cpu_kernel_mode(
            simpler_abi::rts::cpu_kernel_mode::JSON_ONLY,
        );
        let config = simpler_abi::rts::LoadBinaryConfig {
            options: ptr::from_ref(&option) as u64,
            num_opt: 1,
        };
        let mut raw: *mut c_void = ptr::null_mut();
        // SAFETY: `path` is NUL-terminated; `config` points at one live
        // option for the call; `raw` is a valid out-pointer.
        check(unsafe { (self.load_from_file)(path.as_ptr(), &config, &mut raw) })?;
        NonNull::new(raw)
            .map(RawBinary)
            .ok_or(simpler_abi::cann::error::ACL_ERROR_RT_PARAM_INVALID)
    }

    /// `rtsBinaryUnload`.
    pub fn unload(&self, binary: RawBinary) -> Result<(), AclError> {
        // SAFETY: `binary` came from `load_json` and is consumed here.
        check(unsafe { (self.unload)(binary.0.as_ptr()) })
    }

    /// `rtsFuncGetByName(binary, op_type)`.
    pub fn function(&self, binary: &RawBinary, op_type: &CStr) -> Result<RawFunc, AclError> {
        let mut raw: *mut c_void = ptr::null_mut();
        // SAFETY: `binary` is a live handle; `op_type` is NUL-terminated;
        // `raw` is a valid out-pointer.
        check(unsafe { (self.func_get_by_name)(binary.0.as_ptr(), op_type.as_ptr(), &mut raw) })?;
        NonNull::new(raw)
            .map(RawFunc)
            .ok_or(simpler_abi::cann::error::ACL_ERROR_RT_PARAM_INVALID)
    }

    /// `rtsLaunchCpuKernel(func, block_dim, stream, cfg, args)` with
    /// `block` as the argument block (names from the registration) and the
    /// kernel's parameter at `param_offset` inside it. CANN copies `block`
    /// to device memory before returning.
    pub fn launch(
        &self,
        func: &RawFunc,
        block_dim: u32,
        stream: &RawStream,
        block: &[u8],
        param_offset: u64,
    ) -> Result<(), AclError> {
        let mut args = simpler_abi::rts::CpuKernelArgs {
            base_args: AicpuArgsEx {
                args: block.as_ptr() as u64,
                args_size: args_size(block)?,
                ..AicpuArgsEx::default()
            },
            cpu_param_head_offset: param_offset,
            rsv: [0; 4],
        };
        // CANN refuses a NULL attribute list even when it is empty.
        let attr = simpler_abi::rts::LaunchKernelAttr::default();
        let cfg = simpler_abi::rts::KernelLaunchCfg {
            attrs: ptr::from_ref(&attr) as u64,
            num_attrs: 0,
        };
        // SAFETY: `args` describes `block`, a live slice borrowed for the
        // whole call, which CANN copies before returning; `cfg` points at
        // one live attribute; `func` and `stream` are live handles; the
        // pointers' library is loaded (see the type).
        check(unsafe {
            (self.launch_cpu_kernel)(
                func.0.as_ptr(),
                block_dim,
                stream.0.as_ptr(),
                &cfg,
                &mut args,
            )
        })
    }
}
