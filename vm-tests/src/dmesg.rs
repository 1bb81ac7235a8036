//! Kernel log records as `dmesg -r` prints them, with their priority.
//!
//! `dmesg -r` (raw) prefixes every record with its syslog priority in angle
//! brackets, the facility times eight plus the level; kernel messages have
//! facility 0, so their prefix is the level itself (`include/linux/kern_levels.h`):
//!
//! ```text
//! <5>[    0.000000] Linux version 7.2.12 (root@vm) (...)
//! <4>[    1.025458] rust_keyboard: loading out-of-tree module taints kernel.
//! <3>[    1.034102] rust_keyboard KBD0001:00: error -6: IRQ index 0 not found
//! ```
//!
//! Levels 0 to 4 are `KERN_EMERG`, `KERN_ALERT`, `KERN_CRIT`, `KERN_ERR` and
//! `KERN_WARNING`: the "warning or worse" of [`Record::is_warning_or_worse`].

/// The `KERN_WARNING` level.
pub const KERN_WARNING: u32 = 4;

/// One line of `dmesg -r` that starts with a `<priority>` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The number in the prefix: `facility * 8 + level`.
    pub priority: u32,
    /// The whole line, prefix included.
    pub line: &'a str,
}

impl<'a> Record<'a> {
    /// Parses a line of `dmesg -r`; `None` if it has no `<N>` prefix (a
    /// continuation line, other text) or `N` does not fit in 32 bits.
    pub fn parse(line: &'a str) -> Option<Record<'a>> {
        let (digits, _) = line.strip_prefix('<')?.split_once('>')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Record {
            priority: digits.parse().ok()?,
            line,
        })
    }

    /// The syslog facility: 0 for the kernel.
    pub fn facility(&self) -> u32 {
        self.priority >> 3
    }

    /// The level, 0 (`KERN_EMERG`) to 7 (`KERN_DEBUG`).
    pub fn level(&self) -> u32 {
        self.priority & 7
    }

    /// The text after the prefix (printk's timestamp, if any, included).
    pub fn text(&self) -> &'a str {
        self.line.split_once('>').map_or("", |(_, text)| text)
    }

    /// Whether this is a kernel message (facility 0) at `KERN_WARNING` or a
    /// more severe level.
    pub fn is_warning_or_worse(&self) -> bool {
        self.facility() == 0 && self.level() <= KERN_WARNING
    }
}

/// The kernel messages at warning level or worse in `raw` (the output of
/// `dmesg -r`) after the first line that contains `marker`, in order;
/// `None` if no line contains `marker`.
///
/// Lines containing `marker` are never returned themselves.
pub fn warnings_after<'a>(raw: &'a str, marker: &str) -> Option<Vec<Record<'a>>> {
    let mut seen = false;
    let mut warnings = Vec::new();
    for line in raw.lines() {
        if line.contains(marker) {
            seen = true;
            continue;
        }
        match Record::parse(line) {
            Some(record) if seen && record.is_warning_or_worse() => warnings.push(record),
            _ => {}
        }
    }
    seen.then_some(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a real `dmesg -r` in the lab VM (Linux 7.2.12, the
    /// `no-irq` SSDT variant, whose device has no IRQ): three warnings at
    /// boot, then the module's load notice and the driver's probe error (its
    /// text from the console of that boot, its level the `<3>` the
    /// acceptance test matched).
    const RAW: &str = "\
<5>[    0.000000] Linux version 7.2.12 (root@vm) (Debian clang version 19.1.7 (3~deb12u1), Debian LLD 19.1.7) #1 SMP PREEMPT Tue Dec  1 21:38:59 UTC 2026
<6>[    0.000000] Command line: console=ttyS0 panic=-1
<4>[    0.266083] APIC calibration not consistent with PM-Timer: 98ms instead of 100ms
<4>[    0.493431] acpi PNP0A03:00: fail to add MMCONFIG information, can't access extended configuration space under this bridge
<4>[    0.551671] ACPI: Failed to create genetlink family for ACPI event
<6>[    0.772789] Run /init as init process
<7>[    0.772855]   with arguments:
<7>[    0.777285]     /init
<7>[    0.777378]   with environment:
<7>[    0.777391]     HOME=/
<7>[    0.777403]     TERM=linux
<4>[    1.025458] rust_keyboard: loading out-of-tree module taints kernel.
<3>[    1.034102] rust_keyboard KBD0001:00: error -6: IRQ index 0 not found
";

    #[test]
    fn real_warnings_after_the_module_load() {
        let marker = "rust_keyboard: loading out-of-tree module taints kernel";
        let warnings = warnings_after(RAW, marker).unwrap();
        let lines: Vec<&str> = warnings.iter().map(|r| r.line).collect();
        assert_eq!(
            lines,
            ["<3>[    1.034102] rust_keyboard KBD0001:00: error -6: IRQ index 0 not found"]
        );
        assert_eq!(warnings[0].level(), 3);
        // With the first line as the marker, the boot's warnings count too.
        let boot = warnings_after(RAW, "Linux version").unwrap();
        assert_eq!(boot.len(), 5);
        assert!(boot.iter().all(|r| r.facility() == 0 && r.level() <= 4));
        let levels: Vec<u32> = RAW
            .lines()
            .filter_map(Record::parse)
            .map(|r| r.level())
            .collect();
        assert_eq!(levels, [5, 6, 4, 4, 4, 6, 7, 7, 7, 7, 7, 4, 3]);
    }

    #[test]
    fn parses_prefixes() {
        let r = Record::parse("<3>[    1.364575] rust_keyboard KBD0001:00: oops").unwrap();
        assert_eq!((r.priority, r.facility(), r.level()), (3, 0, 3));
        assert_eq!(r.text(), "[    1.364575] rust_keyboard KBD0001:00: oops");
        assert!(r.is_warning_or_worse());
        let user = Record::parse("<12>text").unwrap();
        assert_eq!((user.facility(), user.level()), (1, 4));
        assert!(!user.is_warning_or_worse());
        assert!(!Record::parse("<6>info").unwrap().is_warning_or_worse());
        assert!(Record::parse("<0>").unwrap().is_warning_or_worse());
        for line in [
            "",
            "[    1.0] no prefix",
            "<>empty",
            "<x>letters",
            "<-1>negative",
            "<4 unclosed",
            " <4>indented",
            "<99999999999>too big",
        ] {
            assert_eq!(Record::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn warnings_skip_other_facilities_info_and_continuations() {
        let raw = "\
<4>[    1.0] rust_keyboard: loading out-of-tree module taints kernel.
<6>[    1.1] info
<7>[    1.2] debug
<12>[    1.3] a user-space warning written to /dev/kmsg
<11>[    1.4] a user-space error
  a continuation line with <3> in it
<0>[    1.5] emergency
<4>[    2.0] clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable
";
        let lines: Vec<&str> = warnings_after(raw, "taints kernel")
            .unwrap()
            .iter()
            .map(|r| r.text())
            .collect();
        assert_eq!(
            lines,
            [
                "[    1.5] emergency",
                "[    2.0] clocksource: timekeeping watchdog on CPU0: Marking clocksource 'tsc' as unstable",
            ]
        );
    }

    #[test]
    fn marker_lines_are_not_warnings() {
        // A second load notice (after rmmod and insmod) is skipped as well.
        let raw = "<4>taints kernel\n<3>error\n<4>taints kernel\n<4>warning\n";
        let lines: Vec<&str> = warnings_after(raw, "taints kernel")
            .unwrap()
            .iter()
            .map(|r| r.line)
            .collect();
        assert_eq!(lines, ["<3>error", "<4>warning"]);
    }

    #[test]
    fn without_marker() {
        assert_eq!(warnings_after(RAW, "rust_keyboard: removed"), None);
        assert_eq!(warnings_after("", "x"), None);
        assert_eq!(
            warnings_after("<6>[    1.0] loaded\n", "loaded"),
            Some(vec![])
        );
    }
}
