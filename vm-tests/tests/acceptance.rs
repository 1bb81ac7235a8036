//! Acceptance suite of the lab: one test (or a few) per course exercise, each
//! on a fresh VM booted from `$LAB_ARTIFACTS` (built by `cargo xtask build`).
//! Without `LAB_ARTIFACTS` every test fails and says so; none is skipped.
//!
//! Expected values never come from the code under test: scan codes come from
//! the set-1 table in [`vm_tests::scancodes`], key names from the table of
//! [`vm_tests::kbd`] (written from the kernel's input-event-codes.h), ACPI
//! table headers from the compiled `.aml` files, device resources from
//! `acpi/ssdt.asl`, byte and event counts from what the test sent.
//!
//! Every test runs through [`vm_tests::run_test`], which ends with
//! [`Machine::shutdown`]: a kernel panic, oops, `BUG:` or `WARNING:` seen on
//! the console at any time fails the test. With `LAB_INTERACTIVE=1` a failing
//! test opens the interactive mode on its VM (see [`vm_tests::interact`]).
//!
//! The suite is a matrix: every test runs on both kernels (`lab::`, and
//! `debug::` with lockdep, KASAN, DEBUG_ATOMIC_SLEEP, DEBUG_SHIRQ and the
//! other checkers of kernel/debug.config, where any report fails the test)
//! and against both drivers: the Rust driver (`rust_hard::`,
//! `rust_threaded::`, `rust_workqueue::`, one per interrupt mode, for the
//! key tests; `rust::` in its default mode for the others) and its C twin
//! (`c_twin::`, c-driver/c_keyboard.c). The macros of `common` generate the
//! tests from one function each; the driver is a parameter. Every key check
//! (`common::Stream`) proves, from a mark: one IRQ 1 per byte on the wire,
//! exactly the oracle's events in the kernel log, debugfs counters that rose
//! by exactly the bytes and events sent, and for the Rust driver exactly
//! the oracle's `/dev/kbd0001` lines with `seq` +1 each (the C twin has no
//! device node).
//!
//! | exercise | tests (each under `lab::` and `debug::`) |
//! |---|---|
//! | 2 ACPI tables at boot | `ex2_*` |
//! | 3 ACPI device, _STA, resources | `{rust,c_twin}::ex3_*` |
//! | 4 platform driver probe | `{rust,c_twin}::ex4_*` |
//! | 5 interrupt handler on IRQ 1 | `{rust,c_twin}::ex5_*` |
//! | 6 scan codes | `{rust_*,c_twin}::ex6_*` |
//! | firmware variants (no SSDT, _STA absent, no IRQ) | `{rust,c_twin}::firmware_*` |
//! | unload/reload, burst, q35 | `{rust_*,c_twin}::robust_*`, `::q35_*` |

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::*;
use vm_tests::acpi::TableHeader;
use vm_tests::kbd::{self, Transition};
use vm_tests::scancodes;
use vm_tests::{Interrupts, Machine, MachineType, run_test};

matrix_tests!(
    subject: [
        ex6_keys_give_exact_codes_lines_and_counters,
        ex6_typed_text_and_held_keys,
        robust_burst_of_200_keys_loses_nothing,
        robust_unload_reload_cycles_while_keys_arrive,
        q35_driver_probes_and_keys_arrive,
    ],
    driver: [
        ex3_acpi_device_has_sta_15_and_the_ssdt_resources,
        ex4_driver_probes_and_binds_kbd0001,
        ex5_proc_interrupts_lists_the_handler_on_irq1_io_apic_edge,
        firmware_without_ssdt_module_loads_and_nothing_probes,
        firmware_sta_not_present_means_no_probe,
        firmware_without_irq_fails_probe_cleanly_and_unloads,
    ],
    kernel: [ex2_boot_log_lists_acpi_tables_with_our_ssdt],
);

// ---------------------------------------------------------------------------
// Exercise 2: the kernel reports the ACPI tables, our SSDT among them.
// ---------------------------------------------------------------------------

fn ex2_boot_log_lists_acpi_tables_with_our_ssdt(kernel: &str) -> Result<()> {
    let ssdt = TableHeader::read_aml(&artifacts()?.ssdt()?)?;
    // The contract of the lab; the rest of the header comes from the file.
    ensure!(
        ssdt.signature == "SSDT" && ssdt.oem_id == "TEST" && ssdt.table_id == "VIRTACPI",
        "acpi/ssdt.aml header is {ssdt:?}, expected SSDT TEST VIRTACPI"
    );
    let vm = kernel_vm(kernel)?
        .with_name(format!("{kernel}-acpi-tables"))
        .with_snapshot();
    run_test(vm, |m| {
        let tables = boot_tables(m)?;
        let signatures: Vec<&str> = tables.iter().map(|t| t.signature.as_str()).collect();
        for sig in ["FACP", "DSDT", "APIC"] {
            ensure!(
                signatures.contains(&sig),
                "{sig} missing from the boot log's ACPI tables {signatures:?}"
            );
        }
        let ours: Vec<&TableHeader> = tables
            .iter()
            .filter(|t| t.oem_id == "TEST" && t.table_id == "VIRTACPI")
            .collect();
        ensure!(
            ours.len() == 1,
            "expected one TEST/VIRTACPI table in the boot log, found {ours:?} among {tables:?}"
        );
        ensure!(
            *ours[0] == ssdt,
            "the kernel reports {:?}\nbut acpi/ssdt.aml has {ssdt:?}",
            ours[0]
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Exercise 3: the ACPI device, its _STA and its resources.
// ---------------------------------------------------------------------------

/// Booted without the module: the ACPI device and its platform device exist
/// on their own, with the SSDT's ports; loading the driver then takes the
/// SSDT's IRQ.
fn ex3_acpi_device_has_sta_15_and_the_ssdt_resources(s: Subject) -> Result<()> {
    let asl = asl_resources("ssdt.asl")?;
    let irq_name = s.driver.irq_name();
    let vm = s.vm("acpi-device")?.with_append("lab.nomodule");
    run_test(vm.with_snapshot(), |m| {
        m.succeed(&format!("test -d {ACPI_DEV}"))?;
        let hid = m.succeed(&format!("cat {ACPI_DEV}/hid"))?;
        ensure!(hid.trim() == "KBD0001", "hid is {hid:?}");
        let path = m.succeed(&format!("cat {ACPI_DEV}/path"))?;
        ensure!(path.trim() == r"\_SB_.KBD_", "ACPI path is {path:?}");
        let status = m.succeed(&format!("cat {ACPI_DEV}/status"))?;
        ensure!(
            status.trim() == "15",
            "_STA gives {status:?}, expected 15 (present, enabled, shown, functioning)"
        );
        // The platform device created for it, not bound to any driver yet.
        let node = m.succeed(&format!("basename $(readlink -f {ACPI_DEV}/physical_node)"))?;
        ensure!(node.trim() == DEVICE, "physical node {node:?}");
        m.succeed(&format!("test -e {PLATFORM_DEV}"))?;
        m.fail(&format!("test -e {ACPI_DEV}/physical_node/driver"))
            .context("the device has a driver although the module is not loaded")?;

        // Linux 7.2 has no `resources` file for ACPI or platform devices: the
        // platform device's I/O resources show in /proc/ioports, owned by it.
        let ports = ioports(m)?;
        for range in &asl.io {
            let (start, end) = (*range.start(), *range.end());
            ensure!(
                ports.holds(DEVICE, start, end),
                "/proc/ioports has no {start:04x}-{end:04x} owned by {DEVICE} (SSDT _CRS): \
                 {:x?}",
                ports.regions
            );
        }
        let owned = ports.owned_by(DEVICE).count();
        ensure!(
            owned == asl.io.len(),
            "{DEVICE} owns {owned} I/O ranges, the SSDT declares {}",
            asl.io.len()
        );

        // The IRQ: nobody holds the SSDT's IRQ until the driver asks for
        // its IRQ resource; then it is exactly that one.
        ensure!(asl.irqs.len() == 1, "SSDT IRQs {:?}", asl.irqs);
        let irq = asl.irqs[0];
        ensure!(
            m.interrupts()?.irq(irq).is_none(),
            "IRQ {irq} has a handler before the driver is loaded"
        );
        m.succeed(&format!(
            "insmod {} {}",
            s.driver.module_path(),
            s.driver.insmod_args()
        ))?;
        let ints = m.interrupts()?;
        let holders: Vec<Option<u32>> = ints.with_action(irq_name).map(|l| l.irq).collect();
        ensure!(
            holders == [Some(irq)],
            "{irq_name} holds IRQs {holders:?}, the SSDT declares IRQ {irq}"
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Exercise 4: the platform driver probes KBD0001:00.
// ---------------------------------------------------------------------------

fn ex4_driver_probes_and_binds_kbd0001(s: Subject) -> Result<()> {
    let name = s.driver.name();
    let driver_dir = s.driver.driver_dir();
    // The VM loads the driver without parameters: the Rust driver's default
    // mode is threaded, the C twin's only one the workqueue.
    let vm = kernel_vm(s.kernel)?
        .with_append(&format!("lab.driver={name}"))
        .with_name(format!("{}-{}-probe", s.kernel, s.driver))
        .with_snapshot();
    run_test(vm, |m| {
        let log = m.kernel_log_lines_with("probed: ")?;
        let re = device_message_of(
            s.driver,
            "",
            &format!(
                r"probed: irq (\d+), data port 0x60, status port 0x64, mode {}$",
                s.driver.mode_name()
            ),
        )?;
        let probes: Vec<&str> = log.lines().filter(|l| re.is_match(l)).collect();
        ensure!(
            probes.len() == 1,
            "expected one probe line, found {probes:?} in:\n{log}"
        );
        ensure!(
            bound_devices_of(m, s.driver)? == [DEVICE],
            "bound devices: {:?}",
            bound_devices_of(m, s.driver)?
        );
        m.succeed(&format!("test -L {driver_dir}/{DEVICE}"))?;
        let driver = m.succeed(&format!("basename $(readlink -f {PLATFORM_DEV}/driver)"))?;
        ensure!(driver.trim() == name, "driver link {driver:?}");
        let module = m.succeed(&format!("basename $(readlink -f {driver_dir}/module)"))?;
        ensure!(module.trim() == name, "module link {module:?}");
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Exercise 5: the interrupt handler on IRQ 1.
// ---------------------------------------------------------------------------

fn ex5_proc_interrupts_lists_the_handler_on_irq1_io_apic_edge(s: Subject) -> Result<()> {
    let irq_name = s.driver.irq_name();
    run_test(s.vm("interrupts")?.with_snapshot(), |m| {
        let ints = m.interrupts()?;
        let irq1 = ints.irq(1).context("IRQ 1 is not in /proc/interrupts")?;
        ensure!(
            irq1.actions == [irq_name],
            "IRQ 1 actions are {:?}, expected exactly [{irq_name}]",
            irq1.actions
        );
        ensure!(
            irq1.chip.as_deref() == Some("IO-APIC"),
            "IRQ 1 chip {:?}",
            irq1.chip
        );
        ensure!(
            irq1.hwirq() == Some(1) && irq1.trigger() == Some("edge"),
            "IRQ 1 is {:?}, expected 1-edge (ISA IRQ 1 is edge triggered)",
            irq1.hwirq_trigger
        );
        let holders: Vec<&str> = ints
            .with_action(irq_name)
            .map(|l| l.label.as_str())
            .collect();
        ensure!(holders == ["1"], "{irq_name} is on IRQs {holders:?}");
        // Nothing happens on IRQ 1 without keys.
        let before = irq1.total();
        std::thread::sleep(SETTLE);
        let after = irq1_count(m)?;
        ensure!(
            after == before,
            "IRQ 1 fired {} times with no key pressed",
            after - before
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Firmware variants: no SSDT, _STA "not present", _CRS without IRQ.
// ---------------------------------------------------------------------------

fn firmware_without_ssdt_module_loads_and_nothing_probes(s: Subject) -> Result<()> {
    let name = s.driver.name();
    run_test(s.vm("no-ssdt")?.with_ssdt(None).with_snapshot(), |m| {
        ensure!(
            boot_tables(m)?.iter().all(|t| t.oem_id != "TEST"),
            "a TEST table was loaded without -acpitable"
        );
        m.fail(&format!("test -e {ACPI_DEV}"))
            .with_context(|| format!("{DEVICE} exists without the SSDT"))?;
        m.succeed(&format!("test -d /sys/module/{name}"))
            .context("the module is not loaded")?;
        m.succeed(&format!("test -d {}", s.driver.driver_dir()))
            .context("the platform driver is not registered")?;
        ensure_nothing_probed(m, s.driver)?;
        rmmod_cleanly(m, s.driver, None)
    })
}

fn firmware_sta_not_present_means_no_probe(s: Subject) -> Result<()> {
    let table = TableHeader::read_aml(&artifacts()?.acpi_table("sta-absent")?)?;
    let vm = s.vm_with_ssdt_variant("sta-absent", "sta-absent")?;
    run_test(vm.with_snapshot(), |m| {
        let tables = boot_tables(m)?;
        ensure!(
            tables.contains(&table),
            "the sta-absent table {table:?} is not in the boot log: {tables:?}"
        );
        // ACPI enumerates the device but _STA says it is absent: no
        // platform device, so nothing for the driver to match.
        let status = m.succeed(&format!("cat {ACPI_DEV}/status"))?;
        ensure!(status.trim() == "0", "_STA gives {status:?}, expected 0");
        m.fail(&format!("test -e {PLATFORM_DEV}"))
            .context("a platform device exists for an absent ACPI device")?;
        m.succeed(&format!("test -d {}", s.driver.driver_dir()))?;
        ensure_nothing_probed(m, s.driver)?;
        rmmod_cleanly(m, s.driver, None)
    })
}

fn firmware_without_irq_fails_probe_cleanly_and_unloads(s: Subject) -> Result<()> {
    let asl = asl_resources("test/no-irq.asl")?;
    ensure!(
        asl.irqs.is_empty(),
        "no-irq.asl declares IRQs {:?}",
        asl.irqs
    );
    let vm = s.vm_with_ssdt_variant("no-irq", "no-irq")?;
    run_test(vm.with_snapshot(), |m| {
        m.succeed(&format!("test -e {PLATFORM_DEV}"))?;
        // The IRQ lookup fails with -ENXIO (-6): the driver must say so, as
        // an error naming the device and the missing IRQ.
        // Errors and worse only (the pattern below needs `<0>` to `<3>`).
        let raw = m.succeed("dmesg -r | grep -e '^<[0-3]>' || [ $? = 1 ]")?;
        let error = device_message_of(s.driver, "^<[0-3]>.*", r".*(-6|ENXIO).*\bIRQ\b")?;
        let errors: Vec<&str> = raw.lines().filter(|l| error.is_match(l)).collect();
        ensure!(
            errors.len() == 1,
            "expected one error line naming {DEVICE}, -6 and the IRQ, found {errors:?} in:\n{raw}"
        );
        ensure_nothing_probed(m, s.driver)?;
        m.fail(&format!("test -e {ACPI_DEV}/physical_node/driver"))
            .context("the device is bound after a failed probe")?;
        // Nothing else went wrong, and the module unloads cleanly.
        let allowed = device_message_of(s.driver, "", ".*(-6|ENXIO)")?;
        rmmod_cleanly(m, s.driver, Some(&allowed))?;
        ensure!(
            m.kernel_log_lines_with("removed:")?.is_empty(),
            "a remove line for a device that never probed"
        );
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Exercise 6, per mode: keys pressed through QMP reach the driver as set-1
// codes, /dev/kbd0001 lines and counters.
// ---------------------------------------------------------------------------

/// Letters, digits, modifiers, function keys and e0-prefixed keys, one
/// `send_key` each; chords (down in order, up in reverse order); PrtSc (its
/// fake shifts are bytes but no events) and Pause (six bytes, one event, no
/// release).
fn ex6_keys_give_exact_codes_lines_and_counters(s: Subject) -> Result<()> {
    run(s.vm("keys")?.with_snapshot(), |m| {
        check_probed(m, s.driver)?;
        let stream = Stream::start_for(m, s.driver, true)?;
        // Each check's mark is the next one's start.
        let mark = stream.press(
            m,
            &[
                "a",
                "z",
                "m",
                "1",
                "0",
                "ret",
                "spc",
                "esc",
                "f1",
                "f12",
                // Modifiers.
                "shift",
                "shift_r",
                "ctrl",
                "alt",
                "caps_lock",
                // Extended keys: e0 prefix, two bytes per event.
                "up",
                "down",
                "left",
                "right",
                "ctrl_r",
                "alt_r",
                "kp_enter",
                "kp_divide",
                "home",
                "end",
                "delete",
                "meta_l",
                "compose",
            ],
        )?;
        let mark = stream.press_from(m, &mark, &["shift-a", "ctrl-alt-delete", "ctrl_r-up"])?;
        stream
            .press_from(m, &mark, &["print", "pause", "a"])
            .map(drop)
    })
}

/// Typed text in order; a held key's typematic repeats (`Machine::hold_key`
/// sends repeated key-downs, as QEMU's GUI does) as make codes and exactly
/// one break, for a plain and for an extended key.
fn ex6_typed_text_and_held_keys(s: Subject) -> Result<()> {
    run(s.vm("text")?.with_snapshot(), |m| {
        check_probed(m, s.driver)?;
        let stream = Stream::start_for(m, s.driver, true)?;
        let text = "Hello, World! 42 ~/x_y";
        let start = stream.mark(m)?;
        m.send_chars(text)?;
        // Each check's mark is the next one's start.
        let mut mark = stream
            .check(m, &start, &text_transitions(text)?)
            .with_context(|| format!("typing {text:?}"))?;
        for key in ["b", "right"] {
            let repeats = m.hold_key(key, Duration::from_millis(1050))?;
            ensure!(repeats >= 2, "{repeats} repeats for 1.05 s");
            let mut sent = downs(key, repeats + 1)?;
            sent.push(up(key)?);
            mark = stream
                .check(m, &mark, &sent)
                .with_context(|| format!("holding {key}"))?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Robustness, per mode: bursts of keys, unload/reload cycles.
// ---------------------------------------------------------------------------

/// 200 key presses (plain and extended keys) as fast as QEMU can take them
/// without loss.
///
/// QEMU's PS/2 keyboard queue holds 16 bytes and silently drops the rest
/// (before any driver sees them), so a test that just fires 200 keys
/// measures QEMU, not the driver. Chosen here: `input-send-event` commands
/// of at most 16 bytes of scan codes each (press and release of up to 8
/// plain or 4 extended keys, delivered by QEMU back to back, one byte per
/// interrupt as fast as the driver reads them), the next command sent as
/// soon as the guest's IRQ 1 count shows every byte of the previous one
/// consumed. Not one scan code may be lost or duplicated: the IRQ count,
/// the logged events, the device's lines and the counters must match.
fn robust_burst_of_200_keys_loses_nothing(s: Subject) -> Result<()> {
    const PRESSES: usize = 200;
    const QUEUE_BYTES: usize = 16;
    let cycle = [
        "q", "w", "e", "r", "t", "up", "y", "u", "i", "o", "p", "left", "1", "2", "3", "kp_enter",
        "a", "s", "d", "f", "ctrl_r", "g", "h", "j", "k", "l", "right", "z", "x", "c", "v", "down",
    ];
    let keys: Vec<&str> = cycle.iter().copied().cycle().take(PRESSES).collect();
    let batches = batches_within(&keys, QUEUE_BYTES)?;
    run(s.vm("burst")?.with_snapshot(), |m| {
        check_probed(m, s.driver)?;
        let stream = Stream::start_for(m, s.driver, true)?;
        let start = stream.mark(m)?;
        let mut sent: Vec<Transition> = Vec::new();
        let mut irq_target = start.irq1;
        let t = Instant::now();
        for batch in &batches {
            let mut events = Vec::new();
            for key in batch {
                events.push((*key, true));
                events.push((*key, false));
                for down in [true, false] {
                    let tr = kbd::transition(key, down).context("table")?;
                    irq_target += tr.wire.len() as u64;
                    sent.push(tr);
                }
            }
            m.input_send_event(&events)?;
            m.wait_for_interrupts(1, irq_target, KEY_WAIT)?;
        }
        eprintln!(
            "burst ({}): {PRESSES} presses, {} bytes in {} commands, {:.2} s",
            s.driver,
            irq_target - start.irq1,
            batches.len(),
            t.elapsed().as_secs_f64()
        );
        stream.check(m, &start, &sent).map(drop)
    })
}

/// Splits `keys` into batches whose press and release bytes fit in
/// `queue_bytes` (QEMU's PS/2 queue).
fn batches_within<'a>(keys: &[&'a str], queue_bytes: usize) -> Result<Vec<Vec<&'a str>>> {
    let mut batches: Vec<Vec<&str>> = vec![Vec::new()];
    let mut batch_bytes = 0;
    for key in keys {
        let s = scancodes::lookup(key).context("table")?;
        let bytes = s.make.len() + s.brk.len();
        if batch_bytes + bytes > queue_bytes {
            batches.push(Vec::new());
            batch_bytes = 0;
        }
        batches.last_mut().context("batch")?.push(key);
        batch_bytes += bytes;
    }
    Ok(batches)
}

/// rmmod/insmod cycles (insmod with the test's mode) in one guest script
/// that checks every step, while the host keeps pressing keys: on rmmod the
/// IRQ action, `/dev/kbd0001` and the debugfs directory are gone; on insmod
/// each is back, once, with the right mode. Then the key stream is exact
/// again, nothing was logged at warning level or worse, and a final rmmod
/// leaves IRQ 1 without any action.
///
/// Twenty cycles on the lab kernel, two on the debug kernel: there every
/// rmmod waits for DEBUG_KOBJECT_RELEASE's delayed releases of the driver's
/// and the module's kobjects (1 to 4 s each, one after the other,
/// lib/kobject.c; kernel/module/sysfs.c waits for the module's), 5 to 8 s
/// under TCG, and the checkers need no repetition to fire: two cycles and
/// the final rmmod run every one of them over three unloads and two loads,
/// one of them of a module loaded by insmod rather than by /init. The many
/// cycles, the stress, are the lab kernel's. Five cycles made these the
/// suite's four slowest tests, 40 to 70 s each.
fn robust_unload_reload_cycles_while_keys_arrive(s: Subject) -> Result<()> {
    let cycles: usize = if s.kernel == "debug" { 2 } else { 20 };
    let cycle_timeout = Duration::from_secs(6) * cycles as u32 * s.slowdown();
    // The pause after each key press: 5 ms on the lab kernel; 20 ms on the
    // debug kernel, where every byte costs its checkers guest time: with
    // 5 ms its QEMU took 30 to 55 % of a host core and the test 46 s, with
    // 20 ms 13 % and 39 s (alone on 2 cores; the suite runs these tests
    // side by side). Both keep keys arriving through every rmmod and
    // insmod, which take seconds there.
    let key_pause = Duration::from_millis(if s.kernel == "debug" { 20 } else { 5 });
    // How often the host asks whether the cycles are done: each question is
    // a guest command (0.1 s on the debug kernel). Asked every 16 presses,
    // about 8 times a second, it made 677 of the suite's 2517 commands.
    const DONE_POLL: Duration = Duration::from_millis(500);
    let d = s.driver;
    let (name, irq_name, module, mode) = (d.name(), d.irq_name(), d.module_path(), d.mode_name());
    let dev = kbd::DEV_NODE;
    let dbg = d.debugfs_dir();
    let driver_dir = d.driver_dir();
    let bound = format!("{driver_dir}/{DEVICE}");
    let arg = d.insmod_args();
    // The device node comes and goes with the Rust driver; the C twin has
    // none, and must not create one.
    let dev_check = if d.has_dev_node() {
        format!(r#"[ -c {dev} ] || fail "no character device {dev} after insmod""#)
    } else {
        format!(r#"[ ! -e {dev} ] || fail "{dev} exists with the C twin""#)
    };
    let script = format!(
        r#"
fail() {{ echo "cycle $i: $*"; cat /proc/interrupts; cat /sys/kernel/debug/devices_deferred; dmesg | tail -n 15; echo failed > /tmp/cycles.done; exit 1; }}
i=1
while [ $i -le {cycles} ]; do
    rmmod {name} || fail "rmmod failed"
    ! grep -q {irq_name} /proc/interrupts || fail "{irq_name} still registered after rmmod"
    ! grep -q '^ *1:' /proc/interrupts || fail "IRQ 1 still has an action after rmmod"
    [ ! -e /sys/module/{name} ] || fail "module still loaded after rmmod"
    [ ! -e {dev} ] || fail "{dev} still exists after rmmod"
    [ ! -e {dbg} ] || fail "{dbg} still exists after rmmod"
    # The debug kernel's DEBUG_KOBJECT_RELEASE delays the release of the
    # driver's kobject (and its sysfs directory) by up to seconds: an insmod
    # before it is gone fails with "sysfs: cannot create duplicate filename".
    n=0
    while [ -e {driver_dir} ]; do
        [ $n -lt 100 ] || fail "{driver_dir} still exists 10 s after rmmod"
        lab_pause 0.1; n=$((n + 1))
    done
    insmod {module} {arg} || fail "insmod failed"
    [ -e {bound} ] || fail "{DEVICE} not bound after insmod"
    [ "$(grep -c {irq_name} /proc/interrupts)" = 1 ] || fail "{irq_name} not registered once"
    grep -q '^ *1:.* {irq_name}$' /proc/interrupts || fail "IRQ 1 does not carry {irq_name} alone"
    {dev_check}
    [ "$(cat {dbg}/mode)" = {mode} ] || fail "debugfs mode is not {mode} after insmod"
    i=$((i + 1))
done
echo "cycles: $((i - 1))"
echo ok > /tmp/cycles.done
"#
    );
    run(s.vm("reload")?.with_snapshot(), |m| {
        check_probed(m, s.driver)?;
        m.succeed(&format!("cat > /tmp/cycles.sh <<'EOF'\n{script}\nEOF"))?;
        // A subshell of the command's, not `sh`: /init's functions
        // (lab_pause) are visible in it.
        m.spawn("(. /tmp/cycles.sh)", "/tmp/cycles.out")?;
        // Keys while the script runs: a press and release every few ms,
        // whatever the driver's state (bytes sent while it is unloaded stay
        // in the controller or are dropped by QEMU's queue).
        let keys = ["a", "up", "s", "kp_enter", "d", "ctrl_r", "f"];
        let deadline = Instant::now() + cycle_timeout;
        let mut pressed = 0;
        let mut polled = Instant::now();
        let done = loop {
            let key = keys[pressed % keys.len()];
            m.input_send_event(&[(key, true), (key, false)])?;
            pressed += 1;
            std::thread::sleep(key_pause);
            if polled.elapsed() >= DONE_POLL {
                polled = Instant::now();
                let done = read_file(m, "/tmp/cycles.done")?;
                if !done.is_empty() {
                    break done;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the cycles did not end within {} s; output so far:\n{}",
                    cycle_timeout.as_secs(),
                    read_file(m, "/tmp/cycles.out")?
                );
            }
        };
        let out = read_file(m, "/tmp/cycles.out")?;
        ensure!(
            done.trim() == "ok" && out.trim() == format!("cycles: {cycles}"),
            "the cycles failed:\n{out}"
        );
        eprintln!("reload ({d}): {cycles} cycles, {pressed} key presses sent meanwhile");

        let lines_with = |m: &mut Machine, text: String| -> Result<usize> {
            Ok(m.kernel_log_lines_with(&text)?.matches(&text).count())
        };
        let probes = lines_with(
            m,
            format!("{DEVICE}: probed: irq 1, data port 0x60, status port 0x64, mode {mode}"),
        )?;
        let removes = lines_with(m, format!("{DEVICE}: removed: irq 1 freed"))?;
        ensure!(
            probes == cycles + 1 && removes == cycles,
            "{probes} probe lines in mode {mode} and {removes} remove lines, expected {} and {cycles}",
            cycles + 1
        );
        ensure!(
            irq1_actions(m)? == [irq_name],
            "IRQ 1 actions {:?}",
            irq1_actions(m)?
        );
        // The keys of the cycles are over once IRQ 1 is quiet.
        wait_quiet(m)?;
        let stream = Stream::start_for(m, d, false)?;
        stream.press(m, &["k", "up", "e", "kp_enter", "y"])?;

        rmmod_of(m, d)?;
        let ints = m.interrupts()?;
        ensure!(
            ints.irq(1).is_none() && ints.with_action(irq_name).next().is_none(),
            "IRQ 1 still listed after the final rmmod: {:?}",
            ints.irq(1)
        );
        ensure_no_warnings_of(m, d, None)
    })
}

/// Waits until the IRQ 1 count stays the same for [`SETTLE`].
fn wait_quiet(m: &mut Machine) -> Result<()> {
    let mut last = irq1_count(m)?;
    m.wait_for("IRQ 1 to be quiet", KEY_WAIT, POLL, |m| {
        std::thread::sleep(SETTLE);
        let now = irq1_count(m)?;
        let quiet = now == last;
        last = now;
        Ok(quiet.then_some(()))
    })
}

// ---------------------------------------------------------------------------
// The q35 machine type, per mode.
// ---------------------------------------------------------------------------

fn q35_driver_probes_and_keys_arrive(s: Subject) -> Result<()> {
    let vm = s.vm("q35")?.with_machine(MachineType::Q35);
    run(vm.with_snapshot(), |m| {
        m.succeed(&format!("test -L {}/{DEVICE}", s.driver.driver_dir()))?;
        check_probed(m, s.driver)?;
        let ints: Interrupts = m.interrupts()?;
        let irq1 = ints.irq(1).context("IRQ 1 missing on q35")?;
        ensure!(
            irq1.actions == [s.driver.irq_name()] && irq1.trigger() == Some("edge"),
            "IRQ 1 on q35: {irq1:?}"
        );
        let stream = Stream::start_for(m, s.driver, true)?;
        stream
            .press(
                m,
                &["q", "up", "3", "ctrl_r", "5", "shift-x", "kp_enter", "a"],
            )
            .map(drop)
    })
}
