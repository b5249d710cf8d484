"""Shared fixtures: a private simulator root, the simulator, runners, a C
compiler for test SOs, and the options `cargo xtask test` passes."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

# The simulator reads its root when a device process starts: set before
# anything loads it, so the suite never touches another run's files.
_SIM_ROOT = tempfile.mkdtemp(prefix="simpler-pytest-sim-")
os.environ["SIMPLER_SIM_ROOT"] = _SIM_ROOT

import simpler  # noqa: E402


def pytest_addoption(parser):
    parser.addoption(
        "--simpler-cli",
        default=None,
        help="the `simpler` CLI binary, to compare `python -m simpler demo` with `simpler run`",
    )
    parser.addoption(
        "--aarch64-launcher",
        default=None,
        help="command line that runs aarch64 programs here (e.g. qemu-aarch64 -L SYSROOT)",
    )


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SIM_ROOT, ignore_errors=True)


@pytest.fixture(scope="session")
def sim_root() -> Path:
    return Path(_SIM_ROOT)


@pytest.fixture(scope="session")
def cann() -> simpler.Cann:
    return simpler.Cann.simulator()


@pytest.fixture
def runner(cann):
    with simpler.DeviceRunner(cann, device=0, threads=4) as r:
        yield r


def live_bytes(cann, device=0) -> int:
    stats = cann.sim_stats(device)
    assert stats is not None, "the simulator keeps accounts"
    return stats["live_bytes"]


@pytest.fixture
def compile_so(tmp_path):
    """Compiles C source into a shared object with the system's cc."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler (cc) on PATH")

    def build(name: str, source: str) -> Path:
        src = tmp_path / f"{name}.c"
        out = tmp_path / f"lib{name}.so"
        src.write_text(source)
        subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
        return out

    return build
