//! Where the tests meet C: the dispatcher's exports, the bootstrap and
//! maintenance memory they read and write, the libc calls a test restricts its child with, and
//! the stand-in for CANN's `DlogRecord`.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::size_of;
use std::sync::{Mutex, OnceLock};

use simpler_abi::maintenance::{
    MaintenanceArgs, MaintenanceEntry, MaintenanceReply, MAINTENANCE_VERSION,
};
use simpler_abi::names::{
    DISPATCHER_INIT_SYMBOL_C, DISPATCHER_SERVER_SYMBOL_C, DISPATCHER_STATIC_SYMBOL_C,
};
use simpler_abi::{BootstrapArgs, BootstrapReport, DeviceArgs};

/// A contract export: `int32_t f(void *args)`.
type Entry = unsafe extern "C" fn(*mut c_void) -> i32;

/// The loaded dispatcher and its three exports.
pub struct Dispatcher {
    _lib: libloading::Library,
    init: Entry,
    server: Entry,
    static_server: Entry,
}

/// The host-arch dispatcher artifact, loaded once per test process.
pub fn dispatcher() -> &'static Dispatcher {
    static DISPATCHER: OnceLock<Dispatcher> = OnceLock::new();
    DISPATCHER.get_or_init(|| {
        let path = simpler_testkit::host_artifacts().dispatcher();
        // SAFETY: the dispatcher has no initialisers beyond libc's.
        let lib = unsafe { libloading::Library::new(&path) }
            .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        let entry = |name: &CStr| -> Entry {
            // SAFETY: every contract symbol has the `Entry` signature.
            *unsafe { lib.get::<Entry>(name.to_bytes_with_nul()) }
                .unwrap_or_else(|e| panic!("{name:?} missing from {}: {e}", path.display()))
        };
        Dispatcher {
            init: entry(DISPATCHER_INIT_SYMBOL_C),
            server: entry(DISPATCHER_SERVER_SYMBOL_C),
            static_server: entry(DISPATCHER_STATIC_SYMBOL_C),
            _lib: lib,
        }
    })
}

impl Dispatcher {
    /// `StaticTileFwkBackendKernelServer(arg)`.
    pub fn static_server(&self, arg: *mut c_void) -> i32 {
        // SAFETY: the stubs accept any pointer and touch nothing.
        unsafe { (self.static_server)(arg) }
    }

    /// `DynTileFwkBackendKernelServer(arg)`.
    pub fn server(&self, arg: *mut c_void) -> i32 {
        // SAFETY: the stubs accept any pointer and touch nothing.
        unsafe { (self.server)(arg) }
    }

    /// `DynTileFwkBackendKernelServerInit(NULL)`.
    pub fn init_null(&self) -> i32 {
        // SAFETY: a null block is part of the contract.
        unsafe { (self.init)(std::ptr::null_mut()) }
    }
}

/// One bootstrap call's memory: the block, the `DeviceArgs` it points to
/// and the report `DeviceArgs` points to, at stable (boxed) addresses.
pub struct Bootstrap {
    pub args: BootstrapArgs,
    pub device: DeviceArgs,
    pub report: BootstrapReport,
}

/// Byte the report is filled with before a call, so a field the
/// dispatcher forgot to write shows up.
pub const REPORT_POISON: u8 = 0xa5;

impl Bootstrap {
    /// A bootstrap of the `len` bytes at `bin` (any values, valid or not)
    /// for device 3, with a poisoned report attached.
    pub fn raw(bin: u64, len: u64) -> Box<Self> {
        let mut this = Box::new(Self {
            args: BootstrapArgs::new(0),
            device: DeviceArgs::default(),
            report: bytemuck::Zeroable::zeroed(),
        });
        bytemuck::bytes_of_mut(&mut this.report).fill(REPORT_POISON);
        this.device.device_id = 3;
        this.device.inner_so_bin = bin;
        this.device.inner_so_len = len;
        this.device.report = &raw mut this.report as u64;
        this.args.device_args = &raw const this.device as u64;
        this
    }

    /// A bootstrap of `runtime`, which must outlive the call.
    pub fn of(runtime: &[u8]) -> Box<Self> {
        Self::raw(runtime.as_ptr() as u64, runtime.len() as u64)
    }

    /// Detaches the report (`DeviceArgs::report = 0`).
    pub fn without_report(mut self: Box<Self>) -> Box<Self> {
        self.device.report = 0;
        self
    }

    /// Calls Init on the block, as `libaicpu_extend_kernels` does.
    pub fn run(&mut self) -> i32 {
        // SAFETY: the block, DeviceArgs and report are live and laid out as
        // the dispatcher expects; the runtime bytes outlive the call.
        unsafe { (dispatcher().init)((&raw mut self.args).cast()) }
    }
}

/// One maintenance call's memory: the block, its `DeviceArgs`, a report
/// (which a current dispatcher must leave alone), the `MaintenanceArgs`,
/// the fingerprints of a remove, and the reply with room for `capacity`
/// entries and a guard entry after them, all poisoned before the call.
pub struct Maintenance {
    pub args: BootstrapArgs,
    pub device: DeviceArgs,
    pub report: BootstrapReport,
    pub maintenance: MaintenanceArgs,
    pub fingerprints: Vec<u64>,
    /// Header, `capacity` entries, one guard entry.
    reply: Vec<u8>,
}

impl Maintenance {
    /// A call of `command` (the whole `DeviceArgs::command` word) with room
    /// for `capacity` entries.
    pub fn new(command: u64, capacity: u32) -> Box<Self> {
        let len =
            size_of::<MaintenanceReply>() + (capacity as usize + 1) * size_of::<MaintenanceEntry>();
        let mut this = Box::new(Self {
            args: BootstrapArgs::new(0),
            device: DeviceArgs::default(),
            report: bytemuck::Zeroable::zeroed(),
            maintenance: MaintenanceArgs {
                version: MAINTENANCE_VERSION,
                capacity,
                ..MaintenanceArgs::default()
            },
            fingerprints: Vec::new(),
            reply: vec![REPORT_POISON; len],
        });
        bytemuck::bytes_of_mut(&mut this.report).fill(REPORT_POISON);
        this.device.device_id = 3;
        this.device.command = command;
        this
    }

    /// Calls Init with every address filled in, as the host lays them out.
    pub fn run(&mut self) -> i32 {
        self.fill();
        self.run_as_is()
    }

    /// Fills in every address, as the host lays them out.
    pub fn fill(&mut self) {
        self.maintenance.fingerprints = if self.fingerprints.is_empty() {
            0
        } else {
            self.fingerprints.as_ptr() as u64
        };
        self.maintenance.fingerprint_count = self.fingerprints.len() as u32;
        self.maintenance.reply = self.reply.as_mut_ptr() as u64;
        self.device.maintenance = &raw const self.maintenance as u64;
        self.device.report = &raw mut self.report as u64;
        self.args.device_args = &raw const self.device as u64;
    }

    /// Calls Init with the addresses as they are.
    pub fn run_as_is(&mut self) -> i32 {
        // SAFETY: the block, DeviceArgs, report, arguments, fingerprints
        // and reply are live and as large as the addresses in them claim.
        unsafe { (dispatcher().init)((&raw mut self.args).cast()) }
    }

    /// The reply header as the dispatcher left it.
    pub fn reply(&self) -> MaintenanceReply {
        bytemuck::pod_read_unaligned(&self.reply[..size_of::<MaintenanceReply>()])
    }

    /// Entry `index` (up to the guard entry after the last).
    pub fn entry_bytes(&self, index: usize) -> &[u8] {
        let at = size_of::<MaintenanceReply>() + index * size_of::<MaintenanceEntry>();
        &self.reply[at..at + size_of::<MaintenanceEntry>()]
    }

    /// The `count` entries the reply says were written.
    pub fn entries(&self) -> Vec<MaintenanceEntry> {
        (0..self.reply().count as usize)
            .map(|i| bytemuck::pod_read_unaligned(self.entry_bytes(i)))
            .collect()
    }

    /// Whether nothing was written from entry `from` on, guard included.
    pub fn untouched_from(&self, from: usize) -> bool {
        let at = size_of::<MaintenanceReply>() + from * size_of::<MaintenanceEntry>();
        self.reply[at..].iter().all(|&b| b == REPORT_POISON)
    }
}

/// Sets this process's file creation mask.
pub fn set_umask(mask: libc::mode_t) {
    // SAFETY: umask only changes this process's creation mask.
    unsafe { libc::umask(mask) };
}

/// Limits the size of files this process writes to `limit` bytes, with
/// `SIGXFSZ` ignored so that a write past it fails with `EFBIG`; the
/// result of `setrlimit`.
pub fn limit_file_size(limit: u64) -> c_int {
    let limit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain libc calls on this process's own signal disposition
    // and limits.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        libc::setrlimit(libc::RLIMIT_FSIZE, &limit)
    }
}

/// Sets the access and modification times of `path` to `secs_ago` seconds
/// before now; of a symlink itself, not of what it points to.
pub fn set_times_ago(path: &std::path::Path, secs_ago: i64) {
    set_times_ago_ns(path, secs_ago, 0);
}

/// [`set_times_ago`] with `nsec` nanoseconds on top of the whole seconds.
pub fn set_times_ago_ns(path: &std::path::Path, secs_ago: i64, nsec: i64) {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let then = libc::timespec {
        tv_sec: now - secs_ago,
        tv_nsec: nsec,
    };
    let times = [then, then];
    // SAFETY: a NUL-terminated path and an array of two timespecs.
    let ret = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(
        ret,
        0,
        "utimensat {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Gives up every capability of this process, so that file permissions
/// bind it even when it runs as root; the result of `capset(2)`.
pub fn drop_capabilities() -> std::ffi::c_long {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    /// `_LINUX_CAPABILITY_VERSION_3`: two `Data` words of 32 capabilities.
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let none = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: a capability header and the two data words version 3 reads.
    unsafe { libc::syscall(libc::SYS_capset, &raw const header, none.as_ptr()) }
}

/// (module, level, formatted message) of every `DlogRecord` call.
static RECORDS: Mutex<Vec<(c_int, c_int, String)>> = Mutex::new(Vec::new());

/// The records logged since the last call.
pub fn take_records() -> Vec<(c_int, c_int, String)> {
    std::mem::take(&mut *RECORDS.lock().unwrap())
}

/// Stand-in for CANN's `void DlogRecord(int module, int level, const char *fmt, ...)`.
///
/// `DlogRecord` is variadic, which stable Rust cannot define. On x86-64 and
/// AArch64 Linux integer and pointer arguments of a variadic call travel
/// exactly as those of a fixed one, so this takes five 64-bit slots and
/// hands them to `snprintf` with the same format.
///
/// # Safety
///
/// `fmt` is a printf format whose conversions take at most five integer or
/// pointer arguments, passed in `a0..a4`.
#[no_mangle]
pub unsafe extern "C" fn DlogRecord(
    module: c_int,
    level: c_int,
    fmt: *const c_char,
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    a4: u64,
) {
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is writable for its length; `fmt` and the arguments
    // come from the dispatcher's call, forwarded unchanged.
    unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), fmt, a0, a1, a2, a3, a4) };
    let text = CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    RECORDS.lock().unwrap().push((module, level, text));
}
