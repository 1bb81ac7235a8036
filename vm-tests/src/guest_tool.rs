//! `kbdtool`, a tiny guest program for the tests of `/dev/kbd0001`
//! (`guest_tool/kbdtool.c`): busybox cannot open a file with `O_NONBLOCK`,
//! read with a chosen buffer size or name an errno.
//!
//! The program is freestanding C (raw x86-64 system calls, no libc), built
//! on the host with `cc` (or `$CC`) the first time a process needs it, and
//! copied into the guest through the command channel ([`install`], a few
//! kilobytes). Its output is parsed by [`Session::parse`].

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{Error, Machine, Result};

/// Where [`install`] puts the program in the guest.
pub const GUEST_PATH: &str = "/tmp/kbdtool";

/// The C source.
const SOURCE: &str = include_str!("guest_tool/kbdtool.c");

/// The flags of a freestanding static executable.
const CFLAGS: &[&str] = &[
    "-static",
    "-nostdlib",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fno-pie",
    "-no-pie",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-s",
    "-Wl,--build-id=none",
];

/// The program's bytes, built once per process.
pub fn binary() -> Result<&'static [u8]> {
    static BUILT: OnceLock<std::result::Result<Vec<u8>, String>> = OnceLock::new();
    BUILT
        .get_or_init(build)
        .as_deref()
        .map_err(|e| Error::Config(e.clone()))
}

fn build() -> std::result::Result<Vec<u8>, String> {
    let dir = tempfile::Builder::new()
        .prefix("rust-kbd-lab-kbdtool-")
        .tempdir()
        .map_err(|e| format!("creating a directory for kbdtool: {e}"))?;
    let src = dir.path().join("kbdtool.c");
    let exe: PathBuf = dir.path().join("kbdtool");
    std::fs::write(&src, SOURCE).map_err(|e| format!("writing {}: {e}", src.display()))?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&cc)
        .args(CFLAGS)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("running {cc} to build the guest tool kbdtool: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{cc} failed to build the guest tool kbdtool ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::read(&exe).map_err(|e| format!("reading {}: {e}", exe.display()))
}

/// Copies the program to [`GUEST_PATH`] in the guest (idempotent).
pub fn install(m: &mut Machine) -> Result<()> {
    let b64 = STANDARD.encode(binary()?);
    m.succeed(&format!(
        "[ -x {GUEST_PATH} ] || {{ echo '{b64}' | base64 -d > {GUEST_PATH}.new && \
         chmod 755 {GUEST_PATH}.new && mv {GUEST_PATH}.new {GUEST_PATH}; }}"
    ))?;
    Ok(())
}

/// What one `read()` of a session gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// These bytes.
    Data(Vec<u8>),
    /// End of file (0).
    Eof,
    /// An error, by errno name (`EAGAIN`, `EINVAL`, `ENODEV`, ...).
    Error(String),
}

/// One step of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A `read()` with a buffer of `size` bytes.
    Read {
        /// The buffer size.
        size: usize,
        /// What it gave.
        result: ReadResult,
    },
    /// A wait for a file: whether it appeared in time.
    Wait(bool),
}

/// The parsed output of `kbdtool session`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Session {
    /// `Ok(())` if the open succeeded, else the errno name.
    pub open: Option<std::result::Result<(), String>>,
    /// The steps run so far.
    pub steps: Vec<Step>,
    /// Whether the program got to its end.
    pub done: bool,
}

impl Session {
    /// The guest command running a session on `dev`: `nonblock` opens with
    /// `O_NONBLOCK`; steps are read sizes (`"4096"`) or `"wait:PATH"`.
    pub fn command(dev: &str, nonblock: bool, steps: &[String]) -> String {
        let mut cmd = format!("{GUEST_PATH} session {dev}");
        if nonblock {
            cmd.push_str(" nonblock");
        }
        for s in steps {
            cmd.push(' ');
            cmd.push_str(s);
        }
        cmd
    }

    /// Parses what a session printed so far (it may still be running).
    pub fn parse(out: &[u8]) -> Result<Session> {
        let mut s = Session::default();
        let mut rest = out;
        while !rest.is_empty() {
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                // A marker line still being written.
                break;
            };
            let line = String::from_utf8_lossy(&rest[..nl]).into_owned();
            rest = &rest[nl + 1..];
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["@@open", "ok"] => s.open = Some(Ok(())),
                ["@@open", "error", e] => s.open = Some(Err((*e).to_owned())),
                ["@@wait", r] => s.steps.push(Step::Wait(*r == "ok")),
                ["@@done"] => s.done = true,
                ["@@read", size, what @ ..] => {
                    let size = parse_num(size, &line)?;
                    let result = match what {
                        ["data", n] => {
                            let n = parse_num(n, &line)?;
                            if rest.len() < n {
                                // Data still being written.
                                break;
                            }
                            let data = rest[..n].to_vec();
                            rest = &rest[n..];
                            ReadResult::Data(data)
                        }
                        ["eof"] => ReadResult::Eof,
                        ["error", e] => ReadResult::Error((*e).to_owned()),
                        _ => return Err(bad(&line)),
                    };
                    s.steps.push(Step::Read { size, result });
                }
                _ => return Err(bad(&line)),
            }
        }
        Ok(s)
    }

    /// The results of the reads, in order.
    pub fn reads(&self) -> Vec<&ReadResult> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Read { result, .. } => Some(result),
                Step::Wait(_) => None,
            })
            .collect()
    }
}

fn parse_num(s: &str, line: &str) -> Result<usize> {
    s.parse().map_err(|_| bad(line))
}

fn bad(line: &str) -> Error {
    Error::Parse {
        what: "kbdtool output",
        message: format!("unexpected line {line:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_output() {
        let out = b"@@open ok\n@@read 4096 error EAGAIN\n@@wait ok\n@@read 5 data 3\nab\n@@read 9 eof\n@@done\n";
        let s = Session::parse(out).unwrap();
        assert_eq!(s.open, Some(Ok(())));
        assert!(s.done);
        assert_eq!(
            s.steps,
            [
                Step::Read {
                    size: 4096,
                    result: ReadResult::Error("EAGAIN".into())
                },
                Step::Wait(true),
                Step::Read {
                    size: 5,
                    result: ReadResult::Data(b"ab\n".to_vec())
                },
                Step::Read {
                    size: 9,
                    result: ReadResult::Eof
                },
            ]
        );
        assert_eq!(s.reads().len(), 3);

        // Data without a final newline is followed directly by the next marker.
        let s = Session::parse(b"@@open ok\n@@read 3 data 3\nhel@@done\n").unwrap();
        assert_eq!(s.reads(), [&ReadResult::Data(b"hel".to_vec())]);
        assert!(s.done);

        // Still running: the partial data is not a step yet.
        let s = Session::parse(b"@@open ok\n@@read 10 data 6\nabc").unwrap();
        assert!(s.steps.is_empty() && !s.done);

        let s = Session::parse(b"@@open error ENOENT\n").unwrap();
        assert_eq!(s.open, Some(Err("ENOENT".into())));
        assert!(Session::parse(b"garbage\n").is_err());
    }

    #[test]
    fn command_line() {
        assert_eq!(
            Session::command(
                "/dev/kbd0001",
                true,
                &["4096".into(), "wait:/tmp/go".into()]
            ),
            "/tmp/kbdtool session /dev/kbd0001 nonblock 4096 wait:/tmp/go"
        );
    }

    /// The program builds and runs on the host (same architecture as the
    /// guest): a session on a regular file.
    #[test]
    fn builds_and_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("kbdtool");
        std::fs::write(&exe, binary().unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "hello\nworld\n").unwrap();
        let out = Command::new(&exe)
            .args(["session", file.to_str().unwrap(), "3", "100", "100"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let s = Session::parse(&out.stdout).unwrap();
        assert_eq!(s.open, Some(Ok(())));
        assert_eq!(
            s.reads(),
            [
                &ReadResult::Data(b"hel".to_vec()),
                &ReadResult::Data(b"lo\nworld\n".to_vec()),
                &ReadResult::Eof
            ]
        );
        assert!(s.done);
        let out = Command::new(&exe)
            .args(["session", "/nonexistent/x", "1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            Session::parse(&out.stdout).unwrap().open,
            Some(Err("ENOENT".into()))
        );
    }
}
