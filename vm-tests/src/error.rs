//! The error type of the library.

use std::io;
use std::path::PathBuf;

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, booting or driving a VM.
///
/// Errors that happen while a VM runs carry `console_tail`: the last lines of
/// the serial console (already formatted, one line per console line), so a
/// failing test shows what the kernel said without opening the log file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `$LAB_ARTIFACTS` is not set.
    #[error(
        "LAB_ARTIFACTS is not set: run `cargo xtask build` first and point LAB_ARTIFACTS at the \
         artifact directory it prints (VM tests never skip silently)"
    )]
    ArtifactsUnset,

    /// An artifact file is missing.
    #[error("{what} not found at {}: run `cargo xtask build` first", path.display())]
    ArtifactMissing {
        /// What the file is ("kernel", "initramfs", ...).
        what: String,
        /// Where it was expected.
        path: PathBuf,
    },

    /// An accelerator override that is neither `kvm` nor `tcg`.
    #[error("invalid accelerator {0:?} (from LAB_ACCEL or --accel): expected `kvm` or `tcg`")]
    InvalidAccel(String),

    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A unix socket path longer than `sun_path` allows.
    #[error(
        "unix socket path {} is too long ({len} bytes, at most 107): use a shorter runtime directory",
        path.display()
    )]
    SocketPathTooLong {
        /// The offending path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },

    /// The configuration cannot be turned into a command line.
    #[error("invalid VM configuration: {0}")]
    Config(String),

    /// QEMU exited while the harness still needed it.
    #[error("QEMU exited ({status}) while {context}\n{detail}")]
    QemuExited {
        /// QEMU's exit status.
        status: String,
        /// What the harness was doing.
        context: String,
        /// QEMU's stderr tail and the console tail.
        detail: String,
    },

    /// A bounded wait ran out.
    #[error(
        "timed out after {seconds:.1} s waiting for {what}\nlast console lines:\n{console_tail}"
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        seconds: f64,
        /// Last console lines.
        console_tail: String,
    },

    /// The kernel reported a panic, oops, BUG, WARNING or general protection fault.
    #[error("kernel problem on the console: {line}\nlast console lines:\n{console_tail}")]
    KernelProblem {
        /// The first console line that matched.
        line: String,
        /// Last console lines.
        console_tail: String,
    },

    /// The guest /init reported a failure (`LAB-INIT-ERROR` / `LAB-INIT-FAILED`).
    #[error("guest init failed: {line}\nlast console lines:\n{console_tail}")]
    InitFailed {
        /// The line printed by /init.
        line: String,
        /// Last console lines.
        console_tail: String,
    },

    /// `succeed` saw a non-zero status, or `fail` saw status 0.
    #[error(
        "command {cmd:?} was expected to {expected} but exited with status {status}\n\
         output:\n{output}\nlast console lines:\n{console_tail}"
    )]
    UnexpectedStatus {
        /// The command.
        cmd: String,
        /// "succeed" or "fail".
        expected: &'static str,
        /// Its exit status.
        status: i32,
        /// Its output (stdout and stderr).
        output: String,
        /// Last console lines.
        console_tail: String,
    },

    /// The QMP server answered with an error.
    #[error("QMP {command} failed: {message}")]
    Qmp {
        /// The QMP command.
        command: String,
        /// QEMU's error description.
        message: String,
    },

    /// The QMP socket was closed (QEMU exited or another client took it).
    #[error("QMP socket closed by QEMU while {0} (has QEMU exited?)")]
    QmpClosed(String),

    /// A key name that QEMU's `QKeyCode` does not know.
    #[error(
        "unknown QEMU key name {0:?} (see `QKeyCode` in QEMU's qapi/ui.json, e.g. a, ret, ctrl_r, kp_enter, up)"
    )]
    UnknownKey(String),

    /// A key chord that [`parse_chord`](crate::qmp::parse_chord) rejects.
    #[error(
        "invalid key chord {spec:?}: {reason} (a chord is QEMU key names joined with -, e.g. \
         ctrl-alt-delete; the key - is minus, or - itself: ctrl--)"
    )]
    InvalidChord {
        /// The chord as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A character `send_chars` cannot type on a US layout.
    #[error("character {0:?} cannot be typed with the US keyboard layout")]
    UnsupportedChar(char),

    /// The guest's command channel sent something that breaks the protocol.
    #[error("command channel protocol error: {0}")]
    Protocol(String),

    /// Text that could not be parsed (e.g. `/proc/interrupts`).
    #[error("cannot parse {what}: {message}")]
    Parse {
        /// What was parsed.
        what: &'static str,
        /// Why it failed.
        message: String,
    },

    /// An invalid regular expression.
    #[error(transparent)]
    Regex(#[from] regex::Error),

    /// A kernel lacks what gdb needs: its build tree, vmlinux, debug info or
    /// the kernel's gdb scripts ([`crate::gdb::DebugKernel`]).
    #[error("{0}")]
    NoDebugInfo(String),

    /// A host tool the harness runs is not installed.
    #[error(
        "`{tool}` was not found on PATH. It comes from the Debian package {package}: run \
         `cargo xtask provision` (or `apt-get install {package}`)"
    )]
    ToolMissing {
        /// The program.
        tool: String,
        /// The Debian package that has it.
        package: String,
    },

    /// gdb did not do what it was asked to ([`crate::gdb::BatchGdb`]).
    #[error("gdb: {message}\ngdb's output so far:\n{output}")]
    Gdb {
        /// What went wrong.
        message: String,
        /// gdb's output (stdout and stderr).
        output: String,
    },

    /// The machine was shut down or crashed and cannot be used any more.
    #[error("the VM is not running any more (it was shut down or crashed)")]
    NotRunning,
}

impl Error {
    /// Wraps an I/O error with a description of what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
