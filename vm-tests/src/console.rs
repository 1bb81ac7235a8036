//! The serial console (ttyS0): log file, line buffer and kernel-problem scanning.
//!
//! QEMU writes the console straight into the per-VM log file (a `file`
//! chardev). That makes the log lossless by construction: a file write never
//! blocks, whereas a unix socket that is read a little late makes QEMU's
//! UART stall and the kernel's polling console driver then drops characters.
//! [`Console`] follows that file from a background thread, splits it into
//! lines and scans every line for kernel problems ([`kernel_problem`]) and
//! for failures reported by the guest's /init.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the follower thread looks for new console output.
const POLL: Duration = Duration::from_millis(10);

/// Substrings of console lines that mean the kernel is in trouble: every
/// report the lab's kernels can give, the debug kernel's checkers included
/// (kernel/debug.config). Each one fails a test at once unless the test
/// said it expects it ([`ConsoleBuffer::expect`]).
pub const KERNEL_PROBLEMS: [&str; 20] = [
    // panic(), oops, BUG(), WARN() and the reports printed as a BUG: or a
    // WARNING: line (sleeping in atomic context, soft lockup, scheduling
    // while atomic, lockdep's reports, KASAN's, ODEBUG's).
    "Kernel panic",
    "Oops",
    "BUG:",
    "WARNING:",
    "general protection fault",
    // The interrupt core (kernel/irq/spurious.c, kernel/irq/manage.c).
    "nobody cared",
    "Disabling IRQ #",
    "genirq:",
    // lockdep (kernel/locking/lockdep.c), named on their own too.
    "inconsistent lock state",
    "possible circular locking dependency",
    "possible recursive locking",
    // The sanitizers.
    "KASAN:",
    "UBSAN:",
    // Hung tasks (kernel/hung_task.c) and RCU stalls (kernel/rcu/tree_stall.h).
    "blocked for more than",
    "rcu: INFO:",
    "detected stalls on CPUs",
    // Corruption checks (lib/list_debug.c, lib/refcount.c, lib/debugobjects.c).
    "list_add corruption",
    "list_del corruption",
    "refcount_t:",
    "ODEBUG:",
];

/// Prefixes of lines the guest /init prints when it fails.
pub const INIT_FAILURES: [&str; 2] = ["LAB-INIT-FAILED:", "LAB-INIT-ERROR:"];

/// The line the guest /init prints once it is ready.
pub const INIT_READY: &str = "LAB-INIT-READY";

/// Which of [`KERNEL_PROBLEMS`] a console line reports, if any.
pub fn kernel_problem(line: &str) -> Option<&'static str> {
    KERNEL_PROBLEMS.into_iter().find(|p| line.contains(p))
}

/// Whether a console line is an /init failure ([`INIT_FAILURES`]).
pub fn init_failure(line: &str) -> bool {
    INIT_FAILURES
        .iter()
        .any(|p| line.trim_start().starts_with(p))
}

/// Lines quoted for messages: each prefixed with `  | `, joined with
/// newlines.
pub(crate) fn quote<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    lines
        .into_iter()
        .map(|l| format!("  | {}", l.as_ref()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last `n` of `items` (all of them if there are fewer).
pub(crate) fn last<T>(items: &[T], n: usize) -> &[T] {
    &items[items.len().saturating_sub(n)..]
}

/// Console output split into lines, with the first problem found.
#[derive(Debug, Clone, Default)]
pub struct ConsoleBuffer {
    lines: Vec<String>,
    partial: Vec<u8>,
    problem: Option<String>,
    init_failure: Option<String>,
    bytes: u64,
    expected: Vec<String>,
    expected_seen: Vec<String>,
}

impl ConsoleBuffer {
    /// Appends raw console bytes. Lines end with `\n`; `\r` is dropped and
    /// invalid UTF-8 is replaced.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
        for &b in bytes {
            match b {
                b'\n' => {
                    let line = String::from_utf8_lossy(&self.partial).into_owned();
                    self.partial.clear();
                    self.scan(&line);
                    self.lines.push(line);
                }
                b'\r' => {}
                _ => self.partial.push(b),
            }
        }
    }

    /// Scans the unterminated last line too (at end of output).
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = self.partial_line();
            self.scan(&line);
        }
    }

    /// Expects a kernel report: from now on a problem line containing
    /// `pattern` is not a problem but an expected report
    /// ([`ConsoleBuffer::expected_reports`]). Lines already scanned stay as
    /// they were.
    pub fn expect(&mut self, pattern: &str) {
        self.expected.push(pattern.to_owned());
    }

    fn scan(&mut self, line: &str) {
        if kernel_problem(line).is_some() {
            if self.expected.iter().any(|p| line.contains(p.as_str())) {
                self.expected_seen.push(line.to_owned());
            } else if self.problem.is_none() {
                self.problem = Some(line.to_owned());
            }
        }
        if self.init_failure.is_none() && init_failure(line) {
            self.init_failure = Some(line.to_owned());
        }
    }

    /// Complete lines so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The unterminated last line (e.g. a shell prompt).
    pub fn partial_line(&self) -> String {
        String::from_utf8_lossy(&self.partial).into_owned()
    }

    /// The first line at or after line `cursor` that matches `re`, and the
    /// cursor that consumes it.
    ///
    /// The unterminated last line (e.g. a prompt) is matched too. It is line
    /// number `lines().len()` once its newline arrives, and the returned
    /// cursor is past it, so a line matched while it was still partial is
    /// not matched again when it completes.
    pub fn find_line(&self, cursor: usize, re: &regex::Regex) -> Option<(usize, String)> {
        if let Some(i) = self.lines.iter().skip(cursor).position(|l| re.is_match(l)) {
            return Some((cursor + i + 1, self.lines[cursor + i].clone()));
        }
        let partial = self.partial_line();
        (cursor <= self.lines.len() && re.is_match(&partial))
            .then(|| (self.lines.len() + 1, partial))
    }

    /// The first line reporting a kernel problem.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// The first line reporting an /init failure.
    pub fn init_failure(&self) -> Option<&str> {
        self.init_failure.as_deref()
    }

    /// The problem lines that matched an expected report, in order.
    pub fn expected_reports(&self) -> &[String] {
        &self.expected_seen
    }

    /// Number of bytes seen.
    pub fn len_bytes(&self) -> u64 {
        self.bytes
    }

    /// The last `n` lines (the partial line included), quoted for error
    /// messages, each prefixed with `  | `.
    pub fn tail(&self, n: usize) -> String {
        let partial = self.partial_line();
        let mut lines: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        if !partial.is_empty() {
            lines.push(&partial);
        }
        if lines.is_empty() {
            return quote(["(no console output)"]);
        }
        quote(last(&lines, n))
    }

    /// All output as text.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        if !self.lines.is_empty() {
            text.push('\n');
        }
        text.push_str(&self.partial_line());
        text
    }
}

struct Shared {
    buffer: Mutex<ConsoleBuffer>,
    changed: Condvar,
}

/// Follows a console log file that QEMU writes, from a background thread.
pub struct Console {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Console {
    /// Starts following `path` (which should exist; it is read from the
    /// start), with the kernel reports in `expected` expected from the first
    /// line on ([`ConsoleBuffer::expect`]).
    pub fn follow(path: &Path, expected: &[String]) -> io::Result<Console> {
        let file = File::open(path)?;
        let mut buffer = ConsoleBuffer::default();
        for pattern in expected {
            buffer.expect(pattern);
        }
        let shared = Arc::new(Shared {
            buffer: Mutex::new(buffer),
            changed: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("console-follower".into())
                .spawn(move || follow_loop(file, &shared, &stop))?
        };
        Ok(Console {
            shared,
            stop,
            thread: Some(thread),
            path: path.to_owned(),
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the buffer.
    pub fn with<R>(&self, f: impl FnOnce(&ConsoleBuffer) -> R) -> R {
        f(&self.lock())
    }

    /// The first kernel problem line, if any.
    pub fn problem(&self) -> Option<String> {
        self.lock().problem().map(str::to_owned)
    }

    /// The first /init failure line, if any.
    pub fn init_failure(&self) -> Option<String> {
        self.lock().init_failure().map(str::to_owned)
    }

    /// Expects a kernel report from now on ([`ConsoleBuffer::expect`]).
    pub fn expect(&self, pattern: &str) {
        self.lock().expect(pattern);
    }

    /// The expected reports seen so far ([`ConsoleBuffer::expected_reports`]).
    pub fn expected_reports(&self) -> Vec<String> {
        self.lock().expected_reports().to_vec()
    }

    /// The last `n` lines, formatted for error messages.
    pub fn tail(&self, n: usize) -> String {
        self.lock().tail(n)
    }

    /// Blocks until new output arrives or `timeout` passes.
    pub fn wait_for_output(&self, timeout: Duration) {
        let guard = self.lock();
        let seen = guard.len_bytes();
        let _ = self
            .shared
            .changed
            .wait_timeout_while(guard, timeout, |b| b.len_bytes() == seen);
    }

    /// Reads what is left in the file, scans the last partial line and stops
    /// the thread. Call after QEMU has exited.
    pub fn finish(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn lock(&self) -> MutexGuard<'_, ConsoleBuffer> {
        // A poisoned lock only means the follower panicked mid-update; the
        // buffer is still the best information there is.
        self.shared.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.finish();
    }
}

fn follow_loop(mut file: File, shared: &Shared, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Read the stop flag before reading, so the last read after the
        // flag is set sees everything QEMU wrote before it exited.
        let stopping = stop.load(Ordering::SeqCst);
        let mut got_any = false;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got_any = true;
                    let mut b = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
                    b.push_bytes(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if stopping {
            let mut b = shared.buffer.lock().unwrap_or_else(|e| e.into_inner());
            b.finish();
            drop(b);
            shared.changed.notify_all();
            return;
        }
        if got_any {
            shared.changed.notify_all();
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_matched_while_partial_is_consumed_when_it_completes() {
        let re = regex::Regex::new("marker-(one|two)").unwrap();
        let mut b = ConsoleBuffer::default();
        b.push_bytes(b"boot\nmarker-one");
        let (cursor, line) = b.find_line(0, &re).unwrap();
        assert_eq!(line, "marker-one");
        assert_eq!(b.find_line(cursor, &re), None);
        b.push_bytes(b"\r\n");
        assert_eq!(b.find_line(cursor, &re), None);
        b.push_bytes(b"marker-two\r\n");
        assert_eq!(b.find_line(cursor, &re), Some((3, "marker-two".into())));
        // A complete line is consumed the same way.
        assert_eq!(b.find_line(0, &re), Some((2, "marker-one".into())));
    }

    #[test]
    fn lines_and_problems() {
        let mut b = ConsoleBuffer::default();
        b.push_bytes(b"[    0.1] hello\r\n[    0.2] wor");
        assert_eq!(b.lines(), ["[    0.1] hello"]);
        assert_eq!(b.partial_line(), "[    0.2] wor");
        assert!(b.problem().is_none());
        b.push_bytes(b"ld\n[    3.0] WARNING: CPU: 0 PID: 1 at foo.c:12\n[    3.1] Kernel panic - not syncing\n");
        assert_eq!(
            b.problem(),
            Some("[    3.0] WARNING: CPU: 0 PID: 1 at foo.c:12")
        );
        assert!(b.tail(2).contains("  | [    3.1] Kernel panic"));
        assert!(!b.tail(2).contains("world"));
    }

    #[test]
    fn quoted_tails() {
        assert_eq!(quote(last(&["a", "b", "c"], 2)), "  | b\n  | c");
        assert_eq!(last(&["a"], 5), ["a"]);
        assert_eq!(quote(Vec::<String>::new()), "");
        assert_eq!(ConsoleBuffer::default().tail(3), "  | (no console output)");
        let mut b = ConsoleBuffer::default();
        b.push_bytes(b"one\ntwo\nprompt# ");
        assert_eq!(b.tail(2), "  | two\n  | prompt# ");
    }

    #[test]
    fn every_problem_kind_is_detected() {
        for line in [
            "[    1.0] Kernel panic - not syncing: Attempted to kill init!",
            "[    1.0] Oops: general protection fault, probably for non-canonical address",
            "[    1.0] BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "[    1.0] WARNING: CPU: 0 PID: 57 at rust/kernel/irq.rs:10",
            "[    1.0] general protection fault: 0000 [#1] SMP",
            "[    1.0] irq 1: nobody cared (try booting with the \"irqpoll\" option)",
            "[    1.0] Disabling IRQ #1",
            "[    1.0] genirq: Flags mismatch irq 1. 00000080 (c_keyboard_irq) vs. 00000000 (x)",
            "[    1.0] BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
            "[    1.0] WARNING: inconsistent lock state",
            "[    1.0] WARNING: possible circular locking dependency detected",
            "[    1.0] WARNING: possible recursive locking detected",
            "[    1.0] BUG: KASAN: slab-use-after-free in bug_handler+0x1c/0x60",
            "[    1.0] UBSAN: array-index-out-of-bounds in drivers/x.c:12:3",
            "[    1.0] INFO: task cat:61 blocked for more than 15 seconds.",
            "[    1.0] rcu: INFO: rcu_preempt self-detected stall on CPU",
            "[    1.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
            "[    1.0] list_add corruption. prev->next should be next (ffff8880), but was ffff8881.",
            "[    1.0] list_del corruption, ffff888003a1c2d0->next is LIST_POISON1 (dead000000000100)",
            "[    1.0] refcount_t: underflow; use-after-free.",
            "[    1.0] ODEBUG: free active (active state 0) object: ffff8880 object type: work_struct",
        ] {
            assert!(kernel_problem(line).is_some(), "{line}");
        }
        for line in [
            "[    1.8] rust_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64",
            "[    2.0] rust_keyboard: scancode 1e pressed",
            "LAB-INIT-READY",
        ] {
            assert!(kernel_problem(line).is_none(), "{line}");
        }
    }

    #[test]
    fn expected_reports_are_set_aside_and_others_still_fail() {
        let mut b = ConsoleBuffer::default();
        b.expect("BUG: sleeping function called from invalid context");
        b.push_bytes(b"[ 1.0] BUG: sleeping function called from invalid context at x.c:1\n");
        assert!(b.problem().is_none());
        assert_eq!(
            b.expected_reports(),
            ["[ 1.0] BUG: sleeping function called from invalid context at x.c:1"]
        );
        b.push_bytes(b"[ 1.1] rust_keyboard: scancode 1e pressed\n[ 1.2] BUG: KASAN: x\n");
        assert_eq!(b.problem(), Some("[ 1.2] BUG: KASAN: x"));
        assert_eq!(b.expected_reports().len(), 1);
    }

    #[test]
    fn init_failures_and_finish() {
        let mut b = ConsoleBuffer::default();
        b.push_bytes(b"lab-init: ok\nLAB-INIT-ERROR: insmod failed (status 1)\n[ 9.0] BUG: x");
        assert_eq!(
            b.init_failure(),
            Some("LAB-INIT-ERROR: insmod failed (status 1)")
        );
        assert!(b.problem().is_none());
        b.finish();
        assert_eq!(b.problem(), Some("[ 9.0] BUG: x"));
    }

    #[test]
    fn follows_a_growing_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let mut f = File::create(&path).unwrap();
        let mut c = Console::follow(&path, &[]).unwrap();
        f.write_all(b"one\ntw").unwrap();
        f.flush().unwrap();
        for _ in 0..200 {
            if c.with(|b| b.lines().len()) == 1 {
                break;
            }
            c.wait_for_output(Duration::from_millis(20));
        }
        assert_eq!(c.with(|b| b.lines().to_vec()), ["one"]);
        f.write_all(b"o\n").unwrap();
        c.finish();
        assert_eq!(c.with(|b| b.text()), "one\ntwo\n");
    }
}
