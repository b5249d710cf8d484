//! Device logging: the verbosity the host asks a runtime SO for, and the
//! ids of CANN's `DlogRecord(int moduleId, int level, const char *fmt, ...)`
//! that every device SO (and the simulator's device process) logs through.

use core::ffi::CStr;

/// Verbosity of a runtime SO's device log, sent in
/// [`InitArgs::log_level`](crate::InitArgs::log_level). A message is written
/// when its level is at most the latched one; values above 3 mean debug.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum LogLevel {
    /// Errors only.
    Error = 0,
    /// Errors and warnings.
    #[default]
    Warn = 1,
    /// Also progress messages.
    Info = 2,
    /// Everything.
    Debug = 3,
}

impl LogLevel {
    /// The level an `InitArgs::log_level` value stands for.
    pub const fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Error,
            1 => Self::Warn,
            2 => Self::Info,
            _ => Self::Debug,
        }
    }

    /// CANN's `DLOG_*` level id for messages of this level (CANN numbers
    /// them the other way round: debug is 0, error is 3).
    pub const fn dlog_level(self) -> i32 {
        match self {
            Self::Error => dlog::ERROR,
            Self::Warn => dlog::WARN,
            Self::Info => dlog::INFO,
            Self::Debug => dlog::DEBUG,
        }
    }
}

/// CANN's device log (`toolchain/log_types.h`): the symbol and its ids.
pub mod dlog {
    use super::CStr;

    /// The variadic logger the AICPU process has loaded; device SOs look it
    /// up at run time so that they also load where it is absent.
    pub const SYMBOL_C: &CStr = c"DlogRecord";
    /// `void DlogRecord(int moduleId, int level, const char *fmt, ...)`, the
    /// type [`SYMBOL_C`] is resolved as.
    pub type RecordFn = unsafe extern "C" fn(
        module_id: core::ffi::c_int,
        level: core::ffi::c_int,
        fmt: *const core::ffi::c_char,
        ...
    );
    /// `DLOG_DEBUG`.
    pub const DEBUG: i32 = 0;
    /// `DLOG_INFO`.
    pub const INFO: i32 = 1;
    /// `DLOG_WARN`.
    pub const WARN: i32 = 2;
    /// `DLOG_ERROR`.
    pub const ERROR: i32 = 3;
    /// `AICPU` (36): AICPU kernels. Both simpler SOs log under it — the
    /// dispatcher runs as a kernel of `libaicpu_extend_kernels`, the
    /// runtime SO's exports are kernels the scheduler calls — so a user
    /// filtering the device log for AICPU kernels sees them.
    pub const MODULE_AICPU: i32 = 36;
    /// `CCECPU` (25): CANN's AICPU scheduler itself ("aicpu schedule").
    /// simpler's SOs do not use it (they are not the scheduler); the
    /// simulator's device process logs its own scheduler messages under it.
    pub const MODULE_CCECPU: i32 = 25;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_map_to_cann_ids() {
        for level in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
        ] {
            assert_eq!(LogLevel::from_raw(level as u32), level);
            assert_eq!(level.dlog_level(), 3 - level as i32);
        }
        assert_eq!(LogLevel::from_raw(99), LogLevel::Debug);
    }
}
