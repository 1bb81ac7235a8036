//! `cargo xtask watch`: builds once, runs the tests the user names, then on
//! every save under the module directories rebuilds the modules, the
//! initramfs and the artifacts (the build's own steps; the kernel is not
//! touched) and reruns those tests, with one line per round: the result
//! and the time from the save to it. Ctrl-C ends it; a test run in progress
//! is stopped by nextest, whose tests' QEMUs die with them.

use super::build::Runner;
use crate::cli::WatchArgs;
use crate::exec::cmd;
use crate::host::Host;
use crate::plan::{self, Step};
use anyhow::{Context, Result};
use notify_debouncer_full::notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use regex::Regex;
use std::io::{BufRead, BufReader, IsTerminal};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// How long a burst of file events may last to count as one save (editors
/// write a temporary file, rename it and touch it).
const DEBOUNCE: Duration = Duration::from_millis(200);

/// How a round ended.
pub(crate) enum Outcome {
    /// The tests passed; nextest's summary line.
    Pass(String),
    /// Some failed; nextest's summary line.
    Fail(String),
    /// Ctrl-C stopped the run.
    Stopped,
}

/// Watches until Ctrl-C.
pub fn run(args: &WatchArgs) -> Result<()> {
    let host = Host::new()?;
    let kernels = plan::select(&plan::load(&host.repo)?, &args.build.kernels, false)?;
    let dirs: Vec<PathBuf> = plan::load_modules(&host.repo)?
        .into_iter()
        .map(|m| host.repo.join(&m.dir))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("cannot install the Ctrl-C handler")?;
    }
    // Watching starts before the first build: a save during it counts.
    let (tx, rx) = std::sync::mpsc::channel();
    let mut debouncer = new_debouncer(DEBOUNCE, None, tx).context("cannot watch files")?;
    for dir in &dirs {
        debouncer
            .watch(dir, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
    }
    eprintln!("watch: first build (cache: {})", host.cache.root.display());
    let steps = plan::steps(&kernels);
    let mut runner = Runner::new(&host, args.build.jobs);
    runner.run_all(&steps)?;
    let tests = Tests::new(&host, &args.nextest_args)?;
    let start = Instant::now();
    let outcome = tests.run(&stop)?;
    if !say("first run", &outcome, start, None) {
        eprintln!("watch: stopped");
        return Ok(());
    }
    let rebuild: Vec<&Step> = steps
        .iter()
        .filter(|s| matches!(s, Step::Module(_) | Step::Initramfs(_) | Step::Artifacts))
        .collect();
    let shown: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.strip_prefix(&host.repo)
                .unwrap_or(d)
                .display()
                .to_string()
        })
        .collect();
    loop {
        eprintln!(
            "watch: waiting for a save under {}/ (Ctrl-C ends)",
            shown.join("/, ")
        );
        let Some((saved, files)) = next_save(&rx, &stop) else {
            break;
        };
        let names: Vec<String> = files
            .iter()
            .map(|f| {
                f.strip_prefix(&host.repo)
                    .unwrap_or(f)
                    .display()
                    .to_string()
            })
            .collect();
        eprintln!("watch: saved {}", names.join(", "));
        let mut built = Ok(());
        for step in &rebuild {
            built = runner.run(step);
            if built.is_err() || stop.load(Ordering::SeqCst) {
                break;
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let build_time = saved.elapsed();
        if let Err(e) = built {
            println!(
                "watch: BUILD FAILED {:.1} s after the save: {}",
                build_time.as_secs_f64(),
                crate::render(&e).lines().next().unwrap_or_default()
            );
            eprintln!("{e:#}");
            continue;
        }
        let outcome = tests.run(&stop)?;
        if !say("save", &outcome, saved, Some(build_time)) {
            break;
        }
    }
    eprintln!("watch: stopped");
    debouncer.stop();
    Ok(())
}

/// Prints the one line of a round; `false` when the round was stopped.
fn say(what: &str, outcome: &Outcome, since: Instant, build: Option<Duration>) -> bool {
    let total = since.elapsed().as_secs_f64();
    let build = build.map_or_else(String::new, |b| {
        format!(
            " (build {:.1} s, tests {:.1} s)",
            b.as_secs_f64(),
            total - b.as_secs_f64()
        )
    });
    match outcome {
        Outcome::Pass(summary) => {
            println!("watch: PASS {total:.1} s from {what} to result{build}: {summary}");
            true
        }
        Outcome::Fail(summary) => {
            println!("watch: FAIL {total:.1} s from {what} to result{build}: {summary}");
            true
        }
        Outcome::Stopped => false,
    }
}

/// Waits for the next save: the time its first event happened and the
/// files it touched; `None` on Ctrl-C.
fn next_save(
    rx: &Receiver<DebounceEventResult>,
    stop: &AtomicBool,
) -> Option<(Instant, Vec<PathBuf>)> {
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        let batch = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(events)) => events,
            Ok(Err(errors)) => {
                for e in errors {
                    eprintln!("watch: file watch error: {e}");
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return None,
        };
        let mut first: Option<Instant> = None;
        let mut files: Vec<PathBuf> = Vec::new();
        for e in &batch {
            if matches!(e.event.kind, EventKind::Access(_)) {
                continue;
            }
            for p in e.event.paths.iter().filter(|p| is_source(p)) {
                first = Some(first.map_or(e.time, |t| t.min(e.time)));
                if !files.contains(p) {
                    files.push(p.clone());
                }
            }
        }
        if let Some(t) = first {
            return Some((t, files));
        }
    }
}

/// Whether a changed path is a source file, not an editor's temporary file,
/// a backup or the generated rust-project.json.
fn is_source(path: &Path) -> bool {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
        return false;
    };
    !(name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
        || name == "rust-project.json")
}

/// The nextest run of every round.
pub(crate) struct Tests {
    nextest: PathBuf,
    repo: PathBuf,
    artifacts: PathBuf,
    logs: PathBuf,
    args: Vec<String>,
}

static SUMMARY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*Summary \[[^\]]*\]\s*(.*)$").expect("valid regex"));
static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*m").expect("valid regex"));

impl Tests {
    /// nextest (installed if missing, as `cargo xtask test` does) and the
    /// test packages.
    pub(crate) fn new(host: &Host, args: &[String]) -> Result<Self> {
        let nextest = super::test::test_tools(host)?;
        Ok(Self {
            nextest,
            repo: host.repo.clone(),
            artifacts: host.cache.artifacts(),
            logs: host.cache.logs().join("vm"),
            args: args.to_vec(),
        })
    }

    /// One nextest run, its output passed through; Ctrl-C (or SIGTERM) is
    /// passed on to nextest, which stops its tests (and their QEMUs die
    /// with them).
    pub(crate) fn run(&self, stop: &AtomicBool) -> Result<Outcome> {
        let mut c = cmd(&self.nextest, ["nextest", "run", "--workspace"]);
        if std::io::stderr().is_terminal() {
            c.arg("--color=always");
        }
        c.args(&self.args)
            .current_dir(&self.repo)
            .env(vm_tests::artifacts::ARTIFACTS_ENV, &self.artifacts)
            .env(vm_tests::artifacts::LOG_DIR_ENV, &self.logs)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C on the terminal reaches this
            // process only, which passes it on once (a second SIGINT makes
            // nextest kill its tests at once instead of stopping them).
            .process_group(0);
        // SAFETY: prctl(2) only, between fork and exec: nextest is told to
        // stop its tests if this process dies without passing Ctrl-C on.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = c
            .spawn()
            .with_context(|| format!("cannot run {}", self.nextest.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let pump = std::thread::spawn(move || {
            let mut summary = None;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let plain = ANSI.replace_all(&line, "");
                if let Some(c) = SUMMARY.captures(&plain) {
                    summary = Some(c[1].trim().to_owned());
                }
            }
            summary
        });
        let mut signalled = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if stop.load(Ordering::SeqCst) && !signalled {
                signalled = true;
                if let Ok(pid) = i32::try_from(child.id()) {
                    // SAFETY: kill(2) on our own child's pid, which has not
                    // been reaped yet (try_wait above saw it running).
                    unsafe { libc::kill(pid, libc::SIGINT) };
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let summary = pump.join().unwrap_or(None);
        if stop.load(Ordering::SeqCst) {
            return Ok(Outcome::Stopped);
        }
        let summary = summary.unwrap_or_else(|| format!("nextest exited with {status}"));
        Ok(if status.success() {
            Outcome::Pass(summary)
        } else {
            Outcome::Fail(format!("{summary} (VM logs in {})", self.logs.display()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_temporaries_are_not_saves() {
        for p in ["module/decoder.rs", "module/Kbuild", "module/sub/x.rs"] {
            assert!(is_source(Path::new(p)), "{p}");
        }
        for p in [
            "module/.decoder.rs.swp",
            "module/decoder.rs~",
            "module/4913",
            "module/.#decoder.rs",
            "module/#decoder.rs#",
            "module/rust-project.json",
        ] {
            assert!(!is_source(Path::new(p)), "{p}");
        }
    }

    #[test]
    fn the_summary_line_is_found_through_colours() {
        let line = "\x1b[32;1m     Summary\x1b[0m [  12.345s] \x1b[1m1\x1b[0m test run: \x1b[1m1\x1b[0m \x1b[32;1mpassed\x1b[0m, \x1b[1m168\x1b[0m \x1b[33;1mskipped\x1b[0m";
        let plain = ANSI.replace_all(line, "");
        assert_eq!(
            &SUMMARY.captures(&plain).unwrap()[1],
            "1 test run: 1 passed, 168 skipped"
        );
    }
}
