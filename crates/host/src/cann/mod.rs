//! The CANN API, loaded at run time: which libraries, the process-wide
//! `aclInit`, devices with reference-counted `aclrtSetDevice` /
//! `aclrtResetDevice`, streams and device memory.
//!
//! The same code drives real CANN (`libascendcl.so` + `libruntime.so`) and
//! the simulator (`libsimpler_cann_sim.so`); only the library list differs.

mod memory;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use simpler_abi::cann::error::ACL_ERROR_REPEAT_INITIALIZE;
use simpler_abi::SimStats;

pub use memory::{DeviceBuffer, DeviceSlice};
pub use simpler_cann_sys::ResolvedSymbol;

use crate::artifacts::{self, files, Side};
use crate::elf::Machine;
use crate::error::{artifact_hint, CannError, Error, KernelError, KernelStep, LoadError};
use crate::module::{Kernel, LaunchPath};
use simpler_abi::launch::KernelBlock;
use simpler_abi::names::KERNEL_TYPE_AICPU;
pub use simpler_cann_sys::BorrowedStream;
use simpler_cann_sys::{
    AclError, Api, BinaryCalls, LoadFailure, RawBinary, RawFunc, RawStream, StreamCalls,
};
pub(crate) use simpler_cann_sys::{LaunchDesc, PreparedLaunch};

/// The exported names of the CANN calls, as [`CannError::call`] names them.
mod call {
    use simpler_abi::names::text;
    use simpler_cann_sys::sys::symbols;

    pub(super) const ACL_INIT: &str = text(symbols::ACL_INIT);
    pub(super) const GET_DEVICE_COUNT: &str = text(symbols::GET_DEVICE_COUNT);
    pub(super) const SET_DEVICE: &str = text(symbols::SET_DEVICE);
    pub(super) const RESET_DEVICE: &str = text(symbols::RESET_DEVICE);
    pub(super) const CREATE_STREAM: &str = text(symbols::CREATE_STREAM);
    pub(super) const DESTROY_STREAM: &str = text(symbols::DESTROY_STREAM);
    pub(super) const SYNC_STREAM: &str = text(symbols::SYNC_STREAM);
    pub(super) const MALLOC: &str = text(symbols::MALLOC);
    pub(super) const FREE: &str = text(symbols::FREE);
    pub(super) const MEMCPY: &str = text(symbols::MEMCPY);
    pub(super) const LAUNCH: &str = text(symbols::LAUNCH);
    pub(super) const LAUNCH_CPU_KERNEL: &str = text(symbols::LAUNCH_CPU_KERNEL);
    pub(super) const SIM_GET_STATS: &str = text(symbols::SIM_GET_STATS);
    pub(super) const BINARY_LOAD_FROM_FILE: &str = text(symbols::BINARY_LOAD_FROM_FILE);
    pub(super) const BINARY_UNLOAD: &str = text(symbols::BINARY_UNLOAD);
    pub(super) const FUNC_GET_BY_NAME: &str = text(symbols::FUNC_GET_BY_NAME);
    /// The calls the binary launch path needs.
    pub(super) const BINARY_PATH: [&str; 4] = [
        BINARY_LOAD_FROM_FILE,
        FUNC_GET_BY_NAME,
        LAUNCH_CPU_KERNEL,
        BINARY_UNLOAD,
    ];
}

/// Environment variables naming a CANN toolkit, in the order tried.
pub const TOOLKIT_ENV: [&str; 2] = ["ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME"];
/// The libraries loaded from a CANN toolkit's `lib64`.
pub const TOOLKIT_LIBRARIES: [&str; 2] = ["libascendcl.so", "libruntime.so"];

/// Where to load the CANN API from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CannSource {
    /// These libraries, in order; each symbol comes from the first that
    /// exports it. Any library exporting the functions of `simpler_cann_sys::sys` works.
    Libraries(Vec<PathBuf>),
    /// `libascendcl.so` and `libruntime.so` from `$ASCEND_HOME_PATH/lib64`,
    /// else `$ASCEND_TOOLKIT_HOME/lib64`.
    Toolkit,
    /// `libsimpler_cann_sim.so` from the artifacts directories (see
    /// [`crate::artifacts`]).
    Simulator,
}

impl CannSource {
    /// The library files this source stands for.
    pub fn resolve(&self) -> Result<Vec<PathBuf>, Error> {
        match self {
            Self::Libraries(paths) if paths.is_empty() => Err(LoadError::NoLibraries.into()),
            Self::Libraries(paths) => Ok(paths.clone()),
            Self::Toolkit => {
                let dirs = toolkit_dirs();
                if dirs.is_empty() {
                    return Err(LoadError::NoToolkit.into());
                }
                let found = dirs
                    .iter()
                    .find(|dir| TOOLKIT_LIBRARIES.iter().all(|lib| dir.join(lib).is_file()));
                match found {
                    Some(dir) => Ok(TOOLKIT_LIBRARIES.iter().map(|l| dir.join(l)).collect()),
                    None => Err(LoadError::NotFound {
                        file: "libascendcl.so and libruntime.so",
                        searched: dirs,
                        hint: Some("is the toolkit installed there?"),
                    }
                    .into()),
                }
            }
            Self::Simulator => match artifacts::find(files::SIM_LIB, Side::Host) {
                Ok(path) => Ok(vec![path]),
                Err(Error::ArtifactNotFound { file, searched }) => Err(LoadError::NotFound {
                    file,
                    searched,
                    hint: Some(artifact_hint()),
                }
                .into()),
                Err(other) => Err(other),
            },
        }
    }
}

/// `<$VAR>/lib64` for each set variable of [`TOOLKIT_ENV`], in order.
pub fn toolkit_dirs() -> Vec<PathBuf> {
    TOOLKIT_ENV
        .iter()
        .filter_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map(|home| PathBuf::from(home).join("lib64"))
        .collect()
}

/// A loaded CANN API: cheap to clone, shared by every runner that uses it.
///
/// Loading the same libraries again returns the same instance, so `aclInit`
/// runs once per process and library set. `aclFinalize` is never called and
/// the libraries stay loaded until the process exits: CANN does not support
/// initialising again after finalising, and unloading it under its own
/// threads is unsafe.
#[derive(Clone)]
pub struct Cann {
    inner: Arc<Inner>,
}

struct Inner {
    api: Api,
    id: u64,
    libraries: Vec<PathBuf>,
    devices: Mutex<HashMap<i32, DeviceEntry>>,
    device_machine: OnceLock<Machine>,
}

/// Book-keeping for one device while any [`Device`] handle on it lives.
struct DeviceEntry {
    /// Live [`Lease`]s.
    users: usize,
    /// `aclrtSetDevice` calls made (one per thread that used the device);
    /// as many `aclrtResetDevice` calls undo them.
    set_calls: usize,
    /// Distinguishes this period of use from earlier ones, so a thread
    /// bound before a reset binds again.
    serial: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn loaded() -> MutexGuard<'static, Vec<Cann>> {
    static LOADED: Mutex<Vec<Cann>> = Mutex::new(Vec::new());
    LOADED.lock().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl std::fmt::Debug for Cann {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cann")
            .field("libraries", &self.inner.libraries)
            .field("simulator", &self.is_simulator())
            .finish()
    }
}

impl Cann {
    /// Loads the CANN API from `source` and calls `aclInit`, or returns the
    /// instance already loaded from the same files.
    pub fn load(source: &CannSource) -> Result<Cann, Error> {
        let libraries: Vec<PathBuf> = source
            .resolve()?
            .into_iter()
            .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
            .collect();
        let mut loaded = loaded();
        if let Some(cann) = loaded.iter().find(|c| c.inner.libraries == libraries) {
            return Ok(cann.clone());
        }
        let api = Api::load(&libraries).map_err(|failure| match failure {
            LoadFailure::Open { library, reason } => LoadError::Open { library, reason },
            LoadFailure::MissingSymbol { symbol, libraries } => {
                LoadError::MissingSymbol { symbol, libraries }
            }
        })?;
        match api.init() {
            Ok(()) => {}
            // aclInit was already called in this process (by the application
            // embedding us, say): not a failure for us.
            Err(ACL_ERROR_REPEAT_INITIALIZE) => {
                tracing::debug!("{}: already initialised in this process", call::ACL_INIT);
            }
            Err(code) => {
                return Err(CannError {
                    call: call::ACL_INIT,
                    context: None,
                    code,
                    message: api.recent_error(),
                }
                .into())
            }
        }
        tracing::info!(libraries = ?libraries, "CANN API loaded");
        let cann = Cann {
            inner: Arc::new(Inner {
                api,
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                libraries,
                devices: Mutex::new(HashMap::new()),
                device_machine: OnceLock::new(),
            }),
        };
        loaded.push(cann.clone());
        Ok(cann)
    }

    /// The libraries the API was loaded from.
    pub fn libraries(&self) -> &[PathBuf] {
        &self.inner.libraries
    }

    /// Every symbol looked up and the library that provided it (`None` for
    /// the simulator's optional extras when absent).
    pub fn symbols(&self) -> &[ResolvedSymbol] {
        self.inner.api.symbols()
    }

    /// Whether the library is the simulator (it exports the accounting
    /// symbols).
    pub fn is_simulator(&self) -> bool {
        self.inner.api.is_simulator()
    }

    /// The machine the device's AICPU runs: what the simulator reports for
    /// its device process, else AArch64 as on every Ascend NPU.
    ///
    /// Asked once per instance: the answer cannot change while the library
    /// is loaded, and every runner build needs it.
    pub fn device_machine(&self) -> Machine {
        *self
            .inner
            .device_machine
            .get_or_init(|| match self.inner.api.sim_device_machine() {
                Some(raw) if raw != 0 => Machine(raw as u16),
                _ => Machine::AARCH64,
            })
    }

    /// `aclrtGetDeviceCount`.
    pub fn device_count(&self) -> Result<u32, Error> {
        self.inner
            .api
            .device_count()
            .map_err(|code| self.error(call::GET_DEVICE_COUNT, None, code).into())
    }

    /// The simulator's accounting for `device`; `Ok(None)` on real CANN.
    pub fn sim_stats(&self, device: i32) -> Result<Option<SimStats>, Error> {
        match self.inner.api.sim_stats(device) {
            None => Ok(None),
            Some(Ok(stats)) => Ok(Some(stats)),
            Some(Err(code)) => Err(self.error(call::SIM_GET_STATS, None, code).into()),
        }
    }

    /// Starts using `device`: `aclrtSetDevice` unless it is already in use
    /// in this process. The device is reset when the last handle on it (and
    /// every buffer and runner holding one) is dropped.
    pub fn open_device(&self, device: i32) -> Result<Device, Error> {
        let mut devices = lock(&self.inner.devices);
        let serial = match devices.get_mut(&device) {
            Some(entry) => {
                entry.users += 1;
                entry.serial
            }
            None => {
                self.inner
                    .api
                    .set_device(device)
                    .map_err(|code| self.error(call::SET_DEVICE, None, code))?;
                let serial = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                devices.insert(
                    device,
                    DeviceEntry {
                        users: 1,
                        set_calls: 1,
                        serial,
                    },
                );
                mark_bound(self.inner.id, device, serial);
                serial
            }
        };
        drop(devices);
        let handle = Device {
            lease: Arc::new(Lease {
                cann: self.clone(),
                id: device,
                serial,
            }),
        };
        // A device already in use may not be set on this thread yet.
        handle.bind()?;
        Ok(handle)
    }

    /// Whether the loaded libraries export the calls of `path`. Every CANN
    /// has [`LaunchPath::Type2`]; [`LaunchPath::Binary`] needs the four
    /// `rts*` calls of the binary-handle API.
    pub fn supports(&self, path: LaunchPath) -> bool {
        match path {
            LaunchPath::Type2 => true,
            LaunchPath::Binary => self.inner.api.binary.is_some(),
        }
    }

    /// The launch paths the loaded libraries support, in
    /// [`LaunchPath::ALL`] order.
    pub fn launch_paths(&self) -> Vec<LaunchPath> {
        LaunchPath::ALL
            .into_iter()
            .filter(|p| self.supports(*p))
            .collect()
    }

    /// The calls of `path` no loaded library exports.
    pub(crate) fn missing_calls(&self, path: LaunchPath) -> Vec<&'static str> {
        match path {
            LaunchPath::Type2 => Vec::new(),
            LaunchPath::Binary => call::BINARY_PATH
                .into_iter()
                .filter(|name| {
                    !self
                        .symbols()
                        .iter()
                        .any(|s| s.symbol == *name && s.library.is_some())
                })
                .collect(),
        }
    }

    /// The binary launch path's calls, when the libraries export them.
    pub(crate) fn binary_calls(&self) -> Option<BinaryCalls> {
        self.inner.api.binary
    }

    /// Distinguishes this instance from other loaded library sets.
    pub(crate) fn instance_id(&self) -> u64 {
        self.inner.id
    }

    fn api(&self) -> &Api {
        &self.inner.api
    }

    /// A [`CannError`] for `code`, with the library's recent message.
    fn error(
        &self,
        call: &'static str,
        context: Option<&'static str>,
        code: AclError,
    ) -> CannError {
        CannError {
            call,
            context,
            code,
            message: self.inner.api.recent_error(),
        }
    }
}

thread_local! {
    /// Per thread: (Cann id, device) → serial of the period of use in which
    /// this thread called `aclrtSetDevice`. CANN binds devices per thread.
    static BOUND: RefCell<HashMap<(u64, i32), u64>> = RefCell::new(HashMap::new());
    /// Per thread: the device `aclrtSetDevice` made current last, which is
    /// where `aclrtMalloc` and `aclrtCreateStream` act.
    static CURRENT: Cell<Option<(u64, i32, u64)>> = const { Cell::new(None) };
    /// Per thread: the serial last found in `BOUND`, so that a thread using
    /// one device (the common case, and every launch) answers `bind` with
    /// one compare. Serials are unique in the process and a thread bound
    /// in a period of use stays bound until it ends, when no lease with
    /// that serial is left to ask; 0 is no serial.
    static LAST_BOUND: Cell<u64> = const { Cell::new(0) };
}

fn mark_bound(cann: u64, device: i32, serial: u64) {
    BOUND.with(|b| b.borrow_mut().insert((cann, device), serial));
    CURRENT.with(|c| c.set(Some((cann, device, serial))));
    LAST_BOUND.with(|l| l.set(serial));
}

/// A device in use: cheap to clone; the device stays set until every clone,
/// buffer and runner on it is dropped.
#[derive(Clone)]
pub struct Device {
    lease: Arc<Lease>,
}

struct Lease {
    cann: Cann,
    id: i32,
    serial: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let cann = &self.cann;
        let mut devices = lock(&cann.inner.devices);
        let Some(entry) = devices.get_mut(&self.id) else {
            return;
        };
        entry.users -= 1;
        if entry.users > 0 {
            return;
        }
        let calls = entry.set_calls;
        devices.remove(&self.id);
        for _ in 0..calls {
            if let Err(code) = cann.api().reset_device(self.id) {
                let err = cann.error(call::RESET_DEVICE, None, code);
                tracing::warn!(device = self.id, "{err}");
                break;
            }
        }
        tracing::debug!(device = self.id, "device reset");
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("id", &self.id()).finish()
    }
}

impl Device {
    /// The device id.
    pub fn id(&self) -> i32 {
        self.lease.id
    }

    /// The CANN API this device is used through.
    pub fn cann(&self) -> &Cann {
        &self.lease.cann
    }

    /// Makes sure the calling thread has set this device (CANN binds a
    /// device per thread); cheap when it has.
    pub(crate) fn bind(&self) -> Result<(), CannError> {
        let serial = self.lease.serial;
        if LAST_BOUND.with(Cell::get) == serial {
            return Ok(());
        }
        let key = (self.lease.cann.inner.id, self.lease.id);
        if BOUND.with(|b| b.borrow().get(&key) == Some(&serial)) {
            LAST_BOUND.with(|l| l.set(serial));
            return Ok(());
        }
        self.set_on_thread()
    }

    /// Makes this the calling thread's current device, for the calls that
    /// act on the current device rather than on an address or stream.
    pub(crate) fn make_current(&self) -> Result<(), CannError> {
        let me = (self.lease.cann.inner.id, self.lease.id, self.lease.serial);
        if CURRENT.with(|c| c.get()) == Some(me) {
            return Ok(());
        }
        self.set_on_thread()
    }

    /// `aclrtSetDevice` on this thread, counted so that the last lease
    /// resets the device as many times.
    fn set_on_thread(&self) -> Result<(), CannError> {
        let cann = &self.lease.cann;
        let mut devices = lock(&cann.inner.devices);
        cann.api()
            .set_device(self.lease.id)
            .map_err(|code| cann.error(call::SET_DEVICE, None, code))?;
        if let Some(entry) = devices.get_mut(&self.lease.id) {
            entry.set_calls += 1;
        }
        mark_bound(cann.inner.id, self.lease.id, self.lease.serial);
        Ok(())
    }

    /// A [`CannError`] for a failed call on this device.
    pub(crate) fn error(
        &self,
        call: &'static str,
        context: Option<&'static str>,
        code: AclError,
    ) -> CannError {
        self.cann().error(call, context, code)
    }

    /// Allocates `len` bytes of device memory (uninitialised).
    pub fn alloc(&self, len: usize) -> Result<DeviceBuffer, Error> {
        DeviceBuffer::alloc(self, len)
    }

    /// Allocates a buffer holding a copy of `data`.
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<DeviceBuffer, Error> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let mut buf = DeviceBuffer::alloc(self, bytes.len())?;
        buf.copy_from_host(bytes)?;
        Ok(buf)
    }

    /// Allocates a zero-filled buffer of `len` bytes.
    pub fn alloc_zeroed(&self, len: usize) -> Result<DeviceBuffer, Error> {
        let mut buf = DeviceBuffer::alloc(self, len)?;
        buf.copy_from_host(&vec![0u8; len])?;
        Ok(buf)
    }

    /// The simulator's accounting for this device; `Ok(None)` on real CANN.
    pub fn sim_stats(&self) -> Result<Option<SimStats>, Error> {
        self.cann().sim_stats(self.id())
    }

    /// Whether `other` is a handle on the same device of the same CANN.
    pub(crate) fn same_as(&self, other: &Device) -> bool {
        self.lease.id == other.lease.id && self.lease.cann.inner.id == other.lease.cann.inner.id
    }

    /// `rtsBinaryLoadFromFile` of the JSON descriptor at `path` (the SOs it
    /// names are on the device already), on this device.
    pub(crate) fn load_json(
        &self,
        calls: &BinaryCalls,
        path: &CStr,
        context: &'static str,
    ) -> Result<RawBinary, CannError> {
        self.make_current()?;
        calls
            .load_json(path)
            .map_err(|code| self.error(call::BINARY_LOAD_FROM_FILE, Some(context), code))
    }

    /// `rtsFuncGetByName(binary, op_type)`.
    pub(crate) fn function(
        &self,
        calls: &BinaryCalls,
        binary: &RawBinary,
        op_type: &CStr,
        context: &'static str,
    ) -> Result<RawFunc, CannError> {
        self.bind()?;
        calls
            .function(binary, op_type)
            .map_err(|code| self.error(call::FUNC_GET_BY_NAME, Some(context), code))
    }

    /// `rtsBinaryUnload`.
    pub(crate) fn unload(
        &self,
        calls: &BinaryCalls,
        binary: RawBinary,
        context: &'static str,
    ) -> Result<(), CannError> {
        self.make_current()?;
        calls
            .unload(binary)
            .map_err(|code| self.error(call::BINARY_UNLOAD, Some(context), code))
    }
}

/// An `aclrtStream` on one device: the queue kernels are launched on.
///
/// [`Stream::new`] creates one, destroyed on drop. [`Stream::borrowed`]
/// wraps an application's own `aclrtStream`, which simpler launches on and
/// synchronises but never destroys. Launches are asynchronous;
/// [`Stream::sync`] waits for them and names the kernels launched since
/// the previous sync if one failed.
pub struct Stream {
    /// `None` only inside `drop`, which destroys an owned handle.
    raw: Option<Handle>,
    calls: StreamCalls,
    device: Device,
    /// Where a kernel's argument block is assembled, reused by every launch
    /// so that one allocates nothing once it has grown.
    scratch: Vec<u8>,
    /// Kernels launched since the last sync, with their launch counts.
    pending: Vec<(Kernel, u64)>,
}

enum Handle {
    Owned(RawStream),
    Borrowed(BorrowedStream),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("device", &self.device.id())
            .field("borrowed", &self.is_borrowed())
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// What the stream's own calls name as their context.
const STREAM_CONTEXT: &str = "stream";

impl Stream {
    /// Creates a stream on `device` (`aclrtCreateStream`), destroyed when
    /// dropped.
    pub fn new(device: &Device) -> Result<Stream, Error> {
        Ok(Self::create(device)?)
    }

    /// Wraps an application's own stream on `device`. simpler launches on
    /// it and synchronises it, and never destroys it; the application
    /// keeps owning it (and must keep it alive while this value lives, as
    /// [`BorrowedStream::new`] requires).
    ///
    /// `device` comes from [`Cann::open_device`], which counts its own
    /// `aclrtSetDevice` calls and undoes only those, so a device the
    /// application set itself stays set when simpler's handles are gone.
    pub fn borrowed(device: &Device, stream: BorrowedStream) -> Stream {
        Stream {
            raw: Some(Handle::Borrowed(stream)),
            calls: device.cann().api().stream_calls(),
            device: device.clone(),
            scratch: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Waits for everything queued on the stream, at most `timeout`
    /// (`None`: no limit). A failure names the kernels launched since the
    /// last sync ([`Error::Kernel`]); a kernel that returned non-zero shows
    /// as CANN's 507018.
    pub fn sync(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        let result = self.sync_for(timeout, STREAM_CONTEXT);
        let pending = std::mem::take(&mut self.pending);
        match result {
            Ok(()) => {
                // Keep the capacity for the next round of launches.
                self.pending = pending;
                self.pending.clear();
                Ok(())
            }
            Err(source) if pending.is_empty() => Err(Error::Cann(source)),
            Err(source) => Err(Error::Kernel(Box::new(KernelError {
                device: self.device.id(),
                step: KernelStep::Sync,
                kernels: pending.iter().map(|(k, n)| k.describe(*n)).collect(),
                source,
            }))),
        }
    }

    /// The device the stream is on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the stream is the application's ([`Stream::borrowed`]).
    pub fn is_borrowed(&self) -> bool {
        matches!(self.raw, Some(Handle::Borrowed(_)))
    }

    /// [`Stream::new`] with the CANN error as it is.
    pub(crate) fn create(device: &Device) -> Result<Stream, CannError> {
        device.make_current()?;
        let api = device.cann().api();
        let raw = api
            .create_stream()
            .map_err(|code| device.error(call::CREATE_STREAM, None, code))?;
        Ok(Stream {
            raw: Some(Handle::Owned(raw)),
            calls: api.stream_calls(),
            device: device.clone(),
            scratch: Vec::new(),
            pending: Vec::new(),
        })
    }

    /// Queues a launch on this stream.
    pub(crate) fn launch_desc(
        &mut self,
        desc: &LaunchDesc<'_>,
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        self.launch_bound(desc, context)
    }

    /// Waits for everything queued, at most `timeout` (`None`: no limit).
    pub(crate) fn sync_for(
        &mut self,
        timeout: Option<Duration>,
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        self.sync_bound(timeout_ms(timeout), context)
    }

    /// A type-2 launch of `kernel` in the SO `so` with `payload` at offset
    /// 0 of its block (the [`KernelBlock`] layout), assembled in the
    /// stream's scratch buffer.
    pub(crate) fn launch_type2(
        &mut self,
        kernel: &CStr,
        so: &CStr,
        block_dim: u32,
        payload: &[u8],
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        let kernel_name = kernel.to_bytes_with_nul();
        let so_name = so.to_bytes_with_nul();
        let layout = KernelBlock::new(payload.len(), kernel_name.len() - 1, so_name.len() - 1);
        let mut block = std::mem::take(&mut self.scratch);
        block.clear();
        block.extend_from_slice(payload);
        block.resize(layout.payload_len, 0);
        block.extend_from_slice(kernel_name);
        block.extend_from_slice(so_name);
        debug_assert_eq!(block.len(), layout.len);
        let desc = LaunchDesc {
            kernel_type: KERNEL_TYPE_AICPU,
            op_name: kernel,
            block_dim,
            block: &block,
            so_name_offset: layout.so_name_offset,
            kernel_name_offset: layout.kernel_name_offset,
        };
        let result = self.launch_bound(&desc, context);
        self.scratch = block;
        result
    }

    /// A binary-path launch of `func` with `payload` at offset 0 of its
    /// block (padded as a type-2 payload is), assembled in the scratch
    /// buffer unless it needs no padding.
    pub(crate) fn launch_binary(
        &mut self,
        calls: &BinaryCalls,
        func: &RawFunc,
        block_dim: u32,
        payload: &[u8],
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        let padded = KernelBlock::new(payload.len(), 0, 0).payload_len;
        let result = if padded == payload.len() {
            calls.launch(func, block_dim, self.raw(), payload, 0)
        } else {
            let mut block = std::mem::take(&mut self.scratch);
            block.clear();
            block.extend_from_slice(payload);
            block.resize(padded, 0);
            let result = calls.launch(func, block_dim, self.raw(), &block, 0);
            self.scratch = block;
            result
        };
        result.map_err(|code| self.failed(call::LAUNCH_CPU_KERNEL, context, code))
    }

    /// A binary-path launch and the wait for it: the runner's exec hot
    /// path on that path, which checks the thread's binding once.
    #[inline]
    pub(crate) fn launch_binary_and_sync(
        &mut self,
        calls: &BinaryCalls,
        func: &RawFunc,
        block_dim: u32,
        block: &[u8],
        timeout_ms: i32,
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        if let Err(code) = calls.launch(func, block_dim, self.raw(), block, 0) {
            return Err(self.failed(call::LAUNCH_CPU_KERNEL, context, code));
        }
        self.sync_bound(timeout_ms, context)
    }

    /// Records a launch of `kernel`, for the error of the next sync.
    pub(crate) fn note_launch(&mut self, kernel: &Kernel) {
        match self.pending.last_mut() {
            Some((last, n)) if last.same_as(kernel) => *n += 1,
            _ => self.pending.push((kernel.clone(), 1)),
        }
    }

    /// A prepared launch and the wait for it (at most `timeout_ms`, see
    /// [`timeout_ms`]): the per-task hot path, which checks the thread's
    /// binding once for both calls.
    #[inline]
    pub(crate) fn launch_and_sync<B: bytemuck::Pod>(
        &mut self,
        launch: &PreparedLaunch<B>,
        timeout_ms: i32,
        context: &'static str,
    ) -> Result<(), CannError> {
        self.device.bind()?;
        if let Err(code) = self.calls.launch_prepared(launch, self.raw()) {
            return Err(self.failed(call::LAUNCH, context, code));
        }
        match self.calls.sync(self.raw(), timeout_ms) {
            Ok(()) => Ok(()),
            Err(code) => Err(self.failed(call::SYNC_STREAM, context, code)),
        }
    }

    #[inline]
    fn raw(&self) -> &RawStream {
        match self
            .raw
            .as_ref()
            .expect("a stream's handle is taken only by its drop")
        {
            Handle::Owned(raw) => raw,
            Handle::Borrowed(borrowed) => borrowed.raw(),
        }
    }

    /// The error of a failed call on this stream, kept out of line so that
    /// the hot path stays small.
    #[cold]
    #[inline(never)]
    fn failed(&self, call: &'static str, context: &'static str, code: AclError) -> CannError {
        self.device.error(call, Some(context), code)
    }

    fn launch_bound(&self, desc: &LaunchDesc<'_>, context: &'static str) -> Result<(), CannError> {
        self.calls
            .launch(desc, self.raw())
            .map_err(|code| self.failed(call::LAUNCH, context, code))
    }

    fn sync_bound(&self, timeout_ms: i32, context: &'static str) -> Result<(), CannError> {
        self.calls
            .sync(self.raw(), timeout_ms)
            .map_err(|code| self.failed(call::SYNC_STREAM, context, code))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // A borrowed stream is the application's: left as it is.
        let Some(Handle::Owned(raw)) = self.raw.take() else {
            return;
        };
        let result = self.device.bind().and_then(|()| {
            self.device
                .cann()
                .api()
                .destroy_stream(raw)
                .map_err(|code| self.device.error(call::DESTROY_STREAM, None, code))
        });
        if let Err(err) = result {
            tracing::warn!(device = self.device.id(), "{err}");
        }
    }
}

/// `aclrtSynchronizeStreamWithTimeout`'s `timeout` argument: milliseconds,
/// -1 for none; rounded up so a sub-millisecond timeout still waits.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_round_up_and_saturate() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), i32::MAX);
    }

    #[test]
    fn empty_library_lists_and_missing_files_are_errors() {
        let err = CannSource::Libraries(vec![]).resolve().unwrap_err();
        assert!(matches!(err, Error::Load(LoadError::NoLibraries)));
        let err = Cann::load(&CannSource::Libraries(
            vec!["/nonexistent/libfoo.so".into()],
        ))
        .unwrap_err();
        let Error::Load(LoadError::Open { library, .. }) = &err else {
            panic!("{err}")
        };
        assert_eq!(library, &PathBuf::from("/nonexistent/libfoo.so"));
    }

    #[test]
    fn a_library_without_the_api_names_the_missing_symbol() {
        let libm = [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/lib/aarch64-linux-gnu/libm.so.6",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libm");
        let err = Cann::load(&CannSource::Libraries(vec![libm.clone()])).unwrap_err();
        let canonical = std::fs::canonicalize(&libm).unwrap();
        assert_eq!(
            err.to_string(),
            format!("symbol aclInit not found in {}", canonical.display())
        );
    }
}
