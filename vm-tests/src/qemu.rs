//! The QEMU command line.
//!
//! [`VmConfig`] describes a VM; [`VmConfig::command`] turns it into a
//! [`std::process::Command`]. Serial ports, in this order:
//! * ttyS0, the kernel console: a log file written by QEMU
//!   ([`ConsoleMode::LogFile`], what [`Machine`](crate::Machine) uses) or the
//!   terminal multiplexed with the QEMU monitor ([`ConsoleMode::Stdio`],
//!   `cargo xtask vm`; Ctrl-A X quits, Ctrl-A C toggles the monitor);
//! * ttyS1, the command channel ([`crate::channel`]): a unix socket server
//!   `command.sock` in the runtime directory.
//!
//! QMP is a unix socket server `qmp.sock` in the same runtime directory.
//! The kernel command line always starts with `console=ttyS0 panic=-1`, and
//! `-no-reboot` makes a panicking guest end QEMU instead of rebooting.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::accel::{self, Accel};
use crate::artifacts::{self, Artifacts};
use crate::{Error, Result};

/// The kernel command line every VM starts with.
pub const BASE_CMDLINE: &str = "console=ttyS0 panic=-1";
/// Name of the QMP socket in the runtime directory.
pub const QMP_SOCKET: &str = "qmp.sock";
/// Name of the command channel socket in the runtime directory.
pub const COMMAND_SOCKET: &str = "command.sock";

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

/// A VM description.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The QEMU binary (default `qemu-system-x86_64`, looked up in `PATH`).
    pub qemu: PathBuf,
    /// The kernel (`bzImage`).
    pub kernel: PathBuf,
    /// The initramfs.
    pub initramfs: PathBuf,
    /// An ACPI table passed with `-acpitable file=` (the lab's SSDT).
    pub ssdt: Option<PathBuf>,
    /// Extra kernel command line arguments, after [`BASE_CMDLINE`].
    pub append: Vec<String>,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Number of vCPUs.
    pub cpus: u32,
    /// The machine type.
    pub machine: MachineType,
    /// The accelerator.
    pub accel: Accel,
    /// Open a display window (and a VGA card); keys typed into it reach the
    /// guest's PS/2 keyboard. Without it, `-display none`.
    pub gui: bool,
    /// Where ttyS0 goes. [`Machine`](crate::Machine) always uses a log file
    /// of its own and ignores this field.
    pub console: ConsoleMode,
    /// Directory of `qmp.sock` and `command.sock`. `None`: `Machine` uses a
    /// fresh temporary directory, [`VmConfig::run_interactive`] uses
    /// [`interactive_runtime_dir`].
    pub runtime_dir: Option<PathBuf>,
    /// Extra QEMU arguments, appended last.
    pub extra_args: Vec<OsString>,
    /// Name of the VM in log file names (default: the current test's name).
    pub name: Option<String>,
    /// How long [`Machine::start`](crate::Machine::start) waits for the
    /// guest to become ready.
    pub boot_timeout: Duration,
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
            gui: false,
            console: ConsoleMode::Stdio { log: None },
            runtime_dir: None,
            extra_args: Vec::new(),
            name: None,
            boot_timeout: Duration::from_secs(120),
        })
    }

    /// The lab VM from an artifact directory: its kernel, initramfs and
    /// SSDT (`acpi/ssdt.aml`), with the defaults of [`VmConfig::new`].
    pub fn from_artifacts(artifacts: &Artifacts) -> Result<Self> {
        let mut config = Self::new(artifacts.kernel()?, artifacts.initramfs()?)?;
        config.ssdt = Some(artifacts.ssdt()?);
        Ok(config)
    }

    /// Adds kernel command line arguments (split on whitespace).
    pub fn with_append(mut self, args: &str) -> Self {
        self.append
            .extend(args.split_whitespace().map(str::to_owned));
        self
    }

    /// Replaces the ACPI table (`None`: no SSDT at all).
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

    /// Names the VM in log file names (default: the current test's name).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The full kernel command line.
    pub fn kernel_cmdline(&self) -> String {
        let mut cmdline = BASE_CMDLINE.to_owned();
        for arg in &self.append {
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

    /// The QEMU arguments (without the program) for sockets in `runtime_dir`.
    ///
    /// In [`ConsoleMode::LogFile`] mode QEMU waits for a client on the
    /// command socket before it starts the guest (`wait=on`), so nothing
    /// the guest says is lost; in [`ConsoleMode::Stdio`] mode it does not.
    pub fn args(&self, runtime_dir: &Path) -> Result<Vec<OsString>> {
        let qmp = Self::qmp_socket(runtime_dir);
        let cmd = Self::command_socket(runtime_dir);
        for path in [&qmp, &cmd] {
            let len = path.as_os_str().len();
            if len > 107 {
                return Err(Error::SocketPathTooLong {
                    path: path.clone(),
                    len,
                });
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
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
        push(&[
            "-name",
            "rust-kbd-lab",
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
        ]);
        push(&["-machine", self.machine.name()]);
        for arg in self.accel.qemu_args() {
            push(&[&arg]);
        }
        push(&[
            "-m",
            &self.memory_mib.to_string(),
            "-smp",
            &self.cpus.to_string(),
        ]);
        a.push("-kernel".into());
        a.push(self.kernel.clone().into_os_string());
        a.push("-initrd".into());
        a.push(self.initramfs.clone().into_os_string());
        a.push("-append".into());
        a.push(self.kernel_cmdline().into());
        if let Some(ssdt) = &self.ssdt {
            a.push("-acpitable".into());
            a.push(opt_path("file=", ssdt));
        }
        if self.gui {
            a.extend(["-vga", "std"].map(OsString::from));
        } else {
            a.extend(["-vga", "none", "-display", "none"].map(OsString::from));
        }
        // QMP.
        a.push("-chardev".into());
        a.push(join_opt(
            &["socket,id=qmp0,path="],
            &qmp,
            ",server=on,wait=off",
        ));
        a.extend(["-mon", "chardev=qmp0,mode=control"].map(OsString::from));
        // ttyS0: the console.
        let interactive = match &self.console {
            ConsoleMode::LogFile(path) => {
                a.push("-chardev".into());
                a.push(join_opt(&["file,id=con0,path="], path, ""));
                a.extend(["-serial", "chardev:con0"].map(OsString::from));
                false
            }
            ConsoleMode::Stdio { log } => {
                a.push("-chardev".into());
                a.push(match log {
                    Some(log) => join_opt(&["stdio,id=con0,mux=on,signal=off,logfile="], log, ""),
                    None => "stdio,id=con0,mux=on,signal=off".into(),
                });
                a.extend(
                    [
                        "-serial",
                        "chardev:con0",
                        "-mon",
                        "chardev=con0,mode=readline",
                    ]
                    .map(OsString::from),
                );
                true
            }
        };
        // ttyS1: the command channel.
        a.push("-chardev".into());
        let wait = if interactive { "off" } else { "on" };
        a.push(join_opt(
            &["socket,id=cmd0,path="],
            &cmd,
            &format!(",server=on,wait={wait}"),
        ));
        a.extend(["-serial", "chardev:cmd0"].map(OsString::from));
        a.extend(self.extra_args.iter().cloned());
        Ok(a)
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

    /// Runs the VM in the foreground with the console on this terminal
    /// (`cargo xtask vm`) and returns QEMU's exit status.
    ///
    /// Sockets go to `runtime_dir` or [`interactive_runtime_dir`]; the QMP
    /// socket there is what `cargo xtask keys` talks to. Fails if a VM
    /// already answers on that QMP socket. Prints the accelerator and why.
    pub fn run_interactive(&self) -> Result<ExitStatus> {
        let runtime_dir = self
            .runtime_dir
            .clone()
            .unwrap_or_else(interactive_runtime_dir);
        std::fs::create_dir_all(&runtime_dir)
            .map_err(|e| Error::io(format!("creating {}", runtime_dir.display()), e))?;
        let qmp = Self::qmp_socket(&runtime_dir);
        if std::os::unix::net::UnixStream::connect(&qmp).is_ok() {
            return Err(Error::Config(format!(
                "another lab VM is running (its QMP socket {} answers); stop it first",
                qmp.display()
            )));
        }
        for stale in [qmp.clone(), Self::command_socket(&runtime_dir)] {
            let _ = std::fs::remove_file(stale);
        }
        let mut config = self.clone();
        if let ConsoleMode::LogFile(_) = config.console {
            config.console = ConsoleMode::Stdio { log: None };
        }
        eprintln!("vm: accelerator {}", config.accel);
        eprintln!("vm: QMP socket {} (cargo xtask keys)", qmp.display());
        eprintln!("vm: Ctrl-A X quits QEMU, Ctrl-A C switches to the QEMU monitor");
        let status = config
            .command(&runtime_dir)?
            .status()
            .map_err(|e| spawn_error(&config.qemu, e))?;
        for stale in [qmp, Self::command_socket(&runtime_dir)] {
            let _ = std::fs::remove_file(stale);
        }
        Ok(status)
    }
}

/// The runtime directory of `cargo xtask vm`: `<cache>/vm`.
pub fn interactive_runtime_dir() -> PathBuf {
    artifacts::cache_dir().join("vm")
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

/// `prefix` + path with QEMU option escaping (`,` doubled) + `suffix`.
fn join_opt(prefix: &[&str], path: &Path, suffix: &str) -> OsString {
    let mut s = OsString::from(prefix.concat());
    s.push(escape_opt(path));
    s.push(suffix);
    s
}

fn opt_path(prefix: &str, path: &Path) -> OsString {
    join_opt(&[prefix], path, "")
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

fn shell_quote(s: &str) -> String {
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
            initramfs: "/a/initramfs.cpio.gz".into(),
            ssdt: Some("/a/acpi/ssdt,1.aml".into()),
            append: vec!["lab.nomodule".into()],
            memory_mib: 256,
            cpus: 1,
            machine: MachineType::Pc,
            accel: Accel::tcg("test"),
            gui: false,
            console: ConsoleMode::LogFile("/logs/t.console.log".into()),
            runtime_dir: None,
            extra_args: vec![],
            name: None,
            boot_timeout: Duration::from_secs(5),
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
                "/a/initramfs.cpio.gz",
                "-append",
                "console=ttyS0 panic=-1 lab.nomodule",
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
        let mut c = config();
        c.ssdt = None;
        c.append = vec![];
        c.memory_mib = 512;
        c.cpus = 2;
        c.machine = MachineType::Q35;
        c.accel = Accel {
            kind: AccelKind::Kvm,
            reason: "test".into(),
        };
        c.gui = true;
        c.console = ConsoleMode::Stdio {
            log: Some("/l/vm,1.log".into()),
        };
        c.extra_args = vec!["-s".into(), "-S".into()];
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
                "/a/initramfs.cpio.gz",
                "-append",
                "console=ttyS0 panic=-1",
                "-vga",
                "std",
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
        c.console = ConsoleMode::Stdio { log: None };
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
            ["console=ttyS0 panic=-1 lab.nomodule"]
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
        let mut c = config();
        c.console = ConsoleMode::Stdio {
            log: Some("/l/vm.log".into()),
        };
        c.gui = true;
        c.ssdt = None;
        c.machine = MachineType::Q35;
        c.accel = Accel {
            kind: AccelKind::Kvm,
            reason: "test".into(),
        };
        let a = args(&c);
        assert!(!a.contains(&"-acpitable".to_owned()));
        assert!(
            !a.contains(&"-display".to_owned()),
            "gui uses QEMU's default display"
        );
        assert_eq!(after(&a, "-vga"), ["std"]);
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

    #[test]
    fn cmdline_helpers_and_errors() {
        let c = config()
            .with_append("foo=1  bar")
            .with_machine(MachineType::Q35)
            .with_ssdt(None);
        assert_eq!(
            c.kernel_cmdline(),
            "console=ttyS0 panic=-1 lab.nomodule foo=1 bar"
        );
        let long = PathBuf::from(format!("/{}", "d".repeat(100)));
        assert!(matches!(
            c.args(&long),
            Err(Error::SocketPathTooLong { .. })
        ));
        let line = config().command_line(Path::new("/run/x")).unwrap();
        assert!(
            line.contains("-append 'console=ttyS0 panic=-1 lab.nomodule'"),
            "{line}"
        );
        let mut bad = config();
        bad.cpus = 0;
        assert!(bad.args(Path::new("/r")).is_err());
    }
}
