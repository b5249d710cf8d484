//! Type-2 launches, as CANN's AICPU scheduler serves them
//! (`aicpu_sched/aicpu_processer/ae_kernel_lib_aicpu.cc`,
//! `ae_so_manager.cc`): the SO and kernel names are checked, the SO named
//! in the argument block is opened from the preinstall directory once with
//! `RTLD_LAZY | RTLD_GLOBAL` and cached by name (never read again, even if
//! the file changes), and the named kernel runs on `blockDim` AICPU
//! threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use libloading::os::unix::Library;
use simpler_abi::launch::{is_valid_kernel_name, is_valid_so_name, KERNEL_NAME_MAX, SO_NAME_MAX};

use crate::ffi::{self, Binding, Kernel};
use crate::launch::{Outcome, Ready, Shape};
use crate::log;

/// The AICPU scheduler of this device process: the kernel SOs opened so
/// far, by file name, never closed, as on hardware. Kernels resolved in
/// them are remembered too, so a launch of a known kernel costs no symbol
/// lookup and no allocation.
pub struct Scheduler {
    /// `<root>/device<N>/preinstall`.
    preinstall: PathBuf,
    libraries: Mutex<HashMap<String, &'static Library>>,
    kernels: Mutex<Vec<Known>>,
}

/// A kernel resolved before.
struct Known {
    so: Box<str>,
    kernel: Box<str>,
    func: Kernel,
    /// `so:kernel`, for messages (kept for the process's life, like the
    /// SO).
    label: &'static str,
}

impl Scheduler {
    /// A scheduler opening SOs from `preinstall`.
    pub fn new(preinstall: PathBuf) -> Self {
        Self {
            preinstall,
            libraries: Mutex::default(),
            kernels: Mutex::default(),
        }
    }

    /// Resolves `kernel` in the preinstalled `so`, opening it on first use.
    /// The names are checked first, as CANN's scheduler checks them
    /// before it looks at any file.
    fn resolve(&self, so: &str, kernel: &str, outcome: &mut Outcome) -> Result<Kernel, String> {
        if !is_valid_so_name(so.as_bytes()) {
            return Err(format!(
                "so name {so:?} is invalid: the AICPU scheduler takes 1 to {SO_NAME_MAX} \
                 characters of [A-Za-z0-9-_.]"
            ));
        }
        if !is_valid_kernel_name(kernel.as_bytes()) {
            return Err(format!(
                "kernel name {:?} ({} bytes) is invalid: the AICPU scheduler takes 1 to \
                 {KERNEL_NAME_MAX} bytes",
                kernel.chars().take(KERNEL_NAME_MAX + 8).collect::<String>(),
                kernel.len()
            ));
        }
        let mut cache = self.libraries.lock().unwrap_or_else(|e| e.into_inner());
        let library = match cache.get(so) {
            Some(library) => *library,
            None => {
                let path = self.preinstall.join(so);
                outcome.dlopens += 1;
                // Loading a kernel SO runs its initialisers; that is
                // precisely what the AICPU scheduler does with preinstalled
                // SOs.
                let library = ffi::open(&path, Binding::Scheduler)
                    .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
                log::note(log::INFO, &format!("loaded {}", path.display()));
                cache.insert(so.to_owned(), library);
                library
            }
        };
        ffi::kernel(library, kernel).map_err(|e| format!("{so} has no kernel {kernel:?}: {e}"))
    }

    /// Prepares one type-2 launch: its kernel, resolved in its SO.
    pub fn prepare(&self, so: &str, kernel: &str) -> Result<Ready<Kernel>, Outcome> {
        let ready = |func, label, outcome| Ready {
            entry: func,
            shape: Shape::Blocks,
            label,
            outcome,
        };
        let mut known = self.kernels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = known.iter().find(|k| &*k.so == so && &*k.kernel == kernel) {
            return Ok(ready(k.func, k.label, Outcome::default()));
        }
        drop(known);
        let mut outcome = Outcome::default();
        let func = match self.resolve(so, kernel, &mut outcome) {
            Ok(func) => func,
            Err(why) => return Err(outcome.exception(why)),
        };
        let label: &'static str = Box::leak(format!("{so}:{kernel}").into_boxed_str());
        known = self.kernels.lock().unwrap_or_else(|e| e.into_inner());
        if !known.iter().any(|k| &*k.so == so && &*k.kernel == kernel) {
            known.push(Known {
                so: so.into(),
                kernel: kernel.into(),
                func,
                label,
            });
        }
        Ok(ready(func, label, outcome))
    }
}
