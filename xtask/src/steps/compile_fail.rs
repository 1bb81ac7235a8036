//! The compile-fail step: a Rust module directory that must NOT build
//! against a kernel tree. It passes only if kbuild's build of the directory
//! fails with exactly the expected rustc error codes (each at least once,
//! no other code and no error without one), and if the same directory then
//! builds with `FIXED=1` (its Kbuild turns that into `--cfg fixed`, the
//! correct code): so the failure is the bug's, not a broken skeleton's.

use super::kbuild::{KernelTools, existing};
use super::module::{dir_name, make_modules};
use crate::exec;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::LazyLock;

/// The errors of a failed build: each rustc error code with the message of
/// its first occurrence, and the errors that carry no code.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Errors {
    /// `(code, message)`, in the order rustc printed them, one per code.
    pub coded: Vec<(String, String)>,
    /// Messages of `error: ...` lines without a code (rustc's closing
    /// "aborting due to" line left out).
    pub uncoded: Vec<String>,
}

impl Errors {
    /// The codes.
    pub fn codes(&self) -> BTreeSet<&str> {
        self.coded.iter().map(|(c, _)| c.as_str()).collect()
    }
}

/// Finds rustc's `error[E0597]: message` and `error: message` lines in a
/// build's output (ANSI colours removed).
pub fn parse_errors(output: &str) -> Errors {
    static ANSI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\x1b\[[0-9;]*m").expect("regex"));
    static ERROR: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^error(?:\[(E[0-9]{4})\])?: (.*)$").expect("regex"));
    let plain = ANSI.replace_all(output, "");
    let mut errors = Errors::default();
    for line in plain.lines() {
        let Some(c) = ERROR.captures(line.trim_end()) else {
            continue;
        };
        let message = c[2].to_owned();
        match c.get(1) {
            Some(code) => {
                if !errors.coded.iter().any(|(seen, _)| seen == code.as_str()) {
                    errors.coded.push((code.as_str().to_owned(), message));
                }
            }
            None if message.starts_with("aborting due to") => {}
            None => errors.uncoded.push(message),
        }
    }
    errors
}

/// Checks the errors of the failed build against the `expected` codes.
pub fn judge(errors: &Errors, expected: &[String]) -> Result<()> {
    let want: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let got = errors.codes();
    let shown: Vec<String> = errors
        .coded
        .iter()
        .map(|(c, m)| format!("error[{c}]: {m}"))
        .chain(errors.uncoded.iter().map(|m| format!("error: {m}")))
        .collect();
    if got.is_empty() && errors.uncoded.is_empty() {
        bail!("the build failed without a rustc error (see the log)");
    }
    if got != want || !errors.uncoded.is_empty() {
        let missing: Vec<&str> = want.difference(&got).copied().collect();
        let extra: Vec<&str> = got.difference(&want).copied().collect();
        bail!(
            "the build failed, but not as expected: expected exactly {}; missing {:?}, \
             unexpected {:?}, {} error(s) without a code:\n  {}",
            expected.join(", "),
            missing,
            extra,
            errors.uncoded.len(),
            shown.join("\n  ")
        );
    }
    Ok(())
}

/// Builds the compile-fail directory `src` against the kernel tree `kdir`,
/// objects under `out` (`out/bug`, `out/fixed`), logs in `log_dir`; returns
/// the errors of the failing build once both builds went as they must.
pub fn check(
    kdir: &Path,
    src: &Path,
    expected: &[String],
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<Errors> {
    let kdir = existing(kdir, "kernel build dir")?;
    let src = existing(src, "compile-fail source")?;
    let name = dir_name(&src);
    std::fs::create_dir_all(log_dir)?;
    let bug_dir = out.join("bug");
    // A previous run's objects would let make skip the compiler.
    let _ = std::fs::remove_dir_all(&bug_dir);
    std::fs::create_dir_all(&bug_dir)?;
    let bug_dir = bug_dir.canonicalize()?;
    let mut c = make_modules(&kdir, &src, &bug_dir, tools);
    let built = exec::captured(&mut c)?;
    let log = log_dir.join(format!("compile-fail-{name}.log"));
    std::fs::write(&log, built.text())
        .with_context(|| format!("cannot write {}", log.display()))?;
    if built.status.success() {
        bail!(
            "{name}: the build succeeded, but it must fail with {}: the compiler no longer \
             rules the bug out (log: {})",
            expected.join(", "),
            log.display()
        );
    }
    let errors = parse_errors(&built.text());
    judge(&errors, expected).with_context(|| format!("{name} (log: {})", log.display()))?;

    let fixed_dir = out.join("fixed");
    let _ = std::fs::remove_dir_all(&fixed_dir);
    std::fs::create_dir_all(&fixed_dir)?;
    let fixed_dir = fixed_dir.canonicalize()?;
    let mut c = make_modules(&kdir, &src, &fixed_dir, tools);
    c.arg("FIXED=1");
    exec::run_logged(
        &mut c,
        &format!("compile-fail: {name}/ with FIXED=1"),
        &log_dir.join(format!("compile-fail-{name}-fixed.log")),
    )
    .with_context(|| {
        format!("{name}: the correct code (FIXED=1) does not build, so the failure proves nothing")
    })?;
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What kbuild printed for the exercise's failing build (shortened).
    const FAILED: &str = "  RUSTC [M] free_before_free_irq.o
\x1b[0m\x1b[1m\x1b[38;5;9merror[E0597]\x1b[0m: `state` does not live long enough
   --> free_before_free_irq.rs:105:47
error[E0505]: cannot move out of `state` because it is borrowed
   --> free_before_free_irq.rs:122:18
error[E0597]: `state` does not live long enough (again)
error: aborting due to 3 previous errors

Some errors have detailed explanations: E0505, E0597.
make[3]: *** [scripts/Makefile.build:343: free_before_free_irq.o] Error 1
";

    fn codes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn codes_are_read_once_each_with_their_first_message() {
        let e = parse_errors(FAILED);
        assert_eq!(
            e.coded,
            [
                ("E0597".into(), "`state` does not live long enough".into()),
                (
                    "E0505".into(),
                    "cannot move out of `state` because it is borrowed".into()
                ),
            ]
        );
        assert!(e.uncoded.is_empty(), "{:?}", e.uncoded);
    }

    #[test]
    fn only_exactly_the_expected_codes_pass() {
        let e = parse_errors(FAILED);
        judge(&e, &codes(&["E0505", "E0597"])).unwrap();
        judge(&e, &codes(&["E0597", "E0505"])).unwrap();
        let err = judge(&e, &codes(&["E0597"])).unwrap_err().to_string();
        assert!(err.contains("unexpected [\"E0505\"]"), "{err}");
        let err = judge(&e, &codes(&["E0505", "E0597", "E0277"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing [\"E0277\"]"), "{err}");
    }

    #[test]
    fn an_error_without_a_code_or_no_error_fails() {
        let other = format!("{FAILED}error: cannot find macro `pin_data` in this scope\n");
        let err = judge(&parse_errors(&other), &codes(&["E0505", "E0597"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 error(s) without a code"), "{err}");
        let err = judge(&parse_errors("make: *** Error 2\n"), &codes(&["E0505"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("without a rustc error"), "{err}");
    }
}
