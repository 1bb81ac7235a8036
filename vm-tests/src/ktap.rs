//! A parser for the KTAP results KUnit prints on the kernel console.
//!
//! KUnit reports in KTAP (`Documentation/dev-tools/ktap.rst`). A run of
//! built-in suites at boot looks like this on the console (timestamps from
//! `CONFIG_PRINTK_TIME`, nesting shown by four spaces per level):
//!
//! ```text
//! [    1.234567] KTAP version 1
//! [    1.234568] 1..2
//! [    1.234569]     KTAP version 1
//! [    1.234570]     # Subtest: rust_kvec
//! [    1.234571]     # speed: normal
//! [    1.234572]     1..2
//! [    1.234573]     ok 1 test_kvec_push
//! [    1.234574]     ok 2 test_kvec_pop # SKIP not on this arch
//! [    1.234575] # rust_kvec: pass:1 fail:0 skip:1 total:2
//! [    1.234576] ok 1 rust_kvec
//! [    1.234577]     KTAP version 1
//! [    1.234578]     # Subtest: rust_atomics
//! ...
//! ```
//!
//! Every load of a module with suites prints another such document (a new
//! `KTAP version 1` at the top level), so a console can hold several
//! [`Run`]s. Parameterised test cases nest one level deeper.
//!
//! [`Ktap::parse`] is pure (text in, results out) and never fails: lines that
//! are not KTAP (the rest of the kernel log, the guest's /init) are skipped,
//! and what is wrong with the KTAP itself — a plan that promised more results
//! than were printed (a truncated run), a test whose result line never came,
//! numbers out of order — is collected in [`Ktap::problems`]. Nesting is
//! taken from the indentation, so a line of unrelated output between two
//! KTAP lines changes nothing.

use std::fmt;

/// The result of one test, from its `ok` / `not ok` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ok N name`: the test passed.
    Pass,
    /// `not ok N name`: the test failed.
    Fail,
    /// `ok N name # SKIP reason`: the test was skipped (a SKIP directive
    /// makes a test skipped whether the line says `ok` or `not ok`).
    Skip {
        /// The text after `SKIP`, trimmed; empty when none was given.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => f.write_str("ok"),
            Outcome::Fail => f.write_str("not ok"),
            Outcome::Skip { reason } if reason.is_empty() => f.write_str("skipped"),
            Outcome::Skip { reason } => write!(f, "skipped ({reason})"),
        }
    }
}

/// One test: a suite (its subtests are its test cases), a test case, or one
/// parameter of a parameterised test case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Test {
    /// The name on the result line (or on the `# Subtest:` line when the
    /// result line never came); empty if neither gave one.
    pub name: String,
    /// The number on the result line; `None` when the result line never came.
    pub number: Option<u64>,
    /// The result; `None` when the result line never came (the run was cut
    /// off, or the kernel died, while this test ran).
    pub outcome: Option<Outcome>,
    /// The number of subtests its `1..N` plan announced, if it printed one.
    pub plan: Option<usize>,
    /// Its subtests in order: the test cases of a suite, the parameters of a
    /// parameterised case; empty for a plain test case.
    pub subtests: Vec<Test>,
    /// The `# ...` lines (without the `# `) printed at the indentation of this
    /// test's result line after the previous sibling's result: KUnit's
    /// assertion failures, statistics and attributes.
    pub diagnostics: Vec<String>,
    /// The 1-based console line of its result line (of its first header line
    /// when there is no result line).
    pub line: usize,
}

impl Test {
    /// Whether the result line says the test passed (`ok` without SKIP).
    pub fn passed(&self) -> bool {
        self.outcome == Some(Outcome::Pass)
    }

    /// Whether the test was skipped (SKIP directive).
    pub fn skipped(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Skip { .. }))
    }

    /// Whether the test failed or never reported a result.
    pub fn failed_or_missing(&self) -> bool {
        matches!(self.outcome, None | Some(Outcome::Fail))
    }

    /// The subtest called `name`, if any.
    pub fn subtest(&self, name: &str) -> Option<&Test> {
        self.subtests.iter().find(|t| t.name == name)
    }

    /// The tests in this test's tree that failed or have no result and whose
    /// own subtests did not (the most precise culprits), each as
    /// `suite.case[.param]: <why> (console line N)`.
    pub fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_failures("", &mut out);
        out
    }

    fn collect_failures(&self, parent: &str, out: &mut Vec<String>) {
        let path = join(parent, &self.name);
        let before = out.len();
        for sub in &self.subtests {
            sub.collect_failures(&path, out);
        }
        if out.len() == before && self.failed_or_missing() {
            let why = match &self.outcome {
                Some(outcome) => outcome.to_string(),
                None => "no result line".to_owned(),
            };
            out.push(format!("{path}: {why} (console line {})", self.line));
        }
    }
}

/// One KTAP document: the suites run by one `kunit_run_tests` batch (all
/// built-in suites at boot, or the suites of one module when it is loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The number of suites its top-level `1..N` plan announced.
    pub plan: Option<usize>,
    /// Its suites, in order.
    pub suites: Vec<Test>,
    /// The 1-based console line where it starts.
    pub line: usize,
}

/// Something wrong with the KTAP itself (as opposed to a failing test).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A plan announced more results than were printed: the run was cut
    /// short (kernel crash, console truncated, timeout).
    Truncated {
        /// The test (`suite` or `suite.case`) or run whose plan it was.
        test: String,
        /// The console line of that test or run.
        line: usize,
        /// The `N` of its `1..N` plan.
        planned: usize,
        /// How many results were printed.
        seen: usize,
    },
    /// More results than the plan announced.
    TooManyResults {
        /// The test or run whose plan it was.
        test: String,
        /// The console line of that test or run.
        line: usize,
        /// The `N` of its `1..N` plan.
        planned: usize,
        /// How many results were printed.
        seen: usize,
    },
    /// A test whose header was printed but whose result line never came.
    NoResult {
        /// The test, `suite` or `suite.case`.
        test: String,
        /// The console line of its header.
        line: usize,
    },
    /// A result line whose number is not its position (a result line lost).
    Numbering {
        /// The test, `suite` or `suite.case`.
        test: String,
        /// The console line of its result line.
        line: usize,
        /// Its position among its siblings, from 1.
        expected: u64,
        /// The number on its result line.
        found: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated {
                test,
                line,
                planned,
                seen,
            } => write!(
                f,
                "{test} (console line {line}): truncated, plan 1..{planned} but only {seen} results"
            ),
            Problem::TooManyResults {
                test,
                line,
                planned,
                seen,
            } => write!(
                f,
                "{test} (console line {line}): plan 1..{planned} but {seen} results"
            ),
            Problem::NoResult { test, line } => write!(
                f,
                "{test} (console line {line}): started but printed no result line"
            ),
            Problem::Numbering {
                test,
                line,
                expected,
                found,
            } => write!(
                f,
                "{test} (console line {line}): result number {found}, expected {expected}"
            ),
        }
    }
}

/// Counts over a set of suites. Test cases are the direct subtests of a
/// suite; the parameters of a parameterised case count as one case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Suites.
    pub suites: usize,
    /// Test cases, whatever their outcome.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases that were skipped.
    pub skipped: usize,
    /// Cases without a result line.
    pub missing: usize,
}

impl Totals {
    /// Counts the suites and their test cases.
    pub fn of<'a>(suites: impl IntoIterator<Item = &'a Test>) -> Totals {
        let mut t = Totals::default();
        for suite in suites {
            t.suites += 1;
            for case in &suite.subtests {
                t.cases += 1;
                match case.outcome {
                    Some(Outcome::Pass) => t.passed += 1,
                    Some(Outcome::Fail) => t.failed += 1,
                    Some(Outcome::Skip { .. }) => t.skipped += 1,
                    None => t.missing += 1,
                }
            }
        }
        t
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} suites, {} cases: {} passed, {} failed, {} skipped, {} without result",
            self.suites, self.cases, self.passed, self.failed, self.skipped, self.missing
        )
    }
}

/// Everything KTAP found in a console log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ktap {
    /// The KTAP documents, in console order.
    pub runs: Vec<Run>,
    /// What is wrong with the KTAP itself; empty for complete, well-formed
    /// output. Failing tests are not problems: see [`Ktap::failures`].
    pub problems: Vec<Problem>,
}

impl Ktap {
    /// Parses the KTAP in `console`, the kernel console text.
    ///
    /// Lines may carry printk's `[    1.234567] ` timestamp (and
    /// `[     T1] ` caller id) and a `\r`; nesting is read from the
    /// indentation after them (four spaces per level). Non-KTAP lines are
    /// ignored.
    pub fn parse(console: &str) -> Ktap {
        let mut parser = Parser::default();
        for (index, raw) in console.lines().enumerate() {
            parser.line(index + 1, raw);
        }
        parser.finish()
    }

    /// All suites of all runs, in console order.
    pub fn suites(&self) -> impl Iterator<Item = &Test> {
        self.runs.iter().flat_map(|r| r.suites.iter())
    }

    /// The first suite called `name`.
    pub fn suite(&self, name: &str) -> Option<&Test> {
        self.suites().find(|s| s.name == name)
    }

    /// Counts over all suites.
    pub fn totals(&self) -> Totals {
        Totals::of(self.suites())
    }

    /// The failing or unfinished tests of all suites (see [`Test::failures`]).
    pub fn failures(&self) -> Vec<String> {
        self.suites().flat_map(Test::failures).collect()
    }

    /// Whether KTAP was found and is complete and well formed (no
    /// [`Problem`]); says nothing about whether the tests passed.
    pub fn is_complete(&self) -> bool {
        !self.runs.is_empty() && self.problems.is_empty()
    }
}

/// `a.b`, or `b` when `a` is empty.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// One KTAP line, after the prefix and indentation.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// `KTAP version 1` / `TAP version 14`.
    Version,
    /// `# Subtest: name`.
    Subtest(&'a str),
    /// `1..N`.
    Plan(usize),
    /// `ok N name [# directive]` / `not ok ...`.
    Result {
        number: u64,
        name: &'a str,
        outcome: Outcome,
    },
    /// `# anything else`.
    Diagnostic(&'a str),
}

/// Removes printk's `[    1.234567] ` time and `[     T1] ` caller prefixes
/// and a trailing `\r`.
fn strip_printk_prefix(line: &str) -> &str {
    let mut rest = line.trim_end_matches('\r');
    while let Some(after) = rest.strip_prefix('[') {
        let Some(end) = after.find(']') else { break };
        let inside = after[..end].trim_start();
        let time = !inside.is_empty()
            && inside.contains('.')
            && inside.chars().all(|c| c.is_ascii_digit() || c == '.');
        let caller = inside.len() > 1
            && (inside.starts_with('T') || inside.starts_with('C'))
            && inside[1..].chars().all(|c| c.is_ascii_digit());
        if !(time || caller) {
            break;
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    rest
}

/// Splits a stripped line into its nesting depth (four spaces a level) and
/// its KTAP meaning, or `None` if it is not KTAP.
fn classify(line: &str) -> Option<(usize, Line<'_>)> {
    let body = line.trim_start_matches(' ');
    let indent = line.len() - body.len();
    if !indent.is_multiple_of(4) {
        return None;
    }
    let depth = indent / 4;
    let body = body.trim_end();

    if body.starts_with("KTAP version ") || body.starts_with("TAP version ") {
        return Some((depth, Line::Version));
    }
    if let Some(name) = body.strip_prefix("# Subtest:") {
        return Some((depth, Line::Subtest(name.trim())));
    }
    if let Some(text) = body.strip_prefix('#') {
        return Some((depth, Line::Diagnostic(text.trim_start())));
    }
    if let Some(n) = body.strip_prefix("1..") {
        return n.parse().ok().map(|n| (depth, Line::Plan(n)));
    }
    let (ok, rest) = if let Some(rest) = body.strip_prefix("ok ") {
        (true, rest)
    } else if let Some(rest) = body.strip_prefix("not ok ") {
        (false, rest)
    } else {
        return None;
    };
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let number = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (name, directive) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(rest[i + 1..].trim())),
        None => (rest, None),
    };
    let skip = directive
        .and_then(|d| (d.len() >= 4 && d[..4].eq_ignore_ascii_case("SKIP")).then(|| d[4..].trim()));
    let outcome = match (skip, ok) {
        (Some(reason), _) => Outcome::Skip {
            reason: reason.to_owned(),
        },
        (None, true) => Outcome::Pass,
        (None, false) => Outcome::Fail,
    };
    Some((
        depth,
        Line::Result {
            number,
            name: name.trim(),
            outcome,
        },
    ))
}

/// A test (or, at depth 0, a run) whose header has been seen and whose result
/// line has not.
#[derive(Debug, Default)]
struct Open {
    name: String,
    plan: Option<usize>,
    subtests: Vec<Test>,
    /// Diagnostics at this depth since the last result at this depth.
    pending: Vec<String>,
    line: usize,
}

impl Open {
    fn fresh(&self) -> bool {
        self.name.is_empty() && self.plan.is_none() && self.subtests.is_empty()
    }

    fn into_test(self) -> Test {
        Test {
            name: self.name,
            number: None,
            outcome: None,
            plan: self.plan,
            subtests: self.subtests,
            diagnostics: self.pending,
            line: self.line,
        }
    }
}

/// The parser's state: `open[0]` is the current run, `open[d]` the test at
/// depth `d` whose result line is awaited.
#[derive(Debug, Default)]
struct Parser {
    runs: Vec<Run>,
    open: Vec<Open>,
}

impl Parser {
    fn line(&mut self, number: usize, raw: &str) {
        let Some((depth, line)) = classify(strip_printk_prefix(raw)) else {
            return;
        };
        match line {
            Line::Version => {
                self.close_from(depth);
                self.ensure_depth(depth, number);
            }
            Line::Subtest(name) => {
                if depth == 0 {
                    // A top-level document has no name: keep it as a comment.
                    self.diagnostic(0, &format!("Subtest: {name}"));
                    return;
                }
                if !(self.open.len() == depth + 1 && self.open[depth].fresh()) {
                    self.close_from(depth);
                    self.ensure_depth(depth, number);
                }
                self.open[depth].name = name.to_owned();
            }
            Line::Plan(n) => {
                self.close_from(depth + 1);
                if self.open.len() == depth + 1
                    && !(self.open[depth].plan.is_none() && self.open[depth].subtests.is_empty())
                {
                    // A second plan at the same level starts a new test (or run).
                    self.close_from(depth);
                }
                self.ensure_depth(depth, number);
                self.open[depth].plan = Some(n);
            }
            Line::Result {
                number: result_number,
                name,
                outcome,
            } => {
                self.ensure_depth(depth, number);
                let mut test = if self.open.len() > depth + 1 {
                    self.close_from(depth + 2);
                    let open = self.open.pop().expect("open.len() > depth + 1");
                    open.into_test()
                } else {
                    Test {
                        name: String::new(),
                        number: None,
                        outcome: None,
                        plan: None,
                        subtests: Vec::new(),
                        diagnostics: Vec::new(),
                        line: number,
                    }
                };
                let parent = &mut self.open[depth];
                test.diagnostics.append(&mut parent.pending);
                if !name.is_empty() {
                    test.name = name.to_owned();
                }
                test.number = Some(result_number);
                test.outcome = Some(outcome);
                test.line = number;
                parent.subtests.push(test);
            }
            Line::Diagnostic(text) => self.diagnostic(depth, text),
        }
    }

    /// Keeps a `# ...` line for the next result at its depth.
    fn diagnostic(&mut self, depth: usize, text: &str) {
        if self.open.is_empty() {
            return;
        }
        let at = depth.min(self.open.len() - 1);
        self.open[at].pending.push(text.to_owned());
    }

    /// Makes sure a test is open at `depth` (and a run at depth 0), opening
    /// nameless ones where headers were not printed.
    fn ensure_depth(&mut self, depth: usize, line: usize) {
        while self.open.len() <= depth {
            self.open.push(Open {
                line,
                ..Open::default()
            });
        }
    }

    /// Closes every open test at `depth` and deeper as unfinished (and the
    /// run, for depth 0).
    fn close_from(&mut self, depth: usize) {
        while self.open.len() > depth.max(1) {
            let open = self.open.pop().expect("open is not empty");
            let parent = self.open.last_mut().expect("open has a run");
            parent.subtests.push(open.into_test());
        }
        if depth == 0
            && let Some(run) = self.open.pop()
        {
            self.runs.push(Run {
                plan: run.plan,
                suites: run.subtests,
                line: run.line,
            });
        }
    }

    fn finish(mut self) -> Ktap {
        self.close_from(0);
        let mut problems = Vec::new();
        for (i, run) in self.runs.iter().enumerate() {
            let name = format!("KTAP run #{} (top level)", i + 1);
            check_plan(&name, "", run.line, run.plan, &run.suites, &mut problems);
            for suite in &run.suites {
                check_test("", suite, &mut problems);
            }
        }
        Ktap {
            runs: self.runs,
            problems,
        }
    }
}

/// Checks the plan of `name` against its results, and their numbering
/// (results are named `prefix.<name>`).
fn check_plan(
    name: &str,
    prefix: &str,
    line: usize,
    plan: Option<usize>,
    subtests: &[Test],
    problems: &mut Vec<Problem>,
) {
    let seen = subtests.iter().filter(|t| t.outcome.is_some()).count();
    match plan {
        Some(planned) if seen < planned => problems.push(Problem::Truncated {
            test: name.to_owned(),
            line,
            planned,
            seen,
        }),
        Some(planned) if seen > planned => problems.push(Problem::TooManyResults {
            test: name.to_owned(),
            line,
            planned,
            seen,
        }),
        _ => {}
    }
    // Only the first misnumbered result: one lost line shifts all after it.
    let misnumbered = subtests
        .iter()
        .zip(1..)
        .find_map(|(t, expected)| match t.number {
            Some(found) if found != expected => Some((t, expected, found)),
            _ => None,
        });
    if let Some((t, expected, found)) = misnumbered {
        problems.push(Problem::Numbering {
            test: join(prefix, &t.name),
            line: t.line,
            expected,
            found,
        });
    }
}

/// Checks a test and its subtests.
fn check_test(parent: &str, test: &Test, problems: &mut Vec<Problem>) {
    let path = join(parent, &test.name);
    if test.outcome.is_none() {
        problems.push(Problem::NoResult {
            test: path.clone(),
            line: test.line,
        });
    }
    check_plan(&path, &path, test.line, test.plan, &test.subtests, problems);
    for sub in &test.subtests {
        check_test(&path, sub, problems);
    }
}

#[cfg(test)]
mod tests;
