//! What xtask's integration tests share: the artifact directory they need,
//! a child process that dies with the test, and one bounded wait.

// Every test binary compiles this module and uses only a part of it.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// `$LAB_ARTIFACTS`, which `cargo xtask test` sets; the test fails, never
/// skips, without it.
pub fn lab_artifacts() -> OsString {
    std::env::var_os("LAB_ARTIFACTS")
        .filter(|d| !d.is_empty())
        .expect(
            "LAB_ARTIFACTS is not set: run `cargo xtask test` (or `cargo xtask build` and set it)",
        )
}

/// A child process killed when dropped (a failed assertion included).
pub struct Killed(pub Child);

impl Killed {
    /// Waits (bounded by `timeout`, panicking with `what` after it) for the
    /// child to exit, then returns its status and everything it wrote to
    /// its piped stderr (its output must be small enough for the pipe).
    pub fn wait_with_stderr(&mut self, what: &str, timeout: Duration) -> (ExitStatus, String) {
        let status = wait_for(what, timeout, || self.0.try_wait().unwrap());
        let mut stderr = String::new();
        if let Some(mut pipe) = self.0.stderr.take() {
            pipe.read_to_string(&mut stderr).unwrap();
        }
        (status, stderr)
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `done` every 100 ms until it gives a value; panics naming `what`
/// once `timeout` has passed.
pub fn wait_for<T>(what: &str, timeout: Duration, mut done: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = done() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
