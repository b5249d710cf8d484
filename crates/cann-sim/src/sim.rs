//! The library's process-wide state and the operations behind each C entry
//! point, in safe Rust on addresses and slices. `ffi` turns the C caller's
//! pointers into those, and results into codes.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use simpler_abi::cann::memcpy_kind;
use simpler_abi::names::{KERNEL_TYPE_AICPU, KERNEL_TYPE_AICPU_KFC};
use simpler_abi::rts::{CpuKernelArgs, KernelLaunchCfg, LaunchKernelAttr};
use simpler_abi::sim::env;
use simpler_abi::{AicpuArgsEx, SimStats};

use crate::binary::{self, LoadConfig, Registry};
use crate::config::{Config, DEVICE_BASE, DEVICE_STRIDE, MAX_DEVICES};
pub use crate::device::LaunchArgs;
use crate::device::{device_base, Counters, Device, LaunchSpec};
use crate::error::*;
use crate::sys::Reservation;

/// Largest argument block a launch accepts.
const MAX_ARGS_SIZE: u32 = 1 << 20;
/// First stream handle; handles only need to be non-NULL and unique.
const STREAM_HANDLE_BASE: u64 = 0x5354_0000_0000;

/// What lives for the whole host process: the address reservations (so
/// device pointers keep faulting after a reset) and the counters (which
/// survive resets so restarts can be counted).
struct Persistent {
    reservations: Vec<Option<Reservation>>,
    counters: Vec<Arc<Counters>>,
}

/// State between `aclInit`/first use and `aclFinalize`.
struct Sim {
    config: Config,
    initialized: bool,
    slots: Vec<Slot>,
    /// Stream handle → device id.
    streams: HashMap<u64, u32>,
    next_stream: u64,
    calls: FaultCalls,
    /// Binary and function handles.
    binaries: Registry,
}

#[derive(Default)]
struct Slot {
    /// `aclrtSetDevice` calls not yet matched by `aclrtResetDevice`.
    refs: u32,
    device: Option<Arc<Device>>,
}

/// Calls counted for fault injection (1-based, per host process).
#[derive(Default)]
struct FaultCalls {
    malloc: u64,
    memcpy: u64,
    launch: u64,
    sync: u64,
    binary_load: u64,
    func_get: u64,
}

static PERSISTENT: Mutex<Option<Persistent>> = Mutex::new(None);
static SIM: Mutex<Option<Sim>> = Mutex::new(None);

thread_local! {
    /// The calling thread's current device (CANN's per-thread context).
    static CURRENT: Cell<Option<u32>> = const { Cell::new(None) };
}

fn persistent() -> MutexGuard<'static, Option<Persistent>> {
    let mut p = PERSISTENT.lock().unwrap_or_else(|e| e.into_inner());
    p.get_or_insert_with(|| Persistent {
        reservations: (0..MAX_DEVICES).map(|_| None).collect(),
        counters: (0..MAX_DEVICES).map(|_| Arc::default()).collect(),
    });
    p
}

fn counters(device: u32) -> Arc<Counters> {
    Arc::clone(&persistent().as_ref().expect("initialised above").counters[device as usize])
}

/// Runs `f` on the state, creating it from the environment on first use.
fn with_sim<T>(f: impl FnOnce(&mut Sim) -> AclResult<T>) -> AclResult<T> {
    let mut guard = SIM.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let config = Config::from_env()?;
        *guard = Some(Sim {
            slots: (0..config.device_count).map(|_| Slot::default()).collect(),
            config,
            initialized: false,
            streams: HashMap::new(),
            next_stream: STREAM_HANDLE_BASE,
            calls: FaultCalls::default(),
            binaries: Registry::default(),
        });
    }
    f(guard.as_mut().expect("just created"))
}

impl Sim {
    fn check_id(&self, device: i32) -> AclResult<u32> {
        u32::try_from(device)
            .ok()
            .filter(|&d| d < self.config.device_count)
            .ok_or_else(|| {
                AclError::new(
                    ACL_ERROR_RT_INVALID_DEVICEID,
                    format!(
                        "device id {device} is out of range: the simulator has {} device(s) ({})",
                        self.config.device_count,
                        env::DEVICE_COUNT
                    ),
                )
            })
    }

    /// The calling thread's current device, which must be set and running.
    fn current(&self) -> AclResult<Arc<Device>> {
        let id = CURRENT.with(Cell::get).ok_or_else(|| {
            AclError::new(
                ACL_ERROR_RT_CONTEXT_NULL,
                "this thread has no current device: call aclrtSetDevice on it first",
            )
        })?;
        self.slots
            .get(id as usize)
            .and_then(|s| s.device.clone())
            .ok_or_else(|| {
                AclError::new(
                    ACL_ERROR_RT_CONTEXT_NULL,
                    format!("this thread's device {id} was reset: call aclrtSetDevice again"),
                )
            })
    }

    /// The device whose window holds `addr`, if that device is set.
    fn device_of(&self, addr: u64) -> Option<Arc<Device>> {
        if addr < DEVICE_BASE {
            return None;
        }
        let id = (addr - DEVICE_BASE) / DEVICE_STRIDE;
        self.slots.get(id as usize)?.device.clone()
    }

    fn device_ptr(&self, addr: u64, what: &str) -> AclResult<Arc<Device>> {
        self.device_of(addr).ok_or_else(|| {
            AclError::param(if is_device_addr(addr) {
                format!("{what} {addr:#x} belongs to a device that is not set (or was reset)")
            } else {
                format!("{what} {addr:#x} is not a device address")
            })
        })
    }

    fn stream(&self, handle: u64) -> AclResult<(Arc<Device>, u64)> {
        if handle == 0 {
            let device = self.current()?;
            let stream = device.default_stream;
            return Ok((device, stream));
        }
        let id = *self
            .streams
            .get(&handle)
            .ok_or_else(|| AclError::param(format!("stream {handle:#x} is not a live stream")))?;
        let device = self.slots[id as usize].device.clone().ok_or_else(|| {
            AclError::param(format!(
                "stream {handle:#x} belonged to device {id}, which was reset"
            ))
        })?;
        Ok((device, handle))
    }

    fn new_stream_handle(&mut self) -> u64 {
        self.next_stream += 1;
        self.next_stream
    }

    fn tear_down(&mut self, id: u32) {
        if let Some(device) = self.take_device(id) {
            device.stop();
        }
    }

    /// Forgets device `id` and its streams; the caller stops the device.
    fn take_device(&mut self, id: u32) -> Option<Arc<Device>> {
        let slot = &mut self.slots[id as usize];
        slot.refs = 0;
        self.streams.retain(|_, d| *d != id);
        self.binaries.drop_device(id);
        slot.device.take()
    }
}

/// Whether `addr` is in some device's window, set or not.
fn is_device_addr(addr: u64) -> bool {
    addr >= DEVICE_BASE && (addr - DEVICE_BASE) / DEVICE_STRIDE < u64::from(MAX_DEVICES)
}

/// `aclInit`: (re)reads the configuration when nothing is running.
pub fn init(config_path: Option<&std::path::Path>) -> AclResult<()> {
    if let Some(path) = config_path {
        if !path.is_file() {
            return Err(AclError::param(format!(
                "config file {} does not exist (pass NULL for none)",
                path.display()
            )));
        }
    }
    let mut guard = SIM.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = guard.as_ref() {
        if sim.initialized {
            return Err(AclError::new(
                ACL_ERROR_REPEAT_INITIALIZE,
                "aclInit was already called; call aclFinalize first",
            ));
        }
        if sim.slots.iter().all(|s| s.device.is_none()) {
            *guard = None;
        }
    }
    drop(guard);
    with_sim(|sim| {
        sim.initialized = true;
        Ok(())
    })
}

/// `aclFinalize`: stops every device process and forgets all state. The
/// devices are stopped together, so finalize takes as long as the slowest
/// one (see [`Device::stop`]).
pub fn finalize() -> AclResult<()> {
    let mut guard = SIM.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(sim) = guard.as_mut() {
        let devices: Vec<Arc<Device>> = (0..sim.slots.len() as u32)
            .filter_map(|id| sim.take_device(id))
            .collect();
        for device in &devices {
            device.begin_stop();
        }
        for device in &devices {
            device.finish_stop();
        }
    }
    *guard = None;
    Ok(())
}

/// `aclrtGetDeviceCount`.
pub fn device_count() -> AclResult<u32> {
    with_sim(|sim| Ok(sim.config.device_count))
}

/// `aclrtSetDevice`: makes `device` current on this thread, starting its
/// process on the first reference.
pub fn set_device(device: i32) -> AclResult<()> {
    with_sim(|sim| {
        let id = sim.check_id(device)?;
        if sim.slots[id as usize].device.is_none() {
            reserve(id)?;
            let stream = sim.new_stream_handle();
            let dev = Device::start(id, &sim.config, counters(id), stream)?;
            sim.streams.insert(stream, id);
            sim.slots[id as usize].device = Some(dev);
        }
        sim.slots[id as usize].refs += 1;
        CURRENT.with(|c| c.set(Some(id)));
        Ok(())
    })
}

/// Reserves device `id`'s address window in this process, once.
fn reserve(id: u32) -> AclResult<()> {
    let mut p = persistent();
    let slot = &mut p.as_mut().expect("initialised").reservations[id as usize];
    if slot.is_none() {
        let base = device_base(id);
        let r = Reservation::new(base, DEVICE_STRIDE).map_err(|e| {
            AclError::new(
                ACL_ERROR_RT_DRV_INTERNAL_ERROR,
                format!(
                    "cannot reserve device {id}'s address window at {base:#x} in the host: {e}"
                ),
            )
        })?;
        *slot = Some(r);
    }
    Ok(())
}

/// `aclrtResetDevice`: drops one reference; the last one stops the device
/// process and frees everything on the device.
pub fn reset_device(device: i32) -> AclResult<()> {
    with_sim(|sim| {
        let id = sim.check_id(device)?;
        let slot = &mut sim.slots[id as usize];
        if slot.refs == 0 {
            return Err(AclError::param(format!(
                "device {id} is not set in this process"
            )));
        }
        slot.refs -= 1;
        if slot.refs == 0 {
            sim.tear_down(id);
        }
        Ok(())
    })
}

/// `aclrtCreateStream` on the current device.
pub fn create_stream() -> AclResult<u64> {
    with_sim(|sim| {
        let device = sim.current()?;
        let handle = sim.new_stream_handle();
        device.add_stream(handle)?;
        sim.streams.insert(handle, device.id);
        Ok(handle)
    })
}

/// `aclrtDestroyStream`: waits for the stream's launches, then frees it.
pub fn destroy_stream(handle: u64) -> AclResult<()> {
    if handle == 0 {
        return Err(AclError::param("stream is NULL"));
    }
    let device = with_sim(|sim| {
        let (device, handle) = sim.stream(handle)?;
        if handle == device.default_stream {
            return Err(AclError::param("the default stream cannot be destroyed"));
        }
        sim.streams.remove(&handle);
        Ok(device)
    })?;
    device.destroy_stream(handle)
}

/// `aclrtSynchronizeStream[WithTimeout]`.
pub fn synchronize(handle: u64, timeout: Option<Duration>) -> AclResult<()> {
    let (device, stream, nth, fail) = with_sim(|sim| {
        let (device, stream) = sim.stream(handle)?;
        sim.calls.sync += 1;
        let nth = sim.calls.sync;
        Ok((device, stream, nth, sim.config.faults.sync == Some(nth)))
    })?;
    let result = device.sync(stream, timeout);
    if fail {
        return Err(AclError::new(
            ACL_ERROR_RT_AICPU_EXCEPTION,
            format!("injected failure of sync call #{nth} ({})", env::FAIL_SYNC),
        ));
    }
    result
}

/// `aclrtMalloc` on the current device; returns the device address.
pub fn malloc(size: usize) -> AclResult<u64> {
    with_sim(|sim| {
        if size == 0 {
            return Err(AclError::param("size is 0"));
        }
        let device = sim.current()?;
        sim.calls.malloc += 1;
        if sim.config.faults.malloc == Some(sim.calls.malloc) {
            return Err(AclError::new(
                ACL_ERROR_RT_MEMORY_ALLOCATION,
                format!(
                    "injected failure of aclrtMalloc call #{} ({})",
                    sim.calls.malloc,
                    env::FAIL_MALLOC
                ),
            ));
        }
        device.alloc(size)
    })
}

/// `aclrtFree`. Works on a device whose process died, so cleanup after a
/// crash releases memory as on hardware.
pub fn free(addr: u64) -> AclResult<()> {
    if addr == 0 {
        return Err(AclError::param("devPtr is NULL"));
    }
    with_sim(|sim| sim.device_ptr(addr, "devPtr")?.free(addr))
}

/// What an `aclrtMemcpy` copies between, once its arguments are checked.
/// The host sides are the caller's to turn into slices.
#[derive(Debug)]
pub enum Route {
    /// Host to host: `count` bytes from `src` to `dst`, which may overlap.
    HostToHost,
    /// Host bytes to this device ([`Device::copy_in`] at `dst`).
    ToDevice(Arc<Device>),
    /// This device's bytes to the host ([`Device::copy_out`] from `src`).
    FromDevice(Arc<Device>),
    /// Within this device ([`Device::copy_within`]).
    OnDevice(Arc<Device>),
}

/// `aclrtMemcpy` up to the copy itself: every check of the arguments (the
/// device-side ranges excepted, which the copy checks), the fault count,
/// and the devices involved. The copy runs without the global lock, so a
/// large one holds up only calls on the same device.
pub fn memcpy_route(
    dst: u64,
    dest_max: usize,
    src: u64,
    count: usize,
    kind: u32,
) -> AclResult<Route> {
    with_sim(|sim| {
        if dst == 0 || src == 0 {
            return Err(AclError::param(if dst == 0 {
                "dst is NULL"
            } else {
                "src is NULL"
            }));
        }
        if kind > memcpy_kind::DEVICE_TO_DEVICE {
            return Err(AclError::param(format!(
                "unknown aclrtMemcpyKind {kind} (0..=3)"
            )));
        }
        if count > dest_max {
            return Err(AclError::param(format!(
                "count {count} exceeds destMax {dest_max}"
            )));
        }
        let (src_dev, dst_dev) = match kind {
            memcpy_kind::HOST_TO_HOST => (false, false),
            memcpy_kind::HOST_TO_DEVICE => (false, true),
            memcpy_kind::DEVICE_TO_HOST => (true, false),
            _ => (true, true),
        };
        for (addr, on_device, what) in [(src, src_dev, "src"), (dst, dst_dev, "dst")] {
            if !on_device && is_device_addr(addr) {
                return Err(AclError::param(format!(
                    "{what} {addr:#x} is a device address but the copy kind {kind} says host"
                )));
            }
        }
        sim.calls.memcpy += 1;
        if sim.config.faults.memcpy == Some(sim.calls.memcpy) {
            return Err(AclError::new(
                ACL_ERROR_RT_INTERNAL_ERROR,
                format!(
                    "injected failure of aclrtMemcpy call #{} ({})",
                    sim.calls.memcpy,
                    env::FAIL_MEMCPY
                ),
            ));
        }
        Ok(match kind {
            memcpy_kind::HOST_TO_HOST => Route::HostToHost,
            memcpy_kind::HOST_TO_DEVICE => Route::ToDevice(sim.device_ptr(dst, "dst")?),
            memcpy_kind::DEVICE_TO_HOST => Route::FromDevice(sim.device_ptr(src, "src")?),
            _ => {
                let device = sim.device_ptr(src, "src")?;
                let other = sim.device_ptr(dst, "dst")?;
                if other.id != device.id {
                    return Err(AclError::param(format!(
                        "device-to-device copy between devices {} and {} is not supported",
                        device.id, other.id
                    )));
                }
                Route::OnDevice(device)
            }
        })
    })
}

/// Where a launch's argument block is, by the launch's arguments alone.
#[derive(Clone, Copy, Debug)]
pub enum Block {
    /// `len` bytes of host memory at `addr`: the caller's to read.
    Host {
        /// Address.
        addr: u64,
        /// Length.
        len: usize,
    },
    /// In device memory, used in place (`isNoNeedH2DCopy`).
    Device {
        /// Device address.
        addr: u64,
        /// Length.
        len: u32,
    },
}

/// The checks of a launch that need nothing but its arguments, in the
/// order [`launch`] reports them (after it has found the stream and counted
/// the launch): kernel type, `blockDim`, the argument block's address and
/// size, unsupported entries, and which memory the block is in.
pub fn check_launch(kernel_type: u32, block_dim: u32, info: &AicpuArgsEx) -> AclResult<Block> {
    if kernel_type != KERNEL_TYPE_AICPU && kernel_type != KERNEL_TYPE_AICPU_KFC {
        return Err(AclError::param(format!(
            "kernel type {kernel_type} is not supported (2 = KERNEL_TYPE_AICPU, 5 = KERNEL_TYPE_AICPU_KFC)"
        )));
    }
    if block_dim == 0 {
        return Err(AclError::param("blockDim is 0"));
    }
    if info.args == 0 {
        return Err(AclError::param("argsInfo->args is NULL"));
    }
    if info.args_size == 0 || info.args_size > MAX_ARGS_SIZE {
        return Err(AclError::param(format!(
            "argsInfo->argsSize {} is outside 1..={MAX_ARGS_SIZE}",
            info.args_size
        )));
    }
    if info.host_input_info_num != 0 || info.kernel_offset_info_num != 0 {
        return Err(AclError::param(
            "hostInputInfo/kernelOffsetInfo entries are not supported by the simulator",
        ));
    }
    if info.is_no_need_h2d_copy != 0 {
        return Ok(Block::Device {
            addr: info.args,
            len: info.args_size,
        });
    }
    if is_device_addr(info.args) {
        return Err(AclError::param(format!(
            "argsInfo->args {:#x} is a device address but isNoNeedH2DCopy is false",
            info.args
        )));
    }
    Ok(Block::Host {
        addr: info.args,
        len: info.args_size as usize,
    })
}

/// `rtAicpuKernelLaunchExWithArgs`, with `args` what [`check_launch`]
/// made of the same arguments (and the host block as a slice).
pub fn launch(
    kernel_type: u32,
    block_dim: u32,
    info: &AicpuArgsEx,
    args: AclResult<LaunchArgs<'_>>,
    stream: u64,
) -> AclResult<()> {
    with_sim(|sim| {
        let (device, stream) = sim.stream(stream)?;
        let c = device.counters();
        let counter = match kernel_type {
            KERNEL_TYPE_AICPU => &c.launches_aicpu,
            KERNEL_TYPE_AICPU_KFC => &c.launches_kfc,
            _ => &c.launches_other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let args = args?;
        for (offset, what) in [
            (info.so_name_addr_offset, "soNameAddrOffset"),
            (info.kernel_name_addr_offset, "kernelNameAddrOffset"),
        ] {
            if offset >= info.args_size {
                return Err(AclError::param(format!(
                    "argsInfo->{what} {offset} is outside the {}-byte argument block",
                    info.args_size
                )));
            }
            if let LaunchArgs::Host(bytes) = args {
                if !bytes[offset as usize..].contains(&0) {
                    return Err(AclError::param(format!(
                        "the name at argsInfo->{what} {offset} is not NUL-terminated inside the argument block"
                    )));
                }
            }
        }
        submit(
            sim,
            &device,
            stream,
            LaunchSpec {
                kernel_type,
                block_dim,
                args,
                so_name_offset: info.so_name_addr_offset,
                kernel_name_offset: info.kernel_name_addr_offset,
                param_offset: 0,
                timeout_ms: 0,
                die: false,
            },
            info.timeout,
        )
    })
}

/// The end every accepted launch shares: the firmware check of a KFC
/// launch, the fault count, the op timeout (`timeout_s` from the argument
/// struct, 0 for the configured one), and the request to the device.
fn submit(
    sim: &mut Sim,
    device: &Device,
    stream: u64,
    mut spec: LaunchSpec<'_>,
    timeout_s: u16,
) -> AclResult<()> {
    if spec.kernel_type == KERNEL_TYPE_AICPU_KFC && sim.config.stack.no_kfc_firmware {
        // As CANN's runtime refuses it before anything reaches the
        // device: the firmware lacks the feature.
        return Err(AclError::new(
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
            format!(
                "Current ts version does not support aicpu kfc kernel launch ({}: \
                 task-scheduler firmware without the AICPU KFC feature)",
                env::NO_KFC_FIRMWARE
            ),
        ));
    }
    sim.calls.launch += 1;
    let nth = sim.calls.launch;
    if sim.config.faults.launch == Some(nth) {
        return Err(AclError::new(
            ACL_ERROR_RT_INTERNAL_ERROR,
            format!("injected failure of launch #{nth} ({})", env::FAIL_LAUNCH),
        ));
    }
    spec.timeout_ms = match timeout_s {
        0 => sim.config.op_timeout_ms,
        secs => u32::from(secs) * 1000,
    };
    spec.die = sim.config.faults.kill_at_launch == Some(nth);
    device.launch(stream, &spec)
}

/// `rtsBinaryLoadFromFile` on the current device: the options, then the
/// JSON descriptor; returns the binary handle.
pub fn binary_load(bin_path: &[u8], config: &LoadConfig) -> AclResult<u64> {
    binary::check_options(config)?;
    let device = with_sim(|sim| {
        let device = sim.current()?;
        sim.calls.binary_load += 1;
        let nth = sim.calls.binary_load;
        if sim.config.faults.binary_load == Some(nth) {
            return Err(AclError::new(
                ACL_ERROR_RT_INTERNAL_ERROR,
                format!(
                    "injected failure of rtsBinaryLoadFromFile call #{nth} ({})",
                    env::FAIL_BINARY_LOAD
                ),
            ));
        }
        Ok(device.id)
    })?;
    // The file is read without the global lock.
    let parsed = binary::read_descriptor(bin_path)?;
    with_sim(|sim| {
        // The device may have been reset meanwhile: the handle would
        // belong to a device that is gone.
        let current = sim.current()?;
        if current.id != device {
            return Err(AclError::new(
                ACL_ERROR_RT_CONTEXT_NULL,
                format!("device {device} was reset while its binary was being loaded"),
            ));
        }
        let handle = sim.binaries.insert(device, parsed);
        counters(device)
            .binary_loads
            .fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    })
}

/// `rtsBinaryUnload`.
pub fn binary_unload(handle: u64) -> AclResult<()> {
    with_sim(|sim| sim.binaries.unload(handle))
}

/// `rtsFuncGetByName`: the function handle of `op_type` in `binary`.
pub fn func_get(binary: u64, op_type: &[u8]) -> AclResult<u64> {
    with_sim(|sim| {
        sim.calls.func_get += 1;
        let nth = sim.calls.func_get;
        if sim.config.faults.func_get == Some(nth) {
            return Err(AclError::new(
                ACL_ERROR_RT_INTERNAL_ERROR,
                format!(
                    "injected failure of rtsFuncGetByName call #{nth} ({})",
                    env::FAIL_FUNC_GET
                ),
            ));
        }
        sim.binaries.function(binary, op_type)
    })
}

/// `RT_LAUNCH_KERNEL_ATTR_TIMEOUT` and `RT_LAUNCH_KERNEL_ATTR_TIMEOUT_US`,
/// which a launch may not carry together.
const ATTR_TIMEOUT: u32 = 7;
const ATTR_TIMEOUT_US: u32 = 8;

/// What `rtsLaunchCpuKernel` was given, as `ffi` read it.
pub struct CpuLaunch<'a> {
    /// `funcHandle`.
    pub func: u64,
    /// `numBlocks`.
    pub num_blocks: u32,
    /// `stm` (0: the default stream).
    pub stream: u64,
    /// `*cfg`, when `cfg` is not NULL.
    pub cfg: Option<KernelLaunchCfg>,
    /// `cfg->attrs[..numAttrs]`, when both are given.
    pub attrs: &'a [LaunchKernelAttr],
    /// `*argsInfo`, when `argsInfo` is not NULL.
    pub args: Option<CpuKernelArgs>,
}

/// `rtsLaunchCpuKernel`, checked in CANN's order (`api_c_kernel.cc`, then
/// `ApiErrorDecorator::LaunchKernelV2`); `read_block(addr, len)` gives the
/// caller's argument block once its address and size are checked. The
/// device gets the block followed by the registered `functionName` and
/// `kernelSo` (unless the block's own name offsets are set), the kernel
/// type of the registration and the parameter offset.
pub fn launch_cpu_kernel<'a>(
    launch: &CpuLaunch<'_>,
    read_block: impl FnOnce(u64, usize) -> &'a [u8],
) -> AclResult<()> {
    with_sim(|sim| {
        let f = sim.binaries.resolve(launch.func)?;
        counters(f.device)
            .launches_cpu_kernel
            .fetch_add(1, Ordering::Relaxed);
        let (device, stream) = sim.stream(launch.stream)?;
        if device.id != f.device {
            return Err(AclError::new(
                ACL_ERROR_RT_INVALID_HANDLE,
                format!(
                    "the function was loaded on device {} but the stream is on device {}",
                    f.device, device.id
                ),
            ));
        }
        let args = launch
            .args
            .ok_or_else(|| AclError::param("argsInfo is NULL"))?;
        let base = &args.base_args;
        if base.args == 0 {
            return Err(AclError::param("argsInfo->baseArgs.args is NULL"));
        }
        if base.args_size == 0 {
            return Err(AclError::param("argsInfo->baseArgs.argsSize is 0"));
        }
        if launch.num_blocks == 0 {
            return Err(AclError::param("numBlocks is 0"));
        }
        if let Some(cfg) = launch.cfg {
            if cfg.attrs == 0 {
                return Err(AclError::param(
                    "cfg->attrs is NULL: CANN refuses a config without an attribute array even \
                     with numAttrs 0 (pass cfg NULL, or one zeroed attribute and numAttrs 0)",
                ));
            }
            let has = |id| launch.attrs.iter().any(|a| a.id == id);
            if has(ATTR_TIMEOUT) && has(ATTR_TIMEOUT_US) {
                return Err(AclError::param(
                    "cfg->attrs carries both RT_LAUNCH_KERNEL_ATTR_TIMEOUT (7) and \
                     RT_LAUNCH_KERNEL_ATTR_TIMEOUT_US (8)",
                ));
            }
        }
        if base.args_size > MAX_ARGS_SIZE {
            return Err(AclError::param(format!(
                "argsInfo->baseArgs.argsSize {} exceeds the simulator's {MAX_ARGS_SIZE}",
                base.args_size
            )));
        }
        if base.host_input_info_num != 0 || base.kernel_offset_info_num != 0 {
            return Err(AclError::param(
                "hostInputInfo/kernelOffsetInfo entries are not supported by the simulator",
            ));
        }
        if base.is_no_need_h2d_copy != 0 {
            return Err(AclError::new(
                ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
                "isNoNeedH2DCopy (an argument block already in device memory) is not supported \
                 by the simulator's rtsLaunchCpuKernel",
            ));
        }
        if is_device_addr(base.args) {
            return Err(AclError::param(format!(
                "argsInfo->baseArgs.args {:#x} is a device address but isNoNeedH2DCopy is false",
                base.args
            )));
        }
        if args.cpu_param_head_offset >= u64::from(base.args_size) {
            return Err(AclError::param(format!(
                "argsInfo->cpuParamHeadOffset {} is outside the {}-byte argument block",
                args.cpu_param_head_offset, base.args_size
            )));
        }
        let bytes = read_block(base.args, base.args_size as usize);
        let (block, so_name_offset, kernel_name_offset) =
            if base.so_name_addr_offset != 0 || base.kernel_name_addr_offset != 0 {
                for (offset, what) in [
                    (base.so_name_addr_offset, "soNameAddrOffset"),
                    (base.kernel_name_addr_offset, "kernelNameAddrOffset"),
                ] {
                    if offset >= base.args_size || !bytes[offset as usize..].contains(&0) {
                        return Err(AclError::param(format!(
                            "argsInfo->baseArgs.{what} {offset}: no NUL-terminated name there \
                             inside the {}-byte argument block",
                            base.args_size
                        )));
                    }
                }
                (
                    bytes.to_vec(),
                    base.so_name_addr_offset,
                    base.kernel_name_addr_offset,
                )
            } else {
                let k = &f.kernel;
                let mut block =
                    Vec::with_capacity(bytes.len() + k.function_name.len() + k.kernel_so.len() + 2);
                block.extend_from_slice(bytes);
                let kernel_name_offset = block.len() as u32;
                block.extend_from_slice(k.function_name.as_bytes());
                block.push(0);
                let so_name_offset = block.len() as u32;
                block.extend_from_slice(k.kernel_so.as_bytes());
                block.push(0);
                (block, so_name_offset, kernel_name_offset)
            };
        submit(
            sim,
            &device,
            stream,
            LaunchSpec {
                kernel_type: f.kernel.kernel_type,
                block_dim: launch.num_blocks,
                args: LaunchArgs::Host(&block),
                so_name_offset,
                kernel_name_offset,
                param_offset: args.cpu_param_head_offset as u32,
                timeout_ms: 0,
                die: false,
            },
            base.timeout,
        )
    })
}

/// `simpler_sim_get_stats`.
pub fn stats(device: i32) -> AclResult<SimStats> {
    let (id, live, handles) = with_sim(|sim| {
        let id = u32::try_from(device)
            .ok()
            .filter(|&d| d < sim.config.device_count)
            .ok_or_else(|| AclError::param(format!("device id {device} is out of range")))?;
        let live = sim.slots[id as usize]
            .device
            .as_ref()
            .map_or((0, 0), |d| d.usage());
        Ok((id, live, sim.binaries.live(id)))
    })?;
    let c = counters(id);
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    Ok(SimStats {
        size: std::mem::size_of::<SimStats>() as u32,
        device_machine: device_machine(),
        live_bytes: live.1,
        peak_bytes: get(&c.peak_bytes),
        live_allocations: live.0,
        launches_aicpu: get(&c.launches_aicpu),
        launches_kfc: get(&c.launches_kfc),
        launches_other: get(&c.launches_other),
        kfc_calls: get(&c.kfc_calls),
        dispatcher_saves: get(&c.dispatcher_saves),
        dlopens: get(&c.dlopens),
        device_restarts: get(&c.starts).saturating_sub(1),
        binaries_live: handles.0,
        functions_live: handles.1,
        binary_loads: get(&c.binary_loads),
        launches_cpu_kernel: get(&c.launches_cpu_kernel),
    })
}

/// `simpler_sim_device_machine`.
pub fn device_machine() -> u32 {
    with_sim(|sim| sim.config.device_bin())
        .ok()
        .and_then(|bin| crate::machine::elf_machine(&bin))
        .map_or(0, u32::from)
}

/// `simpler_sim_ping`: `count` round trips with the current device's
/// process, for measuring the control channel.
pub fn ping(count: u32) -> AclResult<()> {
    let device = with_sim(|sim| sim.current())?;
    for _ in 0..count {
        device.ping()?;
    }
    Ok(())
}
