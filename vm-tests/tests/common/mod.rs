//! Helpers shared by the VM test suites (a module of each suite, not a
//! test target of its own).
//!
//! The key stream of a test is checked by [`Stream`]: from a [`Mark`], the
//! keys sent must give exactly one IRQ 1 per byte on the wire, exactly the
//! set-1 events in the kernel log, exactly the `/dev/kbd0001` lines of the
//! oracle ([`vm_tests::kbd`]) with `seq` increasing by one, and counters
//! that moved by exactly what was sent. Expected values come from the
//! oracles of the library and from what the test sent, never from the
//! driver.

#![allow(dead_code, unused_macros)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use vm_tests::acpi::TableHeader;
use vm_tests::asl::Resources;
use vm_tests::dmesg;
use vm_tests::ioports::IoPorts;
use vm_tests::kbd::{self, Counters, DevLine, Driver, Expected, Mode, Transition};
use vm_tests::scancodes::{self, KeyEvent};
use vm_tests::{Artifacts, Machine, VmConfig, run_test};

/// How long keys may take to arrive.
pub const KEY_WAIT: Duration = Duration::from_secs(20);
/// How long to watch for extra interrupts once the expected count is reached.
/// An extra interrupt would follow the device's or the driver's last port
/// access, done by the time the count is reached; 250 ms (500 ms until
/// 2026-12-03) leaves that room on a loaded host too.
pub const SETTLE: Duration = Duration::from_millis(250);
/// Pause between two polls of a guest file or count.
pub const POLL: Duration = Duration::from_millis(50);
/// The Rust driver in its default mode, for the suites that test it alone.
pub const RUST: Driver = Driver::Rust(Mode::Threaded);
/// The name of the lab's device, ACPI's `<_HID>:<instance>`.
pub const DEVICE: &str = "KBD0001:00";
/// The ACPI device of the lab.
pub const ACPI_DEV: &str = "/sys/bus/acpi/devices/KBD0001:00";
/// The platform device created for it.
pub const PLATFORM_DEV: &str = "/sys/bus/platform/devices/KBD0001:00";
/// The Rust driver's directory in sysfs.
pub const DRIVER_DIR: &str = "/sys/bus/platform/drivers/rust_keyboard";
/// The module inside the initramfs.
pub const MODULE: &str = "/lib/modules/rust_keyboard.ko";
/// The test-only IRQ sharer inside the initramfs (vm-tests/guest-modules).
pub const SHARER: &str = "/lib/modules/lab_irq_sharer.ko";
/// The action name the driver registers.
pub const IRQ_NAME: &str = "rust_keyboard_irq";
/// The action name of the sharer.
pub const SHARER_NAME: &str = "lab_irq_sharer";

/// One `#[test]` per mode for each listed function `fn name(mode: Mode) ->
/// Result<()>` of the suite: `mode_hard::name`, `mode_threaded::name`,
/// `mode_workqueue::name`, each on its own VM booted in that mode by the
/// function. Use with `#[macro_use] mod common;`.
macro_rules! per_mode_tests {
    ($($test:ident),+ $(,)?) => {
        per_mode_tests!(@mode mode_hard, Hard, $($test),+);
        per_mode_tests!(@mode mode_threaded, Threaded, $($test),+);
        per_mode_tests!(@mode mode_workqueue, Workqueue, $($test),+);
    };
    (@mode $module:ident, $variant:ident, $($test:ident),+) => {
        mod $module {
            $(
                #[test]
                fn $test() -> anyhow::Result<()> {
                    super::$test(vm_tests::kbd::Mode::$variant)
                }
            )+
        }
    };
}

/// The test matrix of a suite, one `#[test]` per cell, for the kernels
/// `lab` and `debug` (kernel/kernels.toml):
/// * `subject: [..]`, functions `fn name(s: Subject) -> Result<()>`: once
///   per driver, the Rust driver in each interrupt mode
///   (`<kernel>::rust_hard::name`, `rust_threaded`, `rust_workqueue`) and the
///   C twin (`<kernel>::c_twin::name`);
/// * `driver: [..]`, the same signature, for tests in which the mode plays
///   no part: the Rust driver in its default mode (`<kernel>::rust::name`)
///   and the C twin (`<kernel>::c_twin::name`);
/// * `kernel: [..]`, functions `fn name(kernel: &str) -> Result<()>`, for
///   tests without a driver: `<kernel>::name`.
///
/// Each test boots its own VM. `cargo xtask test -- debug::c_twin::` selects
/// one column.
macro_rules! matrix_tests {
    (
        subject: [$($st:ident),* $(,)?],
        driver: [$($dt:ident),* $(,)?],
        kernel: [$($kt:ident),* $(,)?] $(,)?
    ) => {
        matrix_tests!(@kernel lab, [$($st),*], [$($dt),*], [$($kt),*]);
        matrix_tests!(@kernel debug, [$($st),*], [$($dt),*], [$($kt),*]);
    };
    (@kernel $kernel:ident, [$($st:ident),*], [$($dt:ident),*], [$($kt:ident),*]) => {
        mod $kernel {
            matrix_tests!(@tests $kernel, rust_hard,
                vm_tests::kbd::Driver::Rust(vm_tests::kbd::Mode::Hard), $($st),*);
            matrix_tests!(@tests $kernel, rust_threaded,
                vm_tests::kbd::Driver::Rust(vm_tests::kbd::Mode::Threaded), $($st),*);
            matrix_tests!(@tests $kernel, rust_workqueue,
                vm_tests::kbd::Driver::Rust(vm_tests::kbd::Mode::Workqueue), $($st),*);
            matrix_tests!(@tests $kernel, rust,
                vm_tests::kbd::Driver::Rust(vm_tests::kbd::Mode::Threaded), $($dt),*);
            matrix_tests!(@tests $kernel, c_twin, vm_tests::kbd::Driver::C, $($st,)* $($dt),*);
            $(
                #[test]
                fn $kt() -> anyhow::Result<()> {
                    crate::$kt(stringify!($kernel))
                }
            )*
        }
    };
    (@tests $kernel:ident, $driver_mod:ident, $driver:expr, $($test:ident),*) => {
        mod $driver_mod {
            $(
                #[test]
                fn $test() -> anyhow::Result<()> {
                    crate::$test(crate::common::Subject::new(stringify!($kernel), $driver))
                }
            )*
        }
    };
}

/// What a shared test runs against: a kernel of kernel/kernels.toml (`lab`,
/// or `debug` with lockdep, KASAN and the other checkers) and a driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// The kernel's name.
    pub kernel: &'static str,
    /// The driver /init loads.
    pub driver: Driver,
}

impl Subject {
    /// The subject of `driver` on `kernel`.
    pub fn new(kernel: &'static str, driver: Driver) -> Subject {
        Subject { kernel, driver }
    }

    /// Its VM: the kernel's artifacts, the real SSDT, the driver loaded by
    /// /init, named `<kernel>-<driver>-<test>` in the log directory.
    pub fn vm(&self, test: &str) -> Result<VmConfig> {
        Ok(kernel_vm(self.kernel)?
            .with_append(&self.driver.cmdline())
            .with_name(format!("{}-{}-{test}", self.kernel, self.driver)))
    }

    /// How many times longer than on the lab kernel a test's long waits
    /// may take: 3 on the debug kernel, whose checkers (KASAN, lockdep,
    /// DEBUG_KOBJECT_RELEASE's delayed releases) made one rmmod/insmod
    /// cycle take about 10 s under TCG on a loaded 2-core machine
    /// (2026-12-02), 1 elsewhere.
    pub fn slowdown(&self) -> u32 {
        if self.kernel == "debug" { 3 } else { 1 }
    }

    /// [`Subject::vm`] with a test variant of the SSDT
    /// (`acpi/test/<name>.asl`).
    pub fn vm_with_ssdt_variant(&self, name: &str, test: &str) -> Result<VmConfig> {
        let table = artifacts()?.acpi_table(name)?;
        Ok(self.vm(test)?.with_ssdt(Some(table)))
    }
}

/// The VM of the kernel `kernel` (`lab`: [`lab`]), with the real SSDT.
pub fn kernel_vm(kernel: &str) -> Result<VmConfig> {
    if kernel == vm_tests::artifacts::LAB_KERNEL {
        lab()
    } else {
        Ok(VmConfig::from_artifacts_of(&artifacts()?, kernel)?)
    }
}

// ---------------------------------------------------------------------------
// Machines
// ---------------------------------------------------------------------------

pub fn artifacts() -> Result<Artifacts> {
    Ok(Artifacts::from_env()?)
}

/// The lab VM: pc machine, the real SSDT, the module loaded by /init.
pub fn lab() -> Result<VmConfig> {
    Ok(VmConfig::from_artifacts(&artifacts()?)?)
}

/// The lab VM with a test variant of the SSDT (`acpi/test/<name>.asl`).
pub fn lab_with_ssdt_variant(name: &str) -> Result<VmConfig> {
    let table = artifacts()?.acpi_table(name)?;
    Ok(lab()?.with_ssdt(Some(table)))
}

/// The lab VM with the driver loaded by /init in `mode`
/// (`rust_keyboard.mode=N` on the kernel command line), named
/// `<mode>-<test>` in the log directory, restored from a snapshot
/// ([`VmConfig::with_snapshot`]: the tests in a mode share one).
pub fn lab_in_mode(mode: Mode, test: &str) -> Result<VmConfig> {
    Ok(lab()?
        .with_append(&mode.cmdline())
        .with_name(format!("{mode}-{test}"))
        .with_snapshot())
}

/// [`run_test`], with the console tail added to a failure that does not
/// carry one yet (a harness error does).
pub fn run(config: VmConfig, test: impl FnOnce(&mut Machine) -> Result<()>) -> Result<()> {
    run_test(config, |m| test(m).map_err(|e| with_console_tail(m, e)))
}

fn with_console_tail(m: &Machine, e: anyhow::Error) -> anyhow::Error {
    if format!("{e:#}").contains("last console lines") {
        e
    } else {
        let tail = m.console_tail(30);
        anyhow::anyhow!("{e:#}\nlast console lines:\n{tail}")
    }
}

/// Checks that the Rust driver probed in `mode` ([`check_probed`]).
pub fn check_probed_in_mode(m: &mut Machine, mode: Mode) -> Result<()> {
    check_probed(m, Driver::Rust(mode))
}

/// Checks that `driver` probed in its mode: the probe line says so (exactly
/// one probe line since boot) and debugfs `mode` holds its word.
pub fn check_probed(m: &mut Machine, driver: Driver) -> Result<()> {
    let mode = driver.mode_name();
    let log = m.kernel_log_lines_with(": probed: ")?;
    let re = device_message_of(
        driver,
        "",
        r"probed: irq 1, data port 0x60, status port 0x64, mode (\w+)$",
    )?;
    let modes: Vec<String> = log
        .lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_owned()))
        .collect();
    ensure!(
        modes == [mode],
        "expected one probe line of {} with mode {mode}, found modes {modes:?} in the kernel \
         log:\n{}",
        driver.name(),
        m.kernel_log()?
    );
    let (_, word) = counters_and_mode_of(m, driver)?;
    ensure!(word == mode, "debugfs mode holds {word:?}, expected {mode}");
    Ok(())
}

// ---------------------------------------------------------------------------
// The kernel log, /proc
// ---------------------------------------------------------------------------

/// The ACPI tables the kernel log lists at boot, in order: its `ACPI: `
/// lines only ([`TableHeader::from_boot_line`] reads no other), not the
/// whole log over the serial line.
pub fn boot_tables(m: &mut Machine) -> Result<Vec<TableHeader>> {
    Ok(TableHeader::boot_tables(
        &m.kernel_log_lines_with("ACPI: ")?,
    ))
}

/// Driver key events in the kernel log, in order.
pub fn driver_events(m: &mut Machine) -> Result<Vec<KeyEvent>> {
    Ok(scancodes::parse_driver_log(
        &m.kernel_log_lines_with(" scancode ")?,
    ))
}

/// The total count of IRQ 1.
pub fn irq1_count(m: &mut Machine) -> Result<u64> {
    m.interrupts()?
        .count(1)
        .context("IRQ 1 is not in /proc/interrupts (no handler registered)")
}

/// The actions on IRQ 1 (empty when the line is not listed).
pub fn irq1_actions(m: &mut Machine) -> Result<Vec<String>> {
    Ok(m.interrupts()?
        .irq(1)
        .map(|l| l.actions.clone())
        .unwrap_or_default())
}

pub fn show<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Kernel messages at warning level or worse (`<0>`..`<4>` in `dmesg -r`)
/// from the first load of `driver`'s module on, except the out-of-tree
/// taint notice, lines matching `allowed`, and the clocksource watchdog's
/// complaints about the TSC (TCG on a busy host makes the emulated TSC
/// drift; nothing to do with the driver).
pub fn warnings_since_load_of(
    m: &mut Machine,
    driver: Driver,
    allowed: Option<&Regex>,
) -> Result<Vec<String>> {
    let noise = Regex::new(r"clocksource|\b(tsc|TSC)\b")?;
    let marker = format!(
        "{}: loading out-of-tree module taints kernel",
        driver.name()
    );
    // The kernel's records at warning level or worse (facility 0, levels 0
    // to 4: what `Record::is_warning_or_worse` keeps) and the marker, not
    // the whole log over the serial line (a driver name has no character
    // that the pattern would read as more than itself).
    let raw = m.succeed(&format!(
        "dmesg -r | grep -e '^<[0-4]>' -e '{marker}' || [ $? = 1 ]"
    ))?;
    let Some(warnings) = dmesg::warnings_after(&raw, &marker) else {
        bail!(
            "the kernel log has no module load notice:\n{}",
            m.succeed("dmesg -r")?
        );
    };
    Ok(warnings
        .iter()
        .map(|record| record.line)
        .filter(|line| !noise.is_match(line) && !allowed.is_some_and(|re| re.is_match(line)))
        .map(str::to_owned)
        .collect())
}

pub fn ensure_no_warnings(m: &mut Machine, allowed: Option<&Regex>) -> Result<()> {
    ensure_no_warnings_of(m, RUST, allowed)
}

/// [`ensure_no_warnings`] from the first load of `driver`'s module.
pub fn ensure_no_warnings_of(
    m: &mut Machine,
    driver: Driver,
    allowed: Option<&Regex>,
) -> Result<()> {
    let bad = warnings_since_load_of(m, driver, allowed)?;
    ensure!(
        bad.is_empty(),
        "warnings or errors in the kernel log since the module was loaded:\n  {}",
        bad.join("\n  ")
    );
    Ok(())
}

/// A regex for the driver's messages about the lab's device: `before`,
/// `rust_keyboard KBD0001:00: `, then `after` (both in regex syntax).
pub fn device_message(before: &str, after: &str) -> Result<Regex> {
    device_message_of(RUST, before, after)
}

/// [`device_message`] for the messages of `driver`.
pub fn device_message_of(driver: Driver, before: &str, after: &str) -> Result<Regex> {
    let device = regex::escape(DEVICE);
    Ok(Regex::new(&format!(
        "{before}{} {device}: {after}",
        driver.name()
    ))?)
}

/// Devices bound to `driver` (entries of its sysfs directory that name a
/// device).
pub fn bound_devices_of(m: &mut Machine, driver: Driver) -> Result<Vec<String>> {
    let out = m.succeed(&format!("ls {}", driver.driver_dir()))?;
    Ok(out
        .split_whitespace()
        .filter(|e| !matches!(*e, "bind" | "unbind" | "uevent" | "module" | "new_id"))
        .map(str::to_owned)
        .collect())
}

/// Checks that `driver` probed nothing: no probe line, no device bound,
/// no IRQ registered.
pub fn ensure_nothing_probed(m: &mut Machine, driver: Driver) -> Result<()> {
    let probed = m.kernel_log_lines_with("probed")?;
    ensure!(
        probed.is_empty(),
        "a probe line in the kernel log:\n{probed}"
    );
    let bound = bound_devices_of(m, driver)?;
    ensure!(bound.is_empty(), "devices bound to the driver: {bound:?}");
    let ints = m.interrupts()?;
    let irq_name = driver.irq_name();
    let holders: Vec<&str> = ints
        .with_action(irq_name)
        .map(|l| l.label.as_str())
        .collect();
    ensure!(
        holders.is_empty(),
        "{irq_name} registered on IRQs {holders:?}"
    );
    ensure!(
        ints.irq(1).is_none(),
        "IRQ 1 has a handler: {:?}",
        ints.irq(1)
    );
    Ok(())
}

/// Unloads the Rust driver's module and checks it is gone.
pub fn rmmod(m: &mut Machine) -> Result<()> {
    rmmod_of(m, RUST)
}

/// How long the driver's sysfs directory may outlive rmmod: the debug
/// kernel's DEBUG_KOBJECT_RELEASE delays the release of the driver's kobject,
/// which removes the directory, by 1 to 4 s (lib/kobject.c).
pub const DRIVER_DIR_GONE: Duration = Duration::from_secs(15);

/// Unloads `driver`'s module and checks it is gone: the module at once, the
/// driver's directory within [`DRIVER_DIR_GONE`].
pub fn rmmod_of(m: &mut Machine, driver: Driver) -> Result<()> {
    let name = driver.name();
    m.succeed(&format!("rmmod {name}"))?;
    m.fail(&format!("test -e /sys/module/{name}"))
        .context("the module is still loaded after rmmod")?;
    m.wait_until_fails(&format!("test -e {}", driver.driver_dir()), DRIVER_DIR_GONE)
        .context("the driver is still registered after rmmod")?;
    Ok(())
}

/// Checks the kernel log (see [`ensure_no_warnings`]), unloads `driver`'s
/// module, and checks the log again.
pub fn rmmod_cleanly(m: &mut Machine, driver: Driver, allowed: Option<&Regex>) -> Result<()> {
    ensure_no_warnings_of(m, driver, allowed)?;
    rmmod_of(m, driver)?;
    ensure_no_warnings_of(m, driver, allowed)
}

/// The resources declared by `acpi/<name>`, an ASL source of the lab; it
/// must declare I/O ports.
pub fn asl_resources(name: &str) -> Result<Resources> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../acpi")
        .join(name);
    let resources = Resources::read(&path)?;
    ensure!(
        !resources.io.is_empty(),
        "no I/O resource found in {}",
        path.display()
    );
    Ok(resources)
}

/// `/proc/ioports`.
pub fn ioports(m: &mut Machine) -> Result<IoPorts> {
    Ok(IoPorts::parse(&m.succeed("cat /proc/ioports")?)?)
}

// ---------------------------------------------------------------------------
// debugfs
// ---------------------------------------------------------------------------

/// Fails unless debugfs is mounted on /sys/kernel/debug (the lab's /init
/// mounts it), so that a missing debugfs file means what it says.
pub fn ensure_debugfs(m: &mut Machine) -> Result<()> {
    m.succeed("grep -q '^debugfs /sys/kernel/debug ' /proc/mounts")
        .context("debugfs is not mounted on /sys/kernel/debug")?;
    Ok(())
}

/// The driver's counters and its `mode` word (debugfs is mounted by /init;
/// reading fails without it).
pub fn counters_and_mode(m: &mut Machine) -> Result<(Counters, String)> {
    counters_and_mode_of(m, RUST)
}

/// [`counters_and_mode`] of `driver`.
pub fn counters_and_mode_of(m: &mut Machine, driver: Driver) -> Result<(Counters, String)> {
    let out = m
        .succeed(&Counters::command_in(&driver.debugfs_dir()))
        .context("reading the driver's debugfs counters")?;
    Ok(Counters::parse(&out)?)
}

/// The driver's counters, checked for `irqs == handled + not_ours`.
pub fn counters(m: &mut Machine) -> Result<Counters> {
    let (c, _) = counters_and_mode(m)?;
    ensure!(
        c.irqs == c.handled + c.not_ours,
        "counters: irqs {} != handled {} + not_ours {}: {c:?}",
        c.irqs,
        c.handled,
        c.not_ours
    );
    Ok(c)
}

// ---------------------------------------------------------------------------
// Guest processes and files
// ---------------------------------------------------------------------------

/// Waits until `pid` has `path` open (the link in /proc/PID/fd).
pub fn wait_open(m: &mut Machine, pid: u32, path: &str) -> Result<()> {
    m.wait_until_succeeds(
        &format!("ls -l /proc/{pid}/fd 2>/dev/null | grep -q ' -> {path}$'"),
        KEY_WAIT,
    )
    .with_context(|| format!("process {pid} never opened {path}"))?;
    Ok(())
}

/// Waits until `pid` sleeps in the `read` system call (x86-64 number 0,
/// the first field of /proc/PID/syscall).
pub fn wait_blocked_in_read(m: &mut Machine, pid: u32) -> Result<()> {
    m.wait_for(
        &format!("process {pid} blocked in read()"),
        KEY_WAIT,
        POLL,
        |m| {
            let (status, out) = m.execute(&format!(
                "cat /proc/{pid}/syscall && grep '^State:' /proc/{pid}/status"
            ))?;
            Ok((status == 0 && out.starts_with("0 ") && out.contains("State:\tS")).then_some(()))
        },
    )
}

/// Whether process `pid` still exists (and is not a zombie).
pub fn alive(m: &mut Machine, pid: u32) -> Result<bool> {
    let (status, out) = m.execute(&format!("grep '^State:' /proc/{pid}/status"))?;
    Ok(status == 0 && !out.contains("zombie"))
}

/// A guest text file's content (empty if it does not exist), read by
/// /init's `lab_cat` (builtins only, no fork for `cat`).
pub fn read_file(m: &mut Machine, path: &str) -> Result<String> {
    Ok(m.succeed(&format!("lab_cat {path} 2>/dev/null || true"))?)
}

// ---------------------------------------------------------------------------
// /dev/kbd0001 readers
// ---------------------------------------------------------------------------

/// A `cat /dev/kbd0001` running in the background of the guest, its output
/// in a file.
pub struct Reader {
    /// Its pid.
    pub pid: u32,
    /// The file with what it read.
    pub out: String,
}

impl Reader {
    /// Starts a reader called `name` and waits until it has the device open
    /// (its queue exists from then on).
    pub fn start(m: &mut Machine, name: &str) -> Result<Reader> {
        let out = format!("/tmp/reader-{name}.out");
        let pid = m.spawn(&format!("cat {}", kbd::DEV_NODE), &out)?;
        wait_open(m, pid, kbd::DEV_NODE)?;
        Ok(Reader { pid, out })
    }

    /// The whole lines read so far (a line still being written is left
    /// out); every line must be in the device's format.
    pub fn lines(&self, m: &mut Machine) -> Result<Vec<DevLine>> {
        let text = read_file(m, &self.out)?;
        let whole = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        kbd::parse_dev_lines(whole)
            .with_context(|| format!("reader {} ({}) got {text:?}", self.pid, self.out))
    }

    /// Everything read, which must be whole lines only.
    pub fn complete_lines(&self, m: &mut Machine) -> Result<Vec<DevLine>> {
        let text = read_file(m, &self.out)?;
        kbd::parse_dev_lines(&text)
            .with_context(|| format!("reader {} ({}) got {text:?}", self.pid, self.out))
    }

    /// Waits until the reader has at least `n` lines; returns them all.
    pub fn wait_lines(&self, m: &mut Machine, n: usize, timeout: Duration) -> Result<Vec<DevLine>> {
        let what = format!("{n} lines from reader {} of {}", self.pid, kbd::DEV_NODE);
        let mut last = Vec::new();
        let r: Result<_> = m.wait_for(&what, timeout, POLL, |m| {
            last = self.lines(m)?;
            Ok((last.len() >= n).then(|| last.clone()))
        });
        r.with_context(|| format!("lines so far:\n  {}", show(&last)))
    }
}

/// Checks that `lines` report `expected` in order, with `seq` going up by
/// one from `first_seq` (if known) or from the first line's.
pub fn check_lines(lines: &[DevLine], expected: &[Expected], first_seq: Option<u64>) -> Result<()> {
    let start = first_seq
        .or_else(|| lines.first().map(|l| l.seq))
        .unwrap_or(1);
    let want: Vec<String> = expected
        .iter()
        .enumerate()
        .map(|(i, e)| e.line(start + i as u64))
        .collect();
    let got: Vec<String> = lines.iter().map(ToString::to_string).collect();
    ensure!(
        got == want,
        "{} lines differ from the oracle (set-1 table and KEY_ names, seq +1 from {start})\n\
         expected:\n  {}\ngot:\n  {}",
        kbd::DEV_NODE,
        show(&want),
        show(&got)
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// The key stream
// ---------------------------------------------------------------------------

/// A point in the key stream.
#[derive(Debug, Clone)]
pub struct Mark {
    /// IRQ 1 count.
    pub irq1: u64,
    /// Number of driver events in the kernel log.
    pub logged: usize,
    /// Lines of the stream's reader.
    pub lines: usize,
    /// The seq the next event must have, when known.
    pub next_seq: Option<u64>,
    /// The driver's counters.
    pub counters: Counters,
}

/// The checks of a booted driver's key stream: the kernel log, IRQ 1, the
/// counters, and for a driver with `/dev/kbd0001` one reader of it opened
/// right after probe.
pub struct Stream {
    /// The reader (`None` for a driver without the device node).
    reader: Option<Reader>,
    /// Whether the reader opened before any key (then its first `seq` is 1).
    fresh: bool,
    /// The driver whose stream this is.
    driver: Driver,
}

impl Stream {
    /// Starts the Rust driver's stream ([`Stream::start_for`]).
    pub fn start(m: &mut Machine, fresh: bool) -> Result<Stream> {
        Stream::start_for(m, RUST, fresh)
    }

    /// Starts the stream of `driver`, with a reader if it has the device
    /// node; `fresh` when no key was pressed since probe (the first event
    /// must then have `seq` 1).
    pub fn start_for(m: &mut Machine, driver: Driver, fresh: bool) -> Result<Stream> {
        let reader = if driver.has_dev_node() {
            Some(Reader::start(m, "stream")?)
        } else {
            None
        };
        Ok(Stream {
            reader,
            fresh,
            driver,
        })
    }

    /// The stream's reader; fails for a driver without the device node.
    pub fn reader(&self) -> Result<&Reader> {
        self.reader
            .as_ref()
            .with_context(|| format!("{} has no {}", self.driver.name(), kbd::DEV_NODE))
    }

    /// The guest script that reads everything a mark or a check needs in
    /// one guest command: the IRQ 1 count, the driver's events logged after
    /// the first `from`, the reader's output and the counters
    /// ([`Stream::parse_snapshot`]). Each program it runs costs the debug
    /// kernel 40 to 80 ms under TCG, so it runs two (`dmesg`, `awk`) and
    /// reads files with /init's `lab_cat` (shell builtins).
    fn snapshot_script(&self, from: Option<usize>) -> String {
        // awk: -1 prints no event, only their count.
        let from = from.map_or_else(|| "-1".to_owned(), |n| n.to_string());
        let dev = match &self.reader {
            Some(r) => format!("lab_cat {}", r.out),
            None => "true".to_owned(),
        };
        format!(
            "echo @@snap-irq; \
             lab_cat /proc/interrupts; \
             echo @@snap-log; dmesg | awk -v from={from} \
             '/ scancode / {{ n++; if (from >= 0 && n > from) print }} \
             END {{ print \"@@snap-count\"; print n + 0 }}'; \
             echo @@snap-counters; ({}) || exit 1; \
             echo @@snap-dev; {dev}",
            Counters::command_in(&self.driver.debugfs_dir()),
        )
    }

    /// Reads the snapshot now.
    fn snapshot(&self, m: &mut Machine, from: Option<usize>) -> Result<Snapshot> {
        let out = m.succeed(&self.snapshot_script(from))?;
        Self::parse_snapshot(&out)
    }

    /// Parses the output of [`Stream::snapshot_script`].
    fn parse_snapshot(out: &str) -> Result<Snapshot> {
        let section = |name: &str, next: Option<&str>| -> Result<&str> {
            let start = format!("@@snap-{name}\n");
            let i = out
                .find(&start)
                .with_context(|| format!("no {name} in {out:?}"))?
                + start.len();
            let end = match next {
                Some(n) => out[i..]
                    .find(&format!("@@snap-{n}\n"))
                    .map(|j| i + j)
                    .with_context(|| format!("no {n} in {out:?}"))?,
                None => out.len(),
            };
            Ok(&out[i..end])
        };
        let irq1 = vm_tests::Interrupts::parse(section("irq", Some("log"))?)?
            .count(1)
            .context("IRQ 1 is not in /proc/interrupts (no handler registered)")?;
        let new_events = scancodes::parse_driver_log(section("log", Some("count"))?);
        let logged_total: usize = section("count", Some("counters"))?.trim().parse()?;
        let (counters, _) = Counters::parse(section("counters", Some("dev"))?)?;
        ensure!(
            counters.irqs == counters.handled + counters.not_ours,
            "counters: irqs {} != handled {} + not_ours {}: {counters:?}",
            counters.irqs,
            counters.handled,
            counters.not_ours
        );
        let dev = section("dev", None)?.to_owned();
        Ok(Snapshot {
            irq1,
            logged_total,
            new_events,
            counters,
            dev,
        })
    }

    /// The point in the stream that `snap` shows.
    fn mark_of(&self, snap: &Snapshot) -> Result<Mark> {
        let lines = whole_lines(&snap.dev)?;
        let next_seq = match lines.last() {
            Some(l) => Some(l.seq + 1),
            None if self.fresh => Some(1),
            None => None,
        };
        Ok(Mark {
            irq1: snap.irq1,
            logged: snap.logged_total,
            lines: lines.len(),
            next_seq,
            counters: snap.counters,
        })
    }

    /// The point in the stream now.
    pub fn mark(&self, m: &mut Machine) -> Result<Mark> {
        let snap = self.snapshot(m, None)?;
        self.mark_of(&snap)
    }

    /// Presses `chords` one after the other with `send_key` and checks the
    /// stream against the oracle; returns the mark after (for a next check
    /// when nothing happens in between).
    pub fn press(&self, m: &mut Machine, chords: &[&str]) -> Result<Mark> {
        let start = self.mark(m)?;
        self.press_from(m, &start, chords)
    }

    /// [`Stream::press`] from a mark already taken (the one a check
    /// returned, when nothing happened since); returns the mark after.
    pub fn press_from(&self, m: &mut Machine, start: &Mark, chords: &[&str]) -> Result<Mark> {
        let mut sent = Vec::new();
        for chord in chords {
            let keys = vm_tests::qmp::parse_chord(chord)?;
            sent.extend(kbd::chord(&keys).with_context(|| format!("{chord} not in the tables"))?);
            m.send_key(chord)?;
        }
        self.check(m, start, &sent)
            .with_context(|| format!("keys {chords:?}"))
    }

    /// Checks that, since `mark`, the transitions `sent` arrived exactly:
    /// IRQ 1 fired once per byte on the wire, the kernel log has exactly
    /// their events, the reader exactly their lines (seq +1 each), and the
    /// counters moved by exactly the bytes and events sent (every interrupt
    /// handled, none dropped, `irqs == handled + not_ours`, the IRQ count's
    /// increase equal to `irqs`' increase). Returns the mark of the state
    /// it checked, for the next check.
    pub fn check(&self, m: &mut Machine, mark: &Mark, sent: &[Transition]) -> Result<Mark> {
        let wire: u64 = sent.iter().map(|t| t.wire.len() as u64).sum();
        let expected: Vec<Expected> = sent.iter().filter_map(|t| t.event.clone()).collect();
        let want = mark.irq1 + wire;
        // The wait, the settling time and the snapshot in one guest command.
        let (_, out) = m.wait_for_interrupts_then(
            1,
            want,
            KEY_WAIT,
            &format!(
                "sleep {:.3}\n{}",
                SETTLE.as_secs_f64(),
                self.snapshot_script(Some(mark.logged))
            ),
        )?;
        let mut snap = Self::parse_snapshot(&out)?;
        let after = snap.irq1;
        let logged = std::mem::take(&mut snap.new_events);
        ensure!(
            after == want,
            "IRQ 1 count went from {} to {after}, expected exactly {want} (one interrupt per \
             byte, {wire} bytes)\nlogged:\n  {}",
            mark.irq1,
            show(&logged)
        );
        let events: Vec<KeyEvent> = expected.iter().map(|e| e.event.clone()).collect();
        ensure!(
            logged == events,
            "driver events in the kernel log differ from the set-1 table\nexpected:\n  {}\n\
             logged:\n  {}",
            show(&events),
            show(&logged)
        );
        if let Some(reader) = &self.reader {
            let mut lines = whole_lines(&snap.dev)?;
            if lines.len() < mark.lines + expected.len() {
                // The reader may lag behind the log by a little.
                lines = reader.wait_lines(m, mark.lines + expected.len(), KEY_WAIT)?;
                snap = self.snapshot(m, None)?;
            }
            let all = kbd::parse_dev_lines(&snap.dev)
                .with_context(|| format!("reader {} got {:?}", reader.pid, snap.dev))?;
            ensure!(
                all.len() == lines.len(),
                "the reader got a partial line: {all:?}"
            );
            check_lines(&lines[mark.lines..], &expected, mark.next_seq)?;
        }

        let c = snap.counters;
        ensure!(
            c.monotonic_since(&mark.counters),
            "a counter went down: {:?} -> {c:?}",
            mark.counters
        );
        let d = c.since(&mark.counters);
        let got = [
            ("irqs", d.irqs, wire),
            ("irqs (IRQ 1 count's increase)", d.irqs, after - mark.irq1),
            ("handled", d.handled, wire),
            ("not_ours", d.not_ours, 0),
            ("bytes", d.bytes, wire),
            ("events", d.events, expected.len() as u64),
            ("bytes_dropped (total)", c.bytes_dropped, 0),
            ("events_dropped (total)", c.events_dropped, 0),
        ];
        let wrong: Vec<String> = got
            .iter()
            .filter(|(_, is, should)| is != should)
            .map(|(what, is, should)| format!("{what}: rose by {is}, expected {should}"))
            .collect();
        ensure!(
            wrong.is_empty(),
            "counters after {wire} bytes and {} events: {}\nbefore: {:?}\nafter:  {c:?}",
            expected.len(),
            wrong.join("; "),
            mark.counters
        );
        self.mark_of(&snap)
    }
}

/// What [`Stream`] reads in one guest command.
struct Snapshot {
    irq1: u64,
    logged_total: usize,
    new_events: Vec<KeyEvent>,
    counters: Counters,
    dev: String,
}

/// The whole lines of a reader's output (a line still being written is
/// left out).
fn whole_lines(text: &str) -> Result<Vec<DevLine>> {
    let whole = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    Ok(kbd::parse_dev_lines(whole)?)
}

/// The transitions of typing `text` on a US layout (one chord per character).
pub fn text_transitions(text: &str) -> Result<Vec<Transition>> {
    let mut out = Vec::new();
    for c in text.chars() {
        let keys = scancodes::char_keys(c).with_context(|| format!("{c:?}"))?;
        out.extend(kbd::chord(&keys).context("keys")?);
    }
    Ok(out)
}

/// `n` transitions of `key` going down (a held key's make and repeats).
pub fn downs(key: &str, n: usize) -> Result<Vec<Transition>> {
    let t = kbd::transition(key, true).with_context(|| format!("{key} not in the tables"))?;
    Ok(vec![t; n])
}

/// `key` going up.
pub fn up(key: &str) -> Result<Transition> {
    kbd::transition(key, false).with_context(|| format!("{key} not in the tables"))
}
