//! Host side of the command channel on the guest's second serial port (ttyS1).
//!
//! The guest side is the `channel` function of `initramfs/init`. The tty is
//! raw and does not echo. Protocol, one request at a time:
//!
//! ```text
//! guest, once serving:  @@LAB-CHANNEL-READY
//! host -> guest:        <id> <timeout-seconds> <shell script, escaped>\n
//! guest -> host:        @@LAB-BEGIN <id>
//!                       <base64 of stdout+stderr, wrapped, zero or more lines>
//!                       @@LAB-END <id> <exit status>
//! ```
//!
//! * `<id>` is a decimal number the host never reuses, so a late reply to a
//!   request the host gave up on is recognised and ignored;
//! * the script goes as the argument of the guest's `printf '%b'` (a shell
//!   builtin, so decoding it costs the guest no fork): every byte that is
//!   not printable ASCII, and the backslash, as a `\0ooo` octal escape;
//! * base64 of the output makes any byte (newlines, NULs, escape sequences,
//!   invalid UTF-8, a missing final newline) safe, and an empty output is an
//!   empty block (the guest runs no base64 for it);
//! * lines outside a `BEGIN`/`END` block (noise, a restarted channel's ready
//!   marker) are ignored;
//! * the guest runs the script in a subshell of its channel shell, stdin from
//!   `/dev/null`, and kills it with SIGKILL (status 137) after
//!   `<timeout-seconds>`, so the channel stays usable after a hung command.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{Error, Result};

/// The line the guest prints when the channel serves.
pub const READY_MARKER: &str = "@@LAB-CHANNEL-READY";
/// Start of a reply block: `@@LAB-BEGIN <id>`.
pub const BEGIN_MARKER: &str = "@@LAB-BEGIN";
/// End of a reply block: `@@LAB-END <id> <status>`.
pub const END_MARKER: &str = "@@LAB-END";

/// Encodes a request line (with its final newline): printable ASCII other
/// than the backslash as it is, every other byte of the script as `\0ooo`.
pub fn encode_request(id: u64, timeout_secs: u64, script: &str) -> String {
    let mut line = format!("{id} {} ", timeout_secs.max(1));
    for b in script.bytes() {
        if (b' '..=b'~').contains(&b) && b != b'\\' {
            line.push(char::from(b));
        } else {
            line.push_str(&format!("\\0{b:03o}"));
        }
    }
    line.push('\n');
    line
}

/// A reply to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request id.
    pub id: u64,
    /// The exit status of the script (137 when the guest killed it on timeout).
    pub status: i32,
    /// Its stdout and stderr, interleaved as written.
    pub output: Vec<u8>,
}

impl Reply {
    /// The output as text (invalid UTF-8 replaced).
    pub fn output_lossy(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

/// Reassembles replies from channel lines.
#[derive(Debug, Default)]
pub struct ReplyParser {
    current: Option<(u64, String)>,
}

impl ReplyParser {
    /// Feeds one line (without its newline). Returns a reply when `line`
    /// completes one, an error when a block is corrupt, `None` otherwise.
    pub fn push_line(&mut self, line: &str) -> Option<Result<Reply>> {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix(BEGIN_MARKER) {
            match rest.trim().parse::<u64>() {
                Ok(id) => self.current = Some((id, String::new())),
                Err(_) => self.current = None,
            }
            return None;
        }
        if let Some(rest) = line.strip_prefix(END_MARKER) {
            let (open_id, data) = self.current.take()?;
            let mut fields = rest.split_whitespace();
            let (Some(id), Some(status), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Some(Err(Error::Protocol(format!("malformed end line {line:?}"))));
            };
            let (Ok(id), Ok(status)) = (id.parse::<u64>(), status.parse::<i32>()) else {
                return Some(Err(Error::Protocol(format!("malformed end line {line:?}"))));
            };
            if id != open_id {
                return Some(Err(Error::Protocol(format!(
                    "reply block opened for id {open_id} but closed for id {id}"
                ))));
            }
            return Some(match STANDARD.decode(data.as_bytes()) {
                Ok(output) => Ok(Reply { id, status, output }),
                Err(e) => Err(Error::Protocol(format!(
                    "reply {id}: output is not valid base64: {e}"
                ))),
            });
        }
        if let Some((_, data)) = &mut self.current {
            data.push_str(line);
        }
        None
    }
}

/// What [`Channel::poll`] saw.
#[derive(Debug)]
pub enum Poll {
    /// A complete reply (possibly to an older request).
    Reply(Reply),
    /// Nothing new yet.
    Pending,
    /// The socket was closed (QEMU exited).
    Closed,
}

#[derive(Default)]
struct Lines {
    queue: VecDeque<String>,
    partial: Vec<u8>,
    closed: bool,
    ready: bool,
}

struct Shared {
    lines: Mutex<Lines>,
    changed: Condvar,
}

/// A connected command channel: a writer and a reader thread.
pub struct Channel {
    writer: UnixStream,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    parser: ReplyParser,
}

impl Channel {
    /// Wraps a connected socket and starts the reader thread.
    pub fn new(stream: UnixStream) -> io::Result<Channel> {
        let reader = stream.try_clone()?;
        let shared = Arc::new(Shared {
            lines: Mutex::new(Lines::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("command-channel".into())
                .spawn(move || read_loop(reader, &shared))?
        };
        Ok(Channel {
            writer: stream,
            shared,
            thread: Some(thread),
            parser: ReplyParser::default(),
        })
    }

    /// Whether the guest announced [`READY_MARKER`]; waits up to `wait` for it.
    pub fn wait_ready(&self, wait: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .shared
            .changed
            .wait_timeout_while(guard, wait, |l| !l.ready && !l.closed)
            .unwrap_or_else(|e| e.into_inner());
        guard.ready
    }

    /// Sends a request.
    pub fn send(&mut self, id: u64, timeout_secs: u64, script: &str) -> io::Result<()> {
        self.writer
            .write_all(encode_request(id, timeout_secs, script).as_bytes())?;
        self.writer.flush()
    }

    /// Returns the next reply, waiting at most `wait` for one.
    pub fn poll(&mut self, wait: Duration) -> Result<Poll> {
        let shared = Arc::clone(&self.shared);
        let mut guard = shared.lines.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while let Some(line) = guard.queue.pop_front() {
                if let Some(reply) = self.parser.push_line(&line) {
                    return reply.map(Poll::Reply);
                }
            }
            if guard.closed {
                return Ok(Poll::Closed);
            }
            let (g, timeout) = shared
                .changed
                .wait_timeout_while(guard, wait, |l| l.queue.is_empty() && !l.closed)
                .unwrap_or_else(|e| e.into_inner());
            guard = g;
            if timeout.timed_out() {
                return Ok(Poll::Pending);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.shared.lines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(mut stream: UnixStream, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let mut l = shared.lines.lock().unwrap_or_else(|e| e.into_inner());
        if n == 0 {
            l.closed = true;
            drop(l);
            shared.changed.notify_all();
            return;
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&l.partial)
                    .trim_end_matches('\r')
                    .to_owned();
                l.partial.clear();
                if line.trim() == READY_MARKER {
                    l.ready = true;
                }
                l.queue.push_back(line);
            } else {
                l.partial.push(b);
            }
        }
        drop(l);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut ReplyParser, text: &str) -> Vec<Result<Reply>> {
        text.lines().filter_map(|l| p.push_line(l)).collect()
    }

    #[test]
    fn request_encoding() {
        assert_eq!(encode_request(7, 30, "echo 'hi'"), "7 30 echo 'hi'\n");
        assert_eq!(encode_request(8, 0, ""), "8 1 \n");
        assert_eq!(
            encode_request(9, 5, "a\\b\tc\né%"),
            "9 5 a\\0134b\\0011c\\0012\\0303\\0251%\n"
        );
    }

    /// The request, read and decoded by the guest's own code: the channel
    /// loop's split and `printf '%b'`, in the host's busybox sh (the
    /// initramfs packer's busybox; ash, like the guest's).
    #[test]
    fn request_decodes_in_busybox_sh() {
        let script = "  printf '%s\\n' 'tab\t\u{e9} \\c %b \\0101'\n\u{1b}[0m\r\x7f  ";
        let decode = r#"IFS= read -r line
id=${line%% *}
rest=${line#"$id" }
secs=${rest%% *}
script=${rest#"$secs" }
printf '%s %s ' "$id" "$secs"
printf '%b' "$script""#;
        let mut child = match std::process::Command::new("busybox")
            .args(["sh", "-c", decode])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("busybox (the packer's, from busybox-static) cannot run: {e}"),
        };
        let request = encode_request(42, 3, script);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("42 3 {script}")
        );
    }

    #[test]
    fn replies_with_any_output() {
        let mut p = ReplyParser::default();
        // Real guest output: busybox base64 wraps at 76 columns.
        let text = "noise before\n@@LAB-CHANNEL-READY\n@@LAB-BEGIN 1\n\
                    aGVsbG8KAAECAwr/\n@@LAB-END 1 0\n\
                    @@LAB-BEGIN 2\n@@LAB-END 2 3\n";
        let r: Vec<Reply> = feed(&mut p, text).into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].id, 1);
        assert_eq!(r[0].status, 0);
        assert_eq!(r[0].output, b"hello\n\x00\x01\x02\x03\n\xff");
        assert_eq!(
            r[1],
            Reply {
                id: 2,
                status: 3,
                output: vec![]
            }
        );
    }

    #[test]
    fn wrapped_output_and_crlf() {
        let long = "x".repeat(200);
        let enc = STANDARD.encode(&long);
        let wrapped: Vec<String> = enc
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\r", String::from_utf8_lossy(c)))
            .collect();
        let text = format!(
            "@@LAB-BEGIN 9\r\n{}\n@@LAB-END 9 137\r\n",
            wrapped.join("\n")
        );
        let mut p = ReplyParser::default();
        let r = feed(&mut p, &text);
        let r = r[0].as_ref().unwrap();
        assert_eq!(r.output_lossy(), long);
        assert_eq!(r.status, 137);
    }

    #[test]
    fn corrupt_blocks() {
        let mut p = ReplyParser::default();
        assert!(
            feed(&mut p, "@@LAB-END 3 0\n").is_empty(),
            "end without begin is noise"
        );
        let r = feed(&mut p, "@@LAB-BEGIN 4\n!!!\n@@LAB-END 4 0\n");
        assert!(matches!(&r[..], [Err(Error::Protocol(_))]));
        let r = feed(&mut p, "@@LAB-BEGIN 5\n@@LAB-END 6 0\n");
        assert!(matches!(&r[..], [Err(Error::Protocol(_))]));
        let r = feed(&mut p, "@@LAB-BEGIN 7\n@@LAB-END 7\n");
        assert!(matches!(&r[..], [Err(Error::Protocol(_))]));
        // A new BEGIN restarts the block (the guest's loop was restarted).
        let r = feed(
            &mut p,
            "@@LAB-BEGIN 8\nAAAA\n@@LAB-BEGIN 8\naGk=\n@@LAB-END 8 0\n",
        );
        assert_eq!(r[0].as_ref().unwrap().output, b"hi");
    }

    #[test]
    fn channel_over_a_socket_pair() {
        let (host, mut guest) = UnixStream::pair().unwrap();
        let mut ch = Channel::new(host).unwrap();
        assert!(!ch.wait_ready(Duration::from_millis(10)));
        guest
            .write_all(b"junk\x00\xff\n@@LAB-CHANNEL-READY\n")
            .unwrap();
        assert!(ch.wait_ready(Duration::from_secs(5)));
        ch.send(1, 5, "true").unwrap();
        let mut line = [0u8; 9];
        guest.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"1 5 true\n");
        assert!(matches!(
            ch.poll(Duration::from_millis(10)).unwrap(),
            Poll::Pending
        ));
        guest.write_all(b"@@LAB-BEGIN 1\n@@LAB-EN").unwrap();
        guest.write_all(b"D 1 0\n").unwrap();
        match ch.poll(Duration::from_secs(5)).unwrap() {
            Poll::Reply(r) => assert_eq!((r.id, r.status), (1, 0)),
            other => panic!("{other:?}"),
        }
        drop(guest);
        assert!(matches!(
            ch.poll(Duration::from_secs(5)).unwrap(),
            Poll::Closed
        ));
    }
}
