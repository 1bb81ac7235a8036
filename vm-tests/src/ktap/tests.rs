//! Tests of the KTAP parser, on fixtures in `test_data/` (console captures
//! of real lab boots, and synthetic KTAP).

//! The longer inputs, console captures and synthetic KTAP alike, are
//! files in `ktap/test_data/`, byte for byte as the console printed them
//! (trailing spaces included), as the kernel's kunit_tool keeps its own.

use super::*;

#[test]
fn strips_printk_prefixes() {
    assert_eq!(strip_printk_prefix("[    1.234567] ok 1 a"), "ok 1 a");
    assert_eq!(
        strip_printk_prefix("[    1.234567]     KTAP version 1\r"),
        "    KTAP version 1"
    );
    assert_eq!(
        strip_printk_prefix("[    0.100000][     T1] # Subtest: x"),
        "# Subtest: x"
    );
    assert_eq!(
        strip_printk_prefix("[not a time] ok 1"),
        "[not a time] ok 1"
    );
    assert_eq!(strip_printk_prefix("    ok 1 a"), "    ok 1 a");
}

#[test]
fn classifies_lines() {
    assert_eq!(classify("KTAP version 1"), Some((0, Line::Version)));
    assert_eq!(classify("    TAP version 14"), Some((1, Line::Version)));
    assert_eq!(classify("    # Subtest: s"), Some((1, Line::Subtest("s"))));
    assert_eq!(classify("        1..12"), Some((2, Line::Plan(12))));
    assert_eq!(
        classify("    ok 3 - name # SKIP no hardware"),
        Some((
            1,
            Line::Result {
                number: 3,
                name: "name",
                outcome: Outcome::Skip {
                    reason: "no hardware".into()
                }
            }
        ))
    );
    assert_eq!(
        classify("not ok 2 b"),
        Some((
            0,
            Line::Result {
                number: 2,
                name: "b",
                outcome: Outcome::Fail
            }
        ))
    );
    assert_eq!(
        classify("ok 1 c # skip"),
        Some((
            0,
            Line::Result {
                number: 1,
                name: "c",
                outcome: Outcome::Skip { reason: "".into() }
            }
        ))
    );
    // Not KTAP: odd indentation, words that merely start like KTAP.
    assert_eq!(classify("  ok 1 a"), None);
    assert_eq!(classify("okay 1"), None);
    assert_eq!(classify("ok 12abc"), None);
    assert_eq!(classify("ok computer"), None);
    assert_eq!(classify("1..x"), None);
    assert_eq!(classify("lab-init: ready"), None);
}

/// Two suites, one with a failing and a skipped case, interleaved with
/// unrelated kernel output.
const SYNTHETIC: &str = include_str!("test_data/synthetic.log");

#[test]
fn failing_and_skipped_cases() {
    let k = Ktap::parse(SYNTHETIC);
    assert!(k.is_complete(), "{:?}", k.problems);
    assert_eq!(k.runs.len(), 1);
    assert_eq!(k.runs[0].plan, Some(2));
    let alpha = k.suite("alpha").unwrap();
    assert_eq!(alpha.outcome, Some(Outcome::Fail));
    assert_eq!(alpha.number, Some(1));
    assert_eq!(alpha.plan, Some(3));
    let names: Vec<_> = alpha.subtests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    assert!(alpha.subtest("first").unwrap().passed());
    let second = alpha.subtest("second").unwrap();
    assert_eq!(second.outcome, Some(Outcome::Fail));
    assert_eq!(
        second.diagnostics,
        ["second: ASSERTION FAILED at rust/kernel/x.rs:12"]
    );
    assert_eq!(
        alpha.subtest("third").unwrap().outcome,
        Some(Outcome::Skip {
            reason: "needs hardware".into()
        })
    );
    assert!(
        alpha
            .diagnostics
            .iter()
            .any(|d| d == "alpha: pass:1 fail:1 skip:1 total:3")
    );
    assert!(k.suite("beta").unwrap().passed());
    assert_eq!(
        k.totals(),
        Totals {
            suites: 2,
            cases: 4,
            passed: 2,
            failed: 1,
            skipped: 1,
            missing: 0
        }
    );
    assert_eq!(k.failures(), ["alpha.second: not ok (console line 12)"]);
    assert_eq!(
        k.totals().to_string(),
        "2 suites, 4 cases: 2 passed, 1 failed, 1 skipped, 0 without result"
    );
}

#[test]
fn truncated_run_is_a_problem() {
    // The console stops in the middle of suite `alpha` (e.g. a crash).
    let cut: String = SYNTHETIC
        .lines()
        .take(12)
        .map(|l| format!("{l}\n"))
        .collect();
    let k = Ktap::parse(&cut);
    assert!(!k.is_complete());
    let alpha = k.suite("alpha").unwrap();
    assert_eq!(alpha.outcome, None);
    assert_eq!(alpha.subtests.len(), 2);
    assert!(
        k.problems.contains(&Problem::Truncated {
            test: "alpha".into(),
            line: 4,
            planned: 3,
            seen: 2
        }),
        "{:?}",
        k.problems
    );
    assert!(k.problems.contains(&Problem::NoResult {
        test: "alpha".into(),
        line: 4
    }));
    assert!(k.problems.iter().any(|p| matches!(
        p,
        Problem::Truncated {
            planned: 2,
            seen: 0,
            ..
        }
    )));
    assert_eq!(k.totals().cases, 2);
    let failures = k.failures();
    assert_eq!(failures, ["alpha.second: not ok (console line 12)"]);
    // A suite cut off before any failure is reported as missing.
    let cut: String = SYNTHETIC
        .lines()
        .take(8)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        Ktap::parse(&cut).failures(),
        ["alpha: no result line (console line 4)"]
    );
    for p in &k.problems {
        assert!(p.to_string().contains("console line"), "{p}");
    }
}

#[test]
fn missing_suite_result_lines_are_detected() {
    // All case results there, but the run plan promises a third suite.
    let text = SYNTHETIC.replace("1..2", "1..3");
    let k = Ktap::parse(&text);
    assert_eq!(
        k.problems,
        [Problem::Truncated {
            test: "KTAP run #1 (top level)".into(),
            line: 2,
            planned: 3,
            seen: 2
        }]
    );
    assert!(k.problems[0].to_string().contains("truncated"));
}

#[test]
fn too_many_results_and_bad_numbers() {
    let text = "KTAP version 1\n1..1\n    # Subtest: s\n    1..1\n    ok 1 a\n    ok 3 b\nok 1 s\n";
    let k = Ktap::parse(text);
    assert_eq!(
        k.problems,
        [
            Problem::TooManyResults {
                test: "s".into(),
                line: 7,
                planned: 1,
                seen: 2
            },
            Problem::Numbering {
                test: "s.b".into(),
                line: 6,
                expected: 2,
                found: 3
            }
        ]
    );
}

#[test]
fn empty_console_has_no_runs() {
    let k = Ktap::parse("Linux version 7.2\nLAB-INIT-READY\n");
    assert!(k.runs.is_empty());
    assert!(!k.is_complete());
    assert_eq!(k.totals(), Totals::default());
}

#[test]
fn parameterised_cases_nest() {
    let text = include_str!("test_data/parameterised.log");
    let k = Ktap::parse(text);
    assert!(k.is_complete(), "{:?}", k.problems);
    let case = k.suite("suite").unwrap().subtest("param_case").unwrap();
    assert_eq!(case.plan, None);
    assert_eq!(case.subtests.len(), 3);
    assert_eq!(case.outcome, Some(Outcome::Fail));
    assert!(case.subtests[2].skipped());
    assert_eq!(
        k.failures(),
        ["suite.param_case.two: not ok (console line 9)"]
    );
    // Parameters count as one case.
    assert_eq!(k.totals().cases, 2);
    assert_eq!(k.totals().failed, 1);
}

#[test]
fn one_run_per_module_load() {
    let text = include_str!("test_data/two_runs.log");
    let k = Ktap::parse(text);
    assert!(k.is_complete(), "{:?}", k.problems);
    assert_eq!(k.runs.len(), 2);
    assert_eq!(k.runs[1].line, 9);
    assert_eq!(k.suite("from_module").unwrap().subtests.len(), 2);
    assert_eq!(k.totals().suites, 2);
    assert_eq!(k.totals().passed, 3);
}

#[test]
fn suite_without_header_lines() {
    // A suite whose init failed prints only its result line.
    let k =
        Ktap::parse("KTAP version 1\n1..1\n    # failed to initialize (-12)\nnot ok 1 broken\n");
    let broken = k.suite("broken").unwrap();
    assert_eq!(broken.outcome, Some(Outcome::Fail));
    assert!(broken.subtests.is_empty());
    assert_eq!(k.failures(), ["broken: not ok (console line 4)"]);
    assert!(k.problems.is_empty());
}

/// Real console (QEMU TCG, Linux 7.2.12 with kernel/lab.config and
/// kernel/kunit.config): the start of the boot-time run, cut after its
/// third suite of eight. Unrelated kernel lines are interleaved, and
/// `rust_kernel_kunit` has a skipped case (the SKIP line ends in a space).
const REAL_BOOT_START: &str = include_str!("test_data/real_boot_start.log");

/// Real console: `insmod rust_keyboard.ko` in the KUnit kernel, whose
/// suite `rust_keyboard_decoder` runs at load; a complete run.
const REAL_MODULE_LOAD: &str = include_str!("test_data/real_module_load.log");

/// Real console: the same with two deliberately failing cases added to
/// the suite (a failed `assert_eq!` and a test returning `Err`).
const REAL_MODULE_FAILURES: &str = include_str!("test_data/real_module_failures.log");

#[test]
fn fixtures_are_byte_exact() {
    // The real captures keep what an editor might "fix": KUnit's SKIP
    // line without a reason ends in a space, and the lines end in LF.
    assert!(REAL_BOOT_START.contains("rust_test_kunit_always_disabled_test # SKIP \n"));
    for text in [
        REAL_BOOT_START,
        REAL_MODULE_LOAD,
        REAL_MODULE_FAILURES,
        SYNTHETIC,
    ] {
        assert!(!text.contains('\r'));
        assert!(text.ends_with('\n'));
    }
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn real_boot_start_is_a_truncated_run() {
    let k = Ktap::parse(REAL_BOOT_START);
    assert_eq!(k.runs.len(), 1);
    let run = &k.runs[0];
    assert_eq!(run.plan, Some(8));
    assert_eq!(run.line, line_of(REAL_BOOT_START, "KTAP version 1"));
    let names: Vec<_> = run.suites.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["rust_kernel_str", "rust_kernel_kunit", "rust_kernel_bitmap"]
    );
    assert_eq!(
        k.problems,
        [Problem::Truncated {
            test: "KTAP run #1 (top level)".into(),
            line: run.line,
            planned: 8,
            seen: 3
        }]
    );
    assert!(!k.is_complete());
    // What did run is still reported, and nothing failed.
    assert!(k.failures().is_empty());
    assert_eq!(
        k.totals(),
        Totals {
            suites: 3,
            cases: 16,
            passed: 15,
            failed: 0,
            skipped: 1,
            missing: 0
        }
    );
}

#[test]
fn real_boot_suites_and_skip() {
    // The same excerpt with a plan that matches it.
    let text = REAL_BOOT_START.replace("] 1..8", "] 1..3");
    let k = Ktap::parse(&text);
    assert!(k.is_complete(), "{:?}", k.problems);
    let kunit = k.suite("rust_kernel_kunit").unwrap();
    assert!(kunit.passed());
    assert_eq!(kunit.number, Some(2));
    assert_eq!(kunit.plan, Some(3));
    let skipped = kunit
        .subtest("rust_test_kunit_always_disabled_test")
        .unwrap();
    assert_eq!(
        skipped.outcome,
        Some(Outcome::Skip {
            reason: String::new()
        })
    );
    assert_eq!(skipped.number, Some(3));
    assert_eq!(
        skipped.line,
        line_of(&text, "ok 3 rust_test_kunit_always_disabled_test")
    );
    assert_eq!(
        skipped.diagnostics,
        ["rust_test_kunit_always_disabled_test.speed: normal"]
    );
    assert_eq!(
        kunit.diagnostics,
        [
            "rust_kernel_kunit: pass:2 fail:0 skip:1 total:3",
            "Totals: pass:2 fail:0 skip:1 total:3"
        ]
    );
    let bitmap = k.suite("rust_kernel_bitmap").unwrap();
    assert_eq!(bitmap.subtests.len(), 6);
    assert!(bitmap.subtests.iter().all(Test::passed));
    assert_eq!(bitmap.subtests[0].name, "bitmap_borrow");
}

#[test]
fn real_module_load() {
    let k = Ktap::parse(REAL_MODULE_LOAD);
    assert!(k.is_complete(), "{:?}", k.problems);
    assert_eq!(k.runs.len(), 1);
    assert_eq!(k.runs[0].plan, Some(1));
    let suite = k.suite("rust_keyboard_decoder").unwrap();
    assert!(suite.passed());
    let names: Vec<_> = suite.subtests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "plain_make_and_break",
            "extended_make_and_break",
            "right_ctrl_sequence",
            "consecutive_prefixes_collapse",
            "lone_prefix_yields_nothing",
            "status_output_full_bit"
        ]
    );
    assert!(suite.subtests.iter().all(Test::passed));
    assert_eq!(
        k.totals().to_string(),
        "1 suites, 6 cases: 6 passed, 0 failed, 0 skipped, 0 without result"
    );
    // The serial console as QEMU writes it, with CR LF line ends.
    assert_eq!(Ktap::parse(&REAL_MODULE_LOAD.replace('\n', "\r\n")), k);
}

#[test]
fn real_module_failures() {
    let k = Ktap::parse(REAL_MODULE_FAILURES);
    assert!(k.is_complete(), "{:?}", k.problems);
    let suite = k.suite("rust_keyboard_decoder").unwrap();
    assert_eq!(suite.outcome, Some(Outcome::Fail));
    assert_eq!(
        k.failures(),
        [
            format!(
                "rust_keyboard_decoder.deliberately_failing_assert: not ok (console line {})",
                line_of(REAL_MODULE_FAILURES, "not ok 7")
            ),
            format!(
                "rust_keyboard_decoder.deliberately_returning_err: not ok (console line {})",
                line_of(REAL_MODULE_FAILURES, "not ok 8")
            ),
        ]
    );
    let case = suite.subtest("deliberately_failing_assert").unwrap();
    assert_eq!(
        case.diagnostics,
        [
            "deliberately_failing_assert: ASSERTION FAILED at decoder.rs:280",
            "deliberately_failing_assert.speed: normal"
        ]
    );
    assert_eq!(
        k.totals(),
        Totals {
            suites: 1,
            cases: 8,
            passed: 6,
            failed: 2,
            skipped: 0,
            missing: 0
        }
    );
}

#[test]
fn real_boot_and_module_runs_together() {
    let text = format!(
        "{}{}",
        REAL_BOOT_START.replace("] 1..8", "] 1..3"),
        REAL_MODULE_LOAD
    );
    let k = Ktap::parse(&text);
    assert!(k.is_complete(), "{:?}", k.problems);
    assert_eq!(k.runs.len(), 2);
    assert_eq!(k.runs[1].suites[0].name, "rust_keyboard_decoder");
    assert_eq!(k.runs[1].suites[0].number, Some(1));
    assert_eq!(
        k.totals(),
        Totals {
            suites: 4,
            cases: 22,
            passed: 21,
            failed: 0,
            skipped: 1,
            missing: 0
        }
    );
}
