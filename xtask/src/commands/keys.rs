//! `cargo xtask keys`: presses keys on the PS/2 keyboard of a running
//! `cargo xtask vm`, over its QMP socket.

use crate::cli::KeysArgs;
use crate::paths::Cache;
use anyhow::{Context, Result, bail};
use std::time::Duration;

/// How long each key is held down.
const KEY_HOLD: Duration = Duration::from_millis(30);

/// Presses the chords of `args`, then types its text.
pub fn run(args: &KeysArgs) -> Result<()> {
    let socket = match &args.qmp {
        Some(socket) => socket.clone(),
        None => vm_tests::VmConfig::qmp_socket(&Cache::from_env()?.vm_runtime()),
    };
    if args.keys.is_empty() && args.text.is_none() {
        bail!("nothing to press: give key names (a, ret, up, ctrl-alt-delete) or --text");
    }
    let chords = args
        .keys
        .iter()
        .map(|k| vm_tests::qmp::parse_chord(k))
        .collect::<Result<Vec<_>, _>>()?;
    let text_chords = vm_tests::qmp::text_chords(args.text.as_deref().unwrap_or_default())?;
    let mut qmp = vm_tests::QmpClient::connect(&socket, Duration::from_secs(5))
        .context("no lab VM is running (start one with `cargo xtask vm`)")?;
    for chord in chords.iter().chain(&text_chords) {
        // One chord at a time, each delivered before the next: the PS/2
        // queue of QEMU holds only 16 bytes.
        qmp.press(chord, KEY_HOLD)?;
        eprintln!("keys: pressed {}", chord.join("-"));
    }
    Ok(())
}
