//! Type-2 launches, as CANN's AICPU scheduler serves them: the SO named in
//! the argument block is opened from the preinstall directory once and
//! cached by name, and the named kernel runs on `blockDim` AICPU threads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};

use crate::log::{self, level};
use crate::pool::{Finish, KernelFn};
use crate::{Context, Outcome};

/// Kernel SOs opened so far, by file name; never closed, as on hardware.
#[derive(Default)]
pub struct SoCache {
    libraries: Mutex<HashMap<String, &'static Library>>,
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

/// Runs one type-2 launch.
pub fn run(
    ctx: &Context,
    so: &str,
    kernel: &str,
    args: u64,
    block_dim: u32,
    timeout: Duration,
) -> Outcome {
    let mut outcome = Outcome::default();
    let func = match resolve(ctx, so, kernel, &mut outcome) {
        Ok(func) => func,
        Err(why) => return outcome.exception(why),
    };
    match ctx.pool.run(func, args, block_dim, timeout) {
        Finish::Done(failures) if failures.is_empty() => outcome,
        Finish::Done(failures) => {
            let shown: Vec<String> = failures
                .iter()
                .take(8)
                .map(|(block, rc)| format!("block {block} returned {rc}"))
                .collect();
            outcome.exception(format!(
                "{so}:{kernel} failed on {} of {block_dim} AICPU thread(s): {}",
                failures.len(),
                shown.join(", ")
            ))
        }
        Finish::TimedOut(left) => outcome.timeout(format!(
            "{so}:{kernel} exceeded the op timeout of {} ms with {left} of {block_dim} thread(s) unfinished",
            timeout.as_millis()
        )),
    }
}
