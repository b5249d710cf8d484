//! How launches are scheduled on the emulated AICPU: a launch's blocks run
//! at the same time on the worker pool, a stream runs its launches in
//! order, streams run at once, and requests are still read (and the op
//! timeout still kept) while every worker is busy.

use std::ffi::c_void;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn blocks_of_a_launch_and_launches_of_two_streams_run_at_the_same_time() {
    if ran_in_child(
        "scheduling::blocks_of_a_launch_and_launches_of_two_streams_run_at_the_same_time",
        &[(env::AICPU_THREADS, "3")],
    ) {
        return;
    }
    let (api, stream) = device0_stream();
    let count = api.alloc(8);
    // Three blocks on three workers meet at a barrier: they must all run at
    // once (the one the request woke, and two woken for the queued blocks).
    for round in 0..20u64 {
        api.h2d(count, &[0; 8]);
        api.launch_ok("launch", "sim_barrier", &payload(count, 3), 3, stream);
        api.sync_ok(&format!("sync (round {round})"), stream);
        assert_eq!(api.read_u64(count), 3);
    }
    // One block on each of two streams meets the other at a barrier.
    let other = api.stream();
    for round in 0..20u64 {
        api.h2d(count, &[0; 8]);
        for s in [stream, other] {
            api.launch_ok("launch", "sim_barrier", &payload(count, 2), 1, s);
        }
        for s in [stream, other] {
            api.sync_ok(&format!("sync (round {round})"), s);
        }
        assert_eq!(api.read_u64(count), 2);
    }
    api.ok("destroy", api.destroy(other));
    api.release(count);
    api.reset(0);
}

#[test]
fn every_stream_runs_its_launches_in_order() {
    if ran_in_child("scheduling::every_stream_runs_its_launches_in_order", &[]) {
        return;
    }
    const LAUNCHES: u64 = 300;
    let api = Sim::load();
    api.set(0);
    let streams: Vec<*mut c_void> = (0..3).map(|_| api.stream()).collect();
    let counters: Vec<u64> = streams
        .iter()
        .map(|_| {
            let c = api.alloc(8);
            api.h2d(c, &[0; 8]);
            c
        })
        .collect();
    // Interleaved on three streams, some of them slow: each launch moves
    // its stream's counter from i to i + 1 and fails if it ran early.
    for i in 0..LAUNCHES {
        for (n, (&s, &c)) in streams.iter().zip(&counters).enumerate() {
            if i % 50 == n as u64 {
                api.launch_ok("launch", "sim_sleep_ms", &payload(5, 0), 1, s);
            }
            api.launch_ok("launch", "sim_step", &payload(c, i), 1, s);
        }
        if i % 100 == 99 {
            for &s in &streams {
                api.ok("sync", api.sync_ms(s, 30_000));
            }
        }
    }
    for (&s, &c) in streams.iter().zip(&counters) {
        api.ok("sync", api.sync_ms(s, 30_000));
        assert_eq!(api.read_u64(c), LAUNCHES);
        api.ok("destroy", api.destroy(s));
        api.release(c);
    }
    api.reset(0);
}

#[test]
fn thousands_of_launches_without_a_sync_do_not_wedge_the_channel() {
    if ran_in_child(
        "scheduling::thousands_of_launches_without_a_sync_do_not_wedge_the_channel",
        &[(env::DEVICE_MEM, "1048576")],
    ) {
        return;
    }
    // More requests and replies than the socket pair buffers either way:
    // replies back up while the host only sends, and sends find the
    // channel full. Both sides must keep reading while they wait (the host
    // reads replies while a send waits for room; a device reader blocked
    // sending a reply loses the channel to another worker after a tick).
    const LAUNCHES: u64 = 5000;
    let (api, stream) = device0_stream();
    let counter = api.alloc(8);
    api.h2d(counter, &[0; 8]);
    for i in 0..LAUNCHES {
        api.launch_ok("launch", "sim_step", &payload(counter, i), 1, stream);
    }
    api.ok("sync", api.sync_ms(stream, 60_000));
    assert_eq!(api.read_u64(counter), LAUNCHES);
    api.release(counter);
    // Every argument copy was freed as its launch completed: all but the
    // last few KiB of the 1 MiB device can be allocated again.
    let most = api.alloc((1 << 20) - 8192);
    api.release(most);
    api.reset(0);
}

#[test]
fn requests_are_read_and_timeouts_kept_while_every_worker_is_busy() {
    if ran_in_child(
        "scheduling::requests_are_read_and_timeouts_kept_while_every_worker_is_busy",
        &[(env::AICPU_THREADS, "1"), (env::OP_TIMEOUT_MS, "300")],
    ) {
        return;
    }
    let api = Sim::load();
    api.set(0);
    let busy = api.stream();
    let queued = api.stream();
    let count = api.alloc(8);
    api.h2d(count, &[0; 8]);
    let started = Instant::now();
    // The only worker sleeps for 3 s.
    api.launch_ok("launch", "sim_sleep_ms", &payload(3000, 0), 1, busy);
    std::thread::sleep(Duration::from_millis(50));
    // Still answered: the device's main thread reads the channel.
    api.ok("simpler_sim_ping", api.ping(1));
    api.launch_ok("launch", "sim_count", &payload(count, 0), 1, queued);
    // The queued launch's op timeout runs while it waits for a worker, as
    // the sleeping one's does.
    for s in [busy, queued] {
        api.sync_expect(
            "sync",
            s,
            ACL_ERROR_RT_AICPU_TIMEOUT,
            "exceeded the op timeout of 300 ms",
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the timeouts waited for the kernel: {:?}",
        started.elapsed()
    );
    assert_eq!(api.read_u64(count), 0, "the queued launch never ran");
    api.release(count);
    api.reset(0);
}
