//! VM tests of the Rust PS/2 keyboard driver: each test boots the lab VM
//! from `$LAB_ARTIFACTS` (built by `cargo xtask build`). Without
//! `LAB_ARTIFACTS` every test fails and says so; none is skipped.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use vm_tests::Machine;
use vm_tests::scancodes::{self, KeyEvent};

const KEY_WAIT: Duration = Duration::from_secs(20);
/// How long to watch for extra interrupts once the expected count is reached.
const SETTLE: Duration = Duration::from_millis(500);

fn boot() -> Result<Machine> {
    Ok(Machine::boot_default()?)
}

/// Driver key events in the kernel log.
fn driver_events(m: &mut Machine) -> Result<Vec<KeyEvent>> {
    Ok(scancodes::parse_driver_log(&m.kernel_log()?))
}

/// Presses `chords` one after the other and checks, against the set-1
/// table, that IRQ 1 fires exactly once per byte and that the driver logs
/// exactly the expected events in order.
fn press_and_check(m: &mut Machine, chords: &[&str]) -> Result<()> {
    let before = m
        .interrupts()?
        .count(1)
        .context("IRQ 1 is not in /proc/interrupts")?;
    let logged_before = driver_events(m)?.len();
    let mut expected_events = Vec::new();
    for chord in chords {
        let keys: Vec<&str> = chord.split('-').collect();
        expected_events.extend(
            scancodes::chord_events(&keys).with_context(|| format!("{chord} not in the table"))?,
        );
        m.send_key(chord)?;
    }
    let bytes: usize = expected_events.iter().map(|e| e.bytes.len()).sum();
    let expected = before + bytes as u64;
    m.wait_for_interrupts(1, expected, KEY_WAIT)?;
    std::thread::sleep(SETTLE);
    let after = m.interrupts()?.count(1).context("IRQ 1 vanished")?;
    ensure!(
        after == expected,
        "IRQ 1 count went from {before} to {after}, expected exactly {expected} (one interrupt per byte)"
    );
    let events = driver_events(m)?.split_off(logged_before);
    let show = |ev: &[KeyEvent]| {
        ev.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    };
    ensure!(
        events == expected_events,
        "driver events differ from the set-1 table\nexpected:\n  {}\nlogged:\n  {}",
        show(&expected_events),
        show(&events)
    );
    Ok(())
}

#[test]
fn ssdt_is_loaded() -> Result<()> {
    let mut m = boot()?;
    let log = m.kernel_log()?;
    let re = Regex::new(r"ACPI: SSDT 0x[0-9A-F]+ [0-9A-F]+ \(v02 TEST\s+VIRTACPI 00000001")?;
    let Some(line) = log.lines().find(|l| re.is_match(l)) else {
        bail!("no ACPI SSDT TEST/VIRTACPI line in the kernel log:\n{log}");
    };
    eprintln!("found: {line}");
    m.shutdown()?;
    Ok(())
}

#[test]
fn acpi_device_exists() -> Result<()> {
    let mut m = boot()?;
    m.succeed("test -d /sys/bus/acpi/devices/KBD0001:00")?;
    let hid = m.succeed("cat /sys/bus/acpi/devices/KBD0001:00/hid")?;
    ensure!(hid.trim() == "KBD0001", "hid is {hid:?}");
    let status = m.succeed("cat /sys/bus/acpi/devices/KBD0001:00/status")?;
    ensure!(status.trim() == "15", "_STA gives {status:?}, expected 15");
    m.shutdown()?;
    Ok(())
}

#[test]
fn driver_is_bound() -> Result<()> {
    let mut m = boot()?;
    m.succeed("test -e /sys/bus/platform/drivers/rust_keyboard/KBD0001:00")?;
    let log = m.kernel_log()?;
    let re = Regex::new(r"KBD0001:00: probed: irq 1, data port 0x60, status port 0x64")?;
    ensure!(
        log.lines().any(|l| re.is_match(l)),
        "no probe line in the kernel log:\n{log}"
    );
    m.shutdown()?;
    Ok(())
}

#[test]
fn irq1_is_registered() -> Result<()> {
    let mut m = boot()?;
    let ints = m.interrupts()?;
    let irq1 = ints.irq(1).context("IRQ 1 is not in /proc/interrupts")?;
    ensure!(
        irq1.has_action("rust_keyboard_irq"),
        "IRQ 1 actions are {:?}, expected rust_keyboard_irq",
        irq1.actions
    );
    let holders: Vec<&str> = ints
        .with_action("rust_keyboard_irq")
        .map(|l| l.label.as_str())
        .collect();
    ensure!(
        holders == ["1"],
        "rust_keyboard_irq is on IRQs {holders:?}, expected only 1"
    );
    m.shutdown()?;
    Ok(())
}

#[test]
fn keys_raise_irq1_and_log_set1_codes() -> Result<()> {
    let mut m = boot()?;
    press_and_check(&mut m, &["a", "s", "d", "1", "ret"])?;
    m.shutdown()?;
    Ok(())
}

#[test]
fn extended_keys_and_chords() -> Result<()> {
    let mut m = boot()?;
    // e0-prefixed keys: two bytes, two interrupts per event.
    press_and_check(&mut m, &["up", "ctrl_r", "kp_enter"])?;
    // A chord goes down in order and up in reverse order.
    press_and_check(&mut m, &["shift-a", "ctrl-alt-delete"])?;
    m.shutdown()?;
    Ok(())
}

#[test]
fn held_key_repeats() -> Result<()> {
    let mut m = boot()?;
    let before = m.interrupts()?.count(1).context("IRQ 1 missing")?;
    let logged_before = driver_events(&mut m)?.len();
    let repeats = m.hold_key("b", Duration::from_millis(1250))?;
    ensure!(
        repeats == 8,
        "{repeats} repeats for 1.25 s (expected 500 ms delay, 100 ms period: 8)"
    );
    let expected = before + repeats as u64 + 2;
    m.wait_for_interrupts(1, expected, KEY_WAIT)?;
    std::thread::sleep(SETTLE);
    ensure!(
        m.interrupts()?.count(1) == Some(expected),
        "IRQ 1 count is not {expected}"
    );
    let events = driver_events(&mut m)?.split_off(logged_before);
    let mut want = vec![KeyEvent::press("b").context("b")?; repeats + 1];
    want.push(KeyEvent::release("b").context("b")?);
    ensure!(events == want, "events {events:?}");
    m.shutdown()?;
    Ok(())
}

#[test]
fn typed_text_arrives_whole() -> Result<()> {
    let mut m = boot()?;
    let before = m.interrupts()?.count(1).context("IRQ 1 missing")?;
    let logged_before = driver_events(&mut m)?.len();
    let text = "Hello, World! 42";
    m.send_chars(text)?;
    let mut want = Vec::new();
    for c in text.chars() {
        want.extend(
            scancodes::chord_events(&scancodes::char_keys(c).context("char")?).context("keys")?,
        );
    }
    let bytes: u64 = want.iter().map(|e| e.bytes.len() as u64).sum();
    m.wait_for_interrupts(1, before + bytes, KEY_WAIT)?;
    std::thread::sleep(SETTLE);
    ensure!(
        m.interrupts()?.count(1) == Some(before + bytes),
        "extra interrupts"
    );
    let events = driver_events(&mut m)?.split_off(logged_before);
    ensure!(events == want, "typed {text:?}, driver saw {events:?}");
    m.shutdown()?;
    Ok(())
}

#[test]
fn module_unload_and_reload() -> Result<()> {
    let mut m = boot()?;
    m.succeed("rmmod rust_keyboard")?;
    let log = m.kernel_log()?;
    ensure!(
        log.lines().any(|l| l.contains("removed: irq 1 freed")),
        "no remove line in the kernel log:\n{log}"
    );
    let holders = m.interrupts()?.with_action("rust_keyboard_irq").count();
    ensure!(
        holders == 0,
        "rust_keyboard_irq still registered after rmmod"
    );
    m.fail("test -e /sys/bus/platform/drivers/rust_keyboard")?;
    m.succeed("insmod /lib/modules/rust_keyboard.ko")?;
    m.succeed("test -e /sys/bus/platform/drivers/rust_keyboard/KBD0001:00")?;
    press_and_check(&mut m, &["z", "up"])?;
    m.shutdown()?;
    Ok(())
}
