//! The rust_keyboard driver's interfaces as the tests see them, and their
//! oracles: the interrupt modes, the lines of `/dev/kbd0001`, the debugfs
//! counters, and QEMU key names to the kernel's `KEY_*` names.
//!
//! Nothing here comes from `module/`:
//! * the bytes of a key come from the set-1 table of [`crate::scancodes`];
//!   the multi-event keys `print` and `pause` are added here from the same
//!   standard (PrtSc: make `e0 2a e0 37`, break `e0 b7 e0 aa`; Pause: `e1 1d
//!   45 e1 9d c5` on the way down, nothing on the way up);
//! * the key names are the kernel's own, written from
//!   `include/uapi/linux/input-event-codes.h` of the lab's 7.2 tree: the
//!   `KEY_*` code of the physical key each QEMU key name denotes (the codes
//!   atkbd reports for it).
//!
//! The interfaces (issue #9):
//!
//! ```text
//! /dev/kbd0001                  <seq> <press|release> <KEY_NAME> <bytes>\n
//! /sys/kernel/debug/rust_keyboard/KBD0001:00/
//!     irqs handled not_ours bytes events bytes_dropped events_dropped   one decimal number + \n each
//!     mode                                                            hard | threaded | workqueue
//! ```

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::scancodes::{self, KeyEvent};
use crate::{Error, Result};

/// The driver's character device.
pub const DEV_NODE: &str = "/dev/kbd0001";
/// The driver's debugfs directory for the lab's device.
pub const DEBUGFS_DIR: &str = "/sys/kernel/debug/rust_keyboard/KBD0001:00";
/// The counter files of [`DEBUGFS_DIR`], in the order of [`Counters`].
pub const COUNTER_FILES: [&str; 7] = [
    "irqs",
    "handled",
    "not_ours",
    "bytes",
    "events",
    "bytes_dropped",
    "events_dropped",
];

/// How the driver handles its interrupt: the module parameter `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// `mode=0`: everything in the hard interrupt handler.
    Hard,
    /// `mode=1` (the default): a threaded handler.
    Threaded,
    /// `mode=2`: the hard handler queues bytes, a work item decodes them.
    Workqueue,
}

impl Mode {
    /// Every mode, in parameter order.
    pub const ALL: [Mode; 3] = [Mode::Hard, Mode::Threaded, Mode::Workqueue];

    /// The value of the module parameter.
    pub fn param(self) -> u32 {
        match self {
            Mode::Hard => 0,
            Mode::Threaded => 1,
            Mode::Workqueue => 2,
        }
    }

    /// The word the driver uses for it (probe line, debugfs `mode`).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Hard => "hard",
            Mode::Threaded => "threaded",
            Mode::Workqueue => "workqueue",
        }
    }

    /// The kernel command line word that makes /init load the driver in
    /// this mode (`rust_keyboard.mode=N`).
    pub fn cmdline(self) -> String {
        format!("rust_keyboard.mode={}", self.param())
    }

    /// The insmod argument (`mode=N`).
    pub fn insmod_arg(self) -> String {
        format!("mode={}", self.param())
    }

    /// The mode named `name` (`hard`, `threaded`, `workqueue`).
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A driver the shared tests run against: the Rust driver in one of its
/// interrupt modes, or its C twin (`c-driver/c_keyboard.c`). Both match
/// KBD0001, log the same lines and keep the same debugfs counters; only the
/// Rust driver has [`DEV_NODE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// `rust_keyboard`, loaded with `mode=N`.
    Rust(Mode),
    /// `c_keyboard`: hard handler and a workqueue bottom half.
    C,
}

impl Driver {
    /// The module's and the platform driver's name.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Rust(_) => "rust_keyboard",
            Driver::C => "c_keyboard",
        }
    }

    /// The name of its interrupt action in /proc/interrupts.
    pub fn irq_name(self) -> &'static str {
        match self {
            Driver::Rust(_) => "rust_keyboard_irq",
            Driver::C => "c_keyboard_irq",
        }
    }

    /// Its module file in the initramfs.
    pub fn module_path(self) -> String {
        format!("/lib/modules/{}.ko", self.name())
    }

    /// Its directory under /sys/bus/platform/drivers.
    pub fn driver_dir(self) -> String {
        format!("/sys/bus/platform/drivers/{}", self.name())
    }

    /// Its debugfs directory for the lab's device.
    pub fn debugfs_dir(self) -> String {
        format!("/sys/kernel/debug/{}/KBD0001:00", self.name())
    }

    /// The kernel command line words that make /init load it
    /// (`lab.driver=` and its parameters).
    pub fn cmdline(self) -> String {
        match self {
            Driver::Rust(mode) => format!("lab.driver=rust_keyboard {}", mode.cmdline()),
            Driver::C => "lab.driver=c_keyboard".to_owned(),
        }
    }

    /// Its insmod arguments (empty for the C twin, which has none).
    pub fn insmod_args(self) -> String {
        match self {
            Driver::Rust(mode) => mode.insmod_arg(),
            Driver::C => String::new(),
        }
    }

    /// The mode word of its probe line and debugfs `mode` file: how it
    /// splits the interrupt work (the C twin: `workqueue`).
    pub fn mode_name(self) -> &'static str {
        match self {
            Driver::Rust(mode) => mode.name(),
            Driver::C => Mode::Workqueue.name(),
        }
    }

    /// Whether it offers [`DEV_NODE`] (the Rust driver only).
    pub fn has_dev_node(self) -> bool {
        matches!(self, Driver::Rust(_))
    }
}

impl fmt::Display for Driver {
    /// `rust_hard`, `rust_threaded`, `rust_workqueue`, `c_twin`: the names
    /// of the test modules.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Driver::Rust(mode) => write!(f, "rust_{mode}"),
            Driver::C => f.write_str("c_twin"),
        }
    }
}

/// QEMU key name -> the kernel's `KEY_*` name, from
/// `include/uapi/linux/input-event-codes.h` (Linux 7.2): every key of the
/// set-1 table of [`crate::scancodes`], plus `print`/`sysrq` (one key, PrtSc,
/// `KEY_SYSRQ` as atkbd reports it) and `pause`.
const KEY_NAMES: &[(&str, &str)] = &[
    ("esc", "KEY_ESC"),
    ("1", "KEY_1"),
    ("2", "KEY_2"),
    ("3", "KEY_3"),
    ("4", "KEY_4"),
    ("5", "KEY_5"),
    ("6", "KEY_6"),
    ("7", "KEY_7"),
    ("8", "KEY_8"),
    ("9", "KEY_9"),
    ("0", "KEY_0"),
    ("minus", "KEY_MINUS"),
    ("equal", "KEY_EQUAL"),
    ("backspace", "KEY_BACKSPACE"),
    ("tab", "KEY_TAB"),
    ("q", "KEY_Q"),
    ("w", "KEY_W"),
    ("e", "KEY_E"),
    ("r", "KEY_R"),
    ("t", "KEY_T"),
    ("y", "KEY_Y"),
    ("u", "KEY_U"),
    ("i", "KEY_I"),
    ("o", "KEY_O"),
    ("p", "KEY_P"),
    ("bracket_left", "KEY_LEFTBRACE"),
    ("bracket_right", "KEY_RIGHTBRACE"),
    ("ret", "KEY_ENTER"),
    ("ctrl", "KEY_LEFTCTRL"),
    ("a", "KEY_A"),
    ("s", "KEY_S"),
    ("d", "KEY_D"),
    ("f", "KEY_F"),
    ("g", "KEY_G"),
    ("h", "KEY_H"),
    ("j", "KEY_J"),
    ("k", "KEY_K"),
    ("l", "KEY_L"),
    ("semicolon", "KEY_SEMICOLON"),
    ("apostrophe", "KEY_APOSTROPHE"),
    ("grave_accent", "KEY_GRAVE"),
    ("shift", "KEY_LEFTSHIFT"),
    ("backslash", "KEY_BACKSLASH"),
    ("z", "KEY_Z"),
    ("x", "KEY_X"),
    ("c", "KEY_C"),
    ("v", "KEY_V"),
    ("b", "KEY_B"),
    ("n", "KEY_N"),
    ("m", "KEY_M"),
    ("comma", "KEY_COMMA"),
    ("dot", "KEY_DOT"),
    ("slash", "KEY_SLASH"),
    ("shift_r", "KEY_RIGHTSHIFT"),
    ("kp_multiply", "KEY_KPASTERISK"),
    ("asterisk", "KEY_KPASTERISK"),
    ("alt", "KEY_LEFTALT"),
    ("spc", "KEY_SPACE"),
    ("caps_lock", "KEY_CAPSLOCK"),
    ("f1", "KEY_F1"),
    ("f2", "KEY_F2"),
    ("f3", "KEY_F3"),
    ("f4", "KEY_F4"),
    ("f5", "KEY_F5"),
    ("f6", "KEY_F6"),
    ("f7", "KEY_F7"),
    ("f8", "KEY_F8"),
    ("f9", "KEY_F9"),
    ("f10", "KEY_F10"),
    ("num_lock", "KEY_NUMLOCK"),
    ("scroll_lock", "KEY_SCROLLLOCK"),
    ("kp_7", "KEY_KP7"),
    ("kp_8", "KEY_KP8"),
    ("kp_9", "KEY_KP9"),
    ("kp_subtract", "KEY_KPMINUS"),
    ("kp_4", "KEY_KP4"),
    ("kp_5", "KEY_KP5"),
    ("kp_6", "KEY_KP6"),
    ("kp_add", "KEY_KPPLUS"),
    ("kp_1", "KEY_KP1"),
    ("kp_2", "KEY_KP2"),
    ("kp_3", "KEY_KP3"),
    ("kp_0", "KEY_KP0"),
    ("kp_decimal", "KEY_KPDOT"),
    ("less", "KEY_102ND"),
    ("f11", "KEY_F11"),
    ("f12", "KEY_F12"),
    ("kp_enter", "KEY_KPENTER"),
    ("ctrl_r", "KEY_RIGHTCTRL"),
    ("kp_divide", "KEY_KPSLASH"),
    ("alt_r", "KEY_RIGHTALT"),
    ("home", "KEY_HOME"),
    ("up", "KEY_UP"),
    ("pgup", "KEY_PAGEUP"),
    ("left", "KEY_LEFT"),
    ("right", "KEY_RIGHT"),
    ("end", "KEY_END"),
    ("down", "KEY_DOWN"),
    ("pgdn", "KEY_PAGEDOWN"),
    ("insert", "KEY_INSERT"),
    ("delete", "KEY_DELETE"),
    ("meta_l", "KEY_LEFTMETA"),
    ("meta_r", "KEY_RIGHTMETA"),
    ("compose", "KEY_COMPOSE"),
    ("print", "KEY_SYSRQ"),
    ("sysrq", "KEY_SYSRQ"),
    ("pause", "KEY_PAUSE"),
];

/// The kernel's `KEY_*` name of a QEMU key name.
pub fn key_name(qemu_key: &str) -> Option<&'static str> {
    KEY_NAMES
        .iter()
        .find(|(k, _)| *k == qemu_key)
        .map(|(_, n)| *n)
}

/// One key event as `/dev/kbd0001` must report it (without its `seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The `KEY_*` name.
    pub key: &'static str,
    /// The event's bytes and direction (also what the kernel log shows).
    pub event: KeyEvent,
}

impl Expected {
    /// The device line with sequence number `seq`, without its newline.
    pub fn line(&self, seq: u64) -> String {
        DevLine {
            seq,
            pressed: self.event.pressed,
            key: self.key.to_owned(),
            bytes: self.event.bytes.clone(),
        }
        .to_string()
    }
}

/// What one key going down or up makes QEMU send, and the event it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The bytes on the wire (one interrupt each).
    pub wire: Vec<u8>,
    /// The key event, if the bytes make one (Pause going up sends nothing).
    pub event: Option<Expected>,
}

/// What QEMU sends when the QEMU key `key` goes down (`down`) or up, and the
/// event the driver must report; `None` for a key in neither table.
pub fn transition(key: &str, down: bool) -> Option<Transition> {
    let name = key_name(key)?;
    let (wire, bytes): (Vec<u8>, Vec<u8>) = match (key, down) {
        // PrtSc: a fake left shift around the key's own e0 37 / e0 b7.
        ("print" | "sysrq", true) => (vec![0xe0, 0x2a, 0xe0, 0x37], vec![0xe0, 0x37]),
        ("print" | "sysrq", false) => (vec![0xe0, 0xb7, 0xe0, 0xaa], vec![0xe0, 0xb7]),
        ("pause", true) => {
            let seq = vec![0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5];
            (seq.clone(), seq)
        }
        ("pause", false) => {
            return Some(Transition {
                wire: Vec::new(),
                event: None,
            });
        }
        _ => {
            let s = scancodes::lookup(key)?;
            let bytes = if down { s.make } else { s.brk };
            (bytes.clone(), bytes)
        }
    };
    Some(Transition {
        wire,
        event: Some(Expected {
            key: name,
            event: KeyEvent {
                bytes,
                pressed: down,
            },
        }),
    })
}

/// The key events `(key, down)` of a QMP `send-key` chord: keys down in
/// order, up in reverse order.
pub fn chord_events<'a>(keys: &'a [&'a str]) -> impl Iterator<Item = (&'a str, bool)> + 'a {
    let downs = keys.iter().map(|k| (*k, true));
    downs.chain(keys.iter().rev().map(|k| (*k, false)))
}

/// The transitions of a QMP `send-key` chord, in [`chord_events`] order.
pub fn chord(keys: &[&str]) -> Option<Vec<Transition>> {
    chord_events(keys)
        .map(|(key, down)| transition(key, down))
        .collect()
}

/// One line of `/dev/kbd0001`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevLine {
    /// The device's event number (1 for the first event after probe).
    pub seq: u64,
    /// `press` or `release`.
    pub pressed: bool,
    /// The `KEY_*` name.
    pub key: String,
    /// The event's bytes.
    pub bytes: Vec<u8>,
}

impl DevLine {
    /// Parses one line (without its newline); strict: exactly the format of
    /// the spec, lowercase two-digit hex bytes separated by one space.
    pub fn parse(line: &str) -> Option<DevLine> {
        static RE: LazyLock<Regex> = LazyLock::new(|| {
            Regex::new(
                r"^([1-9][0-9]*) (press|release) (KEY_[A-Z0-9_]+) ([0-9a-f]{2}(?: [0-9a-f]{2})*)$",
            )
            .expect("valid regex")
        });
        let c = RE.captures(line)?;
        Some(DevLine {
            seq: c[1].parse().ok()?,
            pressed: &c[2] == "press",
            key: c[3].to_owned(),
            bytes: c[4]
                .split(' ')
                .map(|b| u8::from_str_radix(b, 16))
                .collect::<std::result::Result<_, _>>()
                .ok()?,
        })
    }

    /// Whether this line reports `expected` (any `seq`).
    pub fn matches(&self, expected: &Expected) -> bool {
        self.pressed == expected.event.pressed
            && self.key == expected.key
            && self.bytes == expected.event.bytes
    }
}

impl fmt::Display for DevLine {
    /// The device's format, without the newline: `3 press KEY_UP e0 48`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.seq,
            if self.pressed { "press" } else { "release" },
            self.key,
            scancodes::format_bytes(&self.bytes)
        )
    }
}

/// Parses what a reader of `/dev/kbd0001` got: whole lines only (the text
/// must be empty or end with a newline), each in the device's format.
pub fn parse_dev_lines(text: &str) -> Result<Vec<DevLine>> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(parse_error(format!(
            "output ends in a partial line: {:?}",
            text.rsplit('\n').next().unwrap_or_default()
        )));
    }
    text.lines()
        .map(|l| DevLine::parse(l).ok_or_else(|| parse_error(format!("bad line {l:?}"))))
        .collect()
}

fn parse_error(message: String) -> Error {
    Error::Parse {
        what: "/dev/kbd0001 lines",
        message,
    }
}

/// The driver's debugfs counters (counts since probe).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Hard handler invocations.
    pub irqs: u64,
    /// Invocations that returned handled (or woke the thread).
    pub handled: u64,
    /// Invocations that returned `IRQ_NONE` (no byte waiting).
    pub not_ours: u64,
    /// Bytes read from port 0x60.
    pub bytes: u64,
    /// Key events decoded.
    pub events: u64,
    /// Bytes lost between the hard handler and the bottom half.
    pub bytes_dropped: u64,
    /// Events lost in readers' queues.
    pub events_dropped: u64,
}

impl Counters {
    /// A guest shell command printing every counter file of the Rust
    /// driver ([`DEBUGFS_DIR`]) as `name=<file content>` (the files must
    /// each hold one number and a newline) and the `mode` file as
    /// `mode=<content>`; parse its output with [`Counters::parse`].
    pub fn command() -> String {
        Self::command_in(DEBUGFS_DIR)
    }

    /// [`Counters::command`] for the debugfs directory `dir` (a
    /// [`Driver::debugfs_dir`]).
    ///
    /// Each file is read with the shell's `read` (a `cat` per file was a
    /// fork each, about 20 ms under TCG): the first `read` must give a whole
    /// line and a second one nothing, so a file of more than one line, or
    /// without its newline, fails the command and names the file.
    pub fn command_in(dir: &str) -> String {
        let files = COUNTER_FILES.join(" ");
        format!(
            "cd {dir} && for f in {files} mode; do \
             {{ IFS= read -r v && ! IFS= read -r extra && [ -z \"$extra\" ]; }} <$f \
             || {{ echo \"$f: not one line\"; exit 1; }}; printf '%s=%s\\n' $f \"$v\"; done"
        )
    }

    /// Parses the output of [`Counters::command`]: the counters and the
    /// mode word. Every file must hold exactly one decimal number (or mode
    /// word) and a newline.
    pub fn parse(output: &str) -> Result<(Counters, String)> {
        let mut values = [None; 7];
        let mut mode = None;
        if !output.ends_with('\n') {
            return Err(counter_error(format!(
                "a file does not end with a newline: {output:?}"
            )));
        }
        for line in output.lines() {
            let Some((name, value)) = line.split_once('=') else {
                return Err(counter_error(format!("bad line {line:?} in {output:?}")));
            };
            if name == "mode" {
                mode = Some(value.to_owned());
                continue;
            }
            let i = COUNTER_FILES
                .iter()
                .position(|f| *f == name)
                .ok_or_else(|| counter_error(format!("unknown file {name:?}")))?;
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(counter_error(format!(
                    "{name} holds {value:?}, not a decimal number"
                )));
            }
            let n = value
                .parse()
                .map_err(|_| counter_error(format!("{name} holds {value:?}")))?;
            if values[i].replace(n).is_some() {
                return Err(counter_error(format!("{name} twice in {output:?}")));
            }
        }
        let get = |i: usize| {
            values[i].ok_or_else(|| counter_error(format!("{} missing", COUNTER_FILES[i])))
        };
        let counters = Counters {
            irqs: get(0)?,
            handled: get(1)?,
            not_ours: get(2)?,
            bytes: get(3)?,
            events: get(4)?,
            bytes_dropped: get(5)?,
            events_dropped: get(6)?,
        };
        Ok((
            counters,
            mode.ok_or_else(|| counter_error("mode missing".into()))?,
        ))
    }

    /// `self - earlier`, counter by counter (saturating: a counter that went
    /// down shows as 0 here; compare the values to see it).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            irqs: self.irqs.saturating_sub(earlier.irqs),
            handled: self.handled.saturating_sub(earlier.handled),
            not_ours: self.not_ours.saturating_sub(earlier.not_ours),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            events: self.events.saturating_sub(earlier.events),
            bytes_dropped: self.bytes_dropped.saturating_sub(earlier.bytes_dropped),
            events_dropped: self.events_dropped.saturating_sub(earlier.events_dropped),
        }
    }

    /// Whether no counter is lower than in `earlier`.
    pub fn monotonic_since(&self, earlier: &Counters) -> bool {
        let a = self.as_array();
        let b = earlier.as_array();
        a.iter().zip(b.iter()).all(|(x, y)| x >= y)
    }

    fn as_array(&self) -> [u64; 7] {
        [
            self.irqs,
            self.handled,
            self.not_ours,
            self.bytes,
            self.events,
            self.bytes_dropped,
            self.events_dropped,
        ]
    }
}

fn counter_error(message: String) -> Error {
    Error::Parse {
        what: "the driver's debugfs counters",
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drivers() {
        let rust = Driver::Rust(Mode::Hard);
        assert_eq!(rust.to_string(), "rust_hard");
        assert_eq!(
            rust.cmdline(),
            "lab.driver=rust_keyboard rust_keyboard.mode=0"
        );
        assert_eq!(rust.insmod_args(), "mode=0");
        assert_eq!(rust.debugfs_dir(), DEBUGFS_DIR);
        assert!(rust.has_dev_node());
        assert_eq!(Driver::C.to_string(), "c_twin");
        assert_eq!(Driver::C.cmdline(), "lab.driver=c_keyboard");
        assert_eq!(Driver::C.irq_name(), "c_keyboard_irq");
        assert_eq!(Driver::C.module_path(), "/lib/modules/c_keyboard.ko");
        assert_eq!(
            Driver::C.driver_dir(),
            "/sys/bus/platform/drivers/c_keyboard"
        );
        assert_eq!(Driver::C.mode_name(), "workqueue");
        assert!(!Driver::C.has_dev_node());
        assert!(Counters::command_in("/d").starts_with("cd /d && "));
    }

    /// The command on a directory of counter files, run by the host's `sh`
    /// (POSIX, as the guest's busybox sh): one line per file, and a file
    /// of two lines or without its newline fails it, named.
    #[test]
    fn counters_command_reads_each_file_as_one_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| std::fs::write(dir.path().join(name), body).unwrap();
        for (i, f) in COUNTER_FILES.iter().enumerate() {
            write(f, &format!("{i}\n"));
        }
        write("mode", "threaded\n");
        let run = || {
            let cmd = Counters::command_in(&dir.path().display().to_string());
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .output()
                .unwrap();
            (out.status.success(), String::from_utf8(out.stdout).unwrap())
        };
        let (ok, out) = run();
        assert!(ok, "{out}");
        let (c, mode) = Counters::parse(&out).unwrap();
        assert_eq!(
            (c.irqs, c.events_dropped, mode.as_str()),
            (0, 6, "threaded")
        );
        for bad in ["1\n2\n", "3", "4\n5"] {
            write("events", bad);
            let (ok, out) = run();
            assert!(
                !ok && out.ends_with("events: not one line\n"),
                "{bad:?}: {out}"
            );
        }
    }

    #[test]
    fn modes() {
        assert_eq!(Mode::Hard.cmdline(), "rust_keyboard.mode=0");
        assert_eq!(Mode::Threaded.insmod_arg(), "mode=1");
        assert_eq!(Mode::Workqueue.param(), 2);
        assert_eq!(Mode::from_name("workqueue"), Some(Mode::Workqueue));
        assert_eq!(Mode::from_name("soft"), None);
        assert_eq!(Mode::Threaded.to_string(), "threaded");
    }

    #[test]
    fn key_names_are_literal_kernel_names() {
        // Values copied from input-event-codes.h, not computed.
        for (k, n) in [
            ("a", "KEY_A"),
            ("ret", "KEY_ENTER"),
            ("kp_enter", "KEY_KPENTER"),
            ("ctrl_r", "KEY_RIGHTCTRL"),
            ("up", "KEY_UP"),
            ("bracket_left", "KEY_LEFTBRACE"),
            ("grave_accent", "KEY_GRAVE"),
            ("less", "KEY_102ND"),
            ("kp_divide", "KEY_KPSLASH"),
            ("print", "KEY_SYSRQ"),
            ("pause", "KEY_PAUSE"),
            ("meta_l", "KEY_LEFTMETA"),
            ("compose", "KEY_COMPOSE"),
        ] {
            assert_eq!(key_name(k), Some(n), "{k}");
        }
        assert_eq!(key_name("nosuchkey"), None);
    }

    #[test]
    fn every_set1_key_has_a_name() {
        for k in scancodes::key_names() {
            let n = key_name(k).unwrap_or_else(|| panic!("{k} has no KEY_ name"));
            assert!(n.starts_with("KEY_"), "{k}: {n}");
        }
        let mut seen = std::collections::HashSet::new();
        for (k, _) in KEY_NAMES {
            assert!(seen.insert(*k), "duplicate {k}");
            assert!(
                k.parse::<qapi::qmp::QKeyCode>().is_ok(),
                "{k} is not a QEMU key name"
            );
        }
        // Distinct keys have distinct names but for the two pairs that are
        // one key: asterisk/kp_multiply and print/sysrq.
        let mut names: Vec<&str> = KEY_NAMES.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEY_NAMES.len() - 2);
    }

    #[test]
    fn transitions() {
        let t = transition("up", false).unwrap();
        assert_eq!(t.wire, [0xe0, 0xc8]);
        let e = t.event.unwrap();
        assert_eq!(e.line(4), "4 release KEY_UP e0 c8");

        let t = transition("print", true).unwrap();
        assert_eq!(t.wire, [0xe0, 0x2a, 0xe0, 0x37]);
        assert_eq!(t.event.unwrap().line(9), "9 press KEY_SYSRQ e0 37");
        let t = transition("print", false).unwrap();
        assert_eq!(t.wire, [0xe0, 0xb7, 0xe0, 0xaa]);
        assert_eq!(t.event.unwrap().line(10), "10 release KEY_SYSRQ e0 b7");

        let t = transition("pause", true).unwrap();
        assert_eq!(t.wire.len(), 6);
        assert_eq!(
            t.event.unwrap().line(7),
            "7 press KEY_PAUSE e1 1d 45 e1 9d c5"
        );
        assert_eq!(
            transition("pause", false).unwrap(),
            Transition {
                wire: vec![],
                event: None
            }
        );
        assert_eq!(transition("bogus", true), None);

        let c = chord(&["ctrl_r", "a"]).unwrap();
        let lines: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, t)| t.event.as_ref().unwrap().line(i as u64 + 1))
            .collect();
        assert_eq!(
            lines,
            [
                "1 press KEY_RIGHTCTRL e0 1d",
                "2 press KEY_A 1e",
                "3 release KEY_A 9e",
                "4 release KEY_RIGHTCTRL e0 9d"
            ]
        );
    }

    #[test]
    fn dev_lines() {
        let text = "1 press KEY_A 1e\n2 release KEY_A 9e\n3 press KEY_UP e0 48\n";
        let lines = parse_dev_lines(text).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[2],
            DevLine {
                seq: 3,
                pressed: true,
                key: "KEY_UP".into(),
                bytes: vec![0xe0, 0x48]
            }
        );
        assert_eq!(lines[2].to_string(), "3 press KEY_UP e0 48");
        assert!(lines[0].matches(&transition("a", true).unwrap().event.unwrap()));
        assert!(!lines[0].matches(&transition("a", false).unwrap().event.unwrap()));
        assert_eq!(parse_dev_lines("").unwrap(), vec![]);
        for bad in [
            "1 press KEY_A 1e",      // partial line
            "0 press KEY_A 1e\n",    // seq starts at 1
            "1 pressed KEY_A 1e\n",  // word
            "1 press KEY_A 1E\n",    // uppercase hex
            "1 press KEY_A  1e\n",   // double space
            "1 press key_a 1e\n",    // name
            "1 press KEY_A 1e \n",   // trailing space
            "1 press KEY_A\n",       // no bytes
            "x\n1 press KEY_A 1e\n", // garbage line
        ] {
            assert!(parse_dev_lines(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counters() {
        let out = "irqs=10\nhandled=8\nnot_ours=2\nbytes=8\nevents=5\nbytes_dropped=0\nevents_dropped=0\nmode=hard\n";
        let (c, mode) = Counters::parse(out).unwrap();
        assert_eq!(mode, "hard");
        assert_eq!(
            c,
            Counters {
                irqs: 10,
                handled: 8,
                not_ours: 2,
                bytes: 8,
                events: 5,
                bytes_dropped: 0,
                events_dropped: 0
            }
        );
        let later = Counters { irqs: 13, ..c };
        assert_eq!(later.since(&c).irqs, 3);
        assert!(later.monotonic_since(&c));
        assert!(!c.monotonic_since(&later));
        for bad in [
            out.replace("irqs=10\n", ""),
            out.replace("irqs=10", "irqs=ten"),
            out.replace("irqs=10", "irqs= 10"),
            out.replace("irqs=10", "irqs="),
            out.trim_end().to_owned(),
            out.replace("mode=hard\n", ""),
            format!("{out}irqs=1\n"),
        ] {
            assert!(Counters::parse(&bad).is_err(), "{bad:?}");
        }
        assert!(Counters::command().contains("/sys/kernel/debug/rust_keyboard/KBD0001:00"));
    }
}
