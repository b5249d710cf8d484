//! The API table: every function of [`crate::sys`] resolved from a list of
//! libraries at run time, each symbol from the first library that exports
//! it (`libascendcl.so` + `libruntime.so` on hardware, the simulator's one
//! library otherwise). The simulator's accounting symbols are optional.

use std::ffi::CStr;
use std::fmt;
use std::path::PathBuf;

use libloading::Library;

use crate::calls::BinaryCalls;
use crate::sys::{self, symbols};

/// One resolved symbol and the library it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSymbol {
    /// The C symbol name.
    pub symbol: &'static str,
    /// The library that provided it, `None` for an optional symbol that no
    /// library exports.
    pub library: Option<PathBuf>,
}

/// Why [`Api::load`] failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadFailure {
    /// `dlopen` refused a library.
    Open {
        /// The library.
        library: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// No listed library exports a required symbol.
    MissingSymbol {
        /// The C symbol.
        symbol: &'static str,
        /// The libraries searched.
        libraries: Vec<PathBuf>,
    },
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Open { library, reason } => {
                write!(
                    f,
                    "cannot load CANN library {}: {reason}",
                    library.display()
                )
            }
            Self::MissingSymbol { symbol, libraries } => {
                let list: Vec<_> = libraries.iter().map(|p| p.display().to_string()).collect();
                write!(f, "symbol {symbol} not found in {}", list.join(", "))
            }
        }
    }
}

impl std::error::Error for LoadFailure {}

/// The CANN API resolved from one or more libraries.
///
/// The fields are the raw C functions, for callers that must pass what the
/// safe wrappers of [`crate::calls`] never do (tests of the simulator's
/// argument checks); every call through them is `unsafe`. A copied pointer
/// is valid only while this table lives.
pub struct Api {
    /// `aclInit`.
    pub acl_init: sys::AclInit,
    /// `aclrtGetDeviceCount`.
    pub get_device_count: sys::GetDeviceCount,
    /// `aclrtSetDevice`.
    pub set_device: sys::SetDevice,
    /// `aclrtResetDevice`.
    pub reset_device: sys::ResetDevice,
    /// `aclrtCreateStream`.
    pub create_stream: sys::CreateStream,
    /// `aclrtDestroyStream`.
    pub destroy_stream: sys::DestroyStream,
    /// `aclrtSynchronizeStreamWithTimeout`.
    pub sync_stream: sys::SyncStream,
    /// `aclrtMalloc`.
    pub malloc: sys::Malloc,
    /// `aclrtFree`.
    pub free: sys::Free,
    /// `aclrtMemcpy`.
    pub memcpy: sys::Memcpy,
    /// `aclGetRecentErrMsg`.
    pub recent_err_msg: sys::RecentErrMsg,
    /// `rtAicpuKernelLaunchExWithArgs`.
    pub launch: sys::Launch,
    /// The binary-handle launch path (`rtsBinaryLoadFromFile`,
    /// `rtsFuncGetByName`, `rtsLaunchCpuKernel`, `rtsBinaryUnload`), when
    /// the libraries export all four.
    pub binary: Option<BinaryCalls>,
    /// `simpler_sim_get_stats`, when a library is the simulator.
    pub sim_get_stats: Option<sys::SimGetStats>,
    /// `simpler_sim_device_machine`, when a library is the simulator.
    pub sim_device_machine: Option<sys::SimDeviceMachine>,
    /// `simpler_sim_ping`, when a library is the simulator.
    pub sim_ping: Option<sys::SimPing>,
    symbols: Vec<ResolvedSymbol>,
    // Declared last: dropped after the pointers above. The host keeps its
    // tables for the whole process, because CANN does not support being
    // unloaded while its threads run.
    _libraries: Vec<Library>,
}

impl Api {
    /// Opens `paths` in order and resolves every required symbol from the
    /// first library that exports it.
    pub fn load(paths: &[PathBuf]) -> Result<Api, LoadFailure> {
        let mut libraries = Vec::with_capacity(paths.len());
        for path in paths {
            // SAFETY: opening a library runs its initialisers. The caller
            // chose these files as CANN (or CANN-compatible) libraries;
            // running their initialisers is the documented way to use them.
            let lib = unsafe { Library::new(path) }.map_err(|e| LoadFailure::Open {
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
        // pointer type is the `sys` type declared for that symbol name.
        let mut api = unsafe {
            Api {
                acl_init: resolver.required(symbols::ACL_INIT)?,
                get_device_count: resolver.required(symbols::GET_DEVICE_COUNT)?,
                set_device: resolver.required(symbols::SET_DEVICE)?,
                reset_device: resolver.required(symbols::RESET_DEVICE)?,
                create_stream: resolver.required(symbols::CREATE_STREAM)?,
                destroy_stream: resolver.required(symbols::DESTROY_STREAM)?,
                sync_stream: resolver.required(symbols::SYNC_STREAM)?,
                malloc: resolver.required(symbols::MALLOC)?,
                free: resolver.required(symbols::FREE)?,
                memcpy: resolver.required(symbols::MEMCPY)?,
                recent_err_msg: resolver.required(symbols::RECENT_ERR_MSG)?,
                launch: resolver.required(symbols::LAUNCH)?,
                binary: resolver.binary_calls(),
                sim_get_stats: resolver.optional(symbols::SIM_GET_STATS),
                sim_device_machine: resolver.optional(symbols::SIM_DEVICE_MACHINE),
                sim_ping: resolver.optional(symbols::SIM_PING),
                symbols: Vec::new(),
                _libraries: Vec::new(),
            }
        };
        api.symbols = resolver.symbols;
        api._libraries = libraries;
        Ok(api)
    }

    /// Every symbol looked up, with the library that provided it.
    pub fn symbols(&self) -> &[ResolvedSymbol] {
        &self.symbols
    }

    /// Whether the library exports the simulator's symbols.
    pub fn is_simulator(&self) -> bool {
        self.sim_device_machine.is_some()
    }
}

struct Resolver<'a> {
    paths: &'a [PathBuf],
    libraries: &'a [Library],
    symbols: Vec<ResolvedSymbol>,
}

impl Resolver<'_> {
    /// Looks `name` up in each library in order.
    ///
    /// # Safety
    /// `T` must be the function pointer type of the C symbol `name`.
    unsafe fn find<T: Copy>(&mut self, name: &'static CStr) -> Option<T> {
        let text = symbol_text(name);
        for (lib, path) in self.libraries.iter().zip(self.paths) {
            // SAFETY: the caller guarantees `T` matches the symbol's type;
            // the pointer is copied out and stays valid because the library
            // is kept loaded by `Api::_libraries` for as long as `Api` lives.
            if let Ok(sym) = unsafe { lib.get::<T>(name.to_bytes_with_nul()) } {
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
    unsafe fn required<T: Copy>(&mut self, name: &'static CStr) -> Result<T, LoadFailure> {
        // SAFETY: forwarded to the caller.
        unsafe { self.find(name) }.ok_or_else(|| LoadFailure::MissingSymbol {
            symbol: symbol_text(name),
            libraries: self.paths.to_vec(),
        })
    }

    /// The four calls of the binary-handle path, or `None` unless every
    /// one is exported (each is listed in the symbols either way).
    fn binary_calls(&mut self) -> Option<BinaryCalls> {
        // SAFETY: each type is the `sys` type of the symbol named with it.
        unsafe {
            let load_from_file = self.optional(symbols::BINARY_LOAD_FROM_FILE);
            let unload = self.optional(symbols::BINARY_UNLOAD);
            let func_get_by_name = self.optional(symbols::FUNC_GET_BY_NAME);
            let launch_cpu_kernel = self.optional(symbols::LAUNCH_CPU_KERNEL);
            Some(BinaryCalls {
                load_from_file: load_from_file?,
                unload: unload?,
                func_get_by_name: func_get_by_name?,
                launch_cpu_kernel: launch_cpu_kernel?,
            })
        }
    }

    /// # Safety
    /// As [`Resolver::find`].
    unsafe fn optional<T: Copy>(&mut self, name: &'static CStr) -> Option<T> {
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

fn symbol_text(name: &'static CStr) -> &'static str {
    name.to_str().unwrap_or("?")
}
