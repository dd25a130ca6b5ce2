"""stepsweep from Python: Monte Carlo sweeps of gradient descent over step
sizes and initializations, run by the same library as the command line.

    import stepsweep
    sweep = stepsweep.run("poly", trajectories=2000, steps=[0.1, 0.2, 0.3], backend="cpu", seed=1)
    sweep.cells          # pandas.DataFrame: the columns of cells.csv
    sweep.summary        # dict: summary.json
    sweep.trajectories   # pandas.DataFrame when write_trajectories=True, else None
    sweep.out            # the output directory

A sweep runs with the GIL released. Ctrl-C (KeyboardInterrupt) stops it after
the chunk in flight and leaves a directory that ``run(..., out=DIR,
resume=True)`` (or ``stepsweep run ... --resume``) finishes. Bad input raises
ValueError with the command line's sentence; GPU and I/O failures raise
RuntimeError.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import _native

__version__ = _native.__version__

__all__ = ["Sweep", "Reproduction", "run", "presets", "devices", "reproduce"]


class Sweep:
    """A finished sweep's directory, read into pandas."""

    def __init__(self, out: Path, figures: list[Path], temporary: bool):
        self.out = out
        self.figures = figures
        if temporary:
            # The directory lives as long as this object: the trajectories
            # are read lazily from it.
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(out), True)
        self._cells: pd.DataFrame | None = None
        self._summary: dict[str, Any] | None = None

    @property
    def format(self) -> str:
        return "parquet" if (self.out / "cells.parquet").is_file() else "csv"

    @property
    def cells(self) -> pd.DataFrame:
        """One row per cell (step size, and the second axis's value)."""
        if self._cells is None:
            if (self.out / "shard.json").is_file():
                raise ValueError(
                    f"{self.out} holds one shard of a sweep; merge the shards with `stepsweep merge DIR... --out DIR` and read the merged directory"
                )
            if self.format == "parquet":
                self._cells = pd.read_parquet(self.out / "cells.parquet")
            else:
                self._cells = pd.read_csv(self.out / "cells.csv")
        return self._cells

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json: the spec, backend, timings, theory and cells."""
        if self._summary is None:
            self._summary = json.loads((self.out / "summary.json").read_text())
        return self._summary

    @property
    def trajectories_path(self) -> Path | None:
        for name in ("trajectories.parquet", "trajectories.csv"):
            if (self.out / name).is_file():
                return self.out / name
        return None

    @property
    def trajectories(self) -> pd.DataFrame | None:
        """One row per trajectory, read from disk when first asked for (not
        cached: a large sweep's rows are read again rather than held); None
        unless the sweep wrote them. For rows too many for memory, iterate
        ``trajectory_batches()``."""
        path = self.trajectories_path
        if path is None:
            return None
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)

    def trajectory_batches(self, rows: int = 1 << 16) -> Iterator[pd.DataFrame]:
        """The trajectories of a Parquet sweep, a batch of rows at a time."""
        path = self.trajectories_path
        if path is None or path.suffix != ".parquet":
            raise ValueError(
                f"{self.out} holds no trajectories.parquet; run with write_trajectories=True, format='parquet'"
            )
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()

    def __repr__(self) -> str:
        return f"Sweep(out={str(self.out)!r}, cells={len(self.cells)})"


def _steps(steps: str | Sequence[float] | None) -> str | None:
    if steps is None or isinstance(steps, str):
        return steps
    # repr is the shortest text that reads back as the same float.
    return ",".join(repr(float(s)) for s in steps)


def _progress(progress: bool | Callable[[int, int], Any] | None, quiet: bool):
    """A callback (done, total), a tqdm bar where tqdm is installed, or None."""
    if callable(progress):
        return progress, None
    if progress is False or quiet:
        return None, None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None, None
    bar = tqdm(total=0, unit="traj", unit_scale=True, desc="stepsweep")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar


def run(
    spec: str | os.PathLike[str] | Mapping[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    steps: str | Sequence[float] | None = None,
    trajectories: int | None = None,
    seed: int | None = None,
    max_iters: int | None = None,
    backend: str | None = None,
    precision: str | None = None,
    chunk_size: int | None = None,
    threads: int | None = None,
    write_trajectories: bool = False,
    trace: int | None = None,
    resume: bool = False,
    force: bool = False,
    shard: str | tuple[int, int] | None = None,
    format: str | None = None,
    figures: bool = True,
    quiet: bool = False,
    progress: bool | Callable[[int, int], Any] | None = None,
) -> Sweep:
    """Runs a sweep, as ``stepsweep run`` does, and returns it.

    ``spec`` is a preset name, a spec file, or a dict with the TOML's
    structure. Every keyword is the command line's flag of the same name.
    Without ``out``, the sweep goes to a temporary directory that lives as
    long as the returned Sweep. ``progress`` is a callable ``(done, total)``,
    or False for none; by default a tqdm bar shows where tqdm is installed.
    """
    spec_arg, spec_json = None, None
    if isinstance(spec, Mapping):
        spec_json = json.dumps(spec)
    else:
        spec_arg = os.fspath(spec)
    temporary = out is None
    out_path = Path(tempfile.mkdtemp(prefix="stepsweep-")) if temporary else Path(out)
    if isinstance(shard, tuple):
        shard = f"{shard[0]}/{shard[1]}"
    callback, bar = _progress(progress, quiet)
    try:
        done = _native.run(
            str(out_path),
            spec_arg,
            spec_json,
            steps=_steps(steps),
            trajectories=trajectories,
            seed=seed,
            max_iters=max_iters,
            backend=backend,
            precision=precision,
            chunk_size=chunk_size,
            threads=threads,
            write_trajectories=write_trajectories,
            trace=trace,
            resume=resume,
            force=force,
            shard=shard,
            format=format,
            figures=figures,
            progress=callback,
        )
    except BaseException:
        # A temporary directory holds nothing to resume from; a given one
        # keeps its journal.
        if temporary:
            shutil.rmtree(out_path, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return Sweep(out_path, [Path(f) for f in done["figures"]], temporary)


def presets() -> pd.DataFrame:
    """The embedded presets: name, what each sweeps, and its TOML."""
    return pd.DataFrame(_native.presets(), columns=["name", "about", "toml"])


def devices() -> list[dict[str, Any]]:
    """The GPU adapters wgpu sees (an empty list where there are none)."""
    return list(_native.devices())


class Reproduction:
    """The paper's claims checked: one row per claim, and the report's paths."""

    def __init__(self, result: dict[str, Any]):
        self.rows = pd.DataFrame(result["rows"])
        self.out = Path(result["out"])
        self.report_md = Path(result["report_md"])
        self.report_html = Path(result["report_html"])
        self.seconds = float(result["seconds"])

    @property
    def passed(self) -> bool:
        return bool(self.rows["passed"].all())

    def __repr__(self) -> str:
        held = int(self.rows["passed"].sum())
        return f"Reproduction({held} of {len(self.rows)} claims hold, out={str(self.out)!r})"


def reproduce(
    *,
    quick: bool = False,
    out: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    quiet: bool = True,
) -> Reproduction:
    """Checks every claim of the paper, as ``stepsweep reproduce`` does.
    Failing claims do not raise; ``.rows["passed"]`` says which held."""
    if out is None:
        out = Path("runs") / ("reproduce-quick" if quick else "reproduce")
    return Reproduction(_native.reproduce(str(out), quick=quick, backend=backend, quiet=quiet))
