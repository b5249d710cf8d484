//! The `simpler` binary end to end: run on the simulator (also as a
//! CANN-compatible library), inspect, doctor, and failures with their exit
//! status; [`device`]: `simpler device ls | rm | gc`.

mod device;

use std::process::{Command, Output};

use simpler_testkit::{child_env, device_artifacts, host_artifacts, SimRoot};

/// `simpler <args>` with a private simulator root and the artifacts of
/// this test run.
fn simpler(root: &SimRoot, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simpler"))
        .args(args)
        .envs(child_env(root.path()))
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
