//! `cargo xtask vm` (and `nix run .#vm`): boots the lab's VM with the
//! console on this terminal.

use crate::cli::VmArgs;
use crate::paths::Cache;
use anyhow::{Context, Result, bail};
use vm_tests::{Artifacts, ConsoleMode, MachineType, VmConfig};

/// Builds if needed, then boots.
pub fn run(args: &VmArgs) -> Result<()> {
    let dir = super::artifacts(args.no_build, &args.build, false)?;
    let artifacts = Artifacts::from_dir(&dir)?;
    let mut config = VmConfig::new(artifacts.kernel()?, artifacts.initramfs()?)?;
    config.ssdt = match (&args.ssdt, args.no_ssdt) {
        (_, true) => None,
        (Some(file), false) => Some(file.clone()),
        (None, false) => Some(artifacts.ssdt()?),
    };
    config.accel = vm_tests::accel::choose(args.accel.as_deref())?;
    config.machine = match args.machine.as_str() {
        "pc" => MachineType::Pc,
        "q35" => MachineType::Q35,
        other => bail!("unknown machine type {other:?}: use pc or q35"),
    };
    config.memory_mib = args.memory;
    config.gui = args.gui;
    let mut config = config.with_append(&args.append);
    // Every path the lab writes to is created by the lab: the log directory
    // may not exist yet (`--no-build`, `nix run .#vm` on a fresh machine).
    let logs = Cache::from_env()?.logs();
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("cannot create the log directory {}", logs.display()))?;
    let log = logs.join("vm-console.log");
    config.console = ConsoleMode::Stdio {
        log: Some(log.clone()),
    };
    eprintln!(
        "vm: booting {} (console log: {})",
        dir.display(),
        log.display()
    );
    if !args.gui {
        eprintln!(
            "vm: press keys on the VM's PS/2 keyboard with `cargo xtask keys a b c` (or --gui)"
        );
    }
    let status = config.run_interactive()?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}
