//! The dispatcher's `DynTileFwkBackendKernelServerInit` on an argument
//! block decoded from the input (see `src/decode.rs`), called through the
//! real host-arch dispatcher SO, checked by the shared oracle: the return
//! value, the report and the preinstall directory (the file iff the image
//! is acceptable, never a temp file).
//!
//! The SO is `SIMPLER_FUZZ_DISPATCHER` when set, else the artifact
//! `cargo xtask build` leaves in `target/artifacts/<triple>/`. The
//! preinstall directory is a private temp dir, removed at exit. Inputs of
//! 256 MiB (at or just below the cap) run only with
//! `SIMPLER_FUZZ_CAP_IMAGES=1`.

#![no_main]

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use simpler_abi::names::{DISPATCHER_INIT_SYMBOL, MAX_INNER_SO_LEN, PREINSTALL_DIR_ENV};
use simpler_fuzz::bootstrap_case::InitFn;
use simpler_fuzz::decode;

/// Environment variable naming the dispatcher SO to load.
const DISPATCHER_ENV: &str = "SIMPLER_FUZZ_DISPATCHER";
/// Set to 1 to run the inputs whose length is at or just below the 256 MiB
/// cap; they install a 256 MiB file each and would otherwise dominate the
/// run, so by default they are skipped (the property tests run some).
const CAP_IMAGES_ENV: &str = "SIMPLER_FUZZ_CAP_IMAGES";

struct Harness {
    init: InitFn,
    dir: PathBuf,
    cap_images: bool,
    _lib: libloading::Library,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

fn harness() -> &'static Harness {
    HARNESS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("simpler-fuzz-preinstall-")
            .tempdir()
            .expect("create a preinstall directory")
            .keep();
        // Before the dispatcher's first call, while libFuzzer runs this
        // process single-threaded.
        std::env::set_var(PREINSTALL_DIR_ENV, &dir);
        // SAFETY: `remove_dir` is a plain extern "C" fn with no arguments.
        unsafe { libc::atexit(remove_dir) };
        let path = std::env::var_os(DISPATCHER_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(default_dispatcher);
        // SAFETY: the dispatcher SO has no initialisers beyond libc's.
        let lib = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| {
            panic!(
                "cannot load the dispatcher {}: {e}; run `cargo xtask build --target host` \
                 or set {DISPATCHER_ENV}",
                path.display()
            )
        });
        // SAFETY: Init has the `InitFn` signature (DESIGN §5).
        let init = *unsafe { lib.get::<InitFn>(DISPATCHER_INIT_SYMBOL.as_bytes()) }
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Harness {
            init,
            dir,
            cap_images: std::env::var_os(CAP_IMAGES_ENV).is_some_and(|v| v == "1"),
            _lib: lib,
        }
    })
}

fn default_dispatcher() -> PathBuf {
    let triple = if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-gnu"
    } else {
        "x86_64-unknown-linux-gnu"
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/artifacts")
        .join(triple)
        .join("libsimpler_aicpu_dispatcher.so")
}

extern "C" fn remove_dir() {
    if let Some(harness) = HARNESS.get() {
        let _ = std::fs::remove_dir_all(&harness.dir);
    }
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let case = decode::bootstrap_case(data);
    let near_cap = (MAX_INNER_SO_LEN - 1..=MAX_INNER_SO_LEN).contains(&case.declared_len);
    if near_cap && !harness.cap_images {
        return;
    }
    if let Err(violation) = case.run_and_check(harness.init, &harness.dir) {
        let dir: OsString = harness.dir.clone().into();
        panic!(
            "{violation}\n(null block {}, null device_args {}, null inner_so_bin {}, report {}, \
             inner_so_len {}, payload {} bytes; preinstall dir {dir:?})",
            case.null_block,
            case.null_device_args,
            case.null_bin,
            case.report,
            case.declared_len,
            case.payload.len()
        );
    }
});
