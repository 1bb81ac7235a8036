//! `cargo xtask vm` (and `nix run .#vm`): boots the lab's VM in the
//! foreground with the console on this terminal and its QMP socket in the
//! cache, where `cargo xtask keys` finds it.

use crate::cli::VmArgs;
use crate::exec::{self, cmd};
use crate::host::Host;
use crate::paths::Cache;
use crate::provision;
use anyhow::{Context, Result, bail};
use std::path::Path;
use vm_tests::{Artifacts, ConsoleMode, Display, MachineType, VmConfig};

/// The QEMU the VM runs (`VmConfig`'s default).
const QEMU: &str = "qemu-system-x86_64";

/// Builds if needed, then boots.
pub fn run(args: &VmArgs) -> Result<()> {
    let dir = super::artifacts(args.no_build, &args.build, false)?;
    let artifacts = Artifacts::from_dir(&dir)?;
    let ssdt = match (&args.ssdt, args.no_ssdt) {
        (_, true) => None,
        (Some(file), false) => Some(file.clone()),
        (None, false) => Some(artifacts.ssdt()?),
    };
    let machine = match args.machine.as_str() {
        "pc" => MachineType::Pc,
        "q35" => MachineType::Q35,
        other => bail!("unknown machine type {other:?}: use pc or q35"),
    };
    let display = match (&args.vnc, args.gui) {
        (Some(at), _) => Display::Vnc(at.clone()),
        (None, true) => {
            prepare_window()?;
            Display::Window
        }
        (None, false) => Display::None,
    };
    let cache = Cache::from_env()?;
    // Every path the lab writes to is created by the lab: the log directory
    // may not exist yet (`--no-build`, `nix run .#vm` on a fresh machine).
    let logs = cache.logs();
    std::fs::create_dir_all(&logs)
        .with_context(|| format!("cannot create the log directory {}", logs.display()))?;
    let log = logs.join("vm-console.log");
    let config = VmConfig::new(artifacts.kernel()?, artifacts.initramfs()?)?
        .with_ssdt(ssdt)
        .with_accel(vm_tests::accel::choose(args.accel.as_deref())?)
        .with_machine(machine)
        .with_memory(args.memory)
        .with_display(display.clone())
        .with_append(&args.append)
        .with_console(ConsoleMode::Stdio {
            log: Some(log.clone()),
        });
    eprintln!(
        "vm: booting {} (console log: {})",
        dir.display(),
        log.display()
    );
    match &display {
        Display::None => eprintln!(
            "vm: press keys on the VM's PS/2 keyboard with `cargo xtask keys a b c` (or boot with --gui)"
        ),
        Display::Window => eprintln!(
            "vm: a QEMU window opens: click into it and type. Your keys go to the VM's PS/2 \
             keyboard, which the driver owns, and its `scancode .. pressed/released` lines appear \
             here, on the guest's console (the window shows only the firmware's screen: the guest \
             has no screen console). Ctrl-Alt-G releases the mouse."
        ),
        Display::Vnc(at) => eprintln!(
            "vm: the VM's screen is on the VNC server at {at}: keys typed into a VNC viewer go to \
             its PS/2 keyboard, the driver's lines appear here"
        ),
    }
    let status = run_in_foreground(&config, &cache.vm_runtime())?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}

/// Makes sure a QEMU window can open: a display to open it on, and a QEMU
/// with GTK (on a Debian host, qemu-system-gui is installed if missing).
fn prepare_window() -> Result<()> {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if !set("DISPLAY") && !set("WAYLAND_DISPLAY") {
        bail!(
            "--gui needs a display and this session has none (DISPLAY and WAYLAND_DISPLAY are \
             unset): run it from a desktop session or over `ssh -X`, under a virtual X server \
             (`xvfb-run -a cargo xtask vm --gui`, package xvfb), or use --vnc and a VNC viewer"
        );
    }
    if !has_gtk()? && exec::which("dpkg-query").is_some() {
        provision::ensure_host_packages(&Host::new()?.pins.host.gui_packages)?;
    }
    if !has_gtk()? {
        bail!(
            "this QEMU ({QEMU} on PATH) has no GTK display, so it cannot open a window \
             (`{QEMU} -display help` does not list gtk): install its GUI (Debian: qemu-system-gui) \
             or use --vnc"
        );
    }
    Ok(())
}

/// Whether QEMU lists the GTK display among those it can load.
fn has_gtk() -> Result<bool> {
    let out = exec::captured(&mut cmd(QEMU, ["-display", "help"]))?;
    Ok(out.stdout.lines().any(|l| l.trim() == "gtk"))
}

/// Runs QEMU with the terminal as its console and its sockets in
/// `runtime_dir`, and returns its exit status. Fails if a VM already
/// answers on that QMP socket; stale sockets are removed before and after.
fn run_in_foreground(config: &VmConfig, runtime_dir: &Path) -> Result<std::process::ExitStatus> {
    std::fs::create_dir_all(runtime_dir)
        .with_context(|| format!("cannot create {}", runtime_dir.display()))?;
    let qmp = VmConfig::qmp_socket(runtime_dir);
    if std::os::unix::net::UnixStream::connect(&qmp).is_ok() {
        bail!(
            "another lab VM is running (its QMP socket {} answers); stop it first",
            qmp.display()
        );
    }
    let sockets = [qmp.clone(), VmConfig::command_socket(runtime_dir)];
    let remove_stale = || {
        for stale in &sockets {
            let _ = std::fs::remove_file(stale);
        }
    };
    remove_stale();
    eprintln!("vm: accelerator {}", config.accel());
    eprintln!("vm: QMP socket {} (cargo xtask keys)", qmp.display());
    eprintln!("vm: Ctrl-A X quits QEMU, Ctrl-A C switches to the QEMU monitor");
    let status = exec::run_attached(&mut config.command(runtime_dir)?);
    remove_stale();
    status
}
