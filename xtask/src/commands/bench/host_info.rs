//! The machine a benchmark ran on: CPU, cores, memory, kernel, QEMU,
//! accelerator, and the load (the project's machines are shared).

use crate::exec::{self, cmd};
use anyhow::{Context, Result};
use serde::Serialize;

/// The machine's description.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs (processor entries of /proc/cpuinfo).
    pub cpus: usize,
    /// CPUs this process may run on.
    pub cpus_available: usize,
    /// MemTotal of /proc/meminfo, MiB.
    pub memory_mib: u64,
    /// The host kernel (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// The first line of `qemu-system-x86_64 --version`.
    pub qemu: String,
    /// The accelerator the VMs ran with, and why.
    pub accelerator: String,
}

impl Machine {
    /// This machine, with the accelerator the benchmark's VMs use.
    pub fn describe(accelerator: String) -> Result<Machine> {
        let cpuinfo = read("/proc/cpuinfo")?;
        let (cpu_model, cpus) = parse_cpuinfo(&cpuinfo);
        let qemu = exec::output(&mut cmd("qemu-system-x86_64", ["--version"]))
            .context("qemu-system-x86_64 --version")?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        Ok(Machine {
            cpu_model,
            cpus,
            cpus_available: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_mib: parse_meminfo_mib(&read("/proc/meminfo")?).context("no MemTotal")?,
            kernel: read("/proc/sys/kernel/osrelease")?.trim().to_owned(),
            qemu,
            accelerator,
        })
    }
}

/// The load averages (1, 5, 15 minutes) and the running/total tasks of
/// /proc/loadavg.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Load {
    /// 1-minute load average.
    pub one: f64,
    /// 5-minute load average.
    pub five: f64,
    /// 15-minute load average.
    pub fifteen: f64,
}

impl Load {
    /// The load now.
    pub fn now() -> Result<Load> {
        parse_loadavg(&read("/proc/loadavg")?).context("cannot parse /proc/loadavg")
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
}

/// The first `model name` and the number of `processor` entries.
fn parse_cpuinfo(text: &str) -> (String, usize) {
    let field = |l: &str, name: &str| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_owned())
    };
    let model = text
        .lines()
        .find_map(|l| field(l, "model name"))
        .unwrap_or_else(|| "unknown".into());
    let cpus = text
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count();
    (model, cpus)
}

/// MemTotal in MiB.
fn parse_meminfo_mib(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn parse_loadavg(text: &str) -> Option<Load> {
    let mut w = text.split_whitespace().map(str::parse::<f64>);
    Some(Load {
        one: w.next()?.ok()?,
        five: w.next()?.ok()?,
        fifteen: w.next()?.ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n\n\
                       processor\t: 1\nmodel name\t: AMD EPYC\n";
        assert_eq!(parse_cpuinfo(cpuinfo), ("AMD EPYC".to_owned(), 2));
        assert_eq!(parse_cpuinfo(""), ("unknown".to_owned(), 0));
        let meminfo = "MemTotal:       24601232 kB\nMemFree:        1 kB\n";
        assert_eq!(parse_meminfo_mib(meminfo), Some(24024));
        assert_eq!(
            parse_loadavg("2.00 1.70 0.87 3/250 1234\n"),
            Some(Load {
                one: 2.0,
                five: 1.7,
                fifteen: 0.87
            })
        );
        assert_eq!(parse_loadavg("2.00"), None);
    }
}
