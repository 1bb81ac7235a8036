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
//!   break code (`0xe0 0x48` / `0xe0 0xc8` for the cursor-up key);
//! - the Pause key sends [`PAUSE_SEQUENCE`] (`e1 1d 45 e1 9d c5`) when pressed and nothing when
//!   released: it is one press event and no release ever follows;
//! - keyboards add "fake shifts" around some extended keys (`e0 2a` / `e0 aa`, `e0 36` /
//!   `e0 b6`, for example around PrtSc: `e0 2a e0 37` ... `e0 b7 e0 aa`); they are not events.
//!
//! Key names are those of `include/uapi/linux/input-event-codes.h`, for the key codes that the
//! kernel's `atkbd` driver reports for a controller in translated mode: its set-2 keymap
//! (`atkbd_set2_keycode`) looked up through the set-1 to set-2 table (`atkbd_unxlate_table`),
//! see `atkbd_set_keycode_table()` in `drivers/input/keyboard/atkbd.c`. A code without a key
//! there is reported as `KEY_UNKNOWN`; the two codes `atkbd` ignores (`ATKBD_KEY_NULL`) are the
//! fake shifts.

use kernel::{fmt, str::Formatter};

/// Status register bit 0: the output buffer is full, i.e. a byte is waiting at the data port.
pub(crate) const STATUS_OUTPUT_FULL: u8 = 1 << 0;

/// The prefix byte that announces an extended (`0xe0`-prefixed) scancode.
pub(crate) const EXTENDED_PREFIX: u8 = 0xe0;

/// The prefix byte that starts the Pause key's sequence.
pub(crate) const PAUSE_PREFIX: u8 = 0xe1;

/// The bytes the Pause key sends when pressed (it sends nothing when released).
pub(crate) const PAUSE_SEQUENCE: [u8; 6] = [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5];

/// Bit 7 of a scancode: set for a break code (key released), clear for a make code.
pub(crate) const BREAK_BIT: u8 = 1 << 7;

/// The largest number of bytes of one key event (the Pause sequence).
pub(crate) const MAX_EVENT_BYTES: usize = PAUSE_SEQUENCE.len();

/// The longest line [`Line`] produces: a `u64` sequence number (20 digits), ` release `, the
/// longest key name of the table, and six bytes in hex, plus the newline; rounded up.
pub(crate) const MAX_LINE_LEN: usize = 96;

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

    /// Returns `true` if every bit is set: what a read of an I/O port that no device decodes
    /// returns (`0xff`), and no i8042 ever reports (it would mean a parity error and a timeout
    /// at once, with the keyboard inhibited).
    pub(crate) const fn floating(self) -> bool {
        self.0 == u8::MAX
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

impl Action {
    /// The word of the `/dev/kbd0001` line format: `press` or `release`.
    pub(crate) const fn verb(self) -> &'static str {
        match self {
            Action::Pressed => "press",
            Action::Released => "release",
        }
    }

    /// The word of the kernel log format: `pressed` or `released`.
    pub(crate) const fn participle(self) -> &'static str {
        match self {
            Action::Pressed => "pressed",
            Action::Released => "released",
        }
    }
}

/// An input key: its code and its name in `include/uapi/linux/input-event-codes.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// The input key code (`KEY_A` is 30).
    code: u16,
    /// The name of `code` in `input-event-codes.h`, e.g. `"KEY_A"`.
    name: &'static str,
}

impl Key {
    /// `KEY_UNKNOWN`: what a code with no key in the keymap decodes to.
    pub(crate) const UNKNOWN: Key = Key {
        code: 240,
        name: "KEY_UNKNOWN",
    };

    /// Returns the input key code.
    pub(crate) const fn code(self) -> u16 {
        self.code
    }

    /// Returns the key's name, e.g. `"KEY_A"`.
    pub(crate) const fn name(self) -> &'static str {
        self.name
    }
}

/// What the keymap holds for one scancode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Entry {
    /// No key: the code decodes to [`Key::UNKNOWN`].
    Unknown,
    /// Not a key event at all (`atkbd`'s `ATKBD_KEY_NULL`): the fake shifts `e0 2a` and `e0 36`.
    Ignored,
    /// The key the code stands for.
    Key(Key),
}

/// Shorthand for the keymap below.
const fn key(code: u16, name: &'static str) -> Entry {
    Entry::Key(Key { code, name })
}

/// Bit of a keymap index that marks an extended (`0xe0`-prefixed) code.
const EXTENDED_INDEX: u8 = 0x80;

/// The keymap as (index, entry) pairs; the index is the make code (`0x00..=0x7f`), with
/// [`EXTENDED_INDEX`] added for codes after [`EXTENDED_PREFIX`]. Indices not listed are
/// [`Entry::Unknown`].
///
/// Generated from `atkbd_set2_keycode[atkbd_unxlate_table[code]]` and
/// `atkbd_set2_keycode[atkbd_unxlate_table[code] | 0x80]` of the 7.2 `atkbd.c` (without
/// `CONFIG_KEYBOARD_ATKBD_HP_KEYCODES` and without the scroll-wheel extension), with the first
/// name `input-event-codes.h` defines for each key code.
const KEYMAP_ENTRIES: &[(u8, Entry)] = &[
    (0x01, key(1, "KEY_ESC")),
    (0x02, key(2, "KEY_1")),
    (0x03, key(3, "KEY_2")),
    (0x04, key(4, "KEY_3")),
    (0x05, key(5, "KEY_4")),
    (0x06, key(6, "KEY_5")),
    (0x07, key(7, "KEY_6")),
    (0x08, key(8, "KEY_7")),
    (0x09, key(9, "KEY_8")),
    (0x0a, key(10, "KEY_9")),
    (0x0b, key(11, "KEY_0")),
    (0x0c, key(12, "KEY_MINUS")),
    (0x0d, key(13, "KEY_EQUAL")),
    (0x0e, key(14, "KEY_BACKSPACE")),
    (0x0f, key(15, "KEY_TAB")),
    (0x10, key(16, "KEY_Q")),
    (0x11, key(17, "KEY_W")),
    (0x12, key(18, "KEY_E")),
    (0x13, key(19, "KEY_R")),
    (0x14, key(20, "KEY_T")),
    (0x15, key(21, "KEY_Y")),
    (0x16, key(22, "KEY_U")),
    (0x17, key(23, "KEY_I")),
    (0x18, key(24, "KEY_O")),
    (0x19, key(25, "KEY_P")),
    (0x1a, key(26, "KEY_LEFTBRACE")),
    (0x1b, key(27, "KEY_RIGHTBRACE")),
    (0x1c, key(28, "KEY_ENTER")),
    (0x1d, key(29, "KEY_LEFTCTRL")),
    (0x1e, key(30, "KEY_A")),
    (0x1f, key(31, "KEY_S")),
    (0x20, key(32, "KEY_D")),
    (0x21, key(33, "KEY_F")),
    (0x22, key(34, "KEY_G")),
    (0x23, key(35, "KEY_H")),
    (0x24, key(36, "KEY_J")),
    (0x25, key(37, "KEY_K")),
    (0x26, key(38, "KEY_L")),
    (0x27, key(39, "KEY_SEMICOLON")),
    (0x28, key(40, "KEY_APOSTROPHE")),
    (0x29, key(41, "KEY_GRAVE")),
    (0x2a, key(42, "KEY_LEFTSHIFT")),
    (0x2b, key(43, "KEY_BACKSLASH")),
    (0x2c, key(44, "KEY_Z")),
    (0x2d, key(45, "KEY_X")),
    (0x2e, key(46, "KEY_C")),
    (0x2f, key(47, "KEY_V")),
    (0x30, key(48, "KEY_B")),
    (0x31, key(49, "KEY_N")),
    (0x32, key(50, "KEY_M")),
    (0x33, key(51, "KEY_COMMA")),
    (0x34, key(52, "KEY_DOT")),
    (0x35, key(53, "KEY_SLASH")),
    (0x36, key(54, "KEY_RIGHTSHIFT")),
    (0x37, key(55, "KEY_KPASTERISK")),
    (0x38, key(56, "KEY_LEFTALT")),
    (0x39, key(57, "KEY_SPACE")),
    (0x3a, key(58, "KEY_CAPSLOCK")),
    (0x3b, key(59, "KEY_F1")),
    (0x3c, key(60, "KEY_F2")),
    (0x3d, key(61, "KEY_F3")),
    (0x3e, key(62, "KEY_F4")),
    (0x3f, key(63, "KEY_F5")),
    (0x40, key(64, "KEY_F6")),
    (0x41, key(65, "KEY_F7")),
    (0x42, key(66, "KEY_F8")),
    (0x43, key(67, "KEY_F9")),
    (0x44, key(68, "KEY_F10")),
    (0x45, key(69, "KEY_NUMLOCK")),
    (0x46, key(70, "KEY_SCROLLLOCK")),
    (0x47, key(71, "KEY_KP7")),
    (0x48, key(72, "KEY_KP8")),
    (0x49, key(73, "KEY_KP9")),
    (0x4a, key(74, "KEY_KPMINUS")),
    (0x4b, key(75, "KEY_KP4")),
    (0x4c, key(76, "KEY_KP5")),
    (0x4d, key(77, "KEY_KP6")),
    (0x4e, key(78, "KEY_KPPLUS")),
    (0x4f, key(79, "KEY_KP1")),
    (0x50, key(80, "KEY_KP2")),
    (0x51, key(81, "KEY_KP3")),
    (0x52, key(82, "KEY_KP0")),
    (0x53, key(83, "KEY_KPDOT")),
    (0x54, key(99, "KEY_SYSRQ")),
    (0x56, key(86, "KEY_102ND")),
    (0x57, key(87, "KEY_F11")),
    (0x58, key(88, "KEY_F12")),
    (0x59, key(117, "KEY_KPEQUAL")),
    (0x5c, key(95, "KEY_KPJPCOMMA")),
    (0x5d, key(183, "KEY_F13")),
    (0x5e, key(184, "KEY_F14")),
    (0x5f, key(185, "KEY_F15")),
    (0x64, key(183, "KEY_F13")),
    (0x65, key(184, "KEY_F14")),
    (0x66, key(185, "KEY_F15")),
    (0x67, key(186, "KEY_F16")),
    (0x68, key(187, "KEY_F17")),
    (0x69, key(188, "KEY_F18")),
    (0x6a, key(189, "KEY_F19")),
    (0x6b, key(190, "KEY_F20")),
    (0x6c, key(191, "KEY_F21")),
    (0x6d, key(192, "KEY_F22")),
    (0x6e, key(193, "KEY_F23")),
    (0x70, key(93, "KEY_KATAKANAHIRAGANA")),
    (0x73, key(89, "KEY_RO")),
    (0x76, key(194, "KEY_F24")),
    (0x77, key(91, "KEY_HIRAGANA")),
    (0x78, key(90, "KEY_KATAKANA")),
    (0x79, key(92, "KEY_HENKAN")),
    (0x7b, key(94, "KEY_MUHENKAN")),
    (0x7d, key(124, "KEY_YEN")),
    (0x7e, key(121, "KEY_KPCOMMA")),
    (0x80 | 0x10, key(165, "KEY_PREVIOUSSONG")),
    (0x80 | 0x19, key(163, "KEY_NEXTSONG")),
    (0x80 | 0x1c, key(96, "KEY_KPENTER")),
    (0x80 | 0x1d, key(97, "KEY_RIGHTCTRL")),
    (0x80 | 0x20, key(113, "KEY_MUTE")),
    (0x80 | 0x21, key(140, "KEY_CALC")),
    (0x80 | 0x22, key(164, "KEY_PLAYPAUSE")),
    (0x80 | 0x24, key(166, "KEY_STOPCD")),
    (0x80 | 0x2a, Entry::Ignored),
    (0x80 | 0x2e, key(114, "KEY_VOLUMEDOWN")),
    (0x80 | 0x30, key(115, "KEY_VOLUMEUP")),
    (0x80 | 0x32, key(172, "KEY_HOMEPAGE")),
    (0x80 | 0x35, key(98, "KEY_KPSLASH")),
    (0x80 | 0x36, Entry::Ignored),
    (0x80 | 0x37, key(99, "KEY_SYSRQ")),
    (0x80 | 0x38, key(100, "KEY_RIGHTALT")),
    (0x80 | 0x45, key(119, "KEY_PAUSE")),
    (0x80 | 0x46, key(119, "KEY_PAUSE")),
    (0x80 | 0x47, key(102, "KEY_HOME")),
    (0x80 | 0x48, key(103, "KEY_UP")),
    (0x80 | 0x49, key(104, "KEY_PAGEUP")),
    (0x80 | 0x4b, key(105, "KEY_LEFT")),
    (0x80 | 0x4c, key(112, "KEY_MACRO")),
    (0x80 | 0x4d, key(106, "KEY_RIGHT")),
    (0x80 | 0x4e, key(118, "KEY_KPPLUSMINUS")),
    (0x80 | 0x4f, key(107, "KEY_END")),
    (0x80 | 0x50, key(108, "KEY_DOWN")),
    (0x80 | 0x51, key(109, "KEY_PAGEDOWN")),
    (0x80 | 0x52, key(110, "KEY_INSERT")),
    (0x80 | 0x53, key(111, "KEY_DELETE")),
    (0x80 | 0x5b, key(125, "KEY_LEFTMETA")),
    (0x80 | 0x5c, key(126, "KEY_RIGHTMETA")),
    (0x80 | 0x5d, key(127, "KEY_COMPOSE")),
    (0x80 | 0x5e, key(116, "KEY_POWER")),
    (0x80 | 0x5f, key(142, "KEY_SLEEP")),
    (0x80 | 0x63, key(143, "KEY_WAKEUP")),
    (0x80 | 0x65, key(217, "KEY_SEARCH")),
    (0x80 | 0x66, key(156, "KEY_BOOKMARKS")),
    (0x80 | 0x67, key(173, "KEY_REFRESH")),
    (0x80 | 0x68, key(128, "KEY_STOP")),
    (0x80 | 0x69, key(159, "KEY_FORWARD")),
    (0x80 | 0x6a, key(158, "KEY_BACK")),
    (0x80 | 0x6b, key(157, "KEY_COMPUTER")),
    (0x80 | 0x6c, key(155, "KEY_MAIL")),
    (0x80 | 0x6d, key(226, "KEY_MEDIA")),
    (0x80 | 0x6f, key(112, "KEY_MACRO")),
];

/// Builds the full 256-entry keymap from [`KEYMAP_ENTRIES`] at compile time.
const fn build_keymap() -> [Entry; 256] {
    let mut map = [Entry::Unknown; 256];
    let mut i = 0;
    while i < KEYMAP_ENTRIES.len() {
        let (index, entry) = KEYMAP_ENTRIES[i];
        map[index as usize] = entry;
        i += 1;
    }
    map
}

/// The keymap, indexed by keymap index (see [`KEYMAP_ENTRIES`]).
static KEYMAP: [Entry; 256] = build_keymap();

/// Returns the keymap entry of `index`.
fn lookup(index: u8) -> Entry {
    // `index` is a `u8`, so it is always within the 256 entries.
    KEYMAP
        .get(usize::from(index))
        .copied()
        .unwrap_or(Entry::Unknown)
}

/// One complete key event: its bytes as read from the data port, its key and its action.
///
/// # Invariants
///
/// - `1 <= len <= MAX_EVENT_BYTES`, and `bytes[..len]` are the event's bytes in the order read.
/// - `lookup(index)` is not [`Entry::Ignored`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyEvent {
    /// The event's bytes; only the first `len` are meaningful, the rest are zero.
    bytes: [u8; MAX_EVENT_BYTES],
    /// The number of bytes of the event.
    len: u8,
    /// The keymap index of the event's key (see [`KEYMAP_ENTRIES`]).
    index: u8,
    /// Press or release.
    action: Action,
}

impl KeyEvent {
    /// Bits of [`KeyEvent::to_word`]: the bytes occupy bits 0..48, then come `len`, `index` and
    /// the action.
    const LEN_SHIFT: u32 = 48;
    /// See [`KeyEvent::LEN_SHIFT`].
    const INDEX_SHIFT: u32 = 52;
    /// See [`KeyEvent::LEN_SHIFT`].
    const RELEASE_SHIFT: u32 = 60;

    /// Creates the event of a single make or break code, possibly extended.
    ///
    /// Returns `None` if the code is not an event (a fake shift).
    fn single(extended: bool, code: u8) -> Option<Self> {
        let index = (code & !BREAK_BIT) | if extended { EXTENDED_INDEX } else { 0 };
        if lookup(index) == Entry::Ignored {
            return None;
        }
        let (bytes, len) = if extended {
            ([EXTENDED_PREFIX, code, 0, 0, 0, 0], 2)
        } else {
            ([code, 0, 0, 0, 0, 0], 1)
        };
        let action = if code & BREAK_BIT != 0 {
            Action::Released
        } else {
            Action::Pressed
        };
        // INVARIANT: `len` is 1 or 2, and the entry of `index` was checked above.
        Some(Self {
            bytes,
            len,
            index,
            action,
        })
    }

    /// The event of the Pause key: its whole sequence, one press.
    fn pause() -> Self {
        // INVARIANT: six bytes; the entry of `e0 45` is `KEY_PAUSE`, as in `atkbd`, which
        // reports the sequence `e1 1d 45` with the keymap entry of `e0 45`.
        Self {
            bytes: PAUSE_SEQUENCE,
            len: PAUSE_SEQUENCE.len() as u8,
            index: EXTENDED_INDEX | 0x45,
            action: Action::Pressed,
        }
    }

    /// Returns the bytes of the event, in the order they were read.
    pub(crate) fn bytes(&self) -> &[u8] {
        // By the type invariant, `len <= MAX_EVENT_BYTES`; `get` keeps this free of panics.
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Returns `true` if the event came with the [`EXTENDED_PREFIX`] byte.
    pub(crate) fn is_extended(&self) -> bool {
        self.bytes().first() == Some(&EXTENDED_PREFIX)
    }

    /// Returns the last byte of the event: the make or break code (bit 7 set for a break code).
    pub(crate) fn code(&self) -> u8 {
        self.bytes().last().copied().unwrap_or(0)
    }

    /// Returns whether this is a key press or a key release.
    pub(crate) const fn action(&self) -> Action {
        self.action
    }

    /// Returns the key of the event ([`Key::UNKNOWN`] for a code with no key).
    pub(crate) fn key(&self) -> Key {
        match lookup(self.index) {
            Entry::Key(key) => key,
            Entry::Unknown | Entry::Ignored => Key::UNKNOWN,
        }
    }

    /// Packs the event into one `u64`, for a queue of atomics (see `ring.rs`).
    pub(crate) fn to_word(self) -> u64 {
        let mut word = 0u64;
        for (i, &byte) in self.bytes.iter().enumerate() {
            word |= u64::from(byte) << (8 * i);
        }
        word |= u64::from(self.len) << Self::LEN_SHIFT;
        word |= u64::from(self.index) << Self::INDEX_SHIFT;
        if self.action == Action::Released {
            word |= 1 << Self::RELEASE_SHIFT;
        }
        word
    }

    /// Unpacks an event packed by [`KeyEvent::to_word`].
    ///
    /// Returns `None` for a word that [`KeyEvent::to_word`] cannot have produced.
    pub(crate) fn from_word(word: u64) -> Option<Self> {
        let field = |shift: u32, bits: u32| ((word >> shift) & ((1 << bits) - 1)) as u8;
        let len = field(Self::LEN_SHIFT, 4);
        let index = field(Self::INDEX_SHIFT, 8);
        if len == 0 || usize::from(len) > MAX_EVENT_BYTES || lookup(index) == Entry::Ignored {
            return None;
        }
        let mut bytes = [0; MAX_EVENT_BYTES];
        for (i, byte) in bytes.iter_mut().enumerate().take(usize::from(len)) {
            *byte = field(8 * i as u32, 8);
        }
        let action = if field(Self::RELEASE_SHIFT, 1) != 0 {
            Action::Released
        } else {
            Action::Pressed
        };
        // INVARIANT: `len` and `index` were checked above.
        Some(Self {
            bytes,
            len,
            index,
            action,
        })
    }
}

/// Writes `bytes` as lower-case two-digit hex, separated by one space: `e0 48`.
fn write_hex(w: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            w.write_str(" ")?;
        }
        write!(w, "{byte:02x}")?;
    }
    Ok(())
}

impl fmt::Display for KeyEvent {
    /// Formats the event as the log format expects it after the word `scancode`: the bytes of
    /// the event in lower-case two-digit hex separated by one space, then `pressed` or
    /// `released`, e.g. `1e pressed` or `e0 c8 released`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.bytes())?;
        write!(f, " {}", self.action.participle())
    }
}

/// One line of `/dev/kbd0001`: `<seq> <press|release> <KEY_NAME> <bytes>\n`.
///
/// For example `1 press KEY_A 1e`, `3 press KEY_UP e0 48`, `7 press KEY_PAUSE e1 1d 45 e1 9d c5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    /// The event's sequence number (per device, from 1).
    pub(crate) seq: u64,
    /// The event.
    pub(crate) event: KeyEvent,
}

impl Line {
    /// Writes the line, newline included, to `w`.
    pub(crate) fn write_to(&self, w: &mut impl fmt::Write) -> fmt::Result {
        write!(
            w,
            "{} {} {} ",
            self.seq,
            self.event.action().verb(),
            self.event.key().name()
        )?;
        write_hex(w, self.event.bytes())?;
        w.write_str("\n")
    }
}

/// A [`Line`] formatted into a buffer on the stack, ready to be copied to user space.
pub(crate) struct LineBuf {
    /// The formatted line; only the first `len` bytes are meaningful.
    buf: [u8; MAX_LINE_LEN],
    /// Number of bytes of `buf` holding the line.
    len: usize,
}

impl LineBuf {
    /// Formats `line`.
    ///
    /// Fails with `fmt::Error` if the line does not fit in [`MAX_LINE_LEN`] bytes, which no line
    /// of the keymap does.
    pub(crate) fn new(line: &Line) -> Result<Self, fmt::Error> {
        let mut buf = [0; MAX_LINE_LEN];
        let mut f = Formatter::new(&mut buf);
        line.write_to(&mut f)?;
        let len = f.bytes_written();
        Ok(Self { buf, len })
    }

    /// Returns the formatted line, newline included.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// Where the decoder is in a multi-byte sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between events.
    Idle,
    /// The last byte was [`EXTENDED_PREFIX`].
    Extended,
    /// The first `n` bytes of [`PAUSE_SEQUENCE`] have been seen (`1 <= n < 6`).
    Pause(u8),
}

/// Turns the byte stream of the data port into [`KeyEvent`]s.
///
/// - Several [`EXTENDED_PREFIX`] bytes in a row collapse into one (as the kernel's `atkbd`
///   driver does): `e0 e0 48` is one extended make code `e0 48`.
/// - The Pause sequence is one press event, reported when its last byte arrives. A byte that
///   breaks the sequence discards the bytes seen so far and is decoded on its own.
/// - The fake shifts (`e0 2a`, `e0 aa`, `e0 36`, `e0 b6`) give no event.
///
/// The decoder is not synchronised; the caller serialises access (the driver keeps it in a
/// spinlock).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decoder {
    /// Progress through a multi-byte sequence.
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// Creates a decoder that is between events.
    pub(crate) const fn new() -> Self {
        Self { state: State::Idle }
    }

    /// Feeds one byte read from the data port.
    ///
    /// Returns the completed event, or `None` if `byte` was part of a sequence that is not
    /// complete yet, or completed a sequence that is not an event (a fake shift).
    pub(crate) fn feed(&mut self, byte: u8) -> Option<KeyEvent> {
        if let State::Pause(seen) = self.state {
            let seen = usize::from(seen);
            if PAUSE_SEQUENCE.get(seen) == Some(&byte) {
                if seen + 1 == PAUSE_SEQUENCE.len() {
                    self.state = State::Idle;
                    return Some(KeyEvent::pause());
                }
                self.state = State::Pause(seen as u8 + 1);
                return None;
            }
            // Not the Pause sequence after all: drop what was seen, decode `byte` afresh.
            self.state = State::Idle;
        }

        match byte {
            EXTENDED_PREFIX => {
                self.state = State::Extended;
                None
            }
            PAUSE_PREFIX => {
                self.state = State::Pause(1);
                None
            }
            code => {
                let extended = self.state == State::Extended;
                self.state = State::Idle;
                KeyEvent::single(extended, code)
            }
        }
    }
}

#[kernel::macros::kunit_tests(rust_keyboard_decoder)]
mod tests {
    use super::*;
    use kernel::{prelude::*, str::CString};

    /// Every key of the keymap: (extended, make code, name), written down from `atkbd.c`'s
    /// tables (`atkbd_set2_keycode[atkbd_unxlate_table[code] (| 0x80)]`) and the names of
    /// `input-event-codes.h`, independently of [`KEYMAP_ENTRIES`].
    const EXPECTED_KEYS: &[(bool, u8, &str)] = &[
        (false, 0x01, "KEY_ESC"),
        (false, 0x02, "KEY_1"),
        (false, 0x03, "KEY_2"),
        (false, 0x04, "KEY_3"),
        (false, 0x05, "KEY_4"),
        (false, 0x06, "KEY_5"),
        (false, 0x07, "KEY_6"),
        (false, 0x08, "KEY_7"),
        (false, 0x09, "KEY_8"),
        (false, 0x0a, "KEY_9"),
        (false, 0x0b, "KEY_0"),
        (false, 0x0c, "KEY_MINUS"),
        (false, 0x0d, "KEY_EQUAL"),
        (false, 0x0e, "KEY_BACKSPACE"),
        (false, 0x0f, "KEY_TAB"),
        (false, 0x10, "KEY_Q"),
        (false, 0x11, "KEY_W"),
        (false, 0x12, "KEY_E"),
        (false, 0x13, "KEY_R"),
        (false, 0x14, "KEY_T"),
        (false, 0x15, "KEY_Y"),
        (false, 0x16, "KEY_U"),
        (false, 0x17, "KEY_I"),
        (false, 0x18, "KEY_O"),
        (false, 0x19, "KEY_P"),
        (false, 0x1a, "KEY_LEFTBRACE"),
        (false, 0x1b, "KEY_RIGHTBRACE"),
        (false, 0x1c, "KEY_ENTER"),
        (false, 0x1d, "KEY_LEFTCTRL"),
        (false, 0x1e, "KEY_A"),
        (false, 0x1f, "KEY_S"),
        (false, 0x20, "KEY_D"),
        (false, 0x21, "KEY_F"),
        (false, 0x22, "KEY_G"),
        (false, 0x23, "KEY_H"),
        (false, 0x24, "KEY_J"),
        (false, 0x25, "KEY_K"),
        (false, 0x26, "KEY_L"),
        (false, 0x27, "KEY_SEMICOLON"),
        (false, 0x28, "KEY_APOSTROPHE"),
        (false, 0x29, "KEY_GRAVE"),
        (false, 0x2a, "KEY_LEFTSHIFT"),
        (false, 0x2b, "KEY_BACKSLASH"),
        (false, 0x2c, "KEY_Z"),
        (false, 0x2d, "KEY_X"),
        (false, 0x2e, "KEY_C"),
        (false, 0x2f, "KEY_V"),
        (false, 0x30, "KEY_B"),
        (false, 0x31, "KEY_N"),
        (false, 0x32, "KEY_M"),
        (false, 0x33, "KEY_COMMA"),
        (false, 0x34, "KEY_DOT"),
        (false, 0x35, "KEY_SLASH"),
        (false, 0x36, "KEY_RIGHTSHIFT"),
        (false, 0x37, "KEY_KPASTERISK"),
        (false, 0x38, "KEY_LEFTALT"),
        (false, 0x39, "KEY_SPACE"),
        (false, 0x3a, "KEY_CAPSLOCK"),
        (false, 0x3b, "KEY_F1"),
        (false, 0x3c, "KEY_F2"),
        (false, 0x3d, "KEY_F3"),
        (false, 0x3e, "KEY_F4"),
        (false, 0x3f, "KEY_F5"),
        (false, 0x40, "KEY_F6"),
        (false, 0x41, "KEY_F7"),
        (false, 0x42, "KEY_F8"),
        (false, 0x43, "KEY_F9"),
        (false, 0x44, "KEY_F10"),
        (false, 0x45, "KEY_NUMLOCK"),
        (false, 0x46, "KEY_SCROLLLOCK"),
        (false, 0x47, "KEY_KP7"),
        (false, 0x48, "KEY_KP8"),
        (false, 0x49, "KEY_KP9"),
        (false, 0x4a, "KEY_KPMINUS"),
        (false, 0x4b, "KEY_KP4"),
        (false, 0x4c, "KEY_KP5"),
        (false, 0x4d, "KEY_KP6"),
        (false, 0x4e, "KEY_KPPLUS"),
        (false, 0x4f, "KEY_KP1"),
        (false, 0x50, "KEY_KP2"),
        (false, 0x51, "KEY_KP3"),
        (false, 0x52, "KEY_KP0"),
        (false, 0x53, "KEY_KPDOT"),
        (false, 0x54, "KEY_SYSRQ"),
        (false, 0x56, "KEY_102ND"),
        (false, 0x57, "KEY_F11"),
        (false, 0x58, "KEY_F12"),
        (false, 0x59, "KEY_KPEQUAL"),
        (false, 0x5c, "KEY_KPJPCOMMA"),
        (false, 0x5d, "KEY_F13"),
        (false, 0x5e, "KEY_F14"),
        (false, 0x5f, "KEY_F15"),
        (false, 0x64, "KEY_F13"),
        (false, 0x65, "KEY_F14"),
        (false, 0x66, "KEY_F15"),
        (false, 0x67, "KEY_F16"),
        (false, 0x68, "KEY_F17"),
        (false, 0x69, "KEY_F18"),
        (false, 0x6a, "KEY_F19"),
        (false, 0x6b, "KEY_F20"),
        (false, 0x6c, "KEY_F21"),
        (false, 0x6d, "KEY_F22"),
        (false, 0x6e, "KEY_F23"),
        (false, 0x70, "KEY_KATAKANAHIRAGANA"),
        (false, 0x73, "KEY_RO"),
        (false, 0x76, "KEY_F24"),
        (false, 0x77, "KEY_HIRAGANA"),
        (false, 0x78, "KEY_KATAKANA"),
        (false, 0x79, "KEY_HENKAN"),
        (false, 0x7b, "KEY_MUHENKAN"),
        (false, 0x7d, "KEY_YEN"),
        (false, 0x7e, "KEY_KPCOMMA"),
        (true, 0x10, "KEY_PREVIOUSSONG"),
        (true, 0x19, "KEY_NEXTSONG"),
        (true, 0x1c, "KEY_KPENTER"),
        (true, 0x1d, "KEY_RIGHTCTRL"),
        (true, 0x20, "KEY_MUTE"),
        (true, 0x21, "KEY_CALC"),
        (true, 0x22, "KEY_PLAYPAUSE"),
        (true, 0x24, "KEY_STOPCD"),
        (true, 0x2e, "KEY_VOLUMEDOWN"),
        (true, 0x30, "KEY_VOLUMEUP"),
        (true, 0x32, "KEY_HOMEPAGE"),
        (true, 0x35, "KEY_KPSLASH"),
        (true, 0x37, "KEY_SYSRQ"),
        (true, 0x38, "KEY_RIGHTALT"),
        (true, 0x45, "KEY_PAUSE"),
        (true, 0x46, "KEY_PAUSE"),
        (true, 0x47, "KEY_HOME"),
        (true, 0x48, "KEY_UP"),
        (true, 0x49, "KEY_PAGEUP"),
        (true, 0x4b, "KEY_LEFT"),
        (true, 0x4c, "KEY_MACRO"),
        (true, 0x4d, "KEY_RIGHT"),
        (true, 0x4e, "KEY_KPPLUSMINUS"),
        (true, 0x4f, "KEY_END"),
        (true, 0x50, "KEY_DOWN"),
        (true, 0x51, "KEY_PAGEDOWN"),
        (true, 0x52, "KEY_INSERT"),
        (true, 0x53, "KEY_DELETE"),
        (true, 0x5b, "KEY_LEFTMETA"),
        (true, 0x5c, "KEY_RIGHTMETA"),
        (true, 0x5d, "KEY_COMPOSE"),
        (true, 0x5e, "KEY_POWER"),
        (true, 0x5f, "KEY_SLEEP"),
        (true, 0x63, "KEY_WAKEUP"),
        (true, 0x65, "KEY_SEARCH"),
        (true, 0x66, "KEY_BOOKMARKS"),
        (true, 0x67, "KEY_REFRESH"),
        (true, 0x68, "KEY_STOP"),
        (true, 0x69, "KEY_FORWARD"),
        (true, 0x6a, "KEY_BACK"),
        (true, 0x6b, "KEY_COMPUTER"),
        (true, 0x6c, "KEY_MAIL"),
        (true, 0x6d, "KEY_MEDIA"),
        (true, 0x6f, "KEY_MACRO"),
    ];

    /// Feeds `bytes` to a fresh decoder and collects the events into `out`, returning how many
    /// there were.
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
    fn render(event: &KeyEvent) -> Result<CString> {
        CString::try_from_fmt(fmt!("{event}"))
    }

    /// Formats the `/dev/kbd0001` line of `event` with sequence number `seq`.
    fn line(seq: u64, event: KeyEvent) -> Result<LineBuf> {
        LineBuf::new(&Line { seq, event }).map_err(|_| EINVAL)
    }

    /// Returns `true` if `event` has exactly `bytes`, `name` and `action`.
    fn is(event: Option<KeyEvent>, bytes: &[u8], name: &str, action: Action) -> bool {
        event.is_some_and(|e| e.bytes() == bytes && e.key().name() == name && e.action() == action)
    }

    #[test]
    fn plain_make_and_break() -> Result {
        let mut decoder = Decoder::new();

        let make = decoder.feed(0x1e).ok_or(EINVAL)?;
        assert_eq!(make.action(), Action::Pressed);
        assert!(!make.is_extended());
        assert_eq!(make.code(), 0x1e);
        assert_eq!(make.key().name(), "KEY_A");
        assert_eq!(make.key().code(), 30);
        assert_eq!(render(&make)?.to_bytes(), b"1e pressed");

        let brk = decoder.feed(0x9e).ok_or(EINVAL)?;
        assert_eq!(brk.action(), Action::Released);
        assert_eq!(brk.code(), 0x9e);
        assert!(!brk.is_extended());
        assert_eq!(brk.key().name(), "KEY_A");
        assert_eq!(render(&brk)?.to_bytes(), b"9e released");
        Ok(())
    }

    #[test]
    fn extended_make_and_break() -> Result {
        let mut decoder = Decoder::new();

        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        let make = decoder.feed(0x48).ok_or(EINVAL)?;
        assert!(make.is_extended());
        assert_eq!(make.action(), Action::Pressed);
        assert_eq!(make.bytes(), &[0xe0, 0x48]);
        assert_eq!(make.key().name(), "KEY_UP");
        assert_eq!(render(&make)?.to_bytes(), b"e0 48 pressed");

        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        let brk = decoder.feed(0xc8).ok_or(EINVAL)?;
        assert!(brk.is_extended());
        assert_eq!(brk.action(), Action::Released);
        assert_eq!(brk.key().name(), "KEY_UP");
        assert_eq!(render(&brk)?.to_bytes(), b"e0 c8 released");

        // The prefix applies to one code only: 0x48 alone is the keypad's 8.
        let next = decoder.feed(0x48).ok_or(EINVAL)?;
        assert!(!next.is_extended());
        assert_eq!(next.key().name(), "KEY_KP8");
        Ok(())
    }

    #[test]
    fn every_key_of_the_table_make_and_break() {
        for &(extended, make, name) in EXPECTED_KEYS {
            let mut decoder = Decoder::new();
            for (code, action) in [
                (make, Action::Pressed),
                (make | BREAK_BIT, Action::Released),
            ] {
                let with_prefix = [EXTENDED_PREFIX, code];
                let bytes = if extended {
                    &with_prefix[..]
                } else {
                    &with_prefix[1..]
                };
                if extended {
                    assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
                }
                let event = decoder.feed(code);
                assert!(is(event, bytes, name, action));
            }
        }
    }

    #[test]
    fn the_table_has_every_key_of_atkbd_and_nothing_else() {
        // Every index that `EXPECTED_KEYS` does not name decodes to `KEY_UNKNOWN`, except the
        // two fake shifts, which `atkbd` ignores.
        let mut known = 0;
        for extended in [false, true] {
            for make in 0..0x80u8 {
                let expected = EXPECTED_KEYS
                    .iter()
                    .find(|&&(x, m, _)| x == extended && m == make)
                    .map(|&(_, _, name)| name);
                let index = make | if extended { EXTENDED_INDEX } else { 0 };
                match (lookup(index), expected) {
                    (Entry::Key(key), Some(name)) => {
                        assert_eq!(key.name(), name);
                        known += 1;
                    }
                    (Entry::Unknown, None) => {}
                    (Entry::Ignored, None) => assert!(extended && (make == 0x2a || make == 0x36)),
                    // The keymap and `EXPECTED_KEYS` disagree.
                    _ => assert!(false),
                }
            }
        }
        assert_eq!(known, EXPECTED_KEYS.len());
    }

    #[test]
    fn unknown_codes_are_key_unknown() -> Result {
        let mut decoder = Decoder::new();
        // 0x55 has no key in atkbd's translated keymap.
        let make = decoder.feed(0x55).ok_or(EINVAL)?;
        assert_eq!(make.key(), Key::UNKNOWN);
        assert_eq!(make.key().name(), "KEY_UNKNOWN");
        assert_eq!(make.action(), Action::Pressed);
        let brk = decoder.feed(0xd5).ok_or(EINVAL)?;
        assert_eq!(brk.key(), Key::UNKNOWN);
        assert_eq!(brk.action(), Action::Released);
        // An extended code with no key: e0 01.
        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        let ext = decoder.feed(0x01).ok_or(EINVAL)?;
        assert_eq!(ext.key(), Key::UNKNOWN);
        assert_eq!(ext.bytes(), &[0xe0, 0x01]);
        assert_eq!(line(4, ext)?.as_bytes(), b"4 press KEY_UNKNOWN e0 01\n");
        Ok(())
    }

    #[test]
    fn right_ctrl_sequence() {
        // `send-key ctrl_r` in QEMU: e0 1d (press), e0 9d (release).
        let mut out = [None; 4];
        let n = decode_all(&[0xe0, 0x1d, 0xe0, 0x9d], &mut out);
        assert_eq!(n, 2);
        assert!(is(out[0], &[0xe0, 0x1d], "KEY_RIGHTCTRL", Action::Pressed));
        assert!(is(out[1], &[0xe0, 0x9d], "KEY_RIGHTCTRL", Action::Released));
    }

    #[test]
    fn chord_shift_a() {
        // `send-key shift-a`: the keys go down in order and come up in reverse order.
        let mut out = [None; 4];
        let n = decode_all(&[0x2a, 0x1e, 0x9e, 0xaa], &mut out);
        assert_eq!(n, 4);
        assert!(is(out[0], &[0x2a], "KEY_LEFTSHIFT", Action::Pressed));
        assert!(is(out[1], &[0x1e], "KEY_A", Action::Pressed));
        assert!(is(out[2], &[0x9e], "KEY_A", Action::Released));
        assert!(is(out[3], &[0xaa], "KEY_LEFTSHIFT", Action::Released));
    }

    #[test]
    fn consecutive_prefixes_collapse() {
        let mut out = [None; 4];
        let n = decode_all(&[0xe0, 0xe0, 0xe0, 0x48, 0x1e], &mut out);
        assert_eq!(n, 2);
        assert!(is(out[0], &[0xe0, 0x48], "KEY_UP", Action::Pressed));
        assert!(is(out[1], &[0x1e], "KEY_A", Action::Pressed));
    }

    #[test]
    fn lone_prefix_yields_nothing() {
        let mut decoder = Decoder::new();
        assert_eq!(decoder.feed(EXTENDED_PREFIX), None);
        assert_eq!(
            decoder,
            Decoder {
                state: State::Extended
            }
        );
    }

    #[test]
    fn pause_is_one_press_and_never_a_release() -> Result {
        let mut decoder = Decoder::new();
        for &byte in &PAUSE_SEQUENCE[..5] {
            assert_eq!(decoder.feed(byte), None);
        }
        let pause = decoder.feed(0xc5).ok_or(EINVAL)?;
        assert_eq!(pause.bytes(), &PAUSE_SEQUENCE);
        assert_eq!(pause.key().name(), "KEY_PAUSE");
        assert_eq!(pause.action(), Action::Pressed);
        assert_eq!(render(&pause)?.to_bytes(), b"e1 1d 45 e1 9d c5 pressed");
        assert_eq!(
            line(7, pause)?.as_bytes(),
            b"7 press KEY_PAUSE e1 1d 45 e1 9d c5\n"
        );
        // The decoder is between events again.
        assert_eq!(decoder, Decoder::new());

        // Two presses in a row are two press events.
        let mut out = [None; 3];
        let mut twice = [0u8; 12];
        twice[..6].copy_from_slice(&PAUSE_SEQUENCE);
        twice[6..].copy_from_slice(&PAUSE_SEQUENCE);
        assert_eq!(decode_all(&twice, &mut out), 2);
        assert!(is(out[0], &PAUSE_SEQUENCE, "KEY_PAUSE", Action::Pressed));
        assert!(is(out[1], &PAUSE_SEQUENCE, "KEY_PAUSE", Action::Pressed));
        Ok(())
    }

    #[test]
    fn broken_pause_sequence_resynchronises() {
        // e1 1d then `a`: the partial sequence is dropped, the `a` press is decoded.
        let mut out = [None; 3];
        assert_eq!(decode_all(&[0xe1, 0x1d, 0x1e, 0x9e], &mut out), 2);
        assert!(is(out[0], &[0x1e], "KEY_A", Action::Pressed));
        assert!(is(out[1], &[0x9e], "KEY_A", Action::Released));

        // e1 then an extended key: the prefix starts the next event.
        let mut out = [None; 3];
        assert_eq!(decode_all(&[0xe1, 0xe0, 0x48], &mut out), 1);
        assert!(is(out[0], &[0xe0, 0x48], "KEY_UP", Action::Pressed));

        // A second e1 in the middle restarts the sequence.
        let mut out = [None; 3];
        let bytes = [0xe1, 0x1d, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5];
        assert_eq!(decode_all(&bytes, &mut out), 1);
        assert!(is(out[0], &PAUSE_SEQUENCE, "KEY_PAUSE", Action::Pressed));
    }

    #[test]
    fn ctrl_break_is_extended_pause() {
        // Ctrl+Pause sends e0 46 / e0 c6, which atkbd maps to KEY_PAUSE with a release.
        let mut out = [None; 3];
        assert_eq!(decode_all(&[0xe0, 0x46, 0xe0, 0xc6], &mut out), 2);
        assert!(is(out[0], &[0xe0, 0x46], "KEY_PAUSE", Action::Pressed));
        assert!(is(out[1], &[0xe0, 0xc6], "KEY_PAUSE", Action::Released));
    }

    #[test]
    fn fake_shifts_are_not_events() {
        let mut out = [None; 2];
        let fakes = [0xe0, 0x2a, 0xe0, 0xaa, 0xe0, 0x36, 0xe0, 0xb6];
        assert_eq!(decode_all(&fakes, &mut out), 0);
        // After a fake shift the decoder is between events: 0x2a alone is the real left shift.
        let mut out = [None; 2];
        assert_eq!(decode_all(&[0xe0, 0x2a, 0x2a], &mut out), 1);
        assert!(is(out[0], &[0x2a], "KEY_LEFTSHIFT", Action::Pressed));
    }

    #[test]
    fn print_screen_sequence() -> Result {
        // QEMU's `print`: e0 2a e0 37 on key-down, e0 b7 e0 aa on key-up.
        let mut out = [None; 4];
        let n = decode_all(&[0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa], &mut out);
        assert_eq!(n, 2);
        assert!(is(out[0], &[0xe0, 0x37], "KEY_SYSRQ", Action::Pressed));
        assert!(is(out[1], &[0xe0, 0xb7], "KEY_SYSRQ", Action::Released));
        let press = out[0].ok_or(EINVAL)?;
        assert_eq!(render(&press)?.to_bytes(), b"e0 37 pressed");
        assert_eq!(line(9, press)?.as_bytes(), b"9 press KEY_SYSRQ e0 37\n");
        // Right shift held around PrtSc (the keyboard then sends e0 b6 / e0 36 around it): the
        // real shift keys are events, the fake ones are not.
        let mut out = [None; 4];
        let bytes = [0x36, 0xe0, 0xb6, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0x36, 0xb6];
        assert_eq!(decode_all(&bytes, &mut out), 4);
        assert!(is(out[0], &[0x36], "KEY_RIGHTSHIFT", Action::Pressed));
        assert!(is(out[1], &[0xe0, 0x37], "KEY_SYSRQ", Action::Pressed));
        assert!(is(out[2], &[0xe0, 0xb7], "KEY_SYSRQ", Action::Released));
        assert!(is(out[3], &[0xb6], "KEY_RIGHTSHIFT", Action::Released));
        Ok(())
    }

    #[test]
    fn dev_line_format() -> Result {
        let mut decoder = Decoder::new();
        let a = decoder.feed(0x1e).ok_or(EINVAL)?;
        assert_eq!(line(1, a)?.as_bytes(), b"1 press KEY_A 1e\n");
        let a_up = decoder.feed(0x9e).ok_or(EINVAL)?;
        assert_eq!(line(2, a_up)?.as_bytes(), b"2 release KEY_A 9e\n");
        let _ = decoder.feed(EXTENDED_PREFIX);
        let up = decoder.feed(0x48).ok_or(EINVAL)?;
        assert_eq!(line(3, up)?.as_bytes(), b"3 press KEY_UP e0 48\n");
        let _ = decoder.feed(EXTENDED_PREFIX);
        let rctrl = decoder.feed(0x1d).ok_or(EINVAL)?;
        assert_eq!(
            line(10, rctrl)?.as_bytes(),
            b"10 press KEY_RIGHTCTRL e0 1d\n"
        );
        // The longest line fits.
        let long = line(u64::MAX, KeyEvent::pause())?;
        assert_eq!(
            long.as_bytes(),
            b"18446744073709551615 press KEY_PAUSE e1 1d 45 e1 9d c5\n"
        );
        for &(extended, make, _) in EXPECTED_KEYS {
            let event = KeyEvent::single(extended, make | BREAK_BIT).ok_or(EINVAL)?;
            assert!(line(u64::MAX, event)?.as_bytes().len() <= MAX_LINE_LEN);
        }
        Ok(())
    }

    #[test]
    fn events_survive_packing_into_a_word() -> Result {
        let mut events = [None; 8];
        let bytes = [
            0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8, 0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5, 0x55, 0xe0,
            0x37,
        ];
        let n = decode_all(&bytes, &mut events);
        assert_eq!(n, 7);
        for event in events.iter().flatten() {
            assert_eq!(KeyEvent::from_word(event.to_word()), Some(*event));
        }
        // Words that no event packs to are rejected.
        assert_eq!(KeyEvent::from_word(0), None);
        assert_eq!(KeyEvent::from_word(u64::MAX), None);
        Ok(())
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

    #[test]
    fn status_floating_is_all_ones_only() {
        assert!(Status::new(0xff).floating());
        // A byte waiting, with the system flag and the keyboard enabled, as QEMU reports it.
        assert!(!Status::new(0x1d).floating());
        assert!(!Status::new(0xfe).floating());
        assert!(!Status::new(0x00).floating());
    }
}
