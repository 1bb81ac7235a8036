//! Starting QEMU, the health check before every call, shutdown, and
//! [`run_test`], the life of a test machine from start to shutdown.

use std::convert::Infallible;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::command::DEFAULT_COMMAND_TIMEOUT;
use super::{Machine, SLICE, TAIL_LINES};
use crate::artifacts::{self, Artifacts};
use crate::channel::Channel;
use crate::console::{self, Console};
use crate::interact;
use crate::qemu::{self, ConsoleMode, VmConfig};
use crate::qmp::QmpClient;
use crate::snapshot::{self, Snapshot};
use crate::wait::{PAUSE, retry};
use crate::{Error, Result};

/// How long to wait for QEMU to create and accept its sockets.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of the harness log (QEMU's stderr) shown when QEMU exited.
const STDERR_LINES: usize = 10;

impl Machine {
    /// Boots the lab VM from `$LAB_ARTIFACTS` with the default
    /// configuration ([`VmConfig::from_artifacts`]).
    pub fn boot_default() -> Result<Machine> {
        Machine::start(VmConfig::from_artifacts(&Artifacts::from_env()?)?)
    }

    /// Starts QEMU and waits until the guest is ready: the command channel
    /// answered and the console showed `LAB-INIT-READY` (within the
    /// config's boot timeout, [`VmConfig::with_boot_timeout`]).
    ///
    /// The console goes to `<log dir>/<name>-<timestamp>.console.log`, and
    /// the harness's own log (QEMU command line, accelerator, QEMU's stderr,
    /// every command and its result) to `...harness.log` next to it
    /// ([`artifacts::log_dir`]). The config's console mode is ignored.
    ///
    /// With [`VmConfig::with_snapshot`], it restores the machine an earlier
    /// start of the same configuration saved ([`crate::snapshot`]) and
    /// checks that the guest answers; if there is none it boots and saves
    /// one at ready. A snapshot that fails to restore is removed and the
    /// machine boots instead.
    pub fn start(config: VmConfig) -> Result<Machine> {
        if !config.snapshot {
            return Machine::boot(config, None);
        }
        let started = Instant::now();
        let saved = Snapshot::of(&config)?;
        if saved.exists() {
            match Machine::boot(config.clone(), Some(&saved)) {
                Ok(machine) => return Ok(machine),
                Err(e) => {
                    eprintln!(
                        "vm-tests: restoring {} failed, booting instead: {e}",
                        saved.path().display()
                    );
                    saved.discard();
                }
            }
        }
        let mut machine = Machine::boot(config, None)?;
        machine.save(&saved)?;
        let secs = started.elapsed().as_secs_f64();
        eprintln!("vm-tests: {} booted and saved in {secs:.2} s", machine.name);
        Ok(machine)
    }

    /// Starts QEMU: a boot, or with `restore` a restore of that snapshot.
    fn boot(config: VmConfig, restore: Option<&Snapshot>) -> Result<Machine> {
        let started = Instant::now();
        let name = sanitize(config.name.clone().unwrap_or_else(default_name));
        let (console_log, harness_log_path, mut harness_log) = create_logs(&name)?;
        let (runtime_dir, runtime_tmp) = runtime_dir(&config)?;
        let mut config = config.with_console(ConsoleMode::LogFile(console_log.clone()));
        if let Some(saved) = restore {
            config = config.with_extra_args(saved.incoming_args());
        }
        let _ = writeln!(
            harness_log,
            "vm-tests: machine {name}\naccelerator: {}\nconsole log: {}\nkernel command line: {}\n{}\n--- QEMU stderr and harness events ---",
            config.accel,
            console_log.display(),
            config.kernel_cmdline(),
            config.command_line(&runtime_dir)?,
        );
        eprintln!(
            "vm-tests: {} {name} with accelerator {} (logs: {})",
            if restore.is_some() {
                "restoring"
            } else {
                "booting"
            },
            config.accel,
            console_log.display()
        );
        let child = spawn_qemu(&config, &runtime_dir, &harness_log)?;
        let console = Console::follow(&console_log, &config.expected_reports)
            .map_err(|e| Error::io(format!("following {}", console_log.display()), e))?;

        let mut machine = Machine {
            child: Some(child),
            exit_status: None,
            accel: config.accel.clone(),
            name,
            console,
            console_cursor: 0,
            channel: None,
            qmp: None,
            harness_log,
            harness_log_path,
            runtime_dir,
            _runtime_tmp: runtime_tmp,
            started,
            next_id: 1,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            restored_from: restore.map(|s| s.path().to_owned()),
        };
        machine.connect(&config, restore)?;
        let secs = started.elapsed().as_secs_f64();
        machine.log(&format!("guest ready after {secs:.2} s"));
        eprintln!("vm-tests: {} ready after {secs:.2} s", machine.name);
        Ok(machine)
    }

    /// Connects the command channel and QMP, then waits for the guest: for
    /// its ready markers after a boot, for the end of the restore of
    /// `restore` and an answer to a command otherwise.
    fn connect(&mut self, config: &VmConfig, restore: Option<&Snapshot>) -> Result<()> {
        // QEMU blocks (wait=on) until the command socket is connected.
        let path = VmConfig::command_socket(&self.runtime_dir);
        let connected = retry(
            self,
            Instant::now() + SOCKET_TIMEOUT,
            |_| std::thread::sleep(PAUSE),
            |m| {
                m.check_alive("waiting for QEMU's command channel socket")?;
                Ok::<_, Error>(UnixStream::connect(&path))
            },
        )?;
        let stream = connected.map_err(|e| {
            Error::io(
                format!("connecting to {} (QEMU did not create it)", path.display()),
                e,
            )
        })?;
        self.channel = Some(
            Channel::new(stream)
                .map_err(|e| Error::io("starting the command channel reader", e))?,
        );
        let qmp_path = VmConfig::qmp_socket(&self.runtime_dir);
        let qmp = QmpClient::connect(&qmp_path, SOCKET_TIMEOUT)
            .map_err(|e| self.annotate(e, "connecting QMP"))?;
        self.log(&format!("QMP connected (QEMU {})", qmp.qemu_version()));
        self.qmp = Some(qmp);
        if let Some(saved) = restore {
            return self.resume_restored(saved, config.boot_timeout);
        }

        let deadline = Instant::now() + config.boot_timeout;
        self.wait_until::<_, Error>(
            "the guest's command channel (@@LAB-CHANNEL-READY on ttyS1)",
            config.boot_timeout,
            |_| {},
            |m| {
                let channel = m.channel.as_ref().ok_or(Error::NotRunning)?;
                Ok(channel.wait_ready(SLICE).then_some(()))
            },
        )?;
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(5));
        self.wait_for_console_text(&regex::escape(console::INIT_READY), remaining)?;
        Ok(())
    }

    /// Waits until QEMU has loaded the snapshot `saved` (run state no
    /// longer `inmigrate`), resumes the guest, which was saved paused, and
    /// checks that it answers on the command channel.
    fn resume_restored(&mut self, saved: &Snapshot, timeout: Duration) -> Result<()> {
        let state = self.wait_until::<_, Error>(
            "the end of the restore (QMP run state not inmigrate)",
            timeout,
            |_| std::thread::sleep(PAUSE),
            |m| {
                let state = m.qmp()?.status()?;
                Ok((state != "inmigrate").then_some(state))
            },
        )?;
        match state.as_str() {
            "paused" | "postmigrate" => self.qmp()?.cont()?,
            "running" => {}
            other => {
                return Err(self.annotate(
                    Error::Config(format!(
                        "after restoring {} the VM is {other}",
                        saved.path().display()
                    )),
                    "restoring",
                ));
            }
        }
        self.succeed("true")?;
        saved.touch();
        self.log(&format!("restored from {}", saved.path().display()));
        Ok(())
    }

    /// Saves the ready machine as `saved` for later starts: pauses it,
    /// writes the snapshot and resumes it.
    fn save(&mut self, saved: &Snapshot) -> Result<()> {
        let temporary = saved.temporary()?;
        let qmp = self.qmp()?;
        qmp.stop()?;
        let written = qmp.save_state(&temporary, snapshot::SAVE_TIMEOUT);
        let resumed = qmp.cont();
        written
            .and_then(|()| saved.commit(&temporary))
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&temporary);
            })?;
        resumed?;
        self.log(&format!("saved to {}", saved.path().display()));
        Ok(())
    }

    /// Powers the guest off (`poweroff -f`) and waits up to 30 s for QEMU to
    /// exit; falls back to QMP `quit` and then to killing QEMU. Fails if the
    /// console reported a kernel problem.
    pub fn shutdown(&mut self) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        self.check_alive("shutting down")?;
        self.log("shutdown: poweroff -f");
        let id = self.next_request_id();
        let sent = self
            .channel
            .as_mut()
            .is_some_and(|c| c.send(id, 30, "poweroff -f").is_ok());
        let mut exited = sent && self.wait_exit(Duration::from_secs(30));
        if !exited {
            self.log("shutdown: guest did not power off, sending QMP quit");
            if let Some(q) = self.qmp.as_mut() {
                let _ = q.quit();
            }
            exited = self.wait_exit(Duration::from_secs(10));
        }
        if !exited {
            self.log("shutdown: QEMU did not quit, killing it");
        }
        self.stop();
        self.kernel_problem().map_or(Ok(()), Err)
    }

    /// Kills QEMU at once, like pulling the plug.
    pub fn crash(&mut self) {
        self.log("crash: killing QEMU");
        self.stop();
    }

    /// QEMU's exit status, once it has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit_status
    }

    /// Waits up to `timeout` for the child to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let Ok(exited) = retry(
            self,
            Instant::now() + timeout,
            |_| std::thread::sleep(PAUSE),
            |m| {
                let Some(child) = m.child.as_mut() else {
                    return Ok::<_, Infallible>(Ok(()));
                };
                Ok(match child.try_wait() {
                    Ok(Some(status)) => {
                        m.exit_status = Some(status);
                        Ok(())
                    }
                    _ => Err(()),
                })
            },
        );
        exited.is_ok()
    }

    /// Kills (if needed) and reaps QEMU, closes the sockets, reads the rest
    /// of the console.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.exit_status.is_none() {
                let _ = child.kill();
            }
            if let Ok(status) = child.wait() {
                self.exit_status.get_or_insert(status);
            }
            let status = self.exit_status.map(|s| s.to_string()).unwrap_or_default();
            self.log(&format!(
                "QEMU exited ({status}) after {:.2} s",
                self.started.elapsed().as_secs_f64()
            ));
        }
        self.qmp = None;
        self.channel = None;
        self.console.finish();
    }

    /// Fails if the machine can no longer be used (see the type's docs).
    pub(super) fn check_alive(&mut self, context: &str) -> Result<()> {
        if let Some(e) = self.kernel_problem() {
            return Err(e);
        }
        if let Some(line) = self.console.init_failure() {
            return Err(Error::InitFailed {
                line,
                console_tail: self.console.tail(TAIL_LINES),
            });
        }
        let Some(child) = self.child.as_mut() else {
            return Err(Error::NotRunning);
        };
        if let Ok(Some(status)) = child.try_wait() {
            self.exit_status = Some(status);
            self.stop();
            // The console may have said why in its last lines.
            return Err(self
                .kernel_problem()
                .unwrap_or_else(|| self.qemu_exited(status, context)));
        }
        Ok(())
    }

    /// The error for QEMU having exited while the harness was doing
    /// `context`: the tails of QEMU's stderr and of the console.
    fn qemu_exited(&self, status: ExitStatus, context: &str) -> Error {
        let stderr = std::fs::read_to_string(&self.harness_log_path).unwrap_or_default();
        let stderr: Vec<&str> = stderr.lines().collect();
        Error::QemuExited {
            status: status.to_string(),
            context: context.to_owned(),
            detail: format!(
                "harness log ({}):\n{}\nlast console lines:\n{}",
                self.harness_log_path.display(),
                console::quote(console::last(&stderr, STDERR_LINES)),
                self.console.tail(TAIL_LINES)
            ),
        }
    }
}

impl Drop for Machine {
    /// Kills QEMU. If the thread is panicking (a failed `assert!` in a test)
    /// and `LAB_INTERACTIVE=1` is set, the still running machine is first
    /// handed to [`Machine::interact`] (see [`crate::interact`]).
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() && interact::enabled() {
            interact::interact_on_failure(self);
        }
        self.stop();
    }
}

/// Boots a machine from `config`, runs a test on it, and checks that the
/// machine is still healthy at the end.
///
/// * On success the machine is shut down with [`Machine::shutdown`], which
///   fails if the console reported a kernel panic, oops, `BUG:` or
///   `WARNING:` at any time: every test ends with that check.
/// * On failure (the test returned an error or panicked), if
///   [`interact::INTERACTIVE_ENV`]`=1`, the error is printed and the still
///   running machine is handed to [`Machine::interact`]; then the VM is
///   killed and the error returned (or the panic resumed).
///
/// ```no_run
/// use vm_tests::{Artifacts, VmConfig, run_test};
///
/// # fn main() -> Result<(), vm_tests::Error> {
/// run_test(VmConfig::from_artifacts(&Artifacts::from_env()?)?, |m| {
///     m.succeed("test -d /sys/bus/acpi/devices/KBD0001:00")?;
///     Ok::<_, vm_tests::Error>(())
/// })
/// # }
/// ```
pub fn run_test<T, E>(
    config: VmConfig,
    test: impl FnOnce(&mut Machine) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<Error> + fmt::Display,
{
    let mut machine = Machine::start(config)?;
    let result = panic::catch_unwind(AssertUnwindSafe(|| test(&mut machine)));
    match result {
        Ok(Ok(value)) => {
            machine.shutdown()?;
            Ok(value)
        }
        Ok(Err(e)) => {
            if interact::enabled() {
                interact::say(&format!("vm-tests: test failed: {e:#}"));
                interact::interact_on_failure(&mut machine);
            }
            Err(e)
        }
        Err(payload) => {
            if interact::enabled() {
                interact::interact_on_failure(&mut machine);
            }
            drop(machine);
            panic::resume_unwind(payload)
        }
    }
}

/// Creates the console log (empty, for QEMU to fill) and the harness log of
/// a machine called `name`: their paths, and the harness log opened.
fn create_logs(name: &str) -> Result<(PathBuf, PathBuf, File)> {
    let log_dir = artifacts::log_dir();
    std::fs::create_dir_all(&log_dir)
        .map_err(|e| Error::io(format!("creating log directory {}", log_dir.display()), e))?;
    let stem = format!("{name}-{}", timestamp());
    let console_log = log_dir.join(format!("{stem}.console.log"));
    let harness_log_path = log_dir.join(format!("{stem}.harness.log"));
    File::create(&console_log)
        .map_err(|e| Error::io(format!("creating {}", console_log.display()), e))?;
    let harness_log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&harness_log_path)
        .map_err(|e| Error::io(format!("creating {}", harness_log_path.display()), e))?;
    Ok((console_log, harness_log_path, harness_log))
}

/// The config's runtime directory (created), or a fresh temporary one
/// (removed when the returned guard drops).
fn runtime_dir(config: &VmConfig) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match &config.runtime_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            Ok((dir.clone(), None))
        }
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("rust-kbd-lab-")
                .tempdir()
                .map_err(|e| Error::io("creating a runtime directory", e))?;
            Ok((tmp.path().to_owned(), Some(tmp)))
        }
    }
}

/// Spawns QEMU with stdout and stderr appended to the harness log.
fn spawn_qemu(config: &VmConfig, runtime_dir: &Path, harness_log: &File) -> Result<Child> {
    let log = || {
        harness_log
            .try_clone()
            .map_err(|e| Error::io("cloning the harness log", e))
    };
    let mut command = config.command(runtime_dir)?;
    command.stdin(Stdio::null()).stdout(log()?).stderr(log()?);
    command
        .spawn()
        .map_err(|e| qemu::spawn_error(&config.qemu, e))
}

/// The current test's name (libtest names the test thread after the test),
/// else `vm`.
fn default_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.rsplit("::").next().unwrap_or(n).to_owned(),
        _ => "vm".to_owned(),
    }
}

fn sanitize(name: String) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() { "vm".into() } else { s }
}

/// `YYYYMMDD-HHMMSS.mmm-<pid>` in UTC (unique enough for log names).
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let t = crate::utc::Utc::from_unix(now.as_secs());
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}.{:03}-{}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        now.subsec_millis(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    #[test]
    fn names() {
        assert_eq!(sanitize("tests::foo bar/baz".into()), "tests__foo_bar_baz");
        assert_eq!(sanitize(String::new()), "vm");
        let t = timestamp();
        assert!(
            Regex::new(r"^20\d{6}-\d{6}\.\d{3}-\d+$")
                .unwrap()
                .is_match(&t),
            "{t}"
        );
    }
}
