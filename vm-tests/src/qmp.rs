//! A small blocking QMP client on a unix socket, built on the `qapi` crate.
//!
//! Used by [`Machine`](crate::Machine) and by `cargo xtask keys` against the
//! QMP socket of a running `cargo xtask vm`:
//!
//! ```no_run
//! use std::time::Duration;
//! use vm_tests::QmpClient;
//!
//! # fn main() -> Result<(), vm_tests::Error> {
//! let mut qmp = QmpClient::connect("/tmp/vm/qmp.sock".as_ref(), Duration::from_secs(5))?;
//! qmp.send_key(&["ctrl", "alt", "delete"], None)?; // one chord
//! qmp.key_down("a")?;
//! qmp.key_up("a")?;
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::io::{self, BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qapi::qmp::{
    InputEvent, InputKeyEvent, KeyValue, MigrationStatus, QKeyCode, QapiCapabilities, cont,
    input_send_event, migrate, qmp_capabilities, query_migrate, query_status, quit, send_key, stop,
};
use qapi::{ExecuteError, Qmp, Stream};

use crate::wait::{PAUSE, retry};
use crate::{Error, Result};

/// How long one QMP command may take before the client gives up.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Hold time of a key press ([`QmpClient::press`] from `Machine::send_key`).
/// QEMU waits this long after each of the chord's events (send-key's
/// `hold-time`, default 100 ms); the PS/2 device has no typematic repeat, so
/// a press is the same bytes however long it is held, and 20 ms still lets
/// the guest read every byte before the next arrives.
pub const KEY_HOLD: Duration = Duration::from_millis(20);
/// Hold time of each character typed by [`QmpClient::type_text`].
pub const CHAR_HOLD: Duration = Duration::from_millis(30);
/// Pause after a key's last event before the next key, so that the guest
/// drains QEMU's 16-byte PS/2 queue between keys and keys never overlap.
pub const KEY_GAP: Duration = Duration::from_millis(30);

type QmpStream = Stream<BufReader<UnixStream>, UnixStream>;

/// A connected QMP session (capabilities negotiated).
pub struct QmpClient {
    qmp: Qmp<QmpStream>,
    path: PathBuf,
    version: String,
}

/// Parses a QEMU key name (`QKeyCode`: `a`, `ret`, `ctrl_r`, `kp_enter`, `up`).
pub fn qkeycode(name: &str) -> Result<QKeyCode> {
    name.parse()
        .map_err(|()| Error::UnknownKey(name.to_owned()))
}

/// Parses a key chord: QEMU key names ([`qkeycode`]) joined with `-`,
/// pressed together (`"a"`, `"ret"`, `"ctrl-alt-delete"`: one chord of three
/// keys). `cargo xtask keys`, [`Machine::send_key`](crate::Machine::send_key)
/// and `:key` of the interactive mode all read chords this way.
///
/// The key `-` is QEMU's `minus`, and `-` may stand for it wherever a key
/// name stands: a lone `"-"` is `minus`, `"ctrl--"` is ctrl and minus,
/// `"--a"` is minus and a, `"a---b"` is a, minus and b. Anything else
/// with an empty key name (`""`, `"a-"`, `"--"`) or with a `-` key not
/// followed by a separator or the end (`"-a"`, `"a--b"`) is an
/// [`Error::InvalidChord`]; unknown names are an [`Error::UnknownKey`].
pub fn parse_chord(spec: &str) -> Result<Vec<&str>> {
    let invalid = |reason| Error::InvalidChord {
        spec: spec.to_owned(),
        reason,
    };
    let mut keys = Vec::new();
    let mut rest = spec;
    loop {
        // A key: `-` (minus), or a name up to the next separator.
        let (key, after) = match rest.strip_prefix('-') {
            Some(after) => ("minus", after),
            None => rest.split_at(rest.find('-').unwrap_or(rest.len())),
        };
        if key.is_empty() {
            return Err(invalid("a key name is empty"));
        }
        qkeycode(key)?;
        keys.push(key);
        // Then the end, or a separator and the next key.
        match after.strip_prefix('-') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(keys),
            None => {
                return Err(invalid(
                    "the key - must be followed by a separator - or the end",
                ));
            }
        }
    }
}

/// The chords that type `text` on a US layout (`"Hi"` ->
/// `[["shift", "h"], ["i"]]`), or [`Error::UnsupportedChar`].
pub fn text_chords(text: &str) -> Result<Vec<Vec<&'static str>>> {
    text.chars()
        .map(|c| crate::scancodes::char_keys(c).ok_or(Error::UnsupportedChar(c)))
        .collect()
}

fn key_value(name: &str) -> Result<KeyValue> {
    Ok(KeyValue::qcode(qkeycode(name)?.into()))
}

impl QmpClient {
    /// Connects to a QMP unix socket, retrying until `timeout` while the
    /// socket does not exist or refuses (QEMU still starting), then performs
    /// the handshake.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self> {
        let Ok(connected) = retry(
            &mut (),
            Instant::now() + timeout,
            |_| std::thread::sleep(PAUSE),
            |_| Ok::<_, Infallible>(UnixStream::connect(path)),
        );
        let stream = connected.map_err(|e| {
            Error::io(
                format!(
                    "cannot connect to the QMP socket {} within {:.1} s (is the VM running?)",
                    path.display(),
                    timeout.as_secs_f64()
                ),
                e,
            )
        })?;
        Self::from_stream(stream, path)
    }

    /// Performs the QMP handshake on a connected stream.
    pub fn from_stream(stream: UnixStream, path: &Path) -> Result<Self> {
        let ctx = |what: &str| format!("{what} on QMP socket {}", path.display());
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| Error::io(ctx("setting a read timeout"), e))?;
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io(ctx("cloning"), e))?;
        let mut reader = BufReader::new(stream);

        // Read the greeting ourselves: qapi's `read_capabilities` panics on EOF.
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => return Err(Error::QmpClosed(ctx("waiting for the greeting"))),
            Ok(_) => {}
            Err(e) => return Err(map_io(e, &ctx("waiting for the greeting"))),
        }
        let greeting: QapiCapabilities = serde_json::from_str(&line).map_err(|e| Error::Qmp {
            command: "greeting".into(),
            message: format!("unexpected greeting {:?}: {e}", line.trim()),
        })?;
        let v = &greeting.QMP.version.qemu;
        let version = format!("{}.{}.{}", v.major, v.minor, v.micro);

        let mut qmp = Qmp::new(Stream::new(reader, writer));
        qmp.execute(&qmp_capabilities { enable: None })
            .map_err(|e| map_exec(e, "qmp_capabilities"))?;
        Ok(QmpClient {
            qmp,
            path: path.to_owned(),
            version,
        })
    }

    /// The QEMU version from the greeting (`7.2.22`).
    pub fn qemu_version(&self) -> &str {
        &self.version
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs any QMP command (escape hatch for what this client does not wrap).
    pub fn execute<C: qapi::qmp::QmpCommand>(&mut self, command: &C) -> Result<C::Ok> {
        let result = self.qmp.execute(command).map_err(|e| map_exec(e, C::NAME));
        // Events are not used; do not let them pile up.
        self.qmp.events().for_each(drop);
        result
    }

    /// `query-status`: the VM's run state as QEMU names it: `running`,
    /// `prelaunch` (`-S`, never run yet), `paused` (stopped, e.g. by gdb
    /// attaching), `debug` (stopped by a gdb breakpoint or Ctrl-C), ...
    pub fn status(&mut self) -> Result<String> {
        let info = self.execute(&query_status {})?;
        let name = serde_json::to_value(info.status).map_err(|e| Error::Qmp {
            command: "query-status".into(),
            message: e.to_string(),
        })?;
        Ok(name.as_str().unwrap_or_default().to_owned())
    }

    /// `send-key`: presses `keys` as one chord: down in order, up in reverse
    /// order.
    ///
    /// The command returns as soon as QEMU has queued the events. QEMU then
    /// delivers them from its keyboard queue and waits `hold_ms` after each
    /// down *and* each up event (QEMU 7.2 waits 10 ms when `None`, whatever
    /// its documentation says), so a chord of `n` keys takes `2 n hold_ms`;
    /// later key commands queue up behind it in order.
    pub fn send_key(&mut self, keys: &[&str], hold_ms: Option<u64>) -> Result<()> {
        if keys.is_empty() {
            return Err(Error::UnknownKey(String::new()));
        }
        let keys = keys
            .iter()
            .map(|k| key_value(k))
            .collect::<Result<Vec<_>>>()?;
        self.execute(&send_key {
            keys,
            hold_time: hold_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
        })?;
        Ok(())
    }

    /// Presses a chord with `send-key` and returns once QEMU has delivered
    /// all its events (`2 n hold` for `n` keys) plus [`KEY_GAP`].
    pub fn press(&mut self, keys: &[&str], hold: Duration) -> Result<()> {
        let hold_ms = u64::try_from(hold.as_millis()).unwrap_or(u64::MAX);
        self.send_key(keys, Some(hold_ms))?;
        let events = u32::try_from(keys.len() * 2).unwrap_or(u32::MAX);
        std::thread::sleep(hold * events + KEY_GAP);
        Ok(())
    }

    /// Types text on a US layout, one `send-key` per character (a shift
    /// chord for capitals and symbols), each fully delivered before the
    /// next is sent, so QEMU's 16-byte PS/2 queue cannot overflow.
    /// Characters are checked before anything is sent.
    pub fn type_text(&mut self, text: &str) -> Result<()> {
        for chord in text_chords(text)? {
            self.press(&chord, CHAR_HOLD)?;
        }
        Ok(())
    }

    /// `input-send-event` with key events `(name, down)`, delivered in order
    /// by one command. QEMU's PS/2 queue holds 16 bytes: send at most 8
    /// presses per call and let the guest drain it between calls.
    pub fn input_send_event(&mut self, events: &[(&str, bool)]) -> Result<()> {
        let events = events
            .iter()
            .map(|&(name, down)| {
                Ok(InputEvent::key(
                    InputKeyEvent {
                        down,
                        key: key_value(name)?,
                    }
                    .into(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        self.execute(&input_send_event {
            device: None,
            head: None,
            events,
        })?;
        Ok(())
    }

    /// A key goes down (and stays down: QEMU's PS/2 has no auto-repeat).
    pub fn key_down(&mut self, key: &str) -> Result<()> {
        self.input_send_event(&[(key, true)])
    }

    /// A key goes up.
    pub fn key_up(&mut self, key: &str) -> Result<()> {
        self.input_send_event(&[(key, false)])
    }

    /// `stop`: pauses the guest's vCPUs.
    pub fn stop(&mut self) -> Result<()> {
        self.execute(&stop {}).map(drop)
    }

    /// `cont`: resumes a paused guest.
    pub fn cont(&mut self) -> Result<()> {
        self.execute(&cont {}).map(drop)
    }

    /// Saves the whole machine state (memory, devices, vCPUs) to `file`:
    /// `migrate` to `exec:cat > file` (QEMU 7.2 has no `file:` URI), then
    /// waits up to `timeout` for `query-migrate` to say `completed`. A
    /// `failed` or `cancelled` migration is an error with QEMU's reason.
    pub fn save_state(&mut self, file: &Path, timeout: Duration) -> Result<()> {
        let uri = format!(
            "exec:cat > {}",
            crate::qemu::shell_quote(&file.to_string_lossy())
        );
        self.execute(&migrate {
            uri: Some(uri),
            channels: None,
            detach: None,
            resume: None,
        })?;
        let failed = |message: String| Error::Qmp {
            command: "migrate".into(),
            message: format!("saving the machine to {}: {message}", file.display()),
        };
        // Done: Ok(Ok(())) completed, Ok(Err(reason)) failed; Err(()) not yet.
        let ended = retry(
            self,
            Instant::now() + timeout,
            |_| std::thread::sleep(PAUSE),
            |q| {
                let info = q.execute(&query_migrate {})?;
                Ok::<_, Error>(match info.status {
                    Some(MigrationStatus::completed) => Ok(Ok(())),
                    Some(status @ (MigrationStatus::failed | MigrationStatus::cancelled)) => {
                        Ok(Err(format!(
                            "{status:?}: {}",
                            info.error_desc.unwrap_or_default()
                        )))
                    }
                    _ => Err(()),
                })
            },
        )?;
        match ended {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(failed(reason)),
            Err(()) => Err(failed(format!(
                "not completed within {} s",
                timeout.as_secs()
            ))),
        }
    }

    /// `quit`: QEMU exits at once. A socket closed before the reply counts
    /// as success.
    pub fn quit(&mut self) -> Result<()> {
        match self.execute(&quit {}) {
            Ok(_) | Err(Error::QmpClosed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn map_io(e: io::Error, context: &str) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe => Error::QmpClosed(context.to_owned()),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Qmp {
            command: context.to_owned(),
            message: format!("no answer within {} s", REPLY_TIMEOUT.as_secs()),
        },
        _ => Error::io(format!("QMP I/O while {context}"), e),
    }
}

fn map_exec(e: ExecuteError, command: &str) -> Error {
    match e {
        ExecuteError::Qapi(e) => Error::Qmp {
            command: command.to_owned(),
            message: e.to_string(),
        },
        ExecuteError::Io(e) => map_io(e, &format!("running {command}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn key_names() {
        assert!(qkeycode("a").is_ok());
        assert!(qkeycode("kp_enter").is_ok());
        assert!(matches!(qkeycode("enter"), Err(Error::UnknownKey(k)) if k == "enter"));
    }

    #[test]
    fn chords() {
        let ok = |spec| parse_chord(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        assert_eq!(ok("a"), ["a"]);
        assert_eq!(ok("ctrl-alt-delete"), ["ctrl", "alt", "delete"]);
        assert_eq!(ok("-"), ["minus"]);
        assert_eq!(ok("minus"), ["minus"]);
        assert_eq!(ok("ctrl--"), ["ctrl", "minus"]);
        assert_eq!(ok("shift-minus"), ["shift", "minus"]);
        assert_eq!(ok("--a"), ["minus", "a"]);
        assert_eq!(ok("a---b"), ["a", "minus", "b"]);
        for spec in ["", "a-", "--", "ctrl---", "-a", "a--b", "ctrl-"] {
            assert!(
                matches!(parse_chord(spec), Err(Error::InvalidChord { .. })),
                "{spec:?}: {:?}",
                parse_chord(spec)
            );
        }
        assert!(matches!(parse_chord("ctrl-enter"), Err(Error::UnknownKey(k)) if k == "enter"));
        assert!(matches!(parse_chord(" a"), Err(Error::UnknownKey(_))));
    }

    /// A fake QMP server: checks the wire format of the commands.
    #[test]
    fn wire_format_and_closed_socket() {
        let (client, server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut server = BufReader::new(server);
            let mut w = server.get_ref().try_clone().unwrap();
            w.write_all(
                br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "x"}, "capabilities": ["oob"]}}
"#,
            )
            .unwrap();
            let mut lines = Vec::new();
            for _ in 0..3 {
                let mut l = String::new();
                server.read_line(&mut l).unwrap();
                lines.push(l.trim().to_owned());
                w.write_all(b"{\"event\": \"RESUME\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\n{\"return\": {}}\n")
                    .unwrap();
            }
            // Then close without answering the 4th command.
            let mut l = String::new();
            server.read_line(&mut l).unwrap();
            lines.push(l.trim().to_owned());
            server
                .get_ref()
                .shutdown(std::net::Shutdown::Write)
                .unwrap();
            let mut rest = Vec::new();
            let _ = server.read_to_end(&mut rest);
            lines
        });
        let mut c = QmpClient::from_stream(client, Path::new("fake")).unwrap();
        assert_eq!(c.qemu_version(), "7.2.22");
        c.send_key(&["shift", "a"], Some(50)).unwrap();
        c.key_down("up").unwrap();
        let err = c.key_up("up").unwrap_err();
        assert!(matches!(err, Error::QmpClosed(_)), "{err}");
        drop(c);
        let lines: Vec<serde_json::Value> = t
            .join()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["execute"], "qmp_capabilities");
        assert_eq!(
            lines[1],
            serde_json::json!({"execute": "send-key", "arguments": {"hold-time": 50, "keys": [
                {"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "a"}]}})
        );
        assert_eq!(
            lines[2],
            serde_json::json!({"execute": "input-send-event", "arguments": {"events": [
                {"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "up"}}}]}})
        );
        assert_eq!(lines[3]["execute"], "input-send-event");
    }
}
