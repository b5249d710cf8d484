//! The binary-handle path's registry: what `rtsBinaryLoadFromFile`
//! registers from a JSON op descriptor, the function handles
//! `rtsFuncGetByName` hands out, and the checks `rtsLaunchCpuKernel` makes
//! of a function handle. Safe Rust on plain values; `ffi` reads the C
//! structs and `sim` holds the registry under its lock.
//!
//! CANN's behaviour followed here (its open runtime,
//! `src/runtime/core/src/kernel/`): `binary_loader.cc` (load options, the
//! CPU kernel modes), `json_parse.cc` (which file is read, which members
//! register a kernel), `program.cc` (`RegisterCpuKernel`: a key registered
//! already is skipped), `program_common.cc` (`SetCpuKernelAttr`: the
//! kernel type from `opKernelLib`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::Value;
use simpler_abi::rts::{
    cpu_kernel_mode, json, LoadBinaryOption, RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE,
};

use crate::error::*;

/// `rtLoadBinaryOption` ids other than the CPU kernel mode.
const RT_LOAD_BINARY_OPT_LAZY_LOAD: u32 = 1;
const RT_LOAD_BINARY_OPT_MAGIC: u32 = 2;

/// `KERNEL_TYPE_RESERVED` of `rtKernelType_t` (`runtime/kernel.h`): the
/// type of a kernel whose `opKernelLib` CANN does not know. No kernel
/// library on the device serves it.
pub const KERNEL_TYPE_RESERVED: u32 = 99;

/// First binary handle; handles only need to be non-NULL and unique, and
/// are never reused, so a stale one is always recognised.
const BINARY_HANDLE_BASE: u64 = 0x4249_0000_0000;
/// First function handle (a range of its own, so a function handle passed
/// as a binary handle is recognised, and the other way round).
const FUNC_HANDLE_BASE: u64 = 0x4655_0000_0000;
/// Width of each handle range.
const HANDLE_RANGE: u64 = 1 << 40;

/// Handles handed out so far, per kind; process-wide and never reset, so
/// a handle from before `aclFinalize` cannot alias a later one.
static NEXT_BINARY: AtomicU64 = AtomicU64::new(0);
static NEXT_FUNC: AtomicU64 = AtomicU64::new(0);

/// One CPU kernel of a descriptor, as CANN registers it.
#[derive(Debug)]
pub struct CpuKernel {
    /// The member name: the op type `rtsFuncGetByName` looks up.
    pub op_type: String,
    /// `functionName`: the symbol the scheduler calls ("" when absent).
    pub function_name: String,
    /// `kernelSo`: the SO the scheduler opens ("" when absent).
    pub kernel_so: String,
    /// The kernel type `opKernelLib` gives ([`KERNEL_TYPE_RESERVED`] when
    /// absent or unknown).
    pub kernel_type: u32,
}

/// A descriptor's kernels, by op type.
type Kernels = BTreeMap<String, Arc<CpuKernel>>;
/// Members skipped at registration, with why.
type Skipped = Vec<(String, String)>;

/// A loaded binary.
#[derive(Debug)]
struct Binary {
    device: u32,
    /// The descriptor that was read.
    json: PathBuf,
    kernels: Kernels,
    /// Members CANN skips (a field of the wrong type), with why.
    skipped: Skipped,
    /// Function handles handed out, by op type (one per kernel, as CANN
    /// returns its one kernel object each time).
    functions: HashMap<String, u64>,
}

#[derive(Debug)]
struct Function {
    binary: u64,
    device: u32,
    kernel: Arc<CpuKernel>,
}

/// A function handle resolved for a launch.
#[derive(Debug)]
pub struct Resolved {
    /// The device the handle's binary was loaded on.
    pub device: u32,
    /// What was registered.
    pub kernel: Arc<CpuKernel>,
}

/// How `rtsBinaryLoadFromFile` was asked to load.
#[derive(Debug)]
pub enum LoadConfig {
    /// `optionalCfg` is NULL.
    None,
    /// `optionalCfg->options` is NULL.
    NullOptions,
    /// The options.
    Options(Vec<LoadBinaryOption>),
}

/// Every binary and function handle live in this host process.
#[derive(Debug, Default)]
pub struct Registry {
    binaries: HashMap<u64, Binary>,
    functions: HashMap<u64, Function>,
}

fn new_handle(next: &AtomicU64, base: u64) -> u64 {
    base + next.fetch_add(1, Ordering::Relaxed) + 1
}

fn in_range(handle: u64, base: u64) -> bool {
    (base..base + HANDLE_RANGE).contains(&handle)
}

impl Registry {
    /// Registers `parsed` (from [`read_descriptor`]) on `device`; returns
    /// the binary handle.
    pub fn insert(&mut self, device: u32, parsed: Descriptor) -> u64 {
        let handle = new_handle(&NEXT_BINARY, BINARY_HANDLE_BASE);
        self.binaries.insert(
            handle,
            Binary {
                device,
                json: parsed.path,
                kernels: parsed.kernels,
                skipped: parsed.skipped,
                functions: HashMap::new(),
            },
        );
        handle
    }

    fn binary(&self, handle: u64) -> AclResult<&Binary> {
        if handle == 0 {
            return Err(AclError::param("binHandle is NULL"));
        }
        self.binaries
            .get(&handle)
            .ok_or_else(|| stale_binary(handle))
    }

    /// `rtsFuncGetByName`: the function handle of `op_type` in `binary`.
    pub fn function(&mut self, binary: u64, op_type: &[u8]) -> AclResult<u64> {
        let bin = self.binary(binary)?;
        let name = String::from_utf8_lossy(op_type);
        let Some(kernel) = bin.kernels.get(name.as_ref()) else {
            return Err(unknown_op_type(bin, &name));
        };
        if let Some(&handle) = bin.functions.get(name.as_ref()) {
            return Ok(handle);
        }
        let kernel = Arc::clone(kernel);
        let device = bin.device;
        let handle = new_handle(&NEXT_FUNC, FUNC_HANDLE_BASE);
        self.functions.insert(
            handle,
            Function {
                binary,
                device,
                kernel,
            },
        );
        let bin = self.binaries.get_mut(&binary).expect("looked up above");
        bin.functions.insert(name.into_owned(), handle);
        Ok(handle)
    }

    /// `rtsBinaryUnload`: forgets `binary` and its function handles.
    pub fn unload(&mut self, binary: u64) -> AclResult<()> {
        self.binary(binary)?;
        let bin = self.binaries.remove(&binary).expect("looked up above");
        for handle in bin.functions.values() {
            self.functions.remove(handle);
        }
        Ok(())
    }

    /// The live function `handle`, for a launch.
    pub fn resolve(&self, handle: u64) -> AclResult<Resolved> {
        if handle == 0 {
            return Err(AclError::param("funcHandle is NULL"));
        }
        let f = self.functions.get(&handle).ok_or_else(|| {
            AclError::new(
                ACL_ERROR_RT_INVALID_HANDLE,
                if in_range(handle, FUNC_HANDLE_BASE) {
                    format!(
                        "function handle {handle:#x} is not live: its binary was unloaded, or \
                         its device was reset"
                    )
                } else if in_range(handle, BINARY_HANDLE_BASE) {
                    format!("{handle:#x} is a binary handle, not a function handle")
                } else {
                    format!("{handle:#x} is not a function handle")
                },
            )
        })?;
        debug_assert!(self.binaries.contains_key(&f.binary));
        Ok(Resolved {
            device: f.device,
            kernel: Arc::clone(&f.kernel),
        })
    }

    /// Forgets every handle of `device` (it was reset).
    pub fn drop_device(&mut self, device: u32) {
        self.binaries.retain(|_, b| b.device != device);
        self.functions.retain(|_, f| f.device != device);
    }

    /// Binary and function handles live on `device`.
    pub fn live(&self, device: u32) -> (u64, u64) {
        let binaries = self.binaries.values().filter(|b| b.device == device);
        let functions = self.functions.values().filter(|f| f.device == device);
        (binaries.count() as u64, functions.count() as u64)
    }
}

fn stale_binary(handle: u64) -> AclError {
    AclError::new(
        ACL_ERROR_RT_INVALID_HANDLE,
        if in_range(handle, BINARY_HANDLE_BASE) {
            format!(
                "binary handle {handle:#x} is not live: it was unloaded, or its device was reset"
            )
        } else if in_range(handle, FUNC_HANDLE_BASE) {
            format!("{handle:#x} is a function handle, not a binary handle")
        } else {
            format!("{handle:#x} is not a binary handle")
        },
    )
}

fn unknown_op_type(bin: &Binary, name: &str) -> AclError {
    let known: Vec<&str> = bin.kernels.keys().map(String::as_str).collect();
    let mut message = format!(
        "op type {name:?} is not registered by {} (registered: {})",
        bin.json.display(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    );
    if let Some(k) = bin.kernels.values().find(|k| k.function_name == name) {
        message.push_str(&format!(
            "; {name:?} is the functionName of op type {:?}: kernels are looked up by op type \
             (the member name)",
            k.op_type
        ));
    }
    if let Some((_, why)) = bin.skipped.iter().find(|(key, _)| key == name) {
        message.push_str(&format!("; {name:?} was skipped at load: {why}"));
    }
    AclError::param(message)
}

/// What the load options ask for; `Ok` only for a CPU kernel load in mode
/// 0 (JSON only), the one the simulator implements.
pub fn check_options(config: &LoadConfig) -> AclResult<()> {
    let options = match config {
        LoadConfig::None => &[][..],
        LoadConfig::NullOptions => {
            return Err(AclError::param(
                "optionalCfg is not NULL but optionalCfg->options is",
            ))
        }
        LoadConfig::Options(options) => options,
    };
    let mut mode = None;
    for (i, option) in options.iter().enumerate() {
        let value = option.value[0];
        match option.option_id {
            RT_LOAD_BINARY_OPT_LAZY_LOAD if value <= 1 => {}
            RT_LOAD_BINARY_OPT_LAZY_LOAD => {
                return Err(AclError::param(format!(
                    "options[{i}]: lazy load value {value} is invalid (0 or 1)"
                )))
            }
            RT_LOAD_BINARY_OPT_MAGIC => {
                return Err(AclError::param(format!(
                "options[{i}]: RT_LOAD_BINARY_OPT_MAGIC is not supported when loading from a file"
            )))
            }
            RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE => {
                let m = value as i32;
                if m != cpu_kernel_mode::JSON_ONLY && m != cpu_kernel_mode::SO_AND_JSON {
                    return Err(AclError::param(format!(
                        "options[{i}]: when the AI CPU operator binary is loaded from a file, \
                         cpuKernelMode {m} is invalid (0: load only the JSON file, 1: load the \
                         CPU SO and the JSON file)"
                    )));
                }
                mode = Some(m);
            }
            other => {
                return Err(AclError::param(format!(
                    "options[{i}]: unknown optionId {other} (valid: 1..=3)"
                )))
            }
        }
    }
    match mode {
        Some(cpu_kernel_mode::JSON_ONLY) => Ok(()),
        Some(_) => Err(AclError::new(
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
            "cpuKernelMode 1 (upload the SO with its JSON) is not supported by the simulator: \
             put the SO into the device's preinstall directory and load with cpuKernelMode 0",
        )),
        None => Err(AclError::new(
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT,
            "without RT_LOAD_BINARY_OPT_CPU_KERNEL_MODE the file is an AI Core binary, which \
             the simulator does not load",
        )),
    }
}

/// The descriptor CANN reads for `bin_path`: everything from the path's
/// last `.` (anywhere in the path, directories included) replaced by
/// `.json`; a path without a `.` gives `.json`.
pub fn descriptor_path(bin_path: &[u8]) -> PathBuf {
    let stem = match bin_path.iter().rposition(|&b| b == b'.') {
        Some(dot) => &bin_path[..dot],
        None => &[][..],
    };
    let mut path = stem.to_vec();
    path.extend_from_slice(b".json");
    PathBuf::from(OsStr::from_bytes(&path))
}

/// A parsed descriptor.
#[derive(Debug)]
pub struct Descriptor {
    path: PathBuf,
    kernels: Kernels,
    skipped: Skipped,
}

/// Reads and parses the descriptor of `bin_path` and collects its CPU
/// kernels as CANN does.
pub fn read_descriptor(bin_path: &[u8]) -> AclResult<Descriptor> {
    let json_path = descriptor_path(bin_path);
    let shown = String::from_utf8_lossy(bin_path);
    let real = std::fs::canonicalize(&json_path).map_err(|e| {
        AclError::param(format!(
            "cannot access the op descriptor {} (binPath {shown:?} with everything from its \
             last '.' replaced by \".json\"): {e}",
            json_path.display()
        ))
    })?;
    let bytes = std::fs::read(&real)
        .map_err(|e| AclError::param(format!("cannot read {}: {e}", real.display())))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AclError::param(format!("{} is not valid JSON: {e}", real.display())))?;
    let (kernels, skipped) = cpu_kernels(&value);
    Ok(Descriptor {
        path: real,
        kernels,
        skipped,
    })
}

/// The members of `top` that register a CPU kernel (`GetCpuKernelFromJson`
/// and `RegisterCpuKernel`), and those skipped because a field has the
/// wrong type.
fn cpu_kernels(top: &Value) -> (Kernels, Skipped) {
    // nlohmann's items(): an object's members, an array's elements keyed
    // by index; a scalar has no member that could hold opInfo.
    let items: Vec<(String, &Value)> = match top {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    let mut kernels = BTreeMap::new();
    let mut skipped = Vec::new();
    for (key, value) in items {
        let Some(op_info) = value.as_object().and_then(|o| o.get(json::OP_INFO)) else {
            continue;
        };
        match cpu_kernel(&key, op_info) {
            // A key seen already keeps its first registration.
            Ok(kernel) => {
                kernels.entry(key).or_insert_with(|| Arc::new(kernel));
            }
            Err(why) => skipped.push((key, why)),
        }
    }
    (kernels, skipped)
}

fn cpu_kernel(key: &str, op_info: &Value) -> Result<CpuKernel, String> {
    let field = |name: &str| -> Result<Option<String>, String> {
        match op_info.as_object().and_then(|o| o.get(name)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("{}.{name} is {other}, not a string", json::OP_INFO)),
        }
    };
    let function_name = field(json::FUNCTION_NAME)?.unwrap_or_default();
    let kernel_so = field(json::KERNEL_SO)?.unwrap_or_default();
    let op_kernel_lib = field(json::OP_KERNEL_LIB)?;
    let user_defined = field(json::USER_DEFINED)?.as_deref() == Some("True");
    let kernel_type = op_kernel_lib
        .as_deref()
        .and_then(|lib| json::kernel_type(lib, user_defined))
        .unwrap_or(KERNEL_TYPE_RESERVED);
    Ok(CpuKernel {
        op_type: key.to_owned(),
        function_name,
        kernel_so,
        kernel_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_is_the_path_up_to_its_last_dot_plus_json() {
        assert_eq!(descriptor_path(b"/a/k.o"), PathBuf::from("/a/k.json"));
        assert_eq!(
            descriptor_path(b"/a/k.tar.gz"),
            PathBuf::from("/a/k.tar.json")
        );
        assert_eq!(descriptor_path(b"/a.d/k"), PathBuf::from("/a.json"));
        assert_eq!(descriptor_path(b"k"), PathBuf::from(".json"));
    }

    #[test]
    fn members_with_op_info_register_kernels_keyed_by_member_name() {
        let v: Value = serde_json::from_str(
            r#"{
                "op_a": {"opInfo": {"functionName": "fa", "kernelSo": "a.so", "opKernelLib": "AICPUKernel"}},
                "op_b": {"opInfo": {"functionName": "fb", "opKernelLib": "Nope"}},
                "op_c": {"opInfo": {"functionName": 3}},
                "op_d": {"opInfo": {"opKernelLib": "AICPUKernel", "userDefined": "True"}},
                "no_info": {"x": 1},
                "scalar": 5
            }"#,
        )
        .unwrap();
        let (kernels, skipped) = cpu_kernels(&v);
        assert_eq!(kernels.keys().collect::<Vec<_>>(), ["op_a", "op_b", "op_d"]);
        assert_eq!(kernels["op_a"].function_name, "fa");
        assert_eq!(kernels["op_a"].kernel_so, "a.so");
        assert_eq!(kernels["op_a"].kernel_type, 2);
        assert_eq!(kernels["op_b"].kernel_type, KERNEL_TYPE_RESERVED);
        assert_eq!(kernels["op_b"].kernel_so, "");
        assert_eq!(kernels["op_d"].kernel_type, 4);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "op_c");
    }

    #[test]
    fn only_cpu_kernel_mode_0_loads() {
        let opts = |id, v| {
            LoadConfig::Options(vec![LoadBinaryOption {
                option_id: id,
                value: [v, 0, 0, 0],
            }])
        };
        assert!(check_options(&opts(3, 0)).is_ok());
        assert_eq!(
            check_options(&opts(3, 1)).unwrap_err().code,
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT
        );
        assert_eq!(
            check_options(&opts(3, 2)).unwrap_err().code,
            ACL_ERROR_RT_PARAM_INVALID
        );
        assert_eq!(
            check_options(&opts(2, 0)).unwrap_err().code,
            ACL_ERROR_RT_PARAM_INVALID
        );
        assert_eq!(
            check_options(&opts(9, 0)).unwrap_err().code,
            ACL_ERROR_RT_PARAM_INVALID
        );
        assert_eq!(
            check_options(&opts(1, 2)).unwrap_err().code,
            ACL_ERROR_RT_PARAM_INVALID
        );
        assert_eq!(
            check_options(&LoadConfig::NullOptions).unwrap_err().code,
            ACL_ERROR_RT_PARAM_INVALID
        );
        assert_eq!(
            check_options(&LoadConfig::None).unwrap_err().code,
            ACL_ERROR_RT_FEATURE_NOT_SUPPORT
        );
    }
}
