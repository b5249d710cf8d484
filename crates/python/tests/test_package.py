"""The installed package: its files, its bundled simulator and SOs, its
documentation."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import simpler


def _inside(path, directory) -> bool:
    return Path(path).resolve().is_relative_to(Path(directory).resolve())


def test_the_package_ships_its_stubs_and_marker():
    package = Path(simpler.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_native.pyi").is_file()


def test_the_bundled_simulator_and_sos_are_used(cann, runner):
    host = Path(simpler.bundled_dir(simpler.HOST_TRIPLE))
    assert all(_inside(p, host) for p in cann.library_paths), cann.library_paths
    assert cann.is_simulator
    info = runner.info
    machine_dir = Path(simpler.bundled_dir(
        "aarch64-unknown-linux-gnu" if info["device_machine"] == "aarch64" else simpler.HOST_TRIPLE
    ))
    assert _inside(info["runtime"], machine_dir)
    assert _inside(info["dispatcher"], machine_dir)


def test_the_aarch64_device_side_is_bundled():
    d = Path(simpler.bundled_dir("aarch64-unknown-linux-gnu"))
    for name in ("libsimpler_aicpu_dispatcher.so", "libsimpler_aicpu.so", "simpler-sim-aicpu"):
        assert (d / name).is_file(), name
    assert (d / "simpler-sim-aicpu").stat().st_mode & 0o111


def test_every_public_name_is_documented():
    assert simpler.__doc__
    for name in simpler.__all__:
        obj = getattr(simpler, name)
        if name == "HOST_TRIPLE":
            continue
        assert inspect.getdoc(obj), name
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}"


def test_an_explicit_artifacts_dir_wins_over_the_bundle(tmp_path):
    env = dict(os.environ, SIMPLER_ARTIFACTS_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", "import simpler; simpler.Cann.simulator()"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode != 0
    assert "libsimpler_cann_sim.so not found" in out.stderr
    assert str(tmp_path) in out.stderr
