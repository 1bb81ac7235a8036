//! `cargo xtask vm --gui` as a user meets it, on a virtual X server: the
//! QEMU window opens, keys typed into it with a real X input tool (xdotool,
//! through the XTEST extension, as a keyboard would) reach the VM's PS/2
//! keyboard, the driver logs their set-1 codes on the console (the terminal
//! of `vm`) and IRQ 1 fires once per byte.
//!
//! Needs `$LAB_ARTIFACTS` and the packages `cargo xtask test` installs
//! (xvfb, xdotool, qemu-system-gui); fails, never skips, without them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Killed, lab_artifacts, wait_for};

/// How long the boot may take.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long each other wait may take.
const WAIT: Duration = Duration::from_secs(30);

/// Starts Xvfb on the first free display number from 90 and returns it.
fn start_xvfb() -> (Killed, String) {
    let n = (90..200)
        .find(|n| !Path::new(&format!("/tmp/.X{n}-lock")).exists())
        .expect("no free X display number");
    let display = format!(":{n}");
    let xvfb = Command::new("Xvfb")
        .args([&display, "-screen", "0", "1024x768x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start Xvfb (package xvfb; `cargo xtask test` installs it)");
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
    wait_for("Xvfb's socket", WAIT, || socket.exists().then_some(()));
    (Killed(xvfb), display)
}

/// Runs xdotool on `display` and returns its output.
fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("20")
        .arg("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("cannot run xdotool (package xdotool; `cargo xtask test` installs it)");
    assert!(
        out.status.success(),
        "xdotool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bytes of the driver's `scancode .. pressed/released` lines, in order.
fn scancode_bytes(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| {
            l.trim_end()
                .split_once("rust_keyboard KBD0001:00: scancode ")?
                .1
                .split_once(' ')
        })
        .flat_map(|(first, rest)| {
            // `scancode e0 48 pressed`: every word before the verb is a byte.
            let words: Vec<&str> = std::iter::once(first).chain(rest.split(' ')).collect();
            words
                .into_iter()
                .take_while(|w| *w != "pressed" && *w != "released")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn keys_typed_into_the_qemu_window_reach_the_driver() {
    let artifacts = lab_artifacts();
    let (_xvfb, display) = start_xvfb();
    let cache = tempfile::tempdir().unwrap();
    let log = cache.path().join("logs/vm-console.log");
    let mut vm = Killed(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["vm", "--no-build", "--gui"])
            .env("LAB_ARTIFACTS", &artifacts)
            .env("LAB_CACHE_DIR", cache.path())
            .env("DISPLAY", &display)
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let console = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("LAB-INIT-READY on the console", BOOT_TIMEOUT, || {
        console().contains("LAB-INIT-READY").then_some(())
    });
    let window = xdotool(
        &display,
        &["search", "--sync", "--onlyvisible", "--name", "QEMU"],
    );
    let window = window.lines().next().expect("no QEMU window").to_owned();
    xdotool(&display, &["windowfocus", "--sync", &window]);
    let before = scancode_bytes(&console()).len();
    xdotool(&display, &["type", "--delay", "200", "hi"]);
    xdotool(&display, &["key", "--delay", "200", "Up"]);
    // h: 23 a3, i: 17 97, Up: e0 48 and e0 c8 (set 1, as the driver reads it).
    let expected = ["23", "a3", "17", "97", "e0", "48", "e0", "c8"];
    let bytes = wait_for("the driver's lines of h, i and Up", WAIT, || {
        let bytes = scancode_bytes(&console());
        (bytes.len() >= before + expected.len()).then_some(bytes)
    });
    assert_eq!(bytes[before..], expected, "console:\n{}", console());

    // The IRQ count, asked on the console shell (the terminal of `vm`).
    let stdin = vm.0.stdin.as_mut().unwrap();
    writeln!(stdin, "grep rust_keyboard_irq /proc/interrupts").unwrap();
    let count: u64 = wait_for(
        "the rust_keyboard_irq line of /proc/interrupts",
        WAIT,
        || {
            let text = console();
            let line = text
                .lines()
                .rev()
                .find(|l| l.contains("rust_keyboard_irq") && l.contains("IO-APIC"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        },
    );
    assert_eq!(count, bytes.len() as u64, "one interrupt per byte read");
    writeln!(stdin, "poweroff -f").unwrap();
    let status = wait_for("QEMU to exit after poweroff", WAIT, || {
        vm.0.try_wait().unwrap()
    });
    assert!(status.success(), "`xtask vm --gui` exited with {status}");
}
