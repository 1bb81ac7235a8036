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

use crate::cli::{BenchArgs, BenchMode, BenchWhat};
use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vm_tests::guest_tool;
use vm_tests::kbd::{self, Counters, DevLine, Mode};
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
    match args.what {
        BenchWhat::Boot => boot_to_bound(&dir, args.runs),
        BenchWhat::Keys => keys(&dir, args),
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

// ---------------------------------------------------------------------------
// bench keys
// ---------------------------------------------------------------------------

/// How long one key event may take to come back.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two latency samples, so that each starts from an idle guest.
const SAMPLE_GAP: Duration = Duration::from_millis(20);
/// Echo round trips of ttyS2 measured per mode.
const ECHOES: usize = 50;
/// Presses per QMP command of the burst: 16 bytes of plain keys.
const BATCH: usize = 8;
/// Plain keys (one byte each way) used by the benchmark.
const KEYS: [&str; 8] = ["a", "s", "d", "f", "j", "k", "l", "g"];
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

/// Milliseconds: median and p99 (nearest rank) of a sample.
struct Dist {
    median: f64,
    p99: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Dist {
    fn of(mut v: Vec<f64>) -> Option<Dist> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let rank = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Dist {
            median: rank(0.5),
            p99: rank(0.99),
            min: v[0],
            max: v[v.len() - 1],
            n: v.len(),
        })
    }

    fn show(d: &Option<Dist>) -> String {
        match d {
            Some(d) => format!("{:.2} / {:.2} ms", d.median, d.p99),
            None => "-".into(),
        }
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
        let reader = stream.try_clone()?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("bench-serial".into())
            .spawn(move || {
                let mut r = BufReader::new(reader);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            let at = Instant::now();
                            let line = String::from_utf8_lossy(&buf)
                                .trim_end_matches(['\n', '\r'])
                                .to_owned();
                            if tx.send((at, line)).is_err() {
                                return;
                            }
                        }
                    }
                }
            })?;
        Ok(Serial {
            writer: stream,
            lines: rx,
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
fn keys(artifacts: &Path, args: &BenchArgs) -> Result<()> {
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
            Dist::show(&r.latency),
            Dist::show(&r.qmp),
            Dist::show(&r.echo),
            Dist::show(&r.guest)
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
    fn distributions() {
        let d = Dist::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (d.median, d.p99, d.min, d.max, d.n),
            (50.0, 99.0, 1.0, 100.0, 100)
        );
        let d = Dist::of(vec![3.0]).unwrap();
        assert_eq!((d.median, d.p99), (3.0, 3.0));
        assert!(Dist::of(vec![]).is_none());
    }

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
