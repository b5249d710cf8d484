//! `include/simpler.h`: generated, current, valid C and C++, and declaring
//! exactly the promised prototypes.

use std::path::PathBuf;
use std::process::Command;

use simpler_testkit::workspace_root;

fn header_path() -> PathBuf {
    workspace_root().join("include/simpler.h")
}

fn generate() -> String {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .expect("read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("SIMPLER_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write include/simpler.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with `SIMPLER_BLESS=1 cargo test -p simpler-capi header`",
        path.display()
    );
}

/// The prototypes the C ABI promises, spelled as its users write them; a
/// redeclaration that disagrees with the header does not compile.
const PROMISED: &str = r#"
#include "simpler.h"
typedef struct simpler_cann simpler_cann;
typedef struct simpler_module simpler_module;
typedef struct simpler_buffer simpler_buffer;
int  simpler_cann_open_simulator(simpler_cann **out);
int  simpler_cann_open_libraries(const char *const *paths, size_t count, simpler_cann **out);
int  simpler_cann_open_toolkit(simpler_cann **out);
void simpler_cann_close(simpler_cann *cann);
int  simpler_module_load(simpler_cann *cann, int32_t device, const char *so_path,
                         const char *dispatcher_path, const char *const *kernels, size_t count,
                         int launch_path, simpler_module **out);
void simpler_module_unload(simpler_module *module);
int  simpler_launch(simpler_module *module, const char *kernel, uint32_t threads,
                    const void *payload, size_t payload_len, int32_t timeout_ms);
int  simpler_buffer_alloc(simpler_cann *cann, int32_t device, size_t len, simpler_buffer **out);
uint64_t simpler_buffer_device_addr(const simpler_buffer *buffer);
int  simpler_buffer_write(simpler_buffer *buffer, size_t offset, const void *src, size_t len);
int  simpler_buffer_read(const simpler_buffer *buffer, size_t offset, void *dst, size_t len);
void simpler_buffer_free(simpler_buffer *buffer);
const char *simpler_last_error(void);
int32_t simpler_last_cann_code(void);
int main(void) { return SIMPLER_OK + SIMPLER_ERROR_KERNEL - SIMPLER_ERROR_KERNEL; }
"#;

fn compile(compiler: &str, lang: &str, std: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join(format!("promised.{lang}"));
    std::fs::write(&src, PROMISED).expect("write the source");
    let include = workspace_root().join("include");
    let out = Command::new(compiler)
        .args([
            &format!("-std={std}"),
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .arg("-I")
        .arg(&include)
        .args(["-fsyntax-only"])
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("run {compiler}: {e}"));
    assert!(
        out.status.success(),
        "{compiler} -std={std} rejects include/simpler.h with the promised prototypes:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_header_compiles_as_c_with_the_promised_prototypes() {
    compile("cc", "c", "c11");
}

#[test]
fn the_header_compiles_as_cpp_with_the_promised_prototypes() {
    compile("c++", "cpp", "c++11");
}
