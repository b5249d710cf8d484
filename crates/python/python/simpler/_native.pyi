"""Type stubs of the native module, ``simpler._native``."""

from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any, Dict, List, Optional, Sequence, Type, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, "PathLike[str]"]
_Bytes = Union[bytes, bytearray, npt.ArrayLike]

HOST_TRIPLE: str
"""The target triple of this machine, e.g. ``x86_64-unknown-linux-gnu``."""

class SimplerError(Exception):
    """Base class of every error simpler raises."""

class CannError(SimplerError):
    """A CANN call failed."""

    code: int
    """The ``aclError`` code, e.g. 507046."""
    name: Optional[str]
    """The code's name in CANN, e.g. ``ACL_ERROR_RT_STREAM_SYNC_TIMEOUT``."""
    hint: Optional[str]
    """The usual cause of this code and what to do, if known."""
    call: str
    """The C function that failed."""

class KernelError(CannError):
    """A module's kernel failed, at its launch or at the sync after it."""

    step: str
    """``"launch"`` or ``"sync"``."""
    kernels: List[str]
    """The kernels launched since the last sync (CANN does not say which failed)."""

class PreflightError(SimplerError):
    """An SO failed the checks made before upload."""

    file: str
    role: str
    problem: str

class TaskError(SimplerError):
    """A batch ran but some of its tasks failed."""

    total: int
    failures: List[Dict[str, Any]]
    """One dict per failed task: ``index``, ``op``, ``status``, ``raw_status``."""

class ArgumentError(SimplerError):
    """An argument or task was rejected before anything reached the device."""

class Cann:
    """A loaded CANN API, real or simulated; shared by every runner on it."""

    @staticmethod
    def simulator() -> "Cann":
        """The bundled CANN simulator (``$SIMPLER_ARTIFACTS_DIR`` wins)."""
    @staticmethod
    def toolkit() -> "Cann":
        """Real CANN from ``$ASCEND_HOME_PATH/lib64`` or ``$ASCEND_TOOLKIT_HOME/lib64``."""
    @staticmethod
    def libraries(paths: Sequence[_Path]) -> "Cann":
        """These libraries, in order; each symbol from the first exporting it."""
    @property
    def library_paths(self) -> List[Path]:
        """The library files loaded."""
    @property
    def is_simulator(self) -> bool:
        """Whether this is the simulator."""
    @property
    def device_machine(self) -> str:
        """The machine the device's AICPU runs, e.g. ``aarch64``."""
    def device_count(self) -> int:
        """``aclrtGetDeviceCount``."""
    def sim_stats(self, device: int) -> Optional[Dict[str, int]]:
        """The simulator's accounting for ``device``; None on real CANN."""

class DeviceBuffer:
    """Device memory, freed when collected, by ``free()`` or ``with``."""

    @property
    def nbytes(self) -> int:
        """Size in bytes."""
    @property
    def device_addr(self) -> int:
        """The device address of the first byte."""
    @property
    def freed(self) -> bool:
        """Whether the memory was freed."""
    def __len__(self) -> int: ...
    def to_numpy(self, dtype: npt.DTypeLike = None) -> np.ndarray:
        """The contents as a new 1-D array of ``dtype`` (default uint8)."""
    def to_bytes(self) -> bytes:
        """The contents as bytes."""
    def write(self, data: _Bytes, offset: int = 0) -> None:
        """Copies ``data`` into the buffer at byte ``offset``."""
    def free(self) -> None:
        """Frees the memory now (a batch naming it keeps it until it runs)."""
    def __enter__(self) -> "DeviceBuffer": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Batch:
    """Built-in operations run in one launch; each is checked as it is added."""

    def copy(self, dst: DeviceBuffer, src: DeviceBuffer) -> None:
        """``dst = src`` (equal lengths)."""
    def fill(self, dst: DeviceBuffer, value: int) -> None:
        """Every byte of ``dst`` = ``value``."""
    def add_f32(self, dst: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer) -> None:
        """``dst[i] = a[i] + b[i]`` over float32."""
    def scale_f32(self, dst: DeviceBuffer, src: DeviceBuffer, factor: float) -> None:
        """``dst[i] = src[i] * factor`` over float32."""
    def sum_f32(self, dst: DeviceBuffer, src: DeviceBuffer) -> None:
        """``dst`` (one float32) = the sum of ``src``, left to right."""
    def fnv1a64(self, dst: DeviceBuffer, src: DeviceBuffer) -> None:
        """``dst`` (one uint64) = FNV-1a 64 of ``src``'s bytes."""
    def sleep_us(self, micros: int) -> None:
        """Diagnostic: a task sleeping ``micros`` microseconds."""
    def panic(self) -> None:
        """Diagnostic: a task that panics on the device."""
    def __len__(self) -> int: ...
    def run(self) -> None:
        """Runs the batch; raises TaskError naming failed tasks."""
    def run_statuses(self) -> List[Optional[str]]:
        """Runs the batch; every task's status name, failed ones included."""

class DeviceRunner:
    """A device with simpler's runtime SO installed and initialised."""

    def __init__(
        self,
        cann: Cann,
        device: int = 0,
        threads: int = 1,
        *,
        dispatcher: Optional[_Path] = None,
        runtime: Optional[_Path] = None,
        launch_path: str = "type2",
        launch_timeout_ms: Optional[int] = 60000,
        bootstrap_timeout_ms: Optional[int] = 60000,
        device_machine: Optional[str] = None,
    ) -> None: ...
    def alloc(self, nbytes: int) -> DeviceBuffer:
        """Allocates ``nbytes`` of device memory (uninitialised)."""
    def upload(self, data: _Bytes) -> DeviceBuffer:
        """A device buffer holding a copy of ``data``."""
    def batch(self) -> Batch:
        """A new, empty batch on this runner."""
    @property
    def info(self) -> Dict[str, Any]:
        """What building the runner did."""
    @property
    def closed(self) -> bool:
        """Whether the runner was closed."""
    def close(self) -> None:
        """Destroys the stream and frees the runner's own memory."""
    def __enter__(self) -> "DeviceRunner": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

class Module:
    """An AICPU SO installed on a device, its declared kernels launched by name."""

    def __init__(
        self,
        cann: Cann,
        so: _Path,
        kernels: Sequence[str],
        *,
        device: int = 0,
        launch_path: str = "type2",
        dispatcher: Optional[_Path] = None,
        bootstrap_timeout_ms: Optional[int] = 60000,
        device_machine: Optional[str] = None,
    ) -> None: ...
    def launch(
        self,
        kernel: str,
        payload: Optional[_Bytes] = None,
        *,
        threads: int = 1,
        timeout_ms: Optional[int] = 60000,
    ) -> None:
        """Runs ``kernel`` on ``threads`` AICPU threads with ``payload`` and waits."""
    def alloc(self, nbytes: int) -> DeviceBuffer:
        """Device memory on the module's device, for the kernels' data."""
    def upload(self, data: _Bytes) -> DeviceBuffer:
        """A buffer on the module's device holding a copy of ``data``."""
    @property
    def kernels(self) -> List[str]:
        """The declared kernels."""
    @property
    def info(self) -> Dict[str, Any]:
        """What building the module did."""
    @property
    def closed(self) -> bool:
        """Whether the module was closed."""
    def close(self) -> None:
        """Destroys the stream and releases the kernels' registration."""
    def __enter__(self) -> "Module": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def fnv1a64(data: bytes) -> int:
    """FNV-1a 64 of ``data``."""

def bundled_dir(triple: str) -> Path:
    """The package directory holding the bundled files for ``triple``."""
