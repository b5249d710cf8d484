//! The C boundary of the exports: the launch payloads the scheduler hands
//! them, and the device memory the host's addresses name (the work
//! description and the operands of a task).
//!
//! This is where raw device addresses become memory accesses, so nearly all
//! of the crate's `unsafe` lives here. A device address is just a number to
//! the runtime; nothing can prove it valid. What can be checked is checked
//! before anything is dereferenced (null, alignment, magic, ABI version,
//! address-range overflow). Everything else rests on the host's side of the
//! contract written down in `docs/abi.md` ("What the host guarantees"):
//!
//! 1. `runtime_args` is 0 or the address of a [`WorkHeader`] that stays
//!    valid, and whose non-counter fields stay unchanged, for the launch;
//! 2. with `task_count > 0`, `tasks` and `statuses` address arrays of
//!    `task_count` entries that stay valid for the launch; the host does not
//!    write `tasks` during it and touches `statuses` and the counters only
//!    through the runtime;
//! 3. every non-zero operand address of a task is valid for reads and writes
//!    of the bytes its op touches (at most `len` from `dst`, `src0` and
//!    `src1`; 4 or 8 bytes at `dst` for the reductions);
//! 4. no byte written by one task of a batch is read or written by another
//!    task of the same batch (tasks run concurrently on different threads);
//! 5. a non-zero `KernelArgs::regs` is the address of a register block
//!    valid for reads of every element a runner of this SO reads from it,
//!    which nothing writes during the launch (every task shares it).
//!
//! Values the runtime shares between threads (`next_task`, `done`,
//! `failed` and each status word) are only ever accessed atomically here.

use std::marker::PhantomData;
use std::mem::{align_of, size_of};
use std::ptr::{addr_of, addr_of_mut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytemuck::Pod;
use simpler_abi::work::WORK_MAGIC;
use simpler_abi::{CustomOp, KernelArgs, Task, TaskStatus, WorkHeader, ABI_VERSION};

/// Copies a launch payload (`InitArgs`, `KernelArgs`) out of the argument
/// block; `None` for a null pointer. No alignment is required.
///
/// # Safety
///
/// `args` is null or valid for reading `size_of::<T>()` bytes.
pub(crate) unsafe fn read_payload<T: Pod>(args: *const T) -> Option<T> {
    if args.is_null() {
        return None;
    }
    // SAFETY: non-null and readable per the caller's contract; `T: Pod`
    // accepts any bit pattern and `read_unaligned` any alignment.
    Some(unsafe { args.read_unaligned() })
}

/// Why a work description was refused before any task ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// `runtime_args` is 0.
    Null,
    /// The header address is not 8-byte aligned.
    MisalignedHeader(u64),
    /// `magic` is not [`WORK_MAGIC`].
    BadMagic(u32),
    /// `abi_version` is not [`ABI_VERSION`].
    BadVersion(u32),
    /// `flags` is not 0.
    BadFlags(u32),
    /// `task_count > 0` and `tasks` is 0.
    NullTasks,
    /// `tasks` is not 8-byte aligned.
    MisalignedTasks(u64),
    /// `task_count > 0` and `statuses` is 0.
    NullStatuses,
    /// `statuses` is not 4-byte aligned.
    MisalignedStatuses(u64),
}

impl std::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Self::Null => write!(f, "runtime_args is 0"),
            Self::MisalignedHeader(a) => write!(f, "work header {a:#x} is not 8-byte aligned"),
            Self::BadMagic(m) => write!(
                f,
                "work header magic {m:#010x}, expected {WORK_MAGIC:#010x}"
            ),
            Self::BadVersion(v) => write!(
                f,
                "work header abi_version {v}, this runtime speaks {ABI_VERSION}"
            ),
            Self::BadFlags(x) => write!(f, "work header flags {x:#x}, expected 0"),
            Self::NullTasks => write!(f, "task_count > 0 but tasks is 0"),
            Self::MisalignedTasks(a) => write!(f, "task array {a:#x} is not 8-byte aligned"),
            Self::NullStatuses => write!(f, "task_count > 0 but statuses is 0"),
            Self::MisalignedStatuses(a) => write!(f, "status array {a:#x} is not 4-byte aligned"),
        }
    }
}

/// The `KernelArgs` of one thread's call of a launch, read from the
/// argument block together with the host's promise (contract items 1 to 5)
/// for the work description it names.
pub(crate) struct Launch {
    args: KernelArgs,
}

impl Launch {
    /// Copies the `KernelArgs` at `args`; `None` for a null pointer.
    ///
    /// # Safety
    ///
    /// `args` is null or valid for reading a [`KernelArgs`] (any alignment),
    /// and contract items 1 to 5 of the module docs hold for the work
    /// description its `runtime_args` names.
    pub(crate) unsafe fn read(args: *const KernelArgs) -> Option<Self> {
        // SAFETY: forwarded from this function's contract.
        unsafe { read_payload(args) }.map(|args| Self { args })
    }

    /// `KernelArgs::regs`.
    pub(crate) fn regs(&self) -> u64 {
        self.args.regs
    }

    /// Checks the work description this launch names.
    pub(crate) fn open(&self) -> Result<WorkView, HeaderError> {
        // SAFETY: `read`'s caller vouched for contract items 1 and 2.
        unsafe { WorkView::open(self.args.runtime_args) }
    }
}

/// A validated work description, as one thread of a launch sees it.
pub(crate) struct WorkView {
    header: *mut WorkHeader,
    task_count: u32,
    tasks: *const Task,
    statuses: *mut u32,
}

impl WorkView {
    /// Checks the header at `addr` and the arrays it names.
    ///
    /// # Safety
    ///
    /// Contract items 1 and 2 of the module docs hold for `addr`.
    unsafe fn open(addr: u64) -> Result<Self, HeaderError> {
        if addr == 0 {
            return Err(HeaderError::Null);
        }
        if !addr.is_multiple_of(align_of::<WorkHeader>() as u64) {
            return Err(HeaderError::MisalignedHeader(addr));
        }
        let header = addr as usize as *mut WorkHeader;
        // SAFETY: non-null, aligned, valid per contract item 1. Only the
        // fields nobody writes during the launch are read, one at a time,
        // so the concurrent atomic updates of the counters are not raced.
        let (magic, abi_version, task_count, flags, tasks, statuses) = unsafe {
            (
                addr_of!((*header).magic).read(),
                addr_of!((*header).abi_version).read(),
                addr_of!((*header).task_count).read(),
                addr_of!((*header).flags).read(),
                addr_of!((*header).tasks).read(),
                addr_of!((*header).statuses).read(),
            )
        };
        if magic != WORK_MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        if abi_version != ABI_VERSION {
            return Err(HeaderError::BadVersion(abi_version));
        }
        if flags != 0 {
            return Err(HeaderError::BadFlags(flags));
        }
        if task_count > 0 {
            if tasks == 0 {
                return Err(HeaderError::NullTasks);
            }
            if !tasks.is_multiple_of(align_of::<Task>() as u64) {
                return Err(HeaderError::MisalignedTasks(tasks));
            }
            if statuses == 0 {
                return Err(HeaderError::NullStatuses);
            }
            if !statuses.is_multiple_of(align_of::<AtomicU32>() as u64) {
                return Err(HeaderError::MisalignedStatuses(statuses));
            }
        }
        Ok(Self {
            header,
            task_count,
            tasks: tasks as usize as *const Task,
            statuses: statuses as usize as *mut u32,
        })
    }

    /// Claims the next unclaimed task, or `None` once all are claimed.
    pub(crate) fn claim(&self, regs: u64) -> Option<TaskCtx> {
        // SAFETY: `next_task` lies in the header, which `open` checked to be
        // 8-byte aligned (offset 32, so the field is too) and which stays
        // valid for the launch (contract item 1). Every access to it during
        // the launch is atomic: this one and those of the other threads.
        let next = unsafe { AtomicU64::from_ptr(addr_of_mut!((*self.header).next_task)) };
        // Relaxed: the counter only hands out distinct indices; the task
        // array is not written during the launch, so nothing to synchronise.
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= u64::from(self.task_count) {
            return None;
        }
        let index = index as u32;
        // SAFETY: index < task_count, `tasks` is non-null and 8-byte aligned
        // (checked in `open`) and holds task_count entries that nobody
        // writes during the launch (contract item 2).
        let task = unsafe { self.tasks.add(index as usize).read() };
        Some(TaskCtx {
            index,
            task,
            regs,
            _not_send: PhantomData,
        })
    }

    /// Publishes the outcome of task `index`: its status word, then the
    /// `done` (and, unless `Ok`, `failed`) counters.
    pub(crate) fn finish(&self, index: u32, status: TaskStatus) {
        debug_assert!(index < self.task_count);
        // SAFETY: index < task_count (it came from `claim`); `statuses` is
        // non-null and 4-byte aligned (checked in `open`) with task_count
        // entries valid for the launch (contract item 2); each word is
        // written by the one thread that claimed its task, atomically.
        let word = unsafe { AtomicU32::from_ptr(self.statuses.add(index as usize)) };
        word.store(status as u32, Ordering::Release);
        // SAFETY: as for `next_task` in `claim`: fields of the aligned,
        // valid header (offsets 40 and 44), accessed only atomically.
        let (done, failed) = unsafe {
            (
                AtomicU32::from_ptr(addr_of_mut!((*self.header).done)),
                AtomicU32::from_ptr(addr_of_mut!((*self.header).failed)),
            )
        };
        if status != TaskStatus::Ok {
            failed.fetch_add(1, Ordering::AcqRel);
        }
        done.fetch_add(1, Ordering::AcqRel);
    }
}

/// One claimed task, as a task runner receives it: a copy of the [`Task`]
/// plus access to the device memory its operands name.
///
/// Only the glue creates one, from a task the host wrote, which is what
/// makes the operand accessors safe to call (contract item 3). It is not
/// `Send`: the memory belongs to the launch on this thread.
#[derive(Debug)]
pub struct TaskCtx {
    index: u32,
    task: Task,
    regs: u64,
    _not_send: PhantomData<*const ()>,
}

impl TaskCtx {
    /// The task's index in the batch.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The task as the host wrote it.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// `KernelArgs::regs` of the launch (0 when unused).
    pub fn regs(&self) -> u64 {
        self.regs
    }

    /// The task's op as a [`CustomOp`], `None` for a code outside the
    /// custom range (a built-in, or no op at all): what a runtime with ops
    /// of its own matches on before handing the rest to
    /// [`ops::run`](crate::ops::run).
    pub fn custom_op(&self) -> Option<CustomOp> {
        CustomOp::new(self.task.op).ok()
    }

    /// Element `index` of the launch's register block (`KernelArgs::regs`)
    /// read as a `T`: the parameters every task of the launch shares.
    ///
    /// `NullPointer` when the launch has no register block, `Misaligned`
    /// unless the block starts on `align_of::<T>()`, `BadLength` when the
    /// element would lie past the end of the address space. How many
    /// elements the block holds is the host's to say (contract item 5), for
    /// example in the block itself or in the task's `scalar`.
    pub fn reg<T: Pod>(&self, index: usize) -> Result<T, TaskStatus> {
        if self.regs == 0 {
            return Err(TaskStatus::NullPointer);
        }
        let base = usize::try_from(self.regs).map_err(|_| TaskStatus::BadLength)?;
        if !base.is_multiple_of(align_of::<T>()) {
            return Err(TaskStatus::Misaligned);
        }
        let at = index
            .checked_mul(size_of::<T>())
            .and_then(|offset| base.checked_add(offset))
            .filter(|at| at.checked_add(size_of::<T>()).is_some())
            .ok_or(TaskStatus::BadLength)?;
        // SAFETY: non-null, aligned for T (base and the offset, a multiple
        // of size_of::<T>(), are), does not wrap; readable and not written
        // during the launch per contract item 5. T is Pod, so any bits are a
        // valid value.
        Ok(unsafe { (at as *const T).read() })
    }

    /// `len` bytes at the task's `dst`.
    pub fn dst(&self, len: u64) -> Result<DeviceRange<'_>, TaskStatus> {
        self.range(self.task.dst, len)
    }

    /// `len` bytes at the task's `src0`.
    pub fn src0(&self, len: u64) -> Result<DeviceRange<'_>, TaskStatus> {
        self.range(self.task.src0, len)
    }

    /// `len` bytes at the task's `src1`.
    pub fn src1(&self, len: u64) -> Result<DeviceRange<'_>, TaskStatus> {
        self.range(self.task.src1, len)
    }

    /// An empty range needs no address; a non-empty one needs a non-zero
    /// address and must not run past the end of the address space.
    fn range(&self, addr: u64, len: u64) -> Result<DeviceRange<'_>, TaskStatus> {
        if len == 0 {
            return Ok(DeviceRange {
                addr: 0,
                len: 0,
                _task: PhantomData,
            });
        }
        if addr == 0 {
            return Err(TaskStatus::NullPointer);
        }
        let len = usize::try_from(len).map_err(|_| TaskStatus::BadLength)?;
        let addr = usize::try_from(addr).map_err(|_| TaskStatus::BadLength)?;
        // Slices may not exceed isize::MAX bytes nor wrap around.
        if len > isize::MAX as usize || addr.checked_add(len).is_none() {
            return Err(TaskStatus::BadLength);
        }
        Ok(DeviceRange {
            addr,
            len,
            _task: PhantomData,
        })
    }
}

/// A range of device memory named by an operand of the current task.
///
/// Non-empty ranges have a non-zero address and do not wrap; the bytes are
/// valid for reads and writes while the task runs (contract item 3), which
/// the lifetime ties the range to.
#[derive(Clone, Copy, Debug)]
pub struct DeviceRange<'t> {
    addr: usize,
    len: usize,
    _task: PhantomData<&'t TaskCtx>,
}

impl<'t> DeviceRange<'t> {
    /// The device address (0 for an empty range).
    pub fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the range has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `src` into this range with `memmove` semantics (the two may
    /// overlap). Panics unless both have the same length.
    pub fn copy_from(&self, src: &DeviceRange<'_>) {
        assert_eq!(
            self.len, src.len,
            "copy between ranges of different lengths"
        );
        if self.len == 0 {
            return;
        }
        // SAFETY: both ranges are non-empty, so non-null and valid for
        // `len` bytes of reads (src) and writes (self); `ptr::copy` allows
        // overlap and has no alignment requirement for bytes.
        unsafe { std::ptr::copy(src.addr as *const u8, self.addr as *mut u8, self.len) }
    }

    /// Sets every byte of the range to `byte`.
    pub fn fill(&self, byte: u8) {
        if self.len == 0 {
            return;
        }
        // SAFETY: non-empty, so non-null and valid for `len` bytes of writes.
        unsafe { std::ptr::write_bytes(self.addr as *mut u8, byte, self.len) }
    }

    /// Copies `out.len()` bytes of the range, starting `offset` bytes in,
    /// into `out`. Panics unless they lie within the range.
    ///
    /// The range hands out copies, never a `&[u8]` over device memory:
    /// the same bytes may be written through another view of the task
    /// (a [`DeviceSlice`], [`copy_from`](Self::copy_from), an operand that
    /// aliases this one) while such a reference lived, which Rust forbids.
    pub fn read_at(&self, offset: usize, out: &mut [u8]) {
        let end = offset.checked_add(out.len());
        assert!(
            end.is_some_and(|end| end <= self.len),
            "{} bytes at offset {offset} of a {}-byte range",
            out.len(),
            self.len
        );
        if out.is_empty() {
            return;
        }
        // SAFETY: `offset + out.len() <= len` with `out` non-empty, so the
        // range is non-empty: non-null and valid for `len` bytes of reads
        // (contract item 3), of which these are a part. `out` is an
        // exclusive borrow, so no device memory view overlaps it (none hands
        // out references); bytes need no alignment.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (self.addr as *const u8).add(offset),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }

    /// The bytes of the range, copied.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.len];
        self.read_at(0, &mut bytes);
        bytes
    }

    /// The range as elements of `T`: `BadLength` unless the length is a
    /// multiple of `size_of::<T>()`, `Misaligned` unless a non-empty range
    /// starts on `align_of::<T>()`.
    pub fn elements<T: Pod>(&self) -> Result<DeviceSlice<'t, T>, TaskStatus> {
        if size_of::<T>() == 0 || !self.len.is_multiple_of(size_of::<T>()) {
            return Err(TaskStatus::BadLength);
        }
        if self.len > 0 && !self.addr.is_multiple_of(align_of::<T>()) {
            return Err(TaskStatus::Misaligned);
        }
        Ok(DeviceSlice {
            ptr: self.addr as *mut T,
            len: self.len / size_of::<T>(),
            _task: PhantomData,
        })
    }
}

/// Device memory viewed as aligned elements of a plain-data type.
///
/// Elements are read and written one at a time through raw pointers, never
/// through references, so a destination may alias a source (an in-place
/// `AddF32` with `dst == src0` is well defined).
#[derive(Clone, Copy, Debug)]
pub struct DeviceSlice<'t, T> {
    ptr: *mut T,
    len: usize,
    _task: PhantomData<&'t TaskCtx>,
}

impl<T: Pod> DeviceSlice<'_, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Element `i`. Panics when `i` is out of range.
    pub fn get(&self, i: usize) -> T {
        assert!(i < self.len, "element {i} of {}", self.len);
        // SAFETY: i < len, so the slice is non-empty: `ptr` is non-null,
        // aligned for T (checked in `elements`) and valid for reads of
        // len elements; T is Pod, so any bits are a valid value.
        unsafe { self.ptr.add(i).read() }
    }

    /// Sets element `i` to `value`. Panics when `i` is out of range.
    pub fn set(&self, i: usize, value: T) {
        assert!(i < self.len, "element {i} of {}", self.len);
        // SAFETY: as in `get`, for writes.
        unsafe { self.ptr.add(i).write(value) }
    }
}
