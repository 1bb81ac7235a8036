//! `cargo xtask bench report`: what the lab costs next to the bare tools,
//! side by side in one run, alternating, over several rounds; writes
//! `report.md`, `report.json` and `boot-timeline.svg`.
//!
//! Every round runs every pair, in alternating order (the lab's side first
//! in odd rounds, the bare tool's first in even ones):
//! * (a) one VM test, [`Machine::start`] of the lab artifacts, the driver
//!   found bound in sysfs, [`Machine::shutdown`]; and a bare QEMU of the
//!   same command line ([`super::bare`]), timed to `LAB-INIT-READY`;
//! * (b) the lab's no-op build, `cargo xtask build` (a child process, as a
//!   user types it) and its kernel step alone (in process: the stamp
//!   check that skips make); and a bare `make` no-op in the same `O=` tree
//!   with the kernel step's own make variables ([`KernelTools::make`]);
//! * (c) a module edit to green: a comment line appended to the module
//!   source (the module step follows content, not times; the file is put
//!   back after each round), the module,
//!   initramfs and artifact steps of `cargo xtask watch`, then one
//!   acceptance test through watch's nextest run;
//! * (d) a timeline boot: a bare QEMU with `earlyprintk=ttyS0 debug
//!   loglevel=7` and SeaBIOS's debug console on the console
//!   ([`super::timeline`]), then key events one per QMP
//!   `input-send-event`, each timed to the driver's `scancode` line on the
//!   console.
//!
//! One warm-up round runs first and is not counted (it compiles nextest's
//! test binaries and fills the page cache). What is checked is what was
//! measured (the probe line seen, the no-op builds rebuilt nothing, the one
//! test passed, each key's line is the expected one), never the figures.

use super::bare::BareVm;
use super::host_info::{self, Load};
use super::stats::Dist;
use super::timeline::{self, Timeline};
use super::{keys, svg};
use crate::cli::BenchArgs;
use crate::commands::build::Runner;
use crate::commands::watch::{Outcome, Tests};
use crate::exec::{self, cmd};
use crate::host::Host;
use crate::plan::{self, KernelSpec, Step};
use crate::steps::{kernel, patches};
use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vm_tests::artifacts::LAB_KERNEL;
use vm_tests::{Artifacts, Machine, VmConfig, kbd};

/// The acceptance test of (c): the nextest filter expression.
const EDIT_TEST: &str =
    "binary(acceptance) & test(=lab::rust::ex4_driver_probes_and_binds_kbd0001)";
/// The module file (c) edits.
const EDIT_FILE: &str = "module/rust_keyboard.rs";
/// What the timeline boots add to the kernel command line.
const TIMELINE_APPEND: &str = "earlyprintk=ttyS0 debug loglevel=7";
/// What the timeline boots add to QEMU: SeaBIOS's debug port (0x402) on
/// the console's multiplexer, so its lines arrive on the same stream.
const TIMELINE_QEMU: [&str; 2] = ["-device", "isa-debugcon,iobase=0x402,chardev=con0"];
/// The probe line.
const PROBE: &str = r"rust_keyboard KBD0001:00: probed";
/// How long a boot may take.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// One measured item: its samples and their distribution.
#[derive(Debug, Clone, Serialize)]
struct Item {
    /// Stable key.
    id: &'static str,
    /// The pair or group it belongs to: `a`, `b`, `c`, `d`.
    group: &'static str,
    /// What was timed, from where to where.
    what: &'static str,
    /// `s` or `ms`.
    unit: &'static str,
    /// Every sample, in the order measured.
    samples: Vec<f64>,
    /// Their distribution.
    dist: Option<Dist>,
}

/// The items, in the table's order: (id, group, unit, what).
const ITEMS: [(&str, &str, &str, &str); 16] = [
    (
        "vm_test_ready",
        "a",
        "s",
        "VM test: `Machine::start` until it returns (command channel answered, LAB-INIT-READY on the console log)",
    ),
    (
        "vm_test_bound",
        "a",
        "s",
        "VM test: `Machine::start` until the driver is found bound in sysfs (one command)",
    ),
    (
        "vm_test_total",
        "a",
        "s",
        "VM test: start, driver bound, `Machine::shutdown` done (what one test costs)",
    ),
    (
        "restored_test_bound",
        "a",
        "s",
        "VM test restored from a snapshot saved just before (`VmConfig::with_snapshot`): `Machine::start` until the driver is found bound",
    ),
    (
        "restored_test_total",
        "a",
        "s",
        "VM test restored from the snapshot: start, driver bound, shutdown",
    ),
    (
        "bare_ready",
        "a",
        "s",
        "bare QEMU, same command line: spawn until LAB-INIT-READY on its stdout",
    ),
    (
        "bare_probe",
        "a",
        "s",
        "bare QEMU: spawn until the probe line on its stdout",
    ),
    (
        "noop_cargo_xtask_build",
        "b",
        "s",
        "`cargo xtask build` with nothing to do (child process: cargo, provision checks, SSDT, kernel stamp, module make, initramfs, artifacts)",
    ),
    (
        "noop_kernel_step",
        "b",
        "s",
        "the kernel step alone with nothing to do (in process: patched source check, stamp)",
    ),
    (
        "noop_bare_make",
        "b",
        "s",
        "bare `make bzImage modules` in the same O= tree, the kernel step's make variables",
    ),
    (
        "edit_build",
        "c",
        "s",
        "module edit: a comment appended, then the module, initramfs and artifact steps",
    ),
    (
        "edit_test",
        "c",
        "s",
        "module edit: one acceptance test through nextest (as `cargo xtask watch`)",
    ),
    (
        "edit_to_green",
        "c",
        "s",
        "module edit to green: the edit to the test's pass",
    ),
    (
        "timeline_ready",
        "d",
        "s",
        "timeline boot (bare QEMU + earlyprintk, debug console): spawn until LAB-INIT-READY",
    ),
    (
        "key_latency",
        "d",
        "ms",
        "key: QMP `input-send-event` sent until the driver's `scancode` line arrives on the console",
    ),
    (
        "load_1min",
        "-",
        "",
        "1-minute load average at the start of each round",
    ),
];

/// What `report.json` holds.
#[derive(Serialize)]
struct Report {
    command: String,
    date_utc: String,
    commit: String,
    rounds: usize,
    warm_up_rounds: usize,
    key_events_per_round: usize,
    machine: host_info::Machine,
    load_before: Load,
    load_after: Load,
    bare_qemu_command: String,
    timeline_qemu_command: String,
    items: Vec<Item>,
    timeline_runs: Vec<Timeline>,
    timeline_median: Option<Timeline>,
    notes: Vec<String>,
}

/// The state the rounds share.
struct Bench<'a> {
    host: &'a Host,
    runner: Runner<'a>,
    lab: KernelSpec,
    artifacts: Artifacts,
    tests: Tests,
    rebuild: Vec<Step>,
    key_events: usize,
    jobs: usize,
    logs: PathBuf,
}

/// `cargo xtask bench report`.
pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let host = Host::new()?;
    let out = match &args.out {
        Some(o) => o.clone(),
        None => host.repo.join("docs/bench"),
    };
    let load_before = Load::now()?;
    // Everything built once, through the runner the rounds reuse.
    let kernels = plan::select(&plan::load(&host.repo)?, &args.build.kernels, false)?;
    let steps = plan::steps(&kernels);
    let mut runner = Runner::new(&host, args.build.jobs);
    runner.run_all(&steps)?;
    let lab = kernels
        .iter()
        .find(|k| k.name == LAB_KERNEL)
        .context("kernel/kernels.toml has no lab kernel")?
        .clone();
    let rebuild = steps
        .iter()
        .filter(|s| matches!(s, Step::Module(_) | Step::Initramfs(_) | Step::Artifacts))
        .cloned()
        .collect();
    let artifacts = Artifacts::from_dir(host.cache.artifacts())?;
    let accel = VmConfig::from_artifacts(&artifacts)?.accel().to_string();
    let machine = host_info::Machine::describe(accel)?;
    let tests = Tests::new(&host, &["-E".to_owned(), EDIT_TEST.to_owned()])?;
    let mut bench = Bench {
        host: &host,
        runner,
        lab,
        artifacts,
        tests,
        rebuild,
        key_events: args.key_events,
        jobs: args.build.jobs,
        logs: host.cache.logs().join("bench"),
    };
    let mut items: Vec<Item> = ITEMS
        .iter()
        .map(|&(id, group, unit, what)| Item {
            id,
            group,
            what,
            unit,
            samples: Vec::new(),
            dist: None,
        })
        .collect();
    let mut timelines = Vec::new();
    let mut commands = (String::new(), String::new());
    for round in 0..=args.rounds {
        let counted = round > 0;
        eprintln!(
            "bench report: {} (load {})",
            if counted {
                format!("round {round} of {}", args.rounds)
            } else {
                "warm-up round (not counted)".to_owned()
            },
            Load::now()?
        );
        let r = bench.round(round)?;
        commands = (r.bare_command.clone(), r.timeline_command.clone());
        if counted {
            for (id, v) in r.values {
                let item = items
                    .iter_mut()
                    .find(|i| i.id == id)
                    .with_context(|| format!("no item {id}"))?;
                item.samples.extend(v);
            }
            timelines.push(r.timeline);
        }
    }
    for item in &mut items {
        item.dist = Dist::of(item.samples.clone());
    }
    let load_after = Load::now()?;
    let timeline_median = timeline::median(&timelines);
    let report = Report {
        command: format!(
            "cargo xtask bench report --rounds {} --key-events {}",
            args.rounds, args.key_events
        ),
        date_utc: utc_now(),
        commit: commit(&host.repo),
        rounds: args.rounds,
        warm_up_rounds: 1,
        key_events_per_round: args.key_events,
        machine,
        load_before,
        load_after,
        bare_qemu_command: commands.0,
        timeline_qemu_command: commands.1,
        items,
        timeline_runs: timelines,
        timeline_median,
        notes: notes(),
    };
    write(&out, &report)?;
    println!("{}", markdown_table(&report.items));
    println!(
        "bench report: wrote report.md, report.json and boot-timeline.svg to {}",
        out.display()
    );
    Ok(())
}

/// Samples of items, by id.
type Values = Vec<(&'static str, Vec<f64>)>;

/// What one round measured.
struct Round {
    values: Values,
    timeline: Timeline,
    bare_command: String,
    timeline_command: String,
}

impl Bench<'_> {
    /// One round: every pair, the lab's side first in odd rounds, the bare
    /// tool's first in even ones (the warm-up round is round 0).
    fn round(&mut self, round: usize) -> Result<Round> {
        let odd = round % 2 == 1;
        let mut values: Values = vec![("load_1min", vec![Load::now()?.one])];
        // (a)
        let mut a = Vec::new();
        let mut bare_command = String::new();
        for lab_turn in [odd, !odd] {
            if lab_turn {
                a.extend(self.vm_test(round)?);
                a.extend(self.restored_test(round)?);
            } else {
                let (v, c) = self.bare_boot(round)?;
                a.extend(v);
                bare_command = c;
            }
        }
        values.extend(a);
        // (b)
        for lab_turn in [odd, !odd] {
            if lab_turn {
                values.push(("noop_cargo_xtask_build", vec![self.noop_cargo_build()?]));
                values.push(("noop_kernel_step", vec![self.noop_kernel_step()?]));
            } else {
                values.push(("noop_bare_make", vec![self.noop_bare_make()?]));
            }
        }
        // (c)
        values.extend(self.edit_to_green(round)?);
        // (d)
        let (v, timeline, timeline_command) = self.timeline_boot(round)?;
        values.extend(v);
        Ok(Round {
            values,
            timeline,
            bare_command,
            timeline_command,
        })
    }

    /// (a) one VM test: start, bound, shutdown.
    fn vm_test(&mut self, round: usize) -> Result<Values> {
        let config = VmConfig::from_artifacts(&self.artifacts)?
            .with_name(format!("bench-report-test-{round}"));
        let [ready, bound, total] = time_vm_test(config, false)?;
        Ok(vec![
            ("vm_test_ready", vec![ready]),
            ("vm_test_bound", vec![bound]),
            ("vm_test_total", vec![total]),
        ])
    }

    /// (a) one VM test restored from a snapshot: start, bound, shutdown.
    /// Each round's module edit (c) rebuilds the initramfs, which the
    /// snapshot's name follows, so an untimed start saves the snapshot
    /// first (or restores one, which is as good).
    fn restored_test(&mut self, round: usize) -> Result<Values> {
        let config = VmConfig::from_artifacts(&self.artifacts)?
            .with_name(format!("bench-report-restored-{round}"))
            .with_snapshot();
        Machine::start(config.clone())?.shutdown()?;
        let [_, bound, total] = time_vm_test(config, true)?;
        Ok(vec![
            ("restored_test_bound", vec![bound]),
            ("restored_test_total", vec![total]),
        ])
    }

    /// (a) the bare QEMU: spawn to the probe line and to LAB-INIT-READY.
    fn bare_boot(&mut self, round: usize) -> Result<(Values, String)> {
        let config = VmConfig::from_artifacts(&self.artifacts)?;
        let mut vm = BareVm::start(config, &self.logs.join(format!("bare-{round}.console.log")))?;
        let (probe, _) = vm.wait_line(&Regex::new(PROBE)?, BOOT_TIMEOUT)?;
        let (ready, _) = vm.wait_line(&ready_line()?, BOOT_TIMEOUT)?;
        let command = vm.command_line().to_owned();
        vm.stop()?;
        Ok((
            vec![
                ("bare_ready", vec![ready.as_secs_f64()]),
                ("bare_probe", vec![probe.as_secs_f64()]),
            ],
            command,
        ))
    }

    /// (b) `cargo xtask build` with nothing to do; fails unless the kernel
    /// step said it was up to date.
    fn noop_cargo_build(&mut self) -> Result<f64> {
        let mut c = cmd("cargo", ["xtask", "build"]);
        c.current_dir(&self.host.repo);
        let t0 = Instant::now();
        let out = exec::captured(&mut c)?;
        let elapsed = t0.elapsed().as_secs_f64();
        let text = out.text();
        ensure!(
            out.status.success()
                && text.contains("kernel: up to date")
                && !text.contains("module: build"),
            "`cargo xtask build` was not a no-op ({}):\n{text}",
            out.status
        );
        Ok(elapsed)
    }

    /// (b) the kernel step alone; fails if the image changed.
    fn noop_kernel_step(&mut self) -> Result<f64> {
        let image = self.kernel_out()?.join("bzImage");
        let before = modified(&image)?;
        let t0 = Instant::now();
        self.runner.run(&Step::Kernel(self.lab.clone()))?;
        let elapsed = t0.elapsed().as_secs_f64();
        ensure!(
            modified(&image)? == before,
            "the kernel step rebuilt {}",
            image.display()
        );
        Ok(elapsed)
    }

    /// (b) a bare make in the lab kernel's O= tree, holding the kernel
    /// step's lock; fails unless make left the image alone.
    fn noop_bare_make(&mut self) -> Result<f64> {
        let t = self.runner.toolchain()?.clone();
        let out = self.kernel_out()?;
        // The real path, as the kernel step's make gets it.
        let tree = self.host.kernel_tree(&t, LAB_KERNEL).canonicalize()?;
        let src = if patches::series(&self.host.repo)?.is_empty() {
            t.kernel_src.clone()
        } else {
            kernel::patched_source(&tree)
        };
        let tools = self.host.kernel_tools(&t, self.jobs);
        let mut c = tools.make(&src, &[]);
        c.arg(format!("O={}", tree.display()))
            .arg(format!("-j{}", tools.jobs.max(1)))
            .args(["bzImage", "modules"]);
        let image = tree.join("arch/x86/boot/bzImage");
        let before = modified(&image)?;
        let _lock = kernel::lock_tree(&out)?;
        let t0 = Instant::now();
        let result = exec::captured(&mut c)?;
        let elapsed = t0.elapsed().as_secs_f64();
        let log = self.logs.join("bare-make.log");
        std::fs::create_dir_all(&self.logs)?;
        std::fs::write(&log, format!("{}\n{}", exec::display(&c), result.text()))?;
        ensure!(
            result.status.success(),
            "the bare make failed ({}), see {}",
            result.status,
            log.display()
        );
        ensure!(
            modified(&image)? == before,
            "the bare make was not a no-op: it rewrote {} (see {})",
            image.display(),
            log.display()
        );
        Ok(elapsed)
    }

    /// (c) edit the module source (a comment line no round had before),
    /// rebuild as `watch` does, run the test; the source is put back
    /// afterwards, also when a step fails.
    fn edit_to_green(&mut self, round: usize) -> Result<Values> {
        let file = self.host.repo.join(EDIT_FILE);
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let t0 = Instant::now();
        let edit = Edit::append(&file, &format!("// bench edit, round {round}, {stamp}\n"))?;
        for step in &self.rebuild {
            self.runner.run(step)?;
        }
        let built = t0.elapsed();
        let outcome = self.tests.run(&AtomicBool::new(false))?;
        let total = t0.elapsed();
        // The source as it was, and its build: the next round's no-op
        // build has nothing to do again.
        edit.restore()?;
        for step in &self.rebuild {
            self.runner.run(step)?;
        }
        match outcome {
            Outcome::Pass(summary) if summary.contains("1 test run: 1 passed") => {}
            Outcome::Pass(summary) | Outcome::Fail(summary) => {
                bail!("the edit's test run was not one passing test: {summary}")
            }
            Outcome::Stopped => bail!("the edit's test run was stopped"),
        }
        Ok(vec![
            ("edit_build", vec![built.as_secs_f64()]),
            ("edit_test", vec![(total - built).as_secs_f64()]),
            ("edit_to_green", vec![total.as_secs_f64()]),
        ])
    }

    /// (d) a timeline boot, then the key latency samples on it.
    fn timeline_boot(&mut self, round: usize) -> Result<(Values, Timeline, String)> {
        let config = VmConfig::from_artifacts(&self.artifacts)?
            .with_append(TIMELINE_APPEND)
            .with_extra_args(TIMELINE_QEMU);
        let mut vm = BareVm::start(
            config,
            &self.logs.join(format!("timeline-{round}.console.log")),
        )?;
        vm.wait_line(&Regex::new(PROBE)?, BOOT_TIMEOUT)?;
        let (ready, _) = vm.wait_line(&ready_line()?, BOOT_TIMEOUT)?;
        let command = vm.command_line().to_owned();
        let boot: Vec<(Duration, String)> = vm.seen().to_vec();
        let mut qmp = vm.qmp()?;
        let mut latency = Vec::new();
        for i in 0..self.key_events {
            let key = keys::KEYS[(i / 2) % keys::KEYS.len()];
            let down = i % 2 == 0;
            let line = scancode_line(key, down)?;
            let t0 = vm.elapsed();
            qmp.input_send_event(&[(key, down)])?;
            let (at, _) = vm.wait_line(&line, Duration::from_secs(10))?;
            latency.push((at.saturating_sub(t0)).as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(qmp);
        vm.stop()?;
        let timeline = timeline::of(&boot);
        for key in ["probe", "ready"] {
            ensure!(
                timeline.marks.iter().any(|(k, _)| k == key),
                "the timeline boot's {key} mark is missing: {:?}",
                timeline.marks
            );
        }
        Ok((
            vec![
                ("timeline_ready", vec![ready.as_secs_f64()]),
                ("key_latency", latency),
            ],
            timeline,
            command,
        ))
    }

    fn kernel_out(&self) -> Result<PathBuf> {
        Ok(self.host.kernel_out(self.runner.toolchain()?, LAB_KERNEL))
    }
}

/// `LAB-INIT-READY` as a whole line.
/// Times one VM test of `config`, in seconds from the start: `Machine::start`
/// returned, the driver found bound in sysfs, `Machine::shutdown` done. With
/// `restore` the machine must have been restored from its snapshot, and the
/// probe line is looked for in the kernel log (a restored machine's console
/// starts at the restore), else on the console.
fn time_vm_test(config: VmConfig, restore: bool) -> Result<[f64; 3]> {
    let t0 = Instant::now();
    let mut m = Machine::start(config)?;
    let ready = t0.elapsed();
    ensure!(
        !restore || m.restored_from().is_some(),
        "the VM test booted instead of restoring its snapshot"
    );
    m.wait_until_succeeds(
        "test -e /sys/bus/platform/drivers/rust_keyboard/KBD0001:00",
        Duration::from_secs(60),
    )?;
    let bound = t0.elapsed();
    let log = if restore {
        m.kernel_log()?
    } else {
        m.console_text()
    };
    ensure!(
        Regex::new(PROBE)?.is_match(&log),
        "the VM test has no probe line"
    );
    m.shutdown()?;
    Ok([ready, bound, t0.elapsed()].map(|d| d.as_secs_f64()))
}

fn ready_line() -> Result<Regex> {
    Ok(Regex::new(&format!(
        "^{}$",
        regex::escape(vm_tests::console::INIT_READY)
    ))?)
}

/// The driver's log line for a key event: `scancode 1e pressed`,
/// `scancode e0 c8 released` (bytes from the set-1 table).
fn scancode_line(key: &str, down: bool) -> Result<Regex> {
    let t = kbd::transition(key, down).with_context(|| format!("no scancode for {key}"))?;
    let bytes: Vec<String> = t.wire.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Regex::new(&format!(
        r"rust_keyboard KBD0001:00: scancode {} {}$",
        bytes.join(" "),
        if down { "pressed" } else { "released" }
    ))?)
}

/// A file's modification time.
fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("cannot stat {}", path.display()))
}

/// The checkout's commit, `+dirty` when it has changes.
fn commit(repo: &Path) -> String {
    let git = |args: &[&str]| exec::output(cmd("git", args).current_dir(repo)).unwrap_or_default();
    let head = git(&["rev-parse", "--short=12", "HEAD"]).trim().to_owned();
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"])
        .trim()
        .is_empty();
    format!("{head}{}", if dirty { "+dirty" } else { "" })
}

/// Now, UTC, as `2026-12-02T10:11:12Z`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Unix seconds as an ISO 8601 UTC time.
fn utc(secs: u64) -> String {
    let t = vm_tests::utc::Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// The notes every report carries: what the figures mean and what they do
/// not.
fn notes() -> Vec<String> {
    [
        "Host wall time throughout; each round runs every pair, alternating which of a pair goes first; one warm-up round before is not counted.",
        "The bare QEMU is the harness's own command line (vm_tests' VmConfig::command) with the console on QEMU's stdout instead of a log file and nobody on the command channel socket (QEMU then does not wait for it).",
        "The timeline boots add `earlyprintk=ttyS0 debug loglevel=7` (the setup code prints `early console in setup code`; `loglevel=7` undoes `debug`'s console level) and SeaBIOS's debug port on the console; their cost is timeline_ready against bare_ready.",
        "The lab kernel has X86_VERBOSE_BOOTUP and EARLY_PRINTK off: the decompressor prints nothing (`Decompressing Linux... Booting the kernel` are debug_putstr calls) and the kernel's first line (`Linux version`) arrives when its serial console registers in start_kernel. The end of decompression is therefore not seen: the phase after the setup code's line runs to that first kernel line and includes the early kernel.",
        "`Run /init` and the probe line are placed at their printk stamp + the host time of the kernel clock's zero, the smallest arrival - stamp over the stamped lines of the clock's last run (on TCG the stamps start from 0 again once the TSC is calibrated; lines stamped 0 are left out). probe_residual is the probe line's arrival minus that place: the console's delay plus any drift of the guest clock.",
        "The probe line is printed by insmod in /init, before LAB-INIT-READY: the probe is a mark inside /init, not a phase after it.",
        "Key latency includes QMP's handling in QEMU, the PS/2 interrupt, the driver's work and printk's way through the 8250 console to QEMU's stdout.",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// A figure with its unit.
fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" => format!("{v:.2} ms"),
        "s" => format!("{v:.2} s"),
        _ => format!("{v:.2}"),
    }
}

/// The Markdown table of the items.
fn markdown_table(items: &[Item]) -> String {
    let mut s = String::from(
        "| | what is timed | median | min to max | p10 to p90 | n |\n|---|---|---|---|---|---|\n",
    );
    for i in items {
        let (median, range, p) = match &i.dist {
            Some(d) => (
                fmt_value(d.median, i.unit),
                format!(
                    "{} to {}",
                    fmt_value(d.min, i.unit),
                    fmt_value(d.max, i.unit)
                ),
                format!(
                    "{} to {}",
                    fmt_value(d.p10, i.unit),
                    fmt_value(d.p90, i.unit)
                ),
            ),
            None => ("not measured".into(), "-".into(), "-".into()),
        };
        s.push_str(&format!(
            "| {} | {} | {median} | {range} | {p} | {} |\n",
            i.group,
            i.what,
            i.samples.len()
        ));
    }
    s
}

/// `report.md`.
fn markdown(r: &Report) -> String {
    let m = &r.machine;
    let mut s = format!(
        "# Benchmark report\n\n\
         `{}`, {}, commit `{}`: {} rounds after {} warm-up round.\n\n\
         Machine: {}, {} CPUs ({} available), {} MiB, Linux {}, {}, accelerator {}. \
         Load average (1, 5, 15 min) before {}, after {}.\n\n",
        r.command,
        r.date_utc,
        r.commit,
        r.rounds,
        r.warm_up_rounds,
        m.cpu_model,
        m.cpus,
        m.cpus_available,
        m.memory_mib,
        m.kernel,
        m.qemu,
        m.accelerator,
        r.load_before,
        r.load_after
    );
    s.push_str(&markdown_table(&r.items));
    s.push_str("\n## Boot timeline\n\n");
    match &r.timeline_median {
        Some(t) => {
            s.push_str(&format!(
                "Median over the {} timeline boots (`boot-timeline.svg` shows each), seconds after QEMU's spawn:\n\n\
                 | phase | from | to | duration |\n|---|---|---|---|\n",
                r.timeline_runs.len()
            ));
            for p in &t.phases {
                s.push_str(&format!(
                    "| {} | {:.3} s | {:.3} s | {:.0} ms |\n",
                    p.name,
                    p.start,
                    p.end,
                    (p.end - p.start) * 1000.0
                ));
            }
            if let (Some(zero), Some(res)) = (t.clock_zero, t.probe_residual) {
                s.push_str(&format!(
                    "\nThe kernel clock's zero (its last run) fell at {zero:.3} s on the host clock (median); \
                     the probe line arrived {:.1} ms (median) after its stamp placed there.\n",
                    res * 1000.0
                ));
            }
        }
        None => s.push_str("No timeline boot was measured.\n"),
    }
    s.push_str("\n## Notes\n\n");
    for n in &r.notes {
        s.push_str(&format!("* {n}\n"));
    }
    s.push_str(&format!(
        "\nBare QEMU command line:\n\n```\n{}\n```\n\nTimeline boot:\n\n```\n{}\n```\n",
        r.bare_qemu_command, r.timeline_qemu_command
    ));
    s
}

/// Writes the three files into `out`.
fn write(out: &Path, r: &Report) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let rows: Vec<(String, Timeline)> = r
        .timeline_runs
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("round {}", i + 1), t.clone()))
        .chain(
            r.timeline_median
                .iter()
                .map(|t| ("median".to_owned(), t.clone())),
        )
        .collect();
    let svg = svg::render(
        &format!(
            "Boot timeline, {} boots, {} ({})",
            r.timeline_runs.len(),
            r.machine.accelerator,
            r.date_utc
        ),
        &rows,
        "Black tick: the probe line. Run /init and the probe are printk stamps aligned to the host clock; the rest are arrival times (see report.md).",
    );
    let files = [
        ("report.md", markdown(r)),
        ("report.json", serde_json::to_string_pretty(r)? + "\n"),
        ("boot-timeline.svg", svg),
    ];
    for (name, text) in files {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// A comment appended to a source file, put back by [`Edit::restore`] or,
/// if a step failed first, on drop.
struct Edit {
    file: PathBuf,
    original: Option<Vec<u8>>,
}

impl Edit {
    /// Appends `line` to `file`.
    fn append(file: &Path, line: &str) -> Result<Self> {
        let original =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let mut edited = original.clone();
        edited.extend_from_slice(line.as_bytes());
        std::fs::write(file, edited).with_context(|| format!("cannot edit {}", file.display()))?;
        Ok(Self {
            file: file.to_owned(),
            original: Some(original),
        })
    }

    /// Writes the original content back.
    fn restore(mut self) -> Result<()> {
        self.put_back()
    }

    fn put_back(&mut self) -> Result<()> {
        match self.original.take() {
            Some(original) => std::fs::write(&self.file, original)
                .with_context(|| format!("cannot put {} back", self.file.display())),
            None => Ok(()),
        }
    }
}

impl Drop for Edit {
    fn drop(&mut self) {
        if let Err(e) = self.put_back() {
            eprintln!("bench: {e:#}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_169_600 + 3_723), "2026-12-02T01:02:03Z");
    }

    #[test]
    fn scancode_lines_come_from_the_set_1_table() {
        assert!(
            scancode_line("a", true)
                .unwrap()
                .is_match("[    2.1] rust_keyboard KBD0001:00: scancode 1e pressed")
        );
        assert!(
            scancode_line("a", false)
                .unwrap()
                .is_match("rust_keyboard KBD0001:00: scancode 9e released")
        );
        assert!(
            !scancode_line("a", false)
                .unwrap()
                .is_match("rust_keyboard KBD0001:00: scancode 1e pressed")
        );
        assert!(
            scancode_line("up", false)
                .unwrap()
                .is_match("rust_keyboard KBD0001:00: scancode e0 c8 released")
        );
        assert!(ready_line().unwrap().is_match("LAB-INIT-READY"));
        assert!(!ready_line().unwrap().is_match("echo LAB-INIT-READY"));
    }

    #[test]
    fn the_table_has_a_row_per_item() {
        let items: Vec<Item> = ITEMS
            .iter()
            .map(|&(id, group, unit, what)| Item {
                id,
                group,
                what,
                unit,
                samples: if id == "key_latency" {
                    vec![2.0, 1.0, 3.0]
                } else {
                    vec![]
                },
                dist: None,
            })
            .map(|mut i| {
                i.dist = Dist::of(i.samples.clone());
                i
            })
            .collect();
        let t = markdown_table(&items);
        assert_eq!(t.lines().count(), 2 + ITEMS.len());
        assert!(
            t.contains("| 2.00 ms | 1.00 ms to 3.00 ms | 1.00 ms to 3.00 ms | 3 |"),
            "{t}"
        );
        assert!(t.contains("| not measured | - | - | 0 |"));
    }
}
