//! The serial console, the kernel log and the harness log of a machine.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use regex::Regex;

use super::{Machine, SLICE};
use crate::{Error, Result};

impl Machine {
    /// The serial console log of this VM (written by QEMU, kept after the test).
    pub fn console_log_path(&self) -> &Path {
        self.console.path()
    }

    /// The harness log: QEMU command line and stderr, commands and results.
    pub fn harness_log_path(&self) -> &Path {
        &self.harness_log_path
    }

    /// Everything the console printed so far.
    pub fn console_text(&self) -> String {
        self.console.with(|b| b.text())
    }

    /// The last `n` console lines, formatted for messages.
    pub fn console_tail(&self, n: usize) -> String {
        self.console.tail(n)
    }

    /// Waits until a console line matches `regex` and returns that line.
    ///
    /// Lines are consumed: the search starts after the line matched by the
    /// previous call. The unterminated last line (e.g. a prompt) is matched
    /// too, and consumed like the others ([`ConsoleBuffer::find_line`](crate::console::ConsoleBuffer::find_line)).
    pub fn wait_for_console_text(&mut self, regex: &str, timeout: Duration) -> Result<String> {
        let re = Regex::new(regex)?;
        self.wait_until(
            &format!("console text matching /{regex}/"),
            timeout,
            |m| m.console.wait_for_output(SLICE),
            |m| {
                let cursor = m.console_cursor;
                let found = m.console.with(|b| b.find_line(cursor, &re));
                Ok(found.map(|(next, line)| {
                    m.console_cursor = next;
                    line
                }))
            },
        )
    }

    /// Expects a kernel report from now on: a console line that contains
    /// `pattern` and would fail the test
    /// ([`KERNEL_PROBLEMS`](crate::console::KERNEL_PROBLEMS)) no longer does.
    /// The test checks it with [`Machine::wait_for_kernel_report`]. A report
    /// expected from boot on is [`VmConfig::expect_kernel_report`](crate::VmConfig::expect_kernel_report).
    pub fn expect_kernel_report(&mut self, pattern: &str) {
        self.log(&format!("expecting kernel reports containing {pattern:?}"));
        self.console.expect(pattern);
    }

    /// Waits until an expected report line containing `pattern` has
    /// appeared on the console and returns it. Any other kernel problem
    /// still fails the wait at once.
    pub fn wait_for_kernel_report(&mut self, pattern: &str, timeout: Duration) -> Result<String> {
        self.wait_until(
            &format!("the kernel report {pattern:?}"),
            timeout,
            |m| m.console.wait_for_output(SLICE),
            |m| {
                Ok(m.console
                    .expected_reports()
                    .into_iter()
                    .find(|line| line.contains(pattern)))
            },
        )
    }

    /// The expected kernel reports seen so far, in order.
    pub fn kernel_reports(&self) -> Vec<String> {
        self.console.expected_reports()
    }

    /// The kernel log (`dmesg`).
    pub fn kernel_log(&mut self) -> Result<String> {
        self.succeed("dmesg")
    }

    /// The lines of the kernel log that contain `text` (`dmesg | grep -F`,
    /// empty if none): what a check looks for, without bringing the whole
    /// log over the serial line (12 KB of a debug kernel's boot log cost
    /// about 0.15 s a time, more on a loaded host).
    pub fn kernel_log_lines_with(&mut self, text: &str) -> Result<String> {
        if text.contains(['\'', '\n']) {
            return Err(Error::Parse {
                what: "a kernel log filter",
                message: format!("{text:?} has a quote or a newline"),
            });
        }
        self.succeed(&format!("dmesg | grep -F -e '{text}' || [ $? = 1 ]"))
    }

    /// Appends a timestamped line to the harness log.
    pub(super) fn log(&self, message: &str) {
        let mut f = &self.harness_log;
        let _ = writeln!(
            f,
            "[{:9.3}] {message}",
            self.started.elapsed().as_secs_f64()
        );
    }
}
