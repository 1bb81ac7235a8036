// SPDX-License-Identifier: GPL-2.0

//! Pure decoding logic for the i8042 keyboard controller, with no hardware access.
//!
//! Everything in this module works on plain bytes: the i8042 status register value and the
//! bytes read from the data port. The hardware access lives in the crate root; keeping the logic
//! here lets it be covered by KUnit tests (see the `tests` module at the end of this file).
//!
//! The controller is expected to run with scancode translation on (SeaBIOS and QEMU leave it
//! that way), so the data port yields scancode set 1:
//!
//! - a *make* code (key pressed) has bit 7 clear, the matching *break* code (key released) is
//!   the make code with bit 7 set (`0x1e` / `0x9e` for `A`);
//! - extended keys send the prefix byte [`EXTENDED_PREFIX`] (`0xe0`) before their make or
//!   break code (`0xe0 0x48` / `0xe0 0xc8` for the cursor-up key).

use kernel::fmt;

/// Status register bit 0: the output buffer is full, i.e. a byte is waiting at the data port.
pub(crate) const STATUS_OUTPUT_FULL: u8 = 1 << 0;

/// The prefix byte that announces an extended (`0xe0`-prefixed) scancode.
pub(crate) const EXTENDED_PREFIX: u8 = 0xe0;

/// Bit 7 of a scancode: set for a break code (key released), clear for a make code.
pub(crate) const BREAK_BIT: u8 = 1 << 7;

/// A value read from the i8042 status register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(u8);

impl Status {
    /// Wraps a raw status register value.
    pub(crate) const fn new(raw: u8) -> Self {
        Self(raw)
    }

    /// Returns `true` if a byte is waiting to be read from the data port (bit 0 set).
    ///
    /// All other bits of the register are ignored.
    pub(crate) const fn output_full(self) -> bool {
        self.0 & STATUS_OUTPUT_FULL != 0
    }
}

/// Whether a key went down or came up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A make code: the key was pressed (or auto-repeated).
    Pressed,
    /// A break code: the key was released.
    Released,
}

/// One complete key event, decoded from one or two bytes of the data port.
///
/// # Invariants
///
/// `code` is never [`EXTENDED_PREFIX`]: a prefix byte alone is not an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyEvent {
    /// `true` if the code was preceded by [`EXTENDED_PREFIX`].
    extended: bool,
    /// The make or break code exactly as read from the data port (bit 7 still included).
    code: u8,
}

impl KeyEvent {
    /// Returns `true` if the event came with the [`EXTENDED_PREFIX`] byte.
    pub(crate) const fn is_extended(self) -> bool {
        self.extended
    }

    /// Returns the scancode byte as read from the data port (bit 7 set for a break code).
    pub(crate) const fn code(self) -> u8 {
        self.code
    }

    /// Returns whether this is a key press (make code) or a key release (break code).
    pub(crate) const fn action(self) -> Action {
        if self.code & BREAK_BIT != 0 {
            Action::Released
        } else {
            Action::Pressed
        }
    }
}

impl fmt::Display for KeyEvent {
    /// Formats the event as the log format expects it after the word `scancode`: the bytes of
    /// the event in lower-case two-digit hex separated by one space, then `pressed` or
    /// `released`, e.g. `1e pressed` or `e0 c8 released`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_extended() {
            write!(f, "{EXTENDED_PREFIX:02x} ")?;
        }
        let action = match self.action() {
            Action::Pressed => "pressed",
            Action::Released => "released",
        };
        write!(f, "{:02x} {action}", self.code())
    }
}

/// Turns the byte stream of the data port into [`KeyEvent`]s.
///
/// The only state is whether the previous byte was [`EXTENDED_PREFIX`]. Several prefixes in a
/// row collapse into one (as the kernel's `atkbd` driver does): `e0 e0 48` is one extended
/// make code `e0 48`.
///
/// The decoder is not synchronised; the caller serialises access (the driver keeps it in a
/// spinlock).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decoder {
    /// `true` if the last byte fed was [`EXTENDED_PREFIX`] and no code has followed it yet.
    extended: bool,
}

impl Decoder {
    /// Creates a decoder that has not seen a prefix byte.
    pub(crate) const fn new() -> Self {
        Self { extended: false }
    }

    /// Feeds one byte read from the data port.
    ///
    /// Returns the completed event, or `None` if `byte` was a prefix that only changes the state.
    pub(crate) fn feed(&mut self, byte: u8) -> Option<KeyEvent> {
        if byte == EXTENDED_PREFIX {
            self.extended = true;
            return None;
        }

        let extended = core::mem::replace(&mut self.extended, false);
        // INVARIANT: `byte` is not `EXTENDED_PREFIX`, checked above.
        Some(KeyEvent {
            extended,
            code: byte,
        })
    }
}

#[kernel::macros::kunit_tests(rust_keyboard_decoder)]
mod tests {
    use super::*;
    use kernel::{prelude::*, str::CString};

    /// Feeds `bytes` to a fresh decoder and collects the events into `out`, returning how many
    /// were written.
    fn decode_all(bytes: &[u8], out: &mut [Option<KeyEvent>]) -> usize {
        let mut decoder = Decoder::new();
        let mut n = 0;
        for &byte in bytes {
            if let Some(event) = decoder.feed(byte) {
                if let Some(slot) = out.get_mut(n) {
                    *slot = Some(event);
                }
                n += 1;
            }
        }
        n
    }

    /// Formats `event` the way the driver logs it (after the word `scancode`).
    fn render(event: KeyEvent) -> Result<CString> {
        CString::try_from_fmt(fmt!("{event}"))
    }

    #[test]
    fn plain_make_and_break() -> Result {
        let mut decoder = Decoder::new();

        let make = decoder.feed(0x1e);
        assert_eq!(
            make,
            Some(KeyEvent {
                extended: false,
                code: 0x1e
            })
        );
        let make = make.ok_or(EINVAL)?;
        assert_eq!(make.action(), Action::Pressed);
        assert!(!make.is_extended());
        assert_eq!(render(make)?.to_bytes(), b"1e pressed");

        let brk = decoder.feed(0x9e).ok_or(EINVAL)?;
        assert_eq!(brk.action(), Action::Released);
        assert_eq!(brk.code(), 0x9e);
        assert!(!brk.is_extended());
        assert_eq!(render(brk)?.to_bytes(), b"9e released");
        Ok(())
    }

    #[test]
    fn extended_make_and_break() -> Result {
        let mut decoder = Decoder::new();

        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        let make = decoder.feed(0x48).ok_or(EINVAL)?;
        assert!(make.is_extended());
        assert_eq!(make.action(), Action::Pressed);
        assert_eq!(render(make)?.to_bytes(), b"e0 48 pressed");

        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        let brk = decoder.feed(0xc8).ok_or(EINVAL)?;
        assert!(brk.is_extended());
        assert_eq!(brk.action(), Action::Released);
        assert_eq!(render(brk)?.to_bytes(), b"e0 c8 released");

        // The prefix applies to one code only.
        let next = decoder.feed(0x1e).ok_or(EINVAL)?;
        assert!(!next.is_extended());
        Ok(())
    }

    #[test]
    fn right_ctrl_sequence() {
        // `send-key ctrl_r` in QEMU: e0 1d (press), e0 9d (release).
        let mut out = [None; 4];
        let n = decode_all(&[0xe0, 0x1d, 0xe0, 0x9d], &mut out);
        assert_eq!(n, 2);
        assert_eq!(
            out[0],
            Some(KeyEvent {
                extended: true,
                code: 0x1d
            })
        );
        assert_eq!(
            out[1],
            Some(KeyEvent {
                extended: true,
                code: 0x9d
            })
        );
    }

    #[test]
    fn consecutive_prefixes_collapse() {
        let mut out = [None; 4];
        let n = decode_all(&[0xe0, 0xe0, 0xe0, 0x48, 0x1e], &mut out);
        assert_eq!(n, 2);
        assert_eq!(
            out[0],
            Some(KeyEvent {
                extended: true,
                code: 0x48
            })
        );
        assert_eq!(
            out[1],
            Some(KeyEvent {
                extended: false,
                code: 0x1e
            })
        );
    }

    #[test]
    fn lone_prefix_yields_nothing() {
        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        assert_eq!(decoder, Decoder { extended: true });
    }

    #[test]
    fn status_output_full_bit() {
        assert!(!Status::new(0x00).output_full());
        assert!(Status::new(0x01).output_full());
        // Only bit 0 matters: system flag (bit 2), command/data (bit 3), aux (bit 5) and the
        // error bits (6, 7) do not make a byte available on their own.
        assert!(!Status::new(0xfe).output_full());
        assert!(Status::new(0xff).output_full());
        assert!(Status::new(0x1d).output_full());
        assert!(!Status::new(0x1c).output_full());
    }
}
