//! `cargo xtask nix-check`: checks the flake on a host without a usable Nix
//! (nothing can be built here, so the flake has to be right by
//! construction):
//!
//! 1. every `.nix` file of the checkout parses (`nix-instantiate --parse`,
//!    from Debian's nix-bin, which can parse but not evaluate nixpkgs);
//! 2. every one is formatted as alejandra formats it (the flake's `nix fmt`
//!    and its `nix-format` check);
//! 3. none has dead code (deadnix);
//! 4. `flake.lock` locks exactly the inputs `flake.nix` declares, each at the
//!    GitHub owner, repository and revision `flake.nix` names;
//! 5. the GitHub Actions workflow for users is well formed, its actions
//!    pinned and given only the inputs they declare ([`workflow`]);
//! 6. `nix/host-lints.txt`, the host toolchain's lint table that the flake's
//!    clippy check is held to, is the table of the toolchain in use
//!    ([`lints`]);
//! 7. with work trees of the pinned crane and nixpkgs.lib named in the
//!    environment, a real Nix evaluates the flake and the derivations it
//!    writes are checked ([`eval`]); without them the step says it skipped.
//!
//! The registry has alejandra only as a library: xtask links it (the version
//! `[nix_tools]` of pins.toml names, checked below) and checks in process.
//! deadnix is installed once from the registry into the cache's tools, and
//! nix-bin from Debian like the other host packages.

mod eval;
mod lints;
mod workflow;

use crate::exec::{self, cmd};
use crate::paths::Cache;
use crate::provision::{ensure_host_packages, install_crate};
use anyhow::{Context, Result, bail};
use regex::Regex;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Runs every check on the checkout at `repo`, installing deadnix and
/// nix-bin first if needed. Prints one line per check and fails if any check
/// failed.
pub fn run(repo: &Path, cache: &Cache) -> Result<()> {
    let pins = crate::pins::Pins::load(&repo.join("pins.toml"))?;
    let versions = pins
        .nix_tools
        .context("pins.toml has no [nix_tools] table (alejandra and deadnix versions)")?;
    if versions.alejandra != alejandra::version::VERSION {
        bail!(
            "pins.toml pins alejandra {} but xtask links alejandra {}: change xtask/Cargo.toml and pins.toml together",
            versions.alejandra,
            alejandra::version::VERSION
        );
    }
    let deadnix = install_crate(cache, "deadnix", &versions.deadnix, "deadnix")?;
    ensure_host_packages(&["nix-bin".to_string()])?;
    let nix_instantiate = exec::require("nix-instantiate")?;

    let files = nix_files(repo)?;
    if files.is_empty() {
        bail!("no .nix files in {}", repo.display());
    }
    let rel: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(repo).unwrap_or(f).display().to_string())
        .collect();
    eprintln!("nix-check: {} Nix files ({})", files.len(), rel.join(", "));

    let mut failures = Vec::new();
    let mut report = |what: &str, outcome: Result<String, String>| match outcome {
        Ok(detail) => {
            let mut lines = detail.lines();
            eprintln!("  {what:<38} ok{}", lines.next().unwrap_or_default());
            for line in lines {
                eprintln!("      {line}");
            }
        }
        Err(problem) => {
            eprintln!("  {what:<38} FAILED");
            for line in problem.lines() {
                eprintln!("      {line}");
            }
            failures.push(what.to_string());
        }
    };

    let nix_version = version_of(&nix_instantiate);
    report(
        &format!("parse ({nix_version})"),
        parse_all(&nix_instantiate, &files, &rel),
    );
    report(
        &format!("format (alejandra {})", versions.alejandra),
        alejandra_check(&files, &rel).map_err(|out| {
            format!("{out}\nfix: `cargo xtask nix-fmt` (or `nix fmt` where Nix works)")
        }),
    );
    report(
        &format!("dead code (deadnix {})", versions.deadnix),
        deadnix_check(&deadnix, repo, &rel),
    );
    report("flake.lock matches flake.nix", lock_check(repo));
    report(
        &format!("CI workflow ({})", workflow::WORKFLOW),
        std::fs::read_to_string(repo.join(workflow::WORKFLOW))
            .map_err(|e| format!("cannot read {}: {e}", workflow::WORKFLOW))
            .and_then(|text| workflow::check(&text)),
    );
    report(
        &format!("host lint table ({})", lints::TABLE),
        lint_table_check(repo),
    );
    match eval::run(repo, cache) {
        Ok(eval::Outcome::Skipped(why)) => eprintln!("  {:<38} {why}", "nix-eval (real Nix)"),
        Ok(eval::Outcome::Ran(detail)) => report("nix-eval (real Nix)", Ok(format!("\n{detail}"))),
        Err(problem) => report("nix-eval (real Nix)", Err(problem)),
    }

    if failures.is_empty() {
        eprintln!("nix-check: all checks passed");
        Ok(())
    } else {
        bail!("nix-check failed: {}", failures.join(", "))
    }
}

/// Compares `nix/host-lints.txt` with the lint table of the toolchain that
/// rust-toolchain.toml selects here; a stale table is rewritten under
/// target/ for the fix.
fn lint_table_check(repo: &Path) -> Result<String, String> {
    let driver = exec::require("clippy-driver").map_err(|e| format!("{e:#}"))?;
    let run = |args: &[&str]| {
        let mut c = cmd(&driver, args);
        c.current_dir(repo);
        exec::output(&mut c).map_err(|e| format!("{e:#}"))
    };
    let version = run(&["--version"])?;
    let fresh = lints::render(&version, &run(&["-W", "help"])?);
    let committed = std::fs::read_to_string(repo.join(lints::TABLE)).unwrap_or_default();
    if committed == fresh {
        return Ok(format!(" ({})", version.trim()));
    }
    let dir = repo.join("target/nix-check");
    let written = dir.join("host-lints.txt");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&written, &fresh))
        .map_err(|e| format!("cannot write {}: {e}", written.display()))?;
    Err(format!(
        "{} is not the lint table of {}: `cp {} {}`",
        lints::TABLE,
        version.trim(),
        written.display(),
        lints::TABLE
    ))
}

/// `cargo xtask nix-fmt`: formats every Nix file of `repo` in place with
/// the linked alejandra, naming each file it changed.
pub fn format(repo: &Path) -> Result<()> {
    use alejandra::format::{Status, in_fs};
    let mut changed = 0;
    for file in nix_files(repo)? {
        match in_fs(file.display().to_string(), true) {
            Status::Error(e) => bail!("cannot format {}: {e}", file.display()),
            Status::Changed(true) => {
                changed += 1;
                eprintln!("formatted {}", file.display());
            }
            Status::Changed(false) => {}
        }
    }
    eprintln!(
        "nix-fmt: {changed} file(s) changed (alejandra {})",
        alejandra::version::VERSION
    );
    Ok(())
}

/// `alejandra --check` on `files`, in process with the alejandra library
/// (the registry has the library, not the command line).
fn alejandra_check(files: &[PathBuf], rel: &[String]) -> Result<String, String> {
    use alejandra::format::{Status, in_fs};
    let mut problems = Vec::new();
    for (file, name) in files.iter().zip(rel) {
        match in_fs(file.display().to_string(), false) {
            Status::Error(e) => problems.push(format!("{name}: cannot format: {e}")),
            Status::Changed(true) => problems.push(format!("{name}: requires formatting")),
            Status::Changed(false) => {}
        }
    }
    verdict(problems)
}

/// A check's outcome from its list of problems: none is a pass.
fn verdict(problems: Vec<String>) -> Result<String, String> {
    if problems.is_empty() {
        Ok(String::new())
    } else {
        Err(problems.join("\n"))
    }
}

/// The first line of `program --version`, or its file name.
fn version_of(program: &Path) -> String {
    exec::output(&mut cmd(program, ["--version"]))
        .ok()
        .and_then(|out| out.lines().next().map(str::to_string))
        .unwrap_or_else(|| program.display().to_string())
}

/// Every `.nix` file of the checkout, sorted; build outputs (`target`,
/// `result` links), `.git` and other hidden directories are skipped.
pub fn nix_files(repo: &Path) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type()?;
            if kind.is_symlink() || name.starts_with('.') || name == "target" {
                continue;
            }
            let path = entry.path();
            if kind.is_dir() {
                walk(&path, out)?;
            } else if name.ends_with(".nix") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(repo, &mut files)?;
    files.sort();
    Ok(files)
}

/// Parses every file with `nix-instantiate --parse` (against a dummy store:
/// nothing is written, no Nix daemon or /nix is needed).
fn parse_all(nix_instantiate: &Path, files: &[PathBuf], rel: &[String]) -> Result<String, String> {
    let mut problems = Vec::new();
    for (file, name) in files.iter().zip(rel) {
        let mut c = cmd(nix_instantiate, ["--store", "dummy://", "--parse"]);
        c.arg(file);
        if let Err(e) = exec::output(&mut c) {
            problems.push(format!("{name}: {}", tool_output(&e)));
        }
    }
    verdict(problems)
}

/// deadnix on all files (named relative to `repo`, from `repo`): its report
/// is the problem if it finds dead code.
fn deadnix_check(deadnix: &Path, repo: &Path, rel: &[String]) -> Result<String, String> {
    let mut c = cmd(deadnix, ["--fail"]);
    c.args(rel).current_dir(repo).env("NO_COLOR", "1");
    exec::output(&mut c)
        .map(|_| String::new())
        .map_err(|e| tool_output(&e))
}

/// What a linter that failed printed: the error of [`exec::output`] without
/// its first line, the command line.
fn tool_output(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    match text.split_once('\n') {
        Some((command, output)) if command.starts_with('`') => output.trim().to_string(),
        _ => text,
    }
}

/// Reads flake.lock and flake.nix and checks them against each other.
fn lock_check(repo: &Path) -> Result<String, String> {
    let read = |name: &str| {
        std::fs::read_to_string(repo.join(name)).map_err(|e| format!("cannot read {name}: {e}"))
    };
    let (lock, flake) = (read("flake.lock")?, read("flake.nix")?);
    check_flake_lock(&lock, &flake)?;
    let inputs = flake_inputs(&flake)?;
    let list: Vec<String> = inputs
        .iter()
        .map(|(name, i)| format!("{name} {}/{}@{}", i.owner, i.repo, &i.rev[..12]))
        .collect();
    Ok(format!(" ({})", list.join(", ")))
}

/// A flake input on GitHub, pinned to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubInput {
    /// Repository owner.
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The full commit hash.
    pub rev: String,
}

/// The inputs `flake.nix` declares (`name.url = "github:owner/repo/rev";`,
/// inside `inputs = { ... }` or as `inputs.name.url`). Every input must be a
/// GitHub URL pinned to a full commit hash: the lock is then only a record of
/// the pins, never a newer commit picked by `nix flake update`.
pub fn flake_inputs(flake_nix: &str) -> Result<BTreeMap<String, GithubInput>, String> {
    let decl =
        Regex::new(r#"(?m)^\s*(?:inputs\.)?([A-Za-z][A-Za-z0-9_-]*)\.url\s*=\s*"([^"]*)"\s*;"#)
            .map_err(|e| e.to_string())?;
    let github =
        Regex::new(r"^github:([^/?]+)/([^/?]+)/([0-9a-f]{40})$").map_err(|e| e.to_string())?;
    let mut inputs = BTreeMap::new();
    for c in decl.captures_iter(flake_nix) {
        let (name, url) = (&c[1], &c[2]);
        let g = github.captures(url).ok_or_else(|| {
            format!("flake.nix: input `{name}` ({url}) is not github:OWNER/REPO/<40-hex commit>")
        })?;
        let input = GithubInput {
            owner: g[1].to_string(),
            repo: g[2].to_string(),
            rev: g[3].to_string(),
        };
        if inputs.insert(name.to_string(), input).is_some() {
            return Err(format!("flake.nix: input `{name}` is declared twice"));
        }
    }
    if inputs.is_empty() {
        return Err("flake.nix declares no inputs (`name.url = \"github:...\";`)".into());
    }
    Ok(inputs)
}

/// Checks that `lock_json` (flake.lock) locks exactly the inputs of
/// `flake_nix`: lock format 7, the root node's inputs are the flake's inputs
/// (none missing, none extra), and each input's node is a GitHub lock
/// (`locked` and `original`) of the owner, repository and revision flake.nix
/// names, with a SHA-256 narHash and a lastModified time. All problems are
/// reported together.
pub fn check_flake_lock(lock_json: &str, flake_nix: &str) -> Result<(), String> {
    let inputs = flake_inputs(flake_nix)?;
    let lock: Value =
        serde_json::from_str(lock_json).map_err(|e| format!("flake.lock is not JSON: {e}"))?;
    let sri = Regex::new(r"^sha256-[A-Za-z0-9+/]{43}=$").map_err(|e| e.to_string())?;
    let mut problems = Vec::new();
    if lock["version"].as_u64() != Some(7) {
        problems.push(format!(
            "flake.lock: version is {}, expected 7",
            lock["version"]
        ));
    }
    let root_name = lock["root"].as_str().unwrap_or("root");
    let nodes = &lock["nodes"];
    let Some(root_inputs) = nodes[root_name]["inputs"].as_object() else {
        return Err(format!("flake.lock: root node `{root_name}` has no inputs"));
    };
    for name in inputs.keys().filter(|n| !root_inputs.contains_key(*n)) {
        problems.push(format!(
            "flake.lock: input `{name}` of flake.nix is not locked"
        ));
    }
    for name in root_inputs.keys().filter(|n| !inputs.contains_key(*n)) {
        problems.push(format!(
            "flake.lock: locks input `{name}`, which flake.nix does not declare"
        ));
    }
    for (name, want) in &inputs {
        let Some(target) = root_inputs.get(name) else {
            continue;
        };
        let Some(node_name) = target.as_str() else {
            problems.push(format!(
                "flake.lock: input `{name}` follows another input ({target})"
            ));
            continue;
        };
        let node = &nodes[node_name];
        if node.is_null() {
            problems.push(format!(
                "flake.lock: input `{name}` points at missing node `{node_name}`"
            ));
            continue;
        }
        for part in ["locked", "original"] {
            let got = &node[part];
            for (field, expected) in [
                ("type", "github"),
                ("owner", want.owner.as_str()),
                ("repo", want.repo.as_str()),
                ("rev", want.rev.as_str()),
            ] {
                if got[field].as_str() != Some(expected) {
                    problems.push(format!(
                        "flake.lock: {name}.{part}.{field} is {}, flake.nix says {expected:?}",
                        got[field]
                    ));
                }
            }
        }
        let locked = &node["locked"];
        let nar = locked["narHash"].as_str().unwrap_or_default();
        if !sri.is_match(nar) {
            problems.push(format!(
                "flake.lock: {name}.locked.narHash {:?} is not a sha256 SRI hash",
                locked["narHash"]
            ));
        }
        if locked["lastModified"].as_u64().is_none() {
            problems.push(format!("flake.lock: {name}.locked.lastModified is missing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = include_str!("../../flake.lock");
    const FLAKE: &str = include_str!("../../flake.nix");
    const NIXPKGS_REV: &str = "0e251e24a4f24e036a084b6b4b2d2491af4167f4";
    const CRANE_REV: &str = "2c71e194474d13de031d729b729c968ddbe3507f";

    fn lock() -> Value {
        serde_json::from_str(LOCK).unwrap()
    }

    fn check(lock: &Value) -> Result<(), String> {
        check_flake_lock(&serde_json::to_string_pretty(lock).unwrap(), FLAKE)
    }

    #[test]
    fn repository_lock_matches_the_flake_at_the_pinned_revisions() {
        check_flake_lock(LOCK, FLAKE).unwrap();
        let inputs = flake_inputs(FLAKE).unwrap();
        assert_eq!(inputs.keys().collect::<Vec<_>>(), ["crane", "nixpkgs"]);
        assert_eq!(
            inputs["nixpkgs"],
            GithubInput {
                owner: "NixOS".into(),
                repo: "nixpkgs".into(),
                rev: NIXPKGS_REV.into()
            }
        );
        assert_eq!(
            inputs["crane"],
            GithubInput {
                owner: "ipetkov".into(),
                repo: "crane".into(),
                rev: CRANE_REV.into()
            }
        );
    }

    #[test]
    fn wrong_revision_in_the_lock_fails() {
        let mut l = lock();
        l["nodes"]["nixpkgs"]["locked"]["rev"] = "1111111111111111111111111111111111111111".into();
        let err = check(&l).unwrap_err();
        assert!(err.contains("nixpkgs.locked.rev"), "{err}");
        assert!(err.contains(NIXPKGS_REV), "{err}");
    }

    #[test]
    fn wrong_owner_or_repository_fails() {
        let mut l = lock();
        l["nodes"]["crane"]["original"]["owner"] = "someone-else".into();
        l["nodes"]["crane"]["locked"]["repo"] = "crane-fork".into();
        let err = check(&l).unwrap_err();
        assert!(err.contains("crane.original.owner"), "{err}");
        assert!(err.contains("crane.locked.repo"), "{err}");
    }

    #[test]
    fn missing_input_fails() {
        let mut l = lock();
        l["nodes"]["root"]["inputs"]
            .as_object_mut()
            .unwrap()
            .remove("crane");
        l["nodes"].as_object_mut().unwrap().remove("crane");
        let err = check(&l).unwrap_err();
        assert!(
            err.contains("input `crane` of flake.nix is not locked"),
            "{err}"
        );
    }

    #[test]
    fn extra_input_fails() {
        let mut l = lock();
        l["nodes"]["root"]["inputs"]["flake-utils"] = "flake-utils".into();
        l["nodes"]["flake-utils"] = l["nodes"]["crane"].clone();
        let err = check(&l).unwrap_err();
        assert!(
            err.contains("locks input `flake-utils`, which flake.nix does not declare"),
            "{err}"
        );
    }

    #[test]
    fn bad_hash_and_lock_version_fail() {
        let mut l = lock();
        l["version"] = 6.into();
        l["nodes"]["crane"]["locked"]["narHash"] = "sha256-short".into();
        let err = check(&l).unwrap_err();
        assert!(err.contains("version is 6"), "{err}");
        assert!(err.contains("crane.locked.narHash"), "{err}");
    }

    #[test]
    fn flake_input_without_a_commit_is_rejected() {
        let flake = FLAKE.replace(&format!("/{NIXPKGS_REV}\""), "\"");
        assert_ne!(flake, FLAKE, "fixture: nixpkgs URL not found in flake.nix");
        let err = check_flake_lock(LOCK, &flake).unwrap_err();
        assert!(err.contains("input `nixpkgs`"), "{err}");
        assert!(err.contains("40-hex commit"), "{err}");
    }

    #[test]
    fn flake_revision_bump_without_a_new_lock_fails() {
        let flake = FLAKE.replace(CRANE_REV, "2222222222222222222222222222222222222222");
        let err = check_flake_lock(LOCK, &flake).unwrap_err();
        assert!(err.contains("crane.locked.rev"), "{err}");
        assert!(err.contains("crane.original.rev"), "{err}");
    }

    #[test]
    fn the_readme_names_the_nix_version_the_flake_checks() {
        let flake = Regex::new(r#"minimumNixVersion = "([0-9.]+)";"#).unwrap();
        let readme = Regex::new(r"Nix ([0-9]+\.[0-9]+\.[0-9]+) or newer").unwrap();
        let checked = &flake
            .captures(FLAKE)
            .expect("flake.nix sets minimumNixVersion")[1];
        let text = include_str!("../../README.md");
        let claimed: Vec<&str> = readme
            .captures_iter(text)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        assert!(
            !claimed.is_empty(),
            "README.md names no minimum Nix version"
        );
        assert!(
            claimed.iter().all(|v| *v == checked),
            "README.md says Nix {claimed:?}, flake.nix checks {checked}"
        );
        assert!(FLAKE.contains("lib.versionAtLeast builtins.nixVersion minimumNixVersion"));
    }

    /// The VM tests run as a flake check on builders of unknown speed: the
    /// KUnit test's own boot timeout must fire, with its message, well
    /// before nextest kills the test.
    #[test]
    fn nextest_kills_the_kunit_test_only_after_its_boot_timeout() {
        let kunit = include_str!("../../vm-tests/tests/kunit.rs");
        let boot = Regex::new(r"const BOOT_TIMEOUT: Duration = Duration::from_secs\((\d+)\);")
            .unwrap()
            .captures(kunit)
            .expect("kunit.rs has BOOT_TIMEOUT")[1]
            .parse::<u64>()
            .unwrap();
        let config: toml::Table =
            toml::from_str(include_str!("../../.config/nextest.toml")).unwrap();
        // The default profile's overrides apply to every profile, after the
        // profile's own: the ci profile must not have a kunit override of
        // its own, or it must be as patient.
        for profile in ["default", "ci"] {
            let overrides = config["profile"][profile]
                .get("overrides")
                .and_then(|o| o.as_array())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let kunit = overrides.iter().find(|o| {
                o["filter"]
                    .as_str()
                    .is_some_and(|f| f.contains("binary(kunit)"))
            });
            let Some(kunit) = kunit else {
                assert!(
                    profile != "default",
                    "the default profile has no override for the kunit test"
                );
                continue;
            };
            let timeout = &kunit["slow-timeout"];
            let period: u64 = timeout["period"]
                .as_str()
                .and_then(|p| p.strip_suffix('s'))
                .and_then(|p| p.parse().ok())
                .unwrap();
            let kill = period * timeout["terminate-after"].as_integer().unwrap() as u64;
            assert!(
                kill >= boot + 120,
                "profile {profile}: nextest kills the kunit test after {kill} s, its boot timeout is {boot} s"
            );
        }
    }

    #[test]
    fn nix_files_skip_build_outputs_and_hidden_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "flake.nix",
            "nix/a.nix",
            "nix/sub/b.nix",
            "target/x.nix",
            ".git/y.nix",
            "nix/c.txt",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "{}").unwrap();
        }
        std::os::unix::fs::symlink(root.join("nix"), root.join("result")).unwrap();
        let found: Vec<String> = nix_files(root)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(found, ["flake.nix", "nix/a.nix", "nix/sub/b.nix"]);
    }
}
