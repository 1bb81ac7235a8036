//! KUnit in the lab's kernel: proves that the pinned toolchain builds a Rust
//! kernel that is correct, not just one that links, and runs the driver's
//! own KUnit tests.
//!
//! Boots the lab's kernel (kernel/lab.config plus kernel/kunit.config, where
//! KUnit is built in and dormant) and initramfs with `kunit.enable=1`, and
//! checks that without it no suite runs. With it, the kernel runs
//! its built-in Rust suites (the `kernel` crate's doctests and its
//! `#[kunit_tests]` suites) at boot; /init's `insmod` then runs the module's
//! suite `rust_keyboard_decoder` (module/decoder.rs). The KTAP both print on
//! the console is parsed ([`vm_tests::ktap`]) and every suite and test case
//! must pass. No SSDT is given: the test is about KUnit, not the device.
//!
//! Without `LAB_ARTIFACTS` the test fails and says so; it is never skipped.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use vm_tests::ktap::{Ktap, Outcome, Test, Totals};
use vm_tests::{Artifacts, VmConfig, run_test};

/// The suites the KUnit kernel must run, with what enables them.
const EXPECTED_SUITES: [&str; 10] = [
    // CONFIG_RUST_KERNEL_DOCTESTS: the `kernel` crate's documentation examples.
    "rust_doctests_kernel",
    // CONFIG_RUST_ALLOCATOR_KUNIT_TEST
    "rust_allocator",
    // CONFIG_RUST_KVEC_KUNIT_TEST
    "rust_kvec",
    // CONFIG_RUST_BITMAP_KUNIT_TEST
    "rust_kernel_bitmap",
    // CONFIG_RUST_KUNIT_SELFTEST
    "rust_kernel_kunit",
    // CONFIG_RUST_STR_KUNIT_TEST
    "rust_kernel_str",
    // CONFIG_RUST_ATOMICS_KUNIT_TEST
    "rust_atomics",
    // CONFIG_RUST_BITFIELD_KUNIT_TEST
    "rust_kernel_bitfield",
    // module/decoder.rs, run when rust_keyboard.ko is loaded.
    DECODER_SUITE,
    // module/ring.rs (the hard-IRQ to bottom-half ring), likewise.
    "rust_keyboard_ring",
];

/// Wakes the dormant KUnit of the lab's kernel (kernel/kunit.config sets
/// CONFIG_KUNIT_DEFAULT_ENABLED=n).
const KUNIT_ENABLE: &str = "kunit.enable=1";

/// The module's suite.
const DECODER_SUITE: &str = "rust_keyboard_decoder";

/// Test cases skipped by design: KUnit's own Rust selftest has a case that
/// is always compiled out (`#[cfg(not(all()))]`, rust/kernel/kunit.rs), to
/// check that such a case reports SKIP. Any other skip fails the test.
const EXPECTED_SKIPS: [(&str, &str); 1] =
    [("rust_kernel_kunit", "rust_test_kunit_always_disabled_test")];

/// A floor for the number of Rust test cases. Linux 7.2.12 runs 366 (323 of
/// them doctests); far fewer means suites or doctests were compiled out.
const MIN_RUST_CASES: usize = 300;

/// The module's decoder source: its `#[test]`s are the suite's cases.
const DECODER_SOURCE: &str = include_str!("../../module/decoder.rs");

/// How long the guest may take to boot, run the built-in suites (well under
/// a second under TCG), load the module (which runs its suite) and become
/// ready.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

/// Console lines shown with a failure.
const TAIL: usize = 60;

/// Number of `#[test]` functions in the decoder source.
fn declared_decoder_cases() -> usize {
    DECODER_SOURCE
        .lines()
        .filter(|l| l.trim() == "#[test]")
        .count()
}

/// `"a.b (console line N)"` for every skipped suite or case not in
/// [`EXPECTED_SKIPS`].
fn unexpected_skips(ktap: &Ktap) -> Vec<String> {
    let mut out = Vec::new();
    for suite in ktap.suites() {
        if suite.skipped() {
            out.push(format!("{} (console line {})", suite.name, suite.line));
        }
        for case in &suite.subtests {
            let expected = EXPECTED_SKIPS.contains(&(suite.name.as_str(), case.name.as_str()));
            if case.skipped() && !expected {
                out.push(format!(
                    "{}.{} (console line {})",
                    suite.name, case.name, case.line
                ));
            }
        }
    }
    out
}

#[test]
fn rust_kunit_suites_pass() -> Result<()> {
    let declared = declared_decoder_cases();
    ensure!(
        declared > 0,
        "module/decoder.rs declares no #[test] in its #[kunit_tests] suite"
    );

    let artifacts = Artifacts::from_env()?;
    let config = VmConfig::new(artifacts.kernel()?, artifacts.initramfs()?)?
        .with_append(KUNIT_ENABLE)
        .with_boot_timeout(BOOT_TIMEOUT);

    let ktap = run_test(config, |m| -> Result<Ktap> {
        // `Machine::start` returned after /init printed LAB-INIT-READY, which
        // it does after `insmod` returned, and `insmod` returns after the
        // module's suite ran: all the KTAP is on the console by now. A missing
        // result line shows up below as a problem or a missing suite.
        let ktap = Ktap::parse(&m.console_text());
        let tail = || m.console_tail(TAIL);

        if ktap.runs.is_empty() {
            bail!("no KTAP on the console\nlast console lines:\n{}", tail());
        }
        if !ktap.problems.is_empty() {
            bail!(
                "incomplete KUnit output:\n  {}\nlast console lines:\n{}",
                join(ktap.problems.iter().map(ToString::to_string)),
                tail()
            );
        }
        let failures = ktap.failures();
        if !failures.is_empty() {
            bail!(
                "{} KUnit test(s) failed:\n  {}\nlast console lines:\n{}",
                failures.len(),
                join(failures),
                tail()
            );
        }
        let missing: Vec<&str> = EXPECTED_SUITES
            .into_iter()
            .filter(|name| ktap.suite(name).is_none())
            .collect();
        if !missing.is_empty() {
            bail!(
                "KUnit suites did not run: {}\nsuites that ran: {}",
                missing.join(", "),
                join(ktap.suites().map(|s| s.name.clone()))
            );
        }
        let skips = unexpected_skips(&ktap);
        if !skips.is_empty() {
            bail!(
                "KUnit tests were skipped (compiled out?):\n  {}\nlast console lines:\n{}",
                join(skips),
                tail()
            );
        }
        Ok(ktap)
    })?;

    // Every suite reported `ok`: no failures, no skips left, so this holds.
    for suite in ktap.suites() {
        ensure!(
            suite.outcome == Some(Outcome::Pass),
            "suite {} reported {:?}",
            suite.name,
            suite.outcome
        );
    }

    let decoder = ktap.suite(DECODER_SUITE).context("checked above")?;
    let decoder_passed = decoder.subtests.iter().filter(|t| t.passed()).count();
    ensure!(
        decoder.subtests.len() >= declared && decoder_passed == decoder.subtests.len(),
        "{DECODER_SUITE} ran {} cases ({decoder_passed} passed), module/decoder.rs declares {declared}: {}",
        decoder.subtests.len(),
        join(decoder.subtests.iter().map(|t| t.name.clone()))
    );

    let rust: Vec<&Test> = ktap
        .suites()
        .filter(|s| s.name.starts_with("rust_"))
        .collect();
    let rust_totals = Totals::of(rust.iter().copied());
    let all = ktap.totals();
    ensure!(
        rust_totals.cases >= MIN_RUST_CASES,
        "only {} Rust KUnit cases ran, expected at least {MIN_RUST_CASES}: {rust_totals}",
        rust_totals.cases
    );
    ensure!(rust_totals.passed + rust_totals.skipped == rust_totals.cases);

    println!("KUnit (all suites): {all}");
    println!("KUnit (Rust suites): {rust_totals}");
    println!(
        "KUnit: {DECODER_SUITE}: {decoder_passed}/{} passed ({declared} declared in module/decoder.rs)",
        decoder.subtests.len()
    );
    for suite in &rust {
        println!(
            "  {:<24} {:>4} cases, {}",
            suite.name,
            suite.subtests.len(),
            suite
                .outcome
                .as_ref()
                .map_or("-".into(), ToString::to_string)
        );
    }
    Ok(())
}

/// Joins items, one per line, for messages.
fn join(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join("\n  ")
}

/// Without `kunit.enable=1` the lab's kernel runs no suite, neither the
/// built-in ones at boot nor the module's at insmod: KUnit in the kernel
/// costs the other tests nothing but its size.
#[test]
fn kunit_is_dormant_without_kunit_enable() -> Result<()> {
    let artifacts = Artifacts::from_env()?;
    let config = VmConfig::new(artifacts.kernel()?, artifacts.initramfs()?)?;
    run_test(config, |m| -> Result<()> {
        let console = m.console_text();
        // KUnit still prints a KTAP header when the module's suite is
        // registered at insmod, then says it is disabled: no suite may have
        // run, i.e. no suite result and no case result.
        let ktap = Ktap::parse(&console);
        let suites: Vec<String> = ktap.suites().map(|s| s.name.clone()).collect();
        ensure!(
            suites.is_empty(),
            "KUnit ran without {KUNIT_ENABLE}: {}\nlast console lines:\n{}",
            suites.join(", "),
            m.console_tail(TAIL)
        );
        // KUnit is there, dormant rather than absent.
        ensure!(
            console.lines().any(|l| l.ends_with("kunit: disabled")),
            "no `kunit: disabled` on the console: is KUnit built in?\nlast console lines:\n{}",
            m.console_tail(TAIL)
        );
        Ok(())
    })?;
    Ok(())
}
