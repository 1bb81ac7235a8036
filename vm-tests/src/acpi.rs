//! ACPI table headers: as the kernel prints them at boot, and as a compiled
//! table (`.aml`) carries them.
//!
//! Every ACPI table but the RSDP and the FACS starts with the 36-byte
//! "System Description Table Header" (ACPI spec, section 5.2.6; all numbers
//! little endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | signature (`SSDT`) |
//! | 4 | 4 | length of the whole table, header included |
//! | 8 | 1 | revision |
//! | 9 | 1 | checksum |
//! | 10 | 6 | OEM ID |
//! | 16 | 8 | OEM table ID |
//! | 24 | 4 | OEM revision |
//! | 28 | 4 | creator (compiler) ID |
//! | 32 | 4 | creator (compiler) revision |
//!
//! The kernel lists the tables it found early at boot, one line each
//! (`drivers/acpi/acpica/tbprint.c`), the text fields padded with spaces:
//!
//! ```text
//! [    0.000000] ACPI: SSDT 0x000000000FFE1AB2 000070 (v02 TEST   VIRTACPI 00000001 INTL 20200925)
//! ```
//!
//! Both give a [`TableHeader`], so the table the kernel loaded can be
//! compared with the file it was given. Text fields are kept without the
//! padding (trailing spaces and NULs).

use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, Result};

/// The length of the standard table header, in bytes.
pub const HEADER_LEN: usize = 36;

/// The standard header of an ACPI table (all but the checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableHeader {
    /// The table signature: `SSDT`, `DSDT`, `FACP`, `APIC`, ...
    pub signature: String,
    /// The length of the table in bytes, header included.
    pub length: u32,
    /// The revision of the table's format (`2` for an SSDT of ACPI 2.0+).
    pub revision: u8,
    /// The OEM ID (up to 6 characters): `TEST`, `BOCHS`.
    pub oem_id: String,
    /// The OEM table ID (up to 8 characters): `VIRTACPI`, `BXPC`.
    pub table_id: String,
    /// The OEM revision of the table.
    pub oem_revision: u32,
    /// The ID of the compiler that built the table (up to 4 characters):
    /// `INTL` for iasl.
    pub compiler_id: String,
    /// The revision of that compiler (iasl: its release date, `0x20200925`).
    pub compiler_revision: u32,
}

impl TableHeader {
    /// Parses one line of the kernel's boot-time table list; `None` if the
    /// line is not one (other kernel lines, and the RSDP and FACS lines,
    /// which have no standard header).
    ///
    /// The printk timestamp or anything else before `ACPI: ` is ignored.
    pub fn from_boot_line(line: &str) -> Option<TableHeader> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"ACPI: ([A-Z0-9]{4}) 0x[0-9A-F]+ ([0-9A-F]{6}) \(v(\d\d) (.{6}) (.{8}) ([0-9A-F]{8}) (.{4}) ([0-9A-F]{8})\)",
            )
            .expect("valid regex")
        });
        let c = RE.captures(line)?;
        // The pattern bounds every number: none of these can fail.
        let hex = |i: usize| u32::from_str_radix(&c[i], 16).ok();
        Some(TableHeader {
            signature: c[1].to_owned(),
            length: hex(2)?,
            revision: c[3].parse().ok()?,
            oem_id: c[4].trim_end().to_owned(),
            table_id: c[5].trim_end().to_owned(),
            oem_revision: hex(6)?,
            compiler_id: c[7].trim_end().to_owned(),
            compiler_revision: hex(8)?,
        })
    }

    /// The headers of every table the kernel log `log` lists, in log order.
    pub fn boot_tables(log: &str) -> Vec<TableHeader> {
        log.lines()
            .filter_map(TableHeader::from_boot_line)
            .collect()
    }

    /// Parses the header of a compiled table, `table` being the whole file.
    ///
    /// Fails if `table` is shorter than a header or if the header's length
    /// is not the size of `table`.
    pub fn from_aml(table: &[u8]) -> Result<TableHeader> {
        let err = |message: String| Error::Parse {
            what: "ACPI table",
            message,
        };
        let Some(b) = table.first_chunk::<HEADER_LEN>() else {
            return Err(err(format!(
                "{} bytes, shorter than a table header ({HEADER_LEN} bytes)",
                table.len()
            )));
        };
        let text = |r: std::ops::Range<usize>| {
            String::from_utf8_lossy(&b[r])
                .trim_end_matches([' ', '\0'])
                .to_owned()
        };
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let header = TableHeader {
            signature: text(0..4),
            length: u32_at(4),
            revision: b[8],
            oem_id: text(10..16),
            table_id: text(16..24),
            oem_revision: u32_at(24),
            compiler_id: text(28..32),
            compiler_revision: u32_at(32),
        };
        if usize::try_from(header.length).ok() != Some(table.len()) {
            return Err(err(format!(
                "header length {} but {} bytes",
                header.length,
                table.len()
            )));
        }
        Ok(header)
    }

    /// Reads a compiled table file and parses its header
    /// ([`TableHeader::from_aml`]).
    pub fn read_aml(path: &Path) -> Result<TableHeader> {
        let table =
            std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        TableHeader::from_aml(&table).map_err(|e| match e {
            Error::Parse { what, message } => Error::Parse {
                what,
                message: format!("{}: {message}", path.display()),
            },
            e => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `acpi/ssdt.asl` as iasl 20200925 compiles it (`acpi/ssdt.aml`, 112
    /// bytes).
    const SSDT_AML: &[u8] = b"\
\x53\x53\x44\x54\x70\x00\x00\x00\x02\x11\x54\x45\x53\x54\x00\x00\
\x56\x49\x52\x54\x41\x43\x50\x49\x01\x00\x00\x00\x49\x4e\x54\x4c\
\x25\x09\x20\x20\x10\x4b\x04\x5c\x5f\x53\x42\x5f\x5b\x82\x42\x04\
\x4b\x42\x44\x5f\x08\x5f\x48\x49\x44\x0d\x4b\x42\x44\x30\x30\x30\
\x31\x00\x08\x5f\x55\x49\x44\x01\x14\x09\x5f\x53\x54\x41\x00\xa4\
\x0a\x0f\x08\x5f\x43\x52\x53\x11\x18\x0a\x15\x47\x01\x60\x00\x60\
\x00\x01\x01\x47\x01\x64\x00\x64\x00\x01\x01\x22\x02\x00\x79\x00";

    /// The ACPI lines of a real boot of the lab VM (Linux 7.2.12, QEMU
    /// `-machine pc`: SeaBIOS's tables plus the lab's SSDT given with
    /// `-acpitable`), with the console line before them.
    const BOOT_LOG: &str = "\
[    0.000000] RAMDISK: [mem 0x0fee1000-0x0ffdffff]
[    0.000000] ACPI: Early table checksum verification disabled
[    0.000000] ACPI: RSDP 0x00000000000F59D0 000014 (v00 BOCHS )
[    0.000000] ACPI: RSDT 0x000000000FFE1B22 000038 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: FACP 0x000000000FFE1966 000074 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: DSDT 0x000000000FFE0040 001926 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: FACS 0x000000000FFE0000 000040
[    0.000000] ACPI: APIC 0x000000000FFE19DA 000078 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: HPET 0x000000000FFE1A52 000038 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: WAET 0x000000000FFE1A8A 000028 (v01 BOCHS  BXPC     00000001 BXPC 00000001)
[    0.000000] ACPI: SSDT 0x000000000FFE1AB2 000070 (v02 TEST   VIRTACPI 00000001 INTL 20200925)
[    0.000000] ACPI: Reserving FACP table memory at [mem 0xffe1966-0xffe19d9]
[    0.000000] ACPI: Reserving DSDT table memory at [mem 0xffe0040-0xffe1965]
[    0.000000] ACPI: Reserving FACS table memory at [mem 0xffe0000-0xffe003f]
[    0.000000] ACPI: Reserving APIC table memory at [mem 0xffe19da-0xffe1a51]
[    0.000000] ACPI: Reserving HPET table memory at [mem 0xffe1a52-0xffe1a89]
[    0.000000] ACPI: Reserving WAET table memory at [mem 0xffe1a8a-0xffe1ab1]
[    0.000000] ACPI: Reserving SSDT table memory at [mem 0xffe1ab2-0xffe1b21]
";

    fn ssdt() -> TableHeader {
        TableHeader {
            signature: "SSDT".into(),
            length: 0x70,
            revision: 2,
            oem_id: "TEST".into(),
            table_id: "VIRTACPI".into(),
            oem_revision: 1,
            compiler_id: "INTL".into(),
            compiler_revision: 0x2020_0925,
        }
    }

    #[test]
    fn aml_header_of_the_real_ssdt() {
        assert_eq!(TableHeader::from_aml(SSDT_AML).unwrap(), ssdt());
    }

    #[test]
    fn aml_text_fields_lose_nul_and_space_padding() {
        // An 8-character table ID uses all its bytes; shorter ones are padded
        // with NULs (iasl) or spaces (QEMU).
        let mut table = SSDT_AML.to_vec();
        table[16..24].copy_from_slice(b"VIRTABS\0");
        table[10..16].copy_from_slice(b"BOCHS ");
        let header = TableHeader::from_aml(&table).unwrap();
        assert_eq!(header.table_id, "VIRTABS");
        assert_eq!(header.oem_id, "BOCHS");
    }

    #[test]
    fn aml_header_only_table() {
        let mut table = SSDT_AML[..HEADER_LEN].to_vec();
        table[4..8].copy_from_slice(&36u32.to_le_bytes());
        let header = TableHeader::from_aml(&table).unwrap();
        assert_eq!(header.length, 36);
        assert_eq!(header.signature, "SSDT");
    }

    #[test]
    fn aml_too_short_is_an_error() {
        for len in [0, 4, HEADER_LEN - 1] {
            let e = TableHeader::from_aml(&SSDT_AML[..len]).unwrap_err();
            assert!(e.to_string().contains("shorter than a table header"), "{e}");
        }
    }

    #[test]
    fn aml_length_must_be_the_file_size() {
        let truncated = TableHeader::from_aml(&SSDT_AML[..100]).unwrap_err();
        assert_eq!(
            truncated.to_string(),
            "cannot parse ACPI table: header length 112 but 100 bytes"
        );
        let mut longer = SSDT_AML.to_vec();
        longer.push(0);
        assert!(TableHeader::from_aml(&longer).is_err());
    }

    #[test]
    fn read_aml_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ssdt.aml");
        std::fs::write(&path, SSDT_AML).unwrap();
        assert_eq!(TableHeader::read_aml(&path).unwrap(), ssdt());
        std::fs::write(&path, &SSDT_AML[..40]).unwrap();
        let e = TableHeader::read_aml(&path).unwrap_err().to_string();
        assert!(
            e.contains("ssdt.aml: header length 112 but 40 bytes"),
            "{e}"
        );
        let missing = dir.path().join("missing.aml");
        let e = TableHeader::read_aml(&missing).unwrap_err().to_string();
        assert!(
            e.starts_with("reading ") && e.contains("missing.aml"),
            "{e}"
        );
    }

    #[test]
    fn boot_line_of_the_ssdt() {
        let line = "[    0.000000] ACPI: SSDT 0x000000000FFE1AB2 000070 (v02 TEST   VIRTACPI 00000001 INTL 20200925)";
        assert_eq!(TableHeader::from_boot_line(line), Some(ssdt()));
        // Without the printk timestamp (`CONFIG_PRINTK_TIME` off).
        let bare = line.split_once("] ").unwrap().1;
        assert_eq!(TableHeader::from_boot_line(bare), Some(ssdt()));
    }

    #[test]
    fn boot_tables_skip_rsdp_facs_and_other_lines() {
        let tables = TableHeader::boot_tables(BOOT_LOG);
        let signatures: Vec<&str> = tables.iter().map(|t| t.signature.as_str()).collect();
        assert_eq!(
            signatures,
            ["RSDT", "FACP", "DSDT", "APIC", "HPET", "WAET", "SSDT"]
        );
        assert_eq!(tables[6], ssdt());
        assert_eq!(
            tables[2],
            TableHeader {
                signature: "DSDT".into(),
                length: 0x1926,
                revision: 1,
                oem_id: "BOCHS".into(),
                table_id: "BXPC".into(),
                oem_revision: 1,
                compiler_id: "BXPC".into(),
                compiler_revision: 1,
            }
        );
        // The serial console as QEMU writes it, with CR LF line ends.
        assert_eq!(
            TableHeader::boot_tables(&BOOT_LOG.replace('\n', "\r\n")),
            tables
        );
    }

    #[test]
    fn boot_line_lookalikes_are_not_tables() {
        for line in [
            "",
            "ACPI: Early table checksum verification disabled",
            "ACPI: RSDP 0x00000000000F5A10 000014 (v00 BOCHS )",
            "ACPI: FACS 0x000000000FFE0000 000040",
            // Lower-case hex, a short length, a missing field.
            "ACPI: SSDT 0x000000000ffe1b2a 000070 (v02 TEST   VIRTACPI 00000001 INTL 20200925)",
            "ACPI: SSDT 0x000000000FFE1B2A 0070 (v02 TEST   VIRTACPI 00000001 INTL 20200925)",
            "ACPI: SSDT 0x000000000FFE1B2A 000070 (v02 TEST   VIRTACPI 00000001 20200925)",
        ] {
            assert_eq!(TableHeader::from_boot_line(line), None, "{line:?}");
        }
        assert!(TableHeader::boot_tables("Linux version 7.2\n").is_empty());
    }
}
