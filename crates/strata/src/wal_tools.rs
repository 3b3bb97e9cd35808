//! `strata wal inspect | verify | repair | compact`: offline tools for a
//! stopped broker's data files.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use strata_log::verify::{self, FileCheck};

#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// List the entries of one WAL segment file.
    Inspect {
        path: PathBuf,
        /// One JSON object per entry instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every checksum in every WAL segment and segment index; exit 1 if anything is damaged.
    Verify { data_dir: PathBuf },
    /// Rewrite each damaged segment keeping every intact entry, remove damaged indexes
    /// (the broker rebuilds them at startup); refuses while a broker runs.
    Repair { data_dir: PathBuf },
    /// Compact the WAL now, as the broker does in the background: segments
    /// with dead bytes are replaced by files of their live batches; refuses
    /// while a broker runs.
    Compact {
        data_dir: PathBuf,
        /// Compact segments whose live bytes are below this percentage of
        /// their size (100: every segment with anything dead).
        #[arg(long, default_value_t = 100)]
        live_percent: u8,
        /// The broker's `wal_segment_bytes`: a compacted file holds at most this.
        #[arg(long, default_value_t = 64 * 1024 * 1024)]
        wal_segment_bytes: u64,
        /// Then also rewrite every sealed segment whose partitions' batches
        /// are interleaved (all live ones included) with its batches grouped
        /// by partition, so that consumers of old data read each partition
        /// in long runs.
        #[arg(long)]
        regroup: bool,
    },
}

/// Runs a `wal` command; `Ok(false)` means "damage found" (exit status 1).
pub fn run(command: &WalCommand) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match command {
        WalCommand::Inspect { path, json } => {
            for e in verify::describe_wal(path)? {
                if *json {
                    let value = serde_json::json!({
                        "position": e.position, "length": e.length, "topic_id": e.topic_id,
                        "partition": e.partition, "base_offset": e.base_offset,
                        "record_count": e.record_count, "first_timestamp": e.first_timestamp,
                        "max_timestamp": e.max_timestamp, "codec": e.codec,
                    });
                    writeln!(out, "{value}")?;
                } else {
                    writeln!(
                        out,
                        "pos {:>10}  len {:>8}  topic {} partition {:>4}  offsets {}+{}  ts {}..{}  {}",
                        e.position, e.length, e.topic_id, e.partition, e.base_offset, e.record_count,
                        e.first_timestamp, e.max_timestamp, e.codec
                    )?;
                }
            }
            let check = verify::check_wal(path)?;
            report(&mut out, &check)?;
            Ok(!check.is_damaged())
        }
        WalCommand::Verify { data_dir } => {
            let checks = check_all(data_dir)?;
            for check in &checks {
                report(&mut out, check)?;
            }
            let damaged = checks.iter().filter(|c| c.is_damaged()).count();
            writeln!(out, "{} files checked, {damaged} damaged", checks.len())?;
            Ok(damaged == 0)
        }
        WalCommand::Repair { data_dir } => {
            let _lock = lock(data_dir)?;
            let (wal, _) = verify::data_files(data_dir)?;
            let mut repaired = 0;
            for path in &wal {
                let check = verify::repair_wal(path)?;
                repaired += usize::from(check.is_damaged());
                report_repair(&mut out, &check)?;
            }
            // Listed again: repairing a segment removed its index.
            let (_, indexes) = verify::data_files(data_dir)?;
            for path in &indexes {
                let check = verify::repair_index(path)?;
                if check.is_damaged() {
                    repaired += 1;
                    writeln!(
                        out,
                        "removed damaged index {} (the broker rebuilds it at startup)",
                        path.display()
                    )?;
                }
            }
            writeln!(
                out,
                "{} files checked, {repaired} repaired",
                wal.len() + indexes.len()
            )?;
            Ok(true)
        }
        WalCommand::Compact {
            data_dir,
            live_percent,
            wal_segment_bytes,
            regroup,
        } => {
            compact(
                &mut out,
                data_dir,
                *live_percent,
                *wal_segment_bytes,
                *regroup,
            )?;
            Ok(true)
        }
    }
}

/// Opens the data dir as the broker would (recovery included) and has the
/// sealing thread compact every due run.
fn compact(
    out: &mut impl Write,
    data_dir: &Path,
    live_percent: u8,
    wal_segment_bytes: u64,
    regroup: bool,
) -> anyhow::Result<()> {
    if !data_dir.join("wal").is_dir() {
        bail!("{} is not a data dir", data_dir.display());
    }
    let _lock = lock(data_dir)?;
    let before = strata_log::metrics::wal_disk_usage(data_dir);
    let mut options = strata_log::StoreOptions::new(data_dir.to_path_buf());
    options.wal_segment_bytes = wal_segment_bytes;
    let (store, _) = strata_log::LogStore::open(&options).context("cannot open the data dir")?;
    let policy = strata_log::wal_compaction::CompactionPolicy {
        live_ratio: f64::from(live_percent.min(100)) / 100.0,
        dead_bytes: 0,
        max_age_ms: 0,
        max_output_bytes: wal_segment_bytes,
    };
    let totals = store.compact_wal(policy).and_then(|compacted| {
        if !regroup {
            return Ok(compacted);
        }
        let regrouped = store.regroup_wal()?;
        Ok(strata_log::wal_compaction::CompactionTotals {
            key_passes: compacted.key_passes,
            runs: compacted.runs + regrouped.runs,
            failed_runs: compacted.failed_runs + regrouped.failed_runs,
            copied_bytes: compacted.copied_bytes + regrouped.copied_bytes,
            reclaimed_bytes: compacted.reclaimed_bytes + regrouped.reclaimed_bytes,
        })
    });
    store.shutdown();
    let totals = totals?;
    let after = strata_log::metrics::wal_disk_usage(data_dir);
    writeln!(
        out,
        "{} key compaction passes, {} runs ({} failed), {} bytes copied, {} bytes reclaimed; WAL {} files / {} bytes -> {} files / {} bytes",
        totals.key_passes,
        totals.runs,
        totals.failed_runs,
        totals.copied_bytes,
        totals.reclaimed_bytes,
        before.0,
        before.1,
        after.0,
        after.1
    )?;
    if totals.failed_runs > 0 {
        bail!("a compaction run failed (see the log); the segments it touched are unchanged");
    }
    Ok(())
}

fn check_all(data_dir: &Path) -> anyhow::Result<Vec<FileCheck>> {
    if !data_dir.is_dir() {
        bail!("{} is not a data dir", data_dir.display());
    }
    let (wal, indexes) = verify::data_files(data_dir)?;
    let mut checks = Vec::new();
    for path in &wal {
        checks.push(verify::check_wal(path)?);
    }
    for path in &indexes {
        checks.push(verify::check_index(path)?);
    }
    Ok(checks)
}

fn report(out: &mut impl Write, check: &FileCheck) -> anyhow::Result<()> {
    for d in &check.damaged {
        writeln!(
            out,
            "DAMAGED {} at {} ({} bytes)",
            check.path.display(),
            d.position,
            d.length
        )?;
    }
    Ok(())
}

fn report_repair(out: &mut impl Write, check: &FileCheck) -> anyhow::Result<()> {
    for d in &check.damaged {
        writeln!(
            out,
            "dropped {} bytes at {} of {} (kept {} intact)",
            d.length,
            d.position,
            check.path.display(),
            check.intact
        )?;
    }
    Ok(())
}

/// The data dir's lock, as `serve` takes it: a repair never runs beside a broker.
fn lock(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join("LOCK");
    let file = File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
    file.try_lock().with_context(|| {
        format!(
            "data dir {} is in use by a running broker",
            data_dir.display()
        )
    })?;
    Ok(file)
}
