//! Interactive mode: a console on a running [`Machine`], for debugging.
//!
//! [`Machine::interact`] reads lines from stdin until `:quit` (or end of
//! input). A plain line runs in the guest as a shell command (through
//! [`Machine::execute`]) and its exit status and output are printed; a line
//! starting with `:` is a harness command ([`Command`]):
//!
//! ```text
//! ls /sys/bus/acpi/devices          a guest shell command
//! :key a                            press a key (QMP send-key)
//! :key ctrl-alt-delete              press a chord (down in order, up in reverse)
//! :key ctrl--                       ctrl and minus (the key - is minus)
//! :type Hello, world!               type text on a US layout
//! :down up | :up up                 hold a key down / release it (input-send-event)
//! :irq [N]                          the /proc/interrupts line of IRQ N (default 1)
//! :log [N]                          the last N kernel log lines (default 20)
//! :console [N]                      the last N serial console lines (default 20)
//! :help                             this list
//! :quit                             leave (the caller then shuts the VM down)
//! ```
//!
//! Three ways in:
//! * from the command line: `cargo run -p vm-tests --example interactive --
//!   [--no-ssdt] [--ssdt FILE] [--q35] [--append ARGS]`;
//! * from a test: call `machine.interact()` where you want to look around;
//! * on failure: run a test with [`INTERACTIVE_ENV`]`=1` (`LAB_INTERACTIVE=1
//!   cargo test -p vm-tests --test acceptance NAME -- --nocapture`). A test
//!   written with [`run_test`](crate::run_test) that fails (error or panic)
//!   hands its still running machine to [`Machine::interact`] before the VM
//!   is killed; a [`Machine`] dropped while its thread panics does the same.
//!   Use `cargo test` for this, not nextest: nextest gives tests no terminal
//!   on stdin.

use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};

use crate::{Error, Machine, console};

/// Environment variable: `1` makes failing tests open [`Machine::interact`].
pub const INTERACTIVE_ENV: &str = "LAB_INTERACTIVE";

/// Default number of lines shown by `:log` and `:console`.
pub const DEFAULT_TAIL: usize = 20;

/// Help text of the interactive mode.
pub const HELP: &str = "  <shell command>     run it in the guest, print its exit status and output
  :key KEY[-KEY..]    press a key or a chord (QMP send-key): :key a, :key ctrl-alt-delete,
                      :key ctrl-- (the key - is minus)
  :type TEXT          type TEXT on a US layout, one key press per character
  :down KEY, :up KEY  a key goes down and stays down / goes up (input-send-event)
  :irq [N]            the /proc/interrupts line of IRQ N (default 1)
  :log [N]            the last N lines of the kernel log (default 20)
  :console [N]        the last N lines of the serial console (default 20)
  :help               this help
  :quit               leave (also Ctrl-D)";

/// One line of input of the interactive mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A guest shell command.
    Run(String),
    /// `:key KEY`: a key or a chord (`ctrl-alt-delete`).
    Key(String),
    /// `:type TEXT`: text typed key by key (the text after one space, verbatim).
    Type(String),
    /// `:down KEY`.
    Down(String),
    /// `:up KEY`.
    Up(String),
    /// `:irq [N]`.
    Irq(u32),
    /// `:log [N]`.
    Log(usize),
    /// `:console [N]`.
    Console(usize),
    /// `:help`.
    Help,
    /// `:quit`.
    Quit,
}

/// Why a line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (:help lists the commands)", self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses one input line. `Ok(None)` for a blank line.
///
/// A line whose first non-blank character is `:` is a harness command, any
/// other line a guest shell command (kept verbatim, only the trailing line
/// end removed). Command names may be abbreviated to their first letter
/// (`:k a`, `:t hi`, `:q`), except `:down`/`:up` and `:console`.
pub fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim_end_matches(['\n', '\r']);
    let trimmed = line.trim_start();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let Some(rest) = trimmed.strip_prefix(':') else {
        return Ok(Some(Command::Run(line.to_owned())));
    };
    let (name, arg) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let err = |m: String| Err(ParseError(m));
    let one_word = |what: &str| -> Result<String, ParseError> {
        let mut words = arg.split_whitespace();
        match (words.next(), words.next()) {
            (Some(w), None) => Ok(w.to_owned()),
            (None, _) => Err(ParseError(format!(":{name} needs a {what}"))),
            (Some(_), Some(_)) => Err(ParseError(format!(
                ":{name} takes one {what}, got {:?}",
                arg.trim()
            ))),
        }
    };
    let number = |default: usize| -> Result<usize, ParseError> {
        let arg = arg.trim();
        if arg.is_empty() {
            return Ok(default);
        }
        arg.parse()
            .map_err(|_| ParseError(format!(":{name} takes a number, got {arg:?}")))
    };
    let cmd = match name {
        "key" | "k" => Command::Key(one_word("key name or chord (a, ret, ctrl-alt-delete)")?),
        "type" | "t" => {
            if arg.is_empty() {
                return err(":type needs text".into());
            }
            Command::Type(arg.to_owned())
        }
        "down" => Command::Down(one_word("key name")?),
        "up" => Command::Up(one_word("key name")?),
        "irq" | "i" => {
            let n = number(1)?;
            Command::Irq(
                u32::try_from(n).map_err(|_| ParseError(format!("IRQ {n} is out of range")))?,
            )
        }
        "log" | "l" => Command::Log(number(DEFAULT_TAIL)?),
        "console" => Command::Console(number(DEFAULT_TAIL)?),
        "help" | "h" | "?" => Command::Help,
        "quit" | "q" | "exit" => Command::Quit,
        "" => return err("a lone ':' is not a command".into()),
        other => return err(format!("unknown command :{other}")),
    };
    Ok(Some(cmd))
}

/// Whether [`INTERACTIVE_ENV`] asks for the interactive mode on failure.
pub fn enabled() -> bool {
    std::env::var(INTERACTIVE_ENV).is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// The last `n` lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    console::last(&text.lines().collect::<Vec<_>>(), n).join("\n")
}

impl Machine {
    /// Opens the interactive mode on stdin and stdout (see the
    /// [module docs](crate::interact)) and returns on `:quit` or end of
    /// input. The machine keeps running; errors of single commands are
    /// printed, not returned.
    pub fn interact(&mut self) -> io::Result<()> {
        let stdin = io::stdin();
        let prompt = stdin.is_terminal();
        // Written through io::stdout() directly (not println!), so the
        // test harness's output capture does not swallow it.
        self.interact_with(stdin.lock(), io::stdout(), prompt)
    }

    /// [`Machine::interact`] on any input and output; `prompt` prints a
    /// prompt before each line (for terminals).
    pub fn interact_with(
        &mut self,
        input: impl BufRead,
        mut out: impl Write,
        prompt: bool,
    ) -> io::Result<()> {
        writeln!(
            out,
            "vm-tests: interactive mode on {} (accelerator {})\n  console log: {}\n  \
             harness log: {}\n{HELP}",
            self.name(),
            self.accel(),
            self.console_log_path().display(),
            self.harness_log_path().display(),
        )?;
        let mut lines = input.lines();
        loop {
            if prompt {
                write!(out, "{}> ", self.name())?;
            }
            out.flush()?;
            let Some(line) = lines.next() else {
                writeln!(out)?;
                break;
            };
            let cmd = match parse(&line?) {
                Ok(Some(cmd)) => cmd,
                Ok(None) => continue,
                Err(e) => {
                    writeln!(out, "error: {e}")?;
                    continue;
                }
            };
            if cmd == Command::Quit {
                break;
            }
            match self.run_command(&cmd) {
                Ok(text) => {
                    if !text.is_empty() {
                        writeln!(out, "{}", text.trim_end_matches('\n'))?;
                    }
                }
                Err(e) => writeln!(out, "error: {e}")?,
            }
        }
        out.flush()
    }

    /// Runs one interactive command and returns what to print.
    fn run_command(&mut self, cmd: &Command) -> Result<String, Error> {
        Ok(match cmd {
            Command::Run(sh) => {
                let (status, output) = self.execute(sh)?;
                let mut text = output;
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("[exit status {status}]"));
                text
            }
            Command::Key(key) => {
                self.send_key(key)?;
                format!("pressed {key}")
            }
            Command::Type(text) => {
                self.send_chars(text)?;
                format!("typed {text:?}")
            }
            Command::Down(key) => {
                self.key_down(key)?;
                format!("{key} is down")
            }
            Command::Up(key) => {
                self.key_up(key)?;
                format!("{key} is up")
            }
            Command::Irq(n) => {
                let ints = self.interrupts()?;
                match ints.irq(*n) {
                    Some(l) => format!(
                        "IRQ {n}: total {} (per CPU {:?}), chip {}, {}, actions [{}]",
                        l.total(),
                        l.per_cpu,
                        l.chip.as_deref().unwrap_or("?"),
                        l.hwirq_trigger.as_deref().unwrap_or("?"),
                        l.actions.join(", ")
                    ),
                    None => format!("IRQ {n} is not in /proc/interrupts (no handler registered)"),
                }
            }
            Command::Log(n) => last_lines(&self.kernel_log()?, *n),
            Command::Console(n) => self.console_tail(*n),
            Command::Help => HELP.to_owned(),
            Command::Quit => String::new(),
        })
    }
}

/// Hands a failed test's machine to the interactive mode.
pub(crate) fn interact_on_failure(machine: &mut Machine) {
    say(&format!(
        "vm-tests: {INTERACTIVE_ENV} is set: the VM {} is still running; :quit ends the test",
        machine.name()
    ));
    if !io::stdin().is_terminal() {
        say(
            "vm-tests: stdin is not a terminal, reading commands from it anyway (nextest gives \
             tests no stdin: use `cargo test ... -- --nocapture` to interact)",
        );
    }
    if let Err(e) = machine.interact() {
        say(&format!("vm-tests: interactive mode ended: {e}"));
    }
}

/// Writes a line to the real stderr (`eprintln!` would be held back by the
/// test harness's output capture until the test ends).
pub(crate) fn say(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse(line)
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .unwrap_or_else(|| panic!("{line:?}: blank"))
    }

    fn bad(line: &str) -> String {
        match parse(line) {
            Err(e) => e.0,
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
        }
    }

    #[test]
    fn blank_lines_are_nothing() {
        for line in ["", "   ", "\n", " \t\r\n"] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn plain_lines_run_verbatim() {
        assert_eq!(
            ok("cat /proc/interrupts\n"),
            Command::Run("cat /proc/interrupts".into())
        );
        // Leading blanks, quotes and colons inside are the shell's business.
        assert_eq!(ok("  echo 'a:b'  "), Command::Run("  echo 'a:b'  ".into()));
        assert_eq!(ok("x=:key"), Command::Run("x=:key".into()));
    }

    #[test]
    fn keys_and_chords() {
        assert_eq!(ok(":key a"), Command::Key("a".into()));
        assert_eq!(
            ok(":key ctrl-alt-delete"),
            Command::Key("ctrl-alt-delete".into())
        );
        assert_eq!(ok("  :k   ret  "), Command::Key("ret".into()));
        assert_eq!(ok(":down up"), Command::Down("up".into()));
        assert_eq!(ok(":up shift"), Command::Up("shift".into()));
        assert!(bad(":key").contains("needs a key"));
        assert!(bad(":key a b").contains("takes one key"));
        assert!(bad(":down").contains("needs a key"));
    }

    #[test]
    fn type_keeps_the_text_verbatim() {
        assert_eq!(ok(":type hello"), Command::Type("hello".into()));
        // One separating space is removed, the rest is kept.
        assert_eq!(
            ok(":type  Hello, World!  "),
            Command::Type(" Hello, World!  ".into())
        );
        assert_eq!(ok(":t a:b\n"), Command::Type("a:b".into()));
        assert!(bad(":type").contains("needs text"));
    }

    #[test]
    fn numbers_with_defaults() {
        assert_eq!(ok(":irq"), Command::Irq(1));
        assert_eq!(ok(":irq 9"), Command::Irq(9));
        assert_eq!(ok(":log"), Command::Log(DEFAULT_TAIL));
        assert_eq!(ok(":l 50"), Command::Log(50));
        assert_eq!(ok(":console"), Command::Console(DEFAULT_TAIL));
        assert_eq!(ok(":console 5"), Command::Console(5));
        assert!(bad(":irq one").contains("takes a number"));
        assert!(bad(":log -3").contains("takes a number"));
        assert!(bad(":irq 99999999999").contains("out of range"));
    }

    #[test]
    fn help_quit_and_unknown() {
        assert_eq!(ok(":help"), Command::Help);
        assert_eq!(ok(":?"), Command::Help);
        assert_eq!(ok(":quit"), Command::Quit);
        assert_eq!(ok(":q"), Command::Quit);
        assert!(bad(":frobnicate").contains("unknown command :frobnicate"));
        assert!(bad(":").contains("lone"));
        let e = parse(":nope").unwrap_err().to_string();
        assert!(e.contains(":help"), "{e}");
    }

    #[test]
    fn tails() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\nb", 10), "a\nb");
        assert_eq!(last_lines("", 3), "");
    }
}
