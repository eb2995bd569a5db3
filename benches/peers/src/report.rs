//! The one table the bench prints: medians, per-task cost and ratios per shape and peer,
//! then the device's limits and the durable chain against the device's sync rate.

use std::fmt::Write as _;
use std::time::Duration;

use crate::shape::Shape;
use crate::Peer;

/// The timed runs of one peer on one shape.
#[derive(Debug, Clone)]
pub struct Row {
    pub shape: Shape,
    pub peer: Peer,
    pub times: Vec<Duration>,
}

impl Row {
    pub fn median(&self) -> Duration {
        median(&self.times)
    }
}

/// The rows of one group (in memory, durable); the first peer of every shape is the
/// obrestore the others are compared with.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: &'static str,
    pub rows: Vec<Row>,
}

/// The device probes of the run.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub directory: String,
    /// In-place probes (`SyncProbe::InPlace`): the device's floor.
    pub syncs_per_second: Vec<f64>,
    /// Append probes (`SyncProbe::Append`).
    pub append_syncs_per_second: Vec<f64>,
    /// Direct probes (`device::direct_sync_rate`: 4 KiB pages, `O_DIRECT | O_DSYNC`,
    /// as the engine's commit log writes on Linux); empty where there are none.
    pub direct_syncs_per_second: Vec<f64>,
    pub sequential_mib: usize,
    pub sequential_mb_per_second: Vec<f64>,
}

/// The median (upper middle for an even count) of `times`; zero when empty.
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn median_f64(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// "obrestore 3.2x slower" / "obrestore 2.0x faster" for a ratio obrestore/peer.
fn verdict(ratio: f64) -> String {
    if ratio >= 1.0 {
        format!("obrestore {ratio:.1}x slower")
    } else {
        format!("obrestore {:.1}x faster", 1.0 / ratio)
    }
}

fn render_group(out: &mut String, group: &Group) {
    for row in &group.rows {
        // A peer left out of every round (`--duroxide-runs 0`) has no line.
        if row.times.is_empty() {
            continue;
        }
        let reference = group
            .rows
            .iter()
            .find(|other| other.shape == row.shape)
            .map(Row::median)
            .unwrap_or_default();
        let median = row.median();
        let seconds = median.as_secs_f64();
        let tasks = row.shape.tasks() as f64;
        let ratio = reference.as_secs_f64() / seconds;
        let first = row.peer == group.rows[0].peer;
        let line = format!(
            "{:<10} {:<15} {:<23} {:>4} {:>11.2} {:>9.2} {:>10.0} {:>8.2}  {}",
            if first { group.name } else { "" },
            if first {
                row.shape.to_string()
            } else {
                String::new()
            },
            row.peer.label(),
            row.times.len(),
            seconds * 1e3,
            seconds * 1e6 / tasks,
            tasks / seconds,
            ratio,
            if first {
                String::new()
            } else if row.peer.is_obrestore() {
                format!("the same engine: {:.2}x the first row's speed", ratio)
            } else {
                verdict(ratio)
            },
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Prints the table.
pub fn print(groups: &[Group], device: &Device) {
    print!("{}", render(groups, device));
}

/// The table as text.
fn render(groups: &[Group], device: &Device) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:<15} {:<23} {:>4} {:>11} {:>9} {:>10} {:>8}",
        "group", "shape", "peer", "runs", "median ms", "us/task", "tasks/s", "obr/peer"
    );
    for group in groups {
        render_group(&mut out, group);
    }
    if device.syncs_per_second.is_empty() && device.sequential_mb_per_second.is_empty() {
        // `--memory-only`: no device probes, nothing to compare the durable chains with.
        return out;
    }
    let syncs = median_f64(&device.syncs_per_second);
    let _ = writeln!(
        out,
        "\ndevice, {} (the durable stores' filesystem):",
        device.directory
    );
    let _ = writeln!(
        out,
        "  write {} B + fdatasync, in a preallocated file: {:.0}/s; appended: {:.0}/s (medians of {} probes)",
        crate::device::RECORD_BYTES,
        syncs,
        median_f64(&device.append_syncs_per_second),
        device.syncs_per_second.len()
    );
    let direct = median_f64(&device.direct_syncs_per_second);
    if !device.direct_syncs_per_second.is_empty() {
        let _ = writeln!(
            out,
            "  write 4 KiB O_DIRECT | O_DSYNC (the commit log's way), one page each: {direct:.0}/s"
        );
    }
    let _ = writeln!(
        out,
        "  sequential write {} MiB + fsync: {:.0} MB/s (median of {})",
        device.sequential_mib,
        median_f64(&device.sequential_mb_per_second),
        device.sequential_mb_per_second.len()
    );
    for group in groups {
        for row in &group.rows {
            if let Shape::Chain(length) = row.shape {
                // A peer left out of every round (`--duroxide-runs 0`) has no rate.
                if row.times.is_empty() {
                    continue;
                }
                if row.peer == Peer::ObrestoreDurable || row.peer.is_slow() {
                    let stages = length as f64 / row.median().as_secs_f64();
                    let against_direct = if device.direct_syncs_per_second.is_empty() {
                        String::new()
                    } else {
                        format!(", {:.2}x the direct syncs/s", stages / direct)
                    };
                    let _ = writeln!(
                        out,
                        "  {} on {}: {stages:.0} stages/s = {:.2}x the in-place syncs/s{against_direct}",
                        row.shape,
                        row.peer.label(),
                        stages / syncs
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(&[ms(4), ms(2)]), ms(4));
        assert_eq!(median(&[]), Duration::ZERO);
    }

    /// A peer with no runs (`--duroxide-runs 0`) and a run with no device probes
    /// (`--memory-only`) print no line of infinities or NaNs.
    #[test]
    fn what_was_not_run_is_not_printed() {
        let ms = Duration::from_millis;
        let row = |peer, times: Vec<Duration>| Row {
            shape: Shape::Chain(200),
            peer,
            times,
        };
        let groups = [Group {
            name: "durable",
            rows: vec![
                row(Peer::ObrestoreDurable, vec![ms(50), ms(40), ms(60)]),
                row(Peer::Duroxide, Vec::new()),
            ],
        }];
        let memory_only = render(&groups, &Device::default());
        assert!(memory_only.contains("obrestore"), "{memory_only}");
        assert!(!memory_only.contains("duroxide"), "{memory_only}");
        assert!(!memory_only.contains("device"), "{memory_only}");
        let probed = Device {
            directory: "/tmp".into(),
            syncs_per_second: vec![4000.0],
            append_syncs_per_second: vec![3000.0],
            direct_syncs_per_second: Vec::new(),
            sequential_mib: 64,
            sequential_mb_per_second: vec![900.0],
        };
        let with_device = render(&groups, &probed);
        assert!(
            with_device.contains("4000 stages/s = 1.00x the in-place syncs/s"),
            "{with_device}"
        );
        for bad in ["inf", "NaN", "direct"] {
            assert!(!with_device.contains(bad), "{with_device}");
        }
        let with_direct = render(
            &groups,
            &Device {
                direct_syncs_per_second: vec![5000.0],
                ..probed
            },
        );
        assert!(
            with_direct.contains("= 1.00x the in-place syncs/s, 0.80x the direct syncs/s"),
            "{with_direct}"
        );
    }

    #[test]
    fn verdict_names_the_faster_side() {
        assert_eq!(verdict(4.0), "obrestore 4.0x slower");
        assert_eq!(verdict(0.25), "obrestore 4.0x faster");
    }
}
