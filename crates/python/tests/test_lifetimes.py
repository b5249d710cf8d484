"""Device memory is freed by garbage collection, free() and with blocks;
batches keep their operands alive; nothing is left on the device."""

import gc

import numpy as np
import pytest

import simpler
from conftest import live_bytes


def test_a_collected_buffer_is_freed(cann, runner):
    gc.collect()  # what earlier tests left for the collector
    before = live_bytes(cann)
    buf = runner.alloc(1 << 16)
    assert live_bytes(cann) == before + (1 << 16)
    del buf
    gc.collect()
    assert live_bytes(cann) == before


def test_with_blocks_free_buffers(cann, runner):
    gc.collect()
    before = live_bytes(cann)
    with runner.alloc(4096) as buf:
        assert not buf.freed
        assert live_bytes(cann) == before + 4096
    assert buf.freed
    assert live_bytes(cann) == before
    with pytest.raises(simpler.ArgumentError, match="was freed"):
        buf.to_bytes()
    with pytest.raises(simpler.ArgumentError, match="was freed"):
        buf.write(b"x")
    buf.free()  # again: allowed
    assert "freed" in repr(buf)


def test_a_batch_keeps_its_operands_until_it_ran(cann, runner):
    out = runner.alloc(4 * 100)
    # A one-task batch first, so the runner's work area (kept for reuse)
    # is in the baseline.
    warm = runner.batch()
    warm.fill(out, 0)
    warm.run()
    gc.collect()
    baseline = live_bytes(cann)

    def queue():
        batch = runner.batch()
        a = runner.upload(np.full(100, 2.0, dtype=np.float32))
        b = runner.upload(np.full(100, 3.0, dtype=np.float32))
        batch.add_f32(out, a, b)
        return batch  # a and b go out of scope here

    batch = queue()
    gc.collect()
    assert live_bytes(cann) == baseline + 800, "the batch holds a and b"
    batch.run()
    np.testing.assert_array_equal(out.to_numpy(np.float32), np.full(100, 5.0, dtype=np.float32))
    del batch
    gc.collect()
    assert live_bytes(cann) == baseline, "a and b were freed with the batch"


def test_an_operand_freed_before_the_run_fails_the_run(runner):
    a = runner.alloc(16)
    batch = runner.batch()
    batch.fill(a, 7)
    a.free()
    with pytest.raises(simpler.ArgumentError, match="was freed"):
        batch.run()


def test_a_closed_runner_refuses_work_and_its_buffers_stay_usable(cann):
    runner = simpler.DeviceRunner(cann)
    buf = runner.upload(b"kept")
    batch = runner.batch()
    with runner:
        pass
    assert runner.closed
    assert buf.to_bytes() == b"kept"
    with pytest.raises(simpler.ArgumentError, match="was closed"):
        runner.alloc(4)
    with pytest.raises(simpler.ArgumentError, match="was closed"):
        batch.fill(buf, 0)
    runner.close()  # again: allowed


def test_nothing_is_left_on_the_device(cann):
    gc.collect()
    before = live_bytes(cann)
    for fail in (False, True):
        with simpler.DeviceRunner(cann, threads=2) as runner:
            a = runner.upload(np.arange(512, dtype=np.float32))
            out = runner.alloc(a.nbytes)
            batch = runner.batch()
            batch.scale_f32(out, a, 2.0)
            if fail:
                batch.panic()
                with pytest.raises(simpler.TaskError):
                    batch.run()
            else:
                batch.run()
            del a, out, batch
        gc.collect()
        assert live_bytes(cann) == before, f"leaked after a {'failed' if fail else 'good'} batch"


def test_a_failed_runner_build_leaves_nothing(cann, tmp_path):
    gc.collect()
    before = live_bytes(cann)
    bad = tmp_path / "libbad.so"
    bad.write_bytes(b"\x7fELF" + b"\0" * 60)
    with pytest.raises(simpler.PreflightError):
        simpler.DeviceRunner(cann, runtime=bad)
    assert live_bytes(cann) == before
