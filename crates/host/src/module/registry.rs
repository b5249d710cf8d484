//! The binary path's kernel registrations: one per (CANN instance,
//! device, SO fingerprint, kernel set) in the process, made by the first
//! module that needs it (concurrent builds wait for that one), shared by
//! every module alive that needs it, and unloaded when the last is
//! dropped. Never per launch or per runner.
//!
//! A registration is the JSON op descriptor CANN's binary loader reads
//! (`rtsBinaryLoadFromFile` in JSON-only mode: the SO is on the device
//! already, installed by the dispatcher) and one `rtsFuncGetByName` per
//! kernel. The descriptor is written to a private temporary file that is
//! deleted as soon as CANN has read it, on every path.

use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, TryLockError};

use serde_json::{Map, Value};
use simpler_abi::rts::{json, op_type_len, write_op_type};
use simpler_cann_sys::{BinaryCalls, RawBinary, RawFunc};

use crate::cann::Device;
use crate::error::Error;
use crate::single_flight::CacheStatus;

/// What the registration's CANN calls name as their context.
const CONTEXT: &str = "kernel registration";

/// (CANN instance, device, SO fingerprint, kernel names sorted).
type Key = (u64, i32, u64, Vec<String>);

struct Slot {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: Option<Loaded>,
    /// Live [`Registration`]s of this slot.
    users: usize,
}

struct Loaded {
    binary: RawBinary,
    /// In the order of the key's kernel names.
    funcs: Vec<RawFunc>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn slots() -> &'static Mutex<HashMap<Key, Arc<Slot>>> {
    static SLOTS: LazyLock<Mutex<HashMap<Key, Arc<Slot>>>> = LazyLock::new(Default::default);
    &SLOTS
}

/// A module's hold on a registration; the last one dropped unloads it.
pub(super) struct Registration {
    slot: Arc<Slot>,
    key: Key,
    device: Device,
    calls: BinaryCalls,
    /// The functions in the module's declaration order.
    funcs: Vec<RawFunc>,
}

impl Registration {
    pub(super) fn calls(&self) -> BinaryCalls {
        self.calls
    }

    pub(super) fn funcs(&self) -> &[RawFunc] {
        &self.funcs
    }
}

/// Holds the registration of `kernels` (declared order) of the SO with
/// `fingerprint`, installed on `device` as `so_name`, registering them
/// unless an equal module holds the registration already.
pub(super) fn acquire(
    device: &Device,
    calls: BinaryCalls,
    fingerprint: u64,
    so_name: &str,
    kernels: &[String],
) -> Result<(Registration, CacheStatus), Error> {
    let mut sorted = kernels.to_vec();
    sorted.sort();
    let key: Key = (
        device.cann().instance_id(),
        device.id(),
        fingerprint,
        sorted,
    );
    let slot = lock(slots())
        .entry(key.clone())
        .or_insert_with(|| {
            Arc::new(Slot {
                state: Mutex::new(State::default()),
            })
        })
        .clone();
    // Holding the slot's lock while loading makes concurrent builds of
    // equal modules wait for one registration, and keeps a load from
    // overlapping the unload of the registration before it.
    let (mut state, waited) = match slot.state.try_lock() {
        Ok(state) => (state, false),
        Err(TryLockError::Poisoned(p)) => (p.into_inner(), false),
        Err(TryLockError::WouldBlock) => (lock(&slot.state), true),
    };
    let status = match &state.loaded {
        Some(_) if waited => CacheStatus::Joined,
        Some(_) => CacheStatus::Hit,
        None => match load(device, &calls, fingerprint, so_name, &key.3) {
            Ok(loaded) => {
                state.loaded = Some(loaded);
                CacheStatus::Miss
            }
            Err(err) => {
                drop(state);
                release_slot(&key, &slot);
                return Err(err);
            }
        },
    };
    state.users += 1;
    let loaded = state.loaded.as_ref().expect("loaded above");
    let funcs = kernels
        .iter()
        .map(|k| {
            let i = key.3.binary_search(k).expect("the key lists every kernel");
            loaded.funcs[i]
        })
        .collect();
    drop(state);
    Ok((
        Registration {
            slot,
            key,
            device: device.clone(),
            calls,
            funcs,
        },
        status,
    ))
}

impl Drop for Registration {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.slot.state);
            state.users -= 1;
            if state.users == 0 {
                if let Some(loaded) = state.loaded.take() {
                    if let Err(err) = self.device.unload(&self.calls, loaded.binary, CONTEXT) {
                        tracing::warn!(device = self.device.id(), "{err}");
                    }
                }
            }
        }
        release_slot(&self.key, &self.slot);
    }
}

/// Drops the registry's entry for `key` unless someone else holds `slot`.
fn release_slot(key: &Key, slot: &Arc<Slot>) {
    let mut slots = lock(slots());
    // The map's and the caller's: nobody else can reach it (new holders
    // take it from the map, under this lock).
    if Arc::strong_count(slot) == 2 && lock(&slot.state).users == 0 {
        slots.remove(key);
    }
}

/// The JSON op descriptor registering `kernels` of the SO installed as
/// `so_name`: one member per kernel, keyed by its op type.
fn descriptor(kernels: &[String], fingerprint: u64, so_name: &str) -> Value {
    let mut ops = Map::new();
    for kernel in kernels {
        let mut info = Map::new();
        info.insert(json::FUNCTION_NAME.into(), kernel.as_str().into());
        info.insert(json::KERNEL_SO.into(), so_name.into());
        info.insert(json::OP_KERNEL_LIB.into(), json::AICPU_KERNEL.into());
        info.insert(json::ENGINE.into(), json::ENGINE_AICPU.into());
        info.insert(json::USER_DEFINED.into(), "False".into());
        let mut op = Map::new();
        op.insert(json::OP_INFO.into(), Value::Object(info));
        ops.insert(op_type(kernel, fingerprint), Value::Object(op));
    }
    Value::Object(ops)
}

/// `<kernel>_<fingerprint in hex>`.
fn op_type(kernel: &str, fingerprint: u64) -> String {
    let mut buf = vec![0u8; op_type_len(kernel.len())];
    let n = write_op_type(kernel, fingerprint, &mut buf);
    buf.truncate(n);
    String::from_utf8(buf).expect("a kernel name and hex digits")
}

/// Registers `kernels` (sorted) with CANN.
fn load(
    device: &Device,
    calls: &BinaryCalls,
    fingerprint: u64,
    so_name: &str,
    kernels: &[String],
) -> Result<Loaded, Error> {
    let text = serde_json::to_vec(&descriptor(kernels, fingerprint, so_name))
        .expect("a JSON value serialises");
    // Created exclusively with mode 0600 under a name no other process or
    // build picks; CANN reads the path with its extension replaced by
    // `.json`, which this one has already.
    let dir = std::env::temp_dir();
    let mut file = tempfile::Builder::new()
        .prefix(&format!("simpler-ops-{}-", std::process::id()))
        .suffix(".json")
        .tempfile_in(&dir)
        .map_err(|e| Error::write(&dir, e))?;
    file.write_all(&text)
        .and_then(|()| file.flush())
        .map_err(|e| Error::write(file.path(), e))?;
    let path = CString::new(file.path().as_os_str().as_bytes())
        .map_err(|_| Error::InvalidArgument(format!("{} has a NUL byte", dir.display())))?;
    let loaded = device.load_json(calls, &path, CONTEXT);
    // CANN has read it, whatever it returned: delete it now.
    let file_path = file.path().to_owned();
    if let Err(err) = file.close() {
        tracing::warn!("cannot delete {}: {err}", file_path.display());
    }
    let binary = loaded?;
    let mut funcs = Vec::with_capacity(kernels.len());
    for kernel in kernels {
        let name = CString::new(op_type(kernel, fingerprint)).expect("checked: no NUL");
        match device.function(calls, &binary, &name, CONTEXT) {
            Ok(func) => funcs.push(func),
            Err(err) => {
                if let Err(unload) = device.unload(calls, binary, CONTEXT) {
                    tracing::warn!(device = device.id(), "{unload}");
                }
                return Err(err.into());
            }
        }
    }
    Ok(Loaded { binary, funcs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_has_one_member_per_kernel_keyed_by_op_type() {
        let kernels = vec!["k_a".to_owned(), "k_b".to_owned()];
        let so = "simpler_inner_0123456789abcdef.so";
        let value = descriptor(&kernels, 0x0123_4567_89ab_cdef, so);
        let ops = value.as_object().unwrap();
        assert_eq!(ops.len(), 2);
        let info = &ops["k_a_0123456789abcdef"][json::OP_INFO];
        assert_eq!(info[json::FUNCTION_NAME], "k_a");
        assert_eq!(info[json::KERNEL_SO], so);
        assert_eq!(info[json::OP_KERNEL_LIB], json::AICPU_KERNEL);
        assert_eq!(info[json::ENGINE], json::ENGINE_AICPU);
        assert_eq!(info[json::USER_DEFINED], "False");
        assert_eq!(
            ops["k_b_0123456789abcdef"][json::OP_INFO][json::FUNCTION_NAME],
            "k_b"
        );
    }
}
