//! `cargo xtask keys`: presses keys on the PS/2 keyboard of a running
//! `cargo xtask vm`, over its QMP socket.

use crate::cli::KeysArgs;
use anyhow::{Context, Result, bail};
use std::time::Duration;

/// How long each key is held down.
const KEY_HOLD: Duration = Duration::from_millis(30);

/// Presses the chords of `args`, then types its text.
pub fn run(args: &KeysArgs) -> Result<()> {
    let socket = args.qmp.clone().unwrap_or_else(|| {
        vm_tests::VmConfig::qmp_socket(&vm_tests::qemu::interactive_runtime_dir())
    });
    let chords: Vec<Vec<&str>> = args.keys.iter().map(|k| k.split('-').collect()).collect();
    if chords.is_empty() && args.text.is_none() {
        bail!("nothing to press: give key names (a, ret, up, ctrl-alt-delete) or --text");
    }
    for chord in &chords {
        for key in chord {
            vm_tests::qmp::qkeycode(key)?;
        }
    }
    let text_chords = vm_tests::qmp::text_chords(args.text.as_deref().unwrap_or_default())?;
    let mut qmp =
        vm_tests::QmpClient::connect(&socket, Duration::from_secs(5)).with_context(|| {
            format!(
                "no VM answers on {}: start one with `cargo xtask vm`",
                socket.display()
            )
        })?;
    for chord in chords.iter().chain(&text_chords) {
        // One chord at a time, each delivered before the next: the PS/2
        // queue of QEMU holds only 16 bytes.
        qmp.press(chord, KEY_HOLD)?;
        eprintln!("keys: pressed {}", chord.join("-"));
    }
    Ok(())
}
