"""Atomic file writes: a reader never sees a half-written state file or file drop."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_open(path: Path, mode: str = "wb", **open_args):
    """A file to write `path` through: a temporary file beside it, moved over `path` once written in
    full (and synced), removed instead when the writing fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_args) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def load_json(path: Path):
    """The parsed file, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None


class MutationLog:
    """Source changes made through the control API: applied under the instance's lock, logged with
    their emulated time and saved, so a restarted emulator replays them. Subclasses set
    MUTATIONS and SYSTEM, and provide lock, now(), _mutations, _apply_mutation() and _persist()."""

    MUTATIONS: tuple[str, ...] = ()
    SYSTEM = ""

    def mutate(self, action: str, args: dict) -> dict:
        """The control API's entry point: one of MUTATIONS with its keyword arguments."""
        if action not in self.MUTATIONS:
            raise ValueError(f"unknown {self.SYSTEM} mutation {action!r}; known: {', '.join(self.MUTATIONS)}")
        try:
            return getattr(self, action)(**(self._mutation_args(action, args or {})))
        except TypeError as exc:
            raise ValueError(f"{action}: {exc}") from None

    def _mutation_args(self, action: str, args: dict) -> dict:
        return args

    def _mutate(self, action: str, args: dict) -> dict:
        import copy

        with self.lock:
            at = self.now()
            result = self._apply_mutation(action, args, at)
            self._mutations.append({"action": action, "args": args, "at": at.isoformat()})
            self._persist()
            return copy.deepcopy(result)
