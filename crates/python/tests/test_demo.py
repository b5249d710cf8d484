"""`python -m simpler demo` prints the report of `simpler run`, and the
bundled aarch64 device side runs it under qemu-user."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import simpler


def _run(argv, sim_root, **env):
    full = dict(os.environ, SIMPLER_SIM_ROOT=str(sim_root), **env)
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=300)


def _shape(report: str):
    """Each line with its values replaced: paths, hex digests, numbers."""
    lines = []
    for line in report.splitlines():
        line = re.sub(r"/\S+", "PATH", line)
        line = re.sub(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])", "HEX", line)
        line = re.sub(r"\d+(\.\d+)?", "N", line)
        line = re.sub(r"\bbootstrap( +)(performed|cache hit|joined a concurrent bootstrap)", r"bootstrap\1STATUS", line)
        lines.append(line)
    return lines


def test_the_demo_passes(tmp_path):
    out = _run([sys.executable, "-m", "simpler", "demo", "--threads", "3"], tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("simpler run: simulator (")
    assert lines[0].endswith("device 0, 3 AICPU threads")
    assert lines[-1] == "OK"
    assert "all 6 ops correct (Copy, Fill, AddF32, ScaleF32, SumF32, Fnv1a64)" in out.stdout


@pytest.mark.parametrize("path", ["type2", "binary"])
def test_the_demo_reports_as_the_cli_does(request, tmp_path, path):
    cli = request.config.getoption("--simpler-cli")
    if cli is None:
        pytest.skip("needs --simpler-cli (cargo xtask test passes it)")
    ours = _run([sys.executable, "-m", "simpler", "demo", "--launch-path", path], tmp_path / "py")
    theirs = _run([cli, "run", "--launch-path", path], tmp_path / "cli")
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert _shape(ours.stdout) == _shape(theirs.stdout), (ours.stdout, theirs.stdout)
    assert f"  launch path     {path}" in ours.stdout.splitlines()


def test_a_demo_error_is_one_line_and_a_failing_exit(tmp_path):
    out = _run(
        [sys.executable, "-m", "simpler", "demo", "--timeout-ms", "200", "--sleep-us", "3000000"],
        tmp_path,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("error: ")
    assert "507046" in out.stderr


def test_the_aarch64_device_side_under_qemu(request, tmp_path):
    launcher = request.config.getoption("--aarch64-launcher")
    if launcher is None:
        pytest.skip("needs --aarch64-launcher (cargo xtask test passes it)")
    program = shlex.split(launcher)[0]
    if not any((Path(d) / program).is_file() for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip(f"{program} is not installed")
    device_bin = Path(simpler.bundled_dir("aarch64-unknown-linux-gnu")) / "simpler-sim-aicpu"
    out = _run(
        [sys.executable, "-m", "simpler", "demo", "--elements", "512"],
        tmp_path,
        SIMPLER_SIM_AICPU_BIN=str(device_bin),
        SIMPLER_SIM_AICPU_LAUNCHER=launcher,
    )
    assert out.returncode == 0, out.stderr
    assert "  device machine  aarch64" in out.stdout.splitlines()
    assert out.stdout.splitlines()[-1] == "OK"
