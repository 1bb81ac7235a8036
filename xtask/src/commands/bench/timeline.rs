//! The boot timeline on the host clock, from a console whose lines carry
//! their arrival time after QEMU's spawn ([`super::bare::BareVm`]).
//!
//! Marks, each the end of a phase:
//! * `SeaBIOS (version` on QEMU's debug console (port 0x402, multiplexed
//!   onto the console by the timeline boot): QEMU's own start-up ends;
//! * `Booting from ROM..` (SeaBIOS): POST ends, the option ROM that loads
//!   the kernel and initramfs starts;
//! * `early console in setup code`: the kernel's real-mode setup code
//!   starts (printed with `earlyprintk=ttyS0 debug` on the command line);
//! * the kernel's first console line (`Linux version`, its first printk):
//!   its arrival, when the serial console registers in `start_kernel`. The
//!   lab kernel has `X86_VERBOSE_BOOTUP` off, so the decompressor prints
//!   nothing ("Decompressing Linux... Booting the kernel" are
//!   `debug_putstr` calls), and `EARLY_PRINTK` off: the end of decompression
//!   is not seen, and this mark is an upper bound of it;
//! * `Run /init as init process` and the probe line
//!   (`rust_keyboard KBD0001:00: probed`) at their printk stamps placed on
//!   the host clock: stamp + the host time of the kernel clock's zero,
//!   which is the smallest `arrival - stamp` over the stamped lines (a line
//!   arrives after it was logged, never before). Only lines of the clock's
//!   last run count: the stamps step back once on TCG (the TSC sched_clock
//!   starts from 0 again once the TSC is calibrated), and lines stamped 0
//!   were logged at an unknown time;
//! * `LAB-INIT-READY` (printed by /init, no stamp): its arrival.
//!
//! A mark that is missing (another firmware, another kernel) merges its
//! phase into the next one, with both names: nothing is invented.

use regex::Regex;
use serde::Serialize;
use std::sync::LazyLock;
use std::time::Duration;

/// A printk line: `[   12.345678] text`.
static STAMPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[\s*(\d+\.\d+)\] ").expect("valid regex"));

/// The phases, in order: the name of the phase that ends at the mark, and
/// the mark's key.
pub const PHASES: [(&str, &str); 7] = [
    ("QEMU start-up", "seabios"),
    ("SeaBIOS", "rom"),
    ("option ROM (loads kernel and initramfs)", "setup"),
    (
        "setup code + decompression + early kernel (to its console)",
        "console",
    ),
    ("kernel init", "run_init"),
    ("/init to the probe", "probe"),
    ("/init after the probe", "ready"),
];

/// One phase of one boot, in seconds after QEMU's spawn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// What runs in it (names joined with ` + ` when marks were missing).
    pub name: String,
    /// Start, s.
    pub start: f64,
    /// End, s.
    pub end: f64,
}

/// The timeline of one boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// Every mark found: its key and time, s after QEMU's spawn.
    pub marks: Vec<(String, f64)>,
    /// The phases between them.
    pub phases: Vec<Phase>,
    /// The host time of the kernel clock's zero, s ([`clock_zero`]).
    pub clock_zero: Option<f64>,
    /// The probe line's arrival minus its place from its stamp, s: the
    /// console's delay plus any drift of the guest clock since clock zero
    /// (how far the stamp alignment can be trusted late in the boot).
    pub probe_residual: Option<f64>,
}

/// A mark's time from the console lines, if found.
fn find(lines: &[(Duration, String)], needle: &str) -> Option<(f64, Option<f64>)> {
    lines
        .iter()
        .find(|(_, l)| l.contains(needle))
        .map(|(at, l)| {
            let stamp = STAMPED.captures(l).and_then(|c| c[1].parse::<f64>().ok());
            (at.as_secs_f64(), stamp)
        })
}

/// The host time of the kernel clock's zero: the smallest `arrival -
/// stamp` over the lines of the clock's last run (after the last line
/// whose stamp is below the one before it), lines stamped 0 left out.
pub fn clock_zero(lines: &[(Duration, String)]) -> Option<f64> {
    let stamped: Vec<(f64, f64)> = lines
        .iter()
        .filter_map(|(at, l)| {
            let stamp: f64 = STAMPED.captures(l)?[1].parse().ok()?;
            (stamp > 0.0).then_some((at.as_secs_f64(), stamp))
        })
        .collect();
    let last_run = stamped
        .windows(2)
        .rposition(|w| w[1].1 < w[0].1)
        .map_or(0, |i| i + 1);
    stamped[last_run..]
        .iter()
        .map(|(at, stamp)| at - stamp)
        .min_by(f64::total_cmp)
}

/// The timeline of a boot's console.
pub fn of(lines: &[(Duration, String)]) -> Timeline {
    let zero = clock_zero(lines);
    // A stamped mark on the host clock: its stamp + clock zero.
    let stamped = |needle: &str| {
        let (arrival, stamp) = find(lines, needle)?;
        Some(match (zero, stamp) {
            (Some(z), Some(s)) => z + s,
            _ => arrival,
        })
    };
    let arrival = |needle: &str| find(lines, needle).map(|(at, _)| at);
    let mut marks: Vec<(String, f64)> = Vec::new();
    for (_, key) in PHASES {
        let t = match key {
            "seabios" => arrival("SeaBIOS (version"),
            "rom" => arrival("Booting from ROM"),
            "setup" => arrival("early console in setup code"),
            "console" => lines
                .iter()
                .find(|(_, l)| STAMPED.is_match(l))
                .map(|(at, _)| at.as_secs_f64()),
            "run_init" => stamped("Run /init as init process"),
            "probe" => stamped("rust_keyboard KBD0001:00: probed"),
            "ready" => arrival(vm_tests::console::INIT_READY),
            _ => None,
        };
        // A mark earlier than the one before it is not trusted (e.g. a
        // clock zero before the firmware ran): it is dropped.
        if let Some(t) = t
            && marks.last().is_none_or(|(_, prev)| t >= *prev)
        {
            marks.push((key.to_owned(), t));
        }
    }
    let phases = phases(&marks);
    let probe_residual = match (zero, find(lines, "rust_keyboard KBD0001:00: probed")) {
        (Some(z), Some((at, Some(stamp)))) => Some(at - (z + stamp)),
        _ => None,
    };
    Timeline {
        marks,
        phases,
        clock_zero: zero,
        probe_residual,
    }
}

/// The phases between ordered marks: each from the previous mark (or
/// QEMU's spawn) to its own, named by every phase since the previous mark.
fn phases(marks: &[(String, f64)]) -> Vec<Phase> {
    let mut phases = Vec::new();
    let mut start = 0.0;
    let mut names: Vec<&str> = Vec::new();
    for (name, key) in PHASES {
        names.push(name);
        if let Some((_, t)) = marks.iter().find(|(k, _)| k == key) {
            phases.push(Phase {
                name: names.join(" + "),
                start,
                end: *t,
            });
            names.clear();
            start = *t;
        }
    }
    phases
}

/// The median timeline of several boots: per mark found in every boot,
/// the median of its times (medians of ordered marks stay ordered).
pub fn median(runs: &[Timeline]) -> Option<Timeline> {
    let first = runs.first()?;
    let mut marks = Vec::new();
    for (key, _) in &first.marks {
        let times: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.marks.iter().find(|(k, _)| k == key).map(|(_, t)| *t))
            .collect();
        if times.len() == runs.len() {
            let d = super::stats::Dist::of(times)?;
            marks.push((key.clone(), d.median));
        }
    }
    let phases = phases(&marks);
    let residuals: Vec<f64> = runs.iter().filter_map(|r| r.probe_residual).collect();
    let zeros: Vec<f64> = runs.iter().filter_map(|r| r.clock_zero).collect();
    Some(Timeline {
        marks,
        phases,
        clock_zero: super::stats::Dist::of(zeros).map(|d| d.median),
        probe_residual: super::stats::Dist::of(residuals).map(|d| d.median),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(lines: &[(f64, &str)]) -> Vec<(Duration, String)> {
        lines
            .iter()
            .map(|(t, l)| (Duration::from_secs_f64(*t), (*l).to_owned()))
            .collect()
    }

    /// A boot as the timeline boot sees it (shaped like a real one on
    /// TCG): SeaBIOS on the debug console, the setup code's line, the
    /// kernel's lines buffered until its console registers (stamped 0),
    /// the TSC calibration line of the clock's first run, then the clock
    /// from 0 again, live lines.
    fn full_boot() -> Vec<(Duration, String)> {
        console(&[
            (0.050, "SeaBIOS (version 1.16.2-debian-1.16.2-1)"),
            (0.120, "Booting from ROM..."),
            (0.200, "early console in setup code"),
            (
                0.300,
                "[    0.000000] Linux version 7.2.12 (rust-kbd-lab@rust-kbd-lab)",
            ),
            (
                0.301,
                "[    0.000000] printk: legacy console [ttyS0] enabled",
            ),
            (0.380, "[    0.048000] tsc: Detected 2445.362 MHz processor"),
            (0.431, "[    0.010000] Spectre V2 : Vulnerable"),
            (0.425, "[    0.005000] clocksource: a second step back"),
            (0.440, "[    0.019000] pid_max: default: 32768 minimum: 301"),
            (0.655, "[    0.230000] Run /init as init process"),
            (
                0.800,
                "[    0.370000] rust_keyboard KBD0001:00: probed: irq 1",
            ),
            (0.900, "LAB-INIT-READY"),
        ])
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn clock_zero_is_the_least_delayed_line_of_the_last_run() {
        // 0.380 - 0.048 = 0.332 is from the clock's first run; of the last
        // run's lines, 0.440 - 0.019 = 0.421 is the smallest.
        let mut lines = full_boot();
        lines.remove(7);
        assert!(close(clock_zero(&lines).unwrap(), 0.421));
        // A second step back: the last run starts there (0.425 - 0.005).
        assert!(close(clock_zero(&full_boot()).unwrap(), 0.420));
        assert_eq!(clock_zero(&console(&[(1.0, "[    0.000000] early")])), None);
    }

    #[test]
    fn every_phase_of_a_full_boot() {
        let t = of(&full_boot());
        let got: Vec<(&str, f64, f64)> = t
            .phases
            .iter()
            .map(|p| (p.name.as_str(), p.start, p.end))
            .collect();
        let want = [
            ("QEMU start-up", 0.0, 0.050),
            ("SeaBIOS", 0.050, 0.120),
            ("option ROM (loads kernel and initramfs)", 0.120, 0.200),
            (
                "setup code + decompression + early kernel (to its console)",
                0.200,
                0.300,
            ),
            ("kernel init", 0.300, 0.650),
            ("/init to the probe", 0.650, 0.790),
            ("/init after the probe", 0.790, 0.900),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(
                g.0 == w.0 && close(g.1, w.1) && close(g.2, w.2),
                "{g:?} != {w:?}"
            );
        }
        assert!(close(t.clock_zero.unwrap(), 0.420));
        assert!(close(t.probe_residual.unwrap(), 0.010));
    }

    #[test]
    fn missing_marks_merge_phases_with_both_names() {
        // qboot instead of SeaBIOS: no firmware lines; no early console.
        let lines: Vec<_> = full_boot()
            .into_iter()
            .filter(|(_, l)| !l.contains("SeaBIOS") && !l.contains("ROM") && !l.contains("setup"))
            .collect();
        let t = of(&lines);
        assert_eq!(
            t.phases[0].name,
            "QEMU start-up + SeaBIOS + option ROM (loads kernel and initramfs) + setup code + \
             decompression + early kernel (to its console)"
        );
        assert!(close(t.phases[0].end, 0.300));
        assert_eq!(t.phases.len(), 4);
    }

    #[test]
    fn a_mark_before_the_previous_one_is_dropped() {
        let mut lines = full_boot();
        // The setup line arriving after the clock zero it precedes.
        lines[2].0 = Duration::from_secs_f64(0.330);
        let t = of(&lines);
        assert!(
            t.marks.iter().all(|(k, _)| k != "clock_zero"),
            "{:?}",
            t.marks
        );
        assert!(t.phases.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn the_median_timeline_keeps_marks_found_in_every_boot() {
        let a = of(&full_boot());
        let mut slower = full_boot();
        for (at, _) in &mut slower {
            *at += Duration::from_millis(100);
        }
        let b = of(&slower);
        let mut c_lines = full_boot();
        c_lines.remove(0);
        let c = of(&c_lines);
        let m = median(&[a, b.clone(), c]).unwrap();
        assert!(m.marks.iter().all(|(k, _)| k != "seabios"));
        let ready = m.marks.iter().find(|(k, _)| k == "ready").unwrap().1;
        assert!(close(ready, 0.900), "{ready}");
        assert!(median(&[]).is_none());
        assert_eq!(median(std::slice::from_ref(&b)).unwrap().marks, b.marks);
    }

    /// A real timeline boot's console (`bench report`'s log of it: arrival
    /// in seconds, then the line), lab kernel on TCG, 2026-12-02.
    #[test]
    fn a_real_tcg_boot() {
        let lines: Vec<(Duration, String)> = include_str!("test_data/timeline-tcg.console.log")
            .lines()
            .map(|l| {
                let (at, line) = l.trim_start().split_once(' ').unwrap();
                (
                    Duration::from_secs_f64(at.parse().unwrap()),
                    line.to_owned(),
                )
            })
            .collect();
        let t = of(&lines);
        let keys: Vec<&str> = t.marks.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "seabios", "rom", "setup", "console", "run_init", "probe", "ready"
            ]
        );
        // The clock's last run starts after `tsc: Detected` (stamped 0.048
        // in the first run); its least delayed line is `Spectre V2`,
        // stamped 0.008383, arriving at 0.431751.
        assert!(close(t.clock_zero.unwrap(), 0.431751 - 0.008383));
        assert!(close(t.marks[3].1, 0.307318));
        // The probe line arrived 1.550210, stamped 1.115411.
        assert!(close(
            t.probe_residual.unwrap(),
            1.550210 - 1.115411 - (0.431751 - 0.008383)
        ));
        assert!(close(t.marks[6].1, 1.571673));
    }
}
