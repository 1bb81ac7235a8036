//! A parser for `/proc/interrupts`.
//!
//! The format (Linux 7.2, `kernel/irq/proc.c` and `arch_show_interrupts`):
//!
//! ```text
//!             CPU0       CPU1
//!    1:          9          0  IO-APIC     1-edge      rust_keyboard_irq
//!    9:          0          0  IO-APIC     9-fasteoi   acpi
//!  NMI:          0          0  Non-maskable interrupts
//!  ERR:          0
//! ```
//!
//! A numbered line has one count per online CPU, the interrupt chip, the
//! hardware IRQ number joined with the flow name (`1-edge`), and the names of
//! the registered actions separated by `", "`. Architecture lines (`NMI`,
//! `LOC`, ...) have counts and a description; some (`ERR`, `MIS`) have a
//! single count whatever the number of CPUs.

use std::time::Duration;

use crate::{Error, Result};

/// One line of `/proc/interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqLine {
    /// The label before the colon: `"1"`, `"NMI"`, `"LOC"`.
    pub label: String,
    /// The Linux IRQ number, for numbered lines.
    pub irq: Option<u32>,
    /// Counts per CPU, in CPU column order (a single entry for `ERR`/`MIS`).
    pub per_cpu: Vec<u64>,
    /// The interrupt chip (`IO-APIC`), for numbered lines.
    pub chip: Option<String>,
    /// The hardware IRQ and flow text (`1-edge`, `9-fasteoi`), if any.
    pub hwirq_trigger: Option<String>,
    /// Registered action names (`["rust_keyboard_irq"]`), numbered lines only.
    pub actions: Vec<String>,
    /// The description of architecture lines (`Non-maskable interrupts`).
    pub description: Option<String>,
}

impl IrqLine {
    /// The sum over all CPUs.
    pub fn total(&self) -> u64 {
        self.per_cpu.iter().sum()
    }

    /// The hardware IRQ number, from [`IrqLine::hwirq_trigger`] (`1-edge` -> 1).
    pub fn hwirq(&self) -> Option<u64> {
        let text = self.hwirq_trigger.as_deref()?;
        text.split('-').next()?.parse().ok()
    }

    /// The flow/trigger name, from [`IrqLine::hwirq_trigger`] (`1-edge` -> `edge`).
    pub fn trigger(&self) -> Option<&str> {
        let text = self.hwirq_trigger.as_deref()?;
        text.split_once('-')
            .map(|(_, t)| t)
            .filter(|t| !t.is_empty())
    }

    /// Whether an action with exactly this name is registered on the line.
    pub fn has_action(&self, name: &str) -> bool {
        self.actions.iter().any(|a| a == name)
    }
}

/// A parsed `/proc/interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupts {
    /// The CPU column names (`CPU0`, `CPU1`, ...).
    pub cpus: Vec<String>,
    /// Every line, in file order.
    pub lines: Vec<IrqLine>,
}

impl Interrupts {
    /// Parses the text of `/proc/interrupts`.
    pub fn parse(text: &str) -> Result<Self> {
        let err = |message: String| Error::Parse {
            what: "/proc/interrupts",
            message,
        };
        let mut rows = text.lines().filter(|l| !l.trim().is_empty());
        let header = rows.next().ok_or_else(|| err("empty input".into()))?;
        let cpus: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
        if cpus.is_empty() || !cpus.iter().all(|c| c.starts_with("CPU")) {
            return Err(err(format!("unexpected header line {header:?}")));
        }
        let lines = rows
            .map(|row| {
                parse_line(row, cpus.len()).ok_or_else(|| err(format!("unexpected line {row:?}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Interrupts { cpus, lines })
    }

    /// The line of a numbered IRQ.
    pub fn irq(&self, irq: u32) -> Option<&IrqLine> {
        self.lines.iter().find(|l| l.irq == Some(irq))
    }

    /// The line with this label (`"NMI"`, `"LOC"`, `"1"`).
    pub fn label(&self, label: &str) -> Option<&IrqLine> {
        self.lines.iter().find(|l| l.label == label)
    }

    /// The total count of a numbered IRQ (all CPUs), if the IRQ is listed.
    pub fn count(&self, irq: u32) -> Option<u64> {
        self.irq(irq).map(IrqLine::total)
    }

    /// The numbered lines that carry an action with this name.
    pub fn with_action<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a IrqLine> + 'a {
        self.lines.iter().filter(move |l| l.has_action(name))
    }
}

/// The first line a [`wait_script`] prints: `@@irq-wait reached <count>`
/// or `@@irq-wait timeout <last count|none>`.
const WAIT_MARKER: &str = "@@irq-wait";

/// How a [`wait_script`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The count reached the target; the count seen (which may be higher).
    Reached(u64),
    /// The guest's deadline passed first; the last count seen, if the IRQ
    /// was listed at all.
    TimedOut(Option<u64>),
}

/// A guest shell script that waits, in the guest, until the total count
/// (all CPUs) of `irq` in `/proc/interrupts` reaches `at_least`, reading
/// the file every 20 ms and giving up after `timeout` of guest time. It
/// prints one line ([`parse_wait`]) and on a timeout exits with status 3.
///
/// The loop is the guest's `lab_wait_irq`, a function of `initramfs/init`
/// (the channel's scripts see its functions): one command of a few bytes
/// instead of a command per poll.
pub fn wait_script(irq: u32, at_least: u64, timeout: Duration) -> String {
    let hundredths = timeout.as_millis().div_ceil(10);
    format!("lab_wait_irq {irq} {at_least} {hundredths} || exit 3\n")
}

/// Parses the first line of a [`wait_script`]'s output; returns the
/// outcome and the rest of the output (what ran after the wait).
pub fn parse_wait(output: &str) -> Result<(WaitOutcome, &str)> {
    let err = || Error::Parse {
        what: "the output of an interrupt wait",
        message: format!("{output:?}"),
    };
    let (first, rest) = output.split_once('\n').unwrap_or((output, ""));
    let words: Vec<&str> = first.split_whitespace().collect();
    let outcome = match words.as_slice() {
        [WAIT_MARKER, "reached", n] => WaitOutcome::Reached(n.parse().map_err(|_| err())?),
        [WAIT_MARKER, "timeout", "none"] => WaitOutcome::TimedOut(None),
        [WAIT_MARKER, "timeout", n] => WaitOutcome::TimedOut(Some(n.parse().map_err(|_| err())?)),
        _ => return Err(err()),
    };
    Ok((outcome, rest))
}

/// Parses one non-header line given the number of CPU columns.
fn parse_line(row: &str, ncpus: usize) -> Option<IrqLine> {
    let (label, mut rest) = row.split_once(':')?;
    let label = label.trim();
    if label.is_empty() || label.contains(char::is_whitespace) {
        return None;
    }
    let irq = label.parse::<u32>().ok();

    // Up to `ncpus` decimal counts.
    let mut per_cpu = Vec::with_capacity(ncpus);
    while per_cpu.len() < ncpus {
        let trimmed = rest.trim_start();
        let end = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        if end == 0 {
            break;
        }
        // A token such as "10-edge" is not a count.
        if trimmed[end..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace())
        {
            break;
        }
        per_cpu.push(trimmed[..end].parse().ok()?);
        rest = &trimmed[end..];
    }
    if per_cpu.is_empty() {
        return None;
    }
    let rest = rest.trim();

    if irq.is_none() {
        return Some(IrqLine {
            label: label.to_owned(),
            irq,
            per_cpu,
            chip: None,
            hwirq_trigger: None,
            actions: Vec::new(),
            description: (!rest.is_empty()).then(|| rest.to_owned()),
        });
    }

    // Numbered line: chip, then optionally "<hwirq>-<flow>" (or a bare hwirq,
    // or "-<flow>" without an IRQ domain), then the action list.
    let (chip, mut rest) = split_token(rest);
    let mut hwirq_trigger = None;
    let (token, after) = split_token(rest);
    if !token.is_empty() && looks_like_hwirq(token) {
        hwirq_trigger = Some(token.to_owned());
        rest = after;
    }
    // CONFIG_GENERIC_IRQ_SHOW_LEVEL adds "Edge"/"Level" before the name.
    let (token, after) = split_token(rest);
    if matches!(token, "Edge" | "Level") {
        hwirq_trigger = Some(match hwirq_trigger {
            Some(h) => format!("{h} {token}"),
            None => token.to_owned(),
        });
        rest = after;
    }
    let actions = rest
        .trim()
        .split(", ")
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    Some(IrqLine {
        label: label.to_owned(),
        irq,
        per_cpu,
        chip: (!chip.is_empty()).then(|| chip.to_owned()),
        hwirq_trigger,
        actions,
        description: None,
    })
}

/// Splits off the first whitespace-separated token.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// `1-edge`, `9-fasteoi`, `-edge`, `24`.
fn looks_like_hwirq(token: &str) -> bool {
    let (num, flow) = match token.split_once('-') {
        Some((n, f)) => (n, Some(f)),
        None => (token, None),
    };
    num.chars().all(|c| c.is_ascii_digit())
        && match flow {
            Some(f) => !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            None => !num.is_empty(),
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from a real boot of the lab kernel (Linux 7.2.12, QEMU 7.2
    /// `-machine pc`, TCG, one CPU) with the driver loaded.
    const ONE_CPU: &str = "            CPU0       
   0:         62  IO-APIC     2-edge      timer
   1:          0  IO-APIC     1-edge      rust_keyboard_irq
   3:          9  IO-APIC     3-edge      ttyS1
   4:         34  IO-APIC     4-edge      ttyS0
   9:          0  IO-APIC     9-fasteoi   acpi
 NMI:          0  Non-maskable interrupts
 LOC:        174  Local timer interrupts
 PMI:          0  Performance monitoring interrupts
 IWI:          0  IRQ work interrupts
 RES:          0  Rescheduling interrupts
 CAL:          0  Function call interrupts
 TLB:          0  TLB shootdowns
 TRM:          0  Thermal event interrupts
";

    #[test]
    fn real_one_cpu_sample() {
        let i = Interrupts::parse(ONE_CPU).unwrap();
        assert_eq!(i.cpus, ["CPU0"]);
        assert_eq!(i.lines.len(), 13);
        let kbd = i.irq(1).unwrap();
        assert_eq!(kbd.per_cpu, [0]);
        assert_eq!(kbd.chip.as_deref(), Some("IO-APIC"));
        assert_eq!(kbd.hwirq_trigger.as_deref(), Some("1-edge"));
        assert_eq!(kbd.hwirq(), Some(1));
        assert_eq!(kbd.trigger(), Some("edge"));
        assert_eq!(kbd.actions, ["rust_keyboard_irq"]);
        assert_eq!(i.count(0), Some(62));
        assert_eq!(i.irq(0).unwrap().hwirq(), Some(2));
        assert_eq!(i.irq(9).unwrap().trigger(), Some("fasteoi"));
        assert_eq!(i.count(2), None);
        let loc = i.label("LOC").unwrap();
        assert_eq!(loc.total(), 174);
        assert_eq!(loc.irq, None);
        assert_eq!(loc.description.as_deref(), Some("Local timer interrupts"));
        assert_eq!(i.with_action("rust_keyboard_irq").count(), 1);
        assert_eq!(i.with_action("rust_keyboard").count(), 0);
    }

    /// Captured from a real boot with `-smp 2`.
    const TWO_CPUS_REAL: &str = "            CPU0       CPU1       
   0:         70          0  IO-APIC     2-edge      timer
   1:          0          0  IO-APIC     1-edge      rust_keyboard_irq
   3:          5          0  IO-APIC     3-edge      ttyS1
   4:         26          0  IO-APIC     4-edge      ttyS0
   9:          0          0  IO-APIC     9-fasteoi   acpi
 NMI:          0          0  Non-maskable interrupts
 LOC:        394        709  Local timer interrupts
 PMI:          0          0  Performance monitoring interrupts
 IWI:          0          0  IRQ work interrupts
 RES:         11          7  Rescheduling interrupts
 CAL:         43         58  Function call interrupts
 TLB:          1          0  TLB shootdowns
 TRM:          0          0  Thermal event interrupts
";

    #[test]
    fn real_two_cpu_sample() {
        let i = Interrupts::parse(TWO_CPUS_REAL).unwrap();
        assert_eq!(i.cpus, ["CPU0", "CPU1"]);
        assert_eq!(i.lines.len(), 13);
        assert_eq!(i.irq(1).unwrap().per_cpu, [0, 0]);
        assert_eq!(i.irq(1).unwrap().actions, ["rust_keyboard_irq"]);
        assert_eq!(i.irq(4).unwrap().actions, ["ttyS0"]);
        assert_eq!(i.label("LOC").unwrap().per_cpu, [394, 709]);
        assert_eq!(i.label("LOC").unwrap().total(), 1103);
        assert_eq!(
            i.label("CAL").unwrap().description.as_deref(),
            Some("Function call interrupts")
        );
    }

    /// Synthetic: two CPUs, shared IRQ, an `ERR` line with a single count, an IRQ
    /// without domain and a numbered line with GENERIC_IRQ_SHOW_LEVEL.
    const TWO_CPUS: &str = "           CPU0       CPU1       
  0:         40          0   IO-APIC   2-edge      timer
  1:         12          3   IO-APIC   1-edge      i8042, rust_keyboard_irq
 10:          0          0   PCI-MSI 49152-edge      virtio0-config
 24:          0          0   GICv3  27 Level     arch_timer
 25:          1          0  dummy      -edge      foo
NMI:          0          0   Non-maskable interrupts
ERR:          0
MIS:          0
";

    #[test]
    fn two_cpus_and_odd_lines() {
        let i = Interrupts::parse(TWO_CPUS).unwrap();
        assert_eq!(i.cpus.len(), 2);
        let kbd = i.irq(1).unwrap();
        assert_eq!(kbd.per_cpu, [12, 3]);
        assert_eq!(kbd.total(), 15);
        assert_eq!(kbd.actions, ["i8042", "rust_keyboard_irq"]);
        assert!(kbd.has_action("rust_keyboard_irq"));
        assert_eq!(i.irq(10).unwrap().hwirq(), Some(49152));
        assert_eq!(i.irq(10).unwrap().actions, ["virtio0-config"]);
        let arm = i.irq(24).unwrap();
        assert_eq!(arm.hwirq_trigger.as_deref(), Some("27 Level"));
        assert_eq!(arm.actions, ["arch_timer"]);
        let nodomain = i.irq(25).unwrap();
        assert_eq!(nodomain.hwirq(), None);
        assert_eq!(nodomain.trigger(), Some("edge"));
        assert_eq!(nodomain.actions, ["foo"]);
        assert_eq!(i.label("ERR").unwrap().per_cpu, [0]);
        assert_eq!(i.label("NMI").unwrap().per_cpu, [0, 0]);
    }

    #[test]
    fn garbage_is_rejected() {
        assert!(Interrupts::parse("").is_err());
        assert!(Interrupts::parse("hello\n").is_err());
        assert!(Interrupts::parse("  CPU0\n  1: x IO-APIC\n").is_err());
    }

    /// The first numbered line of the host's own `/proc/interrupts` and its
    /// total count (counts only grow).
    fn host_irq() -> (u32, u64) {
        let text = std::fs::read_to_string("/proc/interrupts").unwrap();
        text.lines()
            .find_map(|l| {
                let (label, rest) = l.split_once(':')?;
                let irq = label.trim().parse().ok()?;
                let total = rest
                    .split_whitespace()
                    .map_while(|w| w.parse::<u64>().ok())
                    .sum();
                Some((irq, total))
            })
            .unwrap()
    }

    /// `lab_pause`, `lab_cat` and `lab_wait_irq` of the guest's `/init`.
    fn guest_function() -> String {
        let init = include_str!("../../initramfs/init");
        let function = |name: &str| {
            let start = init
                .find(&format!("\n{name}() {{\n"))
                .unwrap_or_else(|| panic!("{name} in init"));
            let len = init[start..].find("\n}\n").expect("its end") + 3;
            init[start..start + len].to_owned()
        };
        function("lab_pause") + &function("lab_cat") + &function("lab_wait_irq")
    }

    /// Runs `script` in the host's busybox shell (the guest's ash, from the
    /// host package busybox-static) after the guest's function and with its
    /// FIFO; returns the exit status and stdout (stderr must be empty).
    fn run_guest_sh(script: &str) -> (i32, String) {
        let dir = tempfile::tempdir().unwrap();
        let tick = dir.path().join("tick");
        let made = std::process::Command::new("mkfifo")
            .arg(&tick)
            .status()
            .unwrap();
        assert!(made.success());
        let out = std::process::Command::new("busybox")
            .arg("sh")
            .arg("-c")
            .arg(format!(
                "lab_tick='{}'\n{}{script}",
                tick.display(),
                guest_function()
            ))
            .output()
            .expect("busybox (the host package busybox-static) runs the guest's shell function");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
        )
    }

    /// Runs a wait script with [`run_guest_sh`].
    fn run_wait(irq: u32, at_least: u64, timeout: Duration, then: &str) -> (i32, String) {
        run_guest_sh(&format!("{}{then}", wait_script(irq, at_least, timeout)))
    }

    #[test]
    fn wait_script_ends_at_once_when_reached_and_runs_what_follows() {
        let (irq, total) = host_irq();
        let t = std::time::Instant::now();
        let (status, out) = run_wait(irq, total, Duration::from_secs(10), "echo after\n");
        assert_eq!(status, 0, "{out}");
        let (outcome, rest) = parse_wait(&out).unwrap();
        assert!(
            matches!(outcome, WaitOutcome::Reached(n) if n >= total),
            "{out}"
        );
        assert_eq!(rest, "after\n");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn wait_script_times_out_with_the_last_count_or_none() {
        let (irq, total) = host_irq();
        let t = std::time::Instant::now();
        let (status, out) = run_wait(
            irq,
            u64::from(u32::MAX) << 16,
            Duration::from_millis(300),
            "echo after\n",
        );
        let waited = t.elapsed();
        assert_eq!(status, 3, "{out}");
        let (outcome, rest) = parse_wait(&out).unwrap();
        assert!(
            matches!(outcome, WaitOutcome::TimedOut(Some(n)) if n >= total),
            "{out}"
        );
        assert_eq!(rest, "", "what follows a timeout ran");
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        // An IRQ the file does not list.
        let (status, out) = run_wait(4_000_000, 1, Duration::from_millis(100), "");
        assert_eq!(status, 3, "{out}");
        assert_eq!(parse_wait(&out).unwrap().0, WaitOutcome::TimedOut(None));
    }

    #[test]
    fn lab_cat_prints_text_files_exactly_and_fails_on_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "ends-with-newline",
                "one\n  two with  spaces \n\\back\\slash\n",
            ),
            ("no-final-newline", "first\nlast"),
            ("empty", ""),
            ("blank-lines", "\n\nx\n\n"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let (status, out) = run_guest_sh(&format!("lab_cat '{}'\n", path.display()));
            assert_eq!((status, out.as_str()), (0, text), "{name}");
        }
        let missing = dir.path().join("missing");
        let (status, out) = run_guest_sh(&format!(
            "lab_cat '{}' 2>/dev/null || echo failed\n",
            missing.display()
        ));
        assert_eq!((status, out.as_str()), (0, "failed\n"));
    }

    #[test]
    fn lab_pause_sleeps_for_its_time() {
        let t = std::time::Instant::now();
        let (status, out) = run_guest_sh("lab_pause 0.3 && echo slept\n");
        let waited = t.elapsed();
        assert_eq!((status, out.as_str()), (0, "slept\n"));
        assert!(waited >= Duration::from_millis(280), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    fn a_wait_pauses_between_polls() {
        // 800 ms of polling an IRQ the file does not list, then `times`,
        // whose first line is the shell's own user and system time. Without
        // a pause (a FIFO that is missing, a `read -t` that returns at
        // once) the loop spins for the whole wait.
        let (status, out) = run_guest_sh("lab_wait_irq 4000000 1 80; times\n");
        assert_eq!(status, 0, "{out}");
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("@@irq-wait timeout none"), "{out}");
        let seconds = |t: &str| -> f64 {
            let (m, s) = t.trim_end_matches('s').split_once('m').unwrap();
            m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
        };
        let busy: f64 = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(seconds)
            .sum();
        assert!(
            busy < 0.4,
            "the shell was busy {busy} s of an 0.8 s wait: {out}"
        );
    }

    #[test]
    fn wait_output_that_is_not_a_wait_is_an_error() {
        assert!(parse_wait("").is_err());
        assert!(parse_wait("@@irq-wait reached x\n").is_err());
        assert!(parse_wait("hello\n@@irq-wait reached 3\n").is_err());
    }
}
