//! Starts a lab VM from `$LAB_ARTIFACTS` through the test harness and opens
//! its interactive mode ([`vm_tests::interact`]): guest shell commands,
//! `:key`, `:type`, `:irq`, `:log`, `:console`, `:quit`.
//!
//! ```text
//! LAB_ARTIFACTS=~/.cache/rust-kbd-lab/artifacts \
//!   cargo run -p vm-tests --example interactive -- [--no-ssdt] [--ssdt FILE|NAME] \
//!   [--q35] [--append ARGS] [--memory MIB]
//! ```
//!
//! Unlike `cargo xtask vm` (the console on the terminal), this is the VM
//! exactly as a test sees it: same command channel, same QMP key helpers,
//! same logs. Input can be piped (`echo ':irq' | cargo run ...`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use vm_tests::{Artifacts, Machine, MachineType, VmConfig};

/// Start a lab VM and drive it interactively.
#[derive(Debug, Parser)]
struct Args {
    /// Boot without any SSDT (the KBD0001 device does not exist).
    #[arg(long, conflicts_with = "ssdt")]
    no_ssdt: bool,
    /// Another ACPI table: a file, or the name of a compiled test variant in
    /// $LAB_ARTIFACTS/acpi (`sta-absent`, `no-irq`).
    #[arg(long, value_name = "FILE|NAME")]
    ssdt: Option<String>,
    /// Use the q35 machine type instead of pc.
    #[arg(long)]
    q35: bool,
    /// Extra kernel command line arguments (e.g. `lab.nomodule`); repeatable.
    #[arg(long, value_name = "ARGS")]
    append: Vec<String>,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB")]
    memory: Option<u32>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let artifacts = Artifacts::from_env()?;
    let mut config = VmConfig::from_artifacts(&artifacts)?.with_name("interactive");
    if args.no_ssdt {
        config = config.with_ssdt(None);
    } else if let Some(ssdt) = &args.ssdt {
        let path = PathBuf::from(ssdt);
        let path = if path.is_file() {
            path
        } else {
            artifacts
                .acpi_table(ssdt)
                .with_context(|| format!("--ssdt {ssdt}: neither a file nor a test variant"))?
        };
        config = config.with_ssdt(Some(path));
    }
    if args.q35 {
        config = config.with_machine(MachineType::Q35);
    }
    for a in &args.append {
        config = config.with_append(a);
    }
    if let Some(mib) = args.memory {
        config = config.with_memory(mib);
    }
    let mut machine = Machine::start(config)?;
    machine.interact()?;
    machine.shutdown()?;
    Ok(())
}
