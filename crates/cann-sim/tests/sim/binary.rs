//! The binary-handle path: JSON op descriptors loaded with
//! `rtsBinaryLoadFromFile`, kernels looked up by op type, launched with
//! `rtsLaunchCpuKernel` (the parameter at `cpuParamHeadOffset`), handles
//! made stale by unload and reset, the accounting and the two faults; and
//! the AICPU scheduler's side of type-2 launches (its name checks, its
//! cache by name, `RTLD_GLOBAL`).

use std::ffi::{c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr;

use simpler_abi::rts::{
    CpuKernelArgs, KernelLaunchCfg, LaunchKernelAttr, LoadBinaryConfig, LoadBinaryOption,
};
use simpler_abi::AicpuArgsEx;
use simpler_cann_sys::sys::{self, symbols};
use simpler_cann_sys::{RawBinary, RawFunc, RawStream};
use simpler_testkit::{compile_c, host_artifacts, sim_root};

use crate::common::*;

/// The four calls, raw, for arguments the wrappers never pass.
struct Raw {
    load: sys::BinaryLoadFromFile,
    unload: sys::BinaryUnload,
    func_get: sys::FuncGetByName,
    launch: sys::LaunchCpuKernel,
    _lib: libloading::Library,
}

impl Raw {
    fn load() -> Self {
        // SAFETY: the simulator is loaded already (by `Sim::load`); opening
        // it again runs no initialisers.
        let lib = unsafe { libloading::Library::new(host_artifacts().sim_lib()) }
            .expect("open the simulator");
        fn get<T: Copy>(lib: &libloading::Library, name: &CStr) -> T {
            // SAFETY: every caller names `T` as the binding's type of
            // `name`, which the simulator checks its exports against.
            *unsafe { lib.get::<T>(name.to_bytes_with_nul()) }
                .unwrap_or_else(|e| panic!("{name:?}: {e}"))
        }
        Self {
            load: get(&lib, symbols::BINARY_LOAD_FROM_FILE),
            unload: get(&lib, symbols::BINARY_UNLOAD),
            func_get: get(&lib, symbols::FUNC_GET_BY_NAME),
            launch: get(&lib, symbols::LAUNCH_CPU_KERNEL),
            _lib: lib,
        }
    }

    /// `rtsBinaryLoadFromFile(path, cfg)`: the code and the handle.
    fn load_with(&self, path: Option<&CStr>, cfg: Option<&LoadBinaryConfig>) -> (i32, u64) {
        let mut handle: *mut c_void = ptr::null_mut();
        // SAFETY: the path is NULL or NUL-terminated, the config NULL or
        // pointing at options that live for the call; `handle` is writable.
        let rc = unsafe {
            (self.load)(
                path.map_or(ptr::null(), CStr::as_ptr),
                cfg.map_or(ptr::null(), ptr::from_ref),
                &mut handle,
            )
        };
        (rc, handle as u64)
    }

    /// `rtsBinaryLoadFromFile` with one CPU-kernel-mode option.
    fn load_mode(&self, path: &CStr, mode: i32) -> (i32, u64) {
        let option = LoadBinaryOption::cpu_kernel_mode(mode);
        let cfg = LoadBinaryConfig {
            options: ptr::from_ref(&option) as u64,
            num_opt: 1,
        };
        self.load_with(Some(path), Some(&cfg))
    }

    fn unload(&self, handle: u64) -> i32 {
        // SAFETY: the simulator accepts any handle value.
        unsafe { (self.unload)(handle as *mut c_void) }
    }

    fn func(&self, binary: u64, name: &CStr) -> (i32, u64) {
        let mut func: *mut c_void = ptr::null_mut();
        // SAFETY: any handle value is accepted; `name` is NUL-terminated;
        // `func` is writable.
        let rc = unsafe { (self.func_get)(binary as *mut c_void, name.as_ptr(), &mut func) };
        (rc, func as u64)
    }

    /// `rtsLaunchCpuKernel` of anything.
    fn launch(
        &self,
        func: u64,
        blocks: u32,
        stream: *mut c_void,
        cfg: Option<&KernelLaunchCfg>,
        args: Option<&mut CpuKernelArgs>,
    ) -> i32 {
        // SAFETY: the config and arguments, when given, point at live
        // structs whose arrays and blocks live for the call.
        unsafe {
            (self.launch)(
                func as *mut c_void,
                blocks,
                stream,
                cfg.map_or(ptr::null(), ptr::from_ref),
                args.map_or(ptr::null_mut(), ptr::from_mut),
            )
        }
    }
}

/// `rtCpuKernelArgs_t` for `block` with the parameter at `offset`.
fn cpu_args(block: &[u8], offset: u64) -> CpuKernelArgs {
    CpuKernelArgs {
        base_args: AicpuArgsEx {
            args: block.as_ptr() as u64,
            args_size: block.len() as u32,
            ..AicpuArgsEx::default()
        },
        cpu_param_head_offset: offset,
        rsv: [0; 4],
    }
}

/// One zeroed attribute: the config CANN accepts with no attributes.
const NO_ATTR: LaunchKernelAttr = LaunchKernelAttr {
    id: 0,
    value: [0; 4],
};

/// The test kernels' registrations, under op types that differ from their
/// function names.
fn descriptor() -> String {
    let long = "k".repeat(201);
    format!(
        r#"{{
  "count_op": {{"opInfo": {{"functionName": "sim_count", "kernelSo": "{TEST_KERNELS}",
                "opKernelLib": "AICPUKernel", "engine": "DNN_VM_AICPU"}}}},
  "unknown_lib_op": {{"opInfo": {{"functionName": "sim_count", "kernelSo": "{TEST_KERNELS}",
                      "opKernelLib": "NoSuchKernelLib"}}}},
  "missing_so_op": {{"opInfo": {{"functionName": "sim_count", "kernelSo": "libnot_there.so",
                     "opKernelLib": "AICPUKernel"}}}},
  "bad_so_name_op": {{"opInfo": {{"functionName": "sim_count", "kernelSo": "lib bad.so",
                      "opKernelLib": "AICPUKernel"}}}},
  "long_kernel_op": {{"opInfo": {{"functionName": "{long}", "kernelSo": "{TEST_KERNELS}",
                      "opKernelLib": "AICPUKernel"}}}},
  "no_function_op": {{"opInfo": {{"kernelSo": "{TEST_KERNELS}", "opKernelLib": "AICPUKernel"}}}},
  "skipped_op": {{"opInfo": {{"functionName": 7}}}},
  "not_an_op": {{"engine": "DNN_VM_AICPU"}}
}}"#
    )
}

/// Writes [`descriptor`] as `<dir>/ops.json` and returns the path a host
/// passes, `<dir>/ops.o`.
fn write_descriptor(dir: &Path) -> CString {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ops.json"), descriptor()).unwrap();
    CString::new(dir.join("ops.o").into_os_string().into_encoded_bytes()).unwrap()
}

fn descriptor_dir() -> PathBuf {
    sim_root().join("ops")
}

fn load_ok(api: &Sim, path: &CStr) -> RawBinary {
    let calls = api.binary.expect("the simulator exports the binary calls");
    calls
        .load_json(path)
        .unwrap_or_else(|rc| panic!("rtsBinaryLoadFromFile: {rc}: {}", api.last_error()))
}

fn func_ok(api: &Sim, binary: &RawBinary, op: &CStr) -> RawFunc {
    let calls = api.binary.unwrap();
    calls
        .function(binary, op)
        .unwrap_or_else(|rc| panic!("rtsFuncGetByName {op:?}: {rc}: {}", api.last_error()))
}

fn new_stream(api: &Sim) -> RawStream {
    api.create_stream().expect("aclrtCreateStream")
}

/// `[decoy payload][payload(counter)]`, the parameter after the decoy.
fn counting_block(decoy: u64, counter: u64) -> (Vec<u8>, u64) {
    let mut block = payload(decoy, 0).to_vec();
    block.extend_from_slice(&payload(counter, 0));
    (block, 16)
}

fn zeroed(api: &Sim, len: usize) -> u64 {
    let addr = api.alloc(len);
    api.h2d(addr, &vec![0; len]);
    addr
}

#[test]
fn a_kernel_looked_up_by_op_type_runs_with_its_parameter_at_the_offset() {
    if ran_in_child(
        "binary::a_kernel_looked_up_by_op_type_runs_with_its_parameter_at_the_offset",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    let calls = api.binary.unwrap();
    api.set(0);
    let stream = new_stream(&api);
    let path = write_descriptor(&descriptor_dir());

    // Through the binding's wrappers, as a host uses them.
    let binary = load_ok(&api, &path);
    let func = func_ok(&api, &binary, c"count_op");
    // The same kernel object each time, as CANN returns it.
    let again = func_ok(&api, &binary, c"count_op");
    assert_eq!(format!("{func:?}"), format!("{again:?}"));
    let (decoy, counter) = (zeroed(&api, 8), zeroed(&api, 8));
    let (block, offset) = counting_block(decoy, counter);
    api.ok(
        "rtsLaunchCpuKernel",
        code(calls.launch(&func, 3, &stream, &block, offset)),
    );
    api.ok("sync", api.sync_ms(stream.as_ptr(), SYNC_MS));
    assert_eq!(api.read_u64(counter), 3, "each of 3 blocks counted once");
    assert_eq!(api.read_u64(decoy), 0, "the kernel got the block + offset");

    // Raw: a second registration of the same descriptor.
    let (rc, handle) = raw.load_mode(&path, 0);
    api.ok("rtsBinaryLoadFromFile", rc);
    let (rc, f) = raw.func(handle, c"count_op");
    api.ok("rtsFuncGetByName", rc);
    // A NULL cfg is accepted (CANN checks attrs only in a given cfg).
    let mut args = cpu_args(&block, offset);
    api.ok(
        "launch, cfg NULL",
        raw.launch(f, 1, stream.as_ptr(), None, Some(&mut args)),
    );
    // Names inside the block override the registration's: the
    // registration of missing_so_op names an SO that is not there.
    let mut named = payload(counter, 0).to_vec();
    let kernel_off = named.len() as u32;
    named.extend_from_slice(b"sim_count\0");
    let so_off = named.len() as u32;
    named.extend_from_slice(TEST_KERNELS.as_bytes());
    named.push(0);
    let (rc, missing) = raw.func(handle, c"missing_so_op");
    api.ok("rtsFuncGetByName", rc);
    let mut args = cpu_args(&named, 0);
    args.base_args.so_name_addr_offset = so_off;
    args.base_args.kernel_name_addr_offset = kernel_off;
    let cfg = KernelLaunchCfg {
        attrs: ptr::from_ref(&NO_ATTR) as u64,
        num_attrs: 0,
    };
    api.ok(
        "launch, names in the block",
        raw.launch(missing, 2, stream.as_ptr(), Some(&cfg), Some(&mut args)),
    );
    api.ok("sync", api.sync_ms(stream.as_ptr(), SYNC_MS));
    assert_eq!(api.read_u64(counter), 3 + 1 + 2);

    let s = api.stats(0);
    assert_eq!(
        (
            s.binaries_live,
            s.functions_live,
            s.binary_loads,
            s.launches_cpu_kernel
        ),
        (2, 3, 2, 3)
    );
    assert_eq!(s.launches_aicpu, 0, "rtsLaunchCpuKernel is counted apart");

    // The functionName is not a key; nor is a member without opInfo.
    api.expect(
        "rtsFuncGetByName(functionName)",
        raw.func(handle, c"sim_count").0,
        ACL_ERROR_RT_PARAM_INVALID,
        "kernels are looked up by op type",
    );
    api.expect(
        "rtsFuncGetByName(member without opInfo)",
        raw.func(handle, c"not_an_op").0,
        ACL_ERROR_RT_PARAM_INVALID,
        "registered: bad_so_name_op, count_op",
    );
    api.expect(
        "rtsFuncGetByName(skipped)",
        raw.func(handle, c"skipped_op").0,
        ACL_ERROR_RT_PARAM_INVALID,
        "was skipped at load: opInfo.functionName is 7, not a string",
    );

    // Unload: the binary and its functions are stale, the other binary's
    // are not.
    api.ok("rtsBinaryUnload", code(calls.unload(binary)));
    let s = api.stats(0);
    assert_eq!((s.binaries_live, s.functions_live), (1, 2));
    api.expect(
        "launch after unload",
        code(calls.launch(&func, 1, &stream, &block, offset)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "its binary was unloaded",
    );
    api.ok("rtsBinaryUnload", raw.unload(handle));
    let s = api.stats(0);
    assert_eq!(
        (s.binaries_live, s.functions_live, s.binary_loads),
        (0, 0, 2)
    );
    for f in [f, missing] {
        let mut args = cpu_args(&block, offset);
        api.expect(
            "launch after unload",
            raw.launch(f, 1, stream.as_ptr(), None, Some(&mut args)),
            ACL_ERROR_RT_INVALID_HANDLE,
            "its binary was unloaded",
        );
    }
    api.expect(
        "rtsFuncGetByName after unload",
        raw.func(handle, c"count_op").0,
        ACL_ERROR_RT_INVALID_HANDLE,
        "it was unloaded",
    );
    api.expect(
        "rtsBinaryUnload twice",
        raw.unload(handle),
        ACL_ERROR_RT_INVALID_HANDLE,
        "not live",
    );
    assert_eq!(
        api.stats(0).launches_cpu_kernel,
        3,
        "stale handles name no device"
    );
    for addr in [decoy, counter] {
        api.release(addr);
    }
    api.ok("destroy", code(api.destroy_stream(stream)));
    api.reset(0);
}

#[test]
fn the_descriptor_read_is_the_path_up_to_its_last_dot_plus_json() {
    if ran_in_child(
        "binary::the_descriptor_read_is_the_path_up_to_its_last_dot_plus_json",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    api.set(0);
    let root = sim_root();
    // `<root>/v1.d/kernels` has no dot in its file name: the last dot is
    // the directory's, so `<root>/v1.json` is read.
    std::fs::create_dir_all(root.join("v1.d")).unwrap();
    std::fs::write(root.join("v1.json"), descriptor()).unwrap();
    std::fs::write(root.join("v1.d/kernels.json"), "not read").unwrap();
    let path = CString::new(format!("{}/v1.d/kernels", root.display())).unwrap();
    let (rc, handle) = raw.load_mode(&path, 0);
    api.ok("rtsBinaryLoadFromFile(v1.d/kernels)", rc);
    api.ok("rtsFuncGetByName", raw.func(handle, c"count_op").0);
    api.ok("rtsBinaryUnload", raw.unload(handle));
    // Only the part after the last dot goes: `x.tar.o` reads `x.tar.json`.
    std::fs::write(root.join("x.tar.json"), descriptor()).unwrap();
    let path = CString::new(format!("{}/x.tar.o", root.display())).unwrap();
    let (rc, handle) = raw.load_mode(&path, 0);
    api.ok("rtsBinaryLoadFromFile(x.tar.o)", rc);
    api.ok("rtsBinaryUnload", raw.unload(handle));
    let s = api.stats(0);
    assert_eq!((s.binary_loads, s.binaries_live), (2, 0));
    api.reset(0);
}

#[test]
fn bad_loads_fail_with_canns_codes_and_register_nothing() {
    if ran_in_child(
        "binary::bad_loads_fail_with_canns_codes_and_register_nothing",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    let root = sim_root();
    let path = write_descriptor(&descriptor_dir());

    // No current device on this thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            api.expect(
                "load without a device",
                raw.load_mode(&path, 0).0,
                ACL_ERROR_RT_CONTEXT_NULL,
                "no current device",
            );
        });
    });
    api.set(0);
    let missing = CString::new(format!("{}/nothing/here.o", root.display())).unwrap();
    api.expect(
        "missing descriptor",
        raw.load_mode(&missing, 0).0,
        ACL_ERROR_RT_PARAM_INVALID,
        &format!("{}/nothing/here.json", root.display()),
    );
    std::fs::write(
        root.join("broken.json"),
        "{\n  \"op\": {\n    \"opInfo\": ,\n",
    )
    .unwrap();
    let broken = CString::new(format!("{}/broken.o", root.display())).unwrap();
    api.expect(
        "malformed descriptor",
        raw.load_mode(&broken, 0).0,
        ACL_ERROR_RT_PARAM_INVALID,
        "line 3 column",
    );
    api.expect(
        "cpuKernelMode 2 from a file",
        raw.load_mode(&path, 2).0,
        ACL_ERROR_RT_PARAM_INVALID,
        "cpuKernelMode 2 is invalid",
    );
    api.expect(
        "cpuKernelMode 1",
        raw.load_mode(&path, 1).0,
        ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        "not supported by the simulator",
    );
    api.expect(
        "no options: an AI Core binary",
        raw.load_with(Some(&path), None).0,
        ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        "AI Core binary",
    );
    let null_options = LoadBinaryConfig {
        options: 0,
        num_opt: 0,
    };
    api.expect(
        "options NULL",
        raw.load_with(Some(&path), Some(&null_options)).0,
        ACL_ERROR_RT_PARAM_INVALID,
        "options is",
    );
    api.expect(
        "binPath NULL",
        raw.load_with(None, None).0,
        ACL_ERROR_RT_PARAM_INVALID,
        "binPath is NULL",
    );
    // SAFETY: a NULL handle pointer is refused before anything is written.
    let rc = unsafe { (raw.load)(path.as_ptr(), ptr::null(), ptr::null_mut()) };
    api.expect(
        "handle NULL",
        rc,
        ACL_ERROR_RT_PARAM_INVALID,
        "handle is NULL",
    );
    api.expect(
        "unload NULL",
        raw.unload(0),
        ACL_ERROR_RT_PARAM_INVALID,
        "binHandle is NULL",
    );
    api.expect(
        "func of a garbage handle",
        raw.func(0x1234, c"count_op").0,
        ACL_ERROR_RT_INVALID_HANDLE,
        "is not a binary handle",
    );
    let s = api.stats(0);
    assert_eq!(
        (s.binary_loads, s.binaries_live, s.functions_live),
        (0, 0, 0)
    );
    api.reset(0);
}

#[test]
fn bad_launches_are_refused_in_canns_order_and_counted() {
    if ran_in_child(
        "binary::bad_launches_are_refused_in_canns_order_and_counted",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    api.set(0);
    let stream = new_stream(&api);
    let s = stream.as_ptr();
    let path = write_descriptor(&descriptor_dir());
    let (rc, binary) = raw.load_mode(&path, 0);
    api.ok("load", rc);
    let (rc, func) = raw.func(binary, c"count_op");
    api.ok("func", rc);
    let counter = zeroed(&api, 8);
    let (block, offset) = counting_block(counter, counter);
    let attr_cfg = KernelLaunchCfg {
        attrs: ptr::from_ref(&NO_ATTR) as u64,
        num_attrs: 0,
    };

    let mut args = cpu_args(&block, offset);
    api.expect(
        "funcHandle NULL",
        raw.launch(0, 1, s, None, Some(&mut args)),
        ACL_ERROR_RT_PARAM_INVALID,
        "funcHandle is NULL",
    );
    api.expect(
        "a binary handle as the function",
        raw.launch(binary, 1, s, None, Some(&mut args)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "is a binary handle",
    );
    let mut calls = 0;
    let mut refused = |what: &str, rc: i32, needle: &str| {
        calls += 1;
        api.expect(what, rc, ACL_ERROR_RT_PARAM_INVALID, needle);
    };
    refused(
        "a dead stream",
        raw.launch(func, 1, 0x77 as *mut c_void, None, Some(&mut args)),
        "not a live stream",
    );
    refused(
        "argsInfo NULL",
        raw.launch(func, 1, s, None, None),
        "argsInfo is NULL",
    );
    let mut null_args = cpu_args(&block, offset);
    null_args.base_args.args = 0;
    refused(
        "args NULL",
        raw.launch(func, 1, s, None, Some(&mut null_args)),
        "baseArgs.args is NULL",
    );
    let mut empty = cpu_args(&block, 0);
    empty.base_args.args_size = 0;
    refused(
        "argsSize 0",
        raw.launch(func, 1, s, None, Some(&mut empty)),
        "argsSize is 0",
    );
    refused(
        "numBlocks 0",
        raw.launch(func, 0, s, None, Some(&mut args)),
        "numBlocks is 0",
    );
    let null_attrs = KernelLaunchCfg {
        attrs: 0,
        num_attrs: 0,
    };
    refused(
        "cfg->attrs NULL",
        raw.launch(func, 1, s, Some(&null_attrs), Some(&mut args)),
        "cfg->attrs is NULL",
    );
    let both = [
        LaunchKernelAttr {
            id: 7,
            value: [1, 0, 0, 0],
        },
        LaunchKernelAttr {
            id: 8,
            value: [1, 0, 0, 0],
        },
    ];
    let both_cfg = KernelLaunchCfg {
        attrs: both.as_ptr() as u64,
        num_attrs: 2,
    };
    refused(
        "both timeouts",
        raw.launch(func, 1, s, Some(&both_cfg), Some(&mut args)),
        "TIMEOUT_US (8)",
    );
    let mut past = cpu_args(&block, block.len() as u64);
    refused(
        "cpuParamHeadOffset at the end",
        raw.launch(func, 1, s, Some(&attr_cfg), Some(&mut past)),
        "cpuParamHeadOffset 32 is outside the 32-byte argument block",
    );
    let mut unterminated = cpu_args(&block, 0);
    unterminated.base_args.kernel_name_addr_offset = 8;
    unterminated.base_args.so_name_addr_offset = 40;
    refused(
        "a name offset outside the block",
        raw.launch(func, 1, s, Some(&attr_cfg), Some(&mut unterminated)),
        "soNameAddrOffset 40",
    );
    // Nothing reached the device; every refused call named a live
    // function and counts.
    api.ok("sync", api.sync_ms(s, SYNC_MS));
    assert_eq!(api.read_u64(counter), 0);
    let stats = api.stats(0);
    assert_eq!(stats.launches_cpu_kernel, calls);
    api.ok(
        "a good launch after all that",
        raw.launch(func, 1, s, Some(&attr_cfg), Some(&mut args)),
    );
    api.ok("sync", api.sync_ms(s, SYNC_MS));
    assert_eq!(api.read_u64(counter), 1);
    assert_eq!(api.stats(0).launches_cpu_kernel, calls + 1);
    api.ok("unload", raw.unload(binary));
    api.release(counter);
    api.ok("destroy", code(api.destroy_stream(stream)));
    api.reset(0);
}

#[test]
fn registrations_the_device_cannot_run_fail_at_the_sync() {
    if ran_in_child(
        "binary::registrations_the_device_cannot_run_fail_at_the_sync",
        &[],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    api.set(0);
    let stream = new_stream(&api);
    let s = stream.as_ptr();
    let path = write_descriptor(&descriptor_dir());
    // Loading checks no SO: every registration loads.
    let (rc, binary) = raw.load_mode(&path, 0);
    api.ok("load", rc);
    let counter = zeroed(&api, 8);
    let block = payload(counter, 0);
    for (op, needle) in [
        (c"unknown_lib_op", "kernelType is invalid: 99"),
        (c"missing_so_op", "libnot_there.so"),
        (c"bad_so_name_op", "so name \"lib bad.so\" is invalid"),
        (c"long_kernel_op", "(201 bytes) is invalid"),
        (c"no_function_op", "kernel name \"\" (0 bytes) is invalid"),
    ] {
        let (rc, func) = raw.func(binary, op);
        api.ok("func", rc);
        let mut args = cpu_args(&block, 0);
        api.ok(
            &format!("launch {op:?}"),
            raw.launch(func, 1, s, None, Some(&mut args)),
        );
        api.expect(
            &format!("sync {op:?}"),
            api.sync_ms(s, SYNC_MS),
            ACL_ERROR_RT_AICPU_EXCEPTION,
            needle,
        );
    }
    assert_eq!(api.read_u64(counter), 0, "none of them ran");
    api.ok("unload", raw.unload(binary));
    api.release(counter);
    api.ok("destroy", code(api.destroy_stream(stream)));
    api.reset(0);
}

#[test]
fn a_device_reset_makes_its_handles_stale() {
    if ran_in_child("binary::a_device_reset_makes_its_handles_stale", &[]) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    api.set(0);
    let path = write_descriptor(&descriptor_dir());
    let (rc, binary) = raw.load_mode(&path, 0);
    api.ok("load", rc);
    let (rc, func) = raw.func(binary, c"count_op");
    api.ok("func", rc);
    // The handles are device 0's: not for device 1's default stream.
    api.set(1);
    let block = payload(0, 0);
    let mut args = cpu_args(&block, 0);
    api.expect(
        "launch on another device",
        raw.launch(func, 1, ptr::null_mut(), None, Some(&mut args)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "loaded on device 0 but the stream is on device 1",
    );
    assert_eq!(api.stats(1).launches_cpu_kernel, 0);
    assert_eq!(api.stats(0).launches_cpu_kernel, 1);
    api.reset(1);
    api.set(0);
    api.reset(0);
    let s = api.stats(0);
    assert_eq!((s.binaries_live, s.functions_live), (1, 1));
    api.reset(0);
    let s = api.stats(0);
    assert_eq!(
        (s.binaries_live, s.functions_live, s.binary_loads),
        (0, 0, 1)
    );
    api.set(0);
    let block = payload(0, 0);
    let mut args = cpu_args(&block, 0);
    api.expect(
        "launch after reset",
        raw.launch(func, 1, ptr::null_mut(), None, Some(&mut args)),
        ACL_ERROR_RT_INVALID_HANDLE,
        "its device was reset",
    );
    api.expect(
        "unload after reset",
        raw.unload(binary),
        ACL_ERROR_RT_INVALID_HANDLE,
        "its device was reset",
    );
    api.reset(0);
}

#[test]
fn binary_load_and_function_lookup_faults_hit_the_nth_call() {
    if ran_in_child(
        "binary::binary_load_and_function_lookup_faults_hit_the_nth_call",
        &[(env::FAIL_BINARY_LOAD, "2"), (env::FAIL_FUNC_GET, "1")],
    ) {
        return;
    }
    let api = Sim::load();
    let raw = Raw::load();
    api.set(0);
    let path = write_descriptor(&descriptor_dir());
    let (rc, first) = raw.load_mode(&path, 0);
    api.ok("load #1", rc);
    api.expect(
        "load #2",
        raw.load_mode(&path, 0).0,
        ACL_ERROR_RT_INTERNAL_ERROR,
        env::FAIL_BINARY_LOAD,
    );
    let (rc, third) = raw.load_mode(&path, 0);
    api.ok("load #3", rc);
    api.expect(
        "func #1",
        raw.func(first, c"count_op").0,
        ACL_ERROR_RT_INTERNAL_ERROR,
        env::FAIL_FUNC_GET,
    );
    api.ok("func #2", raw.func(first, c"count_op").0);
    let s = api.stats(0);
    assert_eq!(
        (s.binary_loads, s.binaries_live, s.functions_live),
        (2, 2, 1)
    );
    for b in [first, third] {
        api.ok("unload", raw.unload(b));
    }
    let s = api.stats(0);
    assert_eq!((s.binaries_live, s.functions_live), (0, 0));
    api.reset(0);
}

/// A type-2 launch with its own block layout: the payload, then the kernel
/// and SO names, of any length.
fn launch_named(api: &Sim, so: &str, kernel: &str, payload: &[u8], stream: *mut c_void) -> i32 {
    let mut block = payload.to_vec();
    let kernel_off = block.len() as u32;
    block.extend_from_slice(kernel.as_bytes());
    block.push(0);
    let so_off = block.len() as u32;
    block.extend_from_slice(so.as_bytes());
    block.push(0);
    let info = args_ex(&block, so_off, kernel_off);
    api.launch_raw(
        simpler_abi::names::KERNEL_TYPE_AICPU,
        c"named",
        1,
        &info,
        stream,
    )
}

#[test]
fn the_scheduler_checks_names_first_and_caches_sos_by_name() {
    if ran_in_child(
        "binary::the_scheduler_checks_names_first_and_caches_sos_by_name",
        &[],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    let counter = zeroed(&api, 8);
    let p = payload(counter, 0);
    let long_so = format!("{}.so", "a".repeat(98));
    let long_kernel = "k".repeat(201);
    for (so, kernel, needle) in [
        ("../x.so", "sim_count", "so name \"../x.so\" is invalid"),
        (long_so.as_str(), "sim_count", "1 to 100 characters"),
        ("", "sim_count", "so name \"\" is invalid"),
        (TEST_KERNELS, long_kernel.as_str(), "(201 bytes) is invalid"),
    ] {
        api.ok("launch", launch_named(&api, so, kernel, &p, stream));
        api.sync_expect("sync", stream, ACL_ERROR_RT_AICPU_EXCEPTION, needle);
    }
    assert_eq!(api.stats(0).dlopens, 0, "no name reached dlopen");
    // 100 characters pass the check and reach the file system.
    let so100 = format!("{}.so", "b".repeat(97));
    api.ok(
        "launch",
        launch_named(&api, &so100, "sim_count", &p, stream),
    );
    api.sync_expect("sync", stream, ACL_ERROR_RT_AICPU_EXCEPTION, "cannot load");

    // Cached by name: once opened, the file is never read again.
    api.ok(
        "launch",
        launch_named(&api, TEST_KERNELS, "sim_count", &p, stream),
    );
    api.sync_ok("sync", stream);
    // Replaced by another file (a new inode: the open SO's pages stay).
    let preinstall = sim_root().join("device0/preinstall");
    std::fs::write(preinstall.join("replacement"), b"no longer an ELF file").unwrap();
    std::fs::rename(
        preinstall.join("replacement"),
        preinstall.join(TEST_KERNELS),
    )
    .unwrap();
    api.ok(
        "launch",
        launch_named(&api, TEST_KERNELS, "sim_count", &p, stream),
    );
    api.sync_ok("sync", stream);
    assert_eq!(api.read_u64(counter), 2);
    assert_eq!(
        api.stats(0).dlopens,
        2,
        "the 100-character name and the kernels"
    );
    api.release(counter);
    api.reset(0);
}

/// A kernel SO whose kernel `name` stores what `helper()` returns at the
/// device address in its payload's first word; every one defines its own
/// `helper` returning `value`.
fn interposer(dir: &Path, so: &str, name: &str, value: u32, flags: &[&str]) {
    let source = format!(
        "#include <stdint.h>\n\
         uint64_t helper(void) {{ return {value}; }}\n\
         __attribute__((visibility(\"default\"))) uint32_t {name}(void *args)\n\
         {{\n    *(uint64_t *)(uintptr_t)*(uint64_t *)args = helper();\n    return 0;\n}}\n"
    );
    // -O0: the call of helper() is not inlined, it goes through the PLT.
    let mut args = vec!["-shared", "-fPIC", "-O0"];
    args.extend_from_slice(flags);
    let built = compile_c(dir, so, &source, &args);
    std::fs::copy(built, sim_root().join("device0/preinstall").join(so)).unwrap();
}

#[test]
fn kernel_sos_share_one_global_symbol_scope() {
    if ran_in_child("binary::kernel_sos_share_one_global_symbol_scope", &[]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    interposer(tmp.path(), "libfirst.so", "first_kernel", 1, &[]);
    interposer(tmp.path(), "libsecond.so", "second_kernel", 2, &[]);
    interposer(
        tmp.path(),
        "libsymbolic.so",
        "symbolic_kernel",
        3,
        &["-Wl,-Bsymbolic"],
    );
    interposer(
        tmp.path(),
        "libhidden.so",
        "hidden_kernel",
        4,
        &["-fvisibility=hidden"],
    );
    let (api, stream) = device0_stream();
    let out = zeroed(&api, 8);
    let run = |so: &str, kernel: &str| {
        api.ok(
            "launch",
            launch_named(&api, so, kernel, &payload(out, 0), stream),
        );
        api.sync_ok("sync", stream);
        api.read_u64(out)
    };
    assert_eq!(run("libfirst.so", "first_kernel"), 1);
    // RTLD_GLOBAL: the second SO's call of its own helper() binds to the
    // first SO's, loaded before it.
    assert_eq!(run("libsecond.so", "second_kernel"), 1);
    // The two remedies: -Bsymbolic, or helpers hidden.
    assert_eq!(run("libsymbolic.so", "symbolic_kernel"), 3);
    assert_eq!(run("libhidden.so", "hidden_kernel"), 4);
    api.release(out);
    api.reset(0);
}
