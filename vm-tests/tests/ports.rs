//! The driver's I/O ports and its mode parameter.
//!
//! * `ports_claimed_by_rust_keyboard_under_the_device`: booted without a
//!   mode parameter, the driver runs threaded, and each port of the SSDT's
//!   `_CRS` (acpi/ssdt.asl: data 0x60, status 0x64) shows in `/proc/ioports`
//!   as claimed by `rust_keyboard` inside the device's own range
//!   (`KBD0001:00`, possibly with the kernel's `keyboard` reservation in
//!   between, as kernel/patches/0002 leaves it); rmmod releases both claims.
//! * `other_ports_fail_probe_cleanly_and_unload`: an SSDT with the same
//!   device on other ports (acpi/test/other-ports.asl: 0x61, 0x65) makes
//!   probe fail with an error naming the ports it found; no IRQ, no device
//!   node, no debugfs directory, no claimed port; the module unloads.
//! * `invalid_mode_fails_probe_cleanly`: `mode=3` fails probe with the
//!   spec's `invalid mode 3 (...)` error and leaves nothing behind.

mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use regex::Regex;
use vm_tests::Machine;
use vm_tests::ioports::{IoPorts, IoRegion};
use vm_tests::kbd::{self, Mode};

/// The name the driver claims its ports with.
const CLAIMER: &str = "rust_keyboard";

/// The regions containing `regions[i]`, innermost first (each the nearest
/// region before it one level up).
fn ancestors(ports: &IoPorts, i: usize) -> Vec<&IoRegion> {
    let mut out = Vec::new();
    let mut depth = ports.regions[i].depth;
    for r in ports.regions[..i].iter().rev() {
        if depth == 0 {
            break;
        }
        if r.depth == depth - 1 {
            out.push(r);
            depth -= 1;
        }
    }
    out
}

/// The regions claimed by the driver.
fn claims(ports: &IoPorts) -> Vec<&IoRegion> {
    ports.owned_by(CLAIMER).collect()
}

#[test]
fn nesting_of_proc_ioports() {
    // /proc/ioports of the lab VM with the C twin on the patched kernel.
    let ports = IoPorts::parse(
        "0000-0cf7 : PCI Bus 0000:00\n  0000-001f : dma1\n  0060-0060 : KBD0001:00\n    \
         0060-0060 : keyboard\n      0060-0060 : c_keyboard\n  0064-0064 : KBD0001:00\n",
    )
    .unwrap();
    let owners: Vec<&str> = ancestors(&ports, 4)
        .iter()
        .map(|r| r.owner.as_str())
        .collect();
    assert_eq!(owners, ["keyboard", "KBD0001:00", "PCI Bus 0000:00"]);
    assert!(ancestors(&ports, 0).is_empty());
    let owners: Vec<&str> = ancestors(&ports, 5)
        .iter()
        .map(|r| r.owner.as_str())
        .collect();
    assert_eq!(owners, ["PCI Bus 0000:00"]);
}

#[test]
fn ports_claimed_by_rust_keyboard_under_the_device() -> Result<()> {
    let asl = asl_resources("ssdt.asl")?;
    run(lab()?.with_name("ports"), |m| {
        check_probed_in_mode(m, Mode::Threaded).context("the default mode")?;
        let ports = ioports(m)?;
        for range in &asl.io {
            let (start, end) = (*range.start(), *range.end());
            let claimed = ports
                .regions
                .iter()
                .enumerate()
                .find(|(_, r)| r.owner == CLAIMER && r.start == start && r.end == end);
            let Some((i, _)) = claimed else {
                anyhow::bail!(
                    "/proc/ioports has no {start:04x}-{end:04x} claimed by {CLAIMER}:\n{:x?}",
                    ports.regions
                );
            };
            // Inside the device's own range (possibly with the kernel's
            // `keyboard` reservation in between).
            let up = ancestors(&ports, i);
            ensure!(
                up.iter()
                    .any(|p| p.owner == DEVICE && p.start <= start && end <= p.end),
                "{CLAIMER}'s {start:04x}-{end:04x} is not inside a range of {DEVICE}: it is under \
                 {up:x?}"
            );
        }
        ensure!(
            claims(&ports).len() == asl.io.len(),
            "{CLAIMER} claims {:x?}, the SSDT declares {} ranges",
            claims(&ports),
            asl.io.len()
        );
        rmmod_cleanly(m, RUST, None)?;
        let ports = ioports(m)?;
        ensure!(
            claims(&ports).is_empty(),
            "ports still claimed after rmmod: {:x?}",
            claims(&ports)
        );
        ensure!(
            ports.owned_by(DEVICE).count() == asl.io.len(),
            "{DEVICE}'s own ranges changed after rmmod: {:x?}",
            ports.regions
        );
        Ok(())
    })
}

#[test]
fn other_ports_fail_probe_cleanly_and_unload() -> Result<()> {
    let asl = asl_resources("test/other-ports.asl")?;
    let declared: Vec<u32> = asl.io.iter().map(|r| *r.start()).collect();
    ensure!(
        declared == [0x61, 0x65] && asl.irqs == [1],
        "other-ports.asl declares ports {declared:x?} and IRQs {:?}",
        asl.irqs
    );
    run(
        lab_with_ssdt_variant("other-ports")?.with_name("other-ports"),
        |m| {
            m.succeed(&format!("test -e {PLATFORM_DEV}"))?;
            m.succeed("test -d /sys/module/rust_keyboard")
                .context("the module is not loaded")?;
            // An error-level line from the driver about the device that names
            // the ports it found.
            let raw = m.succeed("dmesg -r")?;
            let error = device_message("^<[0-3]>.*", r"(?i).*\b0x0*61\b.*\b0x0*65\b")?;
            let errors: Vec<&str> = raw.lines().filter(|l| error.is_match(l)).collect();
            ensure!(
                errors.len() == 1,
                "expected one error line naming {DEVICE} and the ports 0x61 and 0x65, found \
             {errors:?} in:\n{raw}"
            );
            ensure_nothing_left(m)?;
            let allowed = Regex::new(&format!(
                r"{}|rust_keyboard {DEVICE}: probe with driver rust_keyboard failed with error -\d+",
                error.as_str().trim_start_matches("^<[0-3]>")
            ))?;
            rmmod_cleanly(m, RUST, Some(&allowed))
        },
    )
}

#[test]
fn invalid_mode_fails_probe_cleanly() -> Result<()> {
    run(
        lab()?.with_append("lab.nomodule").with_name("invalid-mode"),
        |m| {
            let (status, out) = m.execute(&format!("insmod {MODULE} mode=3"))?;
            let raw = m.succeed("dmesg -r")?;
            let error = device_message(
                "^<[0-3]>.*",
                &regex::escape("invalid mode 3 (0 = hard, 1 = threaded, 2 = workqueue)"),
            )?;
            let errors: Vec<&str> = raw.lines().filter(|l| error.is_match(l)).collect();
            ensure!(
                errors.len() == 1,
                "expected one error line `invalid mode 3 (...)` from {DEVICE} (insmod exit status \
             {status}: {out}), found {errors:?} in:\n{raw}"
            );
            ensure_nothing_left(m)?;
            if status == 0 {
                let allowed = Regex::new(&format!(
                    r"invalid mode 3|rust_keyboard {DEVICE}: probe with driver rust_keyboard failed with error -22"
                ))?;
                rmmod_cleanly(m, RUST, Some(&allowed))?;
            }
            Ok(())
        },
    )
}

/// Nothing of a probed driver: no probe line, no bound device, no IRQ, no
/// device node, no debugfs directory, no claimed port.
fn ensure_nothing_left(m: &mut Machine) -> Result<()> {
    ensure_nothing_probed(m, RUST)?;
    m.fail(&format!("test -e {}", kbd::DEV_NODE))
        .context("the device node exists after a failed probe")?;
    ensure_debugfs(m)?;
    m.fail(&format!("test -e {}", kbd::DEBUGFS_DIR))
        .context("the debugfs directory exists after a failed probe")?;
    let ports = ioports(m)?;
    ensure!(
        claims(&ports).is_empty(),
        "ports claimed after a failed probe: {:x?}",
        claims(&ports)
    );
    Ok(())
}
