"""Row checkpoints of the experiments: finished result rows saved after every row, so an
interrupted run resumes (``--resume``) where it stopped instead of recomputing (and retraining)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from p2penv.agents.checkpoint import _jsonable, atomic_write_json

RECOVER = "delete it, or run without --resume to start over"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back; the message names the file and the way out."""


# row fields that say which cell a row is, in the order the progress line shows them
ROW_KEYS = ("scenario", "setting", "mechanism", "N", "method", "profile", "player", "seed", "br_seed", "session")


class RowCheckpoint:
    """Completed result rows of an experiment, rewritten atomically after every row. With
    ``resume=True`` the saved rows are reused when the saved config equals the current one;
    otherwise they are discarded (one line on stderr says so and how many).

    ``<out_dir>/<name>_checkpoint.json``: {"config": ..., "rows": [...], "fields": [...]}, rows in their
    original key order (so resumed CSVs keep their columns); ``fields`` lists each distinct set of field
    names the rows were saved with, so a row edited by hand that lost (or gained) a field is refused on
    resume instead of being used (deleting whole rows is fine: their cells are computed again). No
    ``out_dir``: in memory only.

    ``total``: rows the run will have; each new row prints a progress line (count, ETA) on stderr.

    ``sweep``: config fields that only choose which cells run (e.g. ``("ns", "seeds")``). A saved
    checkpoint whose config differs from the current one in those fields only is resumed too: its rows
    are looked up by their keys, so extending a sweep (another N, more seeds) computes only the new cells.

    Attributes: ``rows``; ``reused`` (rows taken from the file); ``discarded`` (rows dropped because
    the config changed); ``matched`` (a saved checkpoint of this same config was found and resumed).
    """

    def __init__(self, out_dir: str | Path | None, name: str, config: dict, resume: bool = False,
                 total: int | None = None, sweep: tuple[str, ...] = ()):
        self.name, self.total = name, total
        self._t0 = time.perf_counter()
        self._new = 0
        self.path = None if out_dir is None else Path(out_dir) / f"{name}_checkpoint.json"
        self.config = json.loads(json.dumps(config, default=_jsonable, sort_keys=True))
        self.rows: list[dict] = []
        self._fields: list[list[str]] = []  # the distinct field lists of the rows
        self.reused = self.discarded = 0
        self.matched = False
        if resume and self.path is not None and self.path.exists():
            saved = self._read()
            fixed = lambda c: {k: v for k, v in c.items() if k not in sweep}  # noqa: E731
            if fixed(saved["config"]) == fixed(self.config):
                self._check_fields(saved)
                for row in saved["rows"]:
                    self._record_fields(row)
                self.rows, self.reused, self.matched = saved["rows"], len(saved["rows"]), True
            else:
                self.discarded = len(saved["rows"])
                diff = sorted(k for k in set(saved["config"]) | set(self.config)
                              if saved["config"].get(k) != self.config.get(k) and k not in sweep)
                print(f"{name}: {self.path} was made with a different config (differs in {', '.join(diff)}); "
                      f"discarded its {self.discarded} row(s), starting over", file=sys.stderr, flush=True)
        if self.path is not None:
            self._write()  # records the config at once, so work saved before the first row can resume

    def _read(self) -> dict:
        try:
            saved = json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{self.path}: corrupt checkpoint ({e}); {RECOVER}") from None
        if not (isinstance(saved, dict) and isinstance(saved.get("config"), dict)
                and isinstance(saved.get("rows"), list) and all(isinstance(r, dict) for r in saved["rows"])):
            raise CheckpointError(f'{self.path}: not a row checkpoint (expected {{"config": {{...}}, '
                                  f'"rows": [{{...}}, ...]}}); {RECOVER}')
        return saved

    def _check_fields(self, saved: dict) -> None:
        """CheckpointError naming the row and the fields when a row's field set is none of those the rows
        were saved with (a hand edit). Checkpoints written before the field lists were recorded are not checked."""
        fields = saved.get("fields")
        if fields is None:
            return
        if not (isinstance(fields, list) and all(isinstance(f, list) for f in fields)):
            raise CheckpointError(f"{self.path}: 'fields' is not a list of field lists; {RECOVER}")
        known = [set(f) for f in fields]
        for i, row in enumerate(saved["rows"]):
            if set(row) in known:
                continue
            closest = min(known, key=lambda f: len(f ^ set(row)), default=set())
            missing, extra = sorted(closest - set(row)), sorted(set(row) - closest)
            what = "; ".join(([f"missing field(s) {missing}"] if missing else [])
                             + ([f"unexpected field(s) {extra}"] if extra else []))
            raise CheckpointError(f"{self.path}: row {i + 1} ({_label(row)}): {what} against the fields the rows were "
                                  f"saved with (edited by hand?); {RECOVER}")

    def _record_fields(self, row: dict) -> None:
        if list(row) not in self._fields:
            self._fields.append(list(row))

    def _write(self) -> None:
        atomic_write_json(self.path, dict(config=self.config, rows=self.rows, fields=self._fields), sort_keys=False)

    def find(self, **key) -> dict | None:
        """The saved row whose fields match ``key``, or None."""
        return next((r for r in self.rows if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, row: dict) -> dict:
        self.rows.append(row)
        self._record_fields(row)
        if self.path is not None:
            self._write()
        self._new += 1
        self._progress(row)
        return row

    def _progress(self, row: dict) -> None:
        """One stderr line per finished row: count (of ``total``), what it was, elapsed and ETA."""
        done = len(self.rows)
        label = _label(row)
        elapsed = time.perf_counter() - self._t0
        line = f"{self.name}: row {done}" + (f"/{self.total}" if self.total else "") + f" ({label}) {elapsed:.0f} s"
        if self.total and self.total > done:
            line += f", ETA {elapsed / self._new * (self.total - done):.0f} s"
        print(line, file=sys.stderr, flush=True)


def _label(row: dict) -> str:
    """Which cell a row is: its ``ROW_KEYS`` fields, e.g. ``setting=elastic-uniform, N=2, method=nash, seed=0``."""
    return ", ".join(f"{k}={row[k]}" for k in ROW_KEYS if k in row)
