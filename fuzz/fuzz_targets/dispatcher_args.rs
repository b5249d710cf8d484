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
use simpler_abi::artifacts::{files, host_triple};
use simpler_abi::names::{MAX_INNER_SO_LEN, PREINSTALL_DIR_ENV};
use simpler_fuzz_cases::bootstrap_case::Dispatcher;
use simpler_fuzz_cases::decode;

/// Environment variable naming the dispatcher SO to load.
const DISPATCHER_ENV: &str = simpler_abi::test_env::FUZZ_DISPATCHER;
/// Set to 1 to run the inputs whose length is at or just below the 256 MiB
/// cap; they install a 256 MiB file each and would otherwise dominate the
/// run, so by default they are skipped (the property tests run some).
const CAP_IMAGES_ENV: &str = simpler_abi::test_env::FUZZ_CAP_IMAGES;

struct Harness {
    dispatcher: Dispatcher,
    dir: PathBuf,
    cap_images: bool,
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
        sys::at_exit(remove_dir);
        let path = std::env::var_os(DISPATCHER_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(default_dispatcher);
        let dispatcher = Dispatcher::load(&path).unwrap_or_else(|e| {
            panic!(
                "cannot load the dispatcher: {e}; run `cargo xtask build --target host` \
                 or set {DISPATCHER_ENV}"
            )
        });
        Harness {
            dispatcher,
            dir,
            cap_images: std::env::var_os(CAP_IMAGES_ENV).is_some_and(|v| v == "1"),
        }
    })
}

fn default_dispatcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/artifacts")
        .join(host_triple())
        .join(files::DISPATCHER)
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
    if let Err(violation) = case.run_and_check(&harness.dispatcher, &harness.dir) {
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

mod sys {
    /// Registers `f` to run when the process exits normally.
    pub fn at_exit(f: extern "C" fn()) {
        // SAFETY: `f` is a plain `extern "C" fn()`, callable at exit.
        unsafe { libc::atexit(f) };
    }
}
