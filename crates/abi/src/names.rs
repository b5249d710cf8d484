//! Fixed names: kernel types, contract symbols, directories, NUL-terminated
//! 64-byte name fields.
//!
//! Each name that is passed to C is declared once as a `c"…"` literal
//! (`*_C`); its `&str` form is derived from it, so the two cannot drift.

use core::ffi::CStr;

/// The text of a name literal (`const` so that the `&str` forms below are
/// derived at compile time). Every literal of this module is ASCII.
pub const fn text(name: &'static CStr) -> &'static str {
    match core::str::from_utf8(name.to_bytes()) {
        Ok(text) => text,
        Err(_) => panic!("a fixed name is not UTF-8"),
    }
}

/// `KERNEL_TYPE_AICPU`: a launch the AICPU scheduler resolves by `so_name`
/// in its preinstall directory (Mode A type 2).
pub const KERNEL_TYPE_AICPU: u32 = 2;
/// `KERNEL_TYPE_AICPU_KFC`: a launch served by CANN's preinstalled
/// `libaicpu_extend_kernels.so` (the bootstrap).
pub const KERNEL_TYPE_AICPU_KFC: u32 = 5;

/// `so_name` of the bootstrap launch: CANN's preinstalled KFC server.
pub const KFC_SO_NAME_C: &CStr = c"libaicpu_extend_kernels.so";
/// [`KFC_SO_NAME_C`] as text.
pub const KFC_SO_NAME: &str = text(KFC_SO_NAME_C);
/// `kernel_name` of the bootstrap launch.
pub const KFC_KERNEL_NAME_C: &CStr = c"DynTileFwkKernelServerInit";
/// [`KFC_KERNEL_NAME_C`] as text.
pub const KFC_KERNEL_NAME: &str = text(KFC_KERNEL_NAME_C);
/// `opName` passed to `rtAicpuKernelLaunchExWithArgs` for the bootstrap.
pub const KFC_OP_NAME_C: &CStr = c"AST_DYN_AICPU";
/// [`KFC_OP_NAME_C`] as text.
pub const KFC_OP_NAME: &str = text(KFC_OP_NAME_C);

/// Dispatcher export called by `libaicpu_extend_kernels` to do the work.
pub const DISPATCHER_INIT_SYMBOL_C: &CStr = c"DynTileFwkBackendKernelServerInit";
/// [`DISPATCHER_INIT_SYMBOL_C`] as text.
pub const DISPATCHER_INIT_SYMBOL: &str = text(DISPATCHER_INIT_SYMBOL_C);
/// Dispatcher export required by `libaicpu_extend_kernels`; a stub.
pub const DISPATCHER_SERVER_SYMBOL_C: &CStr = c"DynTileFwkBackendKernelServer";
/// [`DISPATCHER_SERVER_SYMBOL_C`] as text.
pub const DISPATCHER_SERVER_SYMBOL: &str = text(DISPATCHER_SERVER_SYMBOL_C);
/// Dispatcher export required by `libaicpu_extend_kernels`; a stub.
pub const DISPATCHER_STATIC_SYMBOL_C: &CStr = c"StaticTileFwkBackendKernelServer";
/// [`DISPATCHER_STATIC_SYMBOL_C`] as text.
pub const DISPATCHER_STATIC_SYMBOL: &str = text(DISPATCHER_STATIC_SYMBOL_C);
/// Exactly the symbols a dispatcher SO exports, sorted.
pub const DISPATCHER_SYMBOLS: [&str; 3] = [
    DISPATCHER_SERVER_SYMBOL,
    DISPATCHER_INIT_SYMBOL,
    DISPATCHER_STATIC_SYMBOL,
];

/// Runtime SO export launched once per runner with [`crate::InitArgs`].
pub const RUNTIME_INIT_SYMBOL_C: &CStr = c"simpler_aicpu_init";
/// [`RUNTIME_INIT_SYMBOL_C`] as text.
pub const RUNTIME_INIT_SYMBOL: &str = text(RUNTIME_INIT_SYMBOL_C);
/// Runtime SO export launched per work batch with [`crate::KernelArgs`];
/// also the `opName` of per-task launches.
pub const RUNTIME_EXEC_SYMBOL_C: &CStr = c"simpler_aicpu_exec";
/// [`RUNTIME_EXEC_SYMBOL_C`] as text.
pub const RUNTIME_EXEC_SYMBOL: &str = text(RUNTIME_EXEC_SYMBOL_C);
/// Exactly the symbols a runtime SO exports, sorted.
pub const RUNTIME_SYMBOLS: [&str; 2] = [RUNTIME_EXEC_SYMBOL, RUNTIME_INIT_SYMBOL];

/// The AICPU scheduler's preinstall directory on a real device.
pub const DEFAULT_PREINSTALL_DIR: &str = "/usr/lib64/aicpu_kernels/0/aicpu_kernels_device";
/// Environment variable, read in the AICPU process, that overrides
/// [`DEFAULT_PREINSTALL_DIR`] (the simulator sets it per device).
pub const PREINSTALL_DIR_ENV_C: &CStr = c"SIMPLER_AICPU_PREINSTALL_DIR";
/// [`PREINSTALL_DIR_ENV_C`] as text.
pub const PREINSTALL_DIR_ENV: &str = text(PREINSTALL_DIR_ENV_C);

/// Environment variable, read in the AICPU process, that overrides
/// [`DEFAULT_TEMP_STALE_SECS`]: the age in whole seconds past which the
/// dispatcher removes a temp file of its own naming left in the preinstall
/// directory (decimal; anything else means the default).
pub const TEMP_STALE_SECS_ENV_C: &CStr = c"SIMPLER_AICPU_TEMP_STALE_SECS";
/// [`TEMP_STALE_SECS_ENV_C`] as text.
pub const TEMP_STALE_SECS_ENV: &str = text(TEMP_STALE_SECS_ENV_C);
/// Age in seconds past which a temp file of the dispatcher's naming counts
/// as left behind by a dead writer: a write takes seconds, so a live
/// writer on another die is never this far behind.
pub const DEFAULT_TEMP_STALE_SECS: u64 = 600;

/// Environment variable, read in the AICPU process: set to anything but
/// `0` or the empty string, a runtime SO on the glue adds a backtrace to
/// the device log line of every panic it contains.
pub const BACKTRACE_ENV_C: &CStr = c"SIMPLER_AICPU_BACKTRACE";
/// [`BACKTRACE_ENV_C`] as text.
pub const BACKTRACE_ENV: &str = text(BACKTRACE_ENV_C);

/// Prefix of every preinstalled runtime SO.
pub const PREINSTALL_PREFIX: &str = "simpler_inner_";
/// Suffix of every preinstalled runtime SO.
pub const PREINSTALL_SUFFIX: &str = ".so";
/// What follows the preinstall name in the name of the dispatcher's temp
/// file: `.<preinstall name>.tmp.<device id>.<pid>.<tid>.<seq>.<clock>.<random>`
/// (four decimal numbers, then two numbers of 16 lower-case hex digits).
pub const PREINSTALL_TEMP_INFIX: &str = ".tmp.";

/// Largest runtime SO the dispatcher accepts (and the host uploads).
pub const MAX_INNER_SO_LEN: u64 = 256 << 20;
/// Largest dispatcher SO the host uploads.
pub const MAX_DISPATCHER_SO_LEN: u64 = 16 << 20;

/// Width of every name field in the argument blocks.
pub const NAME_FIELD_LEN: usize = 64;

/// A NUL-padded 64-byte name field holding `name`.
///
/// Returns `None` when `name` does not fit with its terminating NUL or
/// contains a NUL itself.
pub const fn name_field(name: &str) -> Option<[u8; NAME_FIELD_LEN]> {
    let bytes = name.as_bytes();
    if bytes.len() >= NAME_FIELD_LEN {
        return None;
    }
    let mut out = [0u8; NAME_FIELD_LEN];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            return None;
        }
        out[i] = bytes[i];
        i += 1;
    }
    Some(out)
}

/// The text of a NUL-terminated name field, up to its first NUL; `None` when
/// the field has no NUL or the text is not UTF-8.
pub fn field_str(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0)?;
    core::str::from_utf8(&field[..end]).ok()
}

/// [`name_field`] for names known at compile time.
const fn fixed(name: &str) -> [u8; NAME_FIELD_LEN] {
    match name_field(name) {
        Some(field) => field,
        None => panic!("name does not fit a 64-byte field"),
    }
}

/// [`KFC_SO_NAME`] as a name field.
pub const KFC_SO_NAME_FIELD: [u8; NAME_FIELD_LEN] = fixed(KFC_SO_NAME);
/// [`KFC_KERNEL_NAME`] as a name field.
pub const KFC_KERNEL_NAME_FIELD: [u8; NAME_FIELD_LEN] = fixed(KFC_KERNEL_NAME);
/// [`RUNTIME_INIT_SYMBOL`] as a name field.
pub const RUNTIME_INIT_FIELD: [u8; NAME_FIELD_LEN] = fixed(RUNTIME_INIT_SYMBOL);
/// [`RUNTIME_EXEC_SYMBOL`] as a name field.
pub const RUNTIME_EXEC_FIELD: [u8; NAME_FIELD_LEN] = fixed(RUNTIME_EXEC_SYMBOL);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_lists_are_sorted() {
        assert!(DISPATCHER_SYMBOLS.is_sorted());
        assert!(RUNTIME_SYMBOLS.is_sorted());
    }

    #[test]
    fn name_field_round_trips_and_rejects_overflow() {
        let f = name_field("abc").unwrap();
        assert_eq!(field_str(&f), Some("abc"));
        assert!(name_field(&"x".repeat(63)).is_some());
        assert!(name_field(&"x".repeat(64)).is_none());
        assert!(name_field("a\0b").is_none());
        assert_eq!(KFC_OP_NAME, "AST_DYN_AICPU");
        assert_eq!(
            RUNTIME_EXEC_SYMBOL.len(),
            RUNTIME_EXEC_SYMBOL_C.count_bytes()
        );
        assert_eq!(field_str(&[b'a'; 64]), None);
    }
}
