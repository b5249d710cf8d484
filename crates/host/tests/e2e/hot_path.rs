//! `DeviceRunner::exec`, the per-launch hot path, allocates no host memory
//! on either launch path, nor does a warm `Kernel::launch` and sync:
//! counted with a global allocator that tallies this thread's allocations
//! (the simulator library has its own allocator and is not counted). It is
//! the allocator of the whole test binary, but it only counts, per thread,
//! so the other tests are unaffected.

use std::cell::Cell;

use simpler_host::abi::work::WORK_MAGIC;
use simpler_host::abi::{KernelArgs, OpCode, Task, WorkHeader, ABI_VERSION};
use simpler_host::{LaunchPath, Stream};
use simpler_testkit::host::{builder, cann};
use simpler_testkit::in_sim;

use crate::module::{module, WriteArgs};

fn allocations() -> u64 {
    sys::ALLOCATIONS.with(Cell::get)
}

#[test]
fn exec_allocates_nothing_per_launch() {
    in_sim("hot_path::exec_allocates_nothing_per_launch", &[], || {
        let cann = cann();
        let mut runner = builder(&cann).threads(2).build().unwrap();
        let out = runner.alloc(64).unwrap();
        // One Fill task; the header and task are rewritten before each
        // launch because the runtime consumes the counters.
        let work = runner.alloc(48 + 64 + 4).unwrap();
        let base = work.device_addr();
        let header = WorkHeader {
            magic: WORK_MAGIC,
            abi_version: ABI_VERSION,
            task_count: 1,
            flags: 0,
            tasks: base + 48,
            statuses: base + 48 + 64,
            ..WorkHeader::default()
        };
        let task = Task {
            op: OpCode::Fill as u32,
            dst: out.device_addr(),
            len: 64,
            scalar: 0x3c,
            ..Task::default()
        };
        let mut bytes = [0u8; 48 + 64 + 4];
        bytes[..48].copy_from_slice(bytemuck::bytes_of(&header));
        bytes[48..112].copy_from_slice(bytemuck::bytes_of(&task));
        let args = KernelArgs {
            runtime_args: base,
            regs: 0,
        };
        let mut work = work;
        // Warm up: first use of thread-locals and lazily built state.
        work.write_at(0, &bytes).unwrap();
        runner.exec(args).unwrap();

        let before = allocations();
        for _ in 0..50 {
            work.write_at(0, &bytes).unwrap();
            runner.exec(args).unwrap();
        }
        let during = allocations() - before;
        assert_eq!(during, 0, "{during} host allocations in 50 launches");
        assert_eq!(out.to_vec::<u8>().unwrap(), vec![0x3c; 64]);
        let mut status = [0u8; 4];
        work.read_at(112, &mut status).unwrap();
        assert_eq!(u32::from_le_bytes(status), 1, "TaskStatus::Ok");
    });
}

#[test]
fn exec_on_the_binary_path_allocates_nothing_per_launch() {
    in_sim(
        "hot_path::exec_on_the_binary_path_allocates_nothing_per_launch",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann)
                .launch_path(LaunchPath::Binary)
                .build()
                .unwrap();
            // An empty batch: the runtime returns at once.
            let work = runner.alloc(48).unwrap();
            let header = WorkHeader {
                magic: WORK_MAGIC,
                abi_version: ABI_VERSION,
                ..WorkHeader::default()
            };
            let mut work = work;
            let args = KernelArgs {
                runtime_args: work.device_addr(),
                regs: 0,
            };
            work.write_at(0, bytemuck::bytes_of(&header)).unwrap();
            runner.exec(args).unwrap();
            let before = allocations();
            for _ in 0..50 {
                work.write_at(0, bytemuck::bytes_of(&header)).unwrap();
                runner.exec(args).unwrap();
            }
            let during = allocations() - before;
            assert_eq!(during, 0, "{during} host allocations in 50 launches");
        },
    );
}

#[test]
fn kernel_launches_allocate_nothing_once_warm() {
    in_sim(
        "hot_path::kernel_launches_allocate_nothing_once_warm",
        &[],
        || {
            let cann = cann();
            for path in LaunchPath::ALL {
                let m = module(&cann, path).build().unwrap();
                let kernel = m.kernel("k_write").unwrap();
                let mut stream = Stream::new(m.device()).unwrap();
                let out = m.device().alloc_zeroed(16).unwrap();
                let args = WriteArgs {
                    dst: out.device_addr(),
                    value: 5,
                    count: 4,
                };
                let payload = bytemuck::bytes_of(&args);
                // 12 bytes, padded to 16 with zeros (so a count of 0): the
                // scratch buffer on both paths.
                let short = &payload[..12];
                kernel.launch(&mut stream, 1, payload).unwrap();
                kernel.launch(&mut stream, 1, short).unwrap();
                stream.sync(None).unwrap();
                let before = allocations();
                for _ in 0..50 {
                    kernel.launch(&mut stream, 2, payload).unwrap();
                    kernel.launch(&mut stream, 1, short).unwrap();
                    stream.sync(None).unwrap();
                }
                let during = allocations() - before;
                assert_eq!(
                    during, 0,
                    "{path}: {during} host allocations in 100 launches"
                );
                assert_eq!(out.to_vec::<u32>().unwrap(), [5, 6, 7, 8]);
            }
        },
    );
}

/// The counting allocator.
mod sys {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        /// Allocations (and reallocations) made by this thread.
        pub static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: forwards every call to the system allocator unchanged; the
    // thread-local counter is a const-initialised Cell, so touching it never
    // allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}
