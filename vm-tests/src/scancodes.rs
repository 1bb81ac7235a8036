//! QEMU key names (`QKeyCode`) to PS/2 scan code set 1 bytes: the oracle of
//! the keyboard tests.
//!
//! The table is written from the IBM PC/XT/AT scan code set 1 standard (what
//! an i8042 in translation mode delivers on port 0x60), not from driver
//! output:
//! * a *make* code is sent when a key goes down (and again on typematic
//!   repeat), a *break* code when it goes up;
//! * a break code is the make code with bit 7 set (`a`: make `1e`, break `9e`);
//! * keys added with the AT 101-key keyboard are prefixed with `e0`, and the
//!   prefix is repeated in the break code (`up`: make `e0 48`, break `e0 c8`).
//!
//! `print` (`e0 2a e0 37`) and `pause` (`e1 1d 45 e1 9d c5`, no break) are
//! multi-event sequences and deliberately not in the table.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// `(QEMU key name, set-1 make code)`, one row per key.
const SET1: &[(&str, &[u8])] = &[
    // Main block, row by row.
    ("esc", &[0x01]),
    ("1", &[0x02]),
    ("2", &[0x03]),
    ("3", &[0x04]),
    ("4", &[0x05]),
    ("5", &[0x06]),
    ("6", &[0x07]),
    ("7", &[0x08]),
    ("8", &[0x09]),
    ("9", &[0x0a]),
    ("0", &[0x0b]),
    ("minus", &[0x0c]),
    ("equal", &[0x0d]),
    ("backspace", &[0x0e]),
    ("tab", &[0x0f]),
    ("q", &[0x10]),
    ("w", &[0x11]),
    ("e", &[0x12]),
    ("r", &[0x13]),
    ("t", &[0x14]),
    ("y", &[0x15]),
    ("u", &[0x16]),
    ("i", &[0x17]),
    ("o", &[0x18]),
    ("p", &[0x19]),
    ("bracket_left", &[0x1a]),
    ("bracket_right", &[0x1b]),
    ("ret", &[0x1c]),
    ("ctrl", &[0x1d]),
    ("a", &[0x1e]),
    ("s", &[0x1f]),
    ("d", &[0x20]),
    ("f", &[0x21]),
    ("g", &[0x22]),
    ("h", &[0x23]),
    ("j", &[0x24]),
    ("k", &[0x25]),
    ("l", &[0x26]),
    ("semicolon", &[0x27]),
    ("apostrophe", &[0x28]),
    ("grave_accent", &[0x29]),
    ("shift", &[0x2a]),
    ("backslash", &[0x2b]),
    ("z", &[0x2c]),
    ("x", &[0x2d]),
    ("c", &[0x2e]),
    ("v", &[0x2f]),
    ("b", &[0x30]),
    ("n", &[0x31]),
    ("m", &[0x32]),
    ("comma", &[0x33]),
    ("dot", &[0x34]),
    ("slash", &[0x35]),
    ("shift_r", &[0x36]),
    ("kp_multiply", &[0x37]),
    ("asterisk", &[0x37]),
    ("alt", &[0x38]),
    ("spc", &[0x39]),
    ("caps_lock", &[0x3a]),
    // Function keys.
    ("f1", &[0x3b]),
    ("f2", &[0x3c]),
    ("f3", &[0x3d]),
    ("f4", &[0x3e]),
    ("f5", &[0x3f]),
    ("f6", &[0x40]),
    ("f7", &[0x41]),
    ("f8", &[0x42]),
    ("f9", &[0x43]),
    ("f10", &[0x44]),
    ("num_lock", &[0x45]),
    ("scroll_lock", &[0x46]),
    // Keypad.
    ("kp_7", &[0x47]),
    ("kp_8", &[0x48]),
    ("kp_9", &[0x49]),
    ("kp_subtract", &[0x4a]),
    ("kp_4", &[0x4b]),
    ("kp_5", &[0x4c]),
    ("kp_6", &[0x4d]),
    ("kp_add", &[0x4e]),
    ("kp_1", &[0x4f]),
    ("kp_2", &[0x50]),
    ("kp_3", &[0x51]),
    ("kp_0", &[0x52]),
    ("kp_decimal", &[0x53]),
    ("less", &[0x56]),
    ("f11", &[0x57]),
    ("f12", &[0x58]),
    // Extended (e0-prefixed) keys of the 101/104-key keyboard.
    ("kp_enter", &[0xe0, 0x1c]),
    ("ctrl_r", &[0xe0, 0x1d]),
    ("kp_divide", &[0xe0, 0x35]),
    ("alt_r", &[0xe0, 0x38]),
    ("home", &[0xe0, 0x47]),
    ("up", &[0xe0, 0x48]),
    ("pgup", &[0xe0, 0x49]),
    ("left", &[0xe0, 0x4b]),
    ("right", &[0xe0, 0x4d]),
    ("end", &[0xe0, 0x4f]),
    ("down", &[0xe0, 0x50]),
    ("pgdn", &[0xe0, 0x51]),
    ("insert", &[0xe0, 0x52]),
    ("delete", &[0xe0, 0x53]),
    ("meta_l", &[0xe0, 0x5b]),
    ("meta_r", &[0xe0, 0x5c]),
    ("compose", &[0xe0, 0x5d]),
];

/// The extended-key prefix byte.
pub const EXTENDED_PREFIX: u8 = 0xe0;

/// The set-1 codes of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scancode {
    /// Bytes sent when the key goes down (or repeats).
    pub make: Vec<u8>,
    /// Bytes sent when the key goes up.
    pub brk: Vec<u8>,
}

/// Looks up a QEMU key name (`QKeyCode`, e.g. `a`, `ret`, `ctrl_r`, `up`).
pub fn lookup(name: &str) -> Option<Scancode> {
    let (_, make) = SET1.iter().find(|(n, _)| *n == name)?;
    let mut brk = make.to_vec();
    // Bit 7 marks a break; the e0 prefix stays as it is.
    if let Some(last) = brk.last_mut() {
        *last |= 0x80;
    }
    Some(Scancode {
        make: make.to_vec(),
        brk,
    })
}

/// The make code of a key, see [`lookup`].
pub fn make_code(name: &str) -> Option<Vec<u8>> {
    lookup(name).map(|s| s.make)
}

/// The break code of a key, see [`lookup`].
pub fn break_code(name: &str) -> Option<Vec<u8>> {
    lookup(name).map(|s| s.brk)
}

/// Every key name in the table.
pub fn key_names() -> impl Iterator<Item = &'static str> {
    SET1.iter().map(|(n, _)| *n)
}

/// One key event as the driver reports it: the bytes read for it and whether
/// it was a press (make) or a release (break).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// The bytes, prefix included (`[0xe0, 0x48]`).
    pub bytes: Vec<u8>,
    /// `true` for a make code, `false` for a break code.
    pub pressed: bool,
}

impl KeyEvent {
    /// The key going down.
    pub fn press(name: &str) -> Option<Self> {
        Some(KeyEvent {
            bytes: make_code(name)?,
            pressed: true,
        })
    }

    /// The key going up.
    pub fn release(name: &str) -> Option<Self> {
        Some(KeyEvent {
            bytes: break_code(name)?,
            pressed: false,
        })
    }

    /// Parses a driver log line, `scancode <hex bytes> pressed|released`
    /// (anything before `scancode`, such as the printk prefix, is ignored).
    pub fn parse_driver_line(line: &str) -> Option<Self> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(r"scancode ((?:[0-9a-f]{2} )+)(pressed|released)").expect("valid regex")
        });
        let caps = RE.captures(line)?;
        let bytes = caps[1]
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<Vec<u8>, _>>()
            .ok()?;
        Some(KeyEvent {
            bytes,
            pressed: &caps[2] == "pressed",
        })
    }
}

impl fmt::Display for KeyEvent {
    /// Formats like the driver: `scancode e0 48 pressed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scancode {} {}",
            format_bytes(&self.bytes),
            if self.pressed { "pressed" } else { "released" }
        )
    }
}

/// Every driver event in a kernel log, in order.
pub fn parse_driver_log(log: &str) -> Vec<KeyEvent> {
    log.lines()
        .filter_map(KeyEvent::parse_driver_line)
        .collect()
}

/// The events of a press-and-release (QEMU `send-key`) of a chord: keys go
/// down in the given order and come up in reverse order, as QEMU does.
///
/// `None` if a key is not in the table.
pub fn chord_events(keys: &[&str]) -> Option<Vec<KeyEvent>> {
    let mut events = Vec::with_capacity(keys.len() * 2);
    for key in keys {
        events.push(KeyEvent::press(key)?);
    }
    for key in keys.iter().rev() {
        events.push(KeyEvent::release(key)?);
    }
    Some(events)
}

/// Bytes as lowercase two-digit hex separated by one space (`e0 48`).
pub fn format_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys that type `c` on a US layout, as a chord (`'A'` is
/// `["shift", "a"]`), or `None` if it cannot be typed.
pub fn char_keys(c: char) -> Option<Vec<&'static str>> {
    const SHIFTED_DIGITS: [(char, &str); 10] = [
        ('!', "1"),
        ('@', "2"),
        ('#', "3"),
        ('$', "4"),
        ('%', "5"),
        ('^', "6"),
        ('&', "7"),
        ('*', "8"),
        ('(', "9"),
        (')', "0"),
    ];
    const SYMBOLS: [(char, char, &str); 11] = [
        ('-', '_', "minus"),
        ('=', '+', "equal"),
        ('[', '{', "bracket_left"),
        (']', '}', "bracket_right"),
        (';', ':', "semicolon"),
        ('\'', '"', "apostrophe"),
        ('`', '~', "grave_accent"),
        ('\\', '|', "backslash"),
        (',', '<', "comma"),
        ('.', '>', "dot"),
        ('/', '?', "slash"),
    ];
    let key = |s: &str| key_names().find(|n| *n == s);
    if c.is_ascii_lowercase() || c.is_ascii_digit() {
        return Some(vec![key(c.encode_utf8(&mut [0; 4]))?]);
    }
    if c.is_ascii_uppercase() {
        let lower = c.to_ascii_lowercase();
        return Some(vec!["shift", key(lower.encode_utf8(&mut [0; 4]))?]);
    }
    match c {
        ' ' => return Some(vec!["spc"]),
        '\n' => return Some(vec!["ret"]),
        '\t' => return Some(vec!["tab"]),
        '\u{1b}' => return Some(vec!["esc"]),
        _ => {}
    }
    if let Some((_, k)) = SHIFTED_DIGITS.iter().find(|(ch, _)| *ch == c) {
        return Some(vec!["shift", key(k)?]);
    }
    for (plain, shifted, k) in SYMBOLS {
        if c == plain {
            return Some(vec![k]);
        }
        if c == shifted {
            return Some(vec!["shift", k]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_codes() {
        // Literal values from the set-1 standard, not computed.
        let cases: &[(&str, &[u8], &[u8])] = &[
            ("a", &[0x1e], &[0x9e]),
            ("s", &[0x1f], &[0x9f]),
            ("d", &[0x20], &[0xa0]),
            ("z", &[0x2c], &[0xac]),
            ("1", &[0x02], &[0x82]),
            ("0", &[0x0b], &[0x8b]),
            ("ret", &[0x1c], &[0x9c]),
            ("spc", &[0x39], &[0xb9]),
            ("esc", &[0x01], &[0x81]),
            ("shift", &[0x2a], &[0xaa]),
            ("shift_r", &[0x36], &[0xb6]),
            ("ctrl", &[0x1d], &[0x9d]),
            ("alt", &[0x38], &[0xb8]),
            ("f12", &[0x58], &[0xd8]),
            ("up", &[0xe0, 0x48], &[0xe0, 0xc8]),
            ("down", &[0xe0, 0x50], &[0xe0, 0xd0]),
            ("left", &[0xe0, 0x4b], &[0xe0, 0xcb]),
            ("right", &[0xe0, 0x4d], &[0xe0, 0xcd]),
            ("ctrl_r", &[0xe0, 0x1d], &[0xe0, 0x9d]),
            ("alt_r", &[0xe0, 0x38], &[0xe0, 0xb8]),
            ("kp_enter", &[0xe0, 0x1c], &[0xe0, 0x9c]),
            ("kp_divide", &[0xe0, 0x35], &[0xe0, 0xb5]),
            ("delete", &[0xe0, 0x53], &[0xe0, 0xd3]),
        ];
        for (name, make, brk) in cases {
            let s = lookup(name).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(s.make, *make, "make of {name}");
            assert_eq!(s.brk, *brk, "break of {name}");
        }
        assert_eq!(lookup("nosuchkey"), None);
    }

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for (name, make) in SET1 {
            assert!(seen.insert(*name), "duplicate {name}");
            assert!(matches!(make.len(), 1 | 2), "{name}");
            assert!(
                make.last().is_some_and(|b| b & 0x80 == 0),
                "{name}: make has bit 7"
            );
            if make.len() == 2 {
                assert_eq!(make[0], EXTENDED_PREFIX, "{name}");
            }
            // Every name must be a QEMU QKeyCode.
            assert!(
                name.parse::<qapi::qmp::QKeyCode>().is_ok(),
                "{name} is not a QEMU key name"
            );
        }
        // Letters a..z and digits are all there.
        for c in ('a'..='z').chain('0'..='9') {
            assert!(lookup(&c.to_string()).is_some(), "{c}");
        }
        // Only `asterisk` and `kp_multiply` share a code.
        let mut codes: Vec<&[u8]> = SET1.iter().map(|(_, m)| *m).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), SET1.len() - 1);
    }

    #[test]
    fn chords_release_in_reverse() {
        let ev = chord_events(&["shift", "a"]).unwrap();
        let lines: Vec<String> = ev.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "scancode 2a pressed",
                "scancode 1e pressed",
                "scancode 9e released",
                "scancode aa released"
            ]
        );
        assert!(chord_events(&["shift", "bogus"]).is_none());
    }

    #[test]
    fn driver_lines_parse() {
        let log = "[    1.0] rust_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64\n\
                   [    2.5] rust_keyboard: scancode e0 48 pressed\n\
                   [    2.6] rust_keyboard: scancode e0 c8 released\n\
                   [    2.7] rust_keyboard: scancode 1e pressed\n";
        assert_eq!(
            parse_driver_log(log),
            vec![
                KeyEvent::press("up").unwrap(),
                KeyEvent::release("up").unwrap(),
                KeyEvent::press("a").unwrap()
            ]
        );
    }

    #[test]
    fn us_layout() {
        assert_eq!(char_keys('a'), Some(vec!["a"]));
        assert_eq!(char_keys('Q'), Some(vec!["shift", "q"]));
        assert_eq!(char_keys('7'), Some(vec!["7"]));
        assert_eq!(char_keys('&'), Some(vec!["shift", "7"]));
        assert_eq!(char_keys(' '), Some(vec!["spc"]));
        assert_eq!(char_keys('\n'), Some(vec!["ret"]));
        assert_eq!(char_keys('_'), Some(vec!["shift", "minus"]));
        assert_eq!(char_keys('/'), Some(vec!["slash"]));
        assert_eq!(char_keys('"'), Some(vec!["shift", "apostrophe"]));
        assert_eq!(char_keys('é'), None);
        for c in (' '..='~').chain(['\n', '\t']) {
            let keys = char_keys(c).unwrap_or_else(|| panic!("{c:?}"));
            assert!(keys.iter().all(|k| lookup(k).is_some()), "{c:?}");
        }
    }
}
