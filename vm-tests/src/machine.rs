//! A running VM, driven like a NixOS test machine.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use regex::Regex;

use crate::accel::Accel;
use crate::artifacts::{self, Artifacts};
use crate::channel::{Channel, Poll};
use crate::console::{self, Console};
use crate::interrupts::Interrupts;
use crate::qemu::{self, ConsoleMode, VmConfig};
use crate::qmp::{self, QmpClient};
use crate::{Error, Result};

/// Console lines shown in error messages.
const TAIL_LINES: usize = 30;
/// Default timeout of one command on the channel.
const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the host waits beyond a command's own timeout (the guest kills
/// the command at its timeout and still has to send the reply).
const REPLY_GRACE: Duration = Duration::from_secs(10);
/// Granularity of waits, between checks for kernel problems and QEMU exit.
const SLICE: Duration = Duration::from_millis(50);
/// How long to wait for QEMU to create and accept its sockets.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a command's output copied into the harness log.
const LOG_OUTPUT_LINES: usize = 200;
/// Typematic delay and period of [`Machine::hold_key`] (what QEMU's GUI
/// front ends emulate; the PS/2 device itself does not repeat).
const TYPEMATIC_DELAY: Duration = Duration::from_millis(500);
const TYPEMATIC_PERIOD: Duration = Duration::from_millis(100);

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
}

impl Machine {
    /// Boots the lab VM from `$LAB_ARTIFACTS` with the default
    /// configuration ([`VmConfig::from_artifacts`]).
    pub fn boot_default() -> Result<Machine> {
        Machine::start(VmConfig::from_artifacts(&Artifacts::from_env()?)?)
    }

    /// Starts QEMU and waits until the guest is ready: the command channel
    /// answered and the console showed `LAB-INIT-READY` (within
    /// `config.boot_timeout`).
    ///
    /// The console goes to `<log dir>/<name>-<timestamp>.console.log`, and
    /// the harness's own log (QEMU command line, accelerator, QEMU's stderr,
    /// every command and its result) to `...harness.log` next to it
    /// ([`artifacts::log_dir`]). `config.console` is ignored.
    pub fn start(config: VmConfig) -> Result<Machine> {
        let started = Instant::now();
        let name = sanitize(config.name.clone().unwrap_or_else(default_name));
        let log_dir = artifacts::log_dir();
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| Error::io(format!("creating log directory {}", log_dir.display()), e))?;
        let stem = format!("{name}-{}", timestamp());
        let console_log = log_dir.join(format!("{stem}.console.log"));
        let harness_log_path = log_dir.join(format!("{stem}.harness.log"));
        File::create(&console_log)
            .map_err(|e| Error::io(format!("creating {}", console_log.display()), e))?;
        let mut harness_log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&harness_log_path)
            .map_err(|e| Error::io(format!("creating {}", harness_log_path.display()), e))?;

        let (runtime_dir, runtime_tmp) = match &config.runtime_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                (dir.clone(), None)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("rust-kbd-lab-")
                    .tempdir()
                    .map_err(|e| Error::io("creating a runtime directory", e))?;
                (tmp.path().to_owned(), Some(tmp))
            }
        };
        let mut config = config;
        config.console = ConsoleMode::LogFile(console_log.clone());
        let command_line = config.command_line(&runtime_dir)?;
        let _ = writeln!(
            harness_log,
            "vm-tests: machine {name}\naccelerator: {}\nconsole log: {}\nkernel command line: {}\n{command_line}\n--- QEMU stderr and harness events ---",
            config.accel,
            console_log.display(),
            config.kernel_cmdline()
        );
        eprintln!(
            "vm-tests: booting {name} with accelerator {} (logs: {})",
            config.accel,
            console_log.display()
        );

        let mut command = config.command(&runtime_dir)?;
        let stderr = harness_log
            .try_clone()
            .map_err(|e| Error::io("cloning the harness log", e))?;
        let stdout = harness_log
            .try_clone()
            .map_err(|e| Error::io("cloning the harness log", e))?;
        command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
        let child = command
            .spawn()
            .map_err(|e| qemu::spawn_error(&config.qemu, e))?;
        let console = Console::follow(&console_log)
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
        };
        machine.connect(&config)?;
        let secs = started.elapsed().as_secs_f64();
        machine.log(&format!("guest ready after {secs:.2} s"));
        eprintln!("vm-tests: {} ready after {secs:.2} s", machine.name);
        Ok(machine)
    }

    /// Connects the command channel and QMP, then waits for the guest.
    fn connect(&mut self, config: &VmConfig) -> Result<()> {
        // QEMU blocks (wait=on) until the command socket is connected.
        let path = VmConfig::command_socket(&self.runtime_dir);
        let deadline = Instant::now() + SOCKET_TIMEOUT;
        let stream = loop {
            self.check_alive("waiting for QEMU's command channel socket")?;
            match UnixStream::connect(&path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(Error::io(
                        format!("connecting to {} (QEMU did not create it)", path.display()),
                        e,
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        self.channel = Some(
            Channel::new(stream)
                .map_err(|e| Error::io("starting the command channel reader", e))?,
        );
        let qmp_path = VmConfig::qmp_socket(&self.runtime_dir);
        let qmp = QmpClient::connect(&qmp_path, SOCKET_TIMEOUT)
            .map_err(|e| self.annotate(e, "connecting QMP"))?;
        self.log(&format!("QMP connected (QEMU {})", qmp.qemu_version()));
        self.qmp = Some(qmp);

        let deadline = Instant::now() + config.boot_timeout;
        let what = "the guest's command channel (@@LAB-CHANNEL-READY on ttyS1)";
        loop {
            self.check_alive(&format!("waiting for {what}"))?;
            let channel = self.channel.as_ref().ok_or(Error::NotRunning)?;
            if channel.wait_ready(SLICE) {
                break;
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(what, config.boot_timeout));
            }
        }
        let remaining = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(5));
        self.wait_for_console_text(&regex::escape(console::INIT_READY), remaining)?;
        Ok(())
    }

    /// The accelerator this VM runs with, and why.
    pub fn accel(&self) -> &Accel {
        &self.accel
    }

    /// The name used in log file names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The serial console log of this VM (written by QEMU, kept after the test).
    pub fn console_log_path(&self) -> &Path {
        self.console.path()
    }

    /// The harness log: QEMU command line and stderr, commands and results.
    pub fn harness_log_path(&self) -> &Path {
        &self.harness_log_path
    }

    /// The directory holding `qmp.sock` and `command.sock`.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }

    /// Everything the console printed so far.
    pub fn console_text(&self) -> String {
        self.console.with(|b| b.text())
    }

    /// The last `n` console lines, formatted for messages.
    pub fn console_tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Sets the default timeout of [`Machine::execute`], [`Machine::succeed`]
    /// and [`Machine::fail`] (60 s unless changed).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// The QMP client, for anything not wrapped here.
    pub fn qmp(&mut self) -> Result<&mut QmpClient> {
        self.check_alive("using QMP")?;
        self.qmp.as_mut().ok_or(Error::NotRunning)
    }

    /// Waits until a console line matches `regex` and returns that line.
    ///
    /// Lines are consumed: the search starts after the line matched by the
    /// previous call (the unterminated last line, e.g. a prompt, is matched
    /// too but not consumed).
    pub fn wait_for_console_text(&mut self, regex: &str, timeout: Duration) -> Result<String> {
        let re = Regex::new(regex)?;
        let what = format!("console text matching /{regex}/");
        let deadline = Instant::now() + timeout;
        loop {
            self.check_alive(&format!("waiting for {what}"))?;
            let cursor = self.console_cursor;
            let found = self.console.with(|b| {
                let lines = b.lines();
                if let Some(i) = lines.iter().skip(cursor).position(|l| re.is_match(l)) {
                    return Some((cursor + i + 1, lines[cursor + i].clone()));
                }
                let partial = b.partial_line();
                re.is_match(&partial).then_some((cursor, partial))
            });
            if let Some((next, line)) = found {
                self.console_cursor = next;
                return Ok(line);
            }
            if Instant::now() >= deadline {
                return Err(self.timeout(&what, timeout));
            }
            self.console.wait_for_output(SLICE);
        }
    }

    /// Runs a shell command in the guest and returns its exit status and its
    /// output (stdout and stderr), with the default command timeout.
    pub fn execute(&mut self, cmd: &str) -> Result<(i32, String)> {
        let timeout = self.command_timeout;
        self.execute_with_timeout(cmd, timeout)
    }

    /// [`Machine::execute`] with an explicit timeout. The guest kills the
    /// command when it runs out (an [`Error::Timeout`] here); the channel
    /// stays usable.
    pub fn execute_with_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        let what = format!("command {cmd:?}");
        self.check_alive(&format!("running {what}"))?;
        let id = self.next_id;
        self.next_id += 1;
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        let start = Instant::now();
        self.log(&format!("[{id}] run: {cmd}"));
        let channel = self.channel.as_mut().ok_or(Error::NotRunning)?;
        if let Err(e) = channel.send(id, secs, cmd) {
            self.check_alive(&format!("sending {what}"))?;
            return Err(Error::io(
                format!("sending {what} to the command channel"),
                e,
            ));
        }
        let deadline = start + Duration::from_secs(secs) + REPLY_GRACE;
        loop {
            let channel = self.channel.as_mut().ok_or(Error::NotRunning)?;
            match channel.poll(SLICE)? {
                Poll::Reply(r) if r.id == id => {
                    let output = r.output_lossy();
                    let elapsed = start.elapsed();
                    self.log(&format!(
                        "[{id}] exit status {} after {:.2} s, output:\n{}",
                        r.status,
                        elapsed.as_secs_f64(),
                        loggable(&output)
                    ));
                    if r.status == 137
                        && elapsed + Duration::from_millis(500) >= Duration::from_secs(secs)
                    {
                        return Err(self
                            .timeout(&format!("{what} to finish (the guest killed it)"), timeout));
                    }
                    return Ok((r.status, output));
                }
                Poll::Reply(r) => self.log(&format!("ignoring a late reply to request {}", r.id)),
                Poll::Pending => {}
                Poll::Closed => {
                    self.check_alive(&format!("running {what}"))?;
                    return Err(Error::Protocol(format!(
                        "the command channel closed while running {what}"
                    )));
                }
            }
            self.check_alive(&format!("running {what}"))?;
            if Instant::now() >= deadline {
                return Err(self.timeout(&format!("the reply to {what}"), timeout));
            }
        }
    }

    /// Runs a command that must exit with status 0; returns its output.
    pub fn succeed(&mut self, cmd: &str) -> Result<String> {
        let (status, output) = self.execute(cmd)?;
        if status != 0 {
            return Err(self.unexpected(cmd, "succeed", status, output));
        }
        Ok(output)
    }

    /// Runs a command that must exit with a non-zero status; returns its output.
    pub fn fail(&mut self, cmd: &str) -> Result<String> {
        let (status, output) = self.execute(cmd)?;
        if status == 0 {
            return Err(self.unexpected(cmd, "fail", status, output));
        }
        Ok(output)
    }

    /// [`Machine::succeed`] with an explicit timeout (for long guest scripts).
    pub fn succeed_with_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (status, output) = self.execute_with_timeout(cmd, timeout)?;
        if status != 0 {
            return Err(self.unexpected(cmd, "succeed", status, output));
        }
        Ok(output)
    }

    /// [`Machine::fail`] with an explicit timeout.
    pub fn fail_with_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        let (status, output) = self.execute_with_timeout(cmd, timeout)?;
        if status == 0 {
            return Err(self.unexpected(cmd, "fail", status, output));
        }
        Ok(output)
    }

    /// Repeats a command (about once a second) until it exits with status 0
    /// and returns its output; fails after `timeout`.
    pub fn wait_until_succeeds(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.retry(cmd, timeout, true)
    }

    /// Repeats a command until it exits with a non-zero status and returns its
    /// output; fails after `timeout`.
    pub fn wait_until_fails(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.retry(cmd, timeout, false)
    }

    fn retry(&mut self, cmd: &str, timeout: Duration, want_success: bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        let (status, output) = loop {
            let remaining = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1));
            let (status, output) = self.execute_with_timeout(cmd, remaining)?;
            if (status == 0) == want_success {
                return Ok(output);
            }
            if Instant::now() + Duration::from_secs(1) >= deadline {
                break (status, output);
            }
            std::thread::sleep(Duration::from_secs(1));
        };
        let verb = if want_success { "succeeds" } else { "fails" };
        Err(self.timeout(
            &format!(
                "{cmd:?} until it {verb} (last exit status {status}, output: {:?})",
                output.trim_end()
            ),
            timeout,
        ))
    }

    /// Presses a key or a chord through QMP `send-key`: `"a"`, `"ret"`,
    /// `"ctrl-alt-delete"` (parsed by [`qmp::parse_chord`]: keys joined with
    /// `-`, the key `-` itself being `minus`), sent as ONE chord: keys go
    /// down in order and up in reverse order. Returns after the release.
    pub fn send_key(&mut self, chord: &str) -> Result<()> {
        self.send_chord(&qmp::parse_chord(chord)?, qmp::KEY_HOLD)
    }

    /// Types text on a US layout: one `send-key` per character (a shift
    /// chord for capitals and symbols), each released before the next
    /// starts, never batched, so QEMU's 16-byte PS/2 queue cannot overflow
    /// (see [`QmpClient::type_text`]).
    pub fn send_chars(&mut self, text: &str) -> Result<()> {
        let chords = qmp::text_chords(text)?;
        for chord in chords {
            self.send_chord(&chord, qmp::CHAR_HOLD)?;
        }
        Ok(())
    }

    fn send_chord(&mut self, keys: &[&str], hold: Duration) -> Result<()> {
        for k in keys {
            qmp::qkeycode(k)?;
        }
        self.log(&format!("send-key {}", keys.join("-")));
        self.qmp_call("send-key", |q| q.press(keys, hold))
    }

    /// A key goes down (QMP `input-send-event`) and stays down.
    pub fn key_down(&mut self, key: &str) -> Result<()> {
        self.log(&format!("key down {key}"));
        self.qmp_call("input-send-event", |q| q.key_down(key))
    }

    /// A key goes up.
    pub fn key_up(&mut self, key: &str) -> Result<()> {
        self.log(&format!("key up {key}"));
        self.qmp_call("input-send-event", |q| q.key_up(key))
    }

    /// Sends several key events `(QEMU key name, down)` in ONE QMP
    /// `input-send-event` command: QEMU queues them at once, without the
    /// pacing of [`Machine::send_key`]. QEMU's PS/2 queue holds 16 bytes and
    /// silently drops the rest, so keep one call within 16 bytes of scan
    /// codes (8 plain or 4 extended presses with their releases) and let the
    /// guest consume them (e.g. [`Machine::wait_for_interrupts`]) before the
    /// next call.
    pub fn input_send_event(&mut self, events: &[(&str, bool)]) -> Result<()> {
        for (k, _) in events {
            qmp::qkeycode(k)?;
        }
        let shown: Vec<String> = events
            .iter()
            .map(|(k, down)| format!("{k}{}", if *down { "+" } else { "-" }))
            .collect();
        self.log(&format!("input-send-event {}", shown.join(" ")));
        self.qmp_call("input-send-event", |q| q.input_send_event(events))
    }

    /// Holds a key for `duration` with typematic repeat, as a real keyboard
    /// (and QEMU's GUI) does: a key-down, repeated key-downs after 500 ms and
    /// then every 100 ms, and one key-up at the end. Returns the number of
    /// repeats sent: the guest sees `1 + repeats` make codes and one break.
    pub fn hold_key(&mut self, key: &str, duration: Duration) -> Result<usize> {
        qmp::qkeycode(key)?;
        let start = Instant::now();
        self.key_down(key)?;
        let mut repeats = 0;
        let mut next = TYPEMATIC_DELAY;
        while next < duration {
            sleep_until(start + next);
            self.qmp_call("input-send-event", |q| q.key_down(key))?;
            repeats += 1;
            next += TYPEMATIC_PERIOD;
        }
        sleep_until(start + duration);
        self.key_up(key)?;
        self.log(&format!(
            "held {key} for {:.2} s with {repeats} repeats",
            duration.as_secs_f64()
        ));
        Ok(repeats)
    }

    /// Reads and parses `/proc/interrupts`.
    pub fn interrupts(&mut self) -> Result<Interrupts> {
        Interrupts::parse(&self.succeed("cat /proc/interrupts")?)
    }

    /// Polls `/proc/interrupts` (every 100 ms) until the total count of `irq`
    /// reaches `at_least`, and returns the count seen (which may be higher).
    pub fn wait_for_interrupts(
        &mut self,
        irq: u32,
        at_least: u64,
        timeout: Duration,
    ) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            let count = self.interrupts()?.count(irq);
            if let Some(c) = count
                && c >= at_least
            {
                return Ok(c);
            }
            last = count.or(last);
            if Instant::now() >= deadline {
                let seen = last.map_or("IRQ not listed".to_owned(), |c| format!("last count {c}"));
                return Err(self.timeout(
                    &format!("IRQ {irq} to reach {at_least} interrupts ({seen})"),
                    timeout,
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The kernel log (`dmesg`).
    pub fn kernel_log(&mut self) -> Result<String> {
        self.succeed("dmesg")
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
        let id = self.next_id;
        self.next_id += 1;
        let sent = self
            .channel
            .as_mut()
            .map(|c| c.send(id, 30, "poweroff -f").is_ok())
            .unwrap_or(false);
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
        if let Some(line) = self.console.problem() {
            return Err(Error::KernelProblem {
                line,
                console_tail: self.console.tail(TAIL_LINES),
            });
        }
        Ok(())
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

    /// Waits for the child to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                self.exit_status = Some(status);
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
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
    fn check_alive(&mut self, context: &str) -> Result<()> {
        if let Some(line) = self.console.problem() {
            return Err(Error::KernelProblem {
                line,
                console_tail: self.console.tail(TAIL_LINES),
            });
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
            if let Some(line) = self.console.problem() {
                return Err(Error::KernelProblem {
                    line,
                    console_tail: self.console.tail(TAIL_LINES),
                });
            }
            let stderr = std::fs::read_to_string(&self.harness_log_path).unwrap_or_default();
            let stderr_tail: Vec<&str> = stderr
                .lines()
                .rev()
                .take(10)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(Error::QemuExited {
                status: status.to_string(),
                context: context.to_owned(),
                detail: format!(
                    "harness log ({}):\n{}\nlast console lines:\n{}",
                    self.harness_log_path.display(),
                    indent(&stderr_tail.join("\n")),
                    self.console.tail(TAIL_LINES)
                ),
            });
        }
        Ok(())
    }

    fn qmp_call(
        &mut self,
        context: &str,
        f: impl FnOnce(&mut QmpClient) -> Result<()>,
    ) -> Result<()> {
        self.check_alive(context)?;
        let qmp = self.qmp.as_mut().ok_or(Error::NotRunning)?;
        match f(qmp) {
            Ok(()) => Ok(()),
            Err(e) => {
                // A closed socket usually means QEMU died: say so if it did.
                self.check_alive(context)?;
                Err(e)
            }
        }
    }

    fn annotate(&mut self, e: Error, context: &str) -> Error {
        match self.check_alive(context) {
            Err(dead) => dead,
            Ok(()) => e,
        }
    }

    fn timeout(&self, what: &str, timeout: Duration) -> Error {
        let e = Error::Timeout {
            what: what.to_owned(),
            seconds: timeout.as_secs_f64(),
            console_tail: self.console.tail(TAIL_LINES),
        };
        self.log(&format!("error: {e}"));
        e
    }

    fn unexpected(&self, cmd: &str, expected: &'static str, status: i32, output: String) -> Error {
        Error::UnexpectedStatus {
            cmd: cmd.to_owned(),
            expected,
            status,
            output,
            console_tail: self.console.tail(TAIL_LINES),
        }
    }

    /// Appends a timestamped line to the harness log.
    fn log(&self, message: &str) {
        let mut f = &self.harness_log;
        let _ = writeln!(
            f,
            "[{:9.3}] {message}",
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Machine {
    /// Kills QEMU. If the thread is panicking (a failed `assert!` in a test)
    /// and `LAB_INTERACTIVE=1` is set, the still running machine is first
    /// handed to [`Machine::interact`] (see [`crate::interact`]).
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() && crate::interact::enabled() {
            crate::interact::interact_on_failure(self);
        }
        self.stop();
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Command output for the harness log: control characters escaped (the log
/// stays text), at most [`LOG_OUTPUT_LINES`] lines.
fn loggable(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let mut text = lines
        .iter()
        .take(LOG_OUTPUT_LINES)
        .map(|l| {
            let l: String = l
                .chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            format!("  | {l}")
        })
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > LOG_OUTPUT_LINES {
        text.push_str(&format!(
            "\n  | ... ({} more lines)",
            lines.len() - LOG_OUTPUT_LINES
        ));
    }
    text
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
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}.{:03}-{}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis(),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_output_is_text() {
        assert_eq!(
            loggable("a\u{0}b\r\n\u{1b}[6n\tx"),
            "  | a\\0b\n  | \\u{1b}[6n\tx"
        );
        let many = "x\n".repeat(250);
        assert!(loggable(&many).ends_with("  | ... (50 more lines)"));
    }

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
