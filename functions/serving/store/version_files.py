"""Where loaded model versions live on local disk (``/tmp`` in Lambda): one folder per loaded version.

A version's files are downloaded once into its folder and memory-mapped from there, so what a version
makes resident is the pages requests touch (file-backed, which the kernel can drop under pressure)
rather than every byte of every file. A folder is removed when its version is released (replaced by a
newer one, or evicted): requests still answering from the old version keep reading their mappings —
on Linux an unlinked file lives until its last mapping goes — and the space is reclaimed when they
finish.

Each process owns ``{root}/{pid}/``; a new process removes the folders of processes that are gone (a
Lambda container that re-initialises keeps ``/tmp``), never those of a live one (several local workers
may share a root).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import weakref
from functools import cache
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class VersionFolder:
    """One loaded version's local files; ``release`` removes them (idempotent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._released = False
        self._size: int | None = None
        # Also when the version is dropped without a release (a slot evicted mid-load): no orphan files.
        self._remove = weakref.finalize(self, shutil.rmtree, path, ignore_errors=True)

    @property
    def released(self) -> bool:
        """Whether the version was let go (its files are gone; live mappings still read)."""
        return self._released

    def size_bytes(self) -> int:
        """Bytes of the version's files (what it may map), measured once it is loaded; 0 once released."""
        if self._released:
            return 0
        if self._size is None:
            self._size = sum(entry.stat().st_size for entry in self.path.rglob("*") if entry.is_file())
        return self._size

    def release(self) -> None:
        """Remove the folder; mappings of its files stay valid until their arrays are dropped."""
        self._released = True
        self._remove()  # runs once, whoever calls it first


class ModelDirectory:
    """This process's folder of loaded versions under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / str(os.getpid())
        root.mkdir(parents=True, exist_ok=True)
        _remove_orphans(root)
        self.path.mkdir(exist_ok=True)

    def new_folder(self, tenant_id: str, version: str) -> VersionFolder:
        """A fresh, empty folder for one load of ``version`` (two loads never share one)."""
        prefix = f"{_UNSAFE.sub('_', tenant_id)}.{_UNSAFE.sub('_', version)}."
        return VersionFolder(Path(tempfile.mkdtemp(prefix=prefix, dir=self.path)))

    def folders(self) -> list[Path]:
        """The version folders present now (loaded, or being loaded)."""
        return sorted(path for path in self.path.iterdir() if path.is_dir())


def _remove_orphans(root: Path) -> None:
    for entry in root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid() or _alive(int(entry.name)):
            continue
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@cache
def default_directory() -> ModelDirectory:
    """The directory of callers that name none (scripts, tests): under the system's temporary folder."""
    return ModelDirectory(Path(tempfile.gettempdir()) / "embedrec-models")
