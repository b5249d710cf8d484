//! [`SoImage`]: a device SO read and checked once, then shared by every
//! runner built from it.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use simpler_abi::{fingerprint, PreinstallName};

use crate::artifacts::{self, files, Side};
use crate::elf::{self, preflight_unhashed, Headers, Machine, NotAFunction, Role};
use crate::error::Error;

/// A dispatcher or runtime SO that passed the preflight: its bytes, what
/// they are, and (once computed) its fingerprint and preinstall name.
///
/// Making one reads the file and checks its ELF headers and contract
/// exports; the fingerprint (FNV-1a 64 of every byte, the costly part) is
/// computed once, by the first bootstrap that needs it — while the device
/// installs the SO — or by [`SoImage::fingerprint`]. A builder given a
/// path or bytes makes a new image on every
/// [`build`](crate::DeviceRunnerBuilder::build), so a warm build reads and
/// identifies the SO again; make the image once and hand it to every
/// builder instead
/// ([`DeviceRunnerBuilder::runtime_image`](crate::DeviceRunnerBuilder::runtime_image),
/// or [`DeviceRunnerBuilder::prepare`](crate::DeviceRunnerBuilder::prepare)
/// to convert a builder's sources): a runner built from images only checks
/// the image against the device (size, machine, exports — no read, no hash,
/// no copy of the bytes).
///
/// Cloning is cheap: clones share the bytes and what was computed from
/// them. The bytes are never modified.
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
    /// The preflight's findings (the fingerprint is `fingerprint` below,
    /// computed when first needed).
    elf: Headers,
    content: ContentKey,
    fingerprint: OnceLock<u64>,
}

/// What the bootstrap cache knows an SO's content by before its
/// fingerprint is computed: its length and XXH3-128. Two different SOs
/// share it with a chance of about 2^-128 (less than the 2^-64 of the
/// 64-bit fingerprint that names the installed file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ContentKey {
    len: u64,
    xxh3: u128,
}

impl SoImage {
    /// Reads the SO at `path` and checks it as the `role` SO for a device
    /// running `machine` code (as [`elf::preflight`] does). A file larger
    /// than `role` allows is refused by the size its metadata gives, before
    /// any of it is read.
    pub fn from_path(path: impl AsRef<Path>, role: Role, machine: Machine) -> Result<Self, Error> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let bytes = read_so(path, role, &label)?;
        Self::new(bytes.into(), label, role, machine)
    }

    /// Checks `bytes` (e.g. from `include_bytes!`, or a `Vec` the image
    /// takes over without copying) as the `role` SO for a device running
    /// `machine` code. Errors name it `<runtime SO bytes>`,
    /// `<dispatcher SO bytes>` or `<kernel SO bytes>`.
    pub fn from_bytes(
        bytes: impl Into<Cow<'static, [u8]>>,
        role: Role,
        machine: Machine,
    ) -> Result<Self, Error> {
        Self::new(bytes.into(), format!("<{role} SO bytes>"), role, machine)
    }

    /// The `role` SO for `machine` from the artifacts directories (see
    /// [`crate::artifacts`]): what a builder uses when given no SO. There
    /// is no default [`Role::Kernels`] SO: asking for one is an error.
    pub fn artifact(role: Role, machine: Machine) -> Result<Self, Error> {
        let file = match role {
            Role::Dispatcher => files::DISPATCHER,
            Role::Runtime => files::RUNTIME,
            Role::Kernels => {
                return Err(Error::InvalidArgument(
                    "there is no default kernel SO: name one (a path, bytes or an SoImage)".into(),
                ))
            }
        };
        Self::from_path(artifacts::find(file, Side::Device(machine))?, role, machine)
    }

    fn new(
        bytes: Cow<'static, [u8]>,
        label: String,
        role: Role,
        machine: Machine,
    ) -> Result<Self, Error> {
        let elf = preflight_unhashed(&bytes, role, machine, &label)?;
        let content = ContentKey {
            len: bytes.len() as u64,
            xxh3: xxhash_rust::xxh3::xxh3_128(&bytes),
        };
        Ok(Self {
            inner: Arc::new(Image {
                label,
                role,
                bytes,
                elf,
                content,
                fingerprint: OnceLock::new(),
            }),
        })
    }

    /// Checks the image for use as the `role` SO on a device running
    /// `machine` code: the parts of the preflight that depend on them.
    pub(crate) fn check(&self, role: Role, machine: Machine) -> Result<(), Error> {
        elf::check(&self.inner.elf, role, machine, &self.inner.label)?;
        Ok(())
    }

    /// The bytes.
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
        self.inner.elf.machine
    }

    /// Whether `name` is a function the SO defines and exports, so that the
    /// device can call it by name (as [`SoInfo::function`](crate::SoInfo::function)).
    pub fn function(&self, name: &str) -> Result<(), NotAFunction> {
        elf::defined_function(&self.inner.elf.symbols, name)
    }

    /// Checks that each of `kernels` is a valid kernel name and a function
    /// the SO defines and exports; the error names the kernel and the SO.
    pub(crate) fn check_kernels<'a>(
        &self,
        kernels: impl IntoIterator<Item = &'a str>,
        role: Role,
    ) -> Result<(), Error> {
        elf::check_kernels(&self.inner.elf.symbols, kernels, role, &self.inner.label)?;
        Ok(())
    }

    /// FNV-1a 64 of the bytes, computed on the first call (or by the first
    /// bootstrap of the image) and remembered.
    pub fn fingerprint(&self) -> u64 {
        *self
            .inner
            .fingerprint
            .get_or_init(|| fingerprint(&self.inner.bytes))
    }

    /// `simpler_inner_<fp>.so`, the name a runtime SO is installed under
    /// (computes the fingerprint if no one has yet).
    pub fn preinstall_name(&self) -> PreinstallName {
        PreinstallName::new(self.fingerprint())
    }

    /// The fingerprint if it was computed already.
    pub(crate) fn known_fingerprint(&self) -> Option<u64> {
        self.inner.fingerprint.get().copied()
    }

    /// Records a fingerprint computed for the same content elsewhere (a
    /// cached bootstrap of an equal image), sparing this image the hash.
    pub(crate) fn learn_fingerprint(&self, fp: u64) {
        // An image that computed its own keeps it; they are equal unless
        // the content key collided.
        let _ = self.inner.fingerprint.set(fp);
    }

    /// The bootstrap cache's name for the content.
    pub(crate) fn content_key(&self) -> ContentKey {
        self.inner.content
    }
}

/// The bytes of the file at `path`, unless its metadata says it is larger
/// than `role` allows. Reads at most one byte past the limit, so a file
/// that grows meanwhile (or one without a size, a pipe say) is refused by
/// the preflight's size check without being read whole.
fn read_so(path: &Path, role: Role, label: &str) -> Result<Vec<u8>, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    elf::check_len(meta.len(), role, label)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(role.max_len() + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

impl fmt::Debug for SoImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoImage")
            .field("label", &self.inner.label)
            .field("role", &self.inner.role)
            .field("machine", &self.machine())
            .field("len", &self.inner.bytes.len())
            // Not computed for the sake of printing.
            .field(
                "fingerprint",
                &self.known_fingerprint().map(|fp| format!("{fp:016x}")),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{DynSymbol, NotAFunction, PreflightProblem, SymbolKind};

    /// A shared library for this machine that exports neither contract.
    fn libm_path() -> &'static str {
        [
            "/lib/x86_64-linux-gnu/libm.so.6",
            "/lib/aarch64-linux-gnu/libm.so.6",
            "/lib64/libm.so.6",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("a system libm")
    }

    #[test]
    fn bad_sources_are_preflight_or_io_errors() {
        let bytes = std::fs::read(libm_path()).unwrap();
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
    fn clones_share_the_bytes_and_the_fingerprint() {
        // A minimal image, built without the preflight, to test the sharing.
        let bytes: &'static [u8] = b"\x7fELF";
        let image = SoImage {
            inner: Arc::new(Image {
                label: "test".into(),
                role: Role::Runtime,
                bytes: bytes.into(),
                elf: Headers {
                    machine: Machine::host(),
                    size: bytes.len() as u64,
                    exports: Role::Runtime
                        .contract()
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    symbols: Role::Runtime
                        .contract()
                        .iter()
                        .map(|s| DynSymbol {
                            name: s.to_string(),
                            kind: SymbolKind::Function,
                        })
                        .collect(),
                    interpreter: None,
                    needed: Vec::new(),
                    max_glibc: None,
                    glibc_refs: Vec::new(),
                },
                content: ContentKey {
                    len: bytes.len() as u64,
                    xxh3: xxhash_rust::xxh3::xxh3_128(bytes),
                },
                fingerprint: OnceLock::new(),
            }),
        };
        let clone = image.clone();
        assert!(std::ptr::eq(image.bytes(), clone.bytes()));
        assert!(
            std::ptr::eq(image.bytes(), bytes),
            "borrowed bytes are not copied"
        );
        assert_eq!(clone.known_fingerprint(), None);
        assert!(format!("{image:?}").contains("fingerprint: None"));
        assert_eq!(image.fingerprint(), fingerprint(bytes));
        assert_eq!(clone.known_fingerprint(), Some(fingerprint(bytes)));
        assert_eq!(clone.preinstall_name(), PreinstallName::of(bytes));
        clone.learn_fingerprint(1);
        assert_eq!(
            image.fingerprint(),
            fingerprint(bytes),
            "a computed one stays"
        );

        image.check(Role::Runtime, Machine::host()).unwrap();
        assert_eq!(image.function("simpler_aicpu_exec"), Ok(()));
        assert_eq!(image.function("other"), Err(NotAFunction::Missing));
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
