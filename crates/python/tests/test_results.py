"""Every built-in op gives numpy's result, and data moves both ways."""

import numpy as np
import pytest

import simpler


def test_the_readme_example(cann):
    runner = simpler.DeviceRunner(cann, device=0, threads=4)
    a = runner.upload(np.arange(1024, dtype=np.float32))
    b = runner.upload(np.ones(1024, dtype=np.float32))
    out = runner.alloc(4096)
    batch = runner.batch()
    batch.add_f32(out, a, b)
    batch.run()
    assert (out.to_numpy(np.float32) == np.arange(1024) + 1).all()
    runner.close()


def test_every_op_matches_numpy(runner):
    rng = np.random.default_rng(7)
    n = 3000
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    da, db = runner.upload(a), runner.upload(b)
    copy, filled, added, scaled = (runner.alloc(4 * n) for _ in range(4))
    total, digest = runner.alloc(4), runner.alloc(8)
    batch = runner.batch()
    batch.copy(copy, db)
    batch.fill(filled, 0x3C)
    batch.add_f32(added, da, db)
    batch.scale_f32(scaled, da, 2.5)
    batch.sum_f32(total, da)
    batch.fnv1a64(digest, da)
    assert len(batch) == 6
    assert batch.run_statuses() == ["Ok"] * 6

    np.testing.assert_array_equal(copy.to_numpy(np.float32), b)
    assert (filled.to_numpy() == 0x3C).all()
    np.testing.assert_array_equal(added.to_numpy(np.float32), a + b)
    np.testing.assert_array_equal(scaled.to_numpy(np.float32), a * np.float32(2.5))
    # The device adds left to right from 0.0.
    assert total.to_numpy(np.float32)[0] == np.add.accumulate(a, dtype=np.float32)[-1]
    assert int(digest.to_numpy(np.uint64)[0]) == simpler.fnv1a64(a.tobytes())


def test_fnv1a64_is_the_published_hash():
    # FNV-1a 64 offset basis for the empty input, and a known value.
    assert simpler.fnv1a64(b"") == 0xCBF29CE484222325
    assert simpler.fnv1a64(b"a") == 0xAF63DC4C8601EC8C


def test_uploads_take_bytes_and_any_dtype(runner):
    raw = runner.upload(b"\x01\x02\x03\x04")
    assert raw.to_bytes() == b"\x01\x02\x03\x04"
    assert len(raw) == raw.nbytes == 4
    grid = np.arange(12, dtype=np.int16).reshape(3, 4).T  # not C-contiguous
    buf = runner.upload(grid)
    np.testing.assert_array_equal(buf.to_numpy(np.int16), np.ascontiguousarray(grid).ravel())
    assert runner.upload(bytearray(b"xyz")).to_bytes() == b"xyz"


def test_write_at_an_offset(runner):
    buf = runner.upload(np.zeros(8, dtype=np.uint8))
    buf.write(b"\xff\xee", offset=3)
    assert buf.to_bytes() == b"\x00\x00\x00\xff\xee\x00\x00\x00"
    with pytest.raises(simpler.ArgumentError, match="do not fit"):
        buf.write(b"123", offset=6)


def test_one_buffer_may_be_several_operands(runner):
    x = np.linspace(-1, 1, 256, dtype=np.float32)
    buf = runner.upload(x)
    batch = runner.batch()
    batch.add_f32(buf, buf, buf)
    batch.run()
    np.testing.assert_array_equal(buf.to_numpy(np.float32), x + x)


def test_an_empty_batch_runs_without_a_launch(cann, runner):
    before = cann.sim_stats(0)["launches_aicpu"]
    assert runner.batch().run_statuses() == []
    assert cann.sim_stats(0)["launches_aicpu"] == before


def test_runner_info_describes_the_bootstrap(runner):
    info = runner.info
    assert info["device"] == 0 and info["threads"] == 4
    assert info["preinstall_name"] == f"simpler_inner_{info['fingerprint']:016x}.so"
    assert info["installed_path"].endswith(info["preinstall_name"])
    assert info["cache"] in ("miss", "hit", "joined")
    assert info["runtime_len"] > 0 and info["dispatcher_len"] > 0


def test_the_binary_launch_path_gives_the_same_results(cann):
    x = np.arange(777, dtype=np.float32)
    with simpler.DeviceRunner(cann, threads=3, launch_path="binary") as runner:
        assert runner.info["launch_path"] == "binary"
        src, out = runner.upload(x), runner.alloc(x.nbytes)
        batch = runner.batch()
        batch.scale_f32(out, src, -2.0)
        batch.run()
        np.testing.assert_array_equal(out.to_numpy(np.float32), x * np.float32(-2.0))
    with pytest.raises(simpler.ArgumentError, match="unknown launch path"):
        simpler.DeviceRunner(cann, launch_path="fast")
