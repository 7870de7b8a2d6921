"""A dataset larger than a memory cap loads with the cap in force (a memory cgroup)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from builders import Drawing, make_dataset

pytestmark = pytest.mark.timeout(300)
CAP = 320 << 20


def _cgroup(name: str) -> tuple[str, str] | None:
    """(folder, the file that caps it) of a new memory cgroup, or None where none can be made."""
    if os.geteuid() != 0:
        return None
    candidates = [
        ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),  # v1
        ("/sys/fs/cgroup", "memory.max"),  # v2
    ]
    for root, limit in candidates:
        if not os.path.isfile(os.path.join(root, "cgroup.procs")):
            continue
        if limit == "memory.max" and "memory" not in Path(root, "cgroup.controllers").read_text():
            continue
        folder = os.path.join(root, name)
        try:
            os.makedirs(folder, exist_ok=True)
            Path(folder, limit).write_text(str(CAP))
        except OSError:
            continue
        return folder, limit
    return None


@pytest.fixture
def capped_group() -> Iterator[str]:
    made = _cgroup(f"datumio-test-{os.getpid()}")
    if made is None:
        pytest.skip("needs root and a writable memory cgroup (v1 or v2)")
    folder, _ = made
    yield folder
    with contextlib.suppress(OSError):  # the processes in it are gone; else leave it
        os.rmdir(folder)


def test_a_dataset_larger_than_the_cap_loads_with_the_cap_in_force(
    tmp_path: Path, capped_group: str
) -> None:
    # 160 raw records of 1024x700x3: 344 MB of shards, more than the 320 MiB cap.
    drawing = Drawing({"a": 80, "b": 80}, size=(700, 1024), picture="solid", names="{k}")
    out = make_dataset(tmp_path, drawing, encode="raw", workers=None)
    size = sum(f.stat().st_size for f in (out / "shards").iterdir())
    assert size > CAP
    script = textwrap.dedent(
        f"""
        import datumio
        spec = datumio.Transform(size=(32, 32), dtype="uint8")
        if __name__ == "__main__":
            with datumio.Loader({str(out)!r}, 8, sampling="natural", workers=1,
                                transform=spec) as loader:
                seen = sum(len(labels) for _, labels in loader)
            print("records", seen)
        """
    )
    procs = os.path.join(capped_group, "cgroup.procs")

    def enter() -> None:
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")  # the shards' pages must come back in, under the cap
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        preexec_fn=enter,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "records 160" in done.stdout
    failcnt = Path(capped_group, "memory.failcnt")  # v1: times the cap was reached
    events = Path(capped_group, "memory.events")  # v2: "max N"
    if failcnt.exists():
        assert int(failcnt.read_text()) > 0  # the cap was in force: pages were reclaimed
    elif events.exists():
        counts = dict(line.split() for line in events.read_text().splitlines())
        assert int(counts.get("max", 0)) > 0
