//! Resource declarations read from ASL source: the I/O ranges and IRQs that
//! a `ResourceTemplate` (a device's `_CRS`) promises.
//!
//! This is the oracle of the device tests: what the firmware declares, read
//! from the `.asl` text, independent of what the kernel made of it. It
//! understands the two macros the lab's tables use, in the spelling of the
//! ACPI spec (section 19.6):
//!
//! ```text
//! IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)   // fixed range: min == max
//! IRQNoFlags () {1}                            // IRQ list, decimal
//! ```
//!
//! Comments (`/* */`, `//`) are skipped. Any other spelling of an I/O or
//! IRQ declaration (`FixedIO`, `IRQ`, `Interrupt`, `Decode10`, a descriptor
//! name, decimal ports) is an error rather than a resource silently missed.

use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Error, Result};

/// The I/O and IRQ resources declared in an ASL source, in source order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// The I/O port ranges, first to last port: `IO (Decode16, 0x60, 0x60,
    /// 0x01, 0x01)` gives `0x60..=0x60`.
    pub io: Vec<RangeInclusive<u32>>,
    /// The IRQ numbers of every `IRQNoFlags` list.
    pub irqs: Vec<u32>,
}

/// The matching of the supported macros (on source without comments).
static IO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\bIO\s*\(\s*Decode16\s*,\s*(0x[0-9A-Fa-f]+)\s*,\s*(0x[0-9A-Fa-f]+)\s*,\s*0x[0-9A-Fa-f]+\s*,\s*(0x[0-9A-Fa-f]+)\s*\)",
    )
    .expect("valid regex")
});
static IRQ_NO_FLAGS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\bIRQNoFlags\s*\(\s*\)\s*\{\s*([0-9,\s]*)\}").expect("valid regex")
});
/// Every I/O or IRQ resource macro, supported or not.
static ANY_RESOURCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(IO|FixedIO|IRQ|IRQNoFlags|Interrupt)\s*\(").expect("valid regex")
});

impl Resources {
    /// Reads the resources declared in `source`, ASL text.
    ///
    /// Fails on an I/O range that is relocatable (min and max differ) or
    /// empty, on numbers that do not fit in 32 bits, on an unterminated
    /// comment, and on resource declarations in another form than the two
    /// above.
    pub fn parse(source: &str) -> Result<Resources> {
        let src = strip_comments(source)?;
        let mut recognised = Vec::new();
        let mut io = Vec::new();
        for c in IO.captures_iter(&src) {
            let whole = c.get(0).expect("group 0");
            let (min, max, len) = (hex(&c[1])?, hex(&c[2])?, hex(&c[3])?);
            if min != max {
                return Err(parse_error(format!(
                    "relocatable I/O range (min {min:#x}, max {max:#x}): {}",
                    whole.as_str()
                )));
            }
            let last = len
                .checked_sub(1)
                .and_then(|l| min.checked_add(l))
                .ok_or_else(|| {
                    parse_error(format!("I/O range of length {len}: {}", whole.as_str()))
                })?;
            io.push(min..=last);
            recognised.push(whole.start());
        }
        let mut irqs = Vec::new();
        for c in IRQ_NO_FLAGS.captures_iter(&src) {
            for n in c[1].split(',').map(str::trim).filter(|n| !n.is_empty()) {
                irqs.push(
                    n.parse()
                        .map_err(|_| parse_error(format!("IRQ number {n:?}")))?,
                );
            }
            recognised.push(c.get(0).expect("group 0").start());
        }
        if let Some(other) = ANY_RESOURCE
            .find_iter(&src)
            .find(|m| !recognised.contains(&m.start()))
        {
            let line = src[other.start()..].lines().next().unwrap_or_default();
            return Err(parse_error(format!(
                "unsupported resource declaration: {}",
                line.trim_end()
            )));
        }
        Ok(Resources { io, irqs })
    }

    /// Reads an ASL file and parses it ([`Resources::parse`]).
    pub fn read(path: &Path) -> Result<Resources> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        Resources::parse(&source).map_err(|e| match e {
            Error::Parse { what, message } => Error::Parse {
                what,
                message: format!("{}: {message}", path.display()),
            },
            e => e,
        })
    }
}

fn parse_error(message: String) -> Error {
    Error::Parse {
        what: "ASL resources",
        message,
    }
}

/// `0x60` as a number.
fn hex(text: &str) -> Result<u32> {
    u32::from_str_radix(text.trim_start_matches("0x"), 16)
        .map_err(|_| parse_error(format!("number {text} does not fit in 32 bits")))
}

/// `source` with every comment replaced by a space; string literals are
/// kept as they are (a `//` inside one is not a comment).
fn strip_comments(source: &str) -> Result<String> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(i) = rest.find(['/', '"']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with('"') {
            // Up to the closing quote, skipping escaped characters.
            let mut end = None;
            let mut escaped = false;
            for (j, ch) in tail.char_indices().skip(1) {
                match ch {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = Some(j + 1);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| parse_error("unterminated string".to_owned()))?;
            out.push_str(&tail[..end]);
            rest = &tail[end..];
        } else if let Some(body) = tail.strip_prefix("/*") {
            let end = body
                .find("*/")
                .ok_or_else(|| parse_error("unterminated /* comment".to_owned()))?;
            out.push(' ');
            rest = &body[end + 2..];
        } else if tail.starts_with("//") {
            out.push(' ');
            rest = tail.find('\n').map_or("", |end| &tail[end..]);
        } else {
            out.push('/');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of `acpi/ssdt.asl`, comments and all.
    const LAB_SSDT: &str = r#"/*
 * SSDT of the lab: declares the PS/2 keyboard controller as the ACPI device
 * \_SB.KBD with hardware ID KBD0001, which the Rust driver (module/) matches.
 * QEMU loads it with `-acpitable file=ssdt.aml`.
 *
 * _CRS hands the driver its resources: the data port 0x60, the
 * status/command port 0x64 and the legacy keyboard interrupt, IRQ 1.
 */
DefinitionBlock ("", "SSDT", 2, "TEST", "VIRTACPI", 1)
{
    Scope (\_SB)
    {
        Device (KBD)
        {
            Name (_HID, "KBD0001")
            Name (_UID, 1)

            /* Present, enabled, shown in the UI, functioning. */
            Method (_STA, 0, NotSerialized)
            {
                Return (0x0F)
            }

            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x0060, 0x0060, 0x01, 0x01)
                IO (Decode16, 0x0064, 0x0064, 0x01, 0x01)
                IRQNoFlags () {1}
            })
        }
    }
}
"#;

    fn parse_err(source: &str) -> String {
        Resources::parse(source).unwrap_err().to_string()
    }

    #[test]
    fn the_lab_ssdt() {
        let r = Resources::parse(LAB_SSDT).unwrap();
        assert_eq!(r.io, [0x60..=0x60, 0x64..=0x64]);
        assert_eq!(r.irqs, [1]);
    }

    #[test]
    fn without_irq() {
        // acpi/test/no-irq.asl: the same template without its IRQNoFlags.
        let source = LAB_SSDT.replace("IRQNoFlags () {1}", "");
        let r = Resources::parse(&source).unwrap();
        assert_eq!(r.io.len(), 2);
        assert!(r.irqs.is_empty());
        assert_eq!(Resources::parse("").unwrap(), Resources::default());
    }

    #[test]
    fn ranges_lists_and_spacing() {
        let r = Resources::parse(
            "IO(Decode16,0x3F8,0x3F8,0x08,0x08)\n\
             IO (\n  Decode16,\n  0x0cf8, 0x0cf8,\n  0x01,\n  0x08\n)\n\
             IRQNoFlags ( ) { 3, 4,5 }\nIRQNoFlags () {}\nIRQNoFlags () {12}",
        )
        .unwrap();
        assert_eq!(r.io, [0x3f8..=0x3ff, 0xcf8..=0xcff]);
        assert_eq!(r.irqs, [3, 4, 5, 12]);
    }

    #[test]
    fn comments_are_not_declarations() {
        let source = "\
            IO (Decode16, 0x0060, 0x0060, 0x01, 0x01) // IO (Decode16, 0x70, 0x70, 0x01, 0x02)
            /* IRQNoFlags () {1}
               IRQ (Edge, ActiveHigh, Exclusive) {1} */
            Name (_STR, Unicode (\"// not a comment /* either\"))
            IRQNoFlags () {6} // floppy
        ";
        let r = Resources::parse(source).unwrap();
        assert_eq!(r.io, [0x60..=0x60]);
        assert_eq!(r.irqs, [6]);
        // A division is not a comment.
        assert!(Resources::parse("Store (Local0 / 2, Local1)").is_ok());
    }

    #[test]
    fn relocatable_and_empty_ranges_are_errors() {
        let e = parse_err("IO (Decode16, 0x0060, 0x0070, 0x01, 0x01)");
        assert!(
            e.contains("relocatable I/O range (min 0x60, max 0x70)"),
            "{e}"
        );
        let e = parse_err("IO (Decode16, 0x0060, 0x0060, 0x01, 0x00)");
        assert!(e.contains("I/O range of length 0"), "{e}");
        let e = parse_err("IO (Decode16, 0xFFFFFFFF, 0xFFFFFFFF, 0x01, 0x02)");
        assert!(e.contains("I/O range of length 2"), "{e}");
        let e = parse_err("IO (Decode16, 0x100000000, 0x100000000, 0x01, 0x01)");
        assert!(e.contains("0x100000000 does not fit in 32 bits"), "{e}");
        let e = parse_err("IRQNoFlags () {99999999999}");
        assert!(e.contains("IRQ number \"99999999999\""), "{e}");
    }

    #[test]
    fn other_declarations_are_errors() {
        for declaration in [
            "FixedIO (0x0060, 0x01)",
            "IO (Decode10, 0x0060, 0x0060, 0x01, 0x01)",
            "IO (Decode16, 96, 96, 1, 1)",
            "IO (Decode16, 0x0060, 0x0060, 0x01, 0x01, KBIO)",
            "IRQNoFlags (KIRQ) {1}",
            "IRQ (Edge, ActiveHigh, Exclusive) {1}",
            "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {1}",
        ] {
            let e = parse_err(&format!("    {declaration}\n    Name (X, 1)\n"));
            assert_eq!(
                e,
                format!(
                    "cannot parse ASL resources: unsupported resource declaration: {declaration}"
                )
            );
        }
        // Names that merely contain the macro names are fine.
        assert!(Resources::parse("Name (KIRQ, 1)\nMethod (GPIO, 0) {}").is_ok());
    }

    #[test]
    fn unterminated_comment_or_string() {
        assert!(parse_err("IRQNoFlags () {1} /* oops").contains("unterminated /* comment"));
        assert!(parse_err("Name (_HID, \"KBD0001)").contains("unterminated string"));
    }

    #[test]
    fn read_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.asl");
        std::fs::write(&path, "IO (Decode16, 0x60, 0x61, 0x01, 0x01)").unwrap();
        let e = Resources::read(&path).unwrap_err().to_string();
        assert!(e.contains("bad.asl: relocatable I/O range"), "{e}");
        std::fs::write(&path, LAB_SSDT).unwrap();
        assert_eq!(Resources::read(&path).unwrap().irqs, [1]);
        let e = Resources::read(&dir.path().join("none.asl")).unwrap_err();
        assert!(e.to_string().starts_with("reading "), "{e}");
    }
}
