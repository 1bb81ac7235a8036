//! A running VM, driven like a NixOS test machine.
//!
//! [`Machine`] is split by concern:
//! * `lifecycle`: starting QEMU, health checks, shutdown, [`run_test`];
//! * `command`: shell commands on the command channel, and what is read
//!   through them (`/proc/interrupts`);
//! * `input`: key presses through QMP;
//! * `logs`: the serial console and the harness log.
//!
//! Every bounded wait goes through one deadline loop (`crate::wait::retry`).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::accel::Accel;
use crate::channel::Channel;
use crate::console::Console;
use crate::qmp::QmpClient;
use crate::wait::retry;
use crate::{Error, Result};

mod command;
mod input;
mod lifecycle;
mod logs;

pub use lifecycle::run_test;

/// Console lines shown in error messages.
const TAIL_LINES: usize = 30;
/// Granularity of waits, between checks for kernel problems and QEMU exit.
const SLICE: Duration = Duration::from_millis(50);

/// A running lab VM.
///
/// Created by [`Machine::start`]; dropping it kills QEMU (and the kernel
/// kills QEMU when the thread that started it dies, even on SIGKILL, thanks to
/// `PR_SET_PDEATHSIG`, so keep a `Machine` in the thread that created it).
///
/// Every method that talks to the guest first checks the console: once a
/// line reporting a kernel panic, oops, `BUG:`, `WARNING:` or general
/// protection fault has appeared, or the guest /init reported a failure, or
/// QEMU exited, every call fails at once with the console tail.
pub struct Machine {
    child: Option<Child>,
    exit_status: Option<ExitStatus>,
    accel: Accel,
    name: String,
    console: Console,
    console_cursor: usize,
    channel: Option<Channel>,
    qmp: Option<QmpClient>,
    harness_log: File,
    harness_log_path: PathBuf,
    runtime_dir: PathBuf,
    _runtime_tmp: Option<tempfile::TempDir>,
    started: Instant,
    next_id: u64,
    command_timeout: Duration,
    /// The snapshot this machine was restored from, if it was.
    restored_from: Option<PathBuf>,
}

impl Machine {
    /// The accelerator this VM runs with, and why.
    pub fn accel(&self) -> &Accel {
        &self.accel
    }

    /// The name used in log file names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The snapshot file this machine was restored from
    /// ([`VmConfig::with_snapshot`](crate::VmConfig::with_snapshot)), or
    /// `None` if it booted.
    pub fn restored_from(&self) -> Option<&Path> {
        self.restored_from.as_deref()
    }

    /// The directory holding `qmp.sock` and `command.sock`.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// The QMP client, for anything not wrapped here.
    pub fn qmp(&mut self) -> Result<&mut QmpClient> {
        self.check_alive("using QMP")?;
        self.qmp.as_mut().ok_or(Error::NotRunning)
    }

    /// Polls `attempt` every `pause` until it returns `Some`, checking the
    /// machine ([`Machine::check_alive`]) before each attempt; fails after
    /// `timeout` with [`Error::Timeout`] saying it waited for `what`, with
    /// the last console lines. For a test's own condition: `attempt` may
    /// return any error that a harness error converts into (`anyhow`'s).
    pub fn wait_for<T, E: From<Error>>(
        &mut self,
        what: &str,
        timeout: Duration,
        pause: Duration,
        attempt: impl FnMut(&mut Self) -> std::result::Result<Option<T>, E>,
    ) -> std::result::Result<T, E> {
        self.wait_until(what, timeout, |_| std::thread::sleep(pause), attempt)
    }

    /// Polls `attempt` until it returns `Some`, pausing with `pause` between
    /// attempts and checking the machine ([`Machine::check_alive`]) before
    /// each; fails after `timeout` with an error saying it waited for `what`.
    fn wait_until<T, E: From<Error>>(
        &mut self,
        what: &str,
        timeout: Duration,
        pause: impl FnMut(&mut Self),
        mut attempt: impl FnMut(&mut Self) -> std::result::Result<Option<T>, E>,
    ) -> std::result::Result<T, E> {
        let context = format!("waiting for {what}");
        let outcome = retry(self, Instant::now() + timeout, pause, |m| {
            m.check_alive(&context)?;
            Ok::<_, E>(attempt(m)?.ok_or(()))
        })?;
        outcome.map_err(|()| self.timeout(what, timeout).into())
    }

    /// `e`, unless the machine died: then why it died (a closed socket
    /// usually means QEMU exited).
    fn annotate(&mut self, e: Error, context: &str) -> Error {
        match self.check_alive(context) {
            Err(dead) => dead,
            Ok(()) => e,
        }
    }

    /// A timeout error (logged) for waiting `timeout` for `what`.
    fn timeout(&self, what: &str, timeout: Duration) -> Error {
        let e = Error::Timeout {
            what: what.to_owned(),
            seconds: timeout.as_secs_f64(),
            console_tail: self.console.tail(TAIL_LINES),
        };
        self.log(&format!("error: {e}"));
        e
    }

    /// The error for the first kernel problem on the console, if any.
    fn kernel_problem(&self) -> Option<Error> {
        let line = self.console.problem()?;
        Some(Error::KernelProblem {
            line,
            console_tail: self.console.tail(TAIL_LINES),
        })
    }
}
