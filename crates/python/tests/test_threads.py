"""Four Python threads sharing one Cann: a runner each, or one runner
shared (its batches take turns)."""

import threading

import numpy as np

import simpler

THREADS = 4
ROUNDS = 10


def _run_threads(target):
    errors = []

    def guarded(k):
        try:
            target(k)
        except BaseException as err:  # reported below, with its thread
            errors.append((k, err))

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors


def _round(runner, k, r):
    n = 1000 + 17 * k + r
    x = np.arange(n, dtype=np.float32) * np.float32(k + 1)
    y = np.full(n, r, dtype=np.float32)
    dx, dy = runner.upload(x), runner.upload(y)
    out = runner.alloc(4 * n)
    batch = runner.batch()
    batch.add_f32(out, dx, dy)
    batch.run()
    np.testing.assert_array_equal(out.to_numpy(np.float32), x + y)


def test_a_runner_per_thread_on_one_cann(cann):
    def work(k):
        with simpler.DeviceRunner(cann, device=0, threads=2) as runner:
            for r in range(ROUNDS):
                _round(runner, k, r)

    _run_threads(work)


def test_threads_sharing_one_runner(cann):
    with simpler.DeviceRunner(cann, device=0, threads=2) as runner:
        _run_threads(lambda k: [_round(runner, k, r) for r in range(ROUNDS)])


def test_a_waiting_batch_releases_the_gil(cann):
    # While one thread waits on a slow task, another keeps running Python.
    with simpler.DeviceRunner(cann, threads=1) as runner:
        batch = runner.batch()
        batch.sleep_us(300_000)
        done = threading.Event()
        ticks = 0

        def wait():
            batch.run()
            done.set()

        t = threading.Thread(target=wait)
        t.start()
        while not done.is_set():
            ticks += 1
            done.wait(0.001)
        t.join()
        assert ticks > 20


def test_threads_adding_to_one_batch_while_the_runner_is_busy(cann):
    # Adding checks each task with the runner, which another thread keeps
    # busy: adders wait with the GIL released and never hold the batch
    # while they wait.
    with simpler.DeviceRunner(cann, threads=2) as runner:
        shared = runner.batch()
        targets = [runner.alloc(64) for _ in range(THREADS - 1)]
        stop = threading.Event()

        def work(k):
            if k == 0:
                r = 0
                while not stop.is_set():
                    _round(runner, k, r)
                    r += 1
                return
            for value in range(ROUNDS * 5):
                shared.fill(targets[k - 1], value)

        adders = [threading.Thread(target=work, args=(k,)) for k in range(1, THREADS)]
        busy = threading.Thread(target=work, args=(0,))
        busy.start()
        for t in adders:
            t.start()
        for t in adders:
            t.join(timeout=120)
        stop.set()
        busy.join(timeout=120)
        assert not busy.is_alive() and not any(t.is_alive() for t in adders), "a thread hung"
        assert len(shared) == (THREADS - 1) * ROUNDS * 5
        assert set(shared.run_statuses()) == {"Ok"}
