//! Sharding a sweep across machines, and merging the shards back.
//!
//! Shard i of N runs the contiguous trajectory ids ⌊i·T/N⌋ .. ⌊(i+1)·T/N⌋ of
//! the T in the sweep. Contiguous ranges keep every shard's work close to T/N
//! whatever the grid's shape, and since a trajectory's initialization depends
//! only on (seed, id), a shard draws exactly what the unsharded run draws for
//! those ids. A shard writes its partial per-cell statistics to shard.json;
//! `merge` adds them up with `CellStats::merge`, which is exact (counts and
//! maxima), so the merged cells.csv is byte for byte the unsharded one.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::aggregate::CellStats;
use crate::error::{Error, Result};
use crate::grid::Sweep;
use crate::journal::{self, Identity};
use crate::output;
use crate::spec::{Precision, Spec};
use crate::sweep::{self, SweepReport};

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
    /// Whether the shard wrote trajectories.csv for its ids.
    pub trajectories_csv: bool,
    pub cells: Vec<CellStats>,
}

impl ShardFile {
    pub fn of(report: &SweepReport, shard: Shard) -> ShardFile {
        ShardFile {
            stepsweep: env!("CARGO_PKG_VERSION").into(),
            name: report.name.clone(),
            shard,
            ids: shard.ids(report.sweep.total()),
            spec: report.sweep.spec.to_toml(),
            backend: report.backend.clone(),
            adapter: report.adapter.clone(),
            precision: report.precision,
            seconds: report.seconds,
            trajectory_steps: report.trajectory_steps,
            trajectories_csv: report.sweep.spec.output.trajectories,
            cells: report.cells.clone(),
        }
    }

    pub fn read(dir: &Path) -> Result<ShardFile> {
        let path = dir.join(SHARD_FILE);
        if !path.is_file() {
            let why = if dir.join(journal::JOURNAL).is_file() {
                "is an unfinished shard; finish it with `stepsweep run … --resume` before merging"
            } else {
                "holds no shard.json; give directories written by `stepsweep run … --shard i/N`"
            };
            return Err(Error::spec(format!("{} {why}", dir.display())));
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::spec(format!(
                "{} is not a shard file of this stepsweep ({e}); rerun that shard",
                path.display()
            ))
        })
    }
}

/// Merges finished shard directories into `out`, which then holds what the
/// unsharded run would have written. Refuses shards of different sweeps,
/// backends or precisions, and an incomplete or duplicated set.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<SweepReport> {
    let Some(first_dir) = dirs.first() else {
        return Err(Error::spec(
            "give the shard directories to merge, such as `stepsweep merge runs/s0 runs/s1 --out runs/all`",
        ));
    };
    let mut shards: Vec<(PathBuf, ShardFile)> = Vec::with_capacity(dirs.len());
    for dir in dirs {
        shards.push((dir.clone(), ShardFile::read(dir)?));
    }
    let first = &shards[0].1;
    for (dir, s) in &shards[1..] {
        let differs = if s.spec != first.spec {
            Some("are shards of different sweeps (their spec.toml differ); merge only shards of one sweep".to_string())
        } else if s.shard.count != first.shard.count {
            Some(format!(
                "split the sweep into different numbers of shards ({} and {}); merge the shards of one split",
                first.shard.count, s.shard.count
            ))
        } else if (&s.backend, s.precision) != (&first.backend, first.precision) {
            Some(format!(
                "ran on different backends ({} {} and {} {}); rerun them with the same --backend and --precision",
                first.backend,
                first.precision.name(),
                s.backend,
                s.precision.name()
            ))
        } else {
            None
        };
        if let Some(why) = differs {
            return Err(Error::spec(format!(
                "{} and {} {why}",
                first_dir.display(),
                dir.display()
            )));
        }
    }
    let count = first.shard.count;
    let mut by_index: BTreeMap<u64, &PathBuf> = BTreeMap::new();
    for (dir, s) in &shards {
        if let Some(other) = by_index.insert(s.shard.index, dir) {
            return Err(Error::spec(format!(
                "shard {} is given twice ({} and {}); give each shard once",
                s.shard,
                other.display(),
                dir.display()
            )));
        }
    }
    let missing = count - by_index.len() as u64;
    if missing > 0 {
        let named: Vec<String> = (0..count)
            .filter(|i| !by_index.contains_key(i))
            .take(4)
            .map(|i| format!("{i}/{count}"))
            .collect();
        let more = if missing > named.len() as u64 {
            " and more"
        } else {
            ""
        };
        return Err(Error::spec(format!(
            "the set of shards is incomplete: {} {}{more} {} missing; give all {count} shard directories",
            if missing == 1 { "shard" } else { "shards" },
            named.join(", "),
            if missing == 1 { "is" } else { "are" },
        )));
    }
    let spec = Spec::from_toml(&first.spec, &format!("{} shard.json", first_dir.display()))?;
    let sweep = Sweep::new(spec)?;
    shards.sort_by_key(|(_, s)| s.shard.index);
    let ordered: Vec<&ShardFile> = shards.iter().map(|(_, s)| s).collect();
    let first = ordered[0];
    let mut cells =
        vec![CellStats::new(sweep.cells[0].model.minimizers().len()); sweep.cells.len()];
    for s in &ordered {
        if s.ids != s.shard.ids(sweep.total()) || s.cells.len() != cells.len() {
            return Err(Error::spec(format!(
                "shard {} does not match its spec's grid; rerun it with this stepsweep",
                s.shard
            )));
        }
        for (c, partial) in cells.iter_mut().zip(&s.cells) {
            c.merge(partial);
        }
    }
    let report = SweepReport {
        name: first.name.clone(),
        rule: sweep.spec.stop.rule(first.precision, sweep.spec.max_iters),
        cells,
        backend: first.backend.clone(),
        adapter: first.adapter.clone(),
        precision: first.precision,
        seconds: ordered.iter().map(|s| s.seconds).sum(),
        trajectory_steps: ordered.iter().map(|s| s.trajectory_steps).sum(),
        // Shards do not record kernel time; the merged summary leaves it out.
        kernel_seconds: None,
        note: Some(format!("merged from {count} shards")),
        sweep,
    };

    let identity = Identity {
        spec: first.spec.clone(),
        shard: None,
    };
    let dir = journal::OutputDir::open(out, &identity, false, force)?;
    let result = (|| {
        if ordered.iter().all(|s| s.trajectories_csv) {
            let sources: Vec<PathBuf> = shards
                .iter()
                .map(|(dir, _)| dir.join("trajectories.csv"))
                .collect();
            concatenate_trajectories(&sources, &out.join("trajectories.csv"))?;
        }
        sweep::write_outputs(&report, out, None)
    })();
    dir.finish(result.is_ok());
    result.map(|()| report)
}

/// Joins the shards' trajectories.csv in shard order, keeping one header.
fn concatenate_trajectories(sources: &[PathBuf], dest: &Path) -> Result<()> {
    let tmp = output::temp_path(dest);
    let file = std::fs::File::create(&tmp).map_err(|e| Error::io("cannot write", &tmp, e))?;
    let mut w = BufWriter::new(file);
    for (k, source) in sources.iter().enumerate() {
        let file = std::fs::File::open(source).map_err(|e| Error::io("cannot read", source, e))?;
        let mut lines = BufReader::new(file).lines();
        if let Some(header) = lines.next() {
            let header = header.map_err(|e| Error::io("cannot read", source, e))?;
            if k == 0 {
                writeln!(w, "{header}").map_err(|e| Error::io("cannot write", &tmp, e))?;
            }
        }
        for line in lines {
            let line = line.map_err(|e| Error::io("cannot read", source, e))?;
            writeln!(w, "{line}").map_err(|e| Error::io("cannot write", &tmp, e))?;
        }
    }
    let file = w
        .into_inner()
        .map_err(|e| Error::io("cannot write", &tmp, e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, dest).map_err(|e| Error::io("cannot write", dest, e))
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
