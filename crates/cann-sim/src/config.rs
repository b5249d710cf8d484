//! The simulator's configuration, read from the environment when the
//! library state is created (first call, or `aclInit` after `aclFinalize`).

use std::path::PathBuf;

use simpler_abi::artifacts::files;
use simpler_sim_protocol::layout;

use crate::error::{AclError, AclResult};
use crate::sys;

/// Environment variable names, declared once in `simpler-abi`.
pub use simpler_abi::sim::env;

/// Largest number of simulated devices (their address windows must fit
/// below the 47-bit user address space).
pub const MAX_DEVICES: u32 = 16;
/// Address of device 0's memory in its device process.
pub const DEVICE_BASE: u64 = 0x2000_0000_0000;
/// Distance between two devices' windows; also the largest device memory.
pub const DEVICE_STRIDE: u64 = 1 << 40;

/// Parsed configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Root of the per-device filesystems.
    pub root: PathBuf,
    /// Number of devices `aclrtGetDeviceCount` reports.
    pub device_count: u32,
    /// AICPU threads per device process.
    pub aicpu_threads: u32,
    /// Bytes of device memory per device.
    pub device_mem: u64,
    /// Op timeout for launches that do not set their own.
    pub op_timeout_ms: u32,
    /// Device binary named by the environment, if any.
    pub aicpu_bin: Option<PathBuf>,
    /// Command prefix for the device process.
    pub launcher: Vec<String>,
    /// Fault injection.
    pub faults: FaultConfig,
    /// The kind of stack emulated where it differs from a current one.
    pub stack: StackConfig,
    /// Microseconds a waiting thread spins before it blocks: the host's
    /// reader of replies, a device worker that just finished work.
    pub spin_us: u32,
}

/// [`Config::spin_us`] when `SIMPLER_SIM_SPIN_US` is unset and the process
/// may run on more than one CPU: a little more than a wake-up of a thread
/// on an idle CPU costs (docs/simulator.md, "Waiting"). On one CPU a spin
/// only keeps the other side from running, so there it is 0, as CUDA's
/// automatic schedule spins only when there are CPUs to spare.
pub const DEFAULT_SPIN_US: u32 = 50;

/// The spin time when `SIMPLER_SIM_SPIN_US` is unset.
fn default_spin_us() -> u32 {
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => DEFAULT_SPIN_US,
        _ => 0,
    }
}

/// Stacks on which simpler's bootstrap cannot work, emulated so their
/// errors can be tested (`docs/simulator.md`, "Emulated stacks").
#[derive(Clone, Debug, Default)]
pub struct StackConfig {
    /// A CANN whose `libaicpu_extend_kernels` lacks the KFC entry: the KFC
    /// launch fails at its sync (in the device process).
    pub old_cann: bool,
    /// Task-scheduler firmware without the AICPU KFC feature: the KFC
    /// launch call is refused.
    pub no_kfc_firmware: bool,
}

/// Which calls fail on purpose (all counts 1-based, per host process).
#[derive(Clone, Debug, Default)]
pub struct FaultConfig {
    /// The Nth `aclrtMalloc` returns 207001.
    pub malloc: Option<u64>,
    /// The Nth `aclrtMemcpy` returns 507000.
    pub memcpy: Option<u64>,
    /// The Nth launch returns 507000.
    pub launch: Option<u64>,
    /// The Nth sync returns 507018.
    pub sync: Option<u64>,
    /// The dispatcher's file writes fail with `EFBIG`.
    pub dispatcher_write: bool,
    /// The device process dies at the Nth launch.
    pub kill_at_launch: Option<u64>,
    /// The device process dies once a temp file the dispatcher writes has
    /// reached this many bytes.
    pub kill_during_write: Option<u64>,
    /// The Nth `rtsBinaryLoadFromFile` returns 507000.
    pub binary_load: Option<u64>,
    /// The Nth `rtsFuncGetByName` returns 507000.
    pub func_get: Option<u64>,
}

fn var(name: &str) -> AclResult<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_owned())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(AclError::param(format!("{name} is not valid UTF-8")))
        }
    }
}

fn number(name: &str, min: u64, max: u64) -> AclResult<Option<u64>> {
    let Some(text) = var(name)? else {
        return Ok(None);
    };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    match parsed {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        Ok(n) => Err(AclError::param(format!(
            "{name}={n} is out of range ({min}..={max})"
        ))),
        Err(_) => Err(AclError::param(format!("{name}={text:?} is not a number"))),
    }
}

/// A `0`/`1` switch; unset or empty is off.
fn switch(name: &str) -> AclResult<bool> {
    match var(name)?.as_deref() {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(other) => Err(AclError::param(format!(
            "{name}={other:?}: expected 0 or 1"
        ))),
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> AclResult<Self> {
        let root = match var(env::ROOT)? {
            // Absolute, so logs, messages and the dispatcher's report name
            // real paths whatever the device process's working directory.
            Some(root) => std::path::absolute(&root).map_err(|e| {
                AclError::param(format!(
                    "{}={root:?} cannot be made absolute: {e}",
                    env::ROOT
                ))
            })?,
            None => std::env::temp_dir().join(format!("simpler-sim-{}", sys::uid())),
        };
        let launcher = var(env::AICPU_LAUNCHER)?
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(Self {
            root,
            device_count: number(env::DEVICE_COUNT, 1, MAX_DEVICES.into())?.unwrap_or(8) as u32,
            aicpu_threads: number(env::AICPU_THREADS, 1, 1024)?.unwrap_or(4) as u32,
            device_mem: number(env::DEVICE_MEM, 1 << 20, DEVICE_STRIDE)?.unwrap_or(1 << 30),
            op_timeout_ms: number(env::OP_TIMEOUT_MS, 1, u32::MAX.into())?.unwrap_or(60_000) as u32,
            aicpu_bin: var(env::AICPU_BIN)?.map(PathBuf::from),
            launcher,
            faults: FaultConfig {
                malloc: number(env::FAIL_MALLOC, 1, u64::MAX)?,
                memcpy: number(env::FAIL_MEMCPY, 1, u64::MAX)?,
                launch: number(env::FAIL_LAUNCH, 1, u64::MAX)?,
                sync: number(env::FAIL_SYNC, 1, u64::MAX)?,
                dispatcher_write: switch(env::FAIL_DISPATCHER_WRITE)?,
                kill_at_launch: number(env::KILL_AT_LAUNCH, 1, u64::MAX)?,
                kill_during_write: number(env::KILL_DURING_WRITE, 1, u64::MAX)?,
                binary_load: number(env::FAIL_BINARY_LOAD, 1, u64::MAX)?,
                func_get: number(env::FAIL_FUNC_GET, 1, u64::MAX)?,
            },
            stack: StackConfig {
                old_cann: switch(env::OLD_CANN)?,
                no_kfc_firmware: switch(env::NO_KFC_FIRMWARE)?,
            },
            spin_us: number(env::SPIN_US, 0, 1_000_000)?
                .map_or_else(default_spin_us, |us| us as u32),
        })
    }

    /// The device process binary: the configured one, else
    /// `simpler-sim-aicpu` next to this library.
    pub fn device_bin(&self) -> AclResult<PathBuf> {
        if let Some(bin) = &self.aicpu_bin {
            return Ok(bin.clone());
        }
        let lib = sys::own_library_path().ok_or_else(|| {
            AclError::new(
                crate::error::ACL_ERROR_RT_INTERNAL_ERROR,
                format!(
                    "cannot locate this library to find {} next to it; set {}",
                    files::SIM_DEVICE_BIN,
                    env::AICPU_BIN
                ),
            )
        })?;
        Ok(lib.with_file_name(files::SIM_DEVICE_BIN))
    }

    /// `<root>/device<N>`.
    pub fn device_dir(&self, device: u32) -> PathBuf {
        layout::device_dir(&self.root, device)
    }
}
