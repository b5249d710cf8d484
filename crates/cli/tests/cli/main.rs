//! The `simpler` binary end to end: run on the simulator (also as a
//! CANN-compatible library), inspect, doctor, and failures with their exit
//! status; [`device`]: `simpler device ls | rm | gc`; [`launch`]:
//! `simpler launch`, and the launch paths of `run` and `doctor`.

mod device;
mod launch;

use std::process::{Command, Output};

use simpler_abi::{sim, ABI_VERSION};
use simpler_testkit::{child_env, compile_c, device_artifacts, host_artifacts, SimRoot};

/// `simpler <args>` with a private simulator root and the artifacts of
/// this test run.
fn simpler(root: &SimRoot, args: &[&str]) -> Output {
    simpler_with(root, &[], args)
}

/// [`simpler`] with the variables `envs` added.
fn simpler_with(root: &SimRoot, envs: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simpler"))
        .args(args)
        .envs(child_env(root.path()))
        .envs(envs.iter().copied())
        .env_remove("ASCEND_HOME_PATH")
        .env_remove("ASCEND_TOOLKIT_HOME")
        .env_remove("RUST_LOG")
        .output()
        .expect("run simpler")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_on_the_simulator_verifies_every_op() {
    let root = SimRoot::new();
    let out = simpler(&root, &["run", "--threads", "3", "--elements", "1000"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for part in [
        "simulator",
        "3 AICPU threads",
        "preinstall name simpler_inner_",
        "bootstrap       performed",
        "bytes uploaded",
        "6 tasks over 1000 f32 elements",
        "all 6 ops correct (Copy, Fill, AddF32, ScaleF32, SumF32, Fnv1a64)",
    ] {
        assert!(stdout.contains(part), "{part:?} missing from:\n{stdout}");
    }
    assert!(stdout.trim_end().ends_with("OK"));
    // The report's installed path is the file on the simulated device.
    let installed = stdout
        .lines()
        .find_map(|l| l.strip_prefix("  installed at    "))
        .expect("installed path line");
    assert!(std::path::Path::new(installed).is_file(), "{installed}");
    assert!(installed.starts_with(&root.path().display().to_string()));
}

#[test]
fn run_accepts_any_cann_compatible_library() {
    let root = SimRoot::new();
    let lib = host_artifacts().sim_lib();
    // The machine of the device SOs under test, stated as a user would.
    let runtime = std::fs::read(device_artifacts().runtime()).unwrap();
    let machine = simpler_host::SoInfo::parse(&runtime)
        .unwrap()
        .machine
        .to_string();
    let out = simpler(
        &root,
        &[
            "run",
            "--backend",
            "cann",
            "--cann-lib",
            lib.to_str().unwrap(),
            "--device-machine",
            &machine,
            "--device",
            "1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("CANN ("), "{stdout}");
    assert!(stdout.contains("device 1"), "{stdout}");
    assert!(stdout.trim_end().ends_with("OK"));
}

#[test]
fn run_fails_clearly() {
    let root = SimRoot::new();
    // The dispatcher as runtime: a preflight error naming the file.
    let dispatcher = device_artifacts().dispatcher();
    let out = simpler(&root, &["run", "--runtime", dispatcher.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(dispatcher.to_str().unwrap())
            && stderr.contains("required of a runtime SO"),
        "{stderr}"
    );
    // Real CANN without a toolkit.
    let out = simpler(&root, &["run", "--backend", "cann"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("ASCEND_HOME_PATH"), "{stderr}");
    // A machine that is not one.
    let out = simpler(&root, &["run", "--device-machine", "mips"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(text(&out).1.contains("unknown machine"));
}

/// Asserts that each of `facts` occurs exactly once in `text`.
fn each_once(text: &str, facts: &[&str]) {
    for fact in facts {
        assert_eq!(text.matches(fact).count(), 1, "{fact:?} in:\n{text}");
    }
}

#[test]
fn errors_state_each_fact_once_with_the_hint_on_its_own_line() {
    let root = SimRoot::new();
    // An I/O error: the OS error once, through anyhow's `{:#}`.
    let out = simpler(
        &root,
        &["run", "--runtime", "/nonexistent/libsimpler_aicpu.so"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out).1,
        "error: preparing the runtime SO: cannot read /nonexistent/libsimpler_aicpu.so: No such \
         file or directory (os error 2)\n"
    );

    // An init rejection (the simulator fails the second sync, init's).
    let fail_sync = |n: &'static str| {
        let root = SimRoot::new();
        let out = simpler_with(
            &root,
            &[(sim::env::FAIL_SYNC, n)],
            &["run", "--threads", "2"],
        );
        assert_eq!(out.status.code(), Some(1));
        text(&out).1
    };
    let stderr = fail_sync("2");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    let first = format!(
        "error: building the device runner: simpler_aicpu_init failed on device 0 (host ABI \
         version {ABI_VERSION}, 2 threads): aclrtSynchronizeStreamWithTimeout failed with 507018 \
         ACL_ERROR_RT_AICPU_EXCEPTION: "
    );
    assert!(lines[0].starts_with(&first), "{stderr}");
    assert!(
        lines[1].starts_with("hint: unless the CANN message names another cause"),
        "{stderr}"
    );
    each_once(
        &stderr,
        &[
            "simpler_aicpu_init",
            "aclrtSynchronizeStreamWithTimeout",
            "507018",
            "ACL_ERROR_RT_AICPU_EXCEPTION",
            "ABI version other than",
        ],
    );

    // One CANN error (exec's sync, the third).
    let stderr = fail_sync("3");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with(
            "error: running the self-check batch: aclrtSynchronizeStreamWithTimeout \
             (simpler_aicpu_exec) failed with 507018 ACL_ERROR_RT_AICPU_EXCEPTION: "
        ),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("hint: an AICPU task failed"),
        "{stderr}"
    );
    each_once(
        &stderr,
        &[
            "simpler_aicpu_exec",
            "aclrtSynchronizeStreamWithTimeout",
            "507018",
            "ACL_ERROR_RT_AICPU_EXCEPTION",
        ],
    );
}

#[test]
fn inspect_shows_contracts_and_links() {
    let root = SimRoot::new();
    let dispatcher = device_artifacts().dispatcher();
    let runtime = device_artifacts().runtime();
    let out = simpler(
        &root,
        &[
            "inspect",
            dispatcher.to_str().unwrap(),
            runtime.to_str().unwrap(),
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let sections: Vec<&str> = stdout.split("\n\n").collect();
    assert_eq!(sections.len(), 2, "{stdout}");
    assert!(
        sections[0].contains("dispatcher contract meets it"),
        "{stdout}"
    );
    assert!(
        sections[0].contains("runtime contract    missing"),
        "{stdout}"
    );
    assert!(
        sections[1].contains("runtime contract    meets it"),
        "{stdout}"
    );
    let bytes = std::fs::read(&runtime).unwrap();
    let name = simpler_host::abi::PreinstallName::of(&bytes);
    assert!(sections[1].contains(name.as_str()), "{stdout}");
    assert!(sections[1].contains(&format!("size                {} bytes", bytes.len())));
    assert!(
        sections[1].contains("needed              libc.so.6"),
        "{stdout}"
    );
    assert!(
        sections[1].contains("highest glibc       GLIBC_2."),
        "{stdout}"
    );

    let out = simpler(&root, &["inspect", "/nonexistent.so"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).0.contains("error"));
}

#[test]
fn inspect_meets_the_contract_only_when_the_preflight_would_accept() {
    // The simulator root is a private directory, removed on drop.
    let root = SimRoot::new();
    let dir = root.path();
    let data = "
        int simpler_aicpu_init(void *a) { return 0; }
        int simpler_aicpu_exec[4] = {1, 2, 3, 4};
    ";
    let so = compile_c(dir, "data.so", data, &["-shared", "-fPIC"]);
    let functions = "
        int simpler_aicpu_init(void *a) { return 0; }
        int simpler_aicpu_exec(void *a) { return 0; }
        int main(void) { return 0; }
    ";
    let pie = compile_c(dir, "pie", functions, &["-fPIE", "-pie", "-rdynamic"]);
    let out = simpler(
        &root,
        &["inspect", so.to_str().unwrap(), pie.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let sections: Vec<&str> = stdout.split("\n\n").collect();
    assert_eq!(sections.len(), 2, "{stdout}");
    assert!(!stdout.contains("meets it"), "{stdout}");
    assert!(
        sections[0]
            .contains("exports             simpler_aicpu_exec [STT_OBJECT], simpler_aicpu_init"),
        "{stdout}"
    );
    assert!(
        sections[0].contains(
            "runtime contract    exports simpler_aicpu_exec as a data object (STT_OBJECT); a \
             runtime SO must export it as a function"
        ),
        "{stdout}"
    );
    assert!(sections[1].contains("interpreter         /"), "{stdout}");
    assert!(
        sections[1]
            .lines()
            .any(|l| l.starts_with("  runtime contract    an executable (program interpreter /")),
        "{stdout}"
    );
}

#[test]
fn doctor_reports_search_order_and_simulator() {
    let root = SimRoot::new();
    let out = simpler(&root, &["doctor"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for part in [
        "artifacts search order",
        "($SIMPLER_ARTIFACTS_DIR) — has libsimpler_cann_sim.so",
        "ASCEND_HOME_PATH     (unset)",
        "no CANN toolkit",
        &format!(
            "SIMPLER_SIM_ROOT                   {}",
            root.path().display()
        ),
        "simulator libraries:",
        "symbols resolved",
        "devices        ",
        "usable: simulator (--backend sim)",
    ] {
        assert!(stdout.contains(part), "{part:?} missing from:\n{stdout}");
    }
}

// `simpler doctor` on the CANN stack.

mod stack {
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use simpler_host::abi::stack::DRIVER_DIR_ENV;
    use simpler_testkit::{child_env, SimRoot};

    use super::{simpler, text};

    /// `simpler <args>` as [`simpler`] runs it, plus `envs`.
    pub(super) fn simpler_with(root: &SimRoot, args: &[&str], envs: &[(&str, &OsStr)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_simpler"));
        cmd.args(args)
            .envs(child_env(root.path()))
            .env_remove("ASCEND_HOME_PATH")
            .env_remove("ASCEND_TOOLKIT_HOME")
            .env_remove(DRIVER_DIR_ENV)
            .env_remove("RUST_LOG");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Writes `contents` to `dir/rel`, making its directories.
    fn file(dir: &Path, rel: &str, contents: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The verdict section of `simpler doctor` for a toolkit at `toolkit`
    /// and a driver in `driver`.
    fn verdict(toolkit: &Path, driver: &Path) -> Vec<String> {
        let root = SimRoot::new();
        let out = simpler_with(
            &root,
            &["doctor"],
            &[
                ("ASCEND_HOME_PATH", toolkit.as_os_str()),
                (DRIVER_DIR_ENV, driver.as_os_str()),
            ],
        )
        .output()
        .expect("run simpler");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stdout
            .lines()
            .skip_while(|l| *l != "  bootstrap (KFC) path:")
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .map(str::to_owned)
            .collect()
    }

    const ARCH_INFO: &str = concat!(
        "package_name=Ascend-cann-toolkit\n",
        "version=8.3.RC1\n",
        "innerversion=V100R001C23SPC001B231\n",
        "arch=x86_64\n",
    );

    #[test]
    fn doctor_passes_a_new_stack() {
        let dir = tempfile::tempdir().unwrap();
        let (toolkit, driver) = (dir.path().join("cann"), dir.path().join("driver"));
        let cann = file(
            &toolkit,
            "share/info/runtime/version.info",
            "Version=8.5.0\n",
        );
        let drv = file(
            &driver,
            "version.info",
            "Version=25.2.0\nascendhal_version=7.35.23\npackage_version=25.2.0\n",
        );
        assert_eq!(
            verdict(&toolkit, &driver),
            [
                format!(
                    "    CANN toolkit  8.5.0          required ≥ 8.5.0   ok       ({})",
                    cann.display()
                ),
                format!(
                    "    NPU driver    25.2.0         required ≥ 25.2.0  ok       ({})",
                    drv.display()
                ),
                "    can work here, unless the task-scheduler firmware lacks KFC (then the first bootstrap is refused as not supported)".to_owned(),
            ]
        );
    }

    #[test]
    fn doctor_names_an_old_stack_and_what_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let (toolkit, driver) = (dir.path().join("cann"), dir.path().join("driver"));
        // The installer's record, in the directory of this machine's arch.
        let arch = std::env::consts::ARCH;
        let cann = file(
            &toolkit,
            &format!("{arch}-linux/ascend_toolkit_install.info"),
            ARCH_INFO,
        );
        let drv = file(&driver, "version.info", "Version=25.2.rc1\n");
        let fails = "    fails here: the bootstrap ends in 507018 (\"Get KFC DynTileFwkKernelServerInit api success, but func is nullptr\")";
        assert_eq!(
            verdict(&toolkit, &driver),
            [
                format!(
                    "    CANN toolkit  8.3.RC1        required ≥ 8.5.0   too old  ({})",
                    cann.display()
                ),
                format!(
                    "    NPU driver    25.2.rc1       required ≥ 25.2.0  too old  ({})",
                    drv.display()
                ),
                fails.to_owned(),
                "      hint: install CANN toolkit ≥ 8.5.0 and NPU driver ≥ 25.2.0".to_owned(),
            ]
        );

        // An older toolkit's version.cfg, pre-release of the floor; a new
        // driver: only the toolkit is named.
        let dir = tempfile::tempdir().unwrap();
        let (toolkit, driver) = (dir.path().join("cann"), dir.path().join("driver"));
        let cfg = file(
            &toolkit,
            "version.cfg",
            "# version: 1.0\nruntime_running_version=[7.6.0.1.220:8.5.0.alpha001]\ntoolkit_running_version=[7.6.0.1.220:8.5.0.alpha001]\n",
        );
        let drv = file(&driver, "version.info", "Version=25.3.rc1\n");
        assert_eq!(
            verdict(&toolkit, &driver),
            [
                format!(
                    "    CANN toolkit  8.5.0.alpha001 required ≥ 8.5.0   too old  ({})",
                    cfg.display()
                ),
                format!(
                    "    NPU driver    25.3.rc1       required ≥ 25.2.0  ok       ({})",
                    drv.display()
                ),
                fails.to_owned(),
                "      hint: install CANN toolkit ≥ 8.5.0".to_owned(),
            ]
        );
    }

    #[test]
    fn doctor_says_unknown_for_versions_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let (toolkit, driver) = (dir.path().join("cann"), dir.path().join("driver"));
        let cann = file(
            &toolkit,
            "share/info/runtime/version.info",
            "Version=banana\n",
        );
        // A directory where the driver's version file should be.
        let drv = driver.join("version.info");
        std::fs::create_dir_all(&drv).unwrap();
        let cannot_tell = "    cannot tell: a version above is unknown".to_owned();
        assert_eq!(
            verdict(&toolkit, &driver),
            [
                format!(
                    "    CANN toolkit  \"banana\"       required ≥ 8.5.0   unknown  (not a version simpler understands, in {})",
                    cann.display()
                ),
                format!(
                    "    NPU driver    not found      required ≥ 25.2.0  unknown  (cannot read {}: Is a directory (os error 21))",
                    drv.display()
                ),
                cannot_tell.clone(),
            ]
        );

        // No version file at all; a driver file without the key; binary junk.
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let drv = file(
            &driver.join("other"),
            "version.info",
            "package_version=25.2.0\n",
        );
        assert_eq!(
            verdict(&empty, &driver.join("other")),
            [
                format!(
                    "    CANN toolkit  not found      required ≥ 8.5.0   unknown  (no version file in {})",
                    empty.display()
                ),
                format!(
                    "    NPU driver    not found      required ≥ 25.2.0  unknown  (no Version= line in {})",
                    drv.display()
                ),
                cannot_tell.clone(),
            ]
        );
        let junk = dir.path().join("junk");
        file(
            &junk,
            "version.info",
            "\u{0}\u{1}\n Version = \u{7f}\u{0}x\n",
        );
        let lines = verdict(&toolkit, &junk);
        assert!(
            lines[1].starts_with("    NPU driver    \"\\u{7f}\\0x\"")
                && lines[1].contains("  unknown  (not a version simpler understands"),
            "{lines:#?}"
        );
        assert_eq!(lines[2], cannot_tell);
    }

    #[test]
    fn doctor_says_the_simulator_emulates_the_bootstrap() {
        let root = SimRoot::new();
        let out = simpler(&root, &["doctor"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains(
                "  bootstrap (KFC) path: emulated by the simulator; no CANN or driver version applies"
            ),
            "{stdout}"
        );
    }
}

// `simpler run --timeout-ms`.

mod timeout {
    use std::ffi::OsStr;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use simpler_host::abi::sim;
    use simpler_testkit::SimRoot;

    use super::stack::simpler_with;
    use super::{simpler, text};

    /// `cmd`'s output; fails the test if it runs past `limit`.
    fn output_within(mut cmd: Command, limit: Duration) -> Output {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run simpler");
        let deadline = Instant::now() + limit;
        while child.try_wait().expect("wait for simpler").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("reap simpler");
                let (stdout, stderr) = text(&out);
                panic!("simpler still running after {limit:?}:\n{stdout}\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("collect simpler's output")
    }

    #[test]
    fn run_timeout_ms_bounds_each_launch() {
        let root = SimRoot::new();
        // The sleeping task outlasts the 300 ms by far. The device's op
        // timeout (5 s, far above 300 ms so the host's 507046 comes first)
        // ends it, which bounds the teardown waiting for the stream.
        let cmd = simpler_with(
            &root,
            &["run", "--sleep-us", "600000000", "--timeout-ms", "300"],
            &[(sim::env::OP_TIMEOUT_MS, OsStr::new("5000"))],
        );
        // Well before the 60 s a launch waits by default.
        let out = output_within(cmd, Duration::from_secs(50));
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("507046") && stderr.contains("ACL_ERROR_RT_STREAM_SYNC_TIMEOUT"),
            "{stderr}"
        );

        // A short sleep within the timeout runs with the batch.
        let out = simpler(
            &root,
            &["run", "--sleep-us", "1000", "--timeout-ms", "30000"],
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains("7 tasks over 4096 f32 elements"),
            "{stdout}"
        );
    }

    #[test]
    fn run_rejects_a_bad_timeout() {
        let root = SimRoot::new();
        for bad in ["0", "-5", "abc", "2147483648"] {
            let out = simpler(&root, &["run", "--timeout-ms", bad]);
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
            assert!(
                stderr.contains(&format!("invalid value '{bad}' for '--timeout-ms <MS>'")),
                "{bad}: {stderr}"
            );
        }
    }
}
