//! The kernel's irq tracepoints, read through tracefs.
//!
//! The lab kernel has ftrace's event tracing (`kernel/lab.config`) and /init
//! mounts tracefs on `/sys/kernel/tracing`. Two tracepoints of
//! `kernel/irq/handle.c` frame every call of an interrupt handler
//! (`include/trace/events/irq.h`):
//!
//! ```text
//!           <idle>-0       [000] d.h2.    25.001214: irq_handler_entry: irq=1 name=rust_keyboard_irq
//!           <idle>-0       [000] d.h2.    25.001391: irq_handler_exit: irq=1 ret=handled
//! ```
//!
//! `ret=handled` is any non-zero `irqreturn_t` (`IRQ_HANDLED`, also
//! `IRQ_WAKE_THREAD`), `ret=unhandled` is `IRQ_NONE`: which handler claimed
//! an interrupt. [`IrqTrace`] turns them on for one line in a guest,
//! [`parse`] reads the `trace` file (or `trace_pipe`, the same lines), and
//! [`handler_calls`] pairs each entry of a handler with its exit.
//!
//! ```no_run
//! use vm_tests::trace::{self, IrqTrace, Ret};
//! # fn main() -> Result<(), vm_tests::Error> {
//! # let mut m = vm_tests::Machine::boot_default()?;
//! let t = IrqTrace::start(&mut m, 1)?;
//! m.send_key("a")?; // two bytes, two interrupts
//! # std::thread::sleep(std::time::Duration::from_secs(1));
//! let calls = trace::handler_calls(&t.read(&mut m)?, 1, "rust_keyboard_irq")?;
//! assert_eq!(calls.len(), 2);
//! assert!(calls.iter().all(|c| c.ret == Ret::Handled));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, Machine, Result};

/// Where /init mounts tracefs.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// The tracepoints [`IrqTrace`] enables, in tracefs' `events/` directory.
pub const EVENTS: [&str; 2] = ["irq/irq_handler_entry", "irq/irq_handler_exit"];

/// What a handler returned, as `irq_handler_exit` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    /// `ret=handled`: `IRQ_HANDLED` or `IRQ_WAKE_THREAD`.
    Handled,
    /// `ret=unhandled`: `IRQ_NONE`, the interrupt was not this handler's.
    Unhandled,
}

impl fmt::Display for Ret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ret::Handled => "handled",
            Ret::Unhandled => "unhandled",
        })
    }
}

/// One irq tracepoint hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IrqEvent {
    /// `irq_handler_entry: irq=N name=NAME`: the handler of action NAME is
    /// about to run.
    Entry {
        /// The Linux IRQ number.
        irq: u32,
        /// The action's name (`request_irq`'s `name`).
        name: String,
    },
    /// `irq_handler_exit: irq=N ret=handled|unhandled`: it returned.
    Exit {
        /// The Linux IRQ number.
        irq: u32,
        /// What it returned.
        ret: Ret,
    },
}

/// One line of the trace: who was running where and when, and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceLine {
    /// The interrupted task's name (`<idle>`, `sh`, ...).
    pub task: String,
    /// Its pid.
    pub pid: u32,
    /// The CPU.
    pub cpu: u32,
    /// The timestamp in seconds (the trace clock, `local` by default).
    pub time: f64,
    /// The event.
    pub event: IrqEvent,
}

/// One call of a handler: an entry and the exit that followed it on the
/// same CPU.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerCall {
    /// The CPU.
    pub cpu: u32,
    /// When it was entered (s).
    pub entered: f64,
    /// How long it ran (s), exit minus entry (tracepoint overhead included).
    pub duration: f64,
    /// What it returned.
    pub ret: Ret,
}

/// `TASK-PID [CPU] FLAGS TIMESTAMP: EVENT: FIELDS`; FLAGS is absent when
/// the `irq-info` option is off.
static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?:\S+\s+)?(?P<time>\d+\.\d+):\s+(?P<event>\w+):\s+(?P<fields>.*)$",
    )
    .expect("valid regex")
});
static ENTRY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^irq=(\d+) name=(.+)$").expect("valid regex"));
static EXIT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^irq=(\d+) ret=(handled|unhandled)$").expect("valid regex"));

/// Parses the irq tracepoint lines of a `trace` (or `trace_pipe`) text.
/// Comment lines (`#`, the header of `trace`) and blank lines are skipped.
/// Fails on anything else that is not an irq handler event, and on the
/// ring buffer's `[LOST N EVENTS]` notes: a count from a trace that lost
/// events would be wrong.
pub fn parse(text: &str) -> Result<Vec<TraceLine>> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let bad = |why: &str| Error::Parse {
            what: "an irq trace line",
            message: format!("{why}: {line:?}"),
        };
        if trimmed.contains("LOST") && trimmed.contains("EVENTS") {
            return Err(bad("the trace lost events (the ring buffer overflowed)"));
        }
        let c = LINE.captures(line).ok_or_else(|| bad("not a trace line"))?;
        let number = |s: &str| s.parse::<u32>().map_err(|_| bad("bad number"));
        let fields = &c["fields"];
        let event = match &c["event"] {
            "irq_handler_entry" => {
                let f = ENTRY
                    .captures(fields)
                    .ok_or_else(|| bad("bad irq_handler_entry fields"))?;
                IrqEvent::Entry {
                    irq: number(&f[1])?,
                    name: f[2].to_owned(),
                }
            }
            "irq_handler_exit" => {
                let f = EXIT
                    .captures(fields)
                    .ok_or_else(|| bad("bad irq_handler_exit fields"))?;
                IrqEvent::Exit {
                    irq: number(&f[1])?,
                    ret: if &f[2] == "handled" {
                        Ret::Handled
                    } else {
                        Ret::Unhandled
                    },
                }
            }
            _ => return Err(bad("not an irq handler event")),
        };
        lines.push(TraceLine {
            task: c["task"].to_owned(),
            pid: number(&c["pid"])?,
            cpu: number(&c["cpu"])?,
            time: c["time"].parse().map_err(|_| bad("bad timestamp"))?,
            event,
        });
    }
    Ok(lines)
}

/// The calls of the handler `name` on `irq`, in order: each entry paired
/// with the next event on its CPU, which must be its exit (hard handlers do
/// not nest on a CPU). Fails on an entry without its exit.
pub fn handler_calls(lines: &[TraceLine], irq: u32, name: &str) -> Result<Vec<HandlerCall>> {
    let mut calls = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let IrqEvent::Entry {
            irq: n,
            name: action,
        } = &line.event
        else {
            continue;
        };
        if *n != irq || action != name {
            continue;
        }
        let next = lines[i + 1..].iter().find(|l| l.cpu == line.cpu);
        match next {
            Some(TraceLine {
                event: IrqEvent::Exit { irq: n, ret },
                time,
                ..
            }) if *n == irq => calls.push(HandlerCall {
                cpu: line.cpu,
                entered: line.time,
                duration: time - line.time,
                ret: *ret,
            }),
            other => {
                return Err(Error::Parse {
                    what: "an irq trace",
                    message: format!(
                        "the entry of {name} on IRQ {irq} at {:.6} (CPU {}) is followed by {other:?}, \
                         not by its exit",
                        line.time, line.cpu
                    ),
                });
            }
        }
    }
    Ok(calls)
}

/// The irq tracepoints of one IRQ line, on in a guest.
#[derive(Debug, Clone, Copy)]
pub struct IrqTrace {
    irq: u32,
}

impl IrqTrace {
    /// Empties the trace and turns `irq_handler_entry` and
    /// `irq_handler_exit` on for `irq` only (an event filter `irq == N`).
    /// Fails, saying so, if the guest has no tracefs or no irq events.
    pub fn start(m: &mut Machine, irq: u32) -> Result<IrqTrace> {
        m.succeed(&Self::start_script(irq))?;
        Ok(IrqTrace { irq })
    }

    /// The IRQ traced.
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// The shell script of [`IrqTrace::start`].
    pub fn start_script(irq: u32) -> String {
        let mut s = format!(
            "t={TRACEFS}\n\
             [ -d $t/events/irq ] || {{ echo \"no irq events in $t (no tracefs mounted, or a kernel \
             without CONFIG_FTRACE)\"; exit 1; }}\n\
             echo 0 > $t/tracing_on && echo > $t/trace || exit 1\n"
        );
        for e in EVENTS {
            s.push_str(&format!(
                "echo 'irq == {irq}' > $t/events/{e}/filter && echo 1 > $t/events/{e}/enable || exit 1\n"
            ));
        }
        s.push_str("echo 1 > $t/tracing_on\n");
        s
    }

    /// Everything traced since [`IrqTrace::start`] (the `trace` file, which
    /// reading does not consume).
    pub fn read(&self, m: &mut Machine) -> Result<Vec<TraceLine>> {
        parse(&m.succeed(&format!("cat {TRACEFS}/trace"))?)
    }

    /// Turns the two events off again and empties their filters.
    pub fn stop(self, m: &mut Machine) -> Result<()> {
        let mut s = format!("t={TRACEFS}\n");
        for e in EVENTS {
            s.push_str(&format!(
                "echo 0 > $t/events/{e}/enable && echo 0 > $t/events/{e}/filter || exit 1\n"
            ));
        }
        m.succeed(&s).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `trace` file of a lab guest (threaded mode): `a` pressed and
    /// released, then one interrupt injected through debugfs; captured from
    /// a real run (`trace/test_data/README.md`).
    const TRACE: &str = include_str!("trace/test_data/keys-and-injection.trace");

    #[test]
    fn real_trace_lines_parse() {
        let lines = parse(TRACE).unwrap();
        assert!(!lines.is_empty());
        assert!(lines.iter().all(|l| matches!(
            &l.event,
            IrqEvent::Entry { irq: 1, .. } | IrqEvent::Exit { irq: 1, .. }
        )));
        let calls = handler_calls(&lines, 1, "rust_keyboard_irq").unwrap();
        let rets: Vec<Ret> = calls.iter().map(|c| c.ret).collect();
        assert_eq!(rets, [Ret::Handled, Ret::Handled, Ret::Unhandled]);
        assert!(calls.iter().all(|c| c.duration >= 0.0 && c.duration < 0.1));
        assert!(calls.windows(2).all(|w| w[0].entered < w[1].entered));
        assert!(handler_calls(&lines, 1, "other").unwrap().is_empty());
        assert!(
            handler_calls(&lines, 4, "rust_keyboard_irq")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn fields_of_a_line() {
        let l = parse(
            "            sh-52      [000] d.h1.   101.250001: irq_handler_entry: irq=1 name=lab irq sharer\n",
        )
        .unwrap();
        assert_eq!(
            l,
            [TraceLine {
                task: "sh".into(),
                pid: 52,
                cpu: 0,
                time: 101.250001,
                event: IrqEvent::Entry {
                    irq: 1,
                    name: "lab irq sharer".into()
                },
            }]
        );
        // Without the irq-info columns, and a task name with a dash.
        let l = parse("  kworker/0:1-ev-12 [001] 5.000010: irq_handler_exit: irq=1 ret=unhandled")
            .unwrap();
        assert_eq!(l[0].task, "kworker/0:1-ev");
        assert_eq!((l[0].pid, l[0].cpu), (12, 1));
        assert_eq!(
            l[0].event,
            IrqEvent::Exit {
                irq: 1,
                ret: Ret::Unhandled
            }
        );
    }

    #[test]
    fn what_is_refused() {
        assert!(parse("CPU:0 [LOST 12 EVENTS]").is_err());
        assert!(parse("  sh-1 [000] d.h1. 1.0: sched_switch: prev=sh").is_err());
        assert!(parse("  sh-1 [000] d.h1. 1.0: irq_handler_exit: irq=1 ret=2").is_err());
        assert!(parse("garbage").is_err());
        // An entry whose next event on its CPU is not its exit.
        let two_entries = "\
  <idle>-0 [000] d.h2. 1.000000: irq_handler_entry: irq=1 name=rust_keyboard_irq
  <idle>-0 [001] d.h2. 1.000001: irq_handler_exit: irq=1 ret=handled
  <idle>-0 [000] d.h2. 1.000002: irq_handler_entry: irq=1 name=rust_keyboard_irq
";
        let err = handler_calls(&parse(two_entries).unwrap(), 1, "rust_keyboard_irq")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not by its exit"), "{err}");
    }

    #[test]
    fn the_guest_script_filters_the_line() {
        let s = IrqTrace::start_script(1);
        assert!(s.contains("echo 'irq == 1' > $t/events/irq/irq_handler_entry/filter"));
        assert!(s.contains("echo 1 > $t/events/irq/irq_handler_exit/enable"));
        assert!(s.starts_with("t=/sys/kernel/tracing\n"));
    }
}
