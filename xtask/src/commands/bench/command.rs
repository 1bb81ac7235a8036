//! `cargo xtask bench command`: the round trip of one guest command through
//! the harness's command channel (`Machine::succeed`: the request on ttyS1,
//! the guest's `/init` running the script, the reply read back), per
//! kernel. The suite runs about two thousand of them, and they are most of
//! its machine time.

use super::stats::Dist;
use anyhow::{Context, Result, bail, ensure};
use std::path::Path;
use std::time::Instant;
use vm_tests::{Artifacts, Machine, VmConfig};

/// The scripts timed, each with what its output must contain: the channel
/// alone, a builtin with output, a command that forks like most of the
/// suite's checks, and the kernel log without and with its transfer (the
/// tests read it often; base64 and the serial line are the difference).
const SCRIPTS: [(&str, &str); 5] = [
    ("true", ""),
    ("echo hello", "hello\n"),
    ("cat /proc/interrupts", "CPU0"),
    ("dmesg >/dev/null", ""),
    ("dmesg", "Linux version"),
];

/// Boots each kernel once and times `commands` runs of each script.
pub fn run(artifacts: &Path, kernels: &[String], commands: usize) -> Result<()> {
    if commands == 0 {
        bail!("--commands must be at least 1");
    }
    let artifacts = Artifacts::from_dir(artifacts)?;
    let mut rows = Vec::new();
    for kernel in kernels {
        let config = VmConfig::from_artifacts_of(&artifacts, kernel)?
            .with_name(format!("bench-command-{kernel}"));
        eprintln!("bench: {kernel} kernel, accelerator {}", config.accel());
        let mut m = Machine::start(config)?;
        // A first command, so that the page cache holds busybox.
        m.succeed("true")?;
        for (script, expected) in SCRIPTS {
            let mut ms = Vec::with_capacity(commands);
            for _ in 0..commands {
                let start = Instant::now();
                let out = m.succeed(script)?;
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
                ensure!(out.contains(expected), "`{script}` answered {out:?}");
            }
            let d = Dist::of(ms).context("no samples")?;
            eprintln!("bench: {kernel}: `{script}`: median {:.1} ms", d.median);
            rows.push((kernel.clone(), script, d));
        }
        m.shutdown()?;
    }
    println!("guest command round trip over {commands} commands each (median / p10 / p90 ms):");
    for (kernel, script, d) in rows {
        println!(
            "  {kernel:<6} {script:<22} {:>7.1} / {:>7.1} / {:>7.1}",
            d.median, d.p10, d.p90
        );
    }
    Ok(())
}
