//! A rule's `benchmark` file: one job's resource figures as a TSV with Snakemake's columns, so
//! scripts written for Snakemake's `benchmark:` files read flowrun's unchanged.
//!
//! The columns and units are Snakemake's (`s` seconds, memory and I/O in MiB, `mean_load` in
//! percent of one core, `cpu_time` seconds). What flowrun does not measure is `NA`: the
//! virtual size (`max_vms`) and the unique and proportional set sizes (`max_uss`, `max_pss`),
//! which only a sampler can read from a live process, and `max_rss` for work that runs inside
//! flowrun. Unlike Snakemake's sampled figures, a job shorter than a sampling interval still
//! gets every measured column (see [`crate::usage`]).

use std::path::Path;
use std::time::Duration;

use crate::usage::Usage;

/// The header line, as Snakemake writes it.
pub const HEADER: &str =
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time";

const MIB: f64 = 1024.0 * 1024.0;

/// Snakemake's `h:m:s`: whole seconds, days spelled out past 24 hours.
fn hms(took: Duration) -> String {
    let secs = took.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "NA".to_string(), |b| format!("{:.2}", b as f64 / MIB))
}

/// The data line for a job that took `took` and cost `usage`.
pub fn line(took: Duration, usage: &Usage) -> String {
    let cpu = usage.cpu().as_secs_f64();
    let wall = took.as_secs_f64();
    let load = if wall > 0.0 { 100.0 * cpu / wall } else { 0.0 };
    [
        format!("{wall:.4}"),
        hms(took),
        mib(usage.max_rss),
        "NA".into(),
        "NA".into(),
        "NA".into(),
        mib(usage.io.map(|io| io.disk_read)),
        mib(usage.io.map(|io| io.disk_written)),
        format!("{load:.2}"),
        format!("{cpu:.2}"),
    ]
    .join("\t")
}

/// Writes the benchmark file at `path` (atomically, creating its folder).
pub fn write(path: &Path, took: Duration, usage: &Usage) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let text = format!("{HEADER}\n{}\n", line(took, usage));
    crate::native::atomic::write_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::Io;

    #[test]
    fn columns_follow_snakemake() {
        let usage = Usage {
            user: Duration::from_millis(1500),
            system: Duration::from_millis(500),
            max_rss: Some(200 * 1024 * 1024),
            rss_at_most: None,
            io: Some(Io {
                disk_written: 3 * 1024 * 1024,
                ..Io::default()
            }),
            processes: 1,
        };
        let l = line(Duration::from_millis(4000), &usage);
        assert_eq!(
            l,
            "4.0000\t0:00:04\t200.00\tNA\tNA\tNA\t0.00\t3.00\t50.00\t2.00"
        );
        assert_eq!(l.split('\t').count(), HEADER.split('\t').count());
        let inside = Usage::default();
        assert!(line(Duration::ZERO, &inside).starts_with("0.0000\t0:00:00\tNA\t"));
        assert_eq!(hms(Duration::from_secs(90_061)), "1 day, 1:01:01");
        assert_eq!(hms(Duration::from_secs(3 * 86_400)), "3 days, 0:00:00");
    }
}
