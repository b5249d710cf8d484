"""Each failure raises one specific exception carrying its facts."""

import numpy as np
import pytest

import simpler
from conftest import live_bytes


def test_the_classes_form_one_hierarchy():
    for cls in (simpler.CannError, simpler.PreflightError, simpler.TaskError, simpler.ArgumentError):
        assert issubclass(cls, simpler.SimplerError)
    assert issubclass(simpler.SimplerError, Exception)


def test_a_failed_task_is_a_task_error_naming_it(runner):
    out = runner.alloc(64)
    src = runner.upload(np.ones(16, dtype=np.float32))
    batch = runner.batch()
    batch.copy(out, src)
    batch.panic()
    with pytest.raises(simpler.TaskError) as caught:
        batch.run()
    err = caught.value
    assert err.total == 2
    assert err.failures == [{"index": 1, "op": "Panic", "status": "Panicked", "raw_status": 6}]
    assert "1 of 2 tasks failed" in str(err)
    # The other task ran.
    np.testing.assert_array_equal(out.to_numpy(np.float32), np.ones(16, dtype=np.float32))


def test_run_statuses_reports_failures_without_raising(runner):
    batch = runner.batch()
    batch.fill(runner.alloc(4), 1)
    batch.panic()
    assert batch.run_statuses() == ["Ok", "Panicked"]


def test_a_launch_timeout_is_a_cann_error_with_its_code(cann):
    with simpler.DeviceRunner(cann, threads=1, launch_timeout_ms=200) as runner:
        batch = runner.batch()
        batch.sleep_us(3_000_000)
        with pytest.raises(simpler.CannError) as caught:
            batch.run()
    err = caught.value
    assert err.code == 507046
    assert err.name == "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT"
    assert err.hint and err.hint in str(err)
    assert err.call.startswith("acl")


def test_bad_operands_are_refused_before_the_launch(runner):
    batch = runner.batch()
    a = runner.alloc(16)
    batch.fill(a, 0)
    with pytest.raises(simpler.ArgumentError, match=r"task 1 \(AddF32\).*differ in length"):
        batch.add_f32(a, a, runner.alloc(8))
    with pytest.raises(simpler.ArgumentError, match="whole number of 4-byte elements"):
        batch.scale_f32(runner.alloc(6), runner.alloc(6), 1.0)
    with pytest.raises(simpler.ArgumentError, match="dst must be 4 bytes"):
        batch.sum_f32(runner.alloc(8), a)
    # Refused tasks were not queued.
    assert len(batch) == 1
    assert batch.run_statuses() == ["Ok"]


def test_a_batch_runs_once(runner):
    batch = runner.batch()
    batch.run()
    with pytest.raises(simpler.ArgumentError, match="has run already"):
        batch.run()
    with pytest.raises(simpler.ArgumentError, match="has run already"):
        batch.fill(runner.alloc(1), 0)


def test_bad_arguments(cann, runner):
    with pytest.raises(simpler.ArgumentError, match="at least one byte"):
        runner.alloc(0)
    with pytest.raises(simpler.ArgumentError, match="thread count"):
        simpler.DeviceRunner(cann, threads=0)
    with pytest.raises(simpler.ArgumentError, match="negative"):
        simpler.DeviceRunner(cann, device=-1)
    with pytest.raises(simpler.ArgumentError, match="unknown machine"):
        simpler.DeviceRunner(cann, device_machine="vax")
    with pytest.raises(simpler.ArgumentError, match="Python objects"):
        runner.upload(np.array([object()]))
    with pytest.raises(simpler.ArgumentError, match="whole number of 8-byte"):
        runner.alloc(12).to_numpy(np.float64)
    with pytest.raises(OverflowError):
        runner.batch().fill(runner.alloc(1), 256)


def test_a_missing_so_names_the_file(cann, tmp_path):
    missing = tmp_path / "libnothere.so"
    with pytest.raises(simpler.SimplerError, match="libnothere.so") as caught:
        simpler.DeviceRunner(cann, runtime=missing)
    assert type(caught.value) is simpler.SimplerError


def test_a_file_that_is_not_elf_fails_preflight(cann, tmp_path):
    text = tmp_path / "libtext.so"
    text.write_text("not an ELF file\n")
    with pytest.raises(simpler.PreflightError) as caught:
        simpler.DeviceRunner(cann, runtime=text)
    err = caught.value
    assert err.file == str(text)
    assert err.role == "runtime"
    assert "ELF" in err.problem


def test_a_data_object_where_a_kernel_must_be_fails_preflight(cann, compile_so):
    so = compile_so(
        "dataexec",
        "unsigned simpler_aicpu_exec[4] = {1, 2, 3, 4};\n"
        "unsigned simpler_aicpu_init(void *args) { (void)args; return 0; }\n",
    )
    before = live_bytes(cann)
    with pytest.raises(simpler.PreflightError, match="simpler_aicpu_exec") as caught:
        simpler.DeviceRunner(cann, runtime=so)
    assert "function" in caught.value.problem
    assert live_bytes(cann) == before, "nothing reached the device"


def test_libraries_that_are_not_cann(tmp_path):
    with pytest.raises(simpler.SimplerError, match="libnocann.so"):
        simpler.Cann.libraries([tmp_path / "libnocann.so"])
    with pytest.raises(simpler.SimplerError):
        simpler.Cann.libraries([])
