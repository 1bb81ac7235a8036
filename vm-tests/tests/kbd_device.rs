//! `/dev/kbd0001`, per interrupt mode (`mode_hard::`, `mode_threaded::`,
//! `mode_workqueue::`, each on its own VM booted with
//! `rust_keyboard.mode=N`).
//!
//! The expected lines come from the oracles of [`vm_tests::kbd`] (set-1
//! bytes, the kernel's `KEY_*` names) and from what the test sent; the
//! reference reader of every test (`common::Stream`, a `cat` opened right
//! after probe) must always get exactly those lines with `seq` +1 each.
//! Reads with a chosen buffer size, `O_NONBLOCK` and errno names go through
//! `kbdtool` ([`vm_tests::guest_tool`]), copied into the guest.
//!
//! * `dev_reads_block_nonblock_and_whole_lines`: a read blocks until an
//!   event and returns whole lines; `O_NONBLOCK` gives `EAGAIN` with nothing
//!   queued and every queued line otherwise; a buffer shorter than the next
//!   line gives `EINVAL` and consumes nothing; a buffer gets as many whole
//!   lines as fit; a reader that does not read keeps the first 256 events
//!   and the rest are counted in `events_dropped`.
//! * `dev_readers_own_streams_and_wake_on_unbind_and_rmmod`: a reader
//!   opened later gets the events from its open on, with the same `seq`;
//!   readers blocked in `read()` end (EOF or `ENODEV`) when the device is
//!   unbound and when the module is removed, within [`WAKE_TIMEOUT`]; `seq`
//!   starts at 1 again after a new probe.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::*;
use vm_tests::Machine;
use vm_tests::guest_tool::{self, ReadResult, Session};
use vm_tests::kbd::{self, DevLine, Mode, Transition};

per_mode_tests!(
    dev_reads_block_nonblock_and_whole_lines,
    dev_readers_own_streams_and_wake_on_unbind_and_rmmod,
);

/// How long a blocked reader may take to end once the device goes away.
const WAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A reader's queue (spec: 256 events).
const QUEUE_EVENTS: usize = 256;

/// A `kbdtool session` running in the background of the guest.
struct Tool {
    pid: u32,
    out: String,
}

impl Tool {
    fn start(m: &mut Machine, name: &str, nonblock: bool, steps: &[String]) -> Result<Tool> {
        let out = format!("/tmp/tool-{name}.out");
        let pid = m.spawn(&Session::command(kbd::DEV_NODE, nonblock, steps), &out)?;
        let tool = Tool { pid, out };
        let s = tool.wait(m, "the open", |s| s.open.is_some())?;
        ensure!(
            s.open == Some(Ok(())),
            "kbdtool could not open {}: {:?}",
            kbd::DEV_NODE,
            s.open
        );
        Ok(tool)
    }

    fn session(&self, m: &mut Machine) -> Result<Session> {
        Ok(Session::parse(read_file(m, &self.out)?.as_bytes())?)
    }

    /// Waits until the session's output satisfies `done`.
    fn wait(
        &self,
        m: &mut Machine,
        what: &str,
        done: impl Fn(&Session) -> bool,
    ) -> Result<Session> {
        let what = format!("{what} of kbdtool {} ({})", self.pid, self.out);
        m.wait_for(&what, KEY_WAIT, POLL, |m| {
            let s = self.session(m)?;
            Ok(done(&s).then_some(s))
        })
    }

    /// Waits for the session to reach its end.
    fn finish(&self, m: &mut Machine) -> Result<Session> {
        self.wait(m, "the end", |s| s.done)
    }
}

/// The lines of a read that must have returned whole lines.
fn data_lines(r: &ReadResult) -> Result<Vec<DevLine>> {
    match r {
        ReadResult::Data(d) => Ok(kbd::parse_dev_lines(&String::from_utf8_lossy(d))?),
        other => anyhow::bail!("expected data, got {other:?}"),
    }
}

/// The device line `l` with its newline, as bytes.
fn line_bytes(l: &DevLine) -> Vec<u8> {
    format!("{l}\n").into_bytes()
}

fn error(e: &str) -> ReadResult {
    ReadResult::Error(e.to_owned())
}

fn dev_reads_block_nonblock_and_whole_lines(mode: Mode) -> Result<()> {
    run(lab_in_mode(mode, "dev-reads")?, |m| {
        check_probed_in_mode(m, mode)?;
        guest_tool::install(m)?;
        let s = Stream::start(m, true)?;
        s.press(m, &["a", "up"]).context("seq from 1")?;

        // A blocking read sleeps until an event, then returns it whole.
        let blocked = Tool::start(m, "blocking", false, &["4096".into()])?;
        wait_blocked_in_read(m, blocked.pid)?;
        std::thread::sleep(SETTLE);
        let early = blocked.session(m)?;
        ensure!(
            early.steps.is_empty(),
            "a read returned with no event: {early:?}"
        );
        let before = s.reader()?.lines(m)?.len();
        s.press(m, &["c"])?;
        let session = blocked.finish(m)?;
        let got = data_lines(session.reads()[0]).context("the blocking read")?;
        let reference = s.reader()?.lines(m)?.split_off(before);
        ensure!(
            !got.is_empty() && got.len() <= reference.len() && got == reference[..got.len()],
            "the blocking read gave {got:?}, the reference reader {reference:?}"
        );

        // O_NONBLOCK: EAGAIN with an empty queue, everything queued otherwise.
        let nb = Tool::start(
            m,
            "nonblock",
            true,
            &[
                "4096".into(),
                "wait:/tmp/go1".into(),
                "4096".into(),
                "4096".into(),
            ],
        )?;
        let first = nb.wait(m, "the first read", |s| !s.reads().is_empty())?;
        ensure!(
            first.reads()[0] == &error("EAGAIN"),
            "a non-blocking read of an empty queue gave {:?}, expected EAGAIN",
            first.reads()[0]
        );
        let before = s.reader()?.lines(m)?.len();
        s.press(m, &["d"])?;
        let reference = s.reader()?.lines(m)?.split_off(before);
        m.succeed("touch /tmp/go1")?;
        let session = nb.finish(m)?;
        let reads = session.reads();
        ensure!(
            data_lines(reads[1])? == reference,
            "a non-blocking read with two events queued gave {:?}, the reference reader {reference:?}",
            reads[1]
        );
        ensure!(
            reads[2] == &error("EAGAIN"),
            "a non-blocking read of the emptied queue gave {:?}, expected EAGAIN",
            reads[2]
        );

        // Buffer sizes: shorter than the next line -> EINVAL (nothing
        // consumed); one line and a byte short of two -> one line; then the
        // second line; then nothing.
        let before = s.reader()?.lines(m)?;
        let seq = before.last().map_or(1, |l| l.seq + 1);
        let expected: Vec<DevLine> = kbd::chord(&["e"])
            .context("table")?
            .iter()
            .filter_map(|t| t.event.as_ref())
            .enumerate()
            .map(|(i, e)| DevLine::parse(&e.line(seq + i as u64)).context("oracle line"))
            .collect::<Result<_>>()?;
        let (l1, l2) = (line_bytes(&expected[0]), line_bytes(&expected[1]));
        let sizes = [5, l1.len() - 1, l1.len() + l2.len() - 1, 4096, 4096];
        let mut steps = vec!["wait:/tmp/go2".to_owned()];
        steps.extend(sizes.iter().map(ToString::to_string));
        let sized = Tool::start(m, "sizes", true, &steps)?;
        s.press(m, &["e"])?;
        m.succeed("touch /tmp/go2")?;
        let session = sized.finish(m)?;
        let want = [
            error("EINVAL"),
            error("EINVAL"),
            ReadResult::Data(l1.clone()),
            ReadResult::Data(l2.clone()),
            error("EAGAIN"),
        ];
        let got: Vec<ReadResult> = session.reads().into_iter().cloned().collect();
        ensure!(
            got == want,
            "reads of {sizes:?} bytes with the lines {:?} and {:?} queued gave\n  {got:?}\nexpected\n  {want:?}",
            String::from_utf8_lossy(&l1),
            String::from_utf8_lossy(&l2)
        );

        // A reader that does not read keeps the first 256 events; the rest
        // are dropped for it and counted, while the reference reader gets
        // every event.
        queue_overflow(m, &s)
    })
}

/// 132 presses (264 events) while a reader waits without reading.
fn queue_overflow(m: &mut Machine, s: &Stream) -> Result<()> {
    const PRESSES: usize = 132;
    let keys: Vec<&str> = ["q", "w", "e", "r", "t", "y", "u", "i"]
        .iter()
        .copied()
        .cycle()
        .take(PRESSES)
        .collect();
    let idle = Tool::start(
        m,
        "idle",
        true,
        &["wait:/tmp/go3".into(), "65536".into(), "65536".into()],
    )?;
    let start = s.mark(m)?;
    let mut sent: Vec<Transition> = Vec::new();
    let mut target = start.irq1;
    // 8 presses, 16 bytes: QEMU's queue.
    for batch in keys.chunks(8) {
        let mut events = Vec::new();
        for key in batch {
            for down in [true, false] {
                events.push((*key, down));
                let t = kbd::transition(key, down).context("table")?;
                target += t.wire.len() as u64;
                sent.push(t);
            }
        }
        m.input_send_event(&events)?;
        m.wait_for_interrupts(1, target, KEY_WAIT)?;
    }
    let expected: Vec<kbd::Expected> = sent.iter().filter_map(|t| t.event.clone()).collect();
    let lines = s
        .reader()?
        .wait_lines(m, start.lines + expected.len(), KEY_WAIT)?
        .split_off(start.lines);
    check_lines(&lines, &expected, start.next_seq).context("the reference reader")?;
    m.succeed("touch /tmp/go3")?;
    let session = idle.finish(m)?;
    let reads = session.reads();
    let kept = data_lines(reads[0]).context("the idle reader's read")?;
    ensure!(
        kept.len() == QUEUE_EVENTS && kept[..] == lines[..QUEUE_EVENTS],
        "the idle reader kept {} lines, expected the first {QUEUE_EVENTS} of the reference \
         reader's {}:\n  first {:?}\n  last {:?}",
        kept.len(),
        lines.len(),
        kept.first(),
        kept.last()
    );
    ensure!(
        reads[1] == &error("EAGAIN"),
        "after its queue, the idle reader's read gave {:?}",
        reads[1]
    );
    let c = counters(m)?;
    let d = c.since(&start.counters);
    let dropped = (expected.len() - QUEUE_EVENTS) as u64;
    ensure!(
        d.events == expected.len() as u64 && d.events_dropped == dropped && d.bytes_dropped == 0,
        "after {} events with one reader idle: events +{}, events_dropped +{} (expected {dropped}), \
         bytes_dropped +{}",
        expected.len(),
        d.events,
        d.events_dropped,
        d.bytes_dropped
    );
    Ok(())
}

fn dev_readers_own_streams_and_wake_on_unbind_and_rmmod(mode: Mode) -> Result<()> {
    run(lab_in_mode(mode, "dev-readers")?, |m| {
        check_probed_in_mode(m, mode)?;
        guest_tool::install(m)?;
        let s = Stream::start(m, true)?;
        s.press(m, &["a"])?;

        // A reader opened now gets the events from its open on, numbered
        // like everybody's.
        let later = Reader::start(m, "later")?;
        let mark = s.mark(m)?;
        s.press_from(m, &mark, &["b", "ctrl_r-up"])?;
        let expected: Vec<kbd::Expected> = kbd::chord(&["b"])
            .context("table")?
            .into_iter()
            .chain(kbd::chord(&["ctrl_r", "up"]).context("table")?)
            .filter_map(|t| t.event)
            .collect();
        let got = later.wait_lines(m, expected.len(), KEY_WAIT)?;
        check_lines(&got, &expected, mark.next_seq).context("the reader opened later")?;
        ensure!(
            later.complete_lines(m)?.len() == expected.len(),
            "the later reader got more than its events"
        );

        // Unbind: blocked readers end, the device goes away.
        let tool = Tool::start(m, "unbind", false, &["4096".into()])?;
        wait_blocked_in_read(m, tool.pid)?;
        wait_blocked_in_read(m, s.reader()?.pid)?;
        let t = Instant::now();
        m.succeed_within(
            &format!("echo {DEVICE} > {DRIVER_DIR}/unbind"),
            WAKE_TIMEOUT,
        )?;
        check_woken(m, &tool, &[s.reader()?.pid, later.pid], t, "unbind")?;
        check_device_gone(m)?;
        ensure!(
            !m.kernel_log_lines_with(&format!("{DEVICE}: removed: irq 1 freed"))?
                .is_empty(),
            "no remove line after unbind"
        );

        // A new probe: seq starts at 1 again.
        m.succeed(&format!("echo {DEVICE} > {DRIVER_DIR}/bind"))?;
        m.succeed(&format!("test -c {}", kbd::DEV_NODE))?;
        let s = Stream::start(m, true)?;
        s.press(m, &["c"]).context("after bind")?;

        // rmmod: the same, and the module goes.
        let tool = Tool::start(m, "rmmod", false, &["4096".into()])?;
        wait_blocked_in_read(m, tool.pid)?;
        wait_blocked_in_read(m, s.reader()?.pid)?;
        let t = Instant::now();
        m.succeed_within("rmmod rust_keyboard", WAKE_TIMEOUT)?;
        check_woken(m, &tool, &[s.reader()?.pid], t, "rmmod")?;
        check_device_gone(m)?;
        m.fail("test -e /sys/module/rust_keyboard")
            .context("the module is still loaded after rmmod")?;

        // And it comes back.
        m.succeed(&format!("insmod {MODULE} {}", mode.insmod_arg()))?;
        let s = Stream::start(m, true)?;
        s.press(m, &["x"]).context("after insmod")?;
        ensure_no_warnings(m, None)
    })
}

/// Checks that the blocked `tool` read EOF or `ENODEV` and ended, and that
/// the `cat` readers `cats` ended, all within [`WAKE_TIMEOUT`] of `since`.
fn check_woken(
    m: &mut Machine,
    tool: &Tool,
    cats: &[u32],
    since: Instant,
    what: &str,
) -> Result<()> {
    let session = tool
        .finish(m)
        .with_context(|| format!("a reader blocked in read() during {what}"))?;
    let r = session.reads()[0];
    ensure!(
        matches!(r, ReadResult::Eof) || r == &error("ENODEV"),
        "a reader blocked in read() during {what} got {r:?}, expected EOF or ENODEV"
    );
    for &pid in cats {
        m.wait_for(
            &format!("reader {pid} to end after {what}"),
            WAKE_TIMEOUT,
            POLL,
            |m| Ok::<_, anyhow::Error>((!alive(m, pid)?).then_some(())),
        )?;
    }
    let took = since.elapsed();
    ensure!(
        took <= WAKE_TIMEOUT,
        "the readers took {:.1} s to end after {what}",
        took.as_secs_f64()
    );
    eprintln!(
        "{what}: blocked readers ended within {:.2} s ({r:?})",
        took.as_secs_f64()
    );
    Ok(())
}

/// No device node, no debugfs directory, no action on IRQ 1.
fn check_device_gone(m: &mut Machine) -> Result<()> {
    m.fail(&format!("test -e {}", kbd::DEV_NODE))
        .context("the device node is still there")?;
    m.fail(&format!("test -e {}", kbd::DEBUGFS_DIR))
        .context("the debugfs directory is still there")?;
    ensure!(
        irq1_actions(m)?.is_empty(),
        "IRQ 1 still has actions {:?}",
        irq1_actions(m)?
    );
    Ok(())
}
