//! Sharding a sweep across machines (`merge` puts the shards back together).
//!
//! Shard i of N runs the contiguous trajectory ids ⌊i·T/N⌋ .. ⌊(i+1)·T/N⌋ of
//! the T in the sweep. Contiguous ranges keep every shard's work close to T/N
//! whatever the grid's shape, and since a trajectory's initialization depends
//! only on (seed, id), a shard draws exactly what the unsharded run draws for
//! those ids. A shard writes its partial per-cell statistics to shard.json;
//! `merge` adds them up with `CellStats::merge`, which is exact (counts and
//! maxima), so the merged cells.csv is byte for byte the unsharded one.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::aggregate::CellStats;
use crate::spec::Precision;

/// Where a shard keeps its partial aggregates.
pub const SHARD_FILE: &str = "shard.json";

/// Most shards one sweep may be split into.
pub const MAX_SHARDS: u64 = 1 << 20;

/// Shard `index` of `count`, written `i/N` with 0 ≤ i < N (SLURM's
/// `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// This shard's trajectory ids among `total`.
    pub fn ids(&self, total: u64) -> Range<u64> {
        let at = |i: u64| (u128::from(total) * u128::from(i) / u128::from(self.count)) as u64;
        at(self.index)..at(self.index + 1)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("give the shard as i/N with 0 ≤ i < N ≤ {MAX_SHARDS}, such as 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = match (i.trim().parse::<u64>(), n.trim().parse::<u64>()) {
            (Ok(i), Ok(n)) => (i, n),
            _ => return Err(bad()),
        };
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// shard.json: one finished shard's partial statistics and what produced them.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShardFile {
    pub stepsweep: String,
    pub name: String,
    pub shard: Shard,
    pub ids: Range<u64>,
    /// The resolved spec as spec.toml holds it.
    pub spec: String,
    pub backend: String,
    pub adapter: Option<String>,
    pub precision: Precision,
    pub seconds: f64,
    pub trajectory_steps: u64,
    /// Whether the shard wrote its trajectories file (CSV or Parquet, as the
    /// spec says) for its ids.
    pub trajectories_csv: bool,
    pub cells: Vec<CellStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_id_once_in_order() {
        for total in [0u64, 1, 7, 100, 1 << 50] {
            for count in [1u64, 2, 3, 4, 7, 64] {
                let mut next = 0;
                for index in 0..count {
                    let ids = Shard { index, count }.ids(total);
                    assert_eq!(ids.start, next);
                    assert!(ids.end - ids.start <= total.div_ceil(count));
                    next = ids.end;
                }
                assert_eq!(next, total);
            }
        }
    }

    #[test]
    fn shard_arguments_parse_or_say_what_to_give() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "a/b", "3", "-1/4", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("i/N"), "{bad}: {e}");
        }
    }
}
