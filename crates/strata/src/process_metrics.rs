//! Process metrics read from `/proc/self` at scrape time: resident memory
//! (now and peak), CPU time, open and maximum file descriptors, threads.
//! Names follow the Prometheus client libraries' `process_*` conventions.
//! On a system without `/proc` these families are left out.

use strata_broker::metrics::text::Exposition;

/// Clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const USER_HZ: f64 = 100.0;

pub fn render() -> String {
    let mut text = Exposition::default();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| status_field(&status, field).map(|v| v * 1024.0);
    let families = [
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident set size",
            kib("VmRSS:"),
        ),
        (
            "process_resident_memory_peak_bytes",
            "gauge",
            "Largest resident set size since the process started",
            kib("VmHWM:"),
        ),
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent",
            cpu_seconds(),
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors",
            open_fds(),
        ),
        (
            "process_max_fds",
            "gauge",
            "Limit on open file descriptors",
            max_fds(),
        ),
        (
            "process_threads",
            "gauge",
            "Operating system threads",
            status_field(&status, "Threads:"),
        ),
    ];
    for (name, kind, help, value) in families {
        if let Some(value) = value {
            text.family(name, kind, help);
            text.sample(name, &[], value);
        }
    }
    text.finish()
}

/// The first number after `field` in `/proc/self/status`.
fn status_field(status: &str, field: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

fn open_fds() -> Option<f64> {
    let count = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(count as f64)
}

fn max_fds() -> Option<f64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let text = render();
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(
                text.contains(&format!("\n{name} ")),
                "{name} missing:\n{text}"
            );
        }
    }
}
