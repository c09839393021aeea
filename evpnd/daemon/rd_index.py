"""RD indexes kept across restarts (see local/origination.py for why): the file I/O that the
origination core leaves to the shell."""

from __future__ import annotations

import json
import os
from pathlib import Path


class RdIndexStore:
    """VNI -> RD index, kept in `state_dir/rd-index.json` across restarts."""

    def __init__(self, state_dir: str) -> None:
        self.path = Path(state_dir) / "rd-index.json"
        self.indexes: dict[int, int] = {}
        self.error: str | None = None
        try:
            raw = json.loads(self.path.read_text())
            self.indexes = {int(k): int(v) for k, v in raw.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            self.error = f"{self.path}: {exc}; RD indexes start afresh"

    def index_for(self, vni: int) -> int:
        index = self.indexes.get(vni)
        if index is None:
            used = set(self.indexes.values())
            index = next(i for i in range(1, 65536) if i not in used)
            self.indexes[vni] = index
            self._save()
        return index

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({str(k): v for k, v in sorted(self.indexes.items())}))
            os.replace(tmp, self.path)
        except OSError as exc:
            self.error = f"{self.path}: cannot save RD indexes: {exc.strerror}"
