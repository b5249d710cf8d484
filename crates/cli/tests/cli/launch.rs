//! `simpler launch SO KERNEL` on both launch paths, with payload files;
//! a failing kernel and a refused one, with their exit status; `simpler
//! run --launch-path` and what `simpler doctor` says of the paths.

use std::path::{Path, PathBuf};

use simpler_host::abi::PreinstallName;
use simpler_testkit::host::device_machine;
use simpler_testkit::{compile_c, compile_device_c, device_artifacts, host_artifacts, SimRoot};

use super::{simpler, text};

/// `k_check` succeeds iff its payload starts with the magic word; `k_fail`
/// always fails; `k_data` is data.
const KERNELS: &str = r#"
    #include <stdint.h>
    uint32_t k_check(void *p) { return *(uint64_t *)p == 0x1122334455667788ull ? 0 : 3; }
    uint32_t k_fail(void *p) { (void)p; return 9; }
    uint32_t k_data[2] = {1, 2};
"#;

fn kernel_so(dir: &Path) -> PathBuf {
    compile_device_c(dir, "libk.so", KERNELS, &["-shared", "-fPIC"])
}

/// `simpler launch` with the device side's dispatcher and machine (the
/// kernel SO is built for the machine the simulator's device process runs).
fn launch(
    root: &SimRoot,
    so: &Path,
    kernel: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let machine = device_machine().to_string();
    let dispatcher = device_artifacts().dispatcher();
    let mut args = vec![
        "launch",
        so.to_str().unwrap(),
        kernel,
        "--device-machine",
        &machine,
        "--dispatcher",
        dispatcher.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = simpler(root, &args);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn launch_runs_a_kernel_on_both_paths() {
    let root = SimRoot::new();
    let dir = tempfile::tempdir().unwrap();
    let so = kernel_so(dir.path());
    let name = PreinstallName::of(&std::fs::read(&so).unwrap());
    let good = dir.path().join("good.bin");
    std::fs::write(&good, 0x1122_3344_5566_7788u64.to_le_bytes()).unwrap();
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, 1u64.to_le_bytes()).unwrap();
    for path in ["type2", "binary"] {
        let (code, stdout, stderr) = launch(
            &root,
            &so,
            "k_check",
            &[
                "--payload-file",
                good.to_str().unwrap(),
                "--threads",
                "3",
                "--launch-path",
                path,
            ],
        );
        assert_eq!(code, Some(0), "{stdout}\n{stderr}");
        for part in [
            "k_check of ",
            "3 AICPU threads",
            &format!("preinstall name {name}"),
            "fingerprint     ",
            &format!("launch path     {path}"),
            "bootstrap       ",
            "8 bytes of payload",
        ] {
            assert!(stdout.contains(part), "{part:?} missing from:\n{stdout}");
        }
        assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
        // The wrong payload: the kernel returns 3, the launch fails.
        let (code, stdout, stderr) = launch(
            &root,
            &so,
            "k_check",
            &[
                "--payload-file",
                bad.to_str().unwrap(),
                "--launch-path",
                path,
            ],
        );
        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains("kernel k_check of") && stderr.contains("507018"),
            "{stderr}"
        );
    }
    let (code, _, stderr) = launch(&root, &so, "k_fail", &[]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("k_fail") && stderr.contains(&name.to_string()),
        "{stderr}"
    );
}

#[test]
fn launch_refuses_what_is_not_a_kernel_before_upload() {
    let root = SimRoot::new();
    let dir = tempfile::tempdir().unwrap();
    let so = kernel_so(dir.path());
    for (kernel, says) in [
        ("k_data", "is exported as a data object"),
        ("k_missing", "is not exported"),
    ] {
        let (code, stdout, stderr) = launch(&root, &so, kernel, &[]);
        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        assert!(
            stderr.contains(kernel)
                && stderr.contains(says)
                && stderr.contains(so.to_str().unwrap()),
            "{stderr}"
        );
        assert!(stdout.is_empty(), "{stdout}");
    }
    let installed = std::fs::read_dir(root.preinstall(0))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(installed, 0, "nothing was uploaded");
    // A payload file that is not there; a launch path that is not one.
    let (code, _, stderr) = launch(&root, &so, "k_check", &["--payload-file", "/nonexistent/p"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("/nonexistent/p"), "{stderr}");
    let (code, _, stderr) = launch(&root, &so, "k_check", &["--launch-path", "type3"]);
    assert_eq!(code, Some(2), "a usage error");
    assert!(stderr.contains("unknown launch path"), "{stderr}");
}

#[test]
fn run_takes_either_launch_path_and_doctor_names_them() {
    let root = SimRoot::new();
    for path in ["type2", "binary"] {
        let out = simpler(&root, &["run", "--launch-path", path, "--elements", "64"]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("launch path     {path}")),
            "{stdout}"
        );
        assert!(stdout.trim_end().ends_with("OK"));
    }
    let out = simpler(&root, &["doctor"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("launch paths   type2 (supported), binary (supported)"),
        "{stdout}"
    );
}

/// A CANN-compatible library that is not the simulator as simpler knows
/// it: every call simpler makes, forwarded by plain C to the library
/// `SHIM_TARGET` names, and none of the simulator's own exports — so
/// nothing can tell it is the simulator underneath. With `NO_RTS` defined
/// it lacks the binary path's four calls, as a CANN older than them does.
const FORWARDING_SHIM: &str = r#"
    #include <dlfcn.h>
    #include <stdint.h>
    #include <stdio.h>
    #include <stdlib.h>
    static void *target(const char *name) {
        static void *lib;
        if (!lib) {
            const char *path = getenv("SHIM_TARGET");
            lib = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
            if (!lib) { fprintf(stderr, "shim: cannot open SHIM_TARGET\n"); abort(); }
        }
        void *f = dlsym(lib, name);
        if (!f) { fprintf(stderr, "shim: %s missing\n", name); abort(); }
        return f;
    }
    #define FWD(ret, name, params, args) \
        ret name params { return ((ret (*) params)target(#name)) args; }
    FWD(int, aclInit, (const char *c), (c))
    FWD(int, aclrtGetDeviceCount, (uint32_t *n), (n))
    FWD(int, aclrtSetDevice, (int32_t d), (d))
    FWD(int, aclrtResetDevice, (int32_t d), (d))
    FWD(int, aclrtCreateStream, (void **s), (s))
    FWD(int, aclrtDestroyStream, (void *s), (s))
    FWD(int, aclrtSynchronizeStreamWithTimeout, (void *s, int32_t t), (s, t))
    FWD(int, aclrtMalloc, (void **p, size_t n, int policy), (p, n, policy))
    FWD(int, aclrtFree, (void *p), (p))
    FWD(int, aclrtMemcpy, (void *d, size_t m, const void *s, size_t n, int k), (d, m, s, n, k))
    FWD(const char *, aclGetRecentErrMsg, (void), ())
    FWD(int, rtAicpuKernelLaunchExWithArgs,
        (uint32_t t, const char *o, uint32_t b, const void *a, void *sm, void *s, uint32_t f),
        (t, o, b, a, sm, s, f))
    #ifndef NO_RTS
    FWD(int, rtsBinaryLoadFromFile, (const char *p, const void *c, void **h), (p, c, h))
    FWD(int, rtsBinaryUnload, (void *h), (h))
    FWD(int, rtsFuncGetByName, (void *h, const char *n, void **f), (h, n, f))
    FWD(int, rtsLaunchCpuKernel,
        (void *f, uint32_t b, void *s, const void *c, void *a), (f, b, s, c, a))
    #endif
"#;

/// `simpler launch SO KERNEL --launch-path PATH [extra]` through the
/// forwarding shim (compiled with `defines`) onto the simulator.
fn launch_through_shim(
    root: &SimRoot,
    dir: &Path,
    defines: &[&str],
    kernel: &str,
    path: &str,
    extra: &[&str],
) -> (Option<i32>, String, String) {
    let so = kernel_so(dir);
    let mut flags = vec!["-shared", "-fPIC"];
    flags.extend_from_slice(defines);
    flags.push("-ldl");
    let shim = compile_c(dir, "libshim_cann.so", FORWARDING_SHIM, &flags);
    let sim = host_artifacts().sim_lib();
    let machine = device_machine().to_string();
    let dispatcher = device_artifacts().dispatcher();
    let mut args = vec![
        "launch",
        so.to_str().unwrap(),
        kernel,
        "--launch-path",
        path,
        "--backend",
        "cann",
        "--cann-lib",
        shim.to_str().unwrap(),
        "--device-machine",
        &machine,
        "--dispatcher",
        dispatcher.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = super::simpler_with(root, &[("SHIM_TARGET", sim.to_str().unwrap())], &args);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn launch_runs_on_any_cann_compatible_library() {
    let root = SimRoot::new();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    std::fs::write(&good, 0x1122_3344_5566_7788u64.to_le_bytes()).unwrap();
    for path in ["type2", "binary"] {
        let (code, stdout, stderr) = launch_through_shim(
            &root,
            dir.path(),
            &[],
            "k_check",
            path,
            &["--payload-file", good.to_str().unwrap()],
        );
        assert_eq!(code, Some(0), "{path}: {stdout}\n{stderr}");
        assert!(stdout.contains("on CANN device 0"), "{stdout}");
        assert!(
            stdout.contains(&format!("launch path     {path}")),
            "{stdout}"
        );
    }
}

#[test]
fn a_cann_without_the_rts_calls_lacks_the_binary_path_and_says_so_before_upload() {
    let root = SimRoot::new();
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) =
        launch_through_shim(&root, dir.path(), &["-DNO_RTS"], "k_fail", "binary", &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("rtsLaunchCpuKernel") && stderr.contains("binary"),
        "{stderr}"
    );
    let installed = std::fs::read_dir(root.preinstall(0))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(installed, 0, "refused before anything was uploaded");
    // The type-2 path needs none of them.
    let (code, stdout, stderr) =
        launch_through_shim(&root, dir.path(), &["-DNO_RTS"], "k_fail", "type2", &[]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("507018"), "k_fail ran and failed: {stderr}");
}
