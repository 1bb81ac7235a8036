//! `cargo xtask bench`: how long the VM takes from QEMU's start until the
//! driver is bound, over several boots (a benchmark, not a test: it asserts
//! nothing about the numbers).

use crate::cli::BenchArgs;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::time::{Duration, Instant};
use vm_tests::{Artifacts, Machine, VmConfig};

/// One boot's figures.
struct Sample {
    /// Host wall time from `Machine::start` to the driver found bound in sysfs.
    host_to_bound: Duration,
    /// The guest's printk time stamp of the probe line.
    guest_probe: f64,
}

/// `cargo xtask bench`: builds if needed, then measures.
pub fn run(args: &BenchArgs) -> Result<()> {
    let dir = super::artifacts(args.no_build, &args.build, false)?;
    boot_to_bound(&dir, args.runs)
}

/// Boots the lab VM `runs` times and prints min / median / max.
fn boot_to_bound(artifacts: &std::path::Path, runs: usize) -> Result<()> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let artifacts = Artifacts::from_dir(artifacts)?;
    let probe = Regex::new(r"\[\s*(\d+\.\d+)\] rust_keyboard KBD0001:00: probed")?;
    let mut samples = Vec::new();
    for i in 0..runs {
        let config = VmConfig::from_artifacts(&artifacts)?.with_name(format!("bench-boot-{i}"));
        if i == 0 {
            eprintln!("bench: accelerator {}", config.accel());
        }
        let start = Instant::now();
        let mut m = Machine::start(config)?;
        m.wait_until_succeeds(
            "test -e /sys/bus/platform/drivers/rust_keyboard/KBD0001:00",
            Duration::from_secs(60),
        )?;
        let host_to_bound = start.elapsed();
        let console = m.console_text();
        let guest_probe = probe
            .captures(&console)
            .and_then(|c| c[1].parse::<f64>().ok())
            .context("the console has no probe line")?;
        m.shutdown()?;
        eprintln!(
            "bench: boot {}: bound after {:.2} s host wall time (probe at guest time {guest_probe:.2} s)",
            i + 1,
            host_to_bound.as_secs_f64()
        );
        samples.push(Sample {
            host_to_bound,
            guest_probe,
        });
    }
    let mut host: Vec<f64> = samples
        .iter()
        .map(|s| s.host_to_bound.as_secs_f64())
        .collect();
    let mut guest: Vec<f64> = samples.iter().map(|s| s.guest_probe).collect();
    println!("boot to driver bound over {runs} boots (min / median / max):");
    println!(
        "  host wall time, QEMU start to sysfs bound: {}",
        stats(&mut host)
    );
    println!(
        "  guest clock at the probe line:             {}",
        stats(&mut guest)
    );
    Ok(())
}

/// "min / median / max" of `v`, in seconds.
fn stats(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2} s",
        v[0],
        v[v.len() / 2],
        v[v.len() - 1]
    )
}
