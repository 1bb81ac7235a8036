//! The QEMU command line.
//!
//! [`VmConfig`] describes a VM; [`VmConfig::command`] turns it into a
//! [`std::process::Command`]. Serial ports, in this order:
//! * ttyS0, the kernel console: a log file written by QEMU
//!   ([`ConsoleMode::LogFile`], what [`Machine`](crate::Machine) uses) or the
//!   terminal multiplexed with the QEMU monitor ([`ConsoleMode::Stdio`],
//!   `cargo xtask vm`; Ctrl-A X quits, Ctrl-A C toggles the monitor);
//! * ttyS1, the command channel ([`crate::channel`]): a unix socket server
//!   `command.sock` in the runtime directory;
//! * ttyS2, only with [`VmConfig::with_trace_stream`]: the guest's irq trace
//!   (/init copies `trace_pipe` there, see [`crate::trace`]), a unix socket
//!   server `trace.sock` in the runtime directory (`cargo xtask trace`).
//!
//! QMP is a unix socket server `qmp.sock` in the same runtime directory, and
//! so is QEMU's gdb stub, `gdb.sock`, with [`VmConfig::with_gdb_stub`] (gdb
//! connects to a unix socket with `target remote <path>`; every VM has its
//! own runtime directory, so two never collide on a port).
//! The kernel command line always starts with [`BASE_CMDLINE`], and
//! `-no-reboot` makes a panicking guest end QEMU instead of rebooting.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::accel::{self, Accel};
use crate::artifacts::Artifacts;
use crate::{Error, Result};

/// The kernel command line every VM starts with. `no_timer_check` skips the
/// kernel's check that the timer interrupt arrives through the IO-APIC
/// (QEMU wires it right): on a loaded TCG host the check can miss its
/// ticks and panic the guest (`IO-APIC + timer doesn't work!`, seen once in
/// about 20 boots at a load average of 4).
pub const BASE_CMDLINE: &str = "console=ttyS0 panic=-1 no_timer_check";
/// Name of the QMP socket in the runtime directory.
pub const QMP_SOCKET: &str = "qmp.sock";
/// Name of the command channel socket in the runtime directory.
pub const COMMAND_SOCKET: &str = "command.sock";
/// Name of the gdb stub's socket in the runtime directory.
pub const GDB_SOCKET: &str = "gdb.sock";
/// Name of the trace stream's socket (ttyS2) in the runtime directory.
pub const TRACE_SOCKET: &str = "trace.sock";
/// Added to the kernel command line with a gdb stub: the kernel stays where
/// vmlinux says it is, so gdb's symbols match (a no-op for a kernel built
/// without `CONFIG_RANDOMIZE_BASE`).
pub const GDB_CMDLINE: &str = "nokaslr";
/// Added to the kernel command line with a trace stream: /init enables the
/// irq tracepoints and copies `trace_pipe` to ttyS2.
pub const TRACE_CMDLINE: &str = "lab.trace";

/// QEMU's gdb stub ([`VmConfig::with_gdb_stub`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdbStub {
    /// The guest runs from the start; gdb may attach at any time.
    Running,
    /// QEMU stops before the first instruction (`-S`) until gdb continues
    /// it. [`Machine::start`](crate::Machine::start) would wait for a guest
    /// that does not run: this is for `cargo xtask vm --gdb-wait`.
    WaitForGdb,
}

/// The QEMU machine type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineType {
    /// i440FX + PIIX (`-machine pc`).
    #[default]
    Pc,
    /// Q35 + ICH9 (`-machine q35`).
    Q35,
}

impl MachineType {
    /// QEMU's name.
    pub fn name(self) -> &'static str {
        match self {
            MachineType::Pc => "pc",
            MachineType::Q35 => "q35",
        }
    }
}

/// What the VM's screen is shown on. Keys typed into a window (or a VNC
/// viewer) reach the guest's PS/2 keyboard.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Display {
    /// No screen and no VGA card (`-display none`): tests, and `vm` without
    /// `--gui`.
    #[default]
    None,
    /// A GTK window on the user's display (`-display gtk`, named so that
    /// QEMU fails instead of falling back to VNC when it has no GTK).
    Window,
    /// A VNC server at this `host:display` (e.g. `127.0.0.1:0`, port 5900).
    Vnc(String),
}

/// Where the kernel console (ttyS0) goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleMode {
    /// QEMU writes the console to this file (tests).
    LogFile(PathBuf),
    /// The console and the QEMU monitor share the terminal (interactive);
    /// with `log`, QEMU also copies the console output into that file.
    Stdio {
        /// Optional copy of the console output.
        log: Option<PathBuf>,
    },
}

/// A VM description, built with [`VmConfig::new`] (or
/// [`VmConfig::from_artifacts`]) and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The QEMU binary (default `qemu-system-x86_64`, looked up in `PATH`).
    pub(crate) qemu: PathBuf,
    /// The kernel (`bzImage`).
    pub(crate) kernel: PathBuf,
    /// The initramfs.
    pub(crate) initramfs: PathBuf,
    /// An ACPI table passed with `-acpitable file=` (the lab's SSDT).
    pub(crate) ssdt: Option<PathBuf>,
    /// Extra kernel command line arguments, after [`BASE_CMDLINE`].
    pub(crate) append: Vec<String>,
    /// Guest memory in MiB.
    pub(crate) memory_mib: u32,
    /// Number of vCPUs.
    pub(crate) cpus: u32,
    /// The machine type.
    pub(crate) machine: MachineType,
    /// The accelerator.
    pub(crate) accel: Accel,
    /// Where the screen is shown.
    pub(crate) display: Display,
    /// Where ttyS0 goes.
    pub(crate) console: ConsoleMode,
    /// Directory of `qmp.sock` and `command.sock`, if not the default.
    pub(crate) runtime_dir: Option<PathBuf>,
    /// Extra QEMU arguments, appended last.
    pub(crate) extra_args: Vec<OsString>,
    /// Name of the VM in log file names.
    pub(crate) name: Option<String>,
    /// How long `Machine::start` waits for the guest to become ready.
    pub(crate) boot_timeout: Duration,
    /// Kernel reports the test expects from the first console line on.
    pub(crate) expected_reports: Vec<String>,
    /// QEMU's gdb stub on `gdb.sock`, if any.
    pub(crate) gdb_stub: Option<GdbStub>,
    /// Whether ttyS2 streams the guest's irq trace to `trace.sock`.
    pub(crate) trace_stream: bool,
    /// Whether to restore a saved machine instead of booting
    /// ([`crate::snapshot`]).
    pub(crate) snapshot: bool,
}

impl VmConfig {
    /// A VM booting `kernel` and `initramfs` without SSDT, with the defaults:
    /// 256 MiB, 1 vCPU, `pc`, accelerator from [`accel::chosen`] (decided
    /// once per process, `LAB_ACCEL` honoured), no GUI, console to stdio,
    /// boot timeout 120 s.
    pub fn new(kernel: impl Into<PathBuf>, initramfs: impl Into<PathBuf>) -> Result<Self> {
        Ok(VmConfig {
            qemu: PathBuf::from("qemu-system-x86_64"),
            kernel: kernel.into(),
            initramfs: initramfs.into(),
            ssdt: None,
            append: Vec::new(),
            memory_mib: 256,
            cpus: 1,
            machine: MachineType::Pc,
            accel: accel::chosen()?,
            display: Display::None,
            console: ConsoleMode::Stdio { log: None },
            runtime_dir: None,
            extra_args: Vec::new(),
            name: None,
            boot_timeout: Duration::from_secs(120),
            expected_reports: Vec::new(),
            gdb_stub: None,
            trace_stream: false,
            snapshot: false,
        })
    }

    /// The lab VM from an artifact directory: its kernel, initramfs and
    /// SSDT (`acpi/ssdt.aml`), with the defaults of [`VmConfig::new`].
    pub fn from_artifacts(artifacts: &Artifacts) -> Result<Self> {
        Ok(Self::new(artifacts.kernel()?, artifacts.initramfs()?)?
            .with_ssdt(Some(artifacts.ssdt()?)))
    }

    /// The VM of another kernel of `kernel/kernels.toml` (e.g. `debug`):
    /// its kernel and initramfs, the real SSDT, the defaults of
    /// [`VmConfig::new`]. `from_artifacts` is this for the lab kernel.
    pub fn from_artifacts_of(artifacts: &Artifacts, kernel: &str) -> Result<Self> {
        Ok(Self::new(
            artifacts.kernel_of(kernel)?,
            artifacts.initramfs_of(kernel)?,
        )?
        .with_ssdt(Some(artifacts.ssdt()?)))
    }

    /// Expects a kernel report from boot on: a console line that contains
    /// `pattern` and would fail the test ([`crate::console::KERNEL_PROBLEMS`])
    /// does not; the test checks it instead (`Machine::wait_for_kernel_report`).
    pub fn expect_kernel_report(mut self, pattern: &str) -> Self {
        self.expected_reports.push(pattern.to_owned());
        self
    }

    /// Uses another QEMU binary (default `qemu-system-x86_64`, looked up in
    /// `PATH`).
    pub fn with_qemu(mut self, qemu: impl Into<PathBuf>) -> Self {
        self.qemu = qemu.into();
        self
    }

    /// Adds kernel command line arguments (split on whitespace), after
    /// [`BASE_CMDLINE`] and the arguments added before.
    pub fn with_append(mut self, args: &str) -> Self {
        self.append
            .extend(args.split_whitespace().map(str::to_owned));
        self
    }

    /// Replaces the ACPI table passed with `-acpitable file=` (`None`: no
    /// SSDT at all).
    pub fn with_ssdt(mut self, ssdt: Option<PathBuf>) -> Self {
        self.ssdt = ssdt;
        self
    }

    /// Sets the machine type.
    pub fn with_machine(mut self, machine: MachineType) -> Self {
        self.machine = machine;
        self
    }

    /// Sets the guest memory in MiB (at least 64).
    pub fn with_memory(mut self, mib: u32) -> Self {
        self.memory_mib = mib;
        self
    }

    /// Sets the number of vCPUs (at least 1).
    pub fn with_cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// Sets the accelerator (e.g. from [`accel::choose`]).
    pub fn with_accel(mut self, accel: Accel) -> Self {
        self.accel = accel;
        self
    }

    /// Shows the screen (with a VGA card) on `display`: keys typed into
    /// it reach the guest's PS/2 keyboard. The default is [`Display::None`].
    pub fn with_display(mut self, display: Display) -> Self {
        self.display = display;
        self
    }

    /// Sets where ttyS0 goes. [`Machine`](crate::Machine) always uses a log
    /// file of its own and ignores this.
    pub fn with_console(mut self, console: ConsoleMode) -> Self {
        self.console = console;
        self
    }

    /// Puts `qmp.sock` and `command.sock` into `dir`. Without it,
    /// [`Machine`](crate::Machine) uses a fresh temporary directory.
    pub fn with_runtime_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.runtime_dir = Some(dir.into());
        self
    }

    /// Adds QEMU arguments, appended after all others.
    pub fn with_extra_args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Names the VM in log file names (default: the current test's name).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets how long [`Machine::start`](crate::Machine::start) waits for the
    /// guest to become ready (default 120 s).
    pub fn with_boot_timeout(mut self, timeout: Duration) -> Self {
        self.boot_timeout = timeout;
        self
    }

    /// Starts QEMU's gdb stub on `gdb.sock` in the runtime directory
    /// ([`VmConfig::gdb_socket`]), and boots with [`GDB_CMDLINE`].
    pub fn with_gdb_stub(mut self, stub: GdbStub) -> Self {
        self.gdb_stub = Some(stub);
        self
    }

    /// Adds ttyS2 as a unix socket server `trace.sock` in the runtime
    /// directory ([`VmConfig::trace_socket`]) and boots with
    /// [`TRACE_CMDLINE`]: /init streams the irq tracepoints of IRQ 1 there.
    /// Nobody needs to listen: QEMU drops what no client reads.
    pub fn with_trace_stream(mut self) -> Self {
        self.trace_stream = true;
        self
    }

    /// Restores the machine saved by an earlier start of the same
    /// configuration instead of booting, or boots and saves it at ready if
    /// there is none ([`crate::snapshot`]: isolation is a fresh boot's; the
    /// console log of a restored machine starts at the restore, so a test
    /// that reads the boot's console lines must not ask for this).
    pub fn with_snapshot(mut self) -> Self {
        self.snapshot = true;
        self
    }

    /// The accelerator this VM will run with.
    pub fn accel(&self) -> &Accel {
        &self.accel
    }

    /// The gdb stub, if any.
    pub fn gdb_stub(&self) -> Option<GdbStub> {
        self.gdb_stub
    }

    /// The full kernel command line: [`BASE_CMDLINE`], [`GDB_CMDLINE`] with
    /// a gdb stub, [`TRACE_CMDLINE`] with a trace stream, then the
    /// appended arguments.
    pub fn kernel_cmdline(&self) -> String {
        let mut cmdline = BASE_CMDLINE.to_owned();
        let implied = [
            self.gdb_stub.map(|_| GDB_CMDLINE),
            self.trace_stream.then_some(TRACE_CMDLINE),
        ];
        for arg in implied
            .into_iter()
            .flatten()
            .chain(self.append.iter().map(String::as_str))
        {
            cmdline.push(' ');
            cmdline.push_str(arg);
        }
        cmdline
    }

    /// The QMP socket path for a runtime directory.
    pub fn qmp_socket(runtime_dir: &Path) -> PathBuf {
        runtime_dir.join(QMP_SOCKET)
    }

    /// The command channel socket path for a runtime directory.
    pub fn command_socket(runtime_dir: &Path) -> PathBuf {
        runtime_dir.join(COMMAND_SOCKET)
    }

    /// The gdb stub's socket path for a runtime directory (`target remote
    /// <path>` in gdb).
    pub fn gdb_socket(runtime_dir: &Path) -> PathBuf {
        runtime_dir.join(GDB_SOCKET)
    }

    /// The trace stream's socket path for a runtime directory.
    pub fn trace_socket(runtime_dir: &Path) -> PathBuf {
        runtime_dir.join(TRACE_SOCKET)
    }

    /// The sockets QEMU creates in `runtime_dir` for this VM.
    pub fn sockets(&self, runtime_dir: &Path) -> Vec<PathBuf> {
        let mut sockets = vec![
            Self::qmp_socket(runtime_dir),
            Self::command_socket(runtime_dir),
        ];
        if self.gdb_stub.is_some() {
            sockets.push(Self::gdb_socket(runtime_dir));
        }
        if self.trace_stream {
            sockets.push(Self::trace_socket(runtime_dir));
        }
        sockets
    }

    /// The QEMU arguments (without the program) for sockets in
    /// `runtime_dir`: the parts below, in this order, then the extra
    /// arguments.
    pub fn args(&self, runtime_dir: &Path) -> Result<Vec<OsString>> {
        self.check(runtime_dir)?;
        Ok([
            self.machine_args(),
            self.kernel_args(),
            self.acpi_args(),
            self.display_args(),
            qmp_args(&Self::qmp_socket(runtime_dir)),
            self.console_args(),
            self.channel_args(&Self::command_socket(runtime_dir)),
            self.trace_args(&Self::trace_socket(runtime_dir)),
            self.gdb_args(&Self::gdb_socket(runtime_dir)),
            self.extra_args.clone(),
        ]
        .concat())
    }

    /// Fails on what QEMU or the kernel would reject less clearly: socket
    /// paths beyond `sun_path`, too little memory, no CPU.
    fn check(&self, runtime_dir: &Path) -> Result<()> {
        for path in self.sockets(runtime_dir) {
            let len = path.as_os_str().len();
            if len > 107 {
                return Err(Error::SocketPathTooLong { path, len });
            }
        }
        if self.memory_mib < 64 {
            return Err(Error::Config(format!(
                "{} MiB of memory is too little",
                self.memory_mib
            )));
        }
        if self.cpus == 0 {
            return Err(Error::Config("at least one CPU is needed".into()));
        }
        Ok(())
    }

    /// The bare machine: no default devices or config files, no reboot (a
    /// panicking guest ends QEMU), machine type, accelerator, memory, CPUs.
    fn machine_args(&self) -> Vec<OsString> {
        let mut a = os_args(&[
            "-name",
            "rust-kbd-lab",
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-machine",
            self.machine.name(),
        ]);
        a.extend(self.accel.qemu_args().into_iter().map(OsString::from));
        a.extend(os_args(&[
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ]));
        a
    }

    /// Direct kernel boot: kernel, initramfs, [`VmConfig::kernel_cmdline`].
    fn kernel_args(&self) -> Vec<OsString> {
        vec![
            "-kernel".into(),
            self.kernel.clone().into_os_string(),
            "-initrd".into(),
            self.initramfs.clone().into_os_string(),
            "-append".into(),
            self.kernel_cmdline().into(),
        ]
    }

    /// The SSDT, if any, as an extra ACPI table.
    fn acpi_args(&self) -> Vec<OsString> {
        match &self.ssdt {
            Some(ssdt) => vec!["-acpitable".into(), opt("file=", ssdt, "")],
            None => Vec::new(),
        }
    }

    /// With a GUI a VGA card and QEMU's default display, else neither.
    fn display_args(&self) -> Vec<OsString> {
        match &self.display {
            Display::None => os_args(&["-vga", "none", "-display", "none"]),
            Display::Window => os_args(&["-vga", "std", "-display", "gtk"]),
            Display::Vnc(at) => vec![
                "-vga".into(),
                "std".into(),
                "-display".into(),
                format!("vnc={at}").into(),
            ],
        }
    }

    /// ttyS0, the console: a log file, or stdio multiplexed with the QEMU
    /// monitor (optionally copied into a log file).
    fn console_args(&self) -> Vec<OsString> {
        match &self.console {
            ConsoleMode::LogFile(path) => vec![
                "-chardev".into(),
                opt("file,id=con0,path=", path, ""),
                "-serial".into(),
                "chardev:con0".into(),
            ],
            ConsoleMode::Stdio { log } => {
                let chardev = match log {
                    Some(log) => opt("stdio,id=con0,mux=on,signal=off,logfile=", log, ""),
                    None => "stdio,id=con0,mux=on,signal=off".into(),
                };
                let mut a = vec!["-chardev".into(), chardev];
                a.extend(os_args(&[
                    "-serial",
                    "chardev:con0",
                    "-mon",
                    "chardev=con0,mode=readline",
                ]));
                a
            }
        }
    }

    /// ttyS1, the command channel: a unix socket server at `path`.
    ///
    /// With the console in a log file (tests) QEMU waits for a client on it
    /// before it starts the guest (`wait=on`), so nothing the guest says is
    /// lost; with the console on stdio (interactive) it does not.
    fn channel_args(&self, path: &Path) -> Vec<OsString> {
        let wait = match self.console {
            ConsoleMode::LogFile(_) => "on",
            ConsoleMode::Stdio { .. } => "off",
        };
        vec![
            "-chardev".into(),
            opt(
                "socket,id=cmd0,path=",
                path,
                &format!(",server=on,wait={wait}"),
            ),
            "-serial".into(),
            "chardev:cmd0".into(),
        ]
    }

    /// ttyS2, the trace stream, if on: a unix socket server at `path`,
    /// never waited for (the guest must not block on a trace nobody reads).
    fn trace_args(&self, path: &Path) -> Vec<OsString> {
        if !self.trace_stream {
            return Vec::new();
        }
        vec![
            "-chardev".into(),
            opt("socket,id=trace0,path=", path, ",server=on,wait=off"),
            "-serial".into(),
            "chardev:trace0".into(),
        ]
    }

    /// The gdb stub, if any: a unix socket server at `path` (not waited
    /// for: QEMU starts without a client), and `-S` to stop before the
    /// first instruction when gdb is to be waited for.
    fn gdb_args(&self, path: &Path) -> Vec<OsString> {
        let Some(stub) = self.gdb_stub else {
            return Vec::new();
        };
        let mut a = vec![
            "-chardev".into(),
            opt("socket,id=gdb0,path=", path, ",server=on,wait=off"),
            "-gdb".into(),
            "chardev:gdb0".into(),
        ];
        if stub == GdbStub::WaitForGdb {
            a.push("-S".into());
        }
        a
    }

    /// The QEMU command for sockets in `runtime_dir`.
    ///
    /// Stdio is left as inherited; the child gets `PR_SET_PDEATHSIG =
    /// SIGKILL`, so it dies with the thread that spawned it.
    pub fn command(&self, runtime_dir: &Path) -> Result<Command> {
        let mut command = Command::new(&self.qemu);
        command.args(self.args(runtime_dir)?);
        kill_with_parent(&mut command);
        Ok(command)
    }

    /// The command line as one shell-like string, for logs and messages.
    pub fn command_line(&self, runtime_dir: &Path) -> Result<String> {
        let args = self.args(runtime_dir)?;
        let mut line = shell_quote(&self.qemu.to_string_lossy());
        for arg in args {
            line.push(' ');
            line.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        Ok(line)
    }
}

/// Makes the child get SIGKILL when the thread that spawned it dies.
pub fn kill_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid, _exit) on plain integers.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// A helpful error for a failed spawn of QEMU.
pub(crate) fn spawn_error(qemu: &Path, e: std::io::Error) -> Error {
    let hint = if e.kind() == std::io::ErrorKind::NotFound {
        " (install it: `apt-get install qemu-system-x86` on Debian, or use the flake's dev shell)"
    } else {
        ""
    };
    Error::io(format!("cannot start {}{hint}", qemu.display()), e)
}

/// QMP: a unix socket server at `path` (not waited for) on a control monitor.
fn qmp_args(path: &Path) -> Vec<OsString> {
    vec![
        "-chardev".into(),
        opt("socket,id=qmp0,path=", path, ",server=on,wait=off"),
        "-mon".into(),
        "chardev=qmp0,mode=control".into(),
    ]
}

fn os_args(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// `prefix` + path with QEMU option escaping (`,` doubled) + `suffix`.
fn opt(prefix: &str, path: &Path, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(escape_opt(path));
    s.push(suffix);
    s
}

fn escape_opt(path: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::new();
    for &b in path.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

pub(crate) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accel::AccelKind;

    fn config() -> VmConfig {
        VmConfig {
            qemu: "qemu-system-x86_64".into(),
            kernel: "/a/bzImage".into(),
            initramfs: "/a/initramfs.cpio".into(),
            ssdt: Some("/a/acpi/ssdt,1.aml".into()),
            append: vec!["lab.nomodule".into()],
            memory_mib: 256,
            cpus: 1,
            machine: MachineType::Pc,
            accel: Accel::tcg("test"),
            display: Display::None,
            console: ConsoleMode::LogFile("/logs/t.console.log".into()),
            runtime_dir: None,
            extra_args: vec![],
            name: None,
            boot_timeout: Duration::from_secs(5),
            expected_reports: vec![],
            gdb_stub: None,
            trace_stream: false,
            snapshot: false,
        }
    }

    fn kvm() -> Accel {
        Accel {
            kind: AccelKind::Kvm,
            reason: "test".into(),
        }
    }

    fn args(c: &VmConfig) -> Vec<String> {
        c.args(Path::new("/run/x"))
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    /// The value following `flag` (first occurrence).
    fn after<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    /// The whole argument list of a test VM, pinned: refactoring `args()`
    /// must not change a single argument or their order.
    #[test]
    fn full_command_line_of_a_test_vm() {
        assert_eq!(
            args(&config()),
            [
                "-name",
                "rust-kbd-lab",
                "-nodefaults",
                "-no-user-config",
                "-no-reboot",
                "-machine",
                "pc",
                "-accel",
                "tcg",
                "-m",
                "256",
                "-smp",
                "1",
                "-kernel",
                "/a/bzImage",
                "-initrd",
                "/a/initramfs.cpio",
                "-append",
                "console=ttyS0 panic=-1 no_timer_check lab.nomodule",
                "-acpitable",
                "file=/a/acpi/ssdt,,1.aml",
                "-vga",
                "none",
                "-display",
                "none",
                "-chardev",
                "socket,id=qmp0,path=/run/x/qmp.sock,server=on,wait=off",
                "-mon",
                "chardev=qmp0,mode=control",
                "-chardev",
                "file,id=con0,path=/logs/t.console.log",
                "-serial",
                "chardev:con0",
                "-chardev",
                "socket,id=cmd0,path=/run/x/command.sock,server=on,wait=on",
                "-serial",
                "chardev:cmd0",
            ]
        );
    }

    /// The whole argument list of an interactive VM with every option set,
    /// pinned like [`full_command_line_of_a_test_vm`].
    #[test]
    fn full_command_line_of_an_interactive_vm() {
        let mut c = config()
            .with_ssdt(None)
            .with_memory(512)
            .with_cpus(2)
            .with_machine(MachineType::Q35)
            .with_accel(kvm())
            .with_display(Display::Window)
            .with_console(ConsoleMode::Stdio {
                log: Some("/l/vm,1.log".into()),
            })
            .with_extra_args(["-s", "-S"]);
        c.append.clear();
        assert_eq!(
            args(&c),
            [
                "-name",
                "rust-kbd-lab",
                "-nodefaults",
                "-no-user-config",
                "-no-reboot",
                "-machine",
                "q35",
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-m",
                "512",
                "-smp",
                "2",
                "-kernel",
                "/a/bzImage",
                "-initrd",
                "/a/initramfs.cpio",
                "-append",
                "console=ttyS0 panic=-1 no_timer_check",
                "-vga",
                "std",
                "-display",
                "gtk",
                "-chardev",
                "socket,id=qmp0,path=/run/x/qmp.sock,server=on,wait=off",
                "-mon",
                "chardev=qmp0,mode=control",
                "-chardev",
                "stdio,id=con0,mux=on,signal=off,logfile=/l/vm,,1.log",
                "-serial",
                "chardev:con0",
                "-mon",
                "chardev=con0,mode=readline",
                "-chardev",
                "socket,id=cmd0,path=/run/x/command.sock,server=on,wait=off",
                "-serial",
                "chardev:cmd0",
                "-s",
                "-S",
            ]
        );
        let c = c.with_console(ConsoleMode::Stdio { log: None });
        assert_eq!(
            after(&args(&c), "-chardev")[1],
            "stdio,id=con0,mux=on,signal=off"
        );
    }

    #[test]
    fn test_mode_command_line() {
        let a = args(&config());
        assert_eq!(
            after(&a, "-append"),
            ["console=ttyS0 panic=-1 no_timer_check lab.nomodule"]
        );
        assert_eq!(after(&a, "-acpitable"), ["file=/a/acpi/ssdt,,1.aml"]);
        assert_eq!(after(&a, "-machine"), ["pc"]);
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        assert!(!a.iter().any(|x| x == "kvm"));
        assert!(a.contains(&"-no-reboot".to_owned()));
        assert_eq!(after(&a, "-display"), ["none"]);
        assert_eq!(after(&a, "-m"), ["256"]);
        assert_eq!(
            after(&a, "-chardev"),
            [
                "socket,id=qmp0,path=/run/x/qmp.sock,server=on,wait=off",
                "file,id=con0,path=/logs/t.console.log",
                "socket,id=cmd0,path=/run/x/command.sock,server=on,wait=on",
            ]
        );
        // ttyS0 is the console, ttyS1 the command channel, in that order.
        assert_eq!(after(&a, "-serial"), ["chardev:con0", "chardev:cmd0"]);
        assert_eq!(after(&a, "-mon"), ["chardev=qmp0,mode=control"]);
    }

    #[test]
    fn interactive_and_gui() {
        let c = config()
            .with_console(ConsoleMode::Stdio {
                log: Some("/l/vm.log".into()),
            })
            .with_display(Display::Window)
            .with_ssdt(None)
            .with_machine(MachineType::Q35)
            .with_accel(kvm());
        let a = args(&c);
        assert!(!a.contains(&"-acpitable".to_owned()));
        assert_eq!(
            after(&a, "-display"),
            ["gtk"],
            "a window, never a VNC fallback"
        );
        assert_eq!(after(&a, "-vga"), ["std"]);
        let vnc = args(&c.with_display(Display::Vnc("127.0.0.1:0".into())));
        assert_eq!(after(&vnc, "-display"), ["vnc=127.0.0.1:0"]);
        assert_eq!(after(&a, "-machine"), ["q35"]);
        assert_eq!(after(&a, "-accel"), ["kvm"]);
        assert_eq!(after(&a, "-cpu"), ["host"]);
        assert_eq!(
            after(&a, "-chardev")[1..],
            [
                "stdio,id=con0,mux=on,signal=off,logfile=/l/vm.log",
                "socket,id=cmd0,path=/run/x/command.sock,server=on,wait=off",
            ]
        );
        assert_eq!(
            after(&a, "-mon"),
            ["chardev=qmp0,mode=control", "chardev=con0,mode=readline"]
        );
    }

    /// A gdb stub on a unix socket of the runtime directory (waited for or
    /// not), `nokaslr`, and the trace stream as ttyS2, after the command
    /// channel (ttyS1): all three serial ports in order.
    #[test]
    fn gdb_stub_and_trace_stream() {
        let c = config().with_gdb_stub(GdbStub::Running);
        let a = args(&c);
        assert_eq!(
            after(&a, "-append"),
            ["console=ttyS0 panic=-1 no_timer_check nokaslr lab.nomodule"]
        );
        assert_eq!(
            after(&a, "-chardev")[3],
            "socket,id=gdb0,path=/run/x/gdb.sock,server=on,wait=off"
        );
        assert_eq!(after(&a, "-gdb"), ["chardev:gdb0"]);
        assert!(!a.contains(&"-S".to_owned()), "{a:?}");
        let waiting = args(&config().with_gdb_stub(GdbStub::WaitForGdb));
        assert_eq!(waiting.last().map(String::as_str), Some("-S"));

        let t = args(&config().with_trace_stream());
        assert_eq!(
            after(&t, "-append"),
            ["console=ttyS0 panic=-1 no_timer_check lab.trace lab.nomodule"]
        );
        assert_eq!(
            after(&t, "-serial"),
            ["chardev:con0", "chardev:cmd0", "chardev:trace0"]
        );
        assert_eq!(
            after(&t, "-chardev")[3],
            "socket,id=trace0,path=/run/x/trace.sock,server=on,wait=off"
        );
        assert!(!t.contains(&"-gdb".to_owned()));

        let both = config().with_trace_stream().with_gdb_stub(GdbStub::Running);
        assert_eq!(
            both.sockets(Path::new("/r")),
            [
                PathBuf::from("/r/qmp.sock"),
                "/r/command.sock".into(),
                "/r/gdb.sock".into(),
                "/r/trace.sock".into()
            ]
        );
    }

    #[test]
    fn cmdline_helpers_and_errors() {
        let c = config()
            .with_append("foo=1  bar")
            .with_machine(MachineType::Q35)
            .with_ssdt(None);
        assert_eq!(
            c.kernel_cmdline(),
            "console=ttyS0 panic=-1 no_timer_check lab.nomodule foo=1 bar"
        );
        let long = PathBuf::from(format!("/{}", "d".repeat(100)));
        assert!(matches!(
            c.args(&long),
            Err(Error::SocketPathTooLong { .. })
        ));
        let line = config()
            .with_qemu("/opt/qemu/bin/qemu-system-x86_64")
            .command_line(Path::new("/run/x"))
            .unwrap();
        assert!(
            line.contains("-append 'console=ttyS0 panic=-1 no_timer_check lab.nomodule'"),
            "{line}"
        );
        assert!(
            line.starts_with("/opt/qemu/bin/qemu-system-x86_64 -name "),
            "{line}"
        );
        assert!(config().with_cpus(0).args(Path::new("/r")).is_err());
        assert!(config().with_memory(32).args(Path::new("/r")).is_err());
    }
}
