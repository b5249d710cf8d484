//! Shared by the simulator's integration tests: the C API loaded from the
//! built library through the one binding, running a test body in a child
//! process with its own simulator environment, test kernels compiled from
//! C, and the bootstrap and launches exactly as a host performs them.

use std::ffi::{c_void, CStr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytemuck::Zeroable;
use simpler_abi::bootstrap::{BOOTSTRAP_KERNEL_NAME_OFFSET, BOOTSTRAP_SO_NAME_OFFSET};
use simpler_abi::launch::{LAUNCH_KERNEL_NAME_OFFSET, LAUNCH_SO_NAME_OFFSET};
use simpler_abi::names::{
    KERNEL_TYPE_AICPU, KERNEL_TYPE_AICPU_KFC, KFC_OP_NAME_C, NAME_FIELD_LEN, RUNTIME_EXEC_SYMBOL_C,
    RUNTIME_INIT_SYMBOL_C,
};
use simpler_abi::{
    AicpuArgsEx, BootstrapArgs, BootstrapReport, DeviceArgs, ExecLaunchArgs, InitArgs,
    InitLaunchArgs, KernelArgs, PreinstallName, SimStats,
};
use simpler_cann_sys::sys::{self, symbols};
use simpler_cann_sys::Api;
use simpler_testkit::{host_artifacts, in_child, is_child, SimRoot, ARTIFACTS_DIR_ENV};

pub use simpler_abi::cann::error::*;
pub use simpler_abi::sim::env;
pub use simpler_sim_protocol::layout;

/// The C test kernels' SO name in a preinstall directory.
pub const TEST_KERNELS: &str = "libsim_test_kernels.so";

/// The simulator's C API: the one binding's table (its raw fields for
/// deliberately bad arguments, its wrappers otherwise), and the three
/// exports the table leaves out.
pub struct Sim {
    api: Api,
    /// `simpler_sim_get_stats`, raw (the table has it as optional).
    pub get_stats: sys::SimGetStats,
    /// `aclrtSynchronizeStream`, raw.
    pub sync: sys::SyncStreamNoTimeout,
    finalize: sys::Finalize,
    ping: sys::SimPing,
    // Keeps the extras' library loaded (the same one the table holds).
    _extras: libloading::Library,
}

impl Deref for Sim {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The code of a wrapper's result.
pub fn code<T>(result: Result<T, i32>) -> i32 {
    result.err().unwrap_or(ACL_SUCCESS)
}

impl Sim {
    /// Loads the library from the artifacts directory.
    pub fn load() -> Self {
        let path = host_artifacts().sim_lib();
        let api = Api::load(std::slice::from_ref(&path)).expect("load libsimpler_cann_sim.so");
        // SAFETY: the library is already loaded by `api`; opening it again
        // runs no initialisers.
        let extras = unsafe { libloading::Library::new(&path) }.expect("open the simulator again");
        fn get<T: Copy>(lib: &libloading::Library, name: &CStr) -> T {
            // SAFETY: every caller names `T` as the binding's type of the
            // symbol `name`, which the simulator checks its exports against.
            *unsafe { lib.get::<T>(name.to_bytes_with_nul()) }
                .unwrap_or_else(|e| panic!("{name:?}: {e}"))
        }
        Self {
            get_stats: api.sim_get_stats.expect("the simulator exports its stats"),
            finalize: get(&extras, symbols::FINALIZE),
            sync: get(&extras, symbols::SYNC_STREAM_NO_TIMEOUT),
            ping: get(&extras, symbols::SIM_PING),
            api,
            _extras: extras,
        }
    }

    /// `aclFinalize`.
    pub fn finalize(&self) -> i32 {
        // SAFETY: no arguments.
        unsafe { (self.finalize)() }
    }

    /// `aclrtSynchronizeStream` of any handle (NULL and dead ones
    /// included); returns the code.
    pub fn sync_forever(&self, stream: *mut c_void) -> i32 {
        // SAFETY: the simulator accepts any handle value and never
        // dereferences it.
        unsafe { (self.sync)(stream) }
    }

    /// `aclrtDestroyStream` of any handle; returns the code.
    pub fn destroy(&self, stream: *mut c_void) -> i32 {
        // SAFETY: as in `sync_forever`.
        unsafe { (self.api.destroy_stream)(stream) }
    }

    /// `simpler_sim_ping(count)`.
    pub fn ping(&self, count: u32) -> i32 {
        // SAFETY: a plain integer argument.
        unsafe { (self.ping)(count) }
    }

    /// This thread's last error message ("" when none).
    pub fn last_error(&self) -> String {
        self.api.recent_error().unwrap_or_default()
    }

    /// Panics with the error message unless `rc` is 0.
    pub fn ok(&self, call: &str, rc: i32) {
        assert_eq!(rc, 0, "{call} failed with {rc}: {}", self.last_error());
    }

    /// Asserts `rc == code` and that the message mentions `needle`.
    pub fn expect(&self, call: &str, rc: i32, code: i32, needle: &str) {
        let msg = self.last_error();
        assert_eq!(rc, code, "{call}: expected {code}, got {rc} ({msg})");
        assert!(
            msg.contains(needle),
            "{call}: message {msg:?} does not mention {needle:?}"
        );
        println!("{call} -> {rc}: {msg}");
    }

    pub fn set(&self, device: i32) {
        self.ok("aclrtSetDevice", code(self.api.set_device(device)));
    }

    pub fn reset(&self, device: i32) {
        self.ok("aclrtResetDevice", code(self.api.reset_device(device)));
    }

    /// A new stream on the current device, as the handle C sees.
    pub fn stream(&self) -> *mut c_void {
        match self.api.create_stream() {
            Ok(stream) => stream.as_ptr(),
            Err(rc) => panic!("aclrtCreateStream failed with {rc}: {}", self.last_error()),
        }
    }

    pub fn alloc(&self, len: usize) -> u64 {
        match self.api.malloc(len) {
            Ok(addr) => addr,
            Err(rc) => panic!("aclrtMalloc failed with {rc}: {}", self.last_error()),
        }
    }

    pub fn release(&self, addr: u64) {
        self.ok("aclrtFree", code(self.api.free(addr)));
    }

    /// Host → device copy; returns the code.
    pub fn try_h2d(&self, dst: u64, bytes: &[u8]) -> i32 {
        code(self.api.copy_to_device(dst, bytes.len(), bytes))
    }

    pub fn h2d(&self, dst: u64, bytes: &[u8]) {
        self.ok("aclrtMemcpy H2D", self.try_h2d(dst, bytes));
    }

    /// Device → host copy; returns the code and the bytes.
    pub fn try_d2h(&self, src: u64, len: usize) -> (i32, Vec<u8>) {
        let mut out = vec![0u8; len];
        let rc = code(self.api.copy_from_device(&mut out, src));
        (rc, out)
    }

    pub fn d2h(&self, src: u64, len: usize) -> Vec<u8> {
        let (rc, out) = self.try_d2h(src, len);
        self.ok("aclrtMemcpy D2H", rc);
        out
    }

    /// `aclrtSynchronizeStreamWithTimeout` of any handle (NULL and dead
    /// ones included); returns the code.
    pub fn sync_ms(&self, stream: *mut c_void, ms: i32) -> i32 {
        // SAFETY: the simulator accepts any handle value and never
        // dereferences it.
        unsafe { (self.api.sync_stream)(stream, ms) }
    }

    /// Launches with the `rtAicpuArgsEx_t` CANN expects on any handle;
    /// returns the code.
    pub fn launch_raw(
        &self,
        kernel_type: u32,
        op_name: &CStr,
        block_dim: u32,
        info: &AicpuArgsEx,
        stream: *mut c_void,
    ) -> i32 {
        // SAFETY: `info` points at a valid struct whose `args` the caller
        // built from a live buffer (or a device address it names as one).
        unsafe {
            (self.api.launch)(
                kernel_type,
                op_name.as_ptr(),
                block_dim,
                info,
                std::ptr::null_mut(),
                stream,
                0,
            )
        }
    }

    /// A type-2 launch of `kernel` in `so` with `payload` (≤ 16 bytes) in
    /// the per-task block layout; returns the code.
    pub fn launch_type2(
        &self,
        so: &str,
        kernel: &str,
        payload: &[u8],
        block_dim: u32,
        stream: *mut c_void,
    ) -> i32 {
        let mut block = vec![0u8; LAUNCH_SO_NAME_OFFSET as usize + NAME_FIELD_LEN];
        block[..payload.len()].copy_from_slice(payload);
        let k = LAUNCH_KERNEL_NAME_OFFSET as usize;
        block[k..k + kernel.len()].copy_from_slice(kernel.as_bytes());
        let s = LAUNCH_SO_NAME_OFFSET as usize;
        block[s..s + so.len()].copy_from_slice(so.as_bytes());
        let info = args_ex(&block, LAUNCH_SO_NAME_OFFSET, LAUNCH_KERNEL_NAME_OFFSET);
        self.launch_raw(KERNEL_TYPE_AICPU, c"test_op", block_dim, &info, stream)
    }

    /// [`Sim::launch_type2`] of a test kernel; panics unless accepted.
    pub fn launch_ok(
        &self,
        call: &str,
        kernel: &str,
        payload: &[u8],
        block_dim: u32,
        stream: *mut c_void,
    ) {
        self.ok(
            call,
            self.launch_type2(TEST_KERNELS, kernel, payload, block_dim, stream),
        );
    }

    /// Synchronises `stream` within [`SYNC_MS`]; panics unless it succeeds.
    pub fn sync_ok(&self, call: &str, stream: *mut c_void) {
        self.ok(call, self.sync_ms(stream, SYNC_MS));
    }

    /// Synchronises `stream` within [`SYNC_MS`] and asserts it fails with
    /// `code` and a message mentioning `needle`.
    pub fn sync_expect(&self, call: &str, stream: *mut c_void, code: i32, needle: &str) {
        self.expect(call, self.sync_ms(stream, SYNC_MS), code, needle);
    }

    /// The little-endian `u64` at device address `addr`.
    pub fn read_u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.d2h(addr, 8).try_into().unwrap())
    }

    pub fn stats(&self, device: i32) -> SimStats {
        match self
            .api
            .sim_stats(device)
            .expect("the simulator exports its stats")
        {
            Ok(stats) => stats,
            Err(rc) => panic!(
                "simpler_sim_get_stats failed with {rc}: {}",
                self.last_error()
            ),
        }
    }
}

/// How long the tests let a synchronisation of a short kernel take.
pub const SYNC_MS: i32 = 10_000;

/// The 16-byte argument the C test kernels read: two little-endian `u64`s.
pub fn payload(a: u64, b: u64) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..8].copy_from_slice(&a.to_le_bytes());
    p[8..].copy_from_slice(&b.to_le_bytes());
    p
}

/// Loads the API, sets device 0 for this thread and creates a stream on it.
pub fn device0_stream() -> (Sim, *mut c_void) {
    let api = Sim::load();
    api.set(0);
    let stream = api.stream();
    (api, stream)
}

/// `rtAicpuArgsEx_t` for a host argument block.
pub fn args_ex(block: &[u8], so_off: u32, kernel_off: u32) -> AicpuArgsEx {
    AicpuArgsEx {
        args: block.as_ptr() as u64,
        args_size: block.len() as u32,
        so_name_addr_offset: so_off,
        kernel_name_addr_offset: kernel_off,
        ..AicpuArgsEx::default()
    }
}

/// Runs the calling test (named `name`) again in a child process with a
/// private simulator root plus `envs`, and asserts it passed. Returns the
/// child's output and keeps the root until the caller drops it.
pub fn run_child(name: &str, envs: &[(&str, &str)]) -> (SimRoot, Output) {
    let root = SimRoot::new();
    let out = child_output(name, &root, envs);
    assert!(
        out.status.success(),
        "child test {name} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A name that matches no test would pass vacuously.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "child test {name} did not run exactly one test:\n{stdout}"
    );
    (root, out)
}

/// The opening of a test whose body runs in a child: in the parent, runs
/// the test `name` in a child with `envs` (see [`run_child`]) and returns
/// `true`, so that the test returns; in the child, returns `false`.
pub fn ran_in_child(name: &str, envs: &[(&str, &str)]) -> bool {
    if child() {
        return false;
    }
    run_child(name, envs);
    true
}

/// Like [`run_child`] without the success assertion.
pub fn child_output(name: &str, root: &SimRoot, envs: &[(&str, &str)]) -> Output {
    let artifacts = host_artifacts().dir().to_path_buf();
    install_test_kernels(&layout::preinstall_dir(root.path(), 0));
    let mut all: Vec<(String, String)> = vec![
        (env::ROOT.into(), root.path().display().to_string()),
        (ARTIFACTS_DIR_ENV.into(), artifacts.display().to_string()),
        ("RUST_BACKTRACE".into(), "1".into()),
    ];
    all.extend(envs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    in_child(name, all)
}

/// Whether this process is the child doing the work.
pub fn child() -> bool {
    is_child()
}

/// Compiles `tests/kernels.c` once per test process (into cargo's scratch
/// directory for tests, replaced atomically so concurrent test processes
/// never see a partial file) and copies it into `dir` as [`TEST_KERNELS`].
pub fn install_test_kernels(dir: &Path) {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let so = BUILT.get_or_init(|| {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(scratch).expect("cargo's test scratch directory");
        let so = scratch.join("cann-sim-test-kernels.so");
        let part = scratch.join(format!("cann-sim-test-kernels.{}.part", std::process::id()));
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels.c");
        cc(&["-shared", "-fPIC", "-O1", "-o"], &part, &[&src], &[]);
        std::fs::rename(&part, &so).expect("install the compiled test kernels");
        so
    });
    std::fs::create_dir_all(dir).expect("create preinstall dir");
    std::fs::copy(so, dir.join(TEST_KERNELS)).expect("install test kernels");
}

/// Runs the system C compiler: `cc <flags> <out> <inputs> <libs>`.
pub fn cc(flags: &[&str], out: &Path, inputs: &[&Path], libs: &[&str]) {
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(flags)
        .arg(out)
        .args(inputs)
        .args(libs)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// Device buffers of one bootstrap, freed on every path.
pub struct Bootstrap {
    pub code: i32,
    pub message: String,
    pub report: BootstrapReport,
}

/// The bootstrap exactly as a host does it: both SOs, `DeviceArgs` and a
/// zeroed report in device memory, one KFC launch, sync, report read back,
/// every buffer freed.
pub fn bootstrap(api: &Sim, stream: *mut c_void, dispatcher: &[u8], runtime: &[u8]) -> Bootstrap {
    let disp = api.alloc(dispatcher.len());
    let rt = api.alloc(runtime.len());
    let dargs = api.alloc(std::mem::size_of::<DeviceArgs>());
    let report = api.alloc(std::mem::size_of::<BootstrapReport>());
    api.h2d(disp, dispatcher);
    api.h2d(rt, runtime);
    api.h2d(report, bytemuck::bytes_of(&BootstrapReport::zeroed()));
    let device_args = DeviceArgs {
        aicpu_so_bin: disp,
        aicpu_so_len: dispatcher.len() as u64,
        inner_so_bin: rt,
        inner_so_len: runtime.len() as u64,
        report,
        ..DeviceArgs::default()
    };
    api.h2d(dargs, bytemuck::bytes_of(&device_args));
    let block = BootstrapArgs::new(dargs);
    let info = args_ex(
        bytemuck::bytes_of(&block),
        BOOTSTRAP_SO_NAME_OFFSET,
        BOOTSTRAP_KERNEL_NAME_OFFSET,
    );
    let mut code = api.launch_raw(KERNEL_TYPE_AICPU_KFC, KFC_OP_NAME_C, 1, &info, stream);
    if code == 0 {
        code = api.sync_ms(stream, 60_000);
    }
    let message = if code == 0 {
        String::new()
    } else {
        api.last_error()
    };
    let (rc, bytes) = api.try_d2h(report, std::mem::size_of::<BootstrapReport>());
    let report_value = if rc == 0 {
        bytemuck::pod_read_unaligned(&bytes)
    } else {
        BootstrapReport::zeroed()
    };
    for addr in [disp, rt, dargs, report] {
        api.release(addr);
    }
    Bootstrap {
        code,
        message,
        report: report_value,
    }
}

/// `simpler_aicpu_init` for the runtime `so`; returns the sync code.
pub fn runtime_init(
    api: &Sim,
    stream: *mut c_void,
    so: &PreinstallName,
    abi: u32,
    threads: u32,
) -> i32 {
    let block = InitLaunchArgs::new(
        InitArgs {
            abi_version: abi,
            device_id: 0,
            log_level: 2,
            thread_count: threads,
        },
        so,
    );
    let info = args_ex(
        bytemuck::bytes_of(&block),
        LAUNCH_SO_NAME_OFFSET,
        LAUNCH_KERNEL_NAME_OFFSET,
    );
    let rc = api.launch_raw(KERNEL_TYPE_AICPU, RUNTIME_INIT_SYMBOL_C, 1, &info, stream);
    if rc != 0 {
        return rc;
    }
    api.sync_ms(stream, 60_000)
}

/// `simpler_aicpu_exec` on `threads` threads for the work at `work`;
/// returns the sync code.
pub fn runtime_exec(
    api: &Sim,
    stream: *mut c_void,
    so: &PreinstallName,
    work: u64,
    threads: u32,
) -> i32 {
    let block = ExecLaunchArgs::new(
        KernelArgs {
            runtime_args: work,
            regs: 0,
        },
        so,
    );
    let info = args_ex(
        bytemuck::bytes_of(&block),
        LAUNCH_SO_NAME_OFFSET,
        LAUNCH_KERNEL_NAME_OFFSET,
    );
    let rc = api.launch_raw(
        KERNEL_TYPE_AICPU,
        RUNTIME_EXEC_SYMBOL_C,
        threads,
        &info,
        stream,
    );
    if rc != 0 {
        return rc;
    }
    api.sync_ms(stream, 60_000)
}
