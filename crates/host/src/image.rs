//! [`SoImage`]: a device SO read, checked and fingerprinted once, then
//! shared by every runner built from it.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use simpler_abi::PreinstallName;

use crate::artifacts::{self, files, Side};
use crate::elf::{self, preflight, Machine, Role, SoInfo};
use crate::error::Error;

/// A dispatcher or runtime SO that passed the preflight: its bytes, what
/// they are ([`SoInfo`], fingerprint included) and the preinstall name.
///
/// Making one reads the file and hashes every byte (FNV-1a runs at about
/// 0.75 GiB/s, so ~1.3 ms for a 1 MiB runtime); a builder given a path or
/// bytes does that on every [`build`](crate::DeviceRunnerBuilder::build).
/// Make the image once and hand it to every builder instead
/// ([`DeviceRunnerBuilder::runtime_image`](crate::DeviceRunnerBuilder::runtime_image),
/// or [`DeviceRunnerBuilder::prepare`](crate::DeviceRunnerBuilder::prepare)
/// to convert a builder's sources): a runner built from images only checks
/// the image against the device (size, machine, exports — no hashing, no
/// copy of the bytes).
///
/// Cloning is cheap: clones share the bytes. The bytes are never modified,
/// so the fingerprint stays true for the image's life.
///
/// ```no_run
/// # fn main() -> Result<(), simpler_host::Error> {
/// use simpler_host::{Cann, CannSource, DeviceRunner, Role, SoImage};
///
/// let cann = Cann::load(&CannSource::Simulator)?;
/// let machine = cann.device_machine();
/// let runtime = SoImage::from_path("libmy_runtime.so", Role::Runtime, machine)?;
/// let dispatcher = SoImage::artifact(Role::Dispatcher, machine)?;
/// for device in 0..2 {
///     let runner = DeviceRunner::builder(&cann)
///         .device(device)
///         .dispatcher_image(dispatcher.clone())
///         .runtime_image(runtime.clone())
///         .build()?;
///     println!("{}", runner.info().preinstall_name);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SoImage {
    inner: Arc<Image>,
}

struct Image {
    label: String,
    role: Role,
    bytes: Cow<'static, [u8]>,
    info: SoInfo,
    name: PreinstallName,
}

impl SoImage {
    /// Reads the SO at `path` and checks it as the `role` SO for a device
    /// running `machine` code ([`elf::preflight`]).
    pub fn from_path(path: impl AsRef<Path>, role: Role, machine: Machine) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::new(bytes.into(), path.display().to_string(), role, machine)
    }

    /// Checks `bytes` (e.g. from `include_bytes!`, or a `Vec` the image
    /// takes over without copying) as the `role` SO for a device running
    /// `machine` code. Errors name it `<runtime SO bytes>` or
    /// `<dispatcher SO bytes>`.
    pub fn from_bytes(
        bytes: impl Into<Cow<'static, [u8]>>,
        role: Role,
        machine: Machine,
    ) -> Result<Self, Error> {
        Self::new(bytes.into(), format!("<{role} SO bytes>"), role, machine)
    }

    /// The `role` SO for `machine` from the artifacts directories (see
    /// [`crate::artifacts`]): what a builder uses when given no SO.
    pub fn artifact(role: Role, machine: Machine) -> Result<Self, Error> {
        let file = match role {
            Role::Dispatcher => files::DISPATCHER,
            Role::Runtime => files::RUNTIME,
        };
        Self::from_path(artifacts::find(file, Side::Device(machine))?, role, machine)
    }

    fn new(
        bytes: Cow<'static, [u8]>,
        label: String,
        role: Role,
        machine: Machine,
    ) -> Result<Self, Error> {
        let info = preflight(&bytes, role, machine, &label)?;
        let name = info.preinstall_name();
        Ok(Self {
            inner: Arc::new(Image {
                label,
                role,
                bytes,
                info,
                name,
            }),
        })
    }

    /// Checks the image for use as the `role` SO on a device running
    /// `machine` code: the parts of the preflight that depend on them.
    pub(crate) fn check(&self, role: Role, machine: Machine) -> Result<(), Error> {
        elf::check(&self.inner.info, role, machine, &self.inner.label)?;
        Ok(())
    }

    /// The SO's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.inner.bytes
    }

    /// Where the SO came from: its path, or `<runtime SO bytes>` /
    /// `<dispatcher SO bytes>`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The role the image was checked for.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// The machine the SO is built for (the one it was checked against).
    pub fn machine(&self) -> Machine {
        self.inner.info.machine
    }

    /// What the preflight read: exports, NEEDED, glibc version.
    pub fn info(&self) -> &SoInfo {
        &self.inner.info
    }

    /// FNV-1a 64 of the bytes.
    pub fn fingerprint(&self) -> u64 {
        self.inner.info.fingerprint
    }

    /// `simpler_inner_<fp>.so`, the name a runtime SO is installed under.
    pub fn preinstall_name(&self) -> PreinstallName {
        self.inner.name
    }
}

impl fmt::Debug for SoImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoImage")
            .field("label", &self.inner.label)
            .field("role", &self.inner.role)
            .field("machine", &self.machine())
            .field("len", &self.inner.bytes.len())
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::PreflightProblem;

    fn libc_path() -> &'static str {
        [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a system libc")
    }

    #[test]
    fn bad_sources_are_preflight_or_io_errors() {
        // libc is a shared object for this machine exporting neither
        // contract.
        let bytes = std::fs::read(libc_path()).unwrap();
        let err = SoImage::from_bytes(bytes.clone(), Role::Runtime, Machine::host()).unwrap_err();
        let Error::Preflight(err) = err else {
            panic!("{err}")
        };
        assert_eq!(err.file, "<runtime SO bytes>");
        assert!(matches!(
            err.problem,
            PreflightProblem::MissingExports { .. }
        ));
        let err =
            SoImage::from_path("/nonexistent/lib.so", Role::Runtime, Machine::host()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[test]
    fn clones_share_the_bytes() {
        // A minimal image, built without the preflight, to test the sharing.
        let bytes: &'static [u8] = b"\x7fELF";
        let info = SoInfo {
            machine: Machine::host(),
            size: bytes.len() as u64,
            fingerprint: simpler_abi::fingerprint(bytes),
            exports: Role::Runtime
                .contract()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            needed: Vec::new(),
            max_glibc: None,
        };
        let image = SoImage {
            inner: Arc::new(Image {
                label: "test".into(),
                role: Role::Runtime,
                bytes: bytes.into(),
                name: info.preinstall_name(),
                info,
            }),
        };
        let clone = image.clone();
        assert!(std::ptr::eq(image.bytes(), clone.bytes()));
        assert!(
            std::ptr::eq(image.bytes(), bytes),
            "borrowed bytes are not copied"
        );
        image.check(Role::Runtime, Machine::host()).unwrap();
        let Err(Error::Preflight(err)) = image.check(Role::Dispatcher, Machine::host()) else {
            panic!("a runtime image passed as a dispatcher")
        };
        assert!(matches!(
            err.problem,
            PreflightProblem::MissingExports {
                role: Role::Dispatcher,
                ..
            }
        ));
        let other = if Machine::host() == Machine::AARCH64 {
            Machine::X86_64
        } else {
            Machine::AARCH64
        };
        let Err(Error::Preflight(err)) = image.check(Role::Runtime, other) else {
            panic!("an image for another machine passed")
        };
        assert_eq!(err.file, "test");
        assert!(matches!(err.problem, PreflightProblem::WrongMachine { .. }));
    }
}
