//! The GitHub Actions workflow for users (`.github/workflows/ci.yml`): it
//! cannot run here, so nix-check parses it (yaml-rust2, a pure Rust YAML 1.2
//! parser: GitHub reads `on:` as a key, not as YAML 1.1's boolean) and checks
//! what GitHub would reject or what would silently do nothing: the keys of
//! the workflow, its jobs and steps, that every action is one of
//! [`ACTIONS`] pinned to its commit with the release tag in a comment, that
//! every `with:` input is one the action declares (and the required ones are
//! given), and that the jobs run what the README promises.

use regex::Regex;
use std::collections::BTreeSet;
use yaml_rust2::{Yaml, YamlLoader};

/// Where the workflow lives in the checkout.
pub const WORKFLOW: &str = ".github/workflows/ci.yml";

/// An action the workflow may use, pinned to a commit.
#[derive(Debug)]
pub struct PinnedAction {
    /// `owner/repo`.
    pub name: &'static str,
    /// The commit the release tag points at.
    pub commit: &'static str,
    /// The release tag.
    pub tag: &'static str,
    /// The inputs its `action.yml` at that commit declares.
    pub inputs: &'static [&'static str],
    /// Those of them with `required: true` and no default.
    pub required: &'static [&'static str],
}

/// The actions of the workflow. Commits and inputs are read from each
/// action's repository at the tag: `git rev-parse <tag>^{commit}` and the
/// `inputs:` of its `action.yml`.
pub const ACTIONS: &[PinnedAction] = &[
    PinnedAction {
        name: "actions/checkout",
        commit: "3d3c42e5aac5ba805825da76410c181273ba90b1",
        tag: "v7.0.1",
        inputs: &[
            "repository",
            "ref",
            "token",
            "ssh-key",
            "ssh-known-hosts",
            "ssh-strict",
            "ssh-user",
            "persist-credentials",
            "path",
            "clean",
            "filter",
            "sparse-checkout",
            "sparse-checkout-cone-mode",
            "fetch-depth",
            "fetch-tags",
            "show-progress",
            "lfs",
            "submodules",
            "set-safe-directory",
            "github-server-url",
            "allow-unsafe-pr-checkout",
        ],
        required: &[],
    },
    PinnedAction {
        name: "cachix/install-nix-action",
        commit: "630ae543ea3a38a9a4166f03376c02c50f408342",
        tag: "v31.11.0",
        inputs: &[
            "extra_nix_config",
            "github_access_token",
            "install_url",
            "install_options",
            "nix_path",
            "enable_kvm",
            "set_as_trusted_user",
        ],
        required: &[],
    },
    PinnedAction {
        name: "nix-community/cache-nix-action",
        commit: "7df957e333c1e5da7721f60227dbba6d06080569",
        tag: "v7.0.2",
        inputs: &[
            "primary-key",
            "restore-prefixes-first-match",
            "restore-prefixes-all-matches",
            "lookup-only",
            "fail-on",
            "nix",
            "save",
            "paths",
            "paths-macos",
            "paths-linux",
            "backend",
            "gc-max-store-size",
            "gc-max-store-size-macos",
            "gc-max-store-size-linux",
            "purge",
            "purge-primary-key",
            "purge-prefixes",
            "purge-last-accessed",
            "purge-created",
            "upload-chunk-size",
            "token",
        ],
        required: &["primary-key"],
    },
    PinnedAction {
        name: "actions/cache",
        commit: "27d5ce7f107fe9357f9df03efb73ab90386fccae",
        tag: "v5.0.5",
        inputs: &[
            "path",
            "key",
            "restore-keys",
            "upload-chunk-size",
            "enableCrossOsArchive",
            "fail-on-cache-miss",
            "lookup-only",
            "save-always",
        ],
        required: &["path", "key"],
    },
    PinnedAction {
        name: "actions/upload-artifact",
        commit: "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
        tag: "v7.0.0",
        inputs: &[
            "name",
            "path",
            "if-no-files-found",
            "retention-days",
            "compression-level",
            "overwrite",
            "include-hidden-files",
            "archive",
        ],
        required: &["path"],
    },
];

/// The commands the README says the workflow runs, each in some job.
const PROMISED_COMMANDS: [&str; 2] = ["nix flake check -L", "cargo xtask test"];

/// Keys GitHub accepts at the top of a workflow, in a job, in a step.
const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "run-name",
    "on",
    "permissions",
    "env",
    "defaults",
    "concurrency",
    "jobs",
];
const JOB_KEYS: &[&str] = &[
    "name",
    "runs-on",
    "needs",
    "if",
    "permissions",
    "env",
    "defaults",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
    "outputs",
    "concurrency",
    "environment",
    "steps",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "name",
    "if",
    "uses",
    "run",
    "with",
    "env",
    "shell",
    "working-directory",
    "continue-on-error",
    "timeout-minutes",
];

/// Checks the workflow text; the detail on success counts jobs and actions.
pub fn check(text: &str) -> Result<String, String> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("{WORKFLOW}: {e}"))?;
    let [doc] = docs.as_slice() else {
        return Err(format!(
            "{WORKFLOW}: expected one YAML document, found {}",
            docs.len()
        ));
    };
    let mut problems = Vec::new();
    let top = mapping(doc, "the workflow", &mut problems);
    unknown_keys(&top, WORKFLOW_KEYS, "the workflow", &mut problems);
    for key in ["on", "jobs"] {
        if !top.iter().any(|(k, _)| k.as_str() == Some(key)) {
            problems.push(format!("the workflow has no `{key}:`"));
        }
    }
    let comments = pin_comments(text);
    let mut used = BTreeSet::new();
    let mut runs = Vec::new();
    let jobs = mapping(&doc["jobs"], "`jobs:`", &mut problems);
    if jobs.is_empty() {
        problems.push("`jobs:` lists no job".into());
    }
    for (name, job) in &jobs {
        let name = name.as_str().unwrap_or("?");
        let what = format!("job `{name}`");
        let fields = mapping(job, &what, &mut problems);
        unknown_keys(&fields, JOB_KEYS, &what, &mut problems);
        if job["runs-on"].as_str().is_none() {
            problems.push(format!("{what} has no `runs-on:`"));
        }
        let steps = job["steps"].as_vec().map(Vec::as_slice).unwrap_or_default();
        if steps.is_empty() {
            problems.push(format!("{what} has no steps"));
        }
        for (i, step) in steps.iter().enumerate() {
            let what = format!("{what}, step {}", i + 1);
            let fields = mapping(step, &what, &mut problems);
            unknown_keys(&fields, STEP_KEYS, &what, &mut problems);
            match (step["uses"].as_str(), step["run"].as_str()) {
                (Some(uses), None) => {
                    check_action(uses, step, &comments, &what, &mut problems);
                    used.insert(uses.to_string());
                }
                (None, Some(run)) => {
                    runs.push(run.to_string());
                    if !step["with"].is_badvalue() {
                        problems.push(format!("{what}: `with:` belongs to a `uses:` step"));
                    }
                }
                _ => problems.push(format!("{what}: needs exactly one of `uses:` and `run:`")),
            }
        }
    }
    for command in PROMISED_COMMANDS {
        if !runs.iter().any(|r| r.lines().any(|l| l.trim() == command)) {
            problems.push(format!("no job runs `{command}`"));
        }
    }
    if problems.is_empty() {
        Ok(format!(
            " ({} jobs, {} pinned actions)",
            jobs.len(),
            used.len()
        ))
    } else {
        Err(problems
            .iter()
            .map(|p| format!("{WORKFLOW}: {p}"))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

/// `uses: owner/repo@ref`: a known action at its pinned commit, with the
/// tag in the line's comment and only inputs its action.yml declares.
fn check_action(
    uses: &str,
    step: &Yaml,
    comments: &[(String, String)],
    what: &str,
    problems: &mut Vec<String>,
) {
    let Some((name, reference)) = uses.split_once('@') else {
        problems.push(format!("{what}: `uses: {uses}` names no version"));
        return;
    };
    let Some(action) = ACTIONS.iter().find(|a| a.name == name) else {
        let known: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
        problems.push(format!(
            "{what}: action {name} is not one of the pinned actions ({}); add it to ACTIONS in xtask/src/nix_check/workflow.rs with its commit and inputs",
            known.join(", ")
        ));
        return;
    };
    if reference != action.commit {
        problems.push(format!(
            "{what}: {name}@{reference} must be pinned to {} ({})",
            action.commit, action.tag
        ));
    }
    let tagged = comments
        .iter()
        .any(|(u, tag)| u == uses && tag == action.tag);
    if !tagged {
        problems.push(format!(
            "{what}: `uses: {uses}` needs the comment `# {}`",
            action.tag
        ));
    }
    let given: Vec<&str> = match &step["with"] {
        Yaml::BadValue => Vec::new(),
        Yaml::Hash(h) => h.keys().filter_map(Yaml::as_str).collect(),
        _ => {
            problems.push(format!("{what}: `with:` is not a mapping"));
            Vec::new()
        }
    };
    for input in &given {
        if !action.inputs.contains(input) {
            problems.push(format!(
                "{what}: {name} {} has no input `{input}` (its inputs: {})",
                action.tag,
                action.inputs.join(", ")
            ));
        }
    }
    for input in action.required {
        if !given.contains(input) {
            problems.push(format!("{what}: {name} needs the input `{input}`"));
        }
    }
}

/// The mapping `node`, or a problem (and an empty mapping).
fn mapping<'a>(
    node: &'a Yaml,
    what: &str,
    problems: &mut Vec<String>,
) -> Vec<(&'a Yaml, &'a Yaml)> {
    match node {
        Yaml::Hash(h) => h.iter().collect(),
        _ => {
            problems.push(format!("{what} is not a mapping"));
            Vec::new()
        }
    }
}

/// Keys of `fields` that are not in `allowed`.
fn unknown_keys(
    fields: &[(&Yaml, &Yaml)],
    allowed: &[&str],
    what: &str,
    problems: &mut Vec<String>,
) {
    for (key, _) in fields {
        match key.as_str() {
            Some(k) if allowed.contains(&k) => {}
            Some(k) => problems.push(format!("{what}: unknown key `{k}`")),
            None => problems.push(format!("{what}: a key is not a string ({key:?})")),
        }
    }
}

/// `(uses, tag)` of every `uses: X@Y # TAG` line (YAML parsers drop the
/// comments, so they are read from the text).
fn pin_comments(text: &str) -> Vec<(String, String)> {
    let Ok(re) = Regex::new(r"(?m)^\s*(?:-\s+)?uses:\s*(\S+)\s+#\s*(\S+)\s*$") else {
        return Vec::new();
    };
    re.captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CI: &str = include_str!("../../../.github/workflows/ci.yml");

    fn problems(text: &str) -> String {
        check(text).unwrap_err()
    }

    #[test]
    fn the_repository_workflow_passes() {
        let detail = check(CI).unwrap();
        assert_eq!(detail, " (2 jobs, 5 pinned actions)");
    }

    #[test]
    fn every_pinned_action_is_used() {
        for action in ACTIONS {
            assert!(
                CI.contains(&format!(
                    "{}@{} # {}",
                    action.name, action.commit, action.tag
                )),
                "{} is listed in ACTIONS but not used as pinned",
                action.name
            );
        }
    }

    #[test]
    fn on_is_a_key_not_a_boolean() {
        let doc = &YamlLoader::load_from_str(CI).unwrap()[0];
        assert!(!doc["on"].is_badvalue());
    }

    #[test]
    fn a_tag_instead_of_the_commit_fails() {
        let text = CI.replace(
            "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
            "actions/checkout@v7",
        );
        let err = problems(&text);
        assert!(
            err.contains("must be pinned to 3d3c42e5aac5ba805825da76410c181273ba90b1"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_tag_comment_fails() {
        let text = CI.replace("# v31.11.0", "# v30");
        let err = problems(&text);
        assert!(err.contains("needs the comment `# v31.11.0`"), "{err}");
    }

    #[test]
    fn an_unknown_input_or_action_fails() {
        let text = CI.replace("enable_kvm: true", "enable-kvm: true");
        let err = problems(&text);
        assert!(err.contains("has no input `enable-kvm`"), "{err}");
        let text = CI.replace(
            "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
            "someone/upload@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f",
        );
        let err = problems(&text);
        assert!(
            err.contains("someone/upload is not one of the pinned actions"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_required_input_fails() {
        let text = CI.replace("          primary-key: ", "          primary-key-x: ");
        let err = problems(&text);
        assert!(err.contains("needs the input `primary-key`"), "{err}");
    }

    #[test]
    fn structural_mistakes_fail() {
        let text = CI.replace(
            "    runs-on: ubuntu-24.04\n    timeout-minutes: 150\n    env:",
            "    runs_on: ubuntu-24.04\n    timeout-minutes: 150\n    env:",
        );
        let err = problems(&text);
        assert!(err.contains("job `host`: unknown key `runs_on`"), "{err}");
        assert!(err.contains("job `host` has no `runs-on:`"), "{err}");
        let text = CI.replace("        run: nix flake check -L", "        run: nix build");
        let err = problems(&text);
        assert!(err.contains("no job runs `nix flake check -L`"), "{err}");
        assert!(problems("jobs: [").contains(WORKFLOW));
    }
}
