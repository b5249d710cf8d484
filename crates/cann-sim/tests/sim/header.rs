//! `include/simpler_cann_sim.h` against the Rust side: a C file generated
//! from the Rust layouts, constants and the one binding's function types
//! includes the header and fails to compile on any difference — a struct's
//! size, a field's offset or size, a constant's value, or a prototype that
//! does not match the binding's type of its symbol.

use std::ffi::CStr;
use std::fmt::Write;
use std::mem::{offset_of, size_of, size_of_val};
use std::path::Path;

use simpler_abi::cann::error::{self as codes, name};
use simpler_abi::cann::{memcpy_kind, ACL_MEM_MALLOC_HUGE_FIRST};
use simpler_abi::names::{KERNEL_TYPE_AICPU, KERNEL_TYPE_AICPU_KFC};
use simpler_abi::rts::{
    CpuKernelArgs, KernelLaunchCfg, LaunchKernelAttr, LoadBinaryConfig, LoadBinaryOption,
    RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE,
};
use simpler_abi::{AicpuArgsEx, SimStats};
use simpler_cann_sys::sys::{self, symbols};

use crate::common::cc;

/// One field: its C name, its Rust offset and size.
type Field = (&'static str, usize, usize);

/// `_Static_assert`s of a struct's size and every field the header
/// declares.
fn layout(out: &mut String, c_type: &str, size: usize, fields: &[Field]) {
    writeln!(
        out,
        "_Static_assert(sizeof({c_type}) == {size}, \"sizeof({c_type})\");"
    )
    .unwrap();
    for (field, offset, len) in fields {
        writeln!(
            out,
            "_Static_assert(offsetof({c_type}, {field}) == {offset}, \"{c_type}.{field} offset\");\n\
             _Static_assert(sizeof((({c_type} *)0)->{field}) == {len}, \"{c_type}.{field} size\");"
        )
        .unwrap();
    }
}

/// The C spelling of a Rust FFI type as `std::any::type_name` prints it.
fn c_type(rust: &str) -> String {
    let rust = rust.trim();
    if let Some(inner) = rust.strip_prefix("*const ") {
        return format!("{} const *", c_type(inner));
    }
    if let Some(inner) = rust.strip_prefix("*mut ") {
        return format!("{} *", c_type(inner));
    }
    let simple = rust.rsplit("::").next().unwrap_or(rust);
    match simple {
        "()" => "void",
        "c_void" => "void",
        // `c_char`: every `i8` pointer of the API is a C string.
        "i8" => "char",
        "u16" => "uint16_t",
        "i32" => "int32_t",
        "u32" => "uint32_t",
        "usize" => "size_t",
        "AicpuArgsEx" => "rtAicpuArgsEx_t",
        "LoadBinaryConfig" => "rtLoadBinaryConfig_t",
        "KernelLaunchCfg" => "rtKernelLaunchCfg_t",
        "CpuKernelArgs" => "rtCpuKernelArgs_t",
        "SimStats" => "SimStats",
        other => panic!("no C spelling for the Rust type {other:?} (in {rust:?})"),
    }
    .to_owned()
}

/// A check that the header's `symbol` has the binding's type `T`: `T`
/// spelled in C, and `symbol` assigned to a pointer of that type.
fn prototype<T>(out: &mut String, symbol: &CStr) {
    let rust = std::any::type_name::<T>();
    let sig = rust
        .strip_prefix("unsafe extern \"C\" fn(")
        .unwrap_or_else(|| panic!("{rust} is not an unsafe extern \"C\" fn"));
    let (params, ret) = match sig.split_once(") -> ") {
        Some((params, ret)) => (params, ret),
        None => (sig.strip_suffix(')').expect("a closing parenthesis"), "()"),
    };
    let params: Vec<String> = if params.trim().is_empty() {
        vec!["void".to_owned()]
    } else {
        params.split(',').map(c_type).collect()
    };
    let name = symbol.to_str().unwrap();
    writeln!(
        out,
        "    {ret} (*check_{name})({params}) = {name};\n    (void)check_{name};",
        ret = c_type(ret),
        params = params.join(", ")
    )
    .unwrap();
}

/// The binary-handle path's structs.
fn rts_layouts(c: &mut String) {
    let o = LoadBinaryOption::default();
    layout(
        c,
        "rtLoadBinaryOption_t",
        size_of::<LoadBinaryOption>(),
        &[
            ("optionId", offset_of!(LoadBinaryOption, option_id), 4),
            (
                "value",
                offset_of!(LoadBinaryOption, value),
                size_of_val(&o.value),
            ),
            (
                "value.cpuKernelMode",
                offset_of!(LoadBinaryOption, value),
                4,
            ),
        ],
    );
    layout(
        c,
        "rtLoadBinaryConfig_t",
        size_of::<LoadBinaryConfig>(),
        &[
            ("options", offset_of!(LoadBinaryConfig, options), 8),
            ("numOpt", offset_of!(LoadBinaryConfig, num_opt), 8),
        ],
    );
    let a = LaunchKernelAttr::default();
    layout(
        c,
        "rtLaunchKernelAttr_t",
        size_of::<LaunchKernelAttr>(),
        &[
            ("id", offset_of!(LaunchKernelAttr, id), 4),
            (
                "value",
                offset_of!(LaunchKernelAttr, value),
                size_of_val(&a.value),
            ),
        ],
    );
    layout(
        c,
        "rtKernelLaunchCfg_t",
        size_of::<KernelLaunchCfg>(),
        &[
            ("attrs", offset_of!(KernelLaunchCfg, attrs), 8),
            ("numAttrs", offset_of!(KernelLaunchCfg, num_attrs), 8),
        ],
    );
    let k = CpuKernelArgs::default();
    layout(
        c,
        "rtCpuKernelArgs_t",
        size_of::<CpuKernelArgs>(),
        &[
            (
                "baseArgs",
                offset_of!(CpuKernelArgs, base_args),
                size_of::<AicpuArgsEx>(),
            ),
            (
                "cpuParamHeadOffset",
                offset_of!(CpuKernelArgs, cpu_param_head_offset),
                size_of_val(&k.cpu_param_head_offset),
            ),
            ("rsv", offset_of!(CpuKernelArgs, rsv), size_of_val(&k.rsv)),
        ],
    );
}

fn generated() -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdint.h>\n#include \"simpler_cann_sim.h\"\n\n",
    );
    let a = AicpuArgsEx::default();
    layout(
        &mut c,
        "rtAicpuArgsEx_t",
        size_of::<AicpuArgsEx>(),
        &[
            ("args", offset_of!(AicpuArgsEx, args), size_of_val(&a.args)),
            (
                "hostInputInfoPtr",
                offset_of!(AicpuArgsEx, host_input_info_ptr),
                size_of_val(&a.host_input_info_ptr),
            ),
            (
                "kernelOffsetInfoPtr",
                offset_of!(AicpuArgsEx, kernel_offset_info_ptr),
                size_of_val(&a.kernel_offset_info_ptr),
            ),
            (
                "argsSize",
                offset_of!(AicpuArgsEx, args_size),
                size_of_val(&a.args_size),
            ),
            (
                "hostInputInfoNum",
                offset_of!(AicpuArgsEx, host_input_info_num),
                size_of_val(&a.host_input_info_num),
            ),
            (
                "kernelOffsetInfoNum",
                offset_of!(AicpuArgsEx, kernel_offset_info_num),
                size_of_val(&a.kernel_offset_info_num),
            ),
            (
                "soNameAddrOffset",
                offset_of!(AicpuArgsEx, so_name_addr_offset),
                size_of_val(&a.so_name_addr_offset),
            ),
            (
                "kernelNameAddrOffset",
                offset_of!(AicpuArgsEx, kernel_name_addr_offset),
                size_of_val(&a.kernel_name_addr_offset),
            ),
            (
                "isNoNeedH2DCopy",
                offset_of!(AicpuArgsEx, is_no_need_h2d_copy),
                size_of_val(&a.is_no_need_h2d_copy),
            ),
            (
                "timeout",
                offset_of!(AicpuArgsEx, timeout),
                size_of_val(&a.timeout),
            ),
            (
                "reserved",
                offset_of!(AicpuArgsEx, reserved),
                size_of_val(&a.reserved),
            ),
        ],
    );
    let s = SimStats::default();
    macro_rules! stats_fields {
        ($($field:ident),* $(,)?) => {
            [$((stringify!($field), offset_of!(SimStats, $field), size_of_val(&s.$field))),*]
        };
    }
    layout(
        &mut c,
        "SimStats",
        size_of::<SimStats>(),
        &stats_fields!(
            size,
            device_machine,
            live_bytes,
            peak_bytes,
            live_allocations,
            launches_aicpu,
            launches_kfc,
            launches_other,
            kfc_calls,
            dispatcher_saves,
            dlopens,
            device_restarts,
            binaries_live,
            functions_live,
            binary_loads,
            launches_cpu_kernel,
        ),
    );

    for code in [
        codes::ACL_SUCCESS,
        codes::ACL_ERROR_REPEAT_INITIALIZE,
        codes::ACL_ERROR_RT_PARAM_INVALID,
        codes::ACL_ERROR_RT_INVALID_DEVICEID,
        codes::ACL_ERROR_RT_CONTEXT_NULL,
        codes::ACL_ERROR_RT_DEVICE_TASK_ABORT,
        codes::ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
        codes::ACL_ERROR_RT_MEMORY_ALLOCATION,
        codes::ACL_ERROR_RT_INTERNAL_ERROR,
        codes::ACL_ERROR_RT_AICPU_TIMEOUT,
        codes::ACL_ERROR_RT_AICPU_EXCEPTION,
        codes::ACL_ERROR_RT_STREAM_SYNC_TIMEOUT,
        codes::ACL_ERROR_RT_DRV_INTERNAL_ERROR,
    ] {
        let name = name(code).expect("a named code");
        writeln!(c, "_Static_assert({name} == {code}, \"{name}\");").unwrap();
    }
    rts_layouts(&mut c);
    for (name, value) in [
        ("KERNEL_TYPE_AICPU", KERNEL_TYPE_AICPU),
        (
            "RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE",
            RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE,
        ),
        ("KERNEL_TYPE_AICPU_KFC", KERNEL_TYPE_AICPU_KFC),
        ("ACL_MEMCPY_HOST_TO_HOST", memcpy_kind::HOST_TO_HOST),
        ("ACL_MEMCPY_HOST_TO_DEVICE", memcpy_kind::HOST_TO_DEVICE),
        ("ACL_MEMCPY_DEVICE_TO_HOST", memcpy_kind::DEVICE_TO_HOST),
        ("ACL_MEMCPY_DEVICE_TO_DEVICE", memcpy_kind::DEVICE_TO_DEVICE),
        ("ACL_MEM_MALLOC_HUGE_FIRST", ACL_MEM_MALLOC_HUGE_FIRST),
    ] {
        writeln!(c, "_Static_assert({name} == {value}, \"{name}\");").unwrap();
    }
    // The enums are passed as the binding's u32.
    for e in ["aclrtMemcpyKind", "aclrtMemMallocPolicy"] {
        writeln!(
            c,
            "_Static_assert(sizeof({e}) == sizeof(uint32_t), \"{e}\");"
        )
        .unwrap();
    }

    c.push_str("\nvoid simpler_header_check(void);\nvoid simpler_header_check(void)\n{\n");
    prototype::<sys::AclInit>(&mut c, symbols::ACL_INIT);
    prototype::<sys::Finalize>(&mut c, symbols::FINALIZE);
    prototype::<sys::GetDeviceCount>(&mut c, symbols::GET_DEVICE_COUNT);
    prototype::<sys::SetDevice>(&mut c, symbols::SET_DEVICE);
    prototype::<sys::ResetDevice>(&mut c, symbols::RESET_DEVICE);
    prototype::<sys::CreateStream>(&mut c, symbols::CREATE_STREAM);
    prototype::<sys::DestroyStream>(&mut c, symbols::DESTROY_STREAM);
    prototype::<sys::SyncStreamNoTimeout>(&mut c, symbols::SYNC_STREAM_NO_TIMEOUT);
    prototype::<sys::SyncStream>(&mut c, symbols::SYNC_STREAM);
    prototype::<sys::Malloc>(&mut c, symbols::MALLOC);
    prototype::<sys::Free>(&mut c, symbols::FREE);
    prototype::<sys::Memcpy>(&mut c, symbols::MEMCPY);
    prototype::<sys::RecentErrMsg>(&mut c, symbols::RECENT_ERR_MSG);
    prototype::<sys::Launch>(&mut c, symbols::LAUNCH);
    prototype::<sys::SimGetStats>(&mut c, symbols::SIM_GET_STATS);
    prototype::<sys::SimDeviceMachine>(&mut c, symbols::SIM_DEVICE_MACHINE);
    prototype::<sys::SimPing>(&mut c, symbols::SIM_PING);
    prototype::<sys::BinaryLoadFromFile>(&mut c, symbols::BINARY_LOAD_FROM_FILE);
    prototype::<sys::BinaryUnload>(&mut c, symbols::BINARY_UNLOAD);
    prototype::<sys::FuncGetByName>(&mut c, symbols::FUNC_GET_BY_NAME);
    prototype::<sys::LaunchCpuKernel>(&mut c, symbols::LAUNCH_CPU_KERNEL);
    c.push_str("}\n");
    c
}

#[test]
fn the_header_matches_the_rust_layouts_and_the_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("header_check.c");
    let text = generated();
    std::fs::write(&src, &text).unwrap();
    println!("{text}");
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let include = format!("-I{}", include.display());
    cc(
        &[
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Werror=incompatible-pointer-types",
            &include,
            "-c",
            "-o",
        ],
        &tmp.path().join("header_check.o"),
        &[&src],
        &[],
    );
}
