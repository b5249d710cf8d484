//! The handles behind the C ABI's opaque types, and their operations in
//! safe Rust. `ffi` turns C arguments into these calls.

// The C names of the handle types are the Rust names, so the generated
// header spells them as the ABI does.
#![allow(non_camel_case_types)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use simpler_host::{Cann, CannSource, DeviceBuffer, Kernel, LaunchPath, Module, Stream};

use crate::status::Failure;

/// A loaded CANN API (the simulator, given libraries, or a toolkit's).
pub struct simpler_cann {
    cann: Cann,
}

/// An AICPU SO installed on one device, with the kernels named when it
/// was loaded and the stream its launches run on.
pub struct simpler_module {
    module: Module,
    kernels: HashMap<String, Kernel>,
    /// One stream per module: launches on a module are serialised; load
    /// the same SO again for another stream (the install and the
    /// registration are shared).
    stream: Mutex<Stream>,
}

/// Device memory on one device, freed by `simpler_buffer_free`.
pub struct simpler_buffer {
    buffer: Mutex<DeviceBuffer>,
    device_addr: u64,
    len: usize,
}

impl simpler_cann {
    /// Loads `source` (or returns the instance already loaded from it).
    pub fn open(source: &CannSource) -> Result<Self, Failure> {
        Ok(Self {
            cann: Cann::load(source)?,
        })
    }

    /// The CANN API.
    pub fn cann(&self) -> &Cann {
        &self.cann
    }
}

/// `launch_path` of `simpler_module_load`: 0 = type2, 1 = binary.
pub fn launch_path(raw: i32) -> Result<LaunchPath, Failure> {
    match raw {
        0 => Ok(LaunchPath::Type2),
        1 => Ok(LaunchPath::Binary),
        other => Err(Failure::invalid(format!(
            "launch_path {other} is not a launch path: 0 = type2, 1 = binary"
        ))),
    }
}

/// What `simpler_module_load` needs, as Rust values.
pub struct ModuleRequest<'a> {
    /// The device id.
    pub device: i32,
    /// The AICPU SO.
    pub so: PathBuf,
    /// The dispatcher SO, `None` for the default one.
    pub dispatcher: Option<PathBuf>,
    /// The kernels that will be launched.
    pub kernels: Vec<&'a str>,
    /// The per-task launch path.
    pub launch_path: LaunchPath,
}

impl simpler_module {
    /// Installs the SO and resolves its kernels.
    pub fn load(cann: &simpler_cann, req: ModuleRequest<'_>) -> Result<Self, Failure> {
        if req.kernels.is_empty() {
            return Err(Failure::invalid(
                "no kernels were named: name each kernel the module will launch",
            ));
        }
        let mut builder = Module::builder(&cann.cann)
            .device(req.device)
            .so_path(req.so)
            .kernels(req.kernels.iter().copied())
            .launch_path(req.launch_path);
        if let Some(dispatcher) = req.dispatcher {
            builder = builder.dispatcher_path(dispatcher);
        }
        let module = builder.build()?;
        let kernels = req
            .kernels
            .iter()
            .map(|name| Ok(((*name).to_owned(), module.kernel(name)?)))
            .collect::<Result<HashMap<_, _>, Failure>>()?;
        let stream = Stream::new(module.device())?;
        Ok(Self {
            module,
            kernels,
            stream: Mutex::new(stream),
        })
    }

    /// The module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Launches `kernel` on `threads` AICPU threads with `payload` at the
    /// start of its argument block and waits for it (`None`: no limit).
    pub fn launch(
        &self,
        kernel: &str,
        threads: u32,
        payload: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Failure> {
        let kernel = self.kernels.get(kernel).ok_or_else(|| {
            let mut known: Vec<&str> = self.kernels.keys().map(String::as_str).collect();
            known.sort_unstable();
            Failure::invalid(format!(
                "kernel {kernel:?} was not named when the module was loaded (named: {})",
                known.join(", ")
            ))
        })?;
        if threads == 0 {
            return Err(Failure::invalid("threads must be at least 1"));
        }
        let mut stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        kernel.run(&mut stream, threads, payload, timeout)?;
        Ok(())
    }
}

impl simpler_buffer {
    /// Allocates `len` bytes on `device`.
    pub fn alloc(cann: &simpler_cann, device: i32, len: usize) -> Result<Self, Failure> {
        let device = cann.cann.open_device(device)?;
        let buffer = device.alloc(len)?;
        Ok(Self {
            device_addr: buffer.device_addr(),
            len: buffer.len(),
            buffer: Mutex::new(buffer),
        })
    }

    /// The device address.
    pub fn device_addr(&self) -> u64 {
        self.device_addr
    }

    /// Copies `src` to `offset`.
    pub fn write(&self, offset: usize, src: &[u8]) -> Result<(), Failure> {
        self.check(offset, src.len())?;
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.write_at(offset, src)?;
        Ok(())
    }

    /// Copies `dst.len()` bytes at `offset` to `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Failure> {
        self.check(offset, dst.len())?;
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        buffer.read_at(offset, dst)?;
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), Failure> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Failure::invalid(format!(
                "{len} bytes at offset {offset} do not fit in the {}-byte buffer",
                self.len
            ))),
        }
    }
}
