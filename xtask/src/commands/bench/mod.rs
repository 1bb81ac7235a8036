//! `cargo xtask bench`: benchmarks, not tests (they assert nothing about
//! the numbers, only that what was measured is right).
//!
//! * `bench` / `bench boot`: how long the VM takes from QEMU's start until
//!   the driver is bound, over several boots.
//! * `bench keys`: per interrupt mode of the driver, on one VM each (booted
//!   with `rust_keyboard.mode=N` and a third serial port, ttyS2, on a unix
//!   socket the benchmark reads):
//!   - latency: one key event per QMP `input-send-event`, each sent once
//!     the previous one was read; a guest reader (`kbdtool relay`, see
//!     `vm_tests::guest_tool`) copies every `/dev/kbd0001` line to ttyS2 at
//!     once. The figure is a round trip on the host's clock: QMP command
//!     sent -> QEMU's PS/2 queue -> IRQ 1 -> the driver -> the reader's
//!     `read()` -> ttyS2 -> the host. Guest and host share no clock, so the
//!     one-way time is not measured; two other figures bound its parts: the
//!     echo round trip of ttyS2 alone (host -> guest `cat` -> host: about
//!     twice the return path), and, on the guest's clock, the time from the
//!     driver's `scancode` log line to the reader's own log record right
//!     after its `read()` returned (both printk time stamps).
//!   - throughput: a burst of key presses in QMP commands of 8 presses (16
//!     bytes, QEMU's PS/2 queue), the next command once the reader has
//!     delivered every event of the previous one (so QEMU never drops a
//!     byte); events delivered per second, checked line by line against
//!     the oracle (`vm_tests::kbd`): a loss or a wrong line fails the run.
//!   - the driver's debugfs counters after the burst, against the bytes and
//!     events sent since boot.
//! * `bench command`: the round trip of one guest command through the
//!   harness's command channel, on the lab kernel and each `--kernel`
//!   ([`command`]).
//! * `bench report`: the lab next to the bare tools, alternating over
//!   several rounds (one VM test against a bare QEMU, the no-op builds
//!   against a bare make, a module edit to green, key latency to the
//!   driver's log line, the boot timeline), written as Markdown, JSON and
//!   an SVG ([`report`]).

mod bare;
mod command;
mod host_info;
mod keys;
mod lines;
mod report;
mod stats;
mod svg;
mod timeline;

use crate::cli::{BenchArgs, BenchWhat};
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::path::Path;
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
    if args.what == BenchWhat::Report {
        return report::run(args);
    }
    let dir = super::artifacts(args.no_build, &args.build, false)?;
    match args.what {
        BenchWhat::Boot => boot_to_bound(&dir, args.runs),
        BenchWhat::Keys => keys::run(&dir, args),
        BenchWhat::Command => {
            let mut kernels = vec![vm_tests::artifacts::LAB_KERNEL.to_owned()];
            kernels.extend(args.build.kernels.iter().cloned());
            command::run(&dir, &kernels, args.commands)
        }
        BenchWhat::Report => unreachable!("handled above"),
    }
}

/// Boots the lab VM `runs` times and prints min / median / max.
fn boot_to_bound(artifacts: &Path, runs: usize) -> Result<()> {
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
