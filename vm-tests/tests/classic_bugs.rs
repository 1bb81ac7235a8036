//! Issue #10's classic interrupt-handling bugs, caught (exercises/README.md).
//!
//! One test per exercise of `exercises/c/`, each on its own boot of the
//! debug kernel (lockdep, KASAN, DEBUG_ATOMIC_SLEEP, DEBUG_SHIRQ) with
//! `lab.nomodule`: the test loads the skeleton `bug_kbd.ko` and the bug's
//! module, provokes the bug and requires what the kernel does about it:
//!
//! * `ex1_sleep_in_hard_handler`: a key; DEBUG_ATOMIC_SLEEP's `BUG: sleeping
//!   function called from invalid context at kernel/locking/mutex.c`, in
//!   hard IRQ context, with the handler in the call trace, and lockdep's
//!   `BUG: Invalid wait context` for the same mutex (a sleeping lock, wait
//!   type 4, in hard IRQ context, 3); now and then also `might_sleep()`'s
//!   reports about the task the key interrupted (RCU's `Illegal context
//!   switch in RCU read-side critical section`, `do not call blocking ops
//!   when !TASK_RUNNING`), and no other;
//! * `ex2_unread_data_port`: six bytes of keys give one interrupt and no
//!   byte read (the edge-triggered line never rises again); the keys are
//!   lost: the correct C driver, loaded next, gets only the keys pressed
//!   after it, exactly;
//! * `ex3_claims_foreign_irqs`: interrupts injected with no byte waiting are
//!   all claimed (`handled`, a phantom byte each) and the kernel counts none
//!   as unhandled; the correct C driver, loaded next, counts each as
//!   `not_ours` and the kernel as unhandled;
//! * `ex4_lock_without_irqsave`: a key, then a read of the debugfs file whose
//!   reader takes the handler's spinlock with interrupts on; lockdep's
//!   `WARNING: inconsistent lock state`, `{IN-HARDIRQ-W} -> {HARDIRQ-ON-W}`;
//! * `ex5_thread_no_oneshot`: genirq refuses the request (`genirq: Threaded
//!   irq requested with handler=NULL and !ONESHOT for bug_thread_no_oneshot
//!   (irq 1)`), probe fails with -EINVAL, nothing is on IRQ 1;
//! * `ex6_free_before_free_irq`: rmmod; DEBUG_SHIRQ calls the shared handler
//!   once more inside free_irq(), after remove() freed its state: KASAN's
//!   `BUG: KASAN: slab-use-after-free in bug_free_irq`, the free done by
//!   `bug_free_remove`.
//!
//! Every other kernel report fails a test at once (vm-tests/src/console.rs).
//! The control, `correct_drivers_report_nothing`, does all those things
//! (keys, debugfs reads, injections, rmmod) to the correct drivers, C and
//! Rust, on one boot of the same kernel: no report at all. The Rust
//! compile-fail side of the exercises is `cargo xtask compile-fail`.
//!
//! Expected bytes come from the set-1 tables (`vm_tests::kbd`), counts from
//! what the test sent or injected. Every test has its own machine of the
//! debug kernel, restored from the snapshot the first one saved
//! ([`VmConfig::with_snapshot`]): one boot (15 s on TCG) instead of seven.

#[macro_use]
mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::*;
use regex::Regex;
use vm_tests::kbd::{self, Driver, Mode};
use vm_tests::{Machine, VmConfig};

/// The kernel with the checkers.
const DEBUG: &str = "debug";
/// The exercises' skeleton module, which the others depend on.
const SKELETON: &str = "/lib/modules/bug_kbd.ko";
/// How long a report may take to appear (the debug kernel on TCG is slow).
const REPORT_WAIT: Duration = Duration::from_secs(60);

/// A boot of the debug kernel with no driver loaded, restored from the
/// snapshot all the exercises share ([`VmConfig::with_snapshot`]).
fn debug_vm(test: &str) -> Result<VmConfig> {
    Ok(kernel_vm(DEBUG)?
        .with_append("lab.nomodule")
        .with_name(format!("debug-classic-{test}"))
        .with_snapshot())
}

/// Loads the skeleton and the exercise `module`, and waits for its probe
/// to have set up the device.
fn load(m: &mut Machine, module: &str) -> Result<()> {
    m.succeed(&format!(
        "insmod {SKELETON} && insmod /lib/modules/{module}.ko"
    ))
    .with_context(|| format!("loading {module}"))?;
    let line = format!("{module} {DEVICE}: set up: irq 1, data port 0x60, status port 0x64");
    m.wait_until_succeeds(&format!("dmesg | grep -qF '{line}'"), KEY_WAIT)
        .with_context(|| format!("{module} never set the device up"))?;
    Ok(())
}

/// The counters of an exercise, `/sys/kernel/debug/<module>/KBD0001:00/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BugCounters {
    irqs: u64,
    handled: u64,
    not_ours: u64,
    bytes: u64,
}

impl BugCounters {
    /// Reads them.
    fn read(m: &mut Machine, module: &str) -> Result<BugCounters> {
        let out = m.succeed(&format!(
            "cd /sys/kernel/debug/{module}/{DEVICE} && cat irqs handled not_ours bytes"
        ))?;
        let v: Vec<u64> = out
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("counters of {module}: {out:?}"))?;
        let [irqs, handled, not_ours, bytes] = v[..] else {
            anyhow::bail!("counters of {module}: {out:?}");
        };
        Ok(BugCounters {
            irqs,
            handled,
            not_ours,
            bytes,
        })
    }
}

/// The bytes an exercise logged (`<module> KBD0001:00: byte 1e`), in order.
fn logged_bytes(m: &mut Machine, module: &str) -> Result<Vec<u8>> {
    let log = m.kernel_log_lines_with(&format!("{DEVICE}: byte "))?;
    let re = Regex::new(&format!(
        r"{} {}: byte ([0-9a-f]{{2}})$",
        regex::escape(module),
        regex::escape(DEVICE)
    ))?;
    log.lines()
        .filter_map(|l| re.captures(l))
        .map(|c| Ok(u8::from_str_radix(&c[1], 16)?))
        .collect()
}

/// The bytes on the wire for `chords` (the set-1 tables).
fn wire(chords: &[&str]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for chord in chords {
        let keys = vm_tests::qmp::parse_chord(chord)?;
        for t in kbd::chord(&keys).with_context(|| format!("{chord} not in the tables"))? {
            bytes.extend(t.wire);
        }
    }
    Ok(bytes)
}

/// Presses `chords` and waits until the exercise `module` logged `before`
/// plus their bytes; returns all its logged bytes.
///
/// Each key goes down, and up, only once the bytes of the event before it
/// are logged: exercise 6 hands each byte from its handler to a work item
/// through one variable, so a byte that comes before the work ran replaces
/// the one before it. With QEMU's own pacing (`send-key`, 100 ms between
/// down and up) that lost the make code of a key once, with eight tests
/// at a time on 2 cores (2026-12-03).
fn press_and_log(m: &mut Machine, module: &str, chords: &[&str], before: usize) -> Result<Vec<u8>> {
    let want = wire(chords)?;
    let mut last = Vec::new();
    let mut expected = before;
    for chord in chords {
        let keys = vm_tests::qmp::parse_chord(chord)?;
        for (key, down) in kbd::chord_events(&keys) {
            let t =
                kbd::transition(key, down).with_context(|| format!("{key} not in the tables"))?;
            if down {
                m.key_down(key)?;
            } else {
                m.key_up(key)?;
            }
            expected += t.wire.len();
            let waited: Result<()> = m.wait_for(
                &format!("{expected} bytes logged by {module}"),
                KEY_WAIT,
                POLL,
                |m| {
                    last = logged_bytes(m, module)?;
                    Ok((last.len() >= expected).then_some(()))
                },
            );
            waited?;
        }
    }
    ensure!(
        last[before..] == want[..],
        "{module} logged {:02x?} for {chords:?}, the set-1 table says {want:02x?}",
        &last[before..]
    );
    Ok(last)
}

/// `/proc/irq/1/spurious`'s `unhandled`: the kernel's count of recent
/// interrupts no handler claimed (kernel/irq/spurious.c).
fn unhandled(m: &mut Machine) -> Result<u64> {
    let out = m.succeed("cat /proc/irq/1/spurious")?;
    let re = Regex::new(r"unhandled (\d+)")?;
    let c = re
        .captures(&out)
        .with_context(|| format!("/proc/irq/1/spurious: {out:?}"))?;
    Ok(c[1].parse()?)
}

/// Injects `n` interrupts on IRQ 1 (debugfs `trigger`), one at a time, each
/// awaited in /proc/interrupts before the next.
fn inject(m: &mut Machine, n: u64) -> Result<()> {
    for i in 1..=n {
        let before = irq1_count(m)?;
        m.succeed("echo trigger > /sys/kernel/debug/irq/irqs/1")
            .with_context(|| format!("injection {i}"))?;
        m.wait_for_interrupts(1, before + 1, KEY_WAIT)
            .with_context(|| format!("injection {i} never arrived"))?;
    }
    Ok(())
}

/// The header of an RCU-lockdep report (kernel/locking/lockdep.c,
/// `lockdep_rcu_suspicious()`).
const RCU_REPORT: &str = "WARNING: suspicious RCU usage";
/// The line of `__might_sleep()`'s own warning (kernel/sched/core.c): its
/// `WARN_ONCE` is the only one there.
const NOT_RUNNING_REPORT: &str = " at __might_sleep+";

/// What `might_sleep()` said, besides the report exercise 1 requires, about
/// the task the key interrupted (see [`interrupted_task_reports`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct InterruptedTask {
    /// RCU's check: the task was inside an RCU read-side critical section.
    in_rcu_reader: usize,
    /// The task was about to sleep (not `TASK_RUNNING`).
    not_running: usize,
}

/// Checks the reports of `might_sleep()` in the kernel `log` that depend on
/// the task the key interrupted and counts them. Exercise 1's hard handler
/// borrows that task (`current`) with its held locks and state, and the
/// mutex's `might_sleep()` checks them too:
///
/// * `rcu_sleep_check()` at the top of `__might_resched()`
///   (include/linux/rcupdate.h): `Illegal context switch in
///   RCU[-bh|-sched] read-side critical section`, the fourth line of an
///   RCU report, when the task was inside `rcu_read_lock()` (busybox's
///   `poll()` through `n_tty_poll()`);
/// * `__might_sleep()`'s `do not call blocking ops when !TASK_RUNNING`,
///   the line before its `WARNING: kernel/sched/core.c:N at
///   __might_sleep+`, when the task had set itself to sleep
///   (`poll_schedule_timeout()`).
///
/// Where the interrupt lands decides them, so each count may be 0; any
/// other RCU report, or that warning without its message, is an error.
fn interrupted_task_reports(log: &str) -> Result<InterruptedTask> {
    let rcu_sleep =
        Regex::new(r"Illegal context switch in RCU(-bh|-sched)? read-side critical section!")?;
    let lines: Vec<&str> = log.lines().collect();
    let mut seen = InterruptedTask::default();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(RCU_REPORT) {
            let detail = &lines[i + 1..(i + 4).min(lines.len())];
            ensure!(
                detail.iter().any(|l| rcu_sleep.is_match(l)),
                "an RCU report that is not might_sleep()'s check: {line:?} then {detail:?}"
            );
            seen.in_rcu_reader += 1;
        } else if line.contains("WARNING:") && line.contains(NOT_RUNNING_REPORT) {
            let before = &lines[i.saturating_sub(2)..i];
            ensure!(
                before
                    .iter()
                    .any(|l| l.contains("do not call blocking ops when !TASK_RUNNING")),
                "a warning of __might_sleep() without its !TASK_RUNNING message: {before:?} then {line:?}"
            );
            seen.not_running += 1;
        }
    }
    Ok(seen)
}

#[test]
fn interrupted_task_reports_accept_only_might_sleeps_checks() -> Result<()> {
    let rcu = |msg: &str| {
        format!(
            "[   16.20] =============================\n\
             [   16.20] {RCU_REPORT}\n\
             [   16.20] 7.2.0 Not tainted\n\
             [   16.20] -----------------------------\n\
             [   16.20] include/linux/rcupdate.h:378 {msg}!\n"
        )
    };
    let warning = |msg: &str| {
        format!(
            "[    8.80] ------------[ cut here ]------------\n\
             [    8.80] {msg}\n\
             [    8.80] WARNING: kernel/sched/core.c:9187 at __might_sleep+0xa2/0xf0, CPU#0: init/43\n"
        )
    };
    assert_eq!(
        interrupted_task_reports("[    1.0] nothing\n")?,
        InterruptedTask::default()
    );
    let in_reader = rcu("Illegal context switch in RCU read-side critical section");
    let sleeping = warning(
        "do not call blocking ops when !TASK_RUNNING; state=1 set at [<(____ptrval____)>] poll_schedule_timeout+0x2b/0x220",
    );
    assert_eq!(
        interrupted_task_reports(&format!("{in_reader}{sleeping}{in_reader}"))?,
        InterruptedTask {
            in_rcu_reader: 2,
            not_running: 1
        }
    );
    let other_rcu = rcu("suspicious rcu_dereference_check() usage");
    assert!(interrupted_task_reports(&format!("{in_reader}{other_rcu}")).is_err());
    assert!(interrupted_task_reports(&warning("something else")).is_err());
    Ok(())
}

#[test]
fn ex1_sleep_in_hard_handler() -> Result<()> {
    const MODULE: &str = "bug_sleep_in_hard_handler";
    const REPORT: &str =
        "BUG: sleeping function called from invalid context at kernel/locking/mutex.c";
    // lockdep's wait-type check reports the same mutex right after.
    const WAIT_REPORT: &str = "BUG: Invalid wait context";
    run(debug_vm("ex1")?, |m| {
        load(m, MODULE)?;
        m.expect_kernel_report(REPORT);
        m.expect_kernel_report(WAIT_REPORT);
        // Only sometimes, and checked below: see `interrupted_task_reports`.
        m.expect_kernel_report(RCU_REPORT);
        m.expect_kernel_report(NOT_RUNNING_REPORT);
        let bytes = press_and_log(m, MODULE, &["a"], 0)?;
        let report = m.wait_for_kernel_report(REPORT, REPORT_WAIT)?;
        eprintln!("report: {report}");
        // The rest of the report: hard IRQ context, and our handler.
        m.wait_for_console_text(r"in_atomic\(\): 1, irqs_disabled\(\): 1", REPORT_WAIT)?;
        m.wait_for_console_text(
            r"\sbug_sleep_irq\+0x[0-9a-f]+/0x[0-9a-f]+ \[bug_sleep_in_hard_handler\]",
            REPORT_WAIT,
        )
        .context("the report's call trace does not name the handler")?;
        // lockdep: a sleeping lock (wait type 4) taken in hard IRQ context (3).
        m.wait_for_kernel_report(WAIT_REPORT, REPORT_WAIT)?;
        m.wait_for_console_text(
            r"\(mutex_\)\{[^}]*\}-\{4:4\}, at: bug_sleep_irq\+",
            REPORT_WAIT,
        )
        .context("lockdep's report does not name the handler's mutex")?;
        let seen = interrupted_task_reports(&m.kernel_log()?)?;
        eprintln!("might_sleep() on the interrupted task: {seen:?}");
        // The key itself still went through.
        let c = BugCounters::read(m, MODULE)?;
        ensure!(
            c.handled == bytes.len() as u64 && c.bytes == bytes.len() as u64,
            "counters {c:?} after {} bytes",
            bytes.len()
        );
        Ok(())
    })
}

#[test]
fn ex2_unread_data_port() -> Result<()> {
    const MODULE: &str = "bug_unread_data_port";
    let keys = ["a", "s", "d"];
    run(debug_vm("ex2")?, |m| {
        load(m, MODULE)?;
        let before = irq1_count(m)?;
        let sent = wire(&keys)?;
        for k in keys {
            m.send_key(k)?;
        }
        m.wait_for_interrupts(1, before + 1, KEY_WAIT)?;
        // Time for the other bytes' interrupts, which must not come.
        std::thread::sleep(SETTLE * 4);
        let after = irq1_count(m)?;
        let c = BugCounters::read(m, MODULE)?;
        eprintln!(
            "{} bytes sent: IRQ 1 {before} -> {after}, counters {c:?}",
            sent.len()
        );
        ensure!(
            after == before + 1,
            "IRQ 1 went from {before} to {after} for {} bytes: expected exactly one interrupt, \
             the first byte's, and the line stuck after it",
            sent.len()
        );
        ensure!(
            c == BugCounters {
                irqs: 1,
                handled: 1,
                not_ours: 0,
                bytes: 0
            },
            "counters {c:?}: expected one handled interrupt and no byte read"
        );
        ensure!(logged_bytes(m, MODULE)?.is_empty(), "bytes logged");
        // More keys: still nothing.
        m.send_key("f")?;
        std::thread::sleep(SETTLE * 2);
        let later = irq1_count(m)?;
        ensure!(later == after, "IRQ 1 moved {after} -> {later} on a key");

        // The correct driver: its probe drains what waits (the stuck byte
        // and QEMU's queue), so the keys pressed above are lost for good;
        // keys pressed from now on arrive exactly.
        m.succeed(&format!("rmmod {MODULE}"))?;
        m.succeed(&format!("insmod {}", Driver::C.module_path()))?;
        check_probed(m, Driver::C)?;
        let s = Stream::start_for(m, Driver::C, true)?;
        s.press(m, &["k"])?;
        let events = driver_events(m)?;
        ensure!(
            events.len() == 2,
            "c_keyboard logged {events:?}: only k (pressed, released) may arrive, the keys \
             pressed while the line was stuck are lost"
        );
        Ok(())
    })
}

#[test]
fn ex3_claims_foreign_irqs() -> Result<()> {
    const MODULE: &str = "bug_claims_foreign_irqs";
    const INJECTIONS: u64 = 4;
    run(debug_vm("ex3")?, |m| {
        load(m, MODULE)?;
        let real = press_and_log(m, MODULE, &["a"], 0)?;
        let c0 = BugCounters::read(m, MODULE)?;
        let u0 = unhandled(m)?;
        inject(m, INJECTIONS)?;
        std::thread::sleep(SETTLE);
        let c1 = BugCounters::read(m, MODULE)?;
        let u1 = unhandled(m)?;
        let logged = logged_bytes(m, MODULE)?;
        eprintln!(
            "{INJECTIONS} injections: counters {c0:?} -> {c1:?}, unhandled {u0} -> {u1}, \
             bytes logged {logged:02x?}"
        );
        ensure!(
            c1.irqs - c0.irqs == INJECTIONS
                && c1.handled - c0.handled == INJECTIONS
                && c1.not_ours == 0
                && c1.bytes - c0.bytes == INJECTIONS,
            "counters {c0:?} -> {c1:?}: every injected interrupt must be claimed, with a byte"
        );
        ensure!(
            logged.len() == real.len() + INJECTIONS as usize,
            "{} phantom byte(s) logged for {INJECTIONS} injections: {logged:02x?}",
            logged.len() - real.len()
        );
        ensure!(
            u0 == 0 && u1 == 0,
            "/proc/irq/1/spurious unhandled {u0} -> {u1}: the kernel must never see an \
             unhandled interrupt while the handler claims them all"
        );

        // The correct driver on the same line: not ours, and the kernel
        // counts them as unhandled.
        m.succeed(&format!("rmmod {MODULE}"))?;
        m.succeed(&format!("insmod {}", Driver::C.module_path()))?;
        check_probed(m, Driver::C)?;
        let before = counters_and_mode_of(m, Driver::C)?.0;
        inject(m, INJECTIONS)?;
        std::thread::sleep(SETTLE);
        let after = counters_and_mode_of(m, Driver::C)?.0;
        let d = after.since(&before);
        let u2 = unhandled(m)?;
        ensure!(
            d.irqs == INJECTIONS && d.not_ours == INJECTIONS && d.handled == 0 && d.bytes == 0,
            "c_keyboard counters {before:?} -> {after:?} for {INJECTIONS} injections"
        );
        ensure!(
            u2 >= 1,
            "/proc/irq/1/spurious unhandled {u2} after {INJECTIONS} injections not claimed"
        );
        ensure!(
            driver_events(m)?.is_empty(),
            "c_keyboard logged events for injections"
        );
        Ok(())
    })
}

#[test]
fn ex4_lock_without_irqsave() -> Result<()> {
    const MODULE: &str = "bug_lock_without_irqsave";
    const REPORT: &str = "WARNING: inconsistent lock state";
    run(debug_vm("ex4")?, |m| {
        load(m, MODULE)?;
        // The handler takes the lock in hard IRQ context ...
        let bytes = press_and_log(m, MODULE, &["a"], 0)?;
        m.expect_kernel_report(REPORT);
        // ... and the reader in process context with interrupts on.
        let last = m.succeed(&format!("cat /sys/kernel/debug/{MODULE}/{DEVICE}/last"))?;
        let want = format!("{:02x}", bytes[bytes.len() - 1]);
        ensure!(last.trim() == want, "last holds {last:?}, expected {want}");
        let report = m.wait_for_kernel_report(REPORT, REPORT_WAIT)?;
        eprintln!("report: {report}");
        m.wait_for_console_text(
            r"inconsistent \{IN-HARDIRQ-W\} -> \{HARDIRQ-ON-W\} usage\.",
            REPORT_WAIT,
        )?;
        m.wait_for_console_text(r"\(&st->lock\).*, at: bug_lock_last_show\+", REPORT_WAIT)
            .context("the report does not name the reader's spin_lock()")?;
        Ok(())
    })
}

#[test]
fn ex5_thread_no_oneshot() -> Result<()> {
    const MODULE: &str = "bug_thread_no_oneshot";
    const REPORT: &str = "genirq: Threaded irq requested with handler=NULL and !ONESHOT for bug_thread_no_oneshot (irq 1)";
    run(debug_vm("ex5")?, |m| {
        m.expect_kernel_report(REPORT);
        // The module loads (the driver registers); its probe fails.
        m.succeed(&format!(
            "insmod {SKELETON} && insmod /lib/modules/{MODULE}.ko"
        ))?;
        let report = m.wait_for_kernel_report(REPORT, REPORT_WAIT)?;
        eprintln!("report: {report}");
        m.wait_for_console_text(
            &format!(
                "{MODULE} {}: error (-EINVAL|-22): cannot request irq 1",
                regex::escape(DEVICE)
            ),
            REPORT_WAIT,
        )?;
        m.fail(&format!(
            "test -e /sys/bus/platform/drivers/{MODULE}/{DEVICE}"
        ))
        .context("the device is bound although the request failed")?;
        let actions = irq1_actions(m)?;
        ensure!(
            actions.is_empty(),
            "IRQ 1 has actions {actions:?} after the refused request"
        );
        Ok(())
    })
}

#[test]
fn ex6_free_before_free_irq() -> Result<()> {
    const MODULE: &str = "bug_free_before_free_irq";
    const REPORT: &str = "BUG: KASAN: slab-use-after-free in bug_free_irq+";
    run(debug_vm("ex6")?, |m| {
        load(m, MODULE)?;
        press_and_log(m, MODULE, &["a"], 0)?;
        m.expect_kernel_report(REPORT);
        m.succeed(&format!("rmmod {MODULE}"))?;
        let report = m.wait_for_kernel_report(REPORT, REPORT_WAIT)?;
        eprintln!("report: {report}");
        let re = Regex::new(
            r"BUG: KASAN: slab-use-after-free in bug_free_irq\+0x[0-9a-f]+/0x[0-9a-f]+ \[bug_free_before_free_irq\]$",
        )?;
        ensure!(re.is_match(&report), "report line {report:?}");
        m.wait_for_console_text(
            r"\b(Read|Write) of size \d+ at addr [0-9a-f]+ by task rmmod/",
            REPORT_WAIT,
        )?;
        m.wait_for_console_text(r"\bFreed by task \d+", REPORT_WAIT)?;
        m.wait_for_console_text(r"bug_free_remove\+0x", REPORT_WAIT)
            .context("the free in the report is not remove()'s")?;
        Ok(())
    })
}

#[test]
fn correct_drivers_report_nothing() -> Result<()> {
    run(debug_vm("control")?, |m| {
        for driver in [Driver::C, Driver::Rust(Mode::Hard)] {
            m.succeed(&format!(
                "insmod {} {}",
                driver.module_path(),
                driver.insmod_args()
            ))?;
            check_probed(m, driver)?;
            let s = Stream::start_for(m, driver, true)?;
            // Keys (ex1, ex2, ex4's handler side) ...
            s.press(m, &["a", "up", "shift-b"])?;
            // ... counters read in process context (ex4's reader side) ...
            let before = counters_and_mode_of(m, driver)?.0;
            // ... injected interrupts (ex3) ...
            inject(m, 3)?;
            std::thread::sleep(SETTLE);
            let d = counters_and_mode_of(m, driver)?.0.since(&before);
            ensure!(
                d.not_ours == 3 && d.handled == 0,
                "{driver}: 3 injections gave {d:?}"
            );
            // ... and rmmod, where DEBUG_SHIRQ calls the handler once more (ex6).
            m.succeed(&format!("rmmod {}", driver.name()))?;
            // DEBUG_KOBJECT_RELEASE delays the driver directory's removal.
            m.wait_until_fails(&format!("test -e {}", driver.driver_dir()), KEY_WAIT)?;
        }
        // Give a late report time to show: any fails the test.
        std::thread::sleep(SETTLE * 2);
        m.succeed("true")?;
        ensure!(
            m.kernel_reports().is_empty(),
            "reports: {:?}",
            m.kernel_reports()
        );
        Ok(())
    })
}
