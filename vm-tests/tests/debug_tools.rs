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

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::*;
use regex::Regex;
use vm_tests::artifacts::MODULE_FILE;
use vm_tests::gdb::{self, BatchGdb, DEBUG_KERNEL, DebugKernel, GdbCommand};
use vm_tests::kbd::{self, Mode};
use vm_tests::scancodes;
use vm_tests::trace::{self, IrqTrace, Ret};
use vm_tests::{GdbStub, Machine, VmConfig};

/// The driver's hard handler of hard mode, as Rust (and nm) name it:
/// `impl irq::Handler for HardHandler` in module/rust_keyboard.rs.
const HARD_HANDLER: &str = "<rust_keyboard::HardHandler as kernel::irq::request::Handler>::handle";
/// What the hard handler hands each byte to: `Shared::decode(&self, byte)`.
const DECODE: &str = "<rust_keyboard::Shared>::decode";
/// How long the debug kernel (KASAN, lockdep, ... under TCG) may take to boot.
const DEBUG_BOOT: Duration = Duration::from_secs(240);
/// How long gdb may take to read vmlinux, attach and load the module's
/// symbols (2.4 s when measured).
const ATTACH: Duration = Duration::from_secs(120);
/// How long gdb may take for a step once the VM is in its hands.
const GDB_STEP: Duration = Duration::from_secs(30);

/// Waits until QEMU's run state is `state` (QMP `query-status`).
fn wait_for_run_state(m: &mut Machine, state: &str, timeout: Duration) -> Result<()> {
    m.wait_for(
        &format!("the VM's run state {state:?}"),
        timeout,
        POLL,
        |m| Ok::<_, anyhow::Error>((m.qmp()?.status()? == state).then_some(())),
    )
}

#[test]
fn gdb_breaks_in_the_rust_handler_on_a_key() -> Result<()> {
    let artifacts = artifacts()?;
    let kernel = DebugKernel::of_artifacts(&artifacts, DEBUG_KERNEL)?;
    let gdb_program = gdb::find_gdb()?;
    let ko = artifacts.layout().module(DEBUG_KERNEL, MODULE_FILE);
    let handler = gdb::function_symbol(&ko, HARD_HANDLER)?;
    let decode = gdb::function_symbol(&ko, DECODE)?;
    let key = "a";
    let make = scancodes::make_code(key).context("a not in the table")?;
    let config = VmConfig::from_artifacts_of(&artifacts, DEBUG_KERNEL)?
        .with_gdb_stub(GdbStub::Running)
        .with_append(&Mode::Hard.cmdline())
        .with_boot_timeout(DEBUG_BOOT);
    run(config, |m| {
        check_probed_in_mode(m, Mode::Hard)?;
        let irq0 = irq1_count(m)?;
        let logged0 = driver_events(m)?.len();
        let command = GdbCommand::new(&kernel, &VmConfig::gdb_socket(m.runtime_dir()))
            .with_gdb(&gdb_program)
            .without_init_files();
        let started = Instant::now();
        let mut g = BatchGdb::spawn(
            &command,
            &[
                &format!("break *{handler}"),
                "continue",
                "info symbol $pc",
                "bt 2",
                &format!("tbreak {decode}"),
                "continue",
                "info args",
                "print/x byte",
                "delete",
                "detach",
            ],
        )?;
        g.wait_for_line(r"^loading @0x[0-9a-f]+: .*/rust_keyboard\.ko$", ATTACH)?;
        g.wait_for_line(
            r"^Breakpoint 1 at 0x[0-9a-f]+: file .*rust_keyboard\.rs",
            ATTACH,
        )?;
        // gdb holds the VM from the attach to its `continue`, which inserts
        // the breakpoint first.
        wait_for_run_state(m, "running", ATTACH)?;
        let attached = started.elapsed();
        m.send_key(key)?;
        let hit = g.wait_for_line(r"^Breakpoint 1, ", GDB_STEP)?;
        ensure!(
            hit.contains("::handle (") && hit.contains("rust_keyboard.rs:"),
            "gdb stopped elsewhere: {hit}"
        );
        // The stop is at the handler's own first instruction: the ELF symbol
        // of the pc is the handler's, at offset 0 (hashes of the crates
        // aside).
        let symbol = g.wait_for_line(r" in section \.text", GDB_STEP)?;
        let unhashed = Regex::new(r"\[[0-9a-f]{16}\]")?.replace_all(&symbol, "");
        ensure!(
            unhashed.starts_with(&format!("{HARD_HANDLER} in section .text of ")),
            "the pc is not at the start of {HARD_HANDLER}: {symbol}"
        );
        let frames = [
            g.wait_for_line(r"^#0 ", GDB_STEP)?,
            g.wait_for_line(r"^#1 ", GDB_STEP)?,
        ];
        ensure!(
            frames[1].contains("handle_irq_event"),
            "the handler was not called by the IRQ core: {frames:?}"
        );
        // Same interrupt, one call further: the byte the handler read.
        let decoding = g.wait_for_line(r"^Temporary breakpoint 2, ", GDB_STEP)?;
        let arg = g.wait_for_line(r"^byte = ", GDB_STEP)?;
        let hex = g.wait_for_line(r"^\$1 = 0x", GDB_STEP)?;
        let shown = u8::from_str_radix(hex.trim_start_matches("$1 = 0x"), 16)
            .with_context(|| format!("gdb printed {hex:?}"))?;
        ensure!(
            shown == make[0] && arg == format!("byte = {}", make[0]),
            "gdb shows the byte {hex} ({arg}), the make code of {key} is {}",
            scancodes::format_bytes(&make)
        );
        ensure!(
            decoding.contains(&format!("byte={}", make[0])),
            "{decoding}"
        );
        let (status, output) = g.wait_exit(GDB_STEP)?;
        ensure!(
            status.success() && output.contains("detached"),
            "gdb ended with {status}:\n{output}"
        );
        eprintln!(
            "gdb attached and running after {:.1} s, then printed:\n{output}",
            attached.as_secs_f64()
        );
        // Detached, the guest runs on: the key arrived whole.
        wait_for_run_state(m, "running", GDB_STEP)?;
        let bytes = wire_bytes(&[key])?;
        m.wait_for_interrupts(1, irq0 + bytes.len() as u64, KEY_WAIT)?;
        std::thread::sleep(SETTLE);
        ensure!(
            irq1_count(m)? == irq0 + bytes.len() as u64,
            "IRQ 1 count {irq0} -> {}, expected +{}",
            irq1_count(m)?,
            bytes.len()
        );
        let events = driver_events(m)?;
        let want = scancodes::chord_events(&[key]).context("a not in the table")?;
        ensure!(
            events[logged0..] == want[..],
            "events after the breakpoint: {:?}, expected {want:?}",
            &events[logged0..]
        );
        ensure_no_warnings(m, None)
    })
}

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
