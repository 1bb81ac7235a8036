//! `cargo xtask trace` as a user meets it: without a VM it says how to
//! start one; against `cargo xtask vm --no-build --trace` it prints the irq
//! tracepoints of the keys `cargo xtask keys` presses (one
//! `irq_handler_entry` of `rust_keyboard_irq` per byte of the set-1 table,
//! each followed by `ret=handled`) and stops on Ctrl-C (SIGINT); `cargo
//! xtask gdb` refuses a VM without a gdb stub.
//!
//! Needs `$LAB_ARTIFACTS` (set by `cargo xtask test`); fails, never skips,
//! without it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;
use common::{Killed, lab_artifacts, wait_for};
use vm_tests::trace::{self, Ret};

/// How long the boot may take (a TCG boot takes about 2 s on 2 cores).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the key's trace lines may take.
const TRACE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished `xtask` said.
struct Said {
    status: ExitStatus,
    stderr: String,
}

/// `xtask ARGS` with the cache `cache`, run to its end (bounded; its
/// output is small enough for the pipes).
fn xtask(cache: &Path, args: &[&str]) -> Said {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(args)
            .env("LAB_CACHE_DIR", cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (status, stderr) =
        child.wait_with_stderr(&format!("`xtask {}` to exit", args.join(" ")), BOOT_TIMEOUT);
    Said { status, stderr }
}

#[test]
fn trace_streams_the_irq_tracepoints_of_a_running_vm() {
    let artifacts = lab_artifacts();
    let cache = tempfile::tempdir().unwrap();

    // No VM yet: both commands say how to start one.
    for (command, start) in [
        ("trace", "cargo xtask vm --trace"),
        ("gdb", "cargo xtask vm --kernel debug --gdb"),
    ] {
        let out = xtask(cache.path(), &[command]);
        assert!(
            !out.status.success(),
            "`xtask {command}` succeeded without a VM"
        );
        assert!(
            out.stderr.contains("no lab VM is running") && out.stderr.contains(start),
            "{}",
            out.stderr
        );
    }

    // QEMU is xtask's child with PR_SET_PDEATHSIG: it dies with it.
    let vm_err = cache.path().join("vm.stderr");
    let _vm = Killed(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["vm", "--no-build", "--trace"])
            .env("LAB_ARTIFACTS", &artifacts)
            .env("LAB_CACHE_DIR", cache.path())
            .env_remove("LAB_LOG_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&vm_err).unwrap())
            .spawn()
            .unwrap(),
    );
    let log = cache.path().join("logs/vm-console.log");
    wait_for(
        "the VM to be ready with its trace stream",
        BOOT_TIMEOUT,
        || {
            let console = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                !console.contains("LAB-INIT-ERROR"),
                "/init failed:\n{console}"
            );
            (console.contains("stream to ttyS2") && console.contains("LAB-INIT-READY"))
                .then_some(())
        },
    );

    // A VM without a gdb stub.
    let out = xtask(cache.path(), &["gdb"]);
    assert!(
        !out.status.success() && out.stderr.contains("has no gdb stub"),
        "{}",
        out.stderr
    );

    let mut tracer = Killed(
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("trace")
            .env("LAB_CACHE_DIR", cache.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let stdout = tracer.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    let mut banner = String::new();
    BufReader::new(tracer.0.stderr.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    assert!(banner.starts_with("trace: "), "{banner}");

    let keys = xtask(cache.path(), &["keys", "a"]);
    assert!(keys.status.success(), "{}", keys.stderr);
    let bytes = [
        vm_tests::scancodes::make_code("a").unwrap(),
        vm_tests::scancodes::break_code("a").unwrap(),
    ]
    .concat();
    let calls = wait_for("the trace lines of the key", TRACE_TIMEOUT, || {
        let text = lines.lock().unwrap().join("\n");
        let parsed = trace::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let calls = trace::handler_calls(&parsed, 1, "rust_keyboard_irq").ok()?;
        (calls.len() >= bytes.len()).then_some(calls)
    });
    std::thread::sleep(Duration::from_millis(500));
    let text = lines.lock().unwrap().join("\n");
    assert_eq!(
        calls.len(),
        bytes.len(),
        "one handler call per byte of {bytes:x?}:\n{text}"
    );
    assert!(
        calls.iter().all(|c| c.ret == Ret::Handled),
        "every key byte handled:\n{text}"
    );
    eprintln!("`cargo xtask trace` printed:\n{text}");

    // Ctrl-C stops it.
    let pid = tracer.0.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of our own child, which is not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = wait_for("`xtask trace` to stop on SIGINT", TRACE_TIMEOUT, || {
        tracer.0.try_wait().unwrap()
    });
    assert!(!status.success(), "{status}");
    reader.join().unwrap();
}
