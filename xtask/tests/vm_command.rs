//! `cargo xtask vm --no-build` on a machine where nothing was built or run
//! before: an empty cache directory (no `logs/`, no `vm/`), the artifacts of
//! `$LAB_ARTIFACTS`. The VM must boot to `LAB-INIT-READY` with the driver
//! bound and keep its console log where it says; `lab.poweroff` on the
//! kernel command line makes the guest power off once it is ready.
//!
//! Needs `$LAB_ARTIFACTS` (set by `cargo xtask test`); fails, never skips,
//! without it.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{Killed, lab_artifacts};

/// How long the boot may take (a TCG boot takes about 2 s on 2 cores).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn vm_boots_with_an_empty_cache_and_keeps_its_console_log() {
    let artifacts = lab_artifacts();
    let cache = tempfile::tempdir().unwrap();
    // QEMU is xtask's child with PR_SET_PDEATHSIG: it dies with it.
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["vm", "--no-build", "--append", "lab.poweroff"])
            .env("LAB_ARTIFACTS", &artifacts)
            .env("LAB_CACHE_DIR", cache.path())
            .env_remove("LAB_LOG_DIR")
            .stdin(Stdio::null())
            // The console also goes to the log file, which is what is checked.
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, stderr) = child.wait_with_stderr("`xtask vm` to exit", BOOT_TIMEOUT);
    let log = cache.path().join("logs/vm-console.log");
    assert!(status.success(), "`xtask vm` failed ({status}):\n{stderr}");
    assert!(stderr.contains(&log.display().to_string()), "{stderr}");
    let console = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("no console log {}: {e}\n{stderr}", log.display()));
    for wanted in [
        "rust_keyboard KBD0001:00: probed: irq 1",
        "LAB-INIT-READY",
        "lab.poweroff given, powering off",
    ] {
        assert!(
            console.contains(wanted),
            "no {wanted:?} in {}",
            log.display()
        );
    }
}
