//! The machine's own limits, measured in the same run as the broker:
//! sequential write bandwidth with `fdatasync` in the data dir's file
//! system, 4 KiB append + `fdatasync` latency, and loopback TCP bandwidth.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::stats::{latency_histogram, Percentiles};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// 1 MiB writes, each followed by `fdatasync` (what an acks=all
    /// broker can at best do with 1 MiB group commits), MB/s.
    pub disk_write_fdatasync_mb_s: f64,
    /// The same bytes written with one `fdatasync` at the end, MB/s.
    pub disk_write_buffered_mb_s: f64,
    pub fdatasync_4k_p50_ms: f64,
    pub fdatasync_4k_p99_ms: f64,
    /// One TCP stream over loopback, 256 KiB writes, MB/s.
    pub loopback_tcp_mb_s: f64,
}

/// The JSON that `limits --json` prints.
#[derive(Debug, Deserialize)]
pub struct LimitsReport {
    pub limits: Limits,
}

const BLOCK: usize = 1024 * 1024;

pub fn measure(dir: &Path, disk_mb: usize, loopback_mb: usize) -> anyhow::Result<Limits> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("strata-bench-limits.tmp");
    let result = measure_disk(&path, disk_mb);
    let _ = std::fs::remove_file(&path);
    let (synced, buffered, fsync) = result?;
    Ok(Limits {
        disk_write_fdatasync_mb_s: synced,
        disk_write_buffered_mb_s: buffered,
        fdatasync_4k_p50_ms: fsync.p50_ms,
        fdatasync_4k_p99_ms: fsync.p99_ms,
        loopback_tcp_mb_s: measure_loopback(loopback_mb)?,
    })
}

fn measure_disk(path: &Path, disk_mb: usize) -> anyhow::Result<(f64, f64, Percentiles)> {
    let block: Vec<u8> = (0..BLOCK).map(|i| (i * 31 % 251) as u8).collect();
    let blocks = disk_mb.max(1);
    let mb = (blocks * BLOCK) as f64 / 1e6;

    let mut file = empty_file(path)?;
    let started = Instant::now();
    for _ in 0..blocks {
        file.write_all(&block)?;
        file.sync_data()?;
    }
    let synced = mb / started.elapsed().as_secs_f64();
    drop(file);

    let mut file = empty_file(path)?;
    let started = Instant::now();
    for _ in 0..blocks {
        file.write_all(&block)?;
    }
    file.sync_data()?;
    let buffered = mb / started.elapsed().as_secs_f64();
    drop(file);

    let mut file = empty_file(path)?;
    let mut histogram = latency_histogram()?;
    let small = &block[..4096];
    for _ in 0..2000 {
        let t = Instant::now();
        file.write_all(small)?;
        file.sync_data()?;
        histogram.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    let fsync = Percentiles::of(&histogram).ok_or_else(|| anyhow::anyhow!("no fsync samples"))?;
    Ok((synced, buffered, fsync))
}

/// `path` created or truncated, opened for writing.
fn empty_file(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
}

fn measure_loopback(total_mb: usize) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let chunk = vec![7u8; 256 * 1024];
    let chunks = total_mb.max(1) * 4;
    let started = Instant::now();
    {
        let mut stream = TcpStream::connect(addr)?;
        for _ in 0..chunks {
            stream.write_all(&chunk)?;
        }
    }
    let received = reader
        .join()
        .map_err(|_| anyhow::anyhow!("loopback reader panicked"))??;
    Ok(received as f64 / 1e6 / started.elapsed().as_secs_f64())
}
