//! Memory budgets. Sizes that would not fit in the machine's memory are
//! refused before anything is allocated: the per-cell statistics (cells are
//! held whole, not chunked) and an explicit `--chunk-size`. Without
//! `--chunk-size` the sweep picks a chunk that fits, so trajectories are
//! chunked automatically and never refused.

use crate::error::{Error, Result};

/// Bytes one cell costs over a run: its `Cell` and model, its `CellStats`, its
/// row in cells.csv and, largest, its object in summary.json.
pub const BYTES_PER_CELL: u64 = 4096;

/// The share of available memory a run plans to use; the rest is headroom for
/// the allocator, the GPU driver and whatever else runs.
const BUDGET_SHARE: u64 = 2;

/// Memory assumed where the system does not say (non-Linux).
const FALLBACK_AVAILABLE: u64 = 4 << 30;

/// Memory available to a new allocation now, in bytes.
pub fn available_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(FALLBACK_AVAILABLE, |kib| kib.saturating_mul(1024))
}

/// The bytes a run may plan to use.
pub fn budget_bytes() -> u64 {
    available_bytes() / BUDGET_SHARE
}

fn gib(bytes: u128) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// Refuses a grid whose per-cell statistics would not fit in memory.
pub fn check_cells(steps: usize, axis_values: usize) -> Result<()> {
    let cells = steps as u128 * axis_values as u128;
    let need = cells * u128::from(BYTES_PER_CELL);
    let budget = budget_bytes();
    if need > u128::from(budget) {
        return Err(Error::spec(format!(
            "{steps} step sizes × {axis_values} axis values is {cells} cells, whose statistics need about {} of memory but {} is available, and cells are not chunked; sweep at most {} cells",
            gib(need),
            gib(u128::from(budget)),
            budget / BYTES_PER_CELL
        )));
    }
    Ok(())
}

/// Bytes one trajectory of a chunk holds while it is processed: its end, its
/// final iterate in f64 (and f32 for the GPU), its assessment and, when
/// trajectories.csv is written, its row of text.
pub fn bytes_per_trajectory(dim: usize, trajectories_csv: bool) -> u64 {
    let dim = dim as u64;
    let base = 128 + 48 * dim;
    if trajectories_csv {
        base + 256 + 32 * dim
    } else {
        base
    }
}

/// Chunks held at once: one being drawn, one running, one being tallied and
/// written (see `runner::drive`).
pub const CHUNKS_IN_FLIGHT: u64 = 3;

/// The largest chunk that fits the memory budget.
pub fn max_chunk(dim: usize, trajectories_csv: bool) -> u64 {
    (budget_bytes() / (CHUNKS_IN_FLIGHT * bytes_per_trajectory(dim, trajectories_csv))).max(1)
}

/// Refuses an explicit chunk size that would not fit in memory.
pub fn check_chunk(chunk: u64, dim: usize, trajectories_csv: bool) -> Result<()> {
    let fits = max_chunk(dim, trajectories_csv);
    if chunk > fits {
        let need = u128::from(chunk)
            * u128::from(CHUNKS_IN_FLIGHT * bytes_per_trajectory(dim, trajectories_csv));
        return Err(Error::spec(format!(
            "--chunk-size {chunk} needs about {} of memory but {} is available; give at most {fits}, or leave --chunk-size out to have the sweep chunked to fit",
            gib(need),
            gib(u128::from(budget_bytes()))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_memory_are_refused_and_say_so() {
        let e = check_chunk(u64::MAX, 1, false).unwrap_err().to_string();
        assert!(
            e.contains("--chunk-size") && e.contains("give at most"),
            "{e}"
        );
        assert!(check_chunk(1024, 1, true).is_ok());
        let e = check_cells(10_000_000, 10_000_000).unwrap_err().to_string();
        assert!(e.contains("cells are not chunked"), "{e}");
        assert!(check_cells(100, 100).is_ok());
    }
}
