//! VM tests of the harness itself: the command channel, console scanning,
//! shutdown. Each boots the lab VM from `$LAB_ARTIFACTS`.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use vm_tests::{Artifacts, Error, Machine, VmConfig, run_test};

/// The timeout of the waits that must time out.
const SHORT: Duration = Duration::from_millis(500);

fn config() -> Result<VmConfig> {
    Ok(VmConfig::from_artifacts(&Artifacts::from_env()?)?)
}

/// The lab VM without the driver, restored from the snapshot the channel
/// tests share (they read no boot line; the tests of the boot itself, a
/// panic, a crash, a console warning, boot).
fn channel_vm() -> Result<VmConfig> {
    Ok(config()?.with_append("lab.nomodule").with_snapshot())
}

#[test]
fn command_channel_is_byte_exact() -> Result<()> {
    let mut m = Machine::start(channel_vm()?)?;
    // Exit status, stdout and stderr, no trailing newline.
    let (status, out) = m.execute("echo out; echo err >&2; printf tail; exit 3")?;
    ensure!(status == 3, "status {status}");
    ensure!(out == "out\nerr\ntail", "output {out:?}");
    // No output at all.
    ensure!(m.succeed("true")?.is_empty(), "true printed something");
    // Bytes that would break a line protocol: NUL, CR, ESC, invalid UTF-8,
    // and lines that look like protocol markers.
    let out = m.succeed(r"printf 'a\000b\r\n\033[6n\n@@LAB-END 1 0\n@@LAB-BEGIN 9\n'")?;
    ensure!(
        out == "a\u{0}b\r\n\u{1b}[6n\n@@LAB-END 1 0\n@@LAB-BEGIN 9\n",
        "output {out:?}"
    );
    // Large output and a large script (beyond a tty's 4096-byte line limit).
    let out = m.succeed("i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done")?;
    ensure!(
        out.lines().count() == 3000 && out.ends_with("line-2999\n"),
        "large output"
    );
    let script = format!("x='{}'; echo ${{#x}}", "y".repeat(20_000));
    ensure!(m.succeed(&script)?.trim() == "20000", "large script");
    // The script's own bytes arrive untouched: spaces at its ends, a tab,
    // backslash sequences, a non-ASCII character.
    let out = m.succeed("  printf '%s\\n' 'tab\t\u{e9} \\c %b \\0101'  ")?;
    ensure!(out == "tab\t\u{e9} \\c %b \\0101\n", "output {out:?}");
    // Quotes and shell syntax pass through untouched.
    let out = m.succeed(r#"a="it's"; echo "$a" '$HOME' `echo sub` | tr a-z A-Z"#)?;
    ensure!(out == "IT'S $HOME SUB\n", "output {out:?}");
    m.shutdown()?;
    Ok(())
}

#[test]
fn succeed_fail_and_timeouts() -> Result<()> {
    let mut m = Machine::start(channel_vm()?)?;
    m.fail("false")?;
    match m.succeed("echo nope; exit 7") {
        Err(Error::UnexpectedStatus {
            status: 7, output, ..
        }) if output == "nope\n" => {}
        other => anyhow::bail!("succeed of a failing command gave {other:?}"),
    }
    ensure!(matches!(
        m.fail("true"),
        Err(Error::UnexpectedStatus { status: 0, .. })
    ));

    // A hung command times out, and the channel keeps working after it.
    // The waits are short (half a second): what they prove is that each
    // wait ends, not how long it lasts.
    let t = Instant::now();
    let r = m.execute_within("sleep 30", SHORT);
    ensure!(
        matches!(r, Err(Error::Timeout { .. })),
        "sleep 30 with a {SHORT:?} timeout gave {r:?}"
    );
    ensure!(
        t.elapsed() < Duration::from_secs(15),
        "timeout took {:?}",
        t.elapsed()
    );
    ensure!(m.succeed("echo alive")? == "alive\n");

    // wait_until_succeeds retries; wait_until_fails too. The condition
    // changes after the first tries (the log shows them failing).
    m.succeed("(sleep 0.5; touch /tmp/flag) >/dev/null 2>&1 &")?;
    m.wait_until_succeeds("test -e /tmp/flag", Duration::from_secs(30))?;
    m.succeed("(sleep 0.5; rm /tmp/flag) >/dev/null 2>&1 &")?;
    m.wait_until_fails("test -e /tmp/flag", Duration::from_secs(30))?;
    let r = m.wait_until_succeeds("false", SHORT);
    ensure!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");

    // Console waits consume lines and time out with a clear message. The
    // console shell's prompt (`[rust-kbd-lab /root]# `) ends in no newline:
    // the first echo ends its line, so each marker has a line of its own.
    m.succeed(
        "echo > /dev/console; echo marker-one > /dev/console; echo marker-two > /dev/console",
    )?;
    let line = m.wait_for_console_text("marker-(one|two)", Duration::from_secs(10))?;
    ensure!(line == "marker-one", "{line}");
    let line = m.wait_for_console_text("marker-(one|two)", Duration::from_secs(10))?;
    ensure!(line == "marker-two", "{line}");
    match m.wait_for_console_text("marker-one", SHORT) {
        Err(e @ Error::Timeout { .. }) => {
            let msg = e.to_string();
            ensure!(
                msg.contains("marker-one") && msg.contains("  | "),
                "message: {msg}"
            );
        }
        other => anyhow::bail!("consumed line matched again: {other:?}"),
    }
    m.shutdown()?;
    ensure!(
        m.exit_status().is_some_and(|s| s.success()),
        "QEMU exit {:?}",
        m.exit_status()
    );
    ensure!(matches!(m.succeed("true"), Err(Error::NotRunning)));
    Ok(())
}

#[test]
fn kernel_panic_fails_at_once() -> Result<()> {
    // No init at all: the kernel panics during boot.
    let config = config()?.with_append("rdinit=/nonexistent init=/nonexistent");
    let t = Instant::now();
    match Machine::start(config) {
        Err(Error::KernelProblem { line, console_tail }) => {
            ensure!(line.contains("Kernel panic"), "{line}");
            ensure!(console_tail.contains("  | "), "no console tail");
        }
        Err(e) => anyhow::bail!("expected a kernel problem, got: {e}"),
        Ok(_) => anyhow::bail!("a VM without init booted"),
    }
    ensure!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    Ok(())
}

#[test]
fn crash_kills_qemu_and_keeps_the_console_log() -> Result<()> {
    let mut m = Machine::start(config()?.with_append("lab.nomodule").with_memory(128))?;
    ensure!(m.succeed("grep MemTotal /proc/meminfo")?.contains("kB"));
    ensure!(m.console_log_path().exists());
    m.crash();
    ensure!(matches!(m.succeed("true"), Err(Error::NotRunning)));
    ensure!(
        m.exit_status().is_some_and(|s| !s.success()),
        "QEMU exit status after a kill: {:?}",
        m.exit_status()
    );
    let log = std::fs::read_to_string(m.console_log_path())?;
    ensure!(
        log.contains("LAB-INIT-READY"),
        "console log lacks the ready line"
    );
    Ok(())
}

/// `run_test` ends every test with a health check: a `WARNING:` that
/// reached the console fails the test even if the test itself passed.
#[test]
fn run_test_fails_on_a_console_warning() -> Result<()> {
    let r = run_test(config()?.with_append("lab.nomodule"), |m| {
        // Anything written to /dev/kmsg is a kernel log line on the console.
        m.succeed("echo 'WARNING: injected by the harness test' > /dev/kmsg")?;
        Ok::<_, Error>(())
    });
    match r {
        Err(Error::KernelProblem { line, .. }) => {
            ensure!(line.contains("WARNING: injected"), "{line}");
        }
        other => anyhow::bail!("expected a kernel problem, got {other:?}"),
    }
    Ok(())
}

/// The interactive mode on a scripted input: shell commands, keys, the IRQ
/// line, logs, errors, and `:quit` ending it.
#[test]
fn interactive_mode_drives_the_vm() -> Result<()> {
    run_test(config()?, |m| {
        let input =
            "echo hello\n:irq\n:key a\n:irq\n:log 50\n:bogus\nexit 3\n\n:quit\necho never\n";
        let mut out = Vec::new();
        m.interact_with(input.as_bytes(), &mut out, false)?;
        let out = String::from_utf8(out)?;
        ensure!(out.contains("hello\n[exit status 0]\n"), "{out}");
        ensure!(out.contains("[exit status 3]"), "{out}");
        ensure!(out.contains("error: unknown command :bogus"), "{out}");
        ensure!(!out.contains("never"), "input after :quit was run: {out}");
        let totals: Vec<u64> = out
            .lines()
            .filter_map(|l| l.strip_prefix("IRQ 1: total "))
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        ensure!(
            totals.len() == 2 && totals[1] == totals[0] + 2,
            "IRQ 1 totals {totals:?} around one key press: {out}"
        );
        ensure!(out.contains("scancode 9e released"), "{out}");
        Ok(())
    })
}

/// [`VmConfig::with_snapshot`]: the first start boots and saves the ready
/// machine, the second restores it. The restored guest is the saved one (its
/// kernel log holds the boot and the driver's probe, the driver is bound)
/// and a live one (a key through QMP raises IRQ 1 and reaches the driver),
/// and it is isolated: what the first machine did after the save, and what
/// either does while both run, is not in the other. The kernel command line
/// carries a word unique to this run, so the first start cannot find a
/// snapshot of an earlier run; the test removes its snapshot at the end.
#[test]
fn snapshot_restores_a_live_and_isolated_guest() -> Result<()> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let config = config()?
        .with_append(&format!("lab.snapshot_test={}", nanos.as_nanos()))
        .with_snapshot();
    let mut first = Machine::start(config.clone())?;
    ensure!(
        first.restored_from().is_none(),
        "the first start restored {:?}",
        first.restored_from()
    );
    first.succeed("touch /tmp/after-save")?;
    let restored = Instant::now();
    let mut second = Machine::start(config)?;
    let restore_secs = restored.elapsed().as_secs_f64();
    let snapshot = second
        .restored_from()
        .map(ToOwned::to_owned)
        .ok_or_else(|| anyhow::anyhow!("the second start booted instead of restoring"))?;
    eprintln!(
        "restored from {} in {restore_secs:.2} s",
        snapshot.display()
    );
    let result = (|| -> Result<()> {
        let log = second.succeed("dmesg")?;
        ensure!(
            log.contains("Linux version") && log.contains("probed: irq 1"),
            "the restored kernel log lacks the boot or the probe:\n{log}"
        );
        second.succeed("[ -e /sys/bus/platform/drivers/rust_keyboard/KBD0001:00 ]")?;
        ensure!(
            second.succeed("[ -e /tmp/after-save ] && echo yes || echo no")? == "no\n",
            "a file made after the save is in the restored machine"
        );
        second.succeed("touch /tmp/second")?;
        ensure!(
            first.succeed("[ -e /tmp/second ] && echo yes || echo no")? == "no\n",
            "a file of the restored machine is in the first one"
        );
        let irqs = second.interrupts()?.count(1).unwrap_or(0);
        second.send_key("a")?;
        second.wait_for_interrupts(1, irqs + 1, Duration::from_secs(20))?;
        second.wait_until_succeeds(
            "dmesg | grep -q 'rust_keyboard KBD0001:00: scancode 1e pressed'",
            Duration::from_secs(20),
        )?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&snapshot);
    result?;
    second.shutdown()?;
    first.shutdown()?;
    Ok(())
}
