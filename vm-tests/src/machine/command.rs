//! Shell commands in the guest, on the command channel, and what is read
//! through them (`/proc/interrupts`).

use std::time::{Duration, Instant};

use super::{Machine, SLICE, TAIL_LINES};
use crate::channel::{Poll, Reply};
use crate::console;
use crate::interrupts::{self, Interrupts};
use crate::wait::retry;
use crate::{Error, Result};

/// Default timeout of one command on the channel.
pub(super) const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the host waits beyond a command's own timeout (the guest kills
/// the command at its timeout and still has to send the reply).
const REPLY_GRACE: Duration = Duration::from_secs(10);
/// Lines of a command's output copied into the harness log.
const LOG_OUTPUT_LINES: usize = 200;
/// Pause between two runs of a command by [`Machine::wait_until_succeeds`]
/// and [`Machine::wait_until_fails`].
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// The shortest timeout of a command run by those.
const RETRY_MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// How much longer than its own deadline an interrupt wait may take: the
/// guest checks the deadline between polls, and the reply still has to come
/// back.
const WAIT_GRACE: Duration = Duration::from_secs(5);

/// The exit status a command must have.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Status 0.
    Success,
    /// Any other status.
    Failure,
}

impl Expect {
    fn accepts(self, status: i32) -> bool {
        match self {
            Expect::Success => status == 0,
            Expect::Failure => status != 0,
        }
    }

    /// "succeed" or "fail", as in "expected to succeed".
    fn verb(self) -> &'static str {
        match self {
            Expect::Success => "succeed",
            Expect::Failure => "fail",
        }
    }
}

impl Machine {
    /// Sets the default timeout of [`Machine::execute`], [`Machine::succeed`]
    /// and [`Machine::fail`] (60 s unless changed).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
    }

    /// Runs a shell command in the guest and returns its exit status and its
    /// output (stdout and stderr), with the default command timeout.
    pub fn execute(&mut self, cmd: &str) -> Result<(i32, String)> {
        self.execute_within(cmd, self.command_timeout)
    }

    /// [`Machine::execute`] with an explicit timeout. The guest kills the
    /// command when it runs out (an [`Error::Timeout`] here); the channel
    /// stays usable.
    pub fn execute_within(&mut self, cmd: &str, timeout: Duration) -> Result<(i32, String)> {
        let what = format!("command {cmd:?}");
        let running = format!("running {what}");
        self.check_alive(&running)?;
        let id = self.next_request_id();
        let secs = timeout.as_secs_f64().ceil().max(1.0) as u64;
        let start = Instant::now();
        self.log(&format!("[{id}] run: {cmd}"));
        let channel = self.channel.as_mut().ok_or(Error::NotRunning)?;
        if let Err(e) = channel.send(id, secs, cmd) {
            let e = Error::io(format!("sending {what} to the command channel"), e);
            return Err(self.annotate(e, &format!("sending {what}")));
        }
        let deadline = start + Duration::from_secs(secs) + REPLY_GRACE;
        let reply = retry(self, deadline, |_| {}, |m| m.poll_reply(id, &running))?;
        let Ok(reply) = reply else {
            return Err(self.timeout(&format!("the reply to {what}"), timeout));
        };
        let output = reply.output_lossy();
        let elapsed = start.elapsed();
        self.log(&format!(
            "[{id}] exit status {} after {:.2} s, output:\n{}",
            reply.status,
            elapsed.as_secs_f64(),
            loggable(&output)
        ));
        if reply.status == 137 && elapsed + Duration::from_millis(500) >= Duration::from_secs(secs)
        {
            return Err(self.timeout(&format!("{what} to finish (the guest killed it)"), timeout));
        }
        Ok((reply.status, output))
    }

    /// Runs a command that must exit with status 0 (default command
    /// timeout); returns its output.
    pub fn succeed(&mut self, cmd: &str) -> Result<String> {
        self.run_expecting(cmd, Expect::Success, None)
    }

    /// [`Machine::succeed`] with an explicit timeout (for long guest scripts).
    pub fn succeed_within(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.run_expecting(cmd, Expect::Success, Some(timeout))
    }

    /// Runs a command that must exit with a non-zero status (default command
    /// timeout); returns its output.
    pub fn fail(&mut self, cmd: &str) -> Result<String> {
        self.run_expecting(cmd, Expect::Failure, None)
    }

    /// [`Machine::fail`] with an explicit timeout.
    pub fn fail_within(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.run_expecting(cmd, Expect::Failure, Some(timeout))
    }

    /// Repeats a command (every [`RETRY_PAUSE`]) until it exits with status 0
    /// and returns its output; fails after `timeout`.
    pub fn wait_until_succeeds(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.repeat_until(cmd, Expect::Success, timeout)
    }

    /// Repeats a command until it exits with a non-zero status and returns its
    /// output; fails after `timeout`.
    pub fn wait_until_fails(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.repeat_until(cmd, Expect::Failure, timeout)
    }

    /// Starts `cmd` in the background of the guest, its output (stdout and
    /// stderr) in the guest file `out`, its stdin `/dev/null`; returns its
    /// pid.
    pub fn spawn(&mut self, cmd: &str, out: &str) -> Result<u32> {
        let pid = self.succeed(&format!("{cmd} > {out} 2>&1 < /dev/null & echo $!"))?;
        pid.trim().parse().map_err(|_| Error::Parse {
            what: "the pid of a background command",
            message: format!("{cmd:?} gave {pid:?}"),
        })
    }

    /// Reads (with /init's `lab_cat`, which forks nothing) and parses
    /// `/proc/interrupts`.
    pub fn interrupts(&mut self) -> Result<Interrupts> {
        Interrupts::parse(&self.succeed("lab_cat /proc/interrupts")?)
    }

    /// Waits until the total count of `irq` reaches `at_least`, and returns
    /// the count seen (which may be higher). The guest polls
    /// `/proc/interrupts` itself, in one command
    /// ([`interrupts::wait_script`]).
    pub fn wait_for_interrupts(
        &mut self,
        irq: u32,
        at_least: u64,
        timeout: Duration,
    ) -> Result<u64> {
        self.wait_for_interrupts_then(irq, at_least, timeout, "")
            .map(|(count, _)| count)
    }

    /// [`Machine::wait_for_interrupts`], then the shell script `then` in the
    /// same guest command (which must succeed); returns the count and the
    /// script's output. One round trip where a wait and a read would take
    /// two.
    pub fn wait_for_interrupts_then(
        &mut self,
        irq: u32,
        at_least: u64,
        timeout: Duration,
        then: &str,
    ) -> Result<(u64, String)> {
        let script = format!("{}{then}", interrupts::wait_script(irq, at_least, timeout));
        let (status, output) = self.execute_within(&script, timeout + WAIT_GRACE)?;
        let (outcome, rest) = interrupts::parse_wait(&output)?;
        match outcome {
            interrupts::WaitOutcome::TimedOut(last) => {
                let seen = last.map_or("IRQ not listed".to_owned(), |c| format!("last count {c}"));
                Err(self.timeout(
                    &format!("IRQ {irq} to reach {at_least} interrupts ({seen})"),
                    timeout,
                ))
            }
            interrupts::WaitOutcome::Reached(count) if status == 0 => Ok((count, rest.to_owned())),
            interrupts::WaitOutcome::Reached(_) => Err(Error::UnexpectedStatus {
                cmd: then.to_owned(),
                expected: Expect::Success.verb(),
                status,
                output: rest.to_owned(),
                console_tail: self.console.tail(TAIL_LINES),
            }),
        }
    }

    /// A fresh request id (never reused, so late replies are recognised).
    pub(super) fn next_request_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Runs `cmd` (with the default command timeout unless `timeout` is
    /// given) and checks its exit status; returns its output.
    fn run_expecting(
        &mut self,
        cmd: &str,
        expect: Expect,
        timeout: Option<Duration>,
    ) -> Result<String> {
        let (status, output) = self.execute_within(cmd, timeout.unwrap_or(self.command_timeout))?;
        if !expect.accepts(status) {
            return Err(Error::UnexpectedStatus {
                cmd: cmd.to_owned(),
                expected: expect.verb(),
                status,
                output,
                console_tail: self.console.tail(TAIL_LINES),
            });
        }
        Ok(output)
    }

    /// Runs `cmd` again and again until its status is what `expect` wants;
    /// the last run starts at least [`RETRY_PAUSE`] before `timeout` ends.
    fn repeat_until(&mut self, cmd: &str, expect: Expect, timeout: Duration) -> Result<String> {
        let start = Instant::now();
        let deadline = start + timeout;
        let last_start = start + timeout.saturating_sub(RETRY_PAUSE);
        let outcome = retry(
            self,
            last_start,
            |_| std::thread::sleep(RETRY_PAUSE),
            |m| {
                let remaining = deadline
                    .saturating_duration_since(Instant::now())
                    .max(RETRY_MIN_TIMEOUT);
                let (status, output) = m.execute_within(cmd, remaining)?;
                Ok::<_, Error>(if expect.accepts(status) {
                    Ok(output)
                } else {
                    Err((status, output))
                })
            },
        )?;
        outcome.map_err(|(status, output)| {
            self.timeout(
                &format!(
                    "{cmd:?} until it {}s (last exit status {status}, output: {:?})",
                    expect.verb(),
                    output.trim_end()
                ),
                timeout,
            )
        })
    }

    /// One look (up to [`SLICE`]) at the command channel for the reply to
    /// request `id`; late replies to older requests are logged and dropped.
    fn poll_reply(&mut self, id: u64, running: &str) -> Result<Result<Reply, ()>> {
        let channel = self.channel.as_mut().ok_or(Error::NotRunning)?;
        match channel.poll(SLICE)? {
            Poll::Reply(r) if r.id == id => return Ok(Ok(r)),
            Poll::Reply(r) => self.log(&format!("ignoring a late reply to request {}", r.id)),
            Poll::Pending => {}
            Poll::Closed => {
                let e = Error::Protocol(format!("the command channel closed while {running}"));
                return Err(self.annotate(e, running));
            }
        }
        self.check_alive(running)?;
        Ok(Err(()))
    }
}

/// Command output for the harness log: control characters escaped (the log
/// stays text), at most [`LOG_OUTPUT_LINES`] lines.
fn loggable(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let mut shown: Vec<String> = lines
        .iter()
        .take(LOG_OUTPUT_LINES)
        .map(|l| {
            l.chars()
                .map(|c| {
                    if c.is_control() && c != '\t' {
                        c.escape_debug().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    if lines.len() > LOG_OUTPUT_LINES {
        shown.push(format!(
            "... ({} more lines)",
            lines.len() - LOG_OUTPUT_LINES
        ));
    }
    console::quote(&shown)
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
}
