//! The debugging tools on a live driver:
//!
//! * `trace_one_handler_call_per_scancode_byte` (lab kernel, default mode):
//!   with the irq tracepoints on for IRQ 1 ([`vm_tests::trace`]), keys
//!   through QMP give exactly one `irq_handler_entry` of `rust_keyboard_irq`
//!   per byte on the wire (the bytes from the set-1 table of
//!   [`vm_tests::scancodes`]), each followed by its `irq_handler_exit` with
//!   `ret=handled`; an interrupt injected with no byte waiting (debugfs
//!   `trigger`, as in irq_lines.rs) gives one call with `ret=unhandled`.
//! * `gdb_breaks_in_the_rust_handler_on_a_key` (debug kernel, hard mode):
//!   QEMU's gdb stub, gdb in batch mode through the lab's one gdb command
//!   line ([`vm_tests::gdb::GdbCommand`], the one of `cargo xtask gdb`):
//!   vmlinux, the kernel's gdb scripts, `lx-symbols`; a breakpoint on the
//!   driver's hard handler; a key pressed through QMP stops the VM there,
//!   and gdb shows the key's make code, the byte the handler is about to
//!   decode; gdb detaches, the guest runs on, the key arrives whole and the
//!   kernel reports nothing.
//!
//! Expected bytes come from the scan-code tables, never from the driver.

#[macro_use]
mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use vm_tests::Machine;
use vm_tests::kbd;
use vm_tests::trace::{self, IrqTrace, Ret};

/// Keys of the trace test: a letter, an extended key, a chord, keypad enter.
const TRACE_KEYS: [&str; 4] = ["a", "up", "shift-b", "kp_enter"];

/// The bytes on the wire for `chords`, from the set-1 tables.
fn wire_bytes(chords: &[&str]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for chord in chords {
        let keys = vm_tests::qmp::parse_chord(chord)?;
        for t in kbd::chord(&keys).with_context(|| format!("{chord} not in the tables"))? {
            bytes.extend(t.wire);
        }
    }
    Ok(bytes)
}

/// Injects one interrupt on IRQ 1 and waits until `/proc/interrupts`
/// counted it.
fn inject_one(m: &mut Machine) -> Result<()> {
    let before = irq1_count(m)?;
    m.succeed("echo trigger > /sys/kernel/debug/irq/irqs/1")?;
    m.wait_for_interrupts(1, before + 1, KEY_WAIT)?;
    Ok(())
}

#[test]
fn trace_one_handler_call_per_scancode_byte() -> Result<()> {
    run(lab()?, |m| {
        let t = IrqTrace::start(m, 1)?;
        let s = Stream::start(m, true)?;
        // Exactly one interrupt per byte and the exact events (Stream).
        s.press(m, &TRACE_KEYS)?;
        let bytes = wire_bytes(&TRACE_KEYS)?;
        let lines = t.read(m)?;
        let calls = trace::handler_calls(&lines, 1, IRQ_NAME)?;
        ensure!(
            calls.len() == bytes.len(),
            "{} calls of {IRQ_NAME} traced for {} bytes on the wire ({})\ntrace:\n{lines:#?}",
            calls.len(),
            bytes.len(),
            vm_tests::scancodes::format_bytes(&bytes)
        );
        let unhandled: Vec<_> = calls.iter().filter(|c| c.ret != Ret::Handled).collect();
        ensure!(
            unhandled.is_empty(),
            "calls for key bytes that did not return handled: {unhandled:?}"
        );
        let entries = lines
            .iter()
            .filter(|l| matches!(&l.event, trace::IrqEvent::Entry { .. }))
            .count();
        ensure!(
            entries == bytes.len(),
            "{entries} handler entries on IRQ 1 (any handler) for {} bytes",
            bytes.len()
        );
        let longest = calls.iter().map(|c| c.duration).fold(0.0, f64::max);
        eprintln!(
            "trace: {} calls of {IRQ_NAME}, all ret=handled, the longest {:.1} us",
            calls.len(),
            longest * 1e6
        );

        inject_one(m)?;
        let lines = t.read(m)?;
        let calls = trace::handler_calls(&lines, 1, IRQ_NAME)?;
        ensure!(
            calls.len() == bytes.len() + 1,
            "{} calls after the injection, expected {}",
            calls.len(),
            bytes.len() + 1
        );
        let last = calls.last().context("no call")?;
        ensure!(
            last.ret == Ret::Unhandled,
            "the injected interrupt (no byte waiting) returned {}, expected unhandled",
            last.ret
        );
        // The whole trace, for the record (and the parser's test data).
        eprintln!(
            "trace of the test:\n{}",
            m.succeed(&format!("cat {}/trace", trace::TRACEFS))?
        );
        t.stop(m)?;
        // Tracing off, the keyboard still works exactly.
        s.press(m, &["z"])?;
        ensure_no_warnings(m, None)
    })
}
