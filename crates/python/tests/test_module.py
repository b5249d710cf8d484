"""simpler.Module: a C SO compiled here, installed through the dispatcher,
its kernels launched by name on both launch paths."""

import gc
import struct

import numpy as np
import pytest

import simpler
from conftest import live_bytes

KERNELS = r"""
#include <stdint.h>
#include <stdio.h>
/* Creates the file named by the NUL-terminated path in the payload. */
uint32_t k_touch(void *p) {
    FILE *f = fopen((const char *)p, "w");
    if (!f) return 1;
    fputs("touched", f);
    return fclose(f) == 0 ? 0 : 2;
}
struct write_args { uint64_t dst; uint32_t value; uint32_t count; };
/* Writes count words value + i to the device address dst. */
uint32_t k_write(void *p) {
    struct write_args *a = p;
    uint32_t *dst = (uint32_t *)(uintptr_t)a->dst;
    for (uint32_t i = 0; i < a->count; i++) dst[i] = a->value + i;
    return 0;
}
uint32_t k_fail(void *p) { (void)p; return 7; }
uint32_t k_data[4] = {1, 2, 3, 4};
"""

PATHS = ["type2", "binary"]


@pytest.fixture
def kernels_so(compile_so):
    return compile_so("kernels", KERNELS)


@pytest.mark.parametrize("path", PATHS)
def test_the_readme_example(cann, kernels_so, tmp_path, path):
    target = tmp_path / "x"
    m = simpler.Module(cann, kernels_so, kernels=["k_touch"], device=0, launch_path=path)
    m.launch("k_touch", payload=str(target).encode() + b"\0", threads=4, timeout_ms=10_000)
    assert target.read_text() == "touched"
    assert m.info["launch_path"] == path
    assert m.kernels == ["k_touch"]
    m.close()


@pytest.mark.parametrize("path", PATHS)
def test_a_kernel_writes_device_memory(cann, kernels_so, path):
    with simpler.Module(cann, kernels_so, ["k_write"], launch_path=path) as m:
        out = m.alloc(4 * 64)
        m.launch("k_write", struct.pack("<QII", out.device_addr, 1000, 64))
        np.testing.assert_array_equal(out.to_numpy(np.uint32), 1000 + np.arange(64, dtype=np.uint32))
        info = m.info
        assert info["so"] == str(kernels_so)
        assert info["preinstall_name"] == f"simpler_inner_{info['fingerprint']:016x}.so"
        assert (info["registration"] is None) == (path == "type2")


@pytest.mark.parametrize("path", PATHS)
def test_a_failing_kernel_is_a_kernel_error(cann, kernels_so, path):
    with simpler.Module(cann, kernels_so, ["k_fail", "k_touch"], launch_path=path) as m:
        with pytest.raises(simpler.KernelError) as caught:
            m.launch("k_fail", threads=2, timeout_ms=10_000)
    err = caught.value
    assert isinstance(err, simpler.CannError)
    assert err.code == 507018
    assert err.name == "ACL_ERROR_RT_AICPU_EXCEPTION"
    assert err.step == "sync"
    assert err.kernels == ["k_fail"]
    assert "k_fail" in str(err)


def test_undeclared_kernels_and_closed_modules(cann, kernels_so):
    m = simpler.Module(cann, kernels_so, ["k_touch"])
    with pytest.raises(simpler.ArgumentError, match="k_write"):
        m.launch("k_write", b"")
    m.close()
    assert m.closed
    with pytest.raises(simpler.ArgumentError, match="was closed"):
        m.launch("k_touch", b"/dev/null\0")
    m.close()


def test_a_data_object_kernel_is_refused_before_upload(cann, kernels_so):
    gc.collect()
    before = cann.sim_stats(0)
    with pytest.raises(simpler.PreflightError, match="k_data") as caught:
        simpler.Module(cann, kernels_so, ["k_touch", "k_data"])
    assert "function" in caught.value.problem
    after = cann.sim_stats(0)
    assert after["live_bytes"] == before["live_bytes"]
    assert after["launches_kfc"] == before["launches_kfc"], "nothing was bootstrapped"


def test_module_inputs_are_checked(cann, kernels_so, tmp_path):
    with pytest.raises(simpler.SimplerError, match="libabsent.so"):
        simpler.Module(cann, tmp_path / "libabsent.so", ["k"])
    text = tmp_path / "libtext.so"
    text.write_text("hello")
    with pytest.raises(simpler.PreflightError):
        simpler.Module(cann, text, ["k"])
    with pytest.raises(simpler.ArgumentError, match="launch path"):
        simpler.Module(cann, kernels_so, ["k_touch"], launch_path="fast")
    with pytest.raises(simpler.ArgumentError, match="at least one kernel"):
        simpler.Module(cann, kernels_so, [])


def test_modules_leave_nothing_on_the_device(cann, kernels_so):
    gc.collect()
    before = cann.sim_stats(0)
    for path in PATHS:
        with simpler.Module(cann, kernels_so, ["k_write", "k_fail"], launch_path=path) as m:
            buf = m.alloc(16)
            m.launch("k_write", struct.pack("<QII", buf.device_addr, 1, 4))
            with pytest.raises(simpler.KernelError):
                m.launch("k_fail")
            del buf
    gc.collect()
    after = cann.sim_stats(0)
    assert after["live_bytes"] == before["live_bytes"]
    assert after["binaries_live"] == before["binaries_live"]
    assert after["functions_live"] == before["functions_live"]
