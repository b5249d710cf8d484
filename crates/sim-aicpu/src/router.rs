//! The kernel types this device serves, as the engine's [`Router`]: the
//! names in each launch's argument block are read from device memory, and
//! the launch goes to the KFC server (type 5) or the AICPU scheduler
//! (type 2).

use std::borrow::Cow;

use simpler_abi::names::{KERNEL_TYPE_AICPU, KERNEL_TYPE_AICPU_KFC};
use simpler_sim_protocol::Request;

use crate::engine::Router;
use crate::ffi::Kernel;
use crate::kfc::Kfc;
use crate::launch::{Outcome, Ready};
use crate::memory::DeviceMemory;
use crate::scheduler::Scheduler;

/// Room for a so or kernel name read without allocating (the argument
/// block's name fields are 64 bytes; longer names take the slow path).
const NAME_BUF: usize = 128;

/// What a block of a launch calls.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    /// A type-2 kernel.
    Kernel(Kernel),
    /// The latched dispatcher's `DynTileFwkBackendKernelServerInit` (KFC).
    DispatcherInit(Kernel),
}

/// The device's kernel types over its memory.
pub struct Device {
    /// The device memory window.
    pub memory: DeviceMemory,
    /// Type 5.
    pub kfc: Kfc,
    /// Type 2.
    pub scheduler: Scheduler,
}

impl Device {
    fn name<'b>(
        &self,
        req: &Request,
        offset: u32,
        buf: &'b mut [u8; NAME_BUF],
    ) -> Option<Cow<'b, str>> {
        self.memory.read_name(
            req.args + u64::from(offset),
            u64::from(req.args_size.saturating_sub(offset)),
            buf,
        )
    }
}

impl Router for Device {
    type Entry = Call;

    fn prepare(&self, req: &Request) -> Result<Ready<Call>, Outcome> {
        let mut so_buf = [0u8; NAME_BUF];
        let mut kernel_buf = [0u8; NAME_BUF];
        let (Some(so), Some(kernel)) = (
            self.name(req, req.so_name_offset, &mut so_buf),
            self.name(req, req.kernel_name_offset, &mut kernel_buf),
        ) else {
            return Err(Outcome::default().exception(format!(
                "the so/kernel names at offsets {}/{} of the argument block at {:#x} are not NUL-terminated UTF-8",
                req.so_name_offset, req.kernel_name_offset, req.args
            )));
        };
        match req.kernel_type {
            KERNEL_TYPE_AICPU_KFC => self
                .kfc
                .prepare(&self.memory, &so, &kernel, req.args, req.args_size)
                .map(|ready| ready.map(Call::DispatcherInit)),
            KERNEL_TYPE_AICPU => self
                .scheduler
                .prepare(&so, &kernel)
                .map(|ready| ready.map(Call::Kernel)),
            // As CANN's AICPU processer finds no kernel library for it
            // (`ae_kernel_lib_manager.cc`).
            other => Err(Outcome::default().exception(format!(
                "Input param kernelType is invalid: {other} (no kernel library on the AICPU \
                 serves it; a registration whose opKernelLib is missing or unknown has \
                 KERNEL_TYPE_RESERVED)"
            ))),
        }
    }

    fn run(&self, entry: Call, arg: u64) -> u32 {
        match entry {
            Call::Kernel(kernel) => kernel.call(arg),
            Call::DispatcherInit(init) => self.kfc.call_init(init, arg),
        }
    }
}
