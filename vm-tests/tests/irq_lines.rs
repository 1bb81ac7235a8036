//! Interrupts that are not the keyboard's, per interrupt mode (`mode_hard::`,
//! `mode_threaded::`, `mode_workqueue::`, each on its own VM booted with
//! `rust_keyboard.mode=N`):
//!
//! * `irq_spurious_injections_are_not_ours`: IRQ 1 injected with no byte
//!   waiting (`echo trigger > /sys/kernel/debug/irq/irqs/1`:
//!   kernel/irq/debugfs.c calls `irq_inject_interrupt()`, which for the
//!   IO-APIC's edge line retriggers the vector, so the flow handler and every
//!   action run as for a real edge) must count as `not_ours` once per
//!   injection, nothing else; the kernel's own accounting,
//!   `/proc/irq/1/spurious`, must count each as unhandled; no key event may
//!   appear on `/dev/kbd0001` nor in the kernel log.
//! * `irq_shared_line_runs_both_handlers`: the test-only C module
//!   `lab_irq_sharer` (vm-tests/guest-modules) is refused without
//!   IRQF_SHARED (the kernel's `genirq: Flags mismatch irq 1. ...`,
//!   kernel/irq/manage.c) and accepted with it; then both handlers run on
//!   every interrupt (its `calls` rises by one per interrupt), the driver's
//!   keys and counters stay exact, and `/proc/interrupts` lists both names
//!   on IRQ 1.
//!
//! Expected counts come from what the test sent or injected, never from the
//! driver.

#[macro_use]
mod common;

use anyhow::{Context, Result, bail, ensure};
use common::*;
use regex::Regex;
use vm_tests::Machine;
use vm_tests::kbd::Mode;

per_mode_tests!(
    irq_spurious_injections_are_not_ours,
    irq_shared_line_runs_both_handlers,
);

/// Interrupts injected by the spurious test.
const INJECTIONS: u64 = 8;
/// The kernel's window for consecutive unhandled interrupts
/// (kernel/irq/spurious.c, `note_interrupt`: `irqs_unhandled` restarts at 1
/// when the previous unhandled one is more than HZ/10 old).
const UNHANDLED_WINDOW_MS: u32 = 100;

/// `/proc/irq/1/spurious` (kernel/irq/proc.c, `irq_spurious_proc_show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spurious {
    count: u32,
    unhandled: u32,
    last_unhandled_ms: u32,
}

impl Spurious {
    /// Parses the file's three lines joined by spaces:
    /// `count N unhandled N last_unhandled N ms`.
    fn parse(text: &str) -> Result<Spurious> {
        let w: Vec<&str> = text.split_whitespace().collect();
        match w.as_slice() {
            ["count", c, "unhandled", u, "last_unhandled", l, "ms"] => Ok(Spurious {
                count: c.parse()?,
                unhandled: u.parse()?,
                last_unhandled_ms: l.parse()?,
            }),
            _ => bail!("unexpected /proc/irq/1/spurious: {text:?}"),
        }
    }

    /// The `unhandled` the kernel must show after one more unhandled
    /// interrupt at `next.last_unhandled_ms`.
    fn after_one_unhandled(&self, next: &Spurious) -> u32 {
        let gap = next.last_unhandled_ms.wrapping_sub(self.last_unhandled_ms);
        if self.unhandled == 0 || gap > UNHANDLED_WINDOW_MS {
            1
        } else {
            self.unhandled + 1
        }
    }
}

/// Injects `n` interrupts on IRQ 1, one at a time (each awaited in
/// `/proc/interrupts` before the next), and returns `/proc/irq/1/spurious`
/// before and after each with the IRQ 1 count.
fn inject(m: &mut Machine, n: u64) -> Result<Vec<(u64, Spurious)>> {
    let script = format!(
        r#"
count() {{
    set -- $(grep '^ *1:' /proc/interrupts); shift; s=0
    for f; do case $f in *[!0-9]*) break ;; esac; s=$((s + f)); done
    echo $s
}}
spur() {{ tr '\n' ' ' < /proc/irq/1/spurious; }}
echo "$(count) $(spur)"
i=1
while [ $i -le {n} ]; do
    b=$(count)
    echo trigger > /sys/kernel/debug/irq/irqs/1 || {{ echo "injection $i: write failed"; exit 1; }}
    j=0
    while [ "$(count)" = "$b" ]; do
        j=$((j + 1))
        [ $j -le 200 ] || {{ echo "injection $i: the IRQ 1 count stayed $b"; exit 1; }}
        usleep 10000
    done
    echo "$(count) $(spur)"
    i=$((i + 1))
done
"#
    );
    let out = m.succeed(&script).context("injecting IRQ 1")?;
    out.lines()
        .map(|l| {
            let (count, rest) = l.split_once(' ').context("line")?;
            Ok((count.parse()?, Spurious::parse(rest)?))
        })
        .collect()
}

/// Checks the kernel's accounting of `steps` (from [`inject`]): one
/// interrupt per injection, each counted as unhandled.
fn check_unhandled(steps: &[(u64, Spurious)]) -> Result<()> {
    let mut resets = 0;
    for (i, pair) in steps.windows(2).enumerate() {
        let ((c0, s0), (c1, s1)) = (pair[0], pair[1]);
        ensure!(
            c1 == c0 + 1,
            "injection {}: IRQ 1 count {c0} -> {c1}, expected one interrupt",
            i + 1
        );
        let want = s0.after_one_unhandled(&s1);
        if want == 1 && s0.unhandled != 0 {
            resets += 1;
        }
        ensure!(
            s1.unhandled == want,
            "injection {}: /proc/irq/1/spurious unhandled {} -> {} (last_unhandled {} -> {} ms), \
             expected {want}: the kernel did not see it as unhandled\nall: {steps:?}",
            i + 1,
            s0.unhandled,
            s1.unhandled,
            s0.last_unhandled_ms,
            s1.last_unhandled_ms
        );
    }
    let (first, last) = (steps[0].1, steps[steps.len() - 1].1);
    if resets == 0 {
        let n = (steps.len() - 1) as u32;
        ensure!(
            last.unhandled == first.unhandled + n,
            "unhandled {} -> {}, expected +{n}",
            first.unhandled,
            last.unhandled
        );
    } else {
        eprintln!(
            "spurious: the kernel restarted its unhandled count {resets} time(s) (injections more \
             than {UNHANDLED_WINDOW_MS} ms apart); each injection was still counted"
        );
    }
    Ok(())
}

fn irq_spurious_injections_are_not_ours(mode: Mode) -> Result<()> {
    run(lab_in_mode(mode, "spurious")?, |m| {
        check_probed_in_mode(m, mode)?;
        let s = Stream::start(m, true)?;
        let start = s.press(m, &["a", "up", "shift-b"])?;

        let steps = inject(m, INJECTIONS)?;
        std::thread::sleep(SETTLE);
        let after = irq1_count(m)?;
        ensure!(
            after == start.irq1 + INJECTIONS,
            "IRQ 1 count {} -> {after} for {INJECTIONS} injections",
            start.irq1
        );
        check_unhandled(&steps)?;
        let c = counters(m)?;
        let d = c.since(&start.counters);
        ensure!(
            c.monotonic_since(&start.counters)
                && d.irqs == INJECTIONS
                && d.not_ours == INJECTIONS
                && d.handled == 0
                && d.bytes == 0
                && d.events == 0
                && c.bytes_dropped == 0
                && c.events_dropped == 0,
            "counters after {INJECTIONS} injections with no byte waiting: before {:?}, after {c:?}",
            start.counters
        );
        let lines = s.reader()?.complete_lines(m)?;
        ensure!(
            lines.len() == start.lines,
            "{} line(s) on /dev/kbd0001 after injections: {:?}",
            lines.len() - start.lines,
            &lines[start.lines..]
        );
        let logged = driver_events(m)?;
        ensure!(
            logged.len() == start.logged,
            "scancode lines in the kernel log after injections: {}",
            show(&logged[start.logged..])
        );
        // The keyboard still works, exactly.
        s.press(m, &["k", "ctrl_r"])?;
        ensure_no_warnings(m, None)
    })
}

fn irq_shared_line_runs_both_handlers(mode: Mode) -> Result<()> {
    run(lab_in_mode(mode, "shared")?, |m| {
        check_probed_in_mode(m, mode)?;
        m.succeed(&format!("test -f {SHARER}")).with_context(|| {
            format!(
                "{SHARER} is not in the initramfs: the lab's module step must build \
                 vm-tests/guest-modules"
            )
        })?;
        let s = Stream::start(m, true)?;
        s.press(m, &["a"])?;

        // Without IRQF_SHARED the kernel refuses the line the driver holds,
        // with a genirq: report (a kernel problem this test expects).
        m.expect_kernel_report("genirq: Flags mismatch irq 1.");
        m.fail(&format!("insmod {SHARER} shared=0"))
            .context("insmod of the sharer without IRQF_SHARED succeeded")?;
        m.wait_for_kernel_report("genirq: Flags mismatch irq 1.", KEY_WAIT)?;
        let log = m.kernel_log_lines_with("genirq: Flags mismatch irq 1.")?;
        let re = Regex::new(
            r"genirq: Flags mismatch irq 1\. ([0-9a-f]{8}) \(lab_irq_sharer\) vs\. ([0-9a-f]{8}) \(rust_keyboard_irq\)",
        )?;
        let caps = re
            .captures(&log)
            .with_context(|| format!("no genirq flags mismatch message in:\n{log}"))?;
        let (new, old) = (
            u32::from_str_radix(&caps[1], 16)?,
            u32::from_str_radix(&caps[2], 16)?,
        );
        // IRQF_SHARED, include/linux/interrupt.h.
        const IRQF_SHARED: u32 = 0x80;
        ensure!(
            new & IRQF_SHARED == 0 && old & IRQF_SHARED != 0,
            "flags in the mismatch message: new {new:08x}, old {old:08x}"
        );
        m.fail("test -e /sys/module/lab_irq_sharer")
            .context("the sharer is loaded")?;
        ensure!(
            irq1_actions(m)? == [IRQ_NAME],
            "IRQ 1 actions after the refused request: {:?}",
            irq1_actions(m)?
        );

        // With IRQF_SHARED both handlers are on the line.
        m.succeed(&format!("insmod {SHARER}"))?;
        ensure!(
            irq1_actions(m)? == [IRQ_NAME, SHARER_NAME],
            "IRQ 1 actions with the sharer: {:?}",
            irq1_actions(m)?
        );
        let calls0 = sharer_calls(m)?;
        ensure!(
            calls0 == 0,
            "the sharer counted {calls0} calls before any interrupt"
        );
        let irq0 = irq1_count(m)?;
        s.press(m, &["q", "up", "shift-w", "print", "kp_enter"])
            .context("keys with the sharer on the line")?;
        let irq1 = irq1_count(m)?;
        let calls1 = sharer_calls(m)?;
        ensure!(
            calls1 - calls0 == irq1 - irq0,
            "the sharer was called {} times for {} interrupts",
            calls1 - calls0,
            irq1 - irq0
        );
        // Spurious interrupts reach both; neither claims them.
        let start = s.mark(m)?;
        let steps = inject(m, 3)?;
        check_unhandled(&steps)?;
        let c = counters(m)?.since(&start.counters);
        let calls2 = sharer_calls(m)?;
        ensure!(
            c.not_ours == 3 && c.handled == 0 && calls2 - calls1 == 3,
            "3 injections: not_ours +{}, handled +{}, sharer calls +{}",
            c.not_ours,
            c.handled,
            calls2 - calls1
        );

        // Unloaded, the line is the driver's alone again and keys still work.
        m.succeed("rmmod lab_irq_sharer")?;
        ensure!(
            irq1_actions(m)? == [IRQ_NAME],
            "IRQ 1 actions after rmmod of the sharer: {:?}",
            irq1_actions(m)?
        );
        s.press(m, &["z"])?;
        let allowed = Regex::new(r"Flags mismatch irq 1|lab_irq_sharer: cannot request irq 1")?;
        ensure_no_warnings(m, Some(&allowed))
    })
}

/// The sharer's `calls` parameter.
fn sharer_calls(m: &mut Machine) -> Result<u64> {
    let out = m.succeed("cat /sys/module/lab_irq_sharer/parameters/calls")?;
    out.trim()
        .parse()
        .with_context(|| format!("calls holds {out:?}"))
}

#[test]
fn spurious_accounting_rule() {
    let s = |unhandled, last_unhandled_ms| Spurious {
        count: 0,
        unhandled,
        last_unhandled_ms,
    };
    assert_eq!(s(0, 0).after_one_unhandled(&s(1, 5000)), 1);
    assert_eq!(s(3, 5000).after_one_unhandled(&s(4, 5040)), 4);
    assert_eq!(s(3, 5000).after_one_unhandled(&s(1, 5100)), 4);
    assert_eq!(s(3, 5000).after_one_unhandled(&s(1, 5104)), 1);
    // jiffies_to_msecs() wraps at 2^32.
    assert_eq!(s(2, u32::MAX - 3).after_one_unhandled(&s(3, 8)), 3);
    assert_eq!(
        Spurious::parse("count 12 unhandled 3 last_unhandled 4294 ms ").unwrap(),
        s2(12, 3, 4294)
    );
    assert!(Spurious::parse("count 1").is_err());

    fn s2(count: u32, unhandled: u32, last_unhandled_ms: u32) -> Spurious {
        Spurious {
            count,
            unhandled,
            last_unhandled_ms,
        }
    }
}
