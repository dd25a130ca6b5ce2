"""The Python package against the command line: the same library gives the
same sweep either way, its errors carry the command line's sentences, and an
interrupted sweep resumes whole."""

from __future__ import annotations

import _thread
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest

import stepsweep

ROOT = Path(__file__).resolve().parents[2]


def binary() -> str:
    """The command line to hold the package against: STEPSWEEP_BIN, or the
    release build in this repository's target/."""
    path = os.environ.get("STEPSWEEP_BIN", str(ROOT / "target" / "release" / "stepsweep"))
    if not Path(path).is_file():
        pytest.fail(f"no stepsweep binary at {path}; run `cargo build --release` or set STEPSWEEP_BIN")
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary(), *args], capture_output=True, text=True)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


SMALL = dict(trajectories=500, steps=[0.1, 0.2, 0.3, 0.45, 0.55], backend="cpu", seed=1)


def test_run_of_a_preset_gives_the_cli_cells_value_for_value(tmp_path: Path) -> None:
    sweep = stepsweep.run("poly", **SMALL, progress=False)
    o = cli("run", "poly", "--trajectories", "500", "--steps", "0.1,0.2,0.3,0.45,0.55",
            "--backend", "cpu", "--seed", "1", "-q", "--out", str(tmp_path / "cli"))
    assert o.returncode == 0, o.stderr
    expected = read_csv(tmp_path / "cli" / "cells.csv")
    pd.testing.assert_frame_equal(sweep.cells, expected, check_exact=True)
    assert (sweep.out / "cells.csv").read_bytes() == (tmp_path / "cli" / "cells.csv").read_bytes()
    assert sweep.summary["trajectories"] == 2500
    assert sweep.summary["spec"] == stepsweep.run("poly", **SMALL, progress=False).summary["spec"]
    assert sweep.trajectories is None
    assert any(f.name == "outcomes.png" for f in sweep.figures)


def test_a_dict_spec_and_a_path_spec_give_the_same_sweep(tmp_path: Path) -> None:
    text = stepsweep.presets().set_index("name").loc["poly", "toml"]
    path = tmp_path / "poly.toml"
    path.write_text(text)
    as_dict = tomllib.loads(text)
    by_path = stepsweep.run(path, **SMALL, progress=False)
    by_dict = stepsweep.run(as_dict, **SMALL, progress=False)
    pd.testing.assert_frame_equal(by_path.cells, by_dict.cells, check_exact=True)
    assert by_path.summary["spec"] == by_dict.summary["spec"]


def cli_sentence(*args: str) -> str:
    o = cli(*args)
    assert o.returncode == 2, o.stderr
    line = o.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    return line.removeprefix("error: ")


def test_a_bad_spec_raises_value_error_with_the_cli_sentence(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('trajectories = 10\n[model]\nkind = "poly"\n[steps]\nvalues = [-0.1]\n')
    expected = cli_sentence("run", str(bad), "--out", str(tmp_path / "o"))
    with pytest.raises(ValueError) as e:
        stepsweep.run(bad, progress=False)
    assert str(e.value) == expected
    # A bad keyword, as the command line's bad flag.
    expected = cli_sentence("run", "poly", "--steps", "0.2:0.1:x", "--out", str(tmp_path / "o"))
    with pytest.raises(ValueError) as e:
        stepsweep.run("poly", steps="0.2:0.1:x", progress=False)
    assert str(e.value) == expected
    with pytest.raises(ValueError, match="--backend 'tpu' is not one of auto, cpu, gpu"):
        stepsweep.run("poly", backend="tpu")
    with pytest.raises(ValueError, match="neither a spec file nor a preset"):
        stepsweep.run("no-such-preset")
    assert not (tmp_path / "o").exists()


LONG = ["--trajectories", "100000", "--steps", "0.1,0.2,0.3,0.35,0.4,0.45,0.5,0.55",
        "--max-iters", "2000", "--seed", "5", "--backend", "cpu", "--chunk-size", "20000",
        "--write-trajectories"]


def test_keyboard_interrupt_leaves_a_directory_that_resume_finishes_byte_identical(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    o = cli("run", "poly", *LONG, "-q", "--out", str(reference))
    assert o.returncode == 0, o.stderr

    out = tmp_path / "interrupted"
    interrupted = []

    def progress(done: int, total: int) -> None:
        # Ctrl-C as a notebook's interrupt delivers it: to the main thread,
        # once the first chunk is done.
        if done > 0 and not interrupted:
            interrupted.append(done)
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt) as e:
        stepsweep.run("poly", out=out, trajectories=100000,
                      steps=[0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55], max_iters=2000,
                      seed=5, backend="cpu", chunk_size=20000, write_trajectories=True,
                      progress=progress)
    assert interrupted, "the sweep ended before the interrupt"
    assert "--resume" in str(e.value), str(e.value)
    assert (out / "journal.json").is_file()
    assert not (out / "cells.csv").exists()

    o = cli("run", "poly", *LONG, "-q", "--out", str(out), "--resume")
    assert o.returncode == 0, o.stderr
    for name in ("cells.csv", "trajectories.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (out / "journal.json").exists()


def test_parquet_tables_hold_the_csv_values(tmp_path: Path) -> None:
    kw = dict(SMALL, write_trajectories=True, progress=False)
    csv = stepsweep.run("poly", **kw)
    parquet = stepsweep.run("poly", format="parquet", out=tmp_path / "p", **kw)
    assert parquet.format == "parquet"
    assert not (parquet.out / "cells.csv").exists()
    pd.testing.assert_frame_equal(parquet.cells, csv.cells, check_dtype=False, check_exact=True)
    rows = parquet.trajectories
    assert len(rows) == 2500
    pd.testing.assert_frame_equal(rows, read_csv(csv.trajectories_path), check_dtype=False, check_exact=True)
    batches = list(parquet.trajectory_batches(rows=1000))
    assert sum(len(b) for b in batches) == 2500


def test_presets_devices_and_the_stubs() -> None:
    names = set(stepsweep.presets()["name"])
    assert {"poly", "scalar-deep", "relu-single", "mlp-lr-plane"} <= names
    devices = stepsweep.devices()
    if os.environ.get("STEPSWEEP_REQUIRE_GPU"):
        # CI installs lavapipe: an adapter that runs f64.
        assert devices, "no GPU adapter, yet STEPSWEEP_REQUIRE_GPU is set"
    for d in devices:
        assert d["name"] and isinstance(d["f64"], bool) and d["max_buffer_size"] > 0
    stub = Path(stepsweep.__file__).with_name("_native.pyi")
    assert stub.is_file() and (stub.parent / "py.typed").is_file()
    # The stub names every keyword the native run takes.
    import inspect
    native = inspect.signature(stepsweep._native.run)
    text = stub.read_text()
    for name in native.parameters:
        assert f"{name}:" in text, f"_native.pyi lacks run's {name}"


def test_a_temporary_directory_lives_as_long_as_its_sweep() -> None:
    sweep = stepsweep.run("poly", **SMALL, progress=False)
    out = sweep.out
    assert (out / "summary.json").is_file()
    del sweep
    import gc

    gc.collect()
    assert not out.exists()


def test_the_gil_is_released_while_a_sweep_runs() -> None:
    import threading

    counter = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            counter[0] += 1

    # The progress callback runs on this thread every tenth of a second,
    # with the GIL; between two calls the counting thread runs only if the
    # sweep has released the GIL.
    samples: list[int] = []
    t = threading.Thread(target=count)
    t.start()
    try:
        stepsweep.run("poly", out=None, trajectories=100000,
                      steps=[0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55], max_iters=2000,
                      seed=5, backend="cpu", chunk_size=20000, write_trajectories=True,
                      figures=False, progress=lambda done, total: samples.append(counter[0]))
    finally:
        stop.set()
        t.join()
    assert len(samples) >= 3, "the sweep was too short to sample"
    assert samples[-2] - samples[0] > 10000, samples


def test_reproduce_quick_returns_the_report_rows(tmp_path: Path) -> None:
    r = stepsweep.reproduce(quick=True, out=tmp_path / "reproduce")
    assert {"claim", "predicted", "measured", "passed"} <= set(r.rows.columns)
    assert len(r.rows) >= 13
    assert r.passed, r.rows[~r.rows.passed][["claim", "measured"]]
    assert r.report_html.is_file() and r.report_md.is_file()
    assert all(Path(f).is_file() for f in r.rows.figure)
