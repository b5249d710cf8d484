//! [`DeviceRunner`]: one device, one stream, one installed runtime SO.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::{
    KERNEL_TYPE_AICPU, RUNTIME_EXEC_SYMBOL, RUNTIME_EXEC_SYMBOL_C, RUNTIME_INIT_SYMBOL,
    RUNTIME_INIT_SYMBOL_C, RUNTIME_SYMBOLS,
};
use simpler_abi::{
    ExecLaunchArgs, InitArgs, InitLaunchArgs, KernelArgs, PreinstallName, ABI_VERSION,
};
use simpler_cann_sys::{BinaryCalls, RawFunc};

use crate::bootstrap::Installed;
use crate::cann::{timeout_ms, Cann, Device, DeviceBuffer, LaunchDesc, PreparedLaunch, Stream};
use crate::elf::{Machine, Role};
use crate::error::{CannError, Error};
use crate::image::SoImage;
use crate::module::{LaunchPath, Module, ModuleBuilder, SoSource};
use crate::single_flight::CacheStatus;

/// Verbosity of the runtime SO's device log, sent in [`InitArgs`].
pub use simpler_abi::LogLevel;

/// Configures and builds a [`DeviceRunner`]; see [`DeviceRunner::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct DeviceRunnerBuilder {
    cann: Cann,
    device: i32,
    dispatcher: SoSource,
    runtime: SoSource,
    threads: u32,
    bootstrap_timeout: Option<Duration>,
    launch_timeout: Option<Duration>,
    log_level: LogLevel,
    device_machine: Option<Machine>,
    launch_path: LaunchPath,
    module: Option<Module>,
}

impl DeviceRunnerBuilder {
    /// The device id (default 0).
    pub fn device(mut self, device: i32) -> Self {
        self.device = device;
        self
    }

    /// Reads the dispatcher SO from `path` (default: the artifacts
    /// directories for the device's machine, see [`crate::artifacts`]).
    ///
    /// Each [`build`](Self::build) reads and checks the file again; to
    /// build several runners, use an [`SoImage`] or [`prepare`](Self::prepare).
    pub fn dispatcher_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.dispatcher = SoSource::Path(path.into());
        self
    }

    /// Uses these bytes as the dispatcher SO, e.g. from `include_bytes!`.
    ///
    /// Each [`build`](Self::build) checks them again; to build several
    /// runners, use an [`SoImage`] or [`prepare`](Self::prepare).
    pub fn dispatcher_bytes(mut self, bytes: impl Into<Cow<'static, [u8]>>) -> Self {
        self.dispatcher = SoSource::Bytes(bytes.into());
        self
    }

    /// Uses a dispatcher SO checked already: building checks only that it
    /// suits the device (machine, exports) — no read, no hash, no copy.
    pub fn dispatcher_image(mut self, image: SoImage) -> Self {
        self.dispatcher = SoSource::Image(image);
        self
    }

    /// Reads the runtime SO from `path` (default: the artifacts
    /// directories for the device's machine).
    ///
    /// Each [`build`](Self::build) reads the file, checks it and
    /// identifies its content again (XXH3 of every byte); to build several
    /// runners, use an [`SoImage`] or [`prepare`](Self::prepare).
    pub fn runtime_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.runtime = SoSource::Path(path.into());
        self
    }

    /// Uses these bytes as the runtime SO.
    ///
    /// Each [`build`](Self::build) checks them and identifies their
    /// content again (XXH3 of every byte); to build several runners, use an
    /// [`SoImage`] or [`prepare`](Self::prepare).
    pub fn runtime_bytes(mut self, bytes: impl Into<Cow<'static, [u8]>>) -> Self {
        self.runtime = SoSource::Bytes(bytes.into());
        self
    }

    /// Uses a runtime SO checked already: building checks only that it
    /// suits the device (machine, size, exports) — no read, no hash, no
    /// copy. A warm build (the runtime installed earlier in this process)
    /// is then a stream, a cache lookup and the init launch.
    pub fn runtime_image(mut self, image: SoImage) -> Self {
        self.runtime = SoSource::Image(image);
        self
    }

    /// Reads and checks both SOs now and keeps them as [`SoImage`]s, so
    /// that every [`build`](Self::build) of this builder or of its clones
    /// skips that work. Fails as `build` would on a missing or bad SO.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), simpler_host::Error> {
    /// use simpler_host::{Cann, CannSource, DeviceRunner};
    ///
    /// let cann = Cann::load(&CannSource::Simulator)?;
    /// let builder = DeviceRunner::builder(&cann).threads(2).prepare()?;
    /// let runners = (0..4)
    ///     .map(|_| builder.clone().build())
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn prepare(mut self) -> Result<Self, Error> {
        let machine = self.machine();
        self.dispatcher = SoSource::Image(self.dispatcher.into_image(Role::Dispatcher, machine)?);
        self.runtime = SoSource::Image(self.runtime.into_image(Role::Runtime, machine)?);
        Ok(self)
    }

    /// The machine both SOs are checked against.
    fn machine(&self) -> Machine {
        self.device_machine
            .unwrap_or_else(|| self.cann.device_machine())
    }

    /// AICPU threads each exec launch runs on — its `blockDim` (default 1).
    pub fn threads(mut self, threads: u32) -> Self {
        self.threads = threads;
        self
    }

    /// How long to wait for the bootstrap and init launches (default 60 s;
    /// `None`: no limit).
    pub fn bootstrap_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.bootstrap_timeout = timeout.into();
        self
    }

    /// How long [`DeviceRunner::exec`] waits for a launch (default 60 s;
    /// `None`: no limit).
    pub fn launch_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.launch_timeout = timeout.into();
        self
    }

    /// The runtime's device log level (default [`LogLevel::Warn`]).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// The machine the device's AICPU runs, checked against both SOs
    /// (default: [`Cann::device_machine`]). For CANN-compatible stand-ins
    /// whose device side runs on the host.
    pub fn device_machine(mut self, machine: Machine) -> Self {
        self.device_machine = Some(machine);
        self
    }

    /// How the runtime's init and exec are launched (default
    /// [`LaunchPath::Type2`]). Ignored with [`module`](Self::module), whose
    /// path applies.
    pub fn launch_path(mut self, path: LaunchPath) -> Self {
        self.launch_path = path;
        self
    }

    /// Runs on `module`, a runtime SO installed already (built with
    /// [`Module::builder`] from an SO checked as [`Role::Runtime`] or
    /// exporting the runtime contract, declaring `simpler_aicpu_init` and
    /// `simpler_aicpu_exec`): several runners share one install and, on
    /// the binary path, one registration. The module's device, SO and
    /// launch path apply; the builder's device, SO sources and launch path
    /// are ignored.
    pub fn module(mut self, module: Module) -> Self {
        self.module = Some(module);
        self
    }

    /// Checks both SOs, sets the device, creates the stream, bootstraps the
    /// runtime SO (once per process, device and runtime), registers its
    /// kernels on the binary path (once per process, device and runtime)
    /// and launches `simpler_aicpu_init`.
    pub fn build(self) -> Result<DeviceRunner, Error> {
        if self.threads == 0 {
            return Err(Error::InvalidArgument(
                "the thread count must be at least 1".into(),
            ));
        }
        let (module, device, stream, fresh) = match self.module.clone() {
            Some(module) => {
                let machine = module.info().device_machine;
                module.so_image().check(Role::Runtime, machine)?;
                if let Some(missing) = RUNTIME_SYMBOLS
                    .iter()
                    .find(|k| module.index_of(k).is_none())
                {
                    return Err(Error::InvalidArgument(format!(
                        "module {} does not declare kernel {missing}, which a runner launches",
                        module.info().so
                    )));
                }
                let device = module.device().clone();
                let stream = Stream::create(&device)?;
                (module, device, stream, false)
            }
            None => {
                let checked = ModuleBuilder::new(&self.cann, Role::Runtime)
                    .device(self.device)
                    .device_machine(self.machine())
                    .kernels(RUNTIME_SYMBOLS)
                    .launch_path(self.launch_path)
                    .bootstrap_timeout(self.bootstrap_timeout)
                    .with_sources(self.dispatcher.clone(), self.runtime.clone())
                    .check()?;
                let device = checked.cann.open_device(checked.device)?;
                let mut stream = Stream::create(&device)?;
                let module = checked.install(&device, Some(&mut stream))?;
                (module, device, stream, true)
            }
        };
        let m = module.info();
        let name = m.preinstall_name;
        let info = RunnerInfo {
            device: m.device,
            device_machine: m.device_machine,
            threads: self.threads,
            preinstall_name: name,
            fingerprint: m.fingerprint,
            dispatcher: m.dispatcher.clone(),
            runtime: m.so.clone(),
            dispatcher_len: m.dispatcher_len,
            runtime_len: m.so_len,
            cache: if fresh { m.cache } else { CacheStatus::Hit },
            bytes_uploaded: if fresh { m.bytes_uploaded } else { 0 },
            installed_path: m.installed_path.clone(),
            bootstrap_time: if fresh {
                m.bootstrap_time
            } else {
                Duration::ZERO
            },
            init_time: Duration::ZERO,
            launch_path: m.launch_path,
        };
        let exec_launch = match module
            .index_of(RUNTIME_EXEC_SYMBOL)
            .and_then(|i| module.function(i))
        {
            None => ExecLaunch::Type2(PreparedLaunch::new(
                KERNEL_TYPE_AICPU,
                RUNTIME_EXEC_SYMBOL_C,
                self.threads,
                ExecLaunchArgs::new(KernelArgs::default(), &name),
                LAUNCH_SO_NAME_OFFSET,
                LAUNCH_KERNEL_NAME_OFFSET,
            )),
            Some((calls, func)) => ExecLaunch::Binary {
                calls,
                func,
                args: KernelArgs::default(),
            },
        };
        let init_func = module
            .index_of(RUNTIME_INIT_SYMBOL)
            .and_then(|i| module.function(i))
            .map(|(_, func)| func);
        let mut runner = DeviceRunner {
            info,
            exec_launch,
            init_func,
            launch_timeout_ms: timeout_ms(self.launch_timeout),
            init_timeout: self.bootstrap_timeout,
            scratch: None,
            staging: Vec::new(),
            stream,
            module,
            device,
        };
        let init = InitArgs {
            abi_version: ABI_VERSION,
            device_id: runner.info.device as u32,
            log_level: self.log_level as u32,
            thread_count: self.threads,
        };
        match runner.timed_init(init) {
            Ok(()) => Ok(runner),
            // An install cached from earlier in this process may be gone (a
            // device reset can wipe the AICPU filesystem) or replaced: the
            // cache cannot see the device's files. Install again, once.
            // If installing again fails too, the first init failure is the
            // one to report: the reinstall's error (often the device already
            // poisoned by the same fault) would hide what happened.
            Err(first @ Error::InitRejected { .. }) if runner.info.cache == CacheStatus::Hit => {
                tracing::warn!(
                    device = runner.info.device,
                    "init failed on the runtime SO installed earlier ({first}); installing it again"
                );
                if let Err(reinstall) = runner.bootstrap() {
                    tracing::warn!(
                        device = runner.info.device,
                        "installing again failed too: {reinstall}"
                    );
                    return Err(first);
                }
                runner.timed_init(init)?;
                Ok(runner)
            }
            Err(err) => Err(err),
        }
    }
}

/// What building a runner did, for reports and logs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunnerInfo {
    /// The device id.
    pub device: i32,
    /// The machine both SOs were checked against.
    pub device_machine: Machine,
    /// AICPU threads per exec launch.
    pub threads: u32,
    /// `simpler_inner_<fp>.so`.
    pub preinstall_name: PreinstallName,
    /// FNV-1a 64 of the runtime SO.
    pub fingerprint: u64,
    /// Where the dispatcher SO came from (path or label).
    pub dispatcher: String,
    /// Where the runtime SO came from (path or label).
    pub runtime: String,
    /// Dispatcher SO size in bytes.
    pub dispatcher_len: u64,
    /// Runtime SO size in bytes.
    pub runtime_len: u64,
    /// Whether this runner bootstrapped or reused an earlier bootstrap.
    pub cache: CacheStatus,
    /// Bytes this runner copied to the device for the bootstrap (0 unless
    /// it bootstrapped).
    pub bytes_uploaded: u64,
    /// The device path the dispatcher installed the runtime SO at.
    pub installed_path: String,
    /// Time spent bootstrapping, or waiting for a concurrent bootstrap.
    pub bootstrap_time: Duration,
    /// Time of the `simpler_aicpu_init` launch.
    pub init_time: Duration,
    /// How init and exec are launched.
    pub launch_path: LaunchPath,
}

impl RunnerInfo {
    /// Adds one pass through the bootstrap cache.
    fn record_install(&mut self, installed: Installed, cache: CacheStatus, took: Duration) {
        self.bootstrap_time += took;
        self.cache = cache;
        if cache == CacheStatus::Miss {
            self.bytes_uploaded += installed.bytes_uploaded;
        }
        self.installed_path = installed.path;
    }
}

/// A device with the runtime SO installed and initialised: launches
/// `simpler_aicpu_exec` on its own stream.
///
/// Build one with [`DeviceRunner::builder`]. Building bootstraps the
/// runtime SO the first time this process uses it on the device; later
/// runners for the same device and SO (also concurrent ones) reuse that.
/// Dropping the runner frees what it allocated and destroys its stream; the
/// device is reset when nothing else in the process uses it.
///
/// # Example
///
/// Run one batch on the simulator, with the SOs from `cargo xtask build`:
///
/// ```
/// # fn main() -> Result<(), simpler_host::Error> {
/// # // The artifacts, built if missing, named as a program run from
/// # // anywhere names them.
/// # let artifacts = simpler_testkit::host_artifacts();
/// # std::env::set_var(simpler_host::artifacts::ARTIFACTS_DIR_ENV, artifacts.dir());
/// # let sim_root = simpler_testkit::SimRoot::new();
/// # std::env::set_var(simpler_host::abi::sim::env::ROOT, sim_root.path());
/// use simpler_host::{Cann, CannSource, DeviceRunner};
///
/// let cann = Cann::load(&CannSource::Simulator)?;
/// // Reads and checks the SOs once: every runner built from this builder
/// // (or its clones) skips that.
/// let builder = DeviceRunner::builder(&cann).device(0).threads(2).prepare()?;
/// let mut runner = builder.build()?;
/// println!("installed {}", runner.info().preinstall_name);
///
/// let a = runner.upload(&[1.0f32, 2.0, 3.0, 4.0])?;
/// let b = runner.upload(&[10.0f32, 20.0, 30.0, 40.0])?;
/// let sum = runner.alloc(16)?;
/// let mut batch = runner.batch();
/// batch.add_f32(&sum, &a, &b)?;
/// batch.run()?;
/// assert_eq!(sum.to_vec::<f32>()?, [11.0, 22.0, 33.0, 44.0]);
/// # Ok(())
/// # }
/// ```
pub struct DeviceRunner {
    info: RunnerInfo,
    /// The exec launch, prepared once; each [`DeviceRunner::exec`] writes
    /// only the 16-byte payload.
    exec_launch: ExecLaunch,
    /// `simpler_aicpu_init`'s function on the binary path.
    init_func: Option<RawFunc>,
    /// The launch timeout as the sync's argument, converted once.
    launch_timeout_ms: i32,
    init_timeout: Option<Duration>,
    /// Device memory reused by every batch, grown when one needs more.
    scratch: Option<DeviceBuffer>,
    /// Host memory reused to stage every batch's upload.
    staging: Vec<u8>,
    stream: Stream,
    /// Holds the install (and the binary path's registration); after the
    /// stream, which is destroyed first.
    module: Module,
    device: Device,
}

/// The exec launch of one launch path.
enum ExecLaunch {
    /// The names and descriptor in a block built once.
    Type2(PreparedLaunch<ExecLaunchArgs>),
    /// The function looked up once; the payload is the whole block.
    Binary {
        calls: BinaryCalls,
        func: RawFunc,
        args: KernelArgs,
    },
}

impl std::fmt::Debug for DeviceRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceRunner")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl DeviceRunner {
    /// Installs the runtime SO again (forgetting the cached install) and
    /// records what happened in `info`.
    fn bootstrap(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let (installed, cache) = self.module.reinstall(&mut self.stream)?;
        self.info
            .record_install(installed, cache, started.elapsed());
        Ok(())
    }

    /// [`DeviceRunner::launch_init`], timed into `info`.
    fn timed_init(&mut self, args: InitArgs) -> Result<(), Error> {
        let started = Instant::now();
        let result = self.launch_init(args);
        self.info.init_time = started.elapsed();
        result
    }

    /// A builder for a runner using `cann`.
    pub fn builder(cann: &Cann) -> DeviceRunnerBuilder {
        DeviceRunnerBuilder {
            cann: cann.clone(),
            device: 0,
            dispatcher: SoSource::Artifacts,
            runtime: SoSource::Artifacts,
            threads: 1,
            bootstrap_timeout: Some(Duration::from_secs(60)),
            launch_timeout: Some(Duration::from_secs(60)),
            log_level: LogLevel::default(),
            device_machine: None,
            launch_path: LaunchPath::default(),
            module: None,
        }
    }

    /// What building this runner did.
    pub fn info(&self) -> &RunnerInfo {
        &self.info
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The runtime SO as a module: its install and, on the binary path,
    /// its registration (share it with [`DeviceRunnerBuilder::module`]).
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Allocates `len` bytes of device memory (uninitialised).
    pub fn alloc(&self, len: usize) -> Result<DeviceBuffer, Error> {
        self.device.alloc(len)
    }

    /// Allocates a device buffer holding a copy of `data`.
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<DeviceBuffer, Error> {
        self.device.upload(data)
    }

    /// Launches `simpler_aicpu_init` with `args` and waits for it.
    ///
    /// Building the runner already did this with the host's values; call it
    /// to initialise again, or to send values of your own (a tool probing a
    /// runtime SO's ABI version, say). A non-zero return from the runtime is
    /// [`Error::InitRejected`].
    pub fn launch_init(&mut self, args: InitArgs) -> Result<(), Error> {
        let _span = tracing::debug_span!(
            "init",
            device = self.info.device,
            abi_version = args.abi_version,
            threads = args.thread_count,
        )
        .entered();
        match (&self.exec_launch, self.init_func) {
            (ExecLaunch::Binary { calls, .. }, Some(func)) => {
                let calls = *calls;
                self.stream.launch_binary(
                    &calls,
                    &func,
                    1,
                    bytemuck::bytes_of(&args),
                    RUNTIME_INIT_SYMBOL,
                )?;
            }
            _ => {
                let block = InitLaunchArgs::new(args, &self.info.preinstall_name);
                let desc = launch_desc(RUNTIME_INIT_SYMBOL_C, 1, bytemuck::bytes_of(&block));
                self.stream.launch_desc(&desc, RUNTIME_INIT_SYMBOL)?;
            }
        }
        self.stream
            .sync_for(self.init_timeout, RUNTIME_INIT_SYMBOL)
            .map_err(|source| init_error(&args, self.info.device, source))
    }

    /// Launches `simpler_aicpu_exec` on [`RunnerInfo::threads`] AICPU
    /// threads with `args` and waits for it (at most the launch timeout).
    ///
    /// `args.runtime_args` is the device address of a work description
    /// ([`simpler_abi::WorkHeader`]) you built; [`DeviceRunner::batch`]
    /// builds one for you. Allocates nothing.
    pub fn exec(&mut self, args: KernelArgs) -> Result<(), Error> {
        // Only the global level filter is read unless DEBUG is enabled: a
        // disabled span still costs a constructor and a drop per launch.
        let _span = tracing::level_enabled!(tracing::Level::DEBUG).then(|| self.exec_span());
        // The runtime copies the block before the launch call returns, so
        // the next exec may rewrite it.
        match &mut self.exec_launch {
            ExecLaunch::Type2(launch) => {
                launch.block_mut().payload = args;
                self.stream
                    .launch_and_sync(launch, self.launch_timeout_ms, RUNTIME_EXEC_SYMBOL)?;
            }
            ExecLaunch::Binary {
                calls,
                func,
                args: block,
            } => {
                *block = args;
                self.stream.launch_binary_and_sync(
                    calls,
                    func,
                    self.info.threads,
                    bytemuck::bytes_of(block),
                    self.launch_timeout_ms,
                    RUNTIME_EXEC_SYMBOL,
                )?;
            }
        }
        Ok(())
    }
}

/// The work area: device memory and a host staging buffer that every
/// batch of the runner reuses, so that a batch no larger than an earlier
/// one allocates nothing.
impl DeviceRunner {
    /// Puts `len` bytes of work in the runner's device memory (grown first
    /// if it is smaller) and returns their device address. `fill` writes
    /// them to an empty host buffer, given that address; what it leaves
    /// short of `len` is zero.
    pub(crate) fn stage_work(
        &mut self,
        len: usize,
        fill: impl FnOnce(u64, &mut Vec<u8>),
    ) -> Result<u64, Error> {
        if self.scratch.as_ref().is_none_or(|b| b.len() < len) {
            // Free the old memory first so the device never holds both.
            self.scratch = None;
            self.scratch = Some(self.alloc(len)?);
        }
        let scratch = self.scratch.as_mut().expect("allocated above");
        let base = scratch.device_addr();
        self.staging.clear();
        fill(base, &mut self.staging);
        self.staging.resize(len, 0);
        scratch.write_at(0, &self.staging)?;
        Ok(base)
    }

    /// Reads `dst.len()` bytes at `offset` of the work staged last.
    pub(crate) fn read_work(&self, offset: usize, dst: &mut [u8]) -> Result<(), Error> {
        match &self.scratch {
            Some(scratch) => scratch.read_at(offset, dst),
            None => Err(Error::InvalidArgument("no work was staged".into())),
        }
    }
}

impl DeviceRunner {
    /// The span of one exec, out of line: built only when DEBUG is on.
    #[cold]
    #[inline(never)]
    fn exec_span(&self) -> tracing::span::EnteredSpan {
        tracing::debug_span!(
            "exec",
            device = self.info.device,
            threads = self.info.threads
        )
        .entered()
    }
}

/// A Mode A type 2 launch of the runtime SO; both launch blocks put the
/// names at the same offsets.
fn launch_desc<'a>(op_name: &'a std::ffi::CStr, block_dim: u32, block: &'a [u8]) -> LaunchDesc<'a> {
    LaunchDesc {
        kernel_type: KERNEL_TYPE_AICPU,
        op_name,
        block_dim,
        block,
        so_name_offset: LAUNCH_SO_NAME_OFFSET,
        kernel_name_offset: LAUNCH_KERNEL_NAME_OFFSET,
    }
}

/// A kernel returning non-zero surfaces as 507018 at the sync; anything
/// else (a timeout, a poisoned device) is not the runtime's verdict.
fn init_error(args: &InitArgs, device: i32, source: CannError) -> Error {
    if source.code == simpler_abi::cann::error::ACL_ERROR_RT_AICPU_EXCEPTION {
        Error::InitRejected {
            device,
            abi_version: args.abi_version,
            thread_count: args.thread_count,
            source,
        }
    } else {
        Error::Cann(source)
    }
}
