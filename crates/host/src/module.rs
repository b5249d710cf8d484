//! [`Module`]: any AICPU SO installed on one device through the
//! dispatcher, and its [`Kernel`]s, launched on either [`LaunchPath`].
//!
//! Installing is the bootstrap of [`crate::DeviceRunner`] (the same
//! process-wide cache per CANN instance, device and SO content, the same
//! fingerprint check, nothing left in device memory). The binary path
//! registers the module's kernels with CANN once per (device, SO, kernel
//! set) for the whole process; see [`registry`].

use std::borrow::Cow;
use std::ffi::CString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use simpler_abi::PreinstallName;
use simpler_cann_sys::{BinaryCalls, RawFunc};

use crate::bootstrap::{self, Installed, Request};
use crate::cann::{Cann, Device, Stream};
use crate::elf::{Machine, Role};
use crate::error::{Error, KernelError, KernelStep, LaunchedKernel};
use crate::image::SoImage;
use crate::single_flight::CacheStatus;

mod registry;

/// What a kernel's CANN calls name as their context.
pub(crate) const KERNEL_CONTEXT: &str = "kernel";

/// How a kernel is launched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LaunchPath {
    /// `rtAicpuKernelLaunchExWithArgs(KERNEL_TYPE_AICPU, …)`: the SO and
    /// kernel names travel in every launch's argument block. Every CANN
    /// has it.
    #[default]
    Type2,
    /// `rtsLaunchCpuKernel` of a function handle: the kernels are
    /// registered once from a JSON op descriptor (`rtsBinaryLoadFromFile`,
    /// `rtsFuncGetByName`) and a launch carries only the payload. Needs a
    /// CANN whose runtime exports the `rts*` calls ([`Cann::supports`]).
    Binary,
}

impl LaunchPath {
    /// Every launch path, in a fixed order.
    pub const ALL: [LaunchPath; 2] = [LaunchPath::Type2, LaunchPath::Binary];

    /// `type2` or `binary`, as [`FromStr`] reads it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Type2 => "type2",
            Self::Binary => "binary",
        }
    }
}

impl fmt::Display for LaunchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LaunchPath {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                Error::InvalidArgument(format!("unknown launch path {s:?}; use type2 or binary"))
            })
    }
}

/// Where a device SO comes from.
#[derive(Clone, Debug)]
pub(crate) enum SoSource {
    /// The artifacts directories for the device's machine.
    Artifacts,
    Path(PathBuf),
    Bytes(Cow<'static, [u8]>),
    Image(SoImage),
}

impl SoSource {
    /// The checked image of this source, read and checked now unless it is
    /// one already.
    pub(crate) fn into_image(self, role: Role, machine: Machine) -> Result<SoImage, Error> {
        match self {
            Self::Artifacts => SoImage::artifact(role, machine),
            Self::Path(path) => SoImage::from_path(path, role, machine),
            Self::Bytes(bytes) => SoImage::from_bytes(bytes, role, machine),
            Self::Image(image) => {
                image.check(role, machine)?;
                Ok(image)
            }
        }
    }
}

/// Configures and builds a [`Module`]; see [`Module::builder`].
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ModuleBuilder {
    cann: Cann,
    device: i32,
    dispatcher: SoSource,
    so: SoSource,
    kernels: Vec<String>,
    launch_path: LaunchPath,
    bootstrap_timeout: Option<Duration>,
    device_machine: Option<Machine>,
    role: Role,
}

impl ModuleBuilder {
    pub(crate) fn new(cann: &Cann, role: Role) -> Self {
        Self {
            cann: cann.clone(),
            device: 0,
            dispatcher: SoSource::Artifacts,
            so: SoSource::Artifacts,
            kernels: Vec::new(),
            launch_path: LaunchPath::default(),
            bootstrap_timeout: Some(Duration::from_secs(60)),
            device_machine: None,
            role,
        }
    }

    /// Both SOs from these sources.
    pub(crate) fn with_sources(mut self, dispatcher: SoSource, so: SoSource) -> Self {
        self.dispatcher = dispatcher;
        self.so = so;
        self
    }

    /// The device id (default 0).
    pub fn device(mut self, device: i32) -> Self {
        self.device = device;
        self
    }

    /// Reads the AICPU SO from `path` (required: there is no default).
    pub fn so_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.so = SoSource::Path(path.into());
        self
    }

    /// Uses these bytes as the AICPU SO.
    pub fn so_bytes(mut self, bytes: impl Into<Cow<'static, [u8]>>) -> Self {
        self.so = SoSource::Bytes(bytes.into());
        self
    }

    /// Uses an SO checked already (no read, no hash, no copy).
    pub fn so_image(mut self, image: SoImage) -> Self {
        self.so = SoSource::Image(image);
        self
    }

    /// Reads the dispatcher SO from `path` (default: the artifacts
    /// directories for the device's machine).
    pub fn dispatcher_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.dispatcher = SoSource::Path(path.into());
        self
    }

    /// Uses these bytes as the dispatcher SO.
    pub fn dispatcher_bytes(mut self, bytes: impl Into<Cow<'static, [u8]>>) -> Self {
        self.dispatcher = SoSource::Bytes(bytes.into());
        self
    }

    /// Uses a dispatcher SO checked already.
    pub fn dispatcher_image(mut self, image: SoImage) -> Self {
        self.dispatcher = SoSource::Image(image);
        self
    }

    /// Declares a kernel: a function the SO defines and exports,
    /// `uint32_t name(void *param)`. Only declared kernels can be launched
    /// ([`Module::kernel`]); declaring one twice is declaring it once.
    pub fn kernel(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        if !self.kernels.contains(&name) {
            self.kernels.push(name);
        }
        self
    }

    /// Declares each of `names` ([`ModuleBuilder::kernel`]).
    pub fn kernels<I>(self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        names.into_iter().fold(self, |b, name| b.kernel(name))
    }

    /// How the module's kernels are launched (default
    /// [`LaunchPath::Type2`]).
    pub fn launch_path(mut self, path: LaunchPath) -> Self {
        self.launch_path = path;
        self
    }

    /// How long to wait for the bootstrap launch (default 60 s; `None`: no
    /// limit).
    pub fn bootstrap_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.bootstrap_timeout = timeout.into();
        self
    }

    /// The machine the device's AICPU runs, checked against both SOs
    /// (default: [`Cann::device_machine`]).
    pub fn device_machine(mut self, machine: Machine) -> Self {
        self.device_machine = Some(machine);
        self
    }

    /// Checks both SOs and every declared kernel, sets the device,
    /// installs the SO (once per process, device and SO content) and, on
    /// the binary path, registers the kernels (once per process, device,
    /// SO and kernel set). Nothing reaches the device unless every check
    /// passes.
    pub fn build(self) -> Result<Module, Error> {
        let checked = self.check()?;
        let device = checked.cann.open_device(checked.device)?;
        checked.install(&device, None)
    }

    /// Every check made before anything reaches the device.
    pub(crate) fn check(self) -> Result<Checked, Error> {
        if self.device < 0 {
            return Err(Error::InvalidArgument(format!(
                "device id {} is negative",
                self.device
            )));
        }
        if self.kernels.is_empty() {
            return Err(Error::InvalidArgument(
                "a module needs at least one kernel (ModuleBuilder::kernel)".into(),
            ));
        }
        if !self.cann.supports(self.launch_path) {
            return Err(Error::LaunchPathUnsupported {
                path: self.launch_path,
                missing: self.cann.missing_calls(self.launch_path),
                libraries: self.cann.libraries().to_vec(),
            });
        }
        let machine = self
            .device_machine
            .unwrap_or_else(|| self.cann.device_machine());
        let dispatcher = self.dispatcher.into_image(Role::Dispatcher, machine)?;
        let so = self.so.into_image(self.role, machine)?;
        so.check_kernels(self.kernels.iter().map(String::as_str), self.role)?;
        Ok(Checked {
            cann: self.cann,
            device: self.device,
            machine,
            dispatcher,
            so,
            kernels: self.kernels,
            launch_path: self.launch_path,
            bootstrap_timeout: self.bootstrap_timeout,
        })
    }
}

/// A module's SOs and kernels, checked, not yet on the device.
pub(crate) struct Checked {
    pub(crate) cann: Cann,
    pub(crate) device: i32,
    pub(crate) machine: Machine,
    dispatcher: SoImage,
    so: SoImage,
    kernels: Vec<String>,
    launch_path: LaunchPath,
    bootstrap_timeout: Option<Duration>,
}

impl Checked {
    /// Installs the SO on `device` (bootstrapping on `stream`, or on a
    /// stream of its own if one is needed) and registers the kernels if
    /// the path needs it.
    pub(crate) fn install(
        self,
        device: &Device,
        stream: Option<&mut Stream>,
    ) -> Result<Module, Error> {
        let request = Request {
            dispatcher: self.dispatcher.bytes(),
            runtime: &self.so,
            timeout: self.bootstrap_timeout,
        };
        let started = Instant::now();
        let (installed, cache) = bootstrap::install(device, stream, &request)?;
        let bootstrap_time = started.elapsed();
        let preinstall_name = PreinstallName::new(installed.fingerprint);
        let so_name = CString::new(preinstall_name.as_str()).expect("a preinstall name has no NUL");
        let kernels: Vec<KernelEntry> = self
            .kernels
            .iter()
            .map(|name| KernelEntry {
                name: name.clone(),
                c_name: CString::new(name.as_str()).expect("checked: no NUL"),
            })
            .collect();

        let started = Instant::now();
        let (registration, registered) = match self.launch_path {
            LaunchPath::Type2 => (None, None),
            LaunchPath::Binary => {
                let calls = device
                    .cann()
                    .binary_calls()
                    .expect("checked: the binary path is supported");
                let (registration, status) = registry::acquire(
                    device,
                    calls,
                    installed.fingerprint,
                    preinstall_name.as_str(),
                    &self.kernels,
                )?;
                (Some(registration), Some(status))
            }
        };
        let registration_time = started.elapsed();
        let Installed {
            path,
            fingerprint,
            bytes_uploaded,
        } = installed;
        let info = ModuleInfo {
            device: device.id(),
            device_machine: self.machine,
            preinstall_name,
            fingerprint,
            dispatcher: self.dispatcher.label().to_owned(),
            so: self.so.label().to_owned(),
            dispatcher_len: self.dispatcher.bytes().len() as u64,
            so_len: self.so.bytes().len() as u64,
            cache,
            bytes_uploaded: if cache == CacheStatus::Miss {
                bytes_uploaded
            } else {
                0
            },
            installed_path: path,
            bootstrap_time,
            launch_path: self.launch_path,
            kernels: self.kernels,
            registration: registered,
            registration_time,
        };
        tracing::debug!(
            device = info.device,
            so = %info.so,
            path = %info.launch_path,
            "module ready"
        );
        Ok(Module {
            inner: Arc::new(ModuleInner {
                registration,
                info,
                kernels,
                so_name,
                so: self.so,
                dispatcher: self.dispatcher,
                bootstrap_timeout: self.bootstrap_timeout,
                device: device.clone(),
            }),
        })
    }
}

/// What building a module did, for reports and logs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ModuleInfo {
    /// The device id.
    pub device: i32,
    /// The machine both SOs were checked against.
    pub device_machine: Machine,
    /// `simpler_inner_<fp>.so`: the SO's name on the device.
    pub preinstall_name: PreinstallName,
    /// FNV-1a 64 of the SO.
    pub fingerprint: u64,
    /// Where the dispatcher SO came from (path or label).
    pub dispatcher: String,
    /// Where the AICPU SO came from (path or label).
    pub so: String,
    /// Dispatcher SO size in bytes.
    pub dispatcher_len: u64,
    /// AICPU SO size in bytes.
    pub so_len: u64,
    /// Whether this build bootstrapped or reused an earlier bootstrap.
    pub cache: CacheStatus,
    /// Bytes this build copied to the device (0 unless it bootstrapped).
    pub bytes_uploaded: u64,
    /// The device path the dispatcher installed the SO at.
    pub installed_path: String,
    /// Time spent bootstrapping, or waiting for a concurrent bootstrap.
    pub bootstrap_time: Duration,
    /// How the kernels are launched.
    pub launch_path: LaunchPath,
    /// The declared kernels, in declaration order.
    pub kernels: Vec<String>,
    /// On the binary path: [`CacheStatus::Miss`] if this build registered
    /// the kernels with CANN, [`CacheStatus::Hit`] if it shares a
    /// registration a live module made, [`CacheStatus::Joined`] if it
    /// waited for a concurrent one. `None` on the type-2 path.
    pub registration: Option<CacheStatus>,
    /// Time spent registering, or waiting for a registration.
    pub registration_time: Duration,
}

struct KernelEntry {
    name: String,
    c_name: CString,
}

/// One AICPU SO installed on one device, with the kernels declared for it.
///
/// Cheap to clone; clones share everything. On the binary path the
/// module holds its kernels' registration with CANN, shared by every equal
/// module (same CANN, device, SO and kernel set) alive in the process and
/// released when the last of them is dropped. The SO file stays installed
/// on the device (it is content-addressed; `simpler device gc` cleans
/// up); nothing else is left behind.
///
/// ```no_run
/// # fn main() -> Result<(), simpler_host::Error> {
/// use simpler_host::{Cann, CannSource, LaunchPath, Module, Stream};
///
/// let cann = Cann::load(&CannSource::Simulator)?;
/// let module = Module::builder(&cann)
///     .so_path("libmy_kernels.so")
///     .kernel("my_kernel")
///     .launch_path(LaunchPath::Binary)
///     .build()?;
/// let kernel = module.kernel("my_kernel")?;
/// let mut stream = Stream::new(module.device())?;
/// kernel.run(&mut stream, 1, &42u64.to_le_bytes(), None)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Module {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    /// Dropped first: unregistering needs the device still set.
    registration: Option<registry::Registration>,
    info: ModuleInfo,
    kernels: Vec<KernelEntry>,
    so_name: CString,
    so: SoImage,
    dispatcher: SoImage,
    bootstrap_timeout: Option<Duration>,
    device: Device,
}

impl fmt::Debug for Module {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Module")
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

impl Module {
    /// A builder for a module on `cann`. Any ELF shared object for the
    /// device's machine qualifies; give it with
    /// [`so_path`](ModuleBuilder::so_path) (or bytes, or an image checked
    /// as [`Role::Kernels`]) and declare its kernels.
    ///
    /// A kernel is `uint32_t kernel(void *param)`: `param` points at a
    /// device copy of the payload given to [`Kernel::launch`]. It returns
    /// 0 on success; any other value fails the launch (CANN's 507018 at
    /// the next sync). It must not return 101, 201 or 501 to 505: CANN's
    /// AICPU scheduler gives those meanings of its own (a task to run
    /// again, a task to suspend, …) instead of failing the launch.
    pub fn builder(cann: &Cann) -> ModuleBuilder {
        ModuleBuilder::new(cann, Role::Kernels)
    }

    /// What building this module did.
    pub fn info(&self) -> &ModuleInfo {
        &self.inner.info
    }

    /// The device the SO is installed on.
    pub fn device(&self) -> &Device {
        &self.inner.device
    }

    /// How its kernels are launched.
    pub fn launch_path(&self) -> LaunchPath {
        self.inner.info.launch_path
    }

    /// The SO, as checked.
    pub fn so_image(&self) -> &SoImage {
        &self.inner.so
    }

    /// The declared kernel `name`; any other name is an error.
    pub fn kernel(&self, name: &str) -> Result<Kernel, Error> {
        match self.index_of(name) {
            Some(index) => Ok(Kernel {
                module: self.clone(),
                index,
            }),
            None => Err(Error::InvalidArgument(format!(
                "kernel {name} was not declared for module {} ({}); declared: {}",
                self.inner.info.so,
                self.inner.info.preinstall_name,
                self.inner.info.kernels.join(", ")
            ))),
        }
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.inner.kernels.iter().position(|k| k.name == name)
    }

    /// The binary path's calls and the function of kernel `index`, on
    /// that path.
    pub(crate) fn function(&self, index: usize) -> Option<(BinaryCalls, RawFunc)> {
        let registration = self.inner.registration.as_ref()?;
        Some((registration.calls(), registration.funcs()[index]))
    }

    /// Forgets the cached install and installs the SO again on `stream`
    /// (an installed file found not to work).
    pub(crate) fn reinstall(&self, stream: &mut Stream) -> Result<(Installed, CacheStatus), Error> {
        bootstrap::forget(&self.inner.device, &self.inner.so);
        let request = Request {
            dispatcher: self.inner.dispatcher.bytes(),
            runtime: &self.inner.so,
            timeout: self.inner.bootstrap_timeout,
        };
        bootstrap::install(&self.inner.device, Some(stream), &request)
    }

    fn same_as(&self, other: &Module) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// One declared kernel of a [`Module`]; cheap to clone.
#[derive(Clone)]
pub struct Kernel {
    module: Module,
    index: usize,
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("name", &self.name())
            .field("so", &self.module.inner.info.so)
            .field("device", &self.module.inner.info.device)
            .finish()
    }
}

impl Kernel {
    /// The kernel's symbol.
    pub fn name(&self) -> &str {
        &self.entry().name
    }

    /// The module it belongs to.
    pub fn module(&self) -> &Module {
        &self.module
    }

    fn entry(&self) -> &KernelEntry {
        &self.module.inner.kernels[self.index]
    }

    /// Queues the kernel on `stream` on `block_dim` AICPU threads, with
    /// `payload` at offset 0 of the block it receives a pointer to; does
    /// not wait (see [`Stream::sync`]). CANN copies the payload before
    /// this returns. Allocates nothing once the stream has launched a
    /// payload this large.
    pub fn launch(&self, stream: &mut Stream, block_dim: u32, payload: &[u8]) -> Result<(), Error> {
        let inner = &self.module.inner;
        if !stream.device().same_as(&inner.device) {
            return Err(Error::InvalidArgument(format!(
                "kernel {} is installed on device {}, but the stream is on device {} (or of \
                 another CANN)",
                self.name(),
                inner.info.device,
                stream.device().id()
            )));
        }
        if block_dim == 0 {
            return Err(Error::InvalidArgument(format!(
                "kernel {}: block_dim must be at least 1",
                self.name()
            )));
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::InvalidArgument(format!(
                "kernel {}: a payload of {} bytes is more than the {MAX_PAYLOAD} bytes a launch \
                 carries",
                self.name(),
                payload.len()
            )));
        }
        let entry = self.entry();
        let result = match self.module.function(self.index) {
            None => stream.launch_type2(
                &entry.c_name,
                &inner.so_name,
                block_dim,
                payload,
                KERNEL_CONTEXT,
            ),
            Some((calls, func)) => {
                stream.launch_binary(&calls, &func, block_dim, payload, KERNEL_CONTEXT)
            }
        };
        match result {
            Ok(()) => {
                stream.note_launch(self);
                Ok(())
            }
            Err(source) => Err(Error::Kernel(Box::new(KernelError {
                device: inner.info.device,
                step: KernelStep::Launch,
                kernels: vec![self.describe(1)],
                source,
            }))),
        }
    }

    /// [`Kernel::launch`] with the bytes of `payload`.
    pub fn launch_pod<T: bytemuck::Pod>(
        &self,
        stream: &mut Stream,
        block_dim: u32,
        payload: &T,
    ) -> Result<(), Error> {
        self.launch(stream, block_dim, bytemuck::bytes_of(payload))
    }

    /// [`Kernel::launch`], then [`Stream::sync`] with `timeout` (`None`: no
    /// limit). A non-zero return of the kernel is [`Error::Kernel`] with
    /// CANN's 507018 inside.
    pub fn run(
        &self,
        stream: &mut Stream,
        block_dim: u32,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        self.launch(stream, block_dim, payload)?;
        stream.sync(timeout)
    }

    /// The kernel as errors name it.
    pub(crate) fn describe(&self, launches: u64) -> LaunchedKernel {
        let info = &self.module.inner.info;
        LaunchedKernel {
            kernel: self.name().to_owned(),
            so: info.so.clone(),
            preinstall_name: info.preinstall_name.to_string(),
            launches,
        }
    }

    pub(crate) fn same_as(&self, other: &Kernel) -> bool {
        self.index == other.index && self.module.same_as(&other.module)
    }
}

/// The largest payload a launch takes: CANN's `argsSize` is a `uint32_t`,
/// and the block holds the names too on the type-2 path.
const MAX_PAYLOAD: usize = u32::MAX as usize / 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_paths_parse_and_print_as_their_names() {
        for path in LaunchPath::ALL {
            assert_eq!(path.to_string().parse::<LaunchPath>().unwrap(), path);
        }
        assert_eq!(LaunchPath::default(), LaunchPath::Type2);
        assert_eq!(LaunchPath::Binary.to_string(), "binary");
        let err = "type3".parse::<LaunchPath>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument: unknown launch path \"type3\"; use type2 or binary"
        );
    }

    #[test]
    fn a_missing_launch_path_names_the_calls_and_libraries() {
        let err = Error::LaunchPathUnsupported {
            path: LaunchPath::Binary,
            missing: vec!["rtsBinaryLoadFromFile", "rtsLaunchCpuKernel"],
            libraries: vec!["/opt/libruntime.so".into()],
        };
        let text = err.to_string();
        assert_eq!(
            text.lines().next().unwrap(),
            "the binary launch path needs rtsBinaryLoadFromFile, rtsLaunchCpuKernel, which \
             /opt/libruntime.so do not export"
        );
        assert!(text.contains("\nhint: use the type2 launch path"), "{text}");
    }
}
