//! `cargo xtask bench keys`: per interrupt mode of the driver, on one VM
//! each (see the parent module's documentation for what is measured).

use super::lines;
use super::stats::Dist;
use crate::cli::{BenchArgs, BenchMode};
use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vm_tests::guest_tool;
use vm_tests::kbd::{self, Counters, DevLine, Mode};
use vm_tests::{Artifacts, Machine, VmConfig};

/// How long one key event may take to come back.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two latency samples, so that each starts from an idle guest.
const SAMPLE_GAP: Duration = Duration::from_millis(20);
/// Echo round trips of ttyS2 measured per mode.
const ECHOES: usize = 50;
/// Presses per QMP command of the burst: 16 bytes of plain keys.
const BATCH: usize = 8;
/// Plain keys (one byte each way) used by the benchmark.
pub(super) const KEYS: [&str; 8] = ["a", "s", "d", "f", "j", "k", "l", "g"];
/// ttyS2 in the guest.
const GUEST_TTY: &str = "/dev/ttyS2";

impl From<BenchMode> for Mode {
    fn from(m: BenchMode) -> Mode {
        match m {
            BenchMode::Hard => Mode::Hard,
            BenchMode::Threaded => Mode::Threaded,
            BenchMode::Workqueue => Mode::Workqueue,
        }
    }
}

/// "median / p99 ms" of a distribution, or "-".
fn show(d: &Option<Dist>) -> String {
    match d {
        Some(d) => format!("{:.2} / {:.2} ms", d.median, d.p99),
        None => "-".into(),
    }
}

/// The figures of one mode.
struct ModeResult {
    mode: Mode,
    /// Host round trip, QMP command to the line read back (ms).
    latency: Option<Dist>,
    /// The QMP command's own round trip (ms).
    qmp: Option<Dist>,
    /// ttyS2 echo round trip (ms).
    echo: Option<Dist>,
    /// Guest clock: driver's scancode line to the reader's record (ms).
    guest: Option<Dist>,
    /// Burst: events, seconds.
    burst_events: usize,
    burst_seconds: f64,
    /// Counters after the burst, and what was sent since boot.
    counters: Counters,
    sent_bytes: u64,
    sent_events: u64,
    irq1: u64,
}

/// Lines the guest writes to ttyS2, time-stamped as they arrive.
struct Serial {
    writer: UnixStream,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Serial {
    fn connect(path: &Path) -> Result<Serial> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("connecting to {}", path.display()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let lines = lines::spawn_reader(stream.try_clone()?, "bench-serial")?;
        Ok(Serial {
            writer: stream,
            lines,
        })
    }

    fn recv(&self, what: &str) -> Result<(Instant, String)> {
        self.lines
            .recv_timeout(EVENT_TIMEOUT)
            .with_context(|| format!("no line on ttyS2 within {EVENT_TIMEOUT:?} ({what})"))
    }

    /// Drops lines that arrived unasked (e.g. the tty's initial output).
    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }
}

/// `bench keys`: every requested mode in turn, then the tables.
pub fn run(artifacts: &Path, args: &BenchArgs) -> Result<()> {
    let artifacts = Artifacts::from_dir(artifacts)?;
    let modes: Vec<Mode> = if args.modes.is_empty() {
        Mode::ALL.to_vec()
    } else {
        args.modes.iter().map(|&m| m.into()).collect()
    };
    ensure!(args.samples >= 2, "--samples must be at least 2");
    ensure!(args.presses >= BATCH, "--presses must be at least {BATCH}");
    let mut results = Vec::new();
    for mode in modes {
        eprintln!("bench keys: mode {mode} ...");
        results.push(
            bench_mode(&artifacts, mode, args.samples, args.presses)
                .with_context(|| format!("mode {mode}"))?,
        );
    }
    print_tables(&results, args);
    Ok(())
}

fn bench_mode(
    artifacts: &Artifacts,
    mode: Mode,
    samples: usize,
    presses: usize,
) -> Result<ModeResult> {
    let rt = tempfile::Builder::new().prefix("kbd-bench-").tempdir()?;
    let sock = rt.path().join("bench.sock");
    let config = VmConfig::from_artifacts(artifacts)?
        .with_append(&mode.cmdline())
        // The relay's records in /dev/kmsg must not be rate-limited.
        .with_append("printk.devkmsg=on")
        .with_runtime_dir(rt.path())
        .with_name(format!("bench-keys-{mode}"))
        .with_extra_args([
            "-chardev".to_owned(),
            format!(
                "socket,id=bench0,path={},server=on,wait=off",
                sock.display()
            ),
            "-serial".to_owned(),
            "chardev:bench0".to_owned(),
        ]);
    eprintln!("bench keys: accelerator {}", config.accel());
    let mut m = Machine::start(config)?;
    let mut serial = Serial::connect(&sock)?;
    let log = m.kernel_log()?;
    ensure!(
        log.contains(&format!("status port 0x64, mode {mode}")),
        "the driver did not probe in mode {mode}:\n{log}"
    );
    m.succeed(&format!(
        "stty -F {GUEST_TTY} 115200 raw -echo && \
         (grep -q '^debugfs ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug)"
    ))?;
    guest_tool::install(&mut m)?;
    serial.drain();

    // The return path alone: ttyS2 echoed by cat.
    let cat = m.spawn(
        &format!("sh -c 'exec cat {GUEST_TTY} > {GUEST_TTY}'"),
        "/tmp/echo.out",
    )?;
    std::thread::sleep(Duration::from_millis(200));
    let mut echo = Vec::new();
    for i in 0..ECHOES {
        let t0 = Instant::now();
        writeln!(serial.writer, "echo{i}")?;
        let (at, line) = serial.recv("echo")?;
        ensure!(
            line == format!("echo{i}"),
            "ttyS2 echoed {line:?}, sent echo{i}"
        );
        echo.push(ms(at - t0));
        std::thread::sleep(SAMPLE_GAP);
    }
    m.succeed(&format!("kill {cat}"))?;
    std::thread::sleep(Duration::from_millis(200));
    serial.drain();

    // Latency: one event per QMP command, read back through the relay.
    let relay = start_relay(&mut m, true)?;
    let mut seq = 0u64;
    let mut sent_bytes = 0u64;
    let mut latency = Vec::new();
    let mut qmp = Vec::new();
    for i in 0..samples {
        let key = KEYS[(i / 2) % KEYS.len()];
        let down = i % 2 == 0;
        let t0 = Instant::now();
        m.input_send_event(&[(key, down)])?;
        qmp.push(ms(t0.elapsed()));
        let (at, line) = serial.recv("a key event")?;
        seq += 1;
        sent_bytes += expect_line(&line, key, down, seq)?;
        latency.push(ms(at - t0));
        std::thread::sleep(SAMPLE_GAP);
    }
    let guest = guest_latency(&m.kernel_log()?, 1..=seq)?;
    m.succeed(&format!("kill {relay}"))?;
    std::thread::sleep(Duration::from_millis(200));
    serial.drain();

    // Throughput: batches of 8 presses, flow-controlled by the lines read.
    start_relay(&mut m, false)?;
    let keys: Vec<&str> = KEYS.iter().copied().cycle().take(presses).collect();
    let t0 = Instant::now();
    let mut last = t0;
    let mut burst_events = 0;
    for batch in keys.chunks(BATCH) {
        let events: Vec<(&str, bool)> = batch
            .iter()
            .flat_map(|k| [(*k, true), (*k, false)])
            .collect();
        m.input_send_event(&events)?;
        for (key, down) in events {
            let (at, line) = serial.recv("a burst event")?;
            seq += 1;
            sent_bytes += expect_line(&line, key, down, seq)?;
            burst_events += 1;
            last = at;
        }
    }
    let burst_seconds = (last - t0).as_secs_f64();
    std::thread::sleep(Duration::from_millis(500));
    let (counters, word) = Counters::parse(&m.succeed(&Counters::command())?)?;
    ensure!(word == mode.name(), "debugfs mode {word:?}");
    let irq1 = m
        .interrupts()?
        .count(1)
        .context("IRQ 1 not in /proc/interrupts")?;
    m.shutdown()?;
    Ok(ModeResult {
        mode,
        latency: Dist::of(latency),
        qmp: Dist::of(qmp),
        echo: Dist::of(echo),
        guest: Dist::of(guest),
        burst_events,
        burst_seconds,
        counters,
        sent_bytes,
        sent_events: seq,
        irq1,
    })
}

/// Starts `kbdtool relay` (`/dev/kbd0001` to ttyS2, with kmsg records when
/// `kmsg`) and waits until it has both open; returns its pid.
fn start_relay(m: &mut Machine, kmsg: bool) -> Result<u32> {
    let out = "/tmp/relay.out";
    let cmd = format!(
        "{} relay {} {GUEST_TTY}{}",
        guest_tool::GUEST_PATH,
        kbd::DEV_NODE,
        if kmsg { " kmsg" } else { "" }
    );
    let pid = m.spawn(&cmd, out)?;
    m.wait_until_succeeds(
        &format!("grep -q '^@@open ok' {out}"),
        Duration::from_secs(20),
    )?;
    Ok(pid)
}

/// Checks a relayed line against the oracle; returns the event's bytes.
fn expect_line(line: &str, key: &str, down: bool, seq: u64) -> Result<u64> {
    let t = kbd::transition(key, down).context("key table")?;
    let want = t.event.context("an event")?.line(seq);
    ensure!(
        DevLine::parse(line).is_some() && line == want,
        "lost or wrong event: read {line:?}, expected {want:?}"
    );
    Ok(t.wire.len() as u64)
}

/// Guest clock, per event of `seqs`: the driver's `scancode` log line
/// (the k-th since boot is event k) to the relay's `kbdtool: read <seq>`
/// record, in ms.
fn guest_latency(dmesg: &str, seqs: std::ops::RangeInclusive<u64>) -> Result<Vec<f64>> {
    let driver = Regex::new(r"^\[\s*(\d+\.\d+)\] rust_keyboard KBD0001:00: scancode ")?;
    let relay = Regex::new(r"^\[\s*(\d+\.\d+)\] kbdtool: read (\d+) ")?;
    let mut decoded = Vec::new();
    let mut read = HashMap::new();
    for l in dmesg.lines() {
        if let Some(c) = driver.captures(l) {
            decoded.push(c[1].parse::<f64>()?);
        } else if let Some(c) = relay.captures(l) {
            read.insert(c[2].parse::<u64>()?, c[1].parse::<f64>()?);
        }
    }
    let mut out = Vec::new();
    for seq in seqs {
        let (Some(d), Some(r)) = (decoded.get(seq as usize - 1), read.get(&seq)) else {
            bail!(
                "event {seq} is missing from the kernel log: {} driver scancode lines, relay records \
                 for {:?}",
                decoded.len(),
                {
                    let mut k: Vec<_> = read.keys().collect();
                    k.sort();
                    k
                }
            );
        };
        out.push((r - d) * 1000.0);
    }
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn print_tables(results: &[ModeResult], args: &BenchArgs) {
    println!(
        "key latency, {} events per mode (one per QMP command; median / p99):",
        args.samples
    );
    println!(
        "  {:<10} {:>22} {:>18} {:>20} {:>22}",
        "mode", "QMP -> line on host", "QMP reply", "ttyS2 echo (host)", "driver log -> read"
    );
    for r in results {
        println!(
            "  {:<10} {:>22} {:>18} {:>20} {:>22}",
            r.mode.name(),
            show(&r.latency),
            show(&r.qmp),
            show(&r.echo),
            show(&r.guest)
        );
    }
    println!(
        "  (min / max of QMP -> line: {})",
        results
            .iter()
            .map(|r| match &r.latency {
                Some(d) => format!("{} {:.2} / {:.2} ms (n={})", r.mode, d.min, d.max, d.n),
                None => format!("{} -", r.mode),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "key throughput, {} presses ({} events) per mode in QMP commands of {BATCH} presses, each \
         sent once the previous one's events were read:",
        args.presses,
        args.presses * 2
    );
    println!(
        "  {:<10} {:>8} {:>9} {:>10} {:>6}",
        "mode", "events", "seconds", "events/s", "lost"
    );
    for r in results {
        println!(
            "  {:<10} {:>8} {:>9.2} {:>10.0} {:>6}",
            r.mode.name(),
            r.burst_events,
            r.burst_seconds,
            r.burst_events as f64 / r.burst_seconds,
            args.presses * 2 - r.burst_events
        );
    }
    println!("counters after the burst (debugfs), against what was sent since boot:");
    println!(
        "  {:<10} {:>6} {:>8} {:>9} {:>12} {:>12} {:>14} {:>15} {:>6}",
        "mode",
        "irqs",
        "handled",
        "not_ours",
        "bytes/sent",
        "events/sent",
        "bytes_dropped",
        "events_dropped",
        "IRQ 1"
    );
    for r in results {
        let c = &r.counters;
        println!(
            "  {:<10} {:>6} {:>8} {:>9} {:>12} {:>12} {:>14} {:>15} {:>6}",
            r.mode.name(),
            c.irqs,
            c.handled,
            c.not_ours,
            format!("{}/{}", c.bytes, r.sent_bytes),
            format!("{}/{}", c.events, r.sent_events),
            c.bytes_dropped,
            c.events_dropped,
            r.irq1
        );
    }
    println!(
        "QMP -> line on host: the host's clock from sending the QMP command to reading the event's \
         line from ttyS2 (QEMU, IRQ 1, the driver, /dev/kbd0001, the reader, the UART, the socket); \
         ttyS2 echo: the return path's serial port both ways; driver log -> read: the guest's \
         clock from the driver's scancode line to the reader's record after read() returned."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_latency_pairs_events_by_seq() {
        let log = "[    1.000000] rust_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64, mode hard\n\
                   [    2.000000] rust_keyboard KBD0001:00: scancode 1e pressed\n\
                   [    2.000500] kbdtool: read 1 press KEY_A 1e\n\
                   [    2.100000] rust_keyboard KBD0001:00: scancode 9e released\n\
                   [    2.102000] kbdtool: read 2 release KEY_A 9e\n";
        let l = guest_latency(log, 1..=2).unwrap();
        assert!(
            (l[0] - 0.5).abs() < 1e-6 && (l[1] - 2.0).abs() < 1e-6,
            "{l:?}"
        );
        assert!(guest_latency(log, 1..=3).is_err());
    }

    #[test]
    fn relayed_lines_are_checked() {
        assert_eq!(expect_line("3 press KEY_A 1e", "a", true, 3).unwrap(), 1);
        assert!(expect_line("3 press KEY_A 1e", "a", true, 4).is_err());
        assert!(expect_line("3 release KEY_A 9e", "a", true, 3).is_err());
    }
}
