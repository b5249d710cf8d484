//! The device process's command line: what the host library tells a
//! `simpler-sim-aicpu` when it starts one. Written by [`DeviceCommand::to_args`]
//! and read back by [`DeviceCommand::parse`], so each flag is spelled once.
//!
//! The descriptors are inherited: the library clears their close-on-exec
//! flag in the child, and the device process takes ownership of them.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::path::PathBuf;

const DEVICE: &str = "--device";
const MEM_FD: &str = "--mem-fd";
const CTL_FD: &str = "--ctl-fd";
const BELL_FD: &str = "--bell-fd";
const BASE: &str = "--base";
const SIZE: &str = "--size";
const ROOT: &str = "--root";
const THREADS: &str = "--threads";
const FAIL_DISPATCHER_WRITE: &str = "--fail-dispatcher-write";
const OLD_CANN: &str = "--old-cann";
const KILL_DURING_WRITE: &str = "--kill-during-write";
const SPIN_US: &str = "--spin-us";

/// Everything a device process is started with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCommand {
    /// Logical device id (first on the command line, so `pgrep -f
    /// 'simpler-sim-aicpu --device N'` finds the process).
    pub device: u32,
    /// The memfd of the device's memory.
    pub mem_fd: RawFd,
    /// The device's end of the control channel.
    pub ctl_fd: RawFd,
    /// The host's doorbell (an eventfd).
    pub bell_fd: RawFd,
    /// Address the device memory is mapped at.
    pub base: u64,
    /// Bytes of device memory.
    pub size: u64,
    /// The device's directory, `<root>/device<N>` (see [`crate::layout`]).
    pub device_dir: PathBuf,
    /// AICPU worker threads (at least 1).
    pub threads: u32,
    /// Make the dispatcher's file writes fail (`SIMPLER_SIM_FAIL_DISPATCHER_WRITE`).
    pub fail_dispatcher_write: bool,
    /// Serve KFC launches as a CANN whose `libaicpu_extend_kernels` lacks
    /// the KFC entry (`SIMPLER_SIM_OLD_CANN`).
    pub old_cann: bool,
    /// Kill the device process once a temp file the dispatcher writes has
    /// reached this many bytes (`SIMPLER_SIM_KILL_DURING_WRITE`).
    pub kill_during_write: Option<u64>,
    /// Microseconds an AICPU worker that just finished work spins for more
    /// before it sleeps (`SIMPLER_SIM_SPIN_US`; 0 sleeps at once).
    pub spin_us: u32,
}

impl DeviceCommand {
    /// The arguments after the program name.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::with_capacity(22);
        let mut flag = |name: &str, value: OsString| {
            args.push(name.into());
            args.push(value);
        };
        flag(DEVICE, self.device.to_string().into());
        flag(MEM_FD, self.mem_fd.to_string().into());
        flag(CTL_FD, self.ctl_fd.to_string().into());
        flag(BELL_FD, self.bell_fd.to_string().into());
        flag(BASE, format!("{:#x}", self.base).into());
        flag(SIZE, self.size.to_string().into());
        flag(ROOT, self.device_dir.clone().into_os_string());
        flag(THREADS, self.threads.to_string().into());
        flag(SPIN_US, self.spin_us.to_string().into());
        if self.fail_dispatcher_write {
            args.push(FAIL_DISPATCHER_WRITE.into());
        }
        if self.old_cann {
            args.push(OLD_CANN.into());
        }
        if let Some(bytes) = self.kill_during_write {
            args.push(KILL_DURING_WRITE.into());
            args.push(bytes.to_string().into());
        }
        args
    }

    /// Reads the arguments after the program name; the message says which
    /// one is missing or malformed. Numbers are decimal or `0x` hex.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut args = args.into_iter();
        let mut values: HashMap<String, OsString> = HashMap::new();
        let mut fail_dispatcher_write = false;
        let mut old_cann = false;
        while let Some(flag) = args.next() {
            let flag = flag.to_string_lossy().into_owned();
            if flag == FAIL_DISPATCHER_WRITE {
                fail_dispatcher_write = true;
                continue;
            }
            if flag == OLD_CANN {
                old_cann = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            values.insert(flag, value);
        }
        let get = |name: &str| -> Result<&OsStr, String> {
            values
                .get(name)
                .map(OsString::as_os_str)
                .ok_or_else(|| format!("missing {name}"))
        };
        let num = |name: &str| -> Result<u64, String> {
            let text = get(name)?.to_string_lossy();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.map_err(|_| format!("{name} {text:?} is not a number"))
        };
        let small = |name: &str| -> Result<u32, String> {
            u32::try_from(num(name)?).map_err(|_| format!("{name} is too large"))
        };
        Ok(Self {
            device: small(DEVICE)?,
            mem_fd: small(MEM_FD)? as RawFd,
            ctl_fd: small(CTL_FD)? as RawFd,
            bell_fd: small(BELL_FD)? as RawFd,
            base: num(BASE)?,
            size: num(SIZE)?,
            device_dir: PathBuf::from(get(ROOT)?),
            threads: small(THREADS)?.max(1),
            spin_us: small(SPIN_US)?,
            fail_dispatcher_write,
            old_cann,
            kill_during_write: match values.contains_key(KILL_DURING_WRITE) {
                true => Some(num(KILL_DURING_WRITE)?),
                false => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> DeviceCommand {
        DeviceCommand {
            device: 3,
            mem_fd: 7,
            ctl_fd: 8,
            bell_fd: 9,
            base: 0x2300_0000_0000,
            size: 1 << 30,
            device_dir: PathBuf::from("/r/device3"),
            threads: 4,
            fail_dispatcher_write: false,
            old_cann: false,
            kill_during_write: None,
            spin_us: 50,
        }
    }

    #[test]
    fn the_command_line_reads_back_as_written() {
        let mut c = command();
        let args = c.to_args();
        assert_eq!(args[..2], [OsString::from("--device"), "3".into()]);
        assert!(args.contains(&"0x230000000000".into()));
        assert_eq!(DeviceCommand::parse(args), Ok(c.clone()));
        c.fail_dispatcher_write = true;
        assert_eq!(DeviceCommand::parse(c.to_args()), Ok(c.clone()));
        c.old_cann = true;
        assert_eq!(DeviceCommand::parse(c.to_args()), Ok(c.clone()));
        c.kill_during_write = Some(32 << 20);
        assert_eq!(DeviceCommand::parse(c.to_args()), Ok(c));
    }

    #[test]
    fn a_bad_command_line_names_the_flag() {
        let parse = |args: &[&str]| DeviceCommand::parse(args.iter().map(OsString::from));
        assert_eq!(parse(&["--device"]), Err("--device needs a value".into()));
        assert_eq!(parse(&[]), Err("missing --device".into()));
        let mut args: Vec<OsString> = command().to_args();
        let at = args.iter().position(|a| a == "--size").unwrap() + 1;
        args[at] = "lots".into();
        assert_eq!(
            DeviceCommand::parse(args.clone()),
            Err("--size \"lots\" is not a number".into())
        );
        args[1] = "0x100000000".into();
        assert_eq!(
            DeviceCommand::parse(args),
            Err("--device is too large".into())
        );
        let mut c = command();
        c.threads = 0;
        assert_eq!(DeviceCommand::parse(c.to_args()).unwrap().threads, 1);
    }
}
