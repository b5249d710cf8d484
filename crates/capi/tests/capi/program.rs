//! A C program that includes only `include/simpler.h` and links only
//! libsimpler.so installs a C AICPU SO on the simulator and launches its
//! kernels, on both launch paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use simpler_testkit::{child_env, compile_c, workspace_root, SimRoot};

/// Kernels in plain C, as CANN's scheduler calls them.
const KERNELS: &str = r#"
#include <stdint.h>
struct add { uint64_t dst, a, b, n; };
uint32_t k_add(void *param) {
    const struct add *p = param;
    uint32_t *dst = (uint32_t *)(uintptr_t)p->dst;
    const uint32_t *a = (const uint32_t *)(uintptr_t)p->a;
    const uint32_t *b = (const uint32_t *)(uintptr_t)p->b;
    for (uint64_t i = 0; i < p->n; i++) dst[i] = a[i] + b[i];
    return 0;
}
uint32_t k_fail(void *param) { (void)param; return 7; }
int not_a_kernel = 1;
"#;

/// The program: every step checked, the failing kernel's error checked,
/// nothing left on the device at the end.
const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "simpler.h"

#define N 256
#define CHECK(call) do { int rc_ = (call); if (rc_ != 0) { \
    fprintf(stderr, "%s = %d: %s (CANN %d)\n", #call, rc_, simpler_last_error(), \
            (int)simpler_last_cann_code()); return 1; } } while (0)

struct add { uint64_t dst, a, b, n; };

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: prog SO LAUNCH_PATH\n"); return 2; }
    int path = atoi(argv[2]);
    simpler_cann *cann = NULL;
    CHECK(simpler_cann_open_simulator(&cann));

    const char *bad[] = {"not_a_kernel"};
    simpler_module *none = NULL;
    int rc = simpler_module_load(cann, 0, argv[1], NULL, bad, 1, path, &none);
    if (rc != SIMPLER_ERROR_PREFLIGHT || none != NULL || !strstr(simpler_last_error(), "not_a_kernel")) {
        fprintf(stderr, "a data object was not refused: %d %s\n", rc, simpler_last_error());
        return 1;
    }

    const char *kernels[] = {"k_add", "k_fail"};
    simpler_module *module = NULL;
    CHECK(simpler_module_load(cann, 0, argv[1], NULL, kernels, 2, path, &module));

    uint32_t a[N], b[N], out[N];
    for (int i = 0; i < N; i++) { a[i] = (uint32_t)i; b[i] = 1000u; out[i] = 0; }
    simpler_buffer *da = NULL, *db = NULL, *dout = NULL;
    CHECK(simpler_buffer_alloc(cann, 0, sizeof a, &da));
    CHECK(simpler_buffer_alloc(cann, 0, sizeof b, &db));
    CHECK(simpler_buffer_alloc(cann, 0, sizeof out, &dout));
    CHECK(simpler_buffer_write(da, 0, a, sizeof a));
    CHECK(simpler_buffer_write(db, 0, b, sizeof b));
    struct add p = {simpler_buffer_device_addr(dout), simpler_buffer_device_addr(da),
                    simpler_buffer_device_addr(db), N};
    CHECK(simpler_launch(module, "k_add", 4, &p, sizeof p, 10000));
    CHECK(simpler_buffer_read(dout, 0, out, sizeof out));
    for (int i = 0; i < N; i++) {
        if (out[i] != (uint32_t)i + 1000u) { fprintf(stderr, "out[%d] = %u\n", i, out[i]); return 1; }
    }

    rc = simpler_launch(module, "k_fail", 1, NULL, 0, 10000);
    printf("k_fail: %d %d %s\n", rc, (int)simpler_last_cann_code(), simpler_last_error());
    if (rc != SIMPLER_ERROR_KERNEL || simpler_last_cann_code() != 507018
        || !strstr(simpler_last_error(), "k_fail")) {
        return 1;
    }
    rc = simpler_launch(module, "k_missing", 1, NULL, 0, 10000);
    if (rc != SIMPLER_ERROR_INVALID_ARGUMENT) { fprintf(stderr, "k_missing: %d\n", rc); return 1; }

    simpler_buffer_free(da);
    simpler_buffer_free(db);
    simpler_buffer_free(dout);
    simpler_module_unload(module);
    simpler_buffer_free(NULL);
    simpler_module_unload(NULL);
    uint64_t live = 1;
    CHECK(simpler_sim_live_bytes(cann, 0, &live));
    simpler_cann_close(cann);
    simpler_cann_close(NULL);
    if (live != 0) { fprintf(stderr, "%llu device bytes left\n", (unsigned long long)live); return 1; }
    puts("ok");
    return 0;
}
"#;

/// The directory holding the libsimpler.so built for this test: cargo
/// builds the library's cdylib next to the test executable, in `deps/`.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe.parent().expect("target/<profile>/deps");
    assert!(
        dir.join("libsimpler.so").is_file(),
        "libsimpler.so is not in {}",
        dir.display()
    );
    dir.to_owned()
}

fn build(dir: &Path) -> (PathBuf, PathBuf) {
    let so = compile_c(dir, "libkernels.so", KERNELS, &["-shared", "-fPIC", "-O1"]);
    let lib = lib_dir();
    let src = dir.join("prog.c");
    std::fs::write(&src, PROGRAM).expect("write prog.c");
    let prog = dir.join("prog");
    let out = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(workspace_root().join("include"))
        .arg("-o")
        .arg(&prog)
        .arg(&src)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lsimpler")
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "the C program does not build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (so, prog)
}

fn run(launch_path: u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (so, prog) = build(dir.path());
    let root = SimRoot::new();
    let out = Command::new(&prog)
        .arg(&so)
        .arg(launch_path.to_string())
        .envs(child_env(root.path()))
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the C program failed on launch path {launch_path}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.ends_with("ok\n"), "{stdout}");
}

#[test]
fn a_c_program_runs_kernels_on_the_type2_path() {
    run(0);
}

#[test]
fn a_c_program_runs_kernels_on_the_binary_path() {
    run(1);
}
