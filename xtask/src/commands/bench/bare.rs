//! A bare QEMU: the harness's own command line ([`VmConfig::command`], so
//! the same kernel, initramfs, SSDT, kernel command line, firmware and
//! accelerator as a test), started without the harness: the console on
//! QEMU's stdout (a pipe, each line stamped on the host clock as it arrives,
//! [`super::lines`]) instead of a log file the harness follows, the command
//! channel not connected (with the console on stdio QEMU does not wait for
//! it), no QMP client unless asked for.

use super::lines;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use vm_tests::{ConsoleMode, QmpClient, VmConfig};

/// A running bare QEMU; killed (and its console written to its log file)
/// when dropped.
pub struct BareVm {
    child: Option<Child>,
    /// Held open: QEMU's stdio backend must not see EOF on its input.
    _stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, String)>,
    /// Every console line so far, with its arrival after [`BareVm::started`].
    seen: Vec<(Duration, String)>,
    /// Lines before this index were consumed by a wait.
    cursor: usize,
    started: Instant,
    runtime: tempfile::TempDir,
    log: PathBuf,
    command_line: String,
}

impl BareVm {
    /// Starts QEMU for `config` (its console mode replaced by stdio); the
    /// console lines go to `log` when the VM ends. The clock starts right
    /// before the spawn.
    pub fn start(config: VmConfig, log: &Path) -> Result<BareVm> {
        let config = config.with_console(ConsoleMode::Stdio { log: None });
        // Short path: socket paths must fit sun_path.
        let runtime = tempfile::Builder::new()
            .prefix("kbd-bare-")
            .tempdir_in("/tmp")
            .context("cannot create a runtime directory")?;
        let command_line = config.command_line(runtime.path())?;
        let stderr = std::fs::File::create(runtime.path().join("stderr"))?;
        let mut command = config.command(runtime.path())?;
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {command_line}"))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stdin = child.stdin.take();
        let lines = lines::spawn_reader(stdout, "bare-console")?;
        Ok(BareVm {
            child: Some(child),
            _stdin: stdin,
            lines,
            seen: Vec::new(),
            cursor: 0,
            started,
            runtime,
            log: log.to_owned(),
            command_line,
        })
    }

    /// The QEMU command line that was run.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The time since the spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Every console line so far with its arrival after the spawn.
    pub fn seen(&self) -> &[(Duration, String)] {
        &self.seen
    }

    /// Waits up to `timeout` for a console line matching `re` after the
    /// last one a wait returned; returns its arrival after the spawn and
    /// the line. Fails at once on a kernel report or when QEMU ends.
    pub fn wait_line(&mut self, re: &Regex, timeout: Duration) -> Result<(Duration, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            while self.cursor < self.seen.len() {
                let (at, line) = &self.seen[self.cursor];
                self.cursor += 1;
                if let Some(problem) = vm_tests::console::kernel_problem(line) {
                    bail!(
                        "kernel report ({problem}) on the console: {line}\n{}",
                        self.tail()
                    );
                }
                if re.is_match(line) {
                    return Ok((*at, line.clone()));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) => self.seen.push((at - self.started, line)),
                Err(RecvTimeoutError::Timeout) => bail!(
                    "no console line matching {re} within {timeout:?} (bare QEMU: {})\n{}",
                    self.command_line,
                    self.tail()
                ),
                Err(RecvTimeoutError::Disconnected) => bail!(
                    "QEMU ended before a console line matched {re}; its stderr: {}\n{}",
                    std::fs::read_to_string(self.runtime.path().join("stderr"))
                        .unwrap_or_default()
                        .trim(),
                    self.tail()
                ),
            }
        }
    }

    /// A QMP client on the VM's QMP socket.
    pub fn qmp(&self) -> Result<QmpClient> {
        Ok(QmpClient::connect(
            &VmConfig::qmp_socket(self.runtime.path()),
            Duration::from_secs(30),
        )?)
    }

    /// The last console lines, for error messages.
    fn tail(&self) -> String {
        let from = self.seen.len().saturating_sub(15);
        let lines: Vec<&str> = self.seen[from..].iter().map(|(_, l)| l.as_str()).collect();
        format!("last console lines:\n  {}", lines.join("\n  "))
    }

    /// Kills QEMU, reaps it and writes the console log.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().context("reaping QEMU")?;
            // What the pipe still held.
            while let Ok((at, line)) = self.lines.recv_timeout(Duration::from_millis(100)) {
                self.seen.push((at - self.started, line));
            }
            if let Some(dir) = self.log.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut text = format!("# {}\n", self.command_line);
            for (at, line) in &self.seen {
                text.push_str(&format!("{:10.6} {line}\n", at.as_secs_f64()));
            }
            std::fs::write(&self.log, text)
                .with_context(|| format!("writing {}", self.log.display()))?;
        }
        Ok(())
    }
}

impl Drop for BareVm {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
