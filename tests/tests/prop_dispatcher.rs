//! Property: the dispatcher's `DynTileFwkBackendKernelServerInit`, called
//! through the real host-arch SO on generated argument blocks, never
//! crashes, installs exactly the images its validation accepts (non-null,
//! non-zero length within `MAX_INNER_SO_LEN`, ELF magic) byte for byte
//! under their fingerprint name, and rejects everything else with return
//! value 1 (validate), a report naming the errno when one is reachable, and
//! nothing left in the preinstall directory.
//!
//! The oracle is shared with the `dispatcher_args` fuzz target
//! (`fuzz/src/bootstrap_case.rs`); the dispatcher reads
//! `SIMPLER_AICPU_PREINSTALL_DIR` from the environment, so the property
//! runs in a child process with a private directory. Cases:
//! `PROPTEST_CASES` (default 256).

#[path = "../../fuzz/src/bootstrap_case.rs"]
mod bootstrap_case;
#[path = "../../fuzz/src/decode.rs"]
mod decode;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bootstrap_case::{BootstrapCase, InitFn, ELF_MAGIC};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use simpler_abi::names::{DISPATCHER_INIT_SYMBOL, MAX_INNER_SO_LEN, PREINSTALL_DIR_ENV};
use simpler_testkit::{host_artifacts, in_child, is_child, ARTIFACTS_DIR_ENV};

/// The child writes each case here, as a `dispatcher_args` fuzz input,
/// before running it: if the dispatcher crashes the child, the parent
/// names the case and the file replays it.
const CASE_FILE_ENV: &str = "SIMPLER_PROP_CASE_FILE";

const CAP: u64 = MAX_INNER_SO_LEN;

#[test]
fn init_validates_generated_argument_blocks() {
    const NAME: &str = "init_validates_generated_argument_blocks";
    if is_child() {
        return child_body();
    }
    let artifacts = host_artifacts();
    let dir = tempfile::Builder::new()
        .prefix("simpler-prop-preinstall-")
        .tempdir()
        .expect("create a preinstall directory");
    let case_file = tempfile::NamedTempFile::new().expect("create the case file");
    let out = in_child(
        NAME,
        [
            (PREINSTALL_DIR_ENV, dir.path().as_os_str()),
            (ARTIFACTS_DIR_ENV, artifacts.dir().as_os_str()),
            (CASE_FILE_ENV, case_file.path().as_os_str()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let kept = match case_file.keep() {
            Ok((_, path)) => path.display().to_string(),
            Err(e) => format!("nowhere ({e})"),
        };
        panic!(
            "the property failed in its child ({}); the last case it ran (the one that \
             crashed it, if it crashed) is kept as a dispatcher_args fuzz input in {kept} \
             (replay: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run dispatcher_args {kept})\n\
             --- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
    }
    // Shown with --nocapture: what the cases exercised.
    if let Some(at) = stdout.find("dispatcher cases:") {
        println!("{}", stdout[at..].lines().next().unwrap_or_default());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "left in the preinstall directory: {left:?}"
    );
}

fn child_body() {
    let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).expect("preinstall dir"));
    let case_file = PathBuf::from(std::env::var_os(CASE_FILE_ENV).expect("case file"));
    let dispatcher = Dispatcher::load(&host_artifacts().dispatcher());
    let real = RealSos::load();
    let outcomes = RefCell::new(BTreeMap::<&str, u32>::new());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case_strategy(&real), |case| {
        if let Some(input) = decode::encode(&case) {
            prop_assert_eq!(&decode::bootstrap_case(&input), &case, "fuzz encoding");
            std::fs::write(&case_file, &input).expect("write the case file");
        }
        case.run_and_check(dispatcher.init, &dir)
            .map_err(TestCaseError::fail)?;
        *outcomes.borrow_mut().entry(outcome(&case)).or_default() += 1;
        Ok(())
    });
    let outcomes = outcomes.into_inner();
    println!("dispatcher cases: {outcomes:?}");
    if let Err(failure) = result {
        panic!("{failure}");
    }
    // A property that never reaches one of the outcomes proves nothing
    // about it; with the default case count each is all but certain.
    if Config::default().cases >= 128 {
        for expected in ["installed", "EINVAL", "EFBIG", "ENOEXEC"] {
            assert!(
                outcomes.contains_key(expected),
                "no case ended {expected}: {outcomes:?}"
            );
        }
    }
}

/// How a passing case ended, for the summary.
fn outcome(case: &BootstrapCase) -> &'static str {
    match case.expected() {
        Ok(()) => "installed",
        Err(rejection) => match rejection.errno {
            libc::EINVAL => "EINVAL",
            libc::EFBIG => "EFBIG",
            libc::ENOEXEC => "ENOEXEC",
            _ => "other",
        },
    }
}

/// The dispatcher SO and its Init.
struct Dispatcher {
    init: InitFn,
    _lib: libloading::Library,
}

impl Dispatcher {
    fn load(path: &Path) -> Self {
        // SAFETY: the dispatcher has no initialisers beyond libc's.
        let lib = unsafe { libloading::Library::new(path) }
            .unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
        // SAFETY: Init has the `InitFn` signature (DESIGN §5).
        let init = *unsafe { lib.get::<InitFn>(DISPATCHER_INIT_SYMBOL.as_bytes()) }
            .unwrap_or_else(|e| panic!("{DISPATCHER_INIT_SYMBOL}: {e}"));
        Self { init, _lib: lib }
    }
}

/// Real ELF images to mutate: the runtime and dispatcher artifacts.
struct RealSos(Vec<&'static [u8]>);

impl RealSos {
    fn load() -> Self {
        let artifacts = host_artifacts();
        let read = |path: PathBuf| -> &'static [u8] {
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Vec::leak(bytes)
        };
        Self(vec![
            read(artifacts.runtime()),
            read(artifacts.dispatcher()),
        ])
    }
}

/// What sits at `inner_so_bin`.
fn payload(real: &RealSos) -> impl Strategy<Value = Vec<u8>> {
    let magic_then = |tail: Vec<u8>| [&ELF_MAGIC[..], &tail].concat();
    prop_oneof![
        // Random bytes (almost never the magic).
        3 => vec(any::<u8>(), 0..512),
        // The magic, then garbage: accepted, since only the magic is checked.
        3 => vec(any::<u8>(), 0..512).prop_map(magic_then),
        // Most of the magic, or the magic with one byte changed.
        2 => (0..4usize, 1..=255u8, vec(any::<u8>(), 0..8), any::<bool>()).prop_map(
            |(at, delta, tail, cut)| {
                let mut bytes = ELF_MAGIC.to_vec();
                if cut {
                    bytes.truncate(at);
                } else {
                    bytes[at] = bytes[at].wrapping_add(delta);
                    bytes.extend(tail);
                }
                bytes
            }
        ),
        // A real SO, truncated and with bits flipped (the magic included).
        3 => mutated(real),
    ]
}

/// One of `real`, cut at a random point and with up to four bits flipped.
fn mutated(real: &RealSos) -> impl Strategy<Value = Vec<u8>> {
    let images = real.0.clone();
    (
        0..images.len(),
        prop::option::of(any::<Index>()),
        vec((any::<Index>(), 0..8u8), 0..4),
    )
        .prop_map(move |(which, cut, flips)| {
            let mut bytes = images[which].to_vec();
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            if !bytes.is_empty() {
                for (at, bit) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= 1 << bit;
                }
            }
            bytes
        })
}

/// `inner_so_len` for a payload of `n` bytes.
fn declared_len(n: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        20 => Just(n),
        8 => 0..=n,
        2 => Just(0u64),
        2 => Just(1u64),
        2 => Just(3u64),
        2 => Just(4u64),
        // Each of these two installs a 256 MiB file when the magic is there.
        1 => Just(CAP - 1),
        1 => Just(CAP),
        3 => Just(CAP + 1),
        4 => (CAP + 2)..=u64::MAX,
        2 => Just(u64::MAX),
    ]
}

fn case_strategy(real: &RealSos) -> impl Strategy<Value = BootstrapCase> {
    let flags = (
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.8),
    );
    let noise = (any::<u64>(), any::<u64>(), [0..8u8, 0..8u8, 0..8u8]);
    (payload(real), flags, noise).prop_flat_map(|(payload, flags, noise)| {
        let n = payload.len() as u64;
        declared_len(n).prop_map(move |declared_len| {
            let (null_block, null_device_args, null_bin, report) = flags;
            let (device_id, noise, slack) = noise;
            BootstrapCase {
                null_block,
                null_device_args,
                null_bin,
                report,
                payload: payload.clone(),
                declared_len,
                device_id,
                noise,
                slack,
            }
        })
    })
}
