//! Reading device SOs: what a shared object is built for, what it exports
//! and needs, and the preflight that checks a dispatcher or runtime SO
//! against its contract before anything is uploaded.

use std::fmt;

use object::elf::{self, FileHeader64};
use object::read::elf::{Dyn as _, FileHeader as _, ProgramHeader as _, Sym as _};
use object::{Endianness, SymbolIndex};
use simpler_abi::artifacts::{TRIPLE_AARCH64, TRIPLE_X86_64};
use simpler_abi::names::{
    DISPATCHER_SYMBOLS, MAX_DISPATCHER_SO_LEN, MAX_INNER_SO_LEN, RUNTIME_SYMBOLS,
};
use simpler_abi::{fingerprint, PreinstallName};

/// Byte of `e_ident` holding the class (32/64-bit).
const EI_CLASS: usize = 4;
/// Byte of `e_ident` holding the data encoding (byte order).
const EI_DATA: usize = 5;

/// An ELF `e_machine` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Machine(pub u16);

impl Machine {
    /// `EM_AARCH64`: real AICPU cores.
    pub const AARCH64: Machine = Machine(elf::EM_AARCH64);
    /// `EM_X86_64`: the simulator's device process when it runs natively.
    pub const X86_64: Machine = Machine(elf::EM_X86_64);

    /// The machine of the process running this code.
    pub const fn host() -> Machine {
        if cfg!(target_arch = "aarch64") {
            Self::AARCH64
        } else {
            Self::X86_64
        }
    }

    /// The Rust target triple whose artifacts run on this machine, for the
    /// two machines the project builds for.
    pub fn triple(self) -> Option<&'static str> {
        match self {
            Self::AARCH64 => Some(TRIPLE_AARCH64),
            Self::X86_64 => Some(TRIPLE_X86_64),
            _ => None,
        }
    }

    /// Parses `aarch64` / `arm64` / `x86_64` / `x86-64` / `amd64`.
    pub fn from_name(name: &str) -> Option<Machine> {
        match name.to_ascii_lowercase().as_str() {
            "aarch64" | "arm64" => Some(Self::AARCH64),
            "x86_64" | "x86-64" | "amd64" => Some(Self::X86_64),
            _ => None,
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::AARCH64 => f.write_str("aarch64"),
            Self::X86_64 => f.write_str("x86_64"),
            Machine(other) => write!(f, "e_machine {other}"),
        }
    }
}

/// Which side of the contract an SO is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The dispatcher SO, loaded by `libaicpu_extend_kernels`.
    Dispatcher,
    /// The runtime SO, preinstalled and launched by name.
    Runtime,
    /// Any AICPU SO of the user's, preinstalled like the runtime SO; its
    /// contract is the kernels a [`Module`](crate::Module) declares.
    Kernels,
}

impl Role {
    /// The symbols an SO of this role must export.
    pub fn contract(self) -> &'static [&'static str] {
        match self {
            Self::Dispatcher => &DISPATCHER_SYMBOLS,
            Self::Runtime => &RUNTIME_SYMBOLS,
            Self::Kernels => &[],
        }
    }

    /// The largest SO of this role the device side accepts.
    pub fn max_len(self) -> u64 {
        match self {
            Self::Dispatcher => MAX_DISPATCHER_SO_LEN,
            Self::Runtime | Self::Kernels => MAX_INNER_SO_LEN,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dispatcher => "dispatcher",
            Self::Runtime => "runtime",
            Self::Kernels => "kernel",
        })
    }
}

/// What a 64-bit little-endian ELF shared object is and links against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoInfo {
    /// `e_machine`.
    pub machine: Machine,
    /// Size in bytes.
    pub size: u64,
    /// FNV-1a 64 of the whole file.
    pub fingerprint: u64,
    /// The names of the dynamic symbols it defines for other objects to
    /// bind to (global, weak or unique; default or protected visibility),
    /// of any kind, sorted: the defined entries of
    /// [`symbols`](SoInfo::symbols).
    pub exports: Vec<String>,
    /// Every dynamic symbol other objects see, defined here or imported,
    /// with its kind: one entry per name (a definition rather than an
    /// import of the same name), sorted by name.
    pub symbols: Vec<DynSymbol>,
    /// The program interpreter its `PT_INTERP` program header names (e.g.
    /// `/lib64/ld-linux-x86-64.so.2`): only executables have one.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries, in file order.
    pub needed: Vec<String>,
    /// The highest `GLIBC_x.y[.z]` version the file requires, if any: the
    /// highest numbered one among its version needs (the loader checks
    /// every one, whether a symbol uses it or not) and its
    /// [`glibc_refs`](SoInfo::glibc_refs).
    pub max_glibc: Option<GlibcVersion>,
    /// Its undefined dynamic symbols bound to a `GLIBC_*` version, in
    /// symbol table order, non-numbered versions (`GLIBC_PRIVATE`)
    /// included: what a glibc ceiling is judged on, symbol by symbol.
    pub glibc_refs: Vec<GlibcRef>,
}

/// A dynamic symbol other objects see: its name and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DynSymbol {
    /// The name.
    pub name: String,
    /// What it is.
    pub kind: SymbolKind,
}

/// What a dynamic symbol is, as far as calling it by name goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SymbolKind {
    /// A function defined here (`STT_FUNC`).
    Function,
    /// An indirect function defined here (`STT_GNU_IFUNC`): the loader
    /// binds the name to the function its resolver returns.
    Ifunc,
    /// Data (`STT_OBJECT`).
    Object,
    /// Thread-local data (`STT_TLS`).
    ThreadLocal,
    /// A common block (`STT_COMMON`).
    Common,
    /// No type (`STT_NOTYPE`), e.g. a label from assembly.
    NoType,
    /// Another `st_type`.
    Other(u8),
    /// Not defined here (`SHN_UNDEF`): an import another object provides.
    Undefined,
}

impl SymbolKind {
    /// The kind of a symbol with this `st_type` and `st_shndx`.
    fn of(st_type: u8, st_shndx: u16) -> Self {
        if st_shndx == elf::SHN_UNDEF {
            return Self::Undefined;
        }
        match st_type {
            elf::STT_FUNC => Self::Function,
            elf::STT_GNU_IFUNC => Self::Ifunc,
            elf::STT_OBJECT => Self::Object,
            elf::STT_TLS => Self::ThreadLocal,
            elf::STT_COMMON => Self::Common,
            elf::STT_NOTYPE => Self::NoType,
            other => Self::Other(other),
        }
    }

    /// Whether a symbol of this kind can be called: a function or an
    /// indirect function defined in the file.
    pub fn is_function(self) -> bool {
        matches!(self, Self::Function | Self::Ifunc)
    }
}

impl fmt::Display for SymbolKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Function => f.write_str("a function (STT_FUNC)"),
            Self::Ifunc => f.write_str("an indirect function (STT_GNU_IFUNC)"),
            Self::Object => f.write_str("a data object (STT_OBJECT)"),
            Self::ThreadLocal => f.write_str("thread-local data (STT_TLS)"),
            Self::Common => f.write_str("a common block (STT_COMMON)"),
            Self::NoType => f.write_str("an untyped symbol (STT_NOTYPE)"),
            Self::Other(t) => write!(f, "a symbol of type {t}"),
            Self::Undefined => f.write_str("undefined (an import)"),
        }
    }
}

/// Why a name is not a function an SO defines and exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotAFunction {
    /// No dynamic symbol of that name that other objects see.
    Missing,
    /// A dynamic symbol of that name, of another kind (undefined included).
    Kind(SymbolKind),
}

/// The entry for `name` in `symbols` (sorted by name, one per name).
fn find_symbol<'a>(symbols: &'a [DynSymbol], name: &str) -> Option<&'a DynSymbol> {
    symbols
        .binary_search_by(|s| s.name.as_str().cmp(name))
        .ok()
        .map(|i| &symbols[i])
}

/// Whether `name` is a function defined in and exported by the file whose
/// dynamic symbols are `symbols`.
pub(crate) fn defined_function(symbols: &[DynSymbol], name: &str) -> Result<(), NotAFunction> {
    match find_symbol(symbols, name) {
        None => Err(NotAFunction::Missing),
        Some(s) if s.kind.is_function() => Ok(()),
        Some(s) => Err(NotAFunction::Kind(s.kind)),
    }
}

/// An undefined symbol and the glibc version it is bound to, e.g.
/// `memcpy@GLIBC_2.17`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GlibcRef {
    /// The symbol name.
    pub symbol: String,
    /// The version name, e.g. `GLIBC_2.17` or `GLIBC_PRIVATE`.
    pub version: String,
}

impl GlibcRef {
    /// The numbered version, `None` for others such as `GLIBC_PRIVATE`.
    pub fn glibc_version(&self) -> Option<GlibcVersion> {
        GlibcVersion::parse(&self.version)
    }
}

impl fmt::Display for GlibcRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.symbol, self.version)
    }
}

/// A `GLIBC_` symbol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion(pub u32, pub u32, pub u32);

impl GlibcVersion {
    /// Parses `GLIBC_2.17` or `GLIBC_2.3.4`; `None` for other names
    /// (`GLIBC_PRIVATE` included).
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.strip_prefix("GLIBC_")?.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Self(major, minor, patch))
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GLIBC_{}.{}", self.0, self.1)?;
        if self.2 != 0 {
            write!(f, ".{}", self.2)?;
        }
        Ok(())
    }
}

impl SoInfo {
    /// Reads `bytes` as a 64-bit little-endian ELF shared object.
    pub fn parse(bytes: &[u8]) -> Result<SoInfo, PreflightProblem> {
        Ok(Headers::parse(bytes)?.with_fingerprint(fingerprint(bytes)))
    }

    /// `simpler_inner_<fp>.so` for this file.
    pub fn preinstall_name(&self) -> PreinstallName {
        PreinstallName::new(self.fingerprint)
    }

    /// The symbols of `role`'s contract this file does not export.
    pub fn missing_exports(&self, role: Role) -> Vec<&'static str> {
        missing_exports(&self.exports, role)
    }

    /// The dynamic symbol `name`, if other objects see one.
    pub fn symbol(&self, name: &str) -> Option<&DynSymbol> {
        find_symbol(&self.symbols, name)
    }

    /// Whether `name` is a function this file defines and exports: what
    /// the device can call by name, as it calls each contract symbol.
    pub fn function(&self, name: &str) -> Result<(), NotAFunction> {
        defined_function(&self.symbols, name)
    }

    /// The checks [`preflight`] makes once the file is parsed: whether the
    /// preflight accepts the file these are the facts of as the `role` SO
    /// for a device running `machine` code. `file` names it in the error.
    pub fn check(&self, role: Role, machine: Machine, file: &str) -> Result<(), PreflightError> {
        check_parts(
            Parts {
                size: self.size,
                machine: self.machine,
                interpreter: self.interpreter.as_deref(),
                symbols: &self.symbols,
            },
            role,
            machine,
            file,
        )
    }
}

/// What the ELF headers and tables of an SO say: its [`SoInfo`] but for
/// the fingerprint, the one part that reads every byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Headers {
    /// `e_machine`.
    pub machine: Machine,
    /// Size in bytes.
    pub size: u64,
    /// As [`SoInfo::exports`].
    pub exports: Vec<String>,
    /// As [`SoInfo::symbols`].
    pub symbols: Vec<DynSymbol>,
    /// As [`SoInfo::interpreter`].
    pub interpreter: Option<String>,
    /// As [`SoInfo::needed`].
    pub needed: Vec<String>,
    /// As [`SoInfo::max_glibc`].
    pub max_glibc: Option<GlibcVersion>,
    /// As [`SoInfo::glibc_refs`].
    pub glibc_refs: Vec<GlibcRef>,
}

impl Headers {
    /// The [`SoInfo`] of a file with these headers and `fingerprint`.
    fn with_fingerprint(self, fingerprint: u64) -> SoInfo {
        let Headers {
            machine,
            size,
            exports,
            symbols,
            interpreter,
            needed,
            max_glibc,
            glibc_refs,
        } = self;
        SoInfo {
            machine,
            size,
            fingerprint,
            exports,
            symbols,
            interpreter,
            needed,
            max_glibc,
            glibc_refs,
        }
    }

    /// Reads the headers and tables of `bytes` as a 64-bit little-endian
    /// ELF shared object.
    fn parse(bytes: &[u8]) -> Result<Headers, PreflightProblem> {
        if bytes.is_empty() {
            return Err(PreflightProblem::Empty);
        }
        if !bytes.starts_with(&elf::ELFMAG) {
            return Err(PreflightProblem::NotElf);
        }
        match bytes.get(EI_CLASS) {
            Some(&elf::ELFCLASS64) => {}
            Some(&elf::ELFCLASS32) => return Err(PreflightProblem::Not64Bit),
            _ => return Err(malformed("unknown ELF class")),
        }
        match bytes.get(EI_DATA) {
            Some(&elf::ELFDATA2LSB) => {}
            Some(&elf::ELFDATA2MSB) => return Err(PreflightProblem::BigEndian),
            _ => return Err(malformed("unknown ELF data encoding")),
        }
        let header = FileHeader64::<Endianness>::parse(bytes).map_err(obj_err)?;
        let endian = header.endian().map_err(obj_err)?;
        let machine = Machine(header.e_machine(endian));
        let e_type = header.e_type(endian);
        if e_type != elf::ET_DYN {
            return Err(PreflightProblem::NotSharedObject(match e_type {
                elf::ET_EXEC => "a position-dependent executable".into(),
                elf::ET_REL => "a relocatable object file".into(),
                elf::ET_CORE => "a core dump".into(),
                other => format!("ELF type {other}"),
            }));
        }
        let mut interpreter = None;
        for segment in header.program_headers(endian, bytes).map_err(obj_err)? {
            if let Some(path) = segment.interpreter(endian, bytes).map_err(obj_err)? {
                interpreter = Some(String::from_utf8_lossy(path).into_owned());
            }
        }
        let sections = header.sections(endian, bytes).map_err(obj_err)?;
        let Some((dynamic, strtab)) = sections.dynamic(endian, bytes).map_err(obj_err)? else {
            return Err(PreflightProblem::NotSharedObject(
                "no dynamic section".into(),
            ));
        };
        let dynstr = sections.strings(endian, bytes, strtab).map_err(obj_err)?;
        let mut needed = Vec::new();
        for entry in dynamic {
            if entry.tag32(endian) == Some(elf::DT_NEEDED) {
                let name = entry.string(endian, dynstr).map_err(obj_err)?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        let symbols = sections
            .symbols(endian, bytes, elf::SHT_DYNSYM)
            .map_err(obj_err)?;
        let versions = sections.versions(endian, bytes).map_err(obj_err)?;
        let mut dyn_symbols = Vec::new();
        let mut glibc_refs = Vec::new();
        for (index, symbol) in symbols.iter().enumerate() {
            let undefined = symbol.st_shndx(endian) == elf::SHN_UNDEF;
            if undefined {
                if let Some(versions) = &versions {
                    let version = versions
                        .version(versions.version_index(endian, SymbolIndex(index)))
                        .map_err(obj_err)?;
                    if let Some(version) = version.filter(|v| v.name().starts_with(b"GLIBC_")) {
                        let name = symbols.symbol_name(endian, symbol).map_err(obj_err)?;
                        glibc_refs.push(GlibcRef {
                            symbol: String::from_utf8_lossy(name).into_owned(),
                            version: String::from_utf8_lossy(version.name()).into_owned(),
                        });
                    }
                }
            }
            // STB_GNU_UNIQUE: one definition process-wide, which other
            // objects bind to like a global one. A hidden or internal
            // symbol, defined or not, binds within the file only.
            let visible = matches!(
                symbol.st_bind(),
                elf::STB_GLOBAL | elf::STB_WEAK | elf::STB_GNU_UNIQUE
            ) && matches!(
                symbol.st_visibility(),
                elf::STV_DEFAULT | elf::STV_PROTECTED
            ) && !matches!(symbol.st_type(), elf::STT_SECTION | elf::STT_FILE);
            if visible {
                let name = symbols.symbol_name(endian, symbol).map_err(obj_err)?;
                if !name.is_empty() {
                    dyn_symbols.push(DynSymbol {
                        name: String::from_utf8_lossy(name).into_owned(),
                        kind: SymbolKind::of(symbol.st_type(), symbol.st_shndx(endian)),
                    });
                }
            }
        }
        // One entry per name: a definition wins over an import of the same
        // name (as the loader binds to it), else the first in table order.
        dyn_symbols.sort_by(|a, b| {
            (a.name.as_str(), a.kind == SymbolKind::Undefined)
                .cmp(&(b.name.as_str(), b.kind == SymbolKind::Undefined))
        });
        dyn_symbols.dedup_by(|later, first| later.name == first.name);
        let exports = dyn_symbols
            .iter()
            .filter(|s| s.kind != SymbolKind::Undefined)
            .map(|s| s.name.clone())
            .collect();
        let mut max_glibc = None;
        if let Some((mut needs, link)) = sections.gnu_verneed(endian, bytes).map_err(obj_err)? {
            let strings = sections.strings(endian, bytes, link).map_err(obj_err)?;
            while let Some((_need, mut auxes)) = needs.next().map_err(obj_err)? {
                while let Some(aux) = auxes.next().map_err(obj_err)? {
                    let name = aux.name(endian, strings).map_err(obj_err)?;
                    let version = std::str::from_utf8(name).ok().and_then(GlibcVersion::parse);
                    max_glibc = max_glibc.max(version);
                }
            }
        }
        let max_ref = glibc_refs.iter().filter_map(GlibcRef::glibc_version).max();
        max_glibc = max_glibc.max(max_ref);
        Ok(Headers {
            machine,
            size: bytes.len() as u64,
            exports,
            symbols: dyn_symbols,
            interpreter,
            needed,
            max_glibc,
            glibc_refs,
        })
    }
}

/// The symbols of `role`'s contract missing from `exports` (sorted).
fn missing_exports(exports: &[String], role: Role) -> Vec<&'static str> {
    role.contract()
        .iter()
        .copied()
        .filter(|sym| exports.binary_search_by(|e| e.as_str().cmp(sym)).is_err())
        .collect()
}

fn malformed(what: &str) -> PreflightProblem {
    PreflightProblem::Malformed(what.to_owned())
}

fn obj_err(e: object::read::Error) -> PreflightProblem {
    PreflightProblem::Malformed(e.to_string())
}

/// A dispatcher or runtime SO failed a check made before upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {problem}")]
pub struct PreflightError {
    /// The file (its path, or a label for bytes given in memory).
    pub file: String,
    /// Which SO it was meant to be.
    pub role: Role,
    /// What is wrong with it.
    pub problem: PreflightProblem,
}

/// What is wrong with an SO, found before upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PreflightProblem {
    /// Zero bytes.
    #[error("the file is empty")]
    Empty,
    /// Larger than the device side accepts.
    #[error("{len} bytes is more than the {max} bytes allowed for a {role} SO")]
    TooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
        /// The SO's role.
        role: Role,
    },
    /// No ELF magic.
    #[error("not an ELF file")]
    NotElf,
    /// ELFCLASS32.
    #[error("a 32-bit ELF file; the AICPU loads 64-bit shared objects only")]
    Not64Bit,
    /// Big-endian ELF.
    #[error("a big-endian ELF file; the AICPU is little-endian")]
    BigEndian,
    /// Not `ET_DYN` with a dynamic section.
    #[error("not a shared object ({0})")]
    NotSharedObject(String),
    /// Built for another machine than the device's.
    #[error("built for {found}, but the device runs {expected} code")]
    WrongMachine {
        /// The file's `e_machine`.
        found: Machine,
        /// The device's.
        expected: Machine,
    },
    /// An executable (it has a `PT_INTERP` program header), such as a
    /// position-independent executable: `ET_DYN` like a shared object,
    /// but the loader refuses to `dlopen` it.
    #[error(
        "an executable (program interpreter {interpreter}), which the device cannot dlopen; \
         link it with -shared"
    )]
    Executable {
        /// The interpreter its `PT_INTERP` names.
        interpreter: String,
    },
    /// Contract symbols it does not export.
    #[error("does not export {} required of a {role} SO", missing.join(", "))]
    MissingExports {
        /// The role whose contract it misses.
        role: Role,
        /// The missing symbols.
        missing: Vec<&'static str>,
    },
    /// A contract symbol it has, but not as a function it defines (data,
    /// or an import): the device would call it and crash.
    #[error("{}", not_a_function(role, symbol, kind))]
    NotAFunction {
        /// The role whose contract it is.
        role: Role,
        /// The symbol.
        symbol: &'static str,
        /// What it is instead.
        kind: SymbolKind,
    },
    /// The ELF structures are inconsistent.
    #[error("malformed ELF: {0}")]
    Malformed(String),
    /// A kernel a module declares is not a function the SO defines and
    /// exports (missing, hidden, data, or an import).
    #[error("{}", kernel_not_a_function(kernel, found))]
    KernelNotAFunction {
        /// The kernel name.
        kernel: String,
        /// What the SO has under that name.
        found: NotAFunction,
    },
    /// A kernel name CANN's AICPU scheduler would refuse.
    #[error(
        "kernel name {kernel:?} is not 1 to {max} bytes without NUL",
        max = simpler_abi::launch::KERNEL_NAME_MAX
    )]
    InvalidKernelName {
        /// The name as given.
        kernel: String,
    },
}

fn kernel_not_a_function(kernel: &str, found: &NotAFunction) -> String {
    match found {
        NotAFunction::Missing => format!(
            "kernel {kernel} is not exported (no dynamic symbol of that name; a hidden \
             function is not visible to the device)"
        ),
        NotAFunction::Kind(SymbolKind::Undefined) => {
            format!("kernel {kernel} is undefined (an import); the SO must define it as a function")
        }
        NotAFunction::Kind(kind) => {
            format!("kernel {kernel} is exported as {kind}; it must be a function")
        }
    }
}

/// Checks that each of `kernels` is a valid kernel name and a function the
/// SO whose dynamic symbols are `symbols` defines; the first that is not is
/// the error, naming `file` as a `role` SO.
pub(crate) fn check_kernels<'a>(
    symbols: &[DynSymbol],
    kernels: impl IntoIterator<Item = &'a str>,
    role: Role,
    file: &str,
) -> Result<(), PreflightError> {
    for kernel in kernels {
        let problem = if !simpler_abi::launch::is_valid_kernel_name(kernel.as_bytes()) {
            PreflightProblem::InvalidKernelName {
                kernel: kernel.to_owned(),
            }
        } else {
            match defined_function(symbols, kernel) {
                Ok(()) => continue,
                Err(found) => PreflightProblem::KernelNotAFunction {
                    kernel: kernel.to_owned(),
                    found,
                },
            }
        };
        return Err(PreflightError {
            file: file.to_owned(),
            role,
            problem,
        });
    }
    Ok(())
}

fn not_a_function(role: &Role, symbol: &str, kind: &SymbolKind) -> String {
    match kind {
        SymbolKind::Undefined => {
            format!("{symbol} is undefined (an import); a {role} SO must define it as a function")
        }
        kind => format!("exports {symbol} as {kind}; a {role} SO must export it as a function"),
    }
}

/// Checks `bytes` as the `role` SO for a device running `machine` code:
/// size, ELF class and byte order, a shared object and not an executable,
/// machine, and each contract symbol a function it defines. `file` names
/// the SO in the error.
pub fn preflight(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    file: &str,
) -> Result<SoInfo, PreflightError> {
    let headers = preflight_unhashed(bytes, role, machine, file)?;
    Ok(headers.with_fingerprint(fingerprint(bytes)))
}

/// [`preflight`] without the fingerprint: every check, none of which reads
/// more than the ELF headers and tables.
pub(crate) fn preflight_unhashed(
    bytes: &[u8],
    role: Role,
    machine: Machine,
    file: &str,
) -> Result<Headers, PreflightError> {
    // The size first, so that an oversized file is not parsed.
    check_len(bytes.len() as u64, role, file)?;
    let info = Headers::parse(bytes).map_err(|problem| PreflightError {
        file: file.to_owned(),
        role,
        problem,
    })?;
    check(&info, role, machine, file)?;
    Ok(info)
}

/// The part of [`preflight`] that needs only the parsed headers (as
/// [`SoInfo::check`]). Cheap, so a prepared [`SoImage`](crate::SoImage) is
/// checked again against every use.
pub(crate) fn check(
    info: &Headers,
    role: Role,
    machine: Machine,
    file: &str,
) -> Result<(), PreflightError> {
    check_parts(
        Parts {
            size: info.size,
            machine: info.machine,
            interpreter: info.interpreter.as_deref(),
            symbols: &info.symbols,
        },
        role,
        machine,
        file,
    )
}

/// What the checks after parsing look at, from a [`Headers`] or an
/// [`SoInfo`].
struct Parts<'a> {
    size: u64,
    machine: Machine,
    interpreter: Option<&'a str>,
    symbols: &'a [DynSymbol],
}

/// The one implementation of the checks after parsing: size, machine, not
/// an executable, then the contract: every symbol present (else all the
/// missing ones are named), then each a function the file defines (else
/// the first that is not, with what it is).
fn check_parts(
    parts: Parts<'_>,
    role: Role,
    machine: Machine,
    file: &str,
) -> Result<(), PreflightError> {
    let fail = |problem| PreflightError {
        file: file.to_owned(),
        role,
        problem,
    };
    check_len(parts.size, role, file)?;
    if parts.machine != machine {
        return Err(fail(PreflightProblem::WrongMachine {
            found: parts.machine,
            expected: machine,
        }));
    }
    if let Some(interpreter) = parts.interpreter {
        return Err(fail(PreflightProblem::Executable {
            interpreter: interpreter.to_owned(),
        }));
    }
    let checked: Vec<_> = role
        .contract()
        .iter()
        .map(|&symbol| (symbol, defined_function(parts.symbols, symbol)))
        .collect();
    let missing: Vec<_> = checked
        .iter()
        .filter(|(_, r)| *r == Err(NotAFunction::Missing))
        .map(|(symbol, _)| *symbol)
        .collect();
    if !missing.is_empty() {
        return Err(fail(PreflightProblem::MissingExports { role, missing }));
    }
    for (symbol, result) in checked {
        if let Err(NotAFunction::Kind(kind)) = result {
            return Err(fail(PreflightProblem::NotAFunction { role, symbol, kind }));
        }
    }
    Ok(())
}

/// Refuses a `role` SO of `len` bytes if that is more than the device
/// side accepts.
pub(crate) fn check_len(len: u64, role: Role, file: &str) -> Result<(), PreflightError> {
    if len > role.max_len() {
        return Err(PreflightError {
            file: file.to_owned(),
            role,
            problem: PreflightProblem::TooLarge {
                len,
                max: role.max_len(),
                role,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared library every Linux test machine has.
    fn system_so() -> Vec<u8> {
        let candidates = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib64/libc.so.6",
        ];
        candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .expect("a system libc to read")
    }

    fn find_so(name: &str) -> Option<Vec<u8>> {
        ["/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib64"]
            .iter()
            .find_map(|d| std::fs::read(format!("{d}/{name}")).ok())
    }

    #[test]
    fn reads_a_system_library() {
        let bytes = system_so();
        let info = SoInfo::parse(&bytes).unwrap();
        assert_eq!(info.machine, Machine::host());
        assert_eq!(info.size, bytes.len() as u64);
        assert!(info.exports.iter().any(|e| e == "malloc"));
        assert!(info.exports.windows(2).all(|w| w[0] < w[1]));
        assert!(info.needed.iter().any(|n| n.starts_with("ld-linux")));
    }

    #[test]
    fn finds_needed_and_glibc_version() {
        // libm needs libc and some GLIBC_2.x versions from it.
        let bytes = find_so("libm.so.6").expect("libm");
        let info = SoInfo::parse(&bytes).unwrap();
        assert!(
            info.needed.iter().any(|n| n == "libc.so.6"),
            "{:?}",
            info.needed
        );
        let v = info.max_glibc.expect("a GLIBC version need");
        assert!(v >= GlibcVersion(2, 2, 5), "{v}");
        // libm calls into libc, each call bound to a glibc version.
        assert!(!info.glibc_refs.is_empty());
        assert!(info
            .glibc_refs
            .iter()
            .all(|r| r.version.starts_with("GLIBC_") && !r.symbol.is_empty()));
        let max_ref = info
            .glibc_refs
            .iter()
            .filter_map(GlibcRef::glibc_version)
            .max();
        assert_eq!(max_ref, Some(v), "{:?}", info.glibc_refs);
    }

    #[test]
    fn glibc_refs_name_symbol_and_version() {
        let private = GlibcRef {
            symbol: "_dl_x".into(),
            version: "GLIBC_PRIVATE".into(),
        };
        assert_eq!(private.to_string(), "_dl_x@GLIBC_PRIVATE");
        assert_eq!(private.glibc_version(), None);
        let numbered = GlibcRef {
            symbol: "memcpy".into(),
            version: "GLIBC_2.17".into(),
        };
        assert_eq!(numbered.glibc_version(), Some(GlibcVersion(2, 17, 0)));
    }

    #[test]
    fn rejects_non_elf_and_non_shared() {
        assert_eq!(SoInfo::parse(b""), Err(PreflightProblem::Empty));
        assert_eq!(SoInfo::parse(b"#!/bin/sh\n"), Err(PreflightProblem::NotElf));
        let mut elf32 = system_so();
        elf32[EI_CLASS] = elf::ELFCLASS32;
        assert_eq!(SoInfo::parse(&elf32), Err(PreflightProblem::Not64Bit));
        let mut big = system_so();
        big[EI_DATA] = elf::ELFDATA2MSB;
        assert_eq!(SoInfo::parse(&big), Err(PreflightProblem::BigEndian));
        let mut exec = system_so();
        exec[16..18].copy_from_slice(&elf::ET_EXEC.to_le_bytes());
        assert!(matches!(
            SoInfo::parse(&exec),
            Err(PreflightProblem::NotSharedObject(_))
        ));
        let truncated = &system_so()[..100];
        assert!(matches!(
            SoInfo::parse(truncated),
            Err(PreflightProblem::Malformed(_))
        ));
    }

    #[test]
    fn preflight_names_file_and_problem() {
        let bytes = system_so();
        let other = if Machine::host() == Machine::AARCH64 {
            Machine::X86_64
        } else {
            Machine::AARCH64
        };
        let err = preflight(&bytes, Role::Runtime, other, "libc.so.6").unwrap_err();
        assert_eq!(err.file, "libc.so.6");
        assert_eq!(
            err.problem,
            PreflightProblem::WrongMachine {
                found: Machine::host(),
                expected: other
            }
        );
        let libm = find_so("libm.so.6").expect("libm");
        let err = preflight(&libm, Role::Dispatcher, Machine::host(), "libm.so.6").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "libm.so.6: does not export {} required of a dispatcher SO",
                DISPATCHER_SYMBOLS.join(", ")
            )
        );
        // libc can be run as well as loaded: it names an interpreter.
        let err = preflight(&bytes, Role::Dispatcher, Machine::host(), "libc.so.6").unwrap_err();
        assert!(
            matches!(err.problem, PreflightProblem::Executable { .. }),
            "{err}"
        );
    }

    /// The two runtime exports as C functions.
    const RUNTIME_FNS: &str = "
        int simpler_aicpu_init(void *a) { return 0; }
        int simpler_aicpu_exec(void *a) { return 0; }
    ";

    /// Builds `source` with `cc` and `args` and runs the preflight on it as
    /// the runtime SO for this machine, labelled `name`.
    fn preflight_c(
        name: &str,
        source: &str,
        args: &[&str],
    ) -> (SoInfo, Result<SoInfo, PreflightError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = simpler_testkit::compile_c(dir.path(), name, source, args);
        let bytes = std::fs::read(&path).unwrap();
        let info = SoInfo::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        (
            info,
            preflight(&bytes, Role::Runtime, Machine::host(), name),
        )
    }

    const SO: &[&str] = &["-shared", "-fPIC"];

    #[test]
    fn a_contract_symbol_must_be_a_function_the_so_defines() {
        let (info, ok) = preflight_c("fns.so", RUNTIME_FNS, SO);
        ok.unwrap();
        assert_eq!(info.function("simpler_aicpu_exec"), Ok(()));
        assert_eq!(
            info.symbol("simpler_aicpu_init").map(|s| s.kind),
            Some(SymbolKind::Function)
        );
        assert_eq!(info.function("no_such_kernel"), Err(NotAFunction::Missing));
        assert!(info.symbols.windows(2).all(|w| w[0].name < w[1].name));

        let data = "
            int simpler_aicpu_init(void *a) { return 0; }
            int simpler_aicpu_exec[4] = {1, 2, 3, 4};
        ";
        let (info, result) = preflight_c("data.so", data, SO);
        assert_eq!(
            info.function("simpler_aicpu_exec"),
            Err(NotAFunction::Kind(SymbolKind::Object))
        );
        assert!(info.exports.iter().any(|e| e == "simpler_aicpu_exec"));
        let err = result.unwrap_err();
        assert_eq!(
            err.problem,
            PreflightProblem::NotAFunction {
                role: Role::Runtime,
                symbol: "simpler_aicpu_exec",
                kind: SymbolKind::Object,
            }
        );
        assert_eq!(
            err.to_string(),
            "data.so: exports simpler_aicpu_exec as a data object (STT_OBJECT); a runtime SO \
             must export it as a function"
        );

        let tls = "
            int simpler_aicpu_init(void *a) { return 0; }
            __thread int simpler_aicpu_exec;
        ";
        let (_, result) = preflight_c("tls.so", tls, SO);
        assert!(
            matches!(
                &result,
                Err(PreflightError {
                    problem: PreflightProblem::NotAFunction {
                        symbol: "simpler_aicpu_exec",
                        kind: SymbolKind::ThreadLocal,
                        ..
                    },
                    ..
                })
            ),
            "{result:?}"
        );

        // Imported rather than defined: named with what it is.
        let import = "
            extern int simpler_aicpu_exec(void *a);
            int simpler_aicpu_init(void *a) { return simpler_aicpu_exec(a); }
        ";
        let (_, result) = preflight_c("import.so", import, SO);
        let err = result.unwrap_err();
        assert_eq!(
            err.to_string(),
            "import.so: simpler_aicpu_exec is undefined (an import); a runtime SO must define \
             it as a function"
        );

        // An indirect function resolves to a function: accepted.
        let ifunc = "
            int simpler_aicpu_init(void *a) { return 0; }
            static int exec_impl(void *a) { return 0; }
            static void *resolve(void) { return (void *)exec_impl; }
            int simpler_aicpu_exec(void *a) __attribute__((ifunc(\"resolve\")));
        ";
        let (info, result) = preflight_c("ifunc.so", ifunc, SO);
        assert_eq!(
            info.symbol("simpler_aicpu_exec").map(|s| s.kind),
            Some(SymbolKind::Ifunc)
        );
        result.unwrap();
    }

    #[test]
    fn an_executable_exporting_the_contract_is_refused_by_name() {
        let main = format!("{RUNTIME_FNS} int main(void) {{ return 0; }}");
        let (info, result) = preflight_c("pie", &main, &["-fPIE", "-pie", "-rdynamic"]);
        // It is ET_DYN, exports both functions and names an interpreter.
        assert_eq!(info.function("simpler_aicpu_exec"), Ok(()));
        let interpreter = info.interpreter.clone().expect("a PT_INTERP");
        let err = result.unwrap_err();
        assert_eq!(err.file, "pie");
        assert_eq!(
            err.problem,
            PreflightProblem::Executable {
                interpreter: interpreter.clone()
            }
        );
        let text = err.to_string();
        assert!(
            text.starts_with("pie: an executable") && text.contains(&interpreter),
            "{text}"
        );
        // A shared object has none.
        assert_eq!(preflight_c("fns.so", RUNTIME_FNS, SO).0.interpreter, None);
    }

    #[test]
    fn glibc_versions_parse_and_order() {
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.17"),
            Some(GlibcVersion(2, 17, 0))
        );
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.3.4"),
            Some(GlibcVersion(2, 3, 4))
        );
        assert_eq!(GlibcVersion::parse("GLIBC_PRIVATE"), None);
        assert_eq!(GlibcVersion::parse("GCC_3.0"), None);
        assert!(GlibcVersion(2, 17, 0) > GlibcVersion(2, 3, 4));
        assert_eq!(GlibcVersion(2, 3, 4).to_string(), "GLIBC_2.3.4");
    }

    #[test]
    fn machines_name_and_parse() {
        assert_eq!(Machine::from_name("aarch64"), Some(Machine::AARCH64));
        assert_eq!(Machine::from_name("X86_64"), Some(Machine::X86_64));
        assert_eq!(Machine::from_name("riscv"), None);
        assert_eq!(Machine(243).to_string(), "e_machine 243");
        assert_eq!(Machine::AARCH64.triple(), Some("aarch64-unknown-linux-gnu"));
    }
}
