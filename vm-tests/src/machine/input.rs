//! Keyboard input through QMP.

use std::time::{Duration, Instant};

use super::Machine;
use crate::qmp::{self, QmpClient};
use crate::{Error, Result};

/// Typematic delay and period of [`Machine::hold_key`] (what QEMU's GUI
/// front ends emulate; the PS/2 device itself does not repeat).
const TYPEMATIC_DELAY: Duration = Duration::from_millis(500);
const TYPEMATIC_PERIOD: Duration = Duration::from_millis(100);

impl Machine {
    /// Presses a key or a chord through QMP `send-key`: `"a"`, `"ret"`,
    /// `"ctrl-alt-delete"` (parsed by [`qmp::parse_chord`]: keys joined with
    /// `-`, the key `-` itself being `minus`), sent as ONE chord: keys go
    /// down in order and up in reverse order. Returns after the release.
    pub fn send_key(&mut self, chord: &str) -> Result<()> {
        let keys = qmp::parse_chord(chord)?;
        self.log(&format!("send-key {}", keys.join("-")));
        self.qmp_call("send-key", |q| q.press(&keys, qmp::KEY_HOLD))
    }

    /// Types text on a US layout: one `send-key` per character (a shift
    /// chord for capitals and symbols), each released before the next
    /// starts, never batched, so QEMU's 16-byte PS/2 queue cannot overflow
    /// ([`QmpClient::type_text`]).
    pub fn send_chars(&mut self, text: &str) -> Result<()> {
        self.log(&format!("type {text:?}"));
        self.qmp_call("send-key", |q| q.type_text(text))
    }

    /// A key goes down (QMP `input-send-event`) and stays down.
    pub fn key_down(&mut self, key: &str) -> Result<()> {
        self.log(&format!("key down {key}"));
        self.qmp_call("input-send-event", |q| q.key_down(key))
    }

    /// A key goes up.
    pub fn key_up(&mut self, key: &str) -> Result<()> {
        self.log(&format!("key up {key}"));
        self.qmp_call("input-send-event", |q| q.key_up(key))
    }

    /// Sends several key events `(QEMU key name, down)` in ONE QMP
    /// `input-send-event` command: QEMU queues them at once, without the
    /// pacing of [`Machine::send_key`]. QEMU's PS/2 queue holds 16 bytes and
    /// silently drops the rest, so keep one call within 16 bytes of scan
    /// codes (8 plain or 4 extended presses with their releases) and let the
    /// guest consume them (e.g. [`Machine::wait_for_interrupts`]) before the
    /// next call.
    pub fn input_send_event(&mut self, events: &[(&str, bool)]) -> Result<()> {
        for (k, _) in events {
            qmp::qkeycode(k)?;
        }
        let shown: Vec<String> = events
            .iter()
            .map(|(k, down)| format!("{k}{}", if *down { "+" } else { "-" }))
            .collect();
        self.log(&format!("input-send-event {}", shown.join(" ")));
        self.qmp_call("input-send-event", |q| q.input_send_event(events))
    }

    /// Holds a key for `duration` with typematic repeat, as a real keyboard
    /// (and QEMU's GUI) does: a key-down, repeated key-downs after 500 ms and
    /// then every 100 ms, and one key-up at the end. Returns the number of
    /// repeats sent: the guest sees `1 + repeats` make codes and one break.
    pub fn hold_key(&mut self, key: &str, duration: Duration) -> Result<usize> {
        qmp::qkeycode(key)?;
        let start = Instant::now();
        self.key_down(key)?;
        let mut repeats = 0;
        let mut next = TYPEMATIC_DELAY;
        while next < duration {
            sleep_until(start + next);
            self.qmp_call("input-send-event", |q| q.key_down(key))?;
            repeats += 1;
            next += TYPEMATIC_PERIOD;
        }
        sleep_until(start + duration);
        self.key_up(key)?;
        self.log(&format!(
            "held {key} for {:.2} s with {repeats} repeats",
            duration.as_secs_f64()
        ));
        Ok(repeats)
    }

    /// Runs `f` on the QMP client of a live machine; if it fails because
    /// QEMU died, says so.
    fn qmp_call(
        &mut self,
        context: &str,
        f: impl FnOnce(&mut QmpClient) -> Result<()>,
    ) -> Result<()> {
        self.check_alive(context)?;
        let qmp = self.qmp.as_mut().ok_or(Error::NotRunning)?;
        let result = f(qmp);
        result.map_err(|e| self.annotate(e, context))
    }
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}
