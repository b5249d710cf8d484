//! Where the tests meet C: the two exports and the glue called with the
//! pointers the scheduler would pass, the batch memory those pointers name,
//! and the stand-in for CANN's `DlogRecord`.

use std::ffi::{c_char, c_int, CStr};
use std::mem::size_of;
use std::sync::Mutex;
use std::thread;

use simpler_aicpu::abi::work::WORK_MAGIC;
use simpler_aicpu::abi::{InitArgs, KernelArgs, Task, TaskStatus, WorkHeader, ABI_VERSION};
use simpler_aicpu::glue::{self, TaskCtx};
use simpler_aicpu::{simpler_aicpu_exec, simpler_aicpu_init};

use crate::common::addr;

/// `simpler_aicpu_init(&args)`.
pub fn init(args: &InitArgs) -> i32 {
    // SAFETY: a valid InitArgs.
    unsafe { simpler_aicpu_init(args) }
}

/// `simpler_aicpu_init(NULL)`.
pub fn init_null() -> i32 {
    // SAFETY: null is allowed.
    unsafe { simpler_aicpu_init(std::ptr::null()) }
}

/// `simpler_aicpu_exec(&args)`, where `args` names a live [`Batch`] or a
/// work description the runtime must refuse before touching any task.
pub fn exec(args: &KernelArgs) -> i32 {
    // SAFETY: `args` names a live batch (or is a bad one on purpose, which
    // the runtime must refuse).
    unsafe { simpler_aicpu_exec(args) }
}

/// `simpler_aicpu_exec(NULL)`.
pub fn exec_null() -> i32 {
    // SAFETY: null is allowed.
    unsafe { simpler_aicpu_exec(std::ptr::null()) }
}

/// `simpler_aicpu_exec` on the `KernelArgs` that starts `bytes`, at
/// whatever alignment `bytes` has; as [`exec`] for what it names.
pub fn exec_at(bytes: &[u8]) -> i32 {
    assert!(bytes.len() >= size_of::<KernelArgs>());
    // SAFETY: `bytes` holds a whole KernelArgs, which the runtime reads
    // without alignment; what it names is as for `exec`.
    unsafe { simpler_aicpu_exec(bytes.as_ptr().cast::<KernelArgs>()) }
}

/// `glue::exec(&args, run)`: a launch of another runtime SO; as [`exec`]
/// for what `args` names.
pub fn glue_exec(args: &KernelArgs, run: fn(&TaskCtx) -> Result<(), TaskStatus>) -> i32 {
    // SAFETY: as for `exec`.
    unsafe { glue::exec(args, run) }
}

/// A header, task array and status array, owned through raw pointers so
/// the runtime's writes never alias a Rust reference.
pub struct Batch {
    header: *mut WorkHeader,
    tasks: *mut [Task],
    statuses: *mut [u32],
}

impl Batch {
    /// A ready batch of `tasks`: magic, version, count and arrays set,
    /// counters and statuses zero.
    pub fn new(tasks: Vec<Task>) -> Self {
        let count = tasks.len();
        let tasks = Box::into_raw(tasks.into_boxed_slice());
        let statuses = Box::into_raw(vec![0u32; count].into_boxed_slice());
        let header = Box::into_raw(Box::new(WorkHeader {
            magic: WORK_MAGIC,
            abi_version: ABI_VERSION,
            task_count: u32::try_from(count).unwrap(),
            tasks: addr(tasks as *const Task),
            statuses: addr(statuses as *const u32),
            ..WorkHeader::default()
        }));
        Self {
            header,
            tasks,
            statuses,
        }
    }

    /// The header as it is now.
    pub fn header(&self) -> WorkHeader {
        // SAFETY: owned, live, and no launch is running.
        unsafe { self.header.read() }
    }

    /// Rewrites header fields (to build a bad batch).
    pub fn edit_header(&mut self, edit: impl FnOnce(&mut WorkHeader)) {
        // SAFETY: owned, live, and no launch is running.
        edit(unsafe { &mut *self.header });
    }

    /// `KernelArgs` naming this batch.
    pub fn args(&self) -> KernelArgs {
        KernelArgs {
            runtime_args: addr(self.header as *const WorkHeader),
            regs: 0,
        }
    }

    /// Calls `simpler_aicpu_exec` on `threads` threads at once, as a launch
    /// with blockDim `threads` does; the threads' return values.
    pub fn exec(&self, threads: usize) -> Vec<i32> {
        exec_on(self.args(), threads)
    }

    /// The decoded status words.
    pub fn statuses(&self) -> Vec<TaskStatus> {
        // SAFETY: owned, live, and no launch is running.
        let raw = unsafe { &*self.statuses };
        raw.iter()
            .map(|&s| TaskStatus::from_raw(s).unwrap_or_else(|| panic!("status word {s}")))
            .collect()
    }

    /// The status of task `i`.
    pub fn status(&self, i: usize) -> TaskStatus {
        self.statuses()[i]
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: each pointer came from Box::into_raw in `new` and is
        // freed exactly once, here.
        unsafe {
            drop(Box::from_raw(self.header));
            drop(Box::from_raw(self.tasks));
            drop(Box::from_raw(self.statuses));
        }
    }
}

/// `simpler_aicpu_exec(&args)` on `threads` threads at once.
pub fn exec_on(args: KernelArgs, threads: usize) -> Vec<i32> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(move || exec(&args))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// (module, level, text) of every `DlogRecord` call since the last take.
static LINES: Mutex<Vec<(c_int, c_int, String)>> = Mutex::new(Vec::new());

/// The lines logged since the last call.
pub fn take_dlog_lines() -> Vec<(c_int, c_int, String)> {
    std::mem::take(&mut *LINES.lock().unwrap())
}

/// The runtime calls this as `DlogRecord(module, level, "%s", text)`
/// through a variadic pointer; on the x86-64 and AArch64 Linux calling
/// conventions a variadic pointer argument travels exactly like a fourth
/// fixed one, so this non-variadic definition receives it.
///
/// # Safety
///
/// `fmt` and `text` are NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn DlogRecord(
    module: c_int,
    level: c_int,
    fmt: *const c_char,
    text: *const c_char,
) {
    // SAFETY: per this function's contract.
    let (fmt, text) = unsafe { (CStr::from_ptr(fmt), CStr::from_ptr(text)) };
    assert_eq!(fmt, c"%s", "messages must never be used as formats");
    let text = text.to_str().unwrap().to_owned();
    LINES.lock().unwrap().push((module, level, text));
}
