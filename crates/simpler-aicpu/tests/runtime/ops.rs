//! Every built-in op computes what docs/abi.md says.

use std::time::{Duration, Instant};

use simpler_aicpu::abi::{fingerprint, OpCode, TaskStatus};
use simpler_aicpu::glue::code;

use crate::common::{addr, addr_mut, init, run_one, task};
use crate::ffi::Batch;

fn ok(t: simpler_aicpu::abi::Task) {
    init();
    assert_eq!(run_one(t), (TaskStatus::Ok, code::OK));
}

#[test]
fn copy_copies_bytes() {
    let src: Vec<u8> = (0..=255).collect();
    let mut dst = vec![0u8; 256];
    ok(task(
        OpCode::Copy,
        addr(dst.as_mut_ptr()),
        addr(src.as_ptr()),
        0,
        256,
        0,
    ));
    assert_eq!(dst, src);
}

#[test]
fn copy_allows_overlap_like_memmove() {
    let mut buf: Vec<u8> = (0..16).collect();
    let base = addr(buf.as_mut_ptr());
    // Forward overlap: bytes 0..12 move to 4..16.
    ok(task(OpCode::Copy, base + 4, base, 0, 12, 0));
    assert_eq!(buf, [0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    // Backward overlap: bytes 4..16 move to 0..12.
    ok(task(OpCode::Copy, base, base + 4, 0, 12, 0));
    assert_eq!(buf, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 8, 9, 10, 11]);
}

#[test]
fn fill_uses_the_low_byte_of_scalar() {
    let mut dst = [0u8; 40];
    ok(task(
        OpCode::Fill,
        addr(dst[3..].as_mut_ptr()),
        0,
        0,
        33,
        0x1234_56a5,
    ));
    assert!(dst[..3].iter().all(|&b| b == 0));
    assert!(dst[3..36].iter().all(|&b| b == 0xa5));
    assert!(dst[36..].iter().all(|&b| b == 0));
}

#[test]
fn add_f32_adds_elementwise() {
    let a: Vec<f32> = (0..100).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..100).map(|i| 1000.0 - i as f32).collect();
    let mut dst = vec![f32::NAN; 100];
    ok(task(
        OpCode::AddF32,
        addr(dst.as_mut_ptr()),
        addr(a.as_ptr()),
        addr(b.as_ptr()),
        400,
        0,
    ));
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert_eq!(dst, want);
}

#[test]
fn add_f32_in_place() {
    let mut acc = vec![1.5f32, -2.0, 3.25];
    let one = [1.0f32; 3];
    let p = addr(acc.as_mut_ptr());
    ok(task(OpCode::AddF32, p, p, addr(one.as_ptr()), 12, 0));
    assert_eq!(acc, [2.5, -1.0, 4.25]);
}

#[test]
fn scale_f32_multiplies_by_the_scalar_bits() {
    let src: Vec<f32> = (0..64).map(|i| i as f32 - 10.0).collect();
    let mut dst = vec![0f32; 64];
    let factor = -0.75f32;
    // Upper 32 bits of scalar are not part of the factor.
    let scalar = 0xdead_beef_0000_0000 | u64::from(factor.to_bits());
    ok(task(
        OpCode::ScaleF32,
        addr(dst.as_mut_ptr()),
        addr(src.as_ptr()),
        0,
        256,
        scalar,
    ));
    let want: Vec<f32> = src.iter().map(|x| x * factor).collect();
    assert_eq!(dst, want);
}

#[test]
fn sum_f32_accumulates_left_to_right_from_zero() {
    // Left to right: ((0 + 1e8) + 1) + -1e8 + 1 = 1.0 in f32; any other
    // order or a wider accumulator gives a different answer.
    let src = [1e8f32, 1.0, -1e8, 1.0];
    let mut dst = f32::NAN;
    ok(task(
        OpCode::SumF32,
        addr_mut(&mut dst),
        addr(src.as_ptr()),
        0,
        16,
        0,
    ));
    assert_eq!(dst.to_bits(), 1.0f32.to_bits());

    let src: Vec<f32> = (0..1000).map(|i| (i as f32).sin() * 1e3).collect();
    ok(task(
        OpCode::SumF32,
        addr_mut(&mut dst),
        addr(src.as_ptr()),
        0,
        4000,
        0,
    ));
    let want = src.iter().fold(0.0f32, |acc, x| acc + x);
    assert_eq!(dst.to_bits(), want.to_bits());
}

#[test]
fn sum_f32_of_nothing_is_zero() {
    let mut dst = f32::NAN;
    ok(task(OpCode::SumF32, addr_mut(&mut dst), 0, 0, 0, 0));
    assert_eq!(dst.to_bits(), 0.0f32.to_bits());
}

#[test]
fn fnv1a64_matches_published_vectors_and_the_abi_fingerprint() {
    let mut dst = 0u64;
    ok(task(
        OpCode::Fnv1a64,
        addr_mut(&mut dst),
        addr(b"foobar".as_ptr()),
        0,
        6,
        0,
    ));
    assert_eq!(dst, 0x85944171f73967e8);

    ok(task(OpCode::Fnv1a64, addr_mut(&mut dst), 0, 0, 0, 0));
    assert_eq!(dst, 0xcbf29ce484222325);

    // Unaligned source of odd length.
    let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
    ok(task(
        OpCode::Fnv1a64,
        addr_mut(&mut dst),
        addr(data[1..].as_ptr()),
        0,
        1000,
        0,
    ));
    assert_eq!(dst, fingerprint(&data[1..]));
}

#[test]
fn sleep_us_sleeps_at_least_that_long() {
    let start = Instant::now();
    ok(task(OpCode::SleepUs, 0, 0, 0, 0, 20_000));
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn zero_length_ops_need_no_addresses() {
    init();
    for op in [OpCode::Copy, OpCode::Fill, OpCode::AddF32, OpCode::ScaleF32] {
        assert_eq!(
            run_one(task(op, 0, 0, 0, 0, 0)),
            (TaskStatus::Ok, code::OK),
            "{op:?}"
        );
    }
}

#[test]
fn one_batch_of_every_op_on_several_threads() {
    init();
    let src: Vec<f32> = (1..=8).map(|i| i as f32).collect();
    let mut copy = vec![0f32; 8];
    let mut fill = vec![0u8; 8];
    let mut add = vec![0f32; 8];
    let mut scale = vec![0f32; 8];
    let mut sum = 0f32;
    let mut fnv = 0u64;
    let s = addr(src.as_ptr());
    let batch = Batch::new(vec![
        task(OpCode::Copy, addr(copy.as_mut_ptr()), s, 0, 32, 0),
        task(OpCode::Fill, addr(fill.as_mut_ptr()), 0, 0, 8, 7),
        task(OpCode::AddF32, addr(add.as_mut_ptr()), s, s, 32, 0),
        task(
            OpCode::ScaleF32,
            addr(scale.as_mut_ptr()),
            s,
            0,
            32,
            3.0f32.to_bits().into(),
        ),
        task(OpCode::SumF32, addr_mut(&mut sum), s, 0, 32, 0),
        task(OpCode::Fnv1a64, addr_mut(&mut fnv), s, 0, 32, 0),
        task(OpCode::SleepUs, 0, 0, 0, 0, 1),
    ]);
    let results = batch.exec(4);
    assert!(results.iter().all(|&r| r == code::OK), "{results:?}");
    assert!(batch.statuses().iter().all(|&s| s == TaskStatus::Ok));
    let h = batch.header();
    assert_eq!((h.done, h.failed), (7, 0));
    assert_eq!(copy, src);
    assert_eq!(fill, [7; 8]);
    assert_eq!(add, src.iter().map(|x| x * 2.0).collect::<Vec<_>>());
    assert_eq!(scale, src.iter().map(|x| x * 3.0).collect::<Vec<_>>());
    assert_eq!(sum, 36.0);
    let bytes: Vec<u8> = src.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(fnv, fingerprint(&bytes));
}
