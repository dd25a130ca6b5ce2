//! `stepsweep merge`: finished shard directories into one, which then holds
//! what the unsharded run would have written (see `shard`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::aggregate::CellStats;
use crate::error::{Error, Result};
use crate::journal::{self, Identity};
use crate::output::{self, columnar, trajectories};
use crate::runner::{self, SweepReport};
use crate::shard::ShardFile;
use crate::spec::{Format, Spec};
use crate::sweep::Sweep;

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
        shards.push((dir.clone(), journal::read_shard(dir)?));
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
        rule: sweep.rule(first.precision),
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
            let format = report.sweep.spec.output.format;
            let name = trajectories::file_name(format);
            let sources: Vec<PathBuf> = shards.iter().map(|(dir, _)| dir.join(name)).collect();
            match format {
                Format::Csv => concatenate_trajectories(&sources, &out.join(name))?,
                Format::Parquet => columnar::concatenate(
                    &sources,
                    &columnar::trajectory_schema(&report.sweep),
                    &out.join(name),
                )?,
            }
        }
        runner::write_outputs(&report, out, None, None)
    })();
    if result.is_err() {
        trajectories::remove_partial(out);
    }
    dir.finish(result.is_ok());
    result.map(|()| report)
}

/// Joins the shards' trajectories.csv in shard order, keeping one header.
/// (trajectories.parquet is joined by `columnar::concatenate`, row group by
/// row group.)
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
