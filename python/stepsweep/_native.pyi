from typing import Any, Callable

__version__: str

def run(
    out: str,
    spec: str | None = ...,
    spec_json: str | None = ...,
    *,
    steps: str | None = ...,
    trajectories: int | None = ...,
    seed: int | None = ...,
    max_iters: int | None = ...,
    backend: str | None = ...,
    precision: str | None = ...,
    chunk_size: int | None = ...,
    threads: int | None = ...,
    write_trajectories: bool = ...,
    trace: int | None = ...,
    resume: bool = ...,
    force: bool = ...,
    shard: str | None = ...,
    format: str | None = ...,
    figures: bool = ...,
    quiet: bool = ...,
    progress: Callable[[int, int], Any] | None = ...,
) -> dict[str, Any]: ...
def presets() -> list[dict[str, str]]: ...
def devices() -> list[dict[str, Any]]: ...
def reproduce(
    out: str, *, quick: bool = ..., backend: str | None = ..., quiet: bool = ...
) -> dict[str, Any]: ...
