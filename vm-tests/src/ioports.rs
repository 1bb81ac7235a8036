//! A parser for `/proc/ioports`.
//!
//! The kernel prints its tree of I/O port resources one per line, two
//! spaces of indentation per level of nesting, the range in hex and the
//! owner's name (`kernel/resource.c`, `r_show`):
//!
//! ```text
//! 0000-0cf7 : PCI Bus 0000:00
//!   0000-001f : dma1
//!   0060-0060 : KBD0001:00
//!     0060-0060 : keyboard
//!   0064-0064 : KBD0001:00
//!     0064-0064 : keyboard
//!   03f8-03ff : serial
//! 0cf8-0cff : PCI conf1
//! ```
//!
//! A platform device's I/O resources show here under the device's name;
//! Linux 7.2 has no per-device `resources` file for ACPI or platform devices.

use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, Result};

/// One line of `/proc/ioports`: a range of ports and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoRegion {
    /// The first port.
    pub start: u32,
    /// The last port (inclusive).
    pub end: u32,
    /// The name of the holder: a device (`KBD0001:00`, `0000:00:01.1`), a
    /// driver (`ata_piix`) or a description (`PCI conf1`).
    pub owner: String,
    /// The nesting level: 0 for a top-level range, 1 for a range inside it,
    /// and so on.
    pub depth: usize,
}

/// A parsed `/proc/ioports`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IoPorts {
    /// Every range, in file order (parents before their children).
    pub regions: Vec<IoRegion>,
}

impl IoPorts {
    /// Parses the text of `/proc/ioports`. Lines that are not
    /// `start-end : owner` are skipped; a range that does not fit in 32 bits
    /// is an error.
    pub fn parse(text: &str) -> Result<IoPorts> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"^(\s*)([0-9a-f]+)-([0-9a-f]+) : (.+)$").expect("valid regex")
        });
        let port = |hex: &str| {
            u32::from_str_radix(hex, 16).map_err(|_| Error::Parse {
                what: "/proc/ioports",
                message: format!("port {hex} does not fit in 32 bits"),
            })
        };
        let regions = text
            .lines()
            .filter_map(|l| RE.captures(l))
            .map(|c| {
                Ok(IoRegion {
                    start: port(&c[2])?,
                    end: port(&c[3])?,
                    owner: c[4].to_owned(),
                    depth: c[1].len() / 2,
                })
            })
            .collect::<Result<_>>()?;
        Ok(IoPorts { regions })
    }

    /// The ranges held by `owner`, in file order.
    pub fn owned_by<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = &'a IoRegion> + 'a {
        self.regions.iter().filter(move |r| r.owner == owner)
    }

    /// Whether `owner` holds exactly the ports `start..=end`.
    pub fn holds(&self, owner: &str, start: u32, end: u32) -> bool {
        self.owned_by(owner)
            .any(|r| r.start == start && r.end == end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/ioports` of a real boot of the lab VM (Linux 7.2.12, QEMU
    /// `-machine pc`, booted with `lab.nomodule`): the platform device of the
    /// lab's SSDT holds the keyboard controller's ports, and the kernel's
    /// own `keyboard` reservations sit inside its ranges.
    const LAB_PC: &str = "\
0000-0cf7 : PCI Bus 0000:00
  0000-001f : dma1
  0020-0021 : pic1
  0040-0043 : timer0
  0050-0053 : timer1
  0060-0060 : KBD0001:00
    0060-0060 : keyboard
  0064-0064 : KBD0001:00
    0064-0064 : keyboard
  0070-0077 : PNP0B00:00
  0080-008f : dma page reg
  00a0-00a1 : pic2
  00c0-00df : dma2
  00f0-00ff : fpu
  0170-0177 : 0000:00:01.1
  01f0-01f7 : 0000:00:01.1
  02f8-02ff : serial
  0376-0376 : 0000:00:01.1
  03f6-03f6 : 0000:00:01.1
  03f8-03ff : serial
  0510-051b : QEMU0002:00
  0600-063f : 0000:00:01.3
    0600-0603 : ACPI PM1a_EVT_BLK
    0604-0605 : ACPI PM1a_CNT_BLK
    0608-060b : ACPI PM_TMR
  0700-070f : 0000:00:01.3
0cf8-0cff : PCI conf1
0d00-ffff : PCI Bus 0000:00
  afe0-afe3 : ACPI GPE0_BLK
  c000-c00f : 0000:00:01.1
";

    #[test]
    fn the_lab_pc() {
        let p = IoPorts::parse(LAB_PC).unwrap();
        assert_eq!(p.regions.len(), 30);
        assert_eq!(
            p.regions[0],
            IoRegion {
                start: 0,
                end: 0xcf7,
                owner: "PCI Bus 0000:00".into(),
                depth: 0
            }
        );
        let kbd: Vec<(u32, u32, usize)> = p
            .owned_by("KBD0001:00")
            .map(|r| (r.start, r.end, r.depth))
            .collect();
        assert_eq!(kbd, [(0x60, 0x60, 1), (0x64, 0x64, 1)]);
        assert!(p.holds("KBD0001:00", 0x64, 0x64));
        assert!(!p.holds("KBD0001:00", 0x60, 0x64));
        assert!(!p.holds("KBD0001:0", 0x60, 0x60));
        let reserved: Vec<(u32, usize)> =
            p.owned_by("keyboard").map(|r| (r.start, r.depth)).collect();
        assert_eq!(reserved, [(0x60, 2), (0x64, 2)]);
    }

    #[test]
    fn nesting_and_owners_with_spaces() {
        let p = IoPorts::parse(LAB_PC).unwrap();
        let pm = p.owned_by("ACPI PM1a_EVT_BLK").next().unwrap();
        assert_eq!((pm.start, pm.end, pm.depth), (0x600, 0x603, 2));
        assert_eq!(p.owned_by("PCI Bus 0000:00").count(), 2);
        assert_eq!(p.owned_by("0000:00:01.1").count(), 5);
        assert_eq!(p.owned_by("dma page reg").next().unwrap().end, 0x8f);
        let last = p.regions.last().unwrap();
        assert_eq!((last.start, last.end, last.depth), (0xc000, 0xc00f, 1));
        assert!(p.owned_by("nobody").next().is_none());
        // CR LF line ends (a serial console) parse the same.
        assert_eq!(IoPorts::parse(&LAB_PC.replace('\n', "\r\n")).unwrap(), p);
    }

    #[test]
    fn other_lines_are_skipped() {
        // Empty text, blank lines, an unnamed range, upper-case hex.
        assert_eq!(IoPorts::parse("").unwrap(), IoPorts::default());
        let p = IoPorts::parse("\n  0060-0060 : \n0CF8-0CFF : PCI conf1\n  0070-0077 : rtc0\n\n")
            .unwrap();
        assert_eq!(
            p.regions,
            [IoRegion {
                start: 0x70,
                end: 0x77,
                owner: "rtc0".into(),
                depth: 1
            }]
        );
    }

    #[test]
    fn ranges_beyond_32_bits_are_errors() {
        let e = IoPorts::parse("0000-100000000 : huge\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot parse /proc/ioports: port 100000000 does not fit in 32 bits"
        );
    }
}
