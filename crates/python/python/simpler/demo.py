"""The demo behind ``python -m simpler demo``.

It does what ``simpler run`` does (bootstrap, one batch with one task per
built-in op, each result checked on the host) through the Python API, and
prints the same report, line for line and field for field.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional, Sequence

import numpy as np

from ._native import Cann, DeviceRunner, SimplerError, fnv1a64

#: The ops the self-check runs, in the order the report lists them.
OPS = ("Copy", "Fill", "AddF32", "ScaleF32", "SumF32", "Fnv1a64")

_CACHE = {
    "miss": "performed",
    "hit": "cache hit",
    "joined": "joined a concurrent bootstrap",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simpler",
        description="simpler from Python: run the demo of `simpler run`.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="bootstrap, one batch of every built-in op, verified; print the report",
    )
    demo.add_argument("--backend", choices=("sim", "cann"), default="sim")
    demo.add_argument(
        "--cann-lib",
        action="append",
        default=[],
        metavar="PATH",
        help="a library implementing the CANN API (repeat for several)",
    )
    demo.add_argument("--device", type=int, default=0)
    demo.add_argument("--threads", type=int, default=4)
    demo.add_argument(
        "--launch-path",
        choices=("type2", "binary"),
        default="type2",
        help="how the runtime's init and exec are launched",
    )
    demo.add_argument("--elements", type=int, default=4096)
    demo.add_argument("--timeout-ms", type=int, default=60_000, metavar="MS")
    demo.add_argument("--sleep-us", type=int, default=None, metavar="US")
    return parser


def _load(backend: str, libs: Sequence[str]) -> Cann:
    if libs:
        return Cann.libraries(list(libs))
    return Cann.simulator() if backend == "sim" else Cann.toolkit()


def run(
    cann: Cann,
    *,
    backend: str = "sim",
    device: int = 0,
    threads: int = 4,
    launch_path: str = "type2",
    elements: int = 4096,
    timeout_ms: Optional[int] = 60_000,
    sleep_us: Optional[int] = None,
    out=None,
) -> bool:
    """Runs the demo on ``cann`` and prints the report to ``out`` (default
    stdout); returns whether every op gave the host's result."""
    out = out if out is not None else sys.stdout
    if elements < 1:
        raise ValueError("elements must be at least 1")

    def say(line: str) -> None:
        print(line, file=out)

    with DeviceRunner(
        cann,
        device=device,
        threads=threads,
        launch_path=launch_path,
        launch_timeout_ms=timeout_ms,
    ) as runner:
        info = runner.info
        libs = ", ".join(str(p) for p in cann.library_paths)
        n = info["threads"]
        say(
            f"simpler run: {'simulator' if backend == 'sim' else 'CANN'} ({libs}), "
            f"device {info['device']}, {n} AICPU thread{'' if n == 1 else 's'}"
        )
        say(f"  device machine  {info['device_machine']}")
        say(f"  dispatcher      {info['dispatcher']} ({info['dispatcher_len']} bytes)")
        say(f"  runtime         {info['runtime']} ({info['runtime_len']} bytes)")
        say(f"  fingerprint     {info['fingerprint']:016x}")
        say(f"  preinstall name {info['preinstall_name']}")
        say(
            f"  preflight       {_ms(info['preflight_time'])} "
            "(read, ELF checks and fingerprint of both SOs)"
        )
        say(f"  installed at    {info['installed_path']}")
        say(
            f"  bootstrap       {_CACHE[info['cache']]} in {_ms(info['bootstrap_time'])}, "
            f"{info['bytes_uploaded']} bytes uploaded"
        )
        say(f"  launch path     {info['launch_path']}")
        say(f"  init            {_ms(info['init_time'])}")

        tasks, exec_time, mismatches = _self_check(runner, elements, sleep_us)
        say(f"  exec            {tasks} tasks over {elements} f32 elements in {_ms(exec_time)}")
        if not mismatches:
            say(f"  verification    all {len(OPS)} ops correct ({', '.join(OPS)})")
            say("OK")
            return True
        say("  verification    FAILED")
        for m in mismatches:
            say(f"    {m}")
        return False


def _self_check(runner: DeviceRunner, n: int, sleep_us: Optional[int]):
    f32 = np.float32
    i = np.arange(n, dtype=f32)
    a = i * f32(0.5) - f32(7.25)
    b = (n - np.arange(n)).astype(f32) * f32(0.125) + f32(1.0)
    factor = f32(-3.5)
    fill = 0xA5
    nbytes = n * 4

    dev_a = runner.upload(a)
    dev_b = runner.upload(b)
    copy = runner.alloc(nbytes)
    filled = runner.alloc(nbytes)
    added = runner.alloc(nbytes)
    scaled = runner.alloc(nbytes)
    total = runner.alloc(4)
    digest = runner.alloc(8)

    batch = runner.batch()
    batch.copy(copy, dev_b)
    batch.fill(filled, fill)
    batch.add_f32(added, dev_a, dev_b)
    batch.scale_f32(scaled, dev_a, float(factor))
    batch.sum_f32(total, dev_a)
    batch.fnv1a64(digest, dev_a)
    if sleep_us is not None:
        batch.sleep_us(sleep_us)
    tasks = len(batch)
    started = time.perf_counter()
    batch.run()
    exec_time = time.perf_counter() - started

    mismatches: List[str] = []

    def expect(op: str, ok: bool, detail: str) -> None:
        if not ok:
            mismatches.append(f"{op}: {detail}")

    def first_diff(got: np.ndarray, want: np.ndarray) -> str:
        bad = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
        if bad.size == 0:
            return f"{got.size} elements, expected {want.size}"
        k = int(bad[0])
        return f"element {k}: device {got[k]}, host {want[k]}"

    def same_bits(got: np.ndarray, want: np.ndarray) -> bool:
        return got.shape == want.shape and bool((got.view(np.uint32) == want.view(np.uint32)).all())

    got = copy.to_numpy(f32)
    expect("Copy", same_bits(got, b), first_diff(got, b))
    got = filled.to_numpy(np.uint8)
    expect("Fill", bool((got == fill).all()), f"expected every byte {fill:#04x}")
    want = a + b
    got = added.to_numpy(f32)
    expect("AddF32", same_bits(got, want), first_diff(got, want))
    want = a * factor
    got = scaled.to_numpy(f32)
    expect("ScaleF32", same_bits(got, want), first_diff(got, want))
    # Left to right from 0.0, as the device adds (numpy's sum is pairwise).
    want_sum = np.add.accumulate(a, dtype=f32)[-1]
    got_sum = total.to_numpy(f32)[0]
    expect(
        "SumF32",
        got_sum.view(np.uint32) == want_sum.view(np.uint32),
        f"device {got_sum}, host {want_sum}",
    )
    want_hash = fnv1a64(a.tobytes())
    got_hash = int(digest.to_numpy(np.uint64)[0])
    expect(
        "Fnv1a64",
        got_hash == want_hash,
        f"device {got_hash:016x}, host {want_hash:016x}",
    )
    return tasks, exec_time, mismatches


def main(argv: Sequence[str]) -> int:
    """The command line; returns the exit status."""
    args = _parser().parse_args(list(argv))
    try:
        cann = _load(args.backend, args.cann_lib)
        ok = run(
            cann,
            backend=args.backend,
            device=args.device,
            threads=args.threads,
            launch_path=args.launch_path,
            elements=args.elements,
            timeout_ms=args.timeout_ms,
            sleep_us=args.sleep_us,
        )
    except SimplerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not ok:
        print(f"error: some of the {len(OPS)} ops gave wrong results", file=sys.stderr)
        return 1
    return 0
