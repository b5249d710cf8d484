//! Type-2 launches, as CANN's AICPU scheduler serves them: the SO named in
//! the argument block is opened from the preinstall directory once and
//! cached by name, and the named kernel runs on `blockDim` AICPU threads.

use std::collections::HashMap;
use std::sync::Mutex;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::engine::{Entry, KernelFn, Ready};
use crate::log::{self, level};
use crate::{Context, Outcome};

/// Kernel SOs opened so far, by file name; never closed, as on hardware.
/// Kernels resolved in them are remembered too, so a launch of a known
/// kernel costs no symbol lookup and no allocation.
#[derive(Default)]
pub struct SoCache {
    libraries: Mutex<HashMap<String, &'static Library>>,
    kernels: Mutex<Vec<Known>>,
}

/// A kernel resolved before.
struct Known {
    so: Box<str>,
    kernel: Box<str>,
    func: KernelFn,
    /// `so:kernel`, for messages (kept for the process's life, like the
    /// SO).
    label: &'static str,
}

/// Resolves `kernel` in the preinstalled `so`, opening it on first use.
fn resolve(
    ctx: &Context,
    so: &str,
    kernel: &str,
    outcome: &mut Outcome,
) -> Result<KernelFn, String> {
    if so.is_empty() || so.contains('/') || so == "." || so == ".." {
        return Err(format!(
            "so name {so:?} is not a file name in the preinstall directory"
        ));
    }
    let mut cache = ctx
        .so_cache
        .libraries
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let library = match cache.get(so) {
        Some(library) => *library,
        None => {
            let path = ctx.preinstall.join(so);
            outcome.dlopens += 1;
            // SAFETY: loading a kernel SO runs its initialisers; that is
            // precisely what the AICPU scheduler does with preinstalled SOs.
            let library = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
                .map_err(|e| format!("cannot load {}: {e}", path.display()))?;
            log::note(level::INFO, &format!("loaded {}", path.display()));
            let library: &'static Library = Box::leak(Box::new(library));
            cache.insert(so.to_owned(), library);
            library
        }
    };
    // SAFETY: AICPU kernels have the KernelFn signature by contract; a
    // kernel that does not is the SO author's bug, as on hardware.
    let symbol = unsafe { library.get::<KernelFn>(kernel.as_bytes()) }
        .map_err(|e| format!("{so} has no kernel {kernel:?}: {e}"))?;
    Ok(*symbol)
}

/// Prepares one type-2 launch: its kernel, resolved in its SO.
pub fn prepare(ctx: &Context, so: &str, kernel: &str) -> Result<Ready, Outcome> {
    let mut known = ctx
        .so_cache
        .kernels
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(k) = known.iter().find(|k| &*k.so == so && &*k.kernel == kernel) {
        return Ok(Ready {
            entry: Entry::Kernel(k.func),
            label: k.label,
            outcome: Outcome::default(),
        });
    }
    drop(known);
    let mut outcome = Outcome::default();
    let func = match resolve(ctx, so, kernel, &mut outcome) {
        Ok(func) => func,
        Err(why) => return Err(outcome.exception(why)),
    };
    let label: &'static str = Box::leak(format!("{so}:{kernel}").into_boxed_str());
    known = ctx
        .so_cache
        .kernels
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if !known.iter().any(|k| &*k.so == so && &*k.kernel == kernel) {
        known.push(Known {
            so: so.into(),
            kernel: kernel.into(),
            func,
            label,
        });
    }
    Ok(Ready {
        entry: Entry::Kernel(func),
        label,
        outcome,
    })
}
