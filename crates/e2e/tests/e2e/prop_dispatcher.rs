//! Properties of the dispatcher's `DynTileFwkBackendKernelServerInit`,
//! called through the real host-arch SO on generated argument blocks: it
//! never crashes, installs exactly the images its validation accepts
//! (block and `DeviceArgs` present, non-null image, non-zero length within
//! `MAX_INNER_SO_LEN`, ELF magic, a target path that fits) byte for byte
//! under their fingerprint name, and rejects everything else with return
//! value 1 (validate), a report naming the errno when one is reachable, and
//! nothing left in the preinstall directory.
//!
//! The oracle is shared with the `dispatcher_args` fuzz target
//! (`simpler_fuzz_cases::bootstrap_case`). The dispatcher reads
//! `SIMPLER_AICPU_PREINSTALL_DIR` from the environment, so each property
//! runs in a child process with a private directory. Cases per property:
//! `PROPTEST_CASES` (default 256). See docs/fuzzing.md.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use simpler_abi::bootstrap::REPORT_PATH_LEN;
use simpler_abi::fingerprint::PREINSTALL_NAME_LEN;
use simpler_abi::names::{MAX_INNER_SO_LEN, PREINSTALL_DIR_ENV};
use simpler_fuzz_cases::bootstrap_case::{BootstrapCase, Dispatcher, ELF_MAGIC};
use simpler_fuzz_cases::decode;
use simpler_testkit::{host_artifacts, in_child, is_child, ARTIFACTS_DIR_ENV};

/// The child writes each case here, as a `dispatcher_args` fuzz input,
/// before running it: if the dispatcher crashes the child, the parent
/// names the case and the file replays it.
const CASE_FILE_ENV: &str = simpler_abi::test_env::PROP_CASE_FILE;

const CAP: u64 = MAX_INNER_SO_LEN;

#[test]
fn init_validates_generated_argument_blocks() {
    in_private_dir(
        "prop_dispatcher::init_validates_generated_argument_blocks",
        |dispatcher, dir, case_file| {
            let real = RealSos::load();
            let outcomes = run_cases(&case_strategy(&real), case_file, |case| {
                case.run_and_check(dispatcher, dir)?;
                Ok(outcome(&case, dir))
            });
            assert_reached(&outcomes, &["installed", "EINVAL", "EFBIG", "ENOEXEC"]);
        },
    );
}

#[test]
fn long_preinstall_dirs_fail_only_when_the_path_cannot_fit() {
    in_private_dir(
        "prop_dispatcher::long_preinstall_dirs_fail_only_when_the_path_cannot_fit",
        |dispatcher, base, case_file| {
            let real = RealSos::load();
            let base_len = base.as_os_str().len();
            // The longest directory (without a trailing '/') whose target
            // path `<dir>/<name>` fits the report's field with its NUL.
            let longest = REPORT_PATH_LEN - 1 - 1 - PREINSTALL_NAME_LEN;
            assert!(base_len + 8 < longest, "{} is too long", base.display());
            let lengths = prop_oneof![
                3 => (longest - 3)..=(longest + 3),
                1 => (base_len + 3)..=300,
            ];
            let strategy = (lengths, any::<bool>(), accepted_case(&real));
            let outcomes = run_cases(&strategy, case_file, |(len, slash, case)| {
                let dir = dir_of_len(base, len, slash);
                std::fs::create_dir_all(&dir).expect("create the long directory");
                std::env::set_var(PREINSTALL_DIR_ENV, &dir);
                let result = case.run_and_check(dispatcher, &dir);
                std::env::set_var(PREINSTALL_DIR_ENV, base);
                let first = dir.strip_prefix(base).unwrap().iter().next().unwrap();
                std::fs::remove_dir_all(base.join(first)).expect("remove the long directory");
                result?;
                Ok(outcome(&case, &dir))
            });
            assert_reached(&outcomes, &["installed", "ENAMETOOLONG"]);
        },
    );
}

/// Runs `body` in a child process with its own empty preinstall directory
/// (`SIMPLER_AICPU_PREINSTALL_DIR`), passing it the dispatcher, the
/// directory and the case file; in the parent, checks that the child passed
/// and left the directory empty.
fn in_private_dir(name: &str, body: impl FnOnce(&Dispatcher, &Path, &Path)) {
    if is_child() {
        let dir = PathBuf::from(std::env::var_os(PREINSTALL_DIR_ENV).expect("preinstall dir"));
        let case_file = PathBuf::from(std::env::var_os(CASE_FILE_ENV).expect("case file"));
        let dispatcher =
            Dispatcher::load(&host_artifacts().dispatcher()).unwrap_or_else(|e| panic!("{e}"));
        body(&dispatcher, &dir, &case_file);
        return;
    }
    let artifacts = host_artifacts();
    let dir = tempfile::Builder::new()
        .prefix("simpler-prop-")
        .tempdir()
        .expect("create a preinstall directory");
    let case_file = tempfile::NamedTempFile::new().expect("create the case file");
    let out = in_child(
        name,
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
    if let Some(at) = stdout.find(OUTCOMES) {
        println!("{}", stdout[at..].lines().next().unwrap_or_default());
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "left in the preinstall directory: {left:?}"
    );
}

/// Starts the line the child prints its outcome counts on.
const OUTCOMES: &str = "dispatcher cases:";

/// Runs `test` on `PROPTEST_CASES` values of `strategy` (no regression
/// files), first writing each value's [`BootstrapCase`] to `case_file` as
/// a fuzz input, and returns how often each outcome came up.
fn run_cases<S>(
    strategy: &S,
    case_file: &Path,
    test: impl Fn(S::Value) -> Result<&'static str, String>,
) -> BTreeMap<&'static str, u32>
where
    S: Strategy,
    S::Value: AsCase,
{
    let outcomes = RefCell::new(BTreeMap::new());
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(strategy, |value| {
        let case = value.case();
        if let Some(input) = decode::encode(case) {
            prop_assert_eq!(&decode::bootstrap_case(&input), case, "fuzz encoding");
            std::fs::write(case_file, &input).expect("write the case file");
        }
        let outcome = test(value).map_err(TestCaseError::fail)?;
        *outcomes.borrow_mut().entry(outcome).or_insert(0) += 1;
        Ok(())
    });
    let outcomes = outcomes.into_inner();
    println!("{OUTCOMES} {outcomes:?}");
    if let Err(failure) = result {
        panic!("{failure}");
    }
    outcomes
}

/// The [`BootstrapCase`] inside a generated value.
trait AsCase {
    fn case(&self) -> &BootstrapCase;
}

impl AsCase for BootstrapCase {
    fn case(&self) -> &BootstrapCase {
        self
    }
}

impl AsCase for (usize, bool, BootstrapCase) {
    fn case(&self) -> &BootstrapCase {
        &self.2
    }
}

/// Asserts that each of `outcomes` came up, when there were enough cases
/// for that to be all but certain: a property that never reaches an
/// outcome proves nothing about it.
fn assert_reached(counts: &BTreeMap<&str, u32>, outcomes: &[&str]) {
    if Config::default().cases >= 128 {
        for outcome in outcomes {
            assert!(
                counts.contains_key(outcome),
                "no case ended {outcome}: {counts:?}"
            );
        }
    }
}

/// A directory under `base` whose path is `len` bytes long, ending in `/`
/// when `slash`; every component stays below the 255-byte name limit.
fn dir_of_len(base: &Path, len: usize, slash: bool) -> PathBuf {
    let mut path = base.to_str().expect("a UTF-8 temp dir").to_owned();
    let body = len - usize::from(slash);
    while path.len() < body {
        // Each component costs its '/' too; never leave room for a lone '/'.
        let room = body - path.len() - 1;
        let take = match room {
            0..=200 => room,
            201 => 150,
            _ => 200,
        };
        path.push('/');
        path.push_str(&"d".repeat(take));
    }
    if slash {
        path.push('/');
    }
    assert_eq!(path.len(), len);
    PathBuf::from(path)
}

/// How a passing case ended, for the summary.
fn outcome(case: &BootstrapCase, dir: &Path) -> &'static str {
    match case.expected(dir) {
        Ok(()) if case.declared_len >= CAP - 1 => "installed 256 MiB",
        Ok(()) => "installed",
        Err(rejection) => match rejection.errno {
            libc::EINVAL => "EINVAL",
            libc::EFBIG => "EFBIG",
            libc::ENOEXEC => "ENOEXEC",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            _ => "other",
        },
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

/// One of `real`, perhaps cut short, with up to three bits flipped.
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

/// A well-formed call of an image Init accepts: the magic, then anything.
fn accepted_case(real: &RealSos) -> impl Strategy<Value = BootstrapCase> {
    let image = prop_oneof![
        vec(any::<u8>(), 0..256).prop_map(|tail| [&ELF_MAGIC[..], &tail].concat()),
        prop::sample::select(real.0.clone()).prop_map(<[u8]>::to_vec),
    ];
    (image, any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
        |(payload, device_id, noise, report)| BootstrapCase {
            null_block: false,
            null_device_args: false,
            null_bin: false,
            report,
            declared_len: payload.len() as u64,
            payload,
            device_id,
            noise,
            slack: [0; 3],
        },
    )
}
