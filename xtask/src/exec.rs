//! Running external tools: one place that logs their output to a file, shows
//! progress, and turns "not found" and failures into errors that say what to
//! do.

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many lines of a failed command's log are shown on the terminal.
const TAIL_LINES: usize = 40;

/// Names the Debian package that provides `tool`, for error messages. The
/// LLVM tools carry their version suffix (`clang-19`, `ld.lld-19`) into the
/// package name, so no LLVM version is written here.
pub fn package_of(tool: &str) -> String {
    let base = tool.rsplit('/').next().unwrap_or(tool);
    // `-19` of `clang-19`, `llvm-ar-19`; empty for unsuffixed names.
    let suffix = base
        .rfind('-')
        .map(|i| &base[i..])
        .filter(|s| s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("");
    let package = match base {
        "make" | "gcc" | "cc" => "build-essential",
        "iasl" => "acpica-tools",
        "qemu-system-x86_64" => "qemu-system-x86",
        "busybox" => "busybox-static",
        "flex" => "flex",
        "bison" => "bison",
        "bc" => "bc",
        "dpkg-deb" | "dpkg-query" => "dpkg",
        "apt-get" | "apt-cache" => "apt",
        "tar" => "tar",
        "xz" => "xz-utils",
        "perl" => "perl",
        "python3" => "python3",
        "nix-instantiate" => "nix-bin",
        "cargo" | "rustup" => "rustup",
        b if b.starts_with("clang") => return format!("clang{suffix}"),
        b if b.starts_with("ld.lld") => return format!("lld{suffix}"),
        b if b.starts_with("llvm") => return format!("llvm{suffix}"),
        _ => "(unknown package)",
    };
    package.to_owned()
}

/// Error for a tool that is not on PATH.
pub fn missing_tool(tool: &str) -> anyhow::Error {
    anyhow!(
        "`{tool}` was not found on PATH. It comes from the Debian package {pkg}: run \
         `cargo xtask provision` (or `apt-get install {pkg}`); under Nix, add it to the derivation's nativeBuildInputs",
        pkg = package_of(tool)
    )
}

/// Finds `tool` on PATH (or accepts a path with a slash if it exists).
pub fn which(tool: &str) -> Option<PathBuf> {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    })
}

/// Returns `tool`'s path or the "missing tool" error.
pub fn require(tool: &str) -> Result<PathBuf> {
    which(tool).ok_or_else(|| missing_tool(tool))
}

/// Human readable rendering of a command line.
pub fn display(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// The error for a program that could not be started: a missing tool names
/// its package, anything else the program and the reason.
fn spawn_error(cmd: &Command, e: &std::io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy();
    if e.kind() == std::io::ErrorKind::NotFound {
        missing_tool(&program)
    } else {
        anyhow!("cannot run {program}: {e}")
    }
}

/// What a command run by [`captured`] printed, and how it ended.
#[derive(Debug)]
pub struct Captured {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Captured {
    /// Standard output and standard error, in that order.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `cmd` quietly (stdin from /dev/null) and returns what it printed
/// whatever its exit status: for tools whose failure is itself the answer
/// (iasl's diagnostics, dpkg-query on unknown packages, linters).
pub fn captured(cmd: &mut Command) -> Result<Captured> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(cmd, &e))?;
    Ok(Captured {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs `cmd` quietly and returns its stdout; on failure the error holds
/// stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = captured(cmd)?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}):\n{}{}",
            display(cmd),
            out.status,
            out.stdout,
            out.stderr
        );
    }
    Ok(out.stdout)
}

/// Runs `cmd` with its output going to `log` (and to the terminal as a one
/// line progress display). On failure, the last lines of the log are part of
/// the error, with the log's path.
pub fn run_logged(cmd: &mut Command, title: &str, log: &Path) -> Result<Duration> {
    run_with_progress(cmd, title, log, None).map(|(elapsed, _)| elapsed)
}

/// How a long build's progress is counted: which of its output lines each
/// report one unit done (kbuild's `  CC      init/main.o`), how many units
/// the build is expected to have, and what they are called.
pub struct Units<'a> {
    /// Whether an output line reports one unit done.
    pub is_unit: fn(&str) -> bool,
    /// The expected count (what the previous build of the same thing
    /// counted; for a first kernel build kernels.toml's `objects`), if
    /// known: then the display is a bar.
    pub expected: Option<u64>,
    /// The units' name in messages ("objects").
    pub name: &'a str,
}

/// [`run_logged`] for a long build whose output lines count `units`: a bar
/// of units done (a counter when no total is known) in a terminal, and a
/// plain progress line every [`PLAIN_PROGRESS_EVERY`] otherwise (CI).
/// Returns the time taken and the units counted.
pub fn run_counted(
    cmd: &mut Command,
    title: &str,
    log: &Path,
    units: &Units,
) -> Result<(Duration, u64)> {
    run_with_progress(cmd, title, log, Some(units))
}

/// How often a build counted in units prints a plain progress line when
/// stderr is not an interactive terminal.
pub const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// A plain progress line: `done` units called `name`, of `expected` (if
/// known), after `elapsed`.
fn progress_line(
    title: &str,
    done: u64,
    name: &str,
    expected: Option<u64>,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs();
    match expected {
        Some(total) if total > 0 => format!(
            "  {title}: {done}/{total} {name} ({}%) after {secs} s",
            (done * 100 / total).min(100)
        ),
        _ => format!("  {title}: {done} {name} after {secs} s"),
    }
}

fn run_with_progress(
    cmd: &mut Command,
    title: &str,
    log: &Path,
    units: Option<&Units>,
) -> Result<(Duration, u64)> {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    }
    let mut file =
        File::create(log).with_context(|| format!("cannot create log {}", log.display()))?;
    writeln!(file, "$ {}", display(cmd))?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(cmd, &e))?;

    let bar = match units {
        Some(u) => counter(title, u),
        None => progress(title),
    };
    // Only where no bar is drawn: plain lines.
    let plain = !console_is_interactive();
    let is_unit = units.map(|u| u.is_unit);
    let unit_name = units.map_or(String::new(), |u| u.name.to_owned());
    let expected = units.and_then(|u| u.expected);
    let file = Arc::new(Mutex::new(file));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let last_plain = Arc::new(Mutex::new(Instant::now()));
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let file = Arc::clone(&file);
        let bar = bar.clone();
        let done = Arc::clone(&done);
        let last_plain = Arc::clone(&last_plain);
        let (title, unit_name) = (title.to_owned(), unit_name.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Ok(mut f) = file.lock() {
                    let _ = writeln!(f, "{line}");
                }
                if is_unit.is_some_and(|is_unit| is_unit(&line)) {
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if bar.length().is_some_and(|len| n > len) {
                        bar.set_length(n);
                    }
                    bar.set_position(n);
                    if plain
                        && let Ok(mut last) = last_plain.lock()
                        && last.elapsed() >= PLAIN_PROGRESS_EVERY
                    {
                        *last = Instant::now();
                        eprintln!(
                            "{}",
                            progress_line(&title, n, &unit_name, expected, start.elapsed())
                        );
                    }
                }
                bar.set_message(line.trim().chars().take(100).collect::<String>());
            }
        })
    })
    .collect();
    let status = child.wait()?;
    for p in pumps {
        let _ = p.join();
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    if !status.success() {
        let tail = tail_of(log, TAIL_LINES);
        bail!(
            "{title} failed ({status}). Last lines of {}:\n{tail}",
            log.display()
        );
    }
    let counted = done.load(std::sync::atomic::Ordering::Relaxed);
    match units {
        Some(u) => eprintln!(
            "  {title}: done in {:.1} s ({counted} {})",
            elapsed.as_secs_f64(),
            u.name
        ),
        None => eprintln!("  {title}: done in {:.1} s", elapsed.as_secs_f64()),
    }
    Ok((elapsed, counted))
}

/// A bar of units done out of the expected count (a counter when none is
/// known), titled; quiet (no redraws) when stderr is not a terminal, where
/// the plain lines of [`run_counted`] report progress instead.
fn counter(title: &str, units: &Units) -> ProgressBar {
    let template = match units.expected {
        Some(_) => format!(
            "  {{prefix}} [{{elapsed}}] {{bar:30}} {{pos}}/{{len}} {} {{wide_msg}}",
            units.name
        ),
        None => format!(
            "  {{spinner}} {{prefix}} [{{elapsed}}] {{pos}} {} {{wide_msg}}",
            units.name
        ),
    };
    let bar = match units.expected {
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    styled(bar, &template, title)
}

/// A spinner with a title; quiet (no redraws) when stderr is not a terminal.
pub fn progress(title: &str) -> ProgressBar {
    styled(
        ProgressBar::new_spinner(),
        "  {spinner} {prefix} [{elapsed}] {wide_msg}",
        title,
    )
}

/// `bar` drawn with `template` and titled `title`: redrawn on a terminal,
/// hidden otherwise (where one `<title> ...` line says it started).
fn styled(bar: ProgressBar, template: &str, title: &str) -> ProgressBar {
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(title.to_string());
    if console_is_interactive() {
        bar.enable_steady_tick(Duration::from_millis(120));
    } else {
        eprintln!("  {title} ...");
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

fn console_is_interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// The last `n` lines of a text file (empty if unreadable).
pub fn tail_of(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd` with the terminal as its stdio (an interactive program such
/// as QEMU with its console, or the test runner) and returns its status.
pub fn run_attached(cmd: &mut Command) -> Result<std::process::ExitStatus> {
    cmd.status().map_err(|e| spawn_error(cmd, &e))
}

/// Builds a `Command` for `program` with arguments.
pub fn cmd<I, S>(program: impl AsRef<OsStr>, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = Command::new(program);
    c.args(args);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_names_the_package_and_the_fix() {
        let msg = missing_tool("iasl").to_string();
        assert!(msg.contains("acpica-tools"), "{msg}");
        assert!(msg.contains("cargo xtask provision"), "{msg}");
        assert_eq!(package_of("/usr/bin/ld.lld-19"), "lld-19");
        assert_eq!(package_of("llvm-objcopy-18"), "llvm-18");
        assert_eq!(package_of("clang"), "clang");
        assert_eq!(package_of("llvm-objcopy"), "llvm");
    }

    #[test]
    fn failing_command_reports_its_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let err = run_logged(
            &mut cmd("sh", ["-c", "echo first; echo boom >&2; exit 3"]),
            "demo step",
            &log,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("demo step failed"), "{err}");
        assert!(err.contains("boom"), "{err}");
        assert!(err.contains(&log.display().to_string()), "{err}");
    }

    #[test]
    fn absent_program_is_a_missing_tool_error() {
        let err = output(&mut cmd("lab-no-such-tool-xyz", ["x"])).unwrap_err();
        assert!(err.to_string().contains("was not found on PATH"), "{err}");
        let err = captured(&mut cmd("lab-no-such-tool-xyz", ["x"])).unwrap_err();
        assert!(err.to_string().contains("was not found on PATH"), "{err}");
    }

    #[test]
    fn captured_keeps_the_output_of_a_failing_command() {
        let out = captured(&mut cmd("sh", ["-c", "echo out; echo err >&2; exit 1"])).unwrap();
        assert!(!out.status.success());
        assert_eq!(out.text(), "out\nerr\n");
    }
}
