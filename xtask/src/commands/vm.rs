//! `cargo xtask vm` (and `nix run .#vm`): boots the lab's VM in the
//! foreground with the console on this terminal and its sockets in the
//! cache's runtime directory: QMP, where `cargo xtask keys` finds it, the
//! gdb stub (`--gdb`, for `cargo xtask gdb`) and the trace stream
//! (`--trace`, for `cargo xtask trace`), described for those commands by
//! `vm.json` ([`RunningVm`]) while the VM runs.

use crate::cli::{BuildArgs, VmArgs};
use crate::exec::{self, cmd};
use crate::host::Host;
use crate::paths::Cache;
use crate::provision;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vm_tests::{Artifacts, ConsoleMode, Display, GdbStub, MachineType, VmConfig};

/// The QEMU the VM runs (`VmConfig`'s default).
const QEMU: &str = "qemu-system-x86_64";

/// The running VM as `cargo xtask gdb` and `cargo xtask trace` need it:
/// `vm.json` in the runtime directory, written when the VM starts and
/// removed when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningVm {
    /// The kernel's name in kernel/kernels.toml.
    pub kernel: String,
    /// Its directory in the artifact directory (bzImage, the `.ko` files).
    pub kernel_dir: PathBuf,
    /// Its `O=` tree on this host (vmlinux), if the manifest names the
    /// kernel version.
    pub kernel_tree: Option<PathBuf>,
    /// The gdb stub's socket, with `--gdb` or `--gdb-wait`.
    pub gdb_socket: Option<PathBuf>,
    /// The trace stream's socket, with `--trace`.
    pub trace_socket: Option<PathBuf>,
}

impl RunningVm {
    /// The file in `runtime_dir`.
    fn file(runtime_dir: &Path) -> PathBuf {
        runtime_dir.join("vm.json")
    }

    /// The VM of `cargo xtask vm` whose runtime directory is `runtime_dir`,
    /// if it runs (its QMP socket answers); `start` says how to start one.
    pub fn load(runtime_dir: &Path, start: &str) -> Result<Self> {
        let qmp = VmConfig::qmp_socket(runtime_dir);
        if std::os::unix::net::UnixStream::connect(&qmp).is_err() {
            bail!(
                "no lab VM is running (nothing answers on {}): start one with `{start}`",
                qmp.display()
            );
        }
        let file = Self::file(runtime_dir);
        let text = std::fs::read_to_string(&file).with_context(|| {
            format!(
                "a VM answers on {} but {} is missing: was it started by an older `cargo xtask vm`? \
                 Restart it with `{start}`",
                qmp.display(),
                file.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("cannot read {}", file.display()))
    }

    /// Writes the file into `runtime_dir`.
    fn save(&self, runtime_dir: &Path) -> Result<()> {
        let file = Self::file(runtime_dir);
        std::fs::write(&file, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", file.display()))
    }
}

/// Builds if needed, then boots.
pub fn run(args: &VmArgs) -> Result<()> {
    let kernel = args.kernel.as_str();
    let build = BuildArgs {
        jobs: args.jobs,
        kernels: if kernel == vm_tests::artifacts::LAB_KERNEL {
            Vec::new()
        } else {
            vec![kernel.to_owned()]
        },
    };
    let dir = super::artifacts(args.no_build, &build, false)?;
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
    let mut config = VmConfig::new(
        artifacts.kernel_of(kernel)?,
        artifacts.initramfs_of(kernel)?,
    )?
    .with_ssdt(ssdt)
    .with_accel(vm_tests::accel::choose(args.accel.as_deref())?)
    .with_machine(machine)
    .with_memory(args.memory)
    .with_display(display.clone())
    .with_append(&args.append)
    .with_console(ConsoleMode::Stdio {
        log: Some(log.clone()),
    });
    match (args.gdb, args.gdb_wait) {
        (_, true) => config = config.with_gdb_stub(GdbStub::WaitForGdb),
        (true, false) => config = config.with_gdb_stub(GdbStub::Running),
        (false, false) => {}
    }
    if args.trace {
        config = config.with_trace_stream();
    }
    let runtime = cache.vm_runtime();
    let running = RunningVm {
        kernel: kernel.to_owned(),
        kernel_dir: artifacts.layout().kernel_dir(kernel),
        kernel_tree: artifacts
            .kernel_version()
            .ok()
            .map(|v| vm_tests::artifacts::find_kernel_tree(&cache.root, &v, kernel)),
        gdb_socket: config.gdb_stub().map(|_| VmConfig::gdb_socket(&runtime)),
        trace_socket: args.trace.then(|| VmConfig::trace_socket(&runtime)),
    };
    eprintln!(
        "vm: booting the {kernel} kernel of {} (console log: {})",
        dir.display(),
        log.display()
    );
    if let Some(socket) = &running.gdb_socket {
        announce_gdb(&running, socket, args.gdb_wait);
    }
    if let Some(socket) = &running.trace_socket {
        eprintln!(
            "vm: the irq tracepoints of IRQ 1 stream to {}: watch them with `cargo xtask trace`",
            socket.display()
        );
    }
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
    let status = run_in_foreground(&config, &runtime, &running)?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}

/// Says where the gdb stub is and how to attach, and warns when the kernel
/// has nothing for gdb to read.
fn announce_gdb(running: &RunningVm, socket: &Path, waits: bool) {
    if waits {
        eprintln!(
            "vm: QEMU waits for gdb before the first instruction: nothing happens on \
             this console until gdb continues the VM"
        );
    }
    eprintln!(
        "vm: gdb stub on {}: attach with `cargo xtask gdb` in another terminal (or `gdb vmlinux \
         -ex 'target remote {}'`)",
        socket.display(),
        socket.display()
    );
    let tree = running.kernel_tree.clone().unwrap_or_default();
    if let Err(e) = vm_tests::gdb::DebugKernel::new(&running.kernel, &tree, &running.kernel_dir) {
        eprintln!("vm: warning: {e}");
    }
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
/// answers on that QMP socket; stale sockets are removed before and after,
/// and `running` is in `vm.json` while QEMU runs.
fn run_in_foreground(
    config: &VmConfig,
    runtime_dir: &Path,
    running: &RunningVm,
) -> Result<std::process::ExitStatus> {
    std::fs::create_dir_all(runtime_dir)
        .with_context(|| format!("cannot create {}", runtime_dir.display()))?;
    let qmp = VmConfig::qmp_socket(runtime_dir);
    if std::os::unix::net::UnixStream::connect(&qmp).is_ok() {
        bail!(
            "another lab VM is running (its QMP socket {} answers); stop it first",
            qmp.display()
        );
    }
    let mut stale = config.sockets(runtime_dir);
    stale.extend([
        VmConfig::gdb_socket(runtime_dir),
        VmConfig::trace_socket(runtime_dir),
        RunningVm::file(runtime_dir),
    ]);
    let remove_stale = || {
        for file in &stale {
            let _ = std::fs::remove_file(file);
        }
    };
    remove_stale();
    running.save(runtime_dir)?;
    eprintln!("vm: accelerator {}", config.accel());
    eprintln!("vm: QMP socket {} (cargo xtask keys)", qmp.display());
    eprintln!("vm: Ctrl-A X quits QEMU, Ctrl-A C switches to the QEMU monitor");
    let status = exec::run_attached(&mut config.command(runtime_dir)?);
    remove_stale();
    status
}
