"""Run your own AICPU code on a Huawei Ascend NPU, with no install step.

``simpler`` loads the CANN API at run time (:class:`Cann`), sends a tiny
dispatcher SO and the runtime SO to the device in one bootstrap launch that
installs the runtime under a content-addressed name, then runs batches of
its built-in operations by that name (:class:`DeviceRunner`,
:class:`Batch`). Any other AICPU SO is installed the same way and its
kernels launched by name (:class:`Module`). The same code drives real CANN
and the bundled CANN simulator.

Example::

    import numpy as np, simpler
    cann = simpler.Cann.simulator()
    with simpler.DeviceRunner(cann, device=0, threads=4) as runner:
        a = runner.upload(np.arange(1024, dtype=np.float32))
        b = runner.upload(np.ones(1024, dtype=np.float32))
        out = runner.alloc(4096)
        batch = runner.batch()
        batch.add_f32(out, a, b)
        batch.run()
        assert (out.to_numpy(np.float32) == np.arange(1024) + 1).all()

    m = simpler.Module(cann, "libmine.so", kernels=["k_touch"], device=0, launch_path="type2")
    m.launch("k_touch", payload=b"/tmp/x\0", threads=4, timeout_ms=10_000)
"""

from ._native import (
    HOST_TRIPLE,
    ArgumentError,
    Batch,
    Cann,
    CannError,
    DeviceBuffer,
    DeviceRunner,
    KernelError,
    Module,
    PreflightError,
    SimplerError,
    TaskError,
    bundled_dir,
    fnv1a64,
)

__all__ = [
    "HOST_TRIPLE",
    "ArgumentError",
    "Batch",
    "Cann",
    "CannError",
    "DeviceBuffer",
    "DeviceRunner",
    "KernelError",
    "Module",
    "PreflightError",
    "SimplerError",
    "TaskError",
    "bundled_dir",
    "fnv1a64",
]
