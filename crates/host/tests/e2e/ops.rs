//! Every built-in op through `DeviceRunner` and `Batch`, on the simulator:
//! results, the runtime's own validation, the host's checks, and device
//! memory accounting.

use simpler_host::abi::{fingerprint, CustomOp, OpCode, Task, TaskOp, TaskStatus};
use simpler_host::{CacheStatus, CustomTask, Error};
use simpler_testkit::host::{builder, cann, stats};
use simpler_testkit::in_sim;

fn f32s(n: usize, f: impl Fn(usize) -> f32) -> Vec<f32> {
    (0..n).map(f).collect()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_op_matches_the_host() {
    in_sim("ops::every_op_matches_the_host", &[], || {
        let cann = cann();
        let mut runner = builder(&cann).threads(4).build().unwrap();
        assert_eq!(runner.info().cache, CacheStatus::Miss);
        let n = 1000;
        let a = f32s(n, |i| i as f32 * 0.75 - 100.0);
        let b = f32s(n, |i| 1.0 / (i as f32 + 1.0));
        let dev_a = runner.upload(&a).unwrap();
        let dev_b = runner.upload(&b).unwrap();
        let bytes: Vec<u8> = (0..777u32).map(|i| (i * 31 % 251) as u8).collect();
        let dev_bytes = runner.upload(&bytes).unwrap();

        let copy = runner.alloc(bytes.len()).unwrap();
        let fill = runner.alloc(333).unwrap();
        let add = runner.alloc(n * 4).unwrap();
        let scale = runner.alloc(n * 4).unwrap();
        let sum = runner.alloc(4).unwrap();
        let hash = runner.alloc(8).unwrap();
        // Part of a buffer: the middle 100 elements of `a`, added in place
        // into a separate destination slice.
        let part = runner.alloc(n * 4).unwrap();

        let mut batch = runner.batch();
        batch.copy(&copy, &dev_bytes).unwrap();
        batch.fill(&fill, 0x5a).unwrap();
        batch.add_f32(&add, &dev_a, &dev_b).unwrap();
        batch.scale_f32(&scale, &dev_a, -2.5).unwrap();
        batch.sum_f32(&sum, &dev_a).unwrap();
        batch.fnv1a64(&hash, &dev_bytes).unwrap();
        batch
            .copy(
                part.slice(400..800).unwrap(),
                dev_a.slice(400..800).unwrap(),
            )
            .unwrap();
        assert_eq!(batch.len(), 7);
        let outcome = batch.run().unwrap();
        assert_eq!(outcome.len(), 7);
        assert!((0..7).all(|i| outcome.status(i) == Some(TaskStatus::Ok)));

        assert_eq!(copy.to_vec::<u8>().unwrap(), bytes);
        assert_eq!(fill.to_vec::<u8>().unwrap(), vec![0x5a; 333]);
        let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_eq!(bits(&add.to_vec::<f32>().unwrap()), bits(&want));
        let want: Vec<f32> = a.iter().map(|x| x * -2.5).collect();
        assert_eq!(bits(&scale.to_vec::<f32>().unwrap()), bits(&want));
        let want = a.iter().fold(0.0f32, |s, x| s + x);
        assert_eq!(sum.to_vec::<f32>().unwrap()[0].to_bits(), want.to_bits());
        assert_eq!(hash.to_vec::<u64>().unwrap()[0], fingerprint(&bytes));
        let mut middle = vec![0f32; 100];
        let mut raw = vec![0u8; 400];
        part.read_at(400, &mut raw).unwrap();
        middle.copy_from_slice(bytemuck_f32(&raw).as_slice());
        assert_eq!(bits(&middle), bits(&a[100..200]));
    });
}

fn bytemuck_f32(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn many_tasks_on_many_threads_each_run_once() {
    in_sim("ops::many_tasks_on_many_threads_each_run_once", &[], || {
        let cann = cann();
        let mut runner = builder(&cann).threads(8).build().unwrap();
        let outs: Vec<_> = (0..200).map(|_| runner.alloc(64).unwrap()).collect();
        let mut batch = runner.batch();
        for (i, out) in outs.iter().enumerate() {
            batch.fill(out, i as u8).unwrap();
        }
        batch.run().unwrap();
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(out.to_vec::<u8>().unwrap(), vec![i as u8; 64]);
        }
    });
}

#[test]
fn the_runtime_reports_bad_tasks_per_task() {
    in_sim("ops::the_runtime_reports_bad_tasks_per_task", &[], || {
        let cann = cann();
        let mut runner = builder(&cann).threads(2).build().unwrap();
        let buf = runner.alloc(64).unwrap();
        let addr = buf.device_addr();
        let task = |op: u32, dst: u64, src0: u64, len: u64| Task {
            op,
            dst,
            src0,
            len,
            ..Task::default()
        };
        let mut batch = runner.batch();
        batch.push_raw(task(0x77, addr, addr, 4));
        batch.push_raw(task(OpCode::AddF32 as u32, addr, addr, 3));
        batch.push_raw(task(OpCode::SumF32 as u32, addr + 1, addr, 8));
        batch.push_raw(task(OpCode::Copy as u32, 0, addr, 8));
        batch.push_raw(task(OpCode::Panic as u32, 0, 0, 0));
        batch.fill(&buf, 1).unwrap();
        let outcome = batch.run_statuses().unwrap();
        let statuses: Vec<_> = (0..outcome.len()).map(|i| outcome.status(i)).collect();
        assert_eq!(
            statuses,
            [
                Some(TaskStatus::UnknownOp),
                Some(TaskStatus::BadLength),
                Some(TaskStatus::Misaligned),
                Some(TaskStatus::NullPointer),
                Some(TaskStatus::Panicked),
                Some(TaskStatus::Ok),
            ]
        );
        assert_eq!(outcome.failures().len(), 5);

        // The checked form turns the same statuses into an error naming them.
        let mut batch = runner.batch();
        batch.fill(&buf, 2).unwrap();
        batch.push_raw(task(OpCode::Panic as u32, 0, 0, 0));
        let err = batch.run().unwrap_err();
        let Error::TasksFailed { total, failures } = &err else {
            panic!("{err}")
        };
        assert_eq!(*total, 2);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].index, 1);
        assert_eq!(failures[0].status, Some(TaskStatus::Panicked));
        assert_eq!(err.to_string(), "1 of 2 tasks failed: #1 Panic → Panicked");
        // The good task still ran, and the runner keeps working.
        assert_eq!(buf.to_vec::<u8>().unwrap(), vec![2; 64]);
        let mut batch = runner.batch();
        batch.fill(&buf, 3).unwrap();
        batch.run().unwrap();
        assert_eq!(buf.to_vec::<u8>().unwrap(), vec![3; 64]);
    });
}

#[test]
fn the_host_rejects_tasks_that_cannot_succeed() {
    in_sim(
        "ops::the_host_rejects_tasks_that_cannot_succeed",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann).build().unwrap();
            let other_device = cann.open_device(1).unwrap();
            let a = runner.alloc(16).unwrap();
            let b = runner.alloc(12).unwrap();
            let elsewhere = other_device.alloc(16).unwrap();
            let mut batch = runner.batch();
            let reason = |r: Result<_, Error>| match r {
                Err(Error::InvalidTask { reason, .. }) => reason,
                Err(other) => panic!("{other}"),
                Ok(_) => panic!("accepted"),
            };
            assert!(reason(batch.copy(&a, &b).map(|_| ())).contains("differ in length"));
            assert!(
                reason(batch.add_f32(&a, &a, a.slice(1..13).unwrap()).map(|_| ()))
                    .contains("differ in length")
            );
            assert!(reason(
                batch
                    .scale_f32(a.slice(1..13).unwrap(), &b, 2.0)
                    .map(|_| ())
            )
            .contains("not 4-byte aligned"));
            assert!(reason(
                batch
                    .add_f32(
                        a.slice(0..6).unwrap(),
                        a.slice(0..6).unwrap(),
                        b.slice(0..6).unwrap()
                    )
                    .map(|_| ())
            )
            .contains("whole number"));
            assert!(reason(batch.sum_f32(&a, &b).map(|_| ())).contains("must be 4 bytes"));
            assert!(reason(batch.fnv1a64(&b, &a).map(|_| ())).contains("must be 8 bytes"));
            assert!(reason(batch.fill(&elsewhere, 0).map(|_| ())).contains("device 1"));
            assert!(batch.is_empty(), "rejected tasks are not queued");
            assert!(a.slice(10..20).is_err());
            // An empty batch does not launch.
            let before = stats(&cann, 0).launches_aicpu;
            let outcome = batch.run().unwrap();
            assert!(outcome.is_empty());
            assert_eq!(stats(&cann, 0).launches_aicpu, before);
        },
    );
}

const CUSTOM: CustomOp = CustomOp::must(0x8000_0001);

/// Custom tasks and a register block travel with the batch; the built-in
/// runtime ignores the block and answers the custom op `UnknownOp`, with
/// the other tasks run as usual.
#[test]
fn custom_tasks_reach_the_runtime_which_answers_unknown_op() {
    in_sim(
        "ops::custom_tasks_reach_the_runtime_which_answers_unknown_op",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann).threads(2).build().unwrap();
            let regs = runner.upload(&[1u64, 2, 3]).unwrap();
            let dst = runner.upload(&[7u8; 32]).unwrap();
            let src = runner.alloc(32).unwrap();
            let filled = runner.alloc(16).unwrap();
            let mut batch = runner.batch();
            batch.regs(&regs).unwrap();
            batch.fill(&filled, 0x42).unwrap();
            batch
                .custom(CustomTask::new(CUSTOM).dst(&dst).src0(&src).scalar(9))
                .unwrap();
            batch
                .custom(CustomTask::new(CustomOp::must(u32::MAX)).len(4))
                .unwrap();
            assert_eq!(batch.len(), 3);
            let err = batch.run().unwrap_err();
            assert_eq!(
                err.to_string(),
                "2 of 3 tasks failed: #1 custom op 0x80000001 → UnknownOp, \
                 #2 custom op 0xffffffff → UnknownOp"
            );
            let Error::TasksFailed { failures, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(failures[0].op, CUSTOM.code());
            assert_eq!(filled.to_vec::<u8>().unwrap(), [0x42; 16]);
            assert_eq!(
                dst.to_vec::<u8>().unwrap(),
                [7; 32],
                "a refused task writes nothing"
            );
            assert_eq!(regs.to_vec::<u64>().unwrap(), [1, 2, 3]);
        },
    );
}

#[test]
fn custom_tasks_and_register_blocks_must_live_on_the_runners_device() {
    in_sim(
        "ops::custom_tasks_and_register_blocks_must_live_on_the_runners_device",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann).build().unwrap();
            let other_device = cann.open_device(1).unwrap();
            let here = runner.alloc(16).unwrap();
            let elsewhere = other_device.alloc(16).unwrap();
            let mut batch = runner.batch();
            for task in [
                CustomTask::new(CUSTOM).dst(&elsewhere).src0(&here),
                CustomTask::new(CUSTOM).dst(&here).src0(&elsewhere),
                CustomTask::new(CUSTOM).dst(&here).src1(&elsewhere),
            ] {
                let err = batch.custom(task).unwrap_err();
                let Error::InvalidTask { index, op, reason } = &err else {
                    panic!("{err}")
                };
                assert_eq!((*index, *op), (0, TaskOp::Custom(CUSTOM)));
                assert!(reason.contains("device 1"), "{reason}");
                assert!(
                    err.to_string()
                        .starts_with("task 0 (custom op 0x80000001) is invalid"),
                    "{err}"
                );
            }
            let err = batch.regs(&elsewhere).unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid argument: the register block lives on device 1, the runner runs on device 0"
            );
            assert!(batch.is_empty(), "rejected tasks are not queued");
            // An operand-free custom task is fine on any device.
            batch.custom(CustomTask::new(CUSTOM)).unwrap();
            assert_eq!(batch.len(), 1);
        },
    );
}

#[test]
fn bootstrap_leaves_no_device_memory_and_drop_frees_everything() {
    in_sim(
        "ops::bootstrap_leaves_no_device_memory_and_drop_frees_everything",
        &[],
        || {
            let cann = cann();
            let mut runner = builder(&cann).build().unwrap();
            let after_build = stats(&cann, 0);
            // Dispatcher, runtime, DeviceArgs and report were all freed.
            assert_eq!(after_build.live_bytes, 0);
            assert_eq!(after_build.live_allocations, 0);
            assert!(after_build.peak_bytes > runner.info().runtime_len);
            assert_eq!(after_build.launches_kfc, 1);
            assert_eq!(after_build.launches_aicpu, 1, "one init launch");

            let input = runner.upload(&[1.0f32; 256]).unwrap();
            let out = runner.alloc(4).unwrap();
            for _ in 0..3 {
                let mut batch = runner.batch();
                batch.sum_f32(&out, &input).unwrap();
                batch.run().unwrap();
            }
            assert_eq!(out.to_vec::<f32>().unwrap(), [256.0]);
            // Input, output and one reused work buffer.
            assert_eq!(stats(&cann, 0).live_allocations, 3);
            assert_eq!(stats(&cann, 0).launches_aicpu, 4);

            drop(runner);
            assert!(
                stats(&cann, 0).live_bytes > 0,
                "the buffers outlive the runner"
            );
            drop((input, out));
            let end = stats(&cann, 0);
            assert_eq!(end.live_bytes, 0);
            assert_eq!(end.live_allocations, 0);
        },
    );
}
