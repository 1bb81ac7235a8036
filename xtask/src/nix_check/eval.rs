//! The nix-eval step: the flake evaluated by a real Nix (the project's
//! `nix-eval` tool: a current Nix in a chroot, the real pinned crane, and a
//! stand-in nixpkgs whose packages are trivial derivations). It runs when
//! work trees of the pinned crane and of nixpkgs.lib are named by
//! [`CRANE_ENV`] and [`NIXPKGS_LIB_ENV`], and is skipped otherwise.
//!
//! Past the tool's own steps (`nix flake check --no-build`, every package's
//! and check's drvPath, the app and the dev shell), it reads the `.drv`
//! files that Nix wrote and checks what only a real evaluation shows:
//!
//! * the artifact directory, the VM and the VM tests take the `out` output
//!   (bzImage) of every kernel, never `dev` (the build tree), while the
//!   modules do take `dev` (so the scan does see the kernels);
//! * the outputs that must reference no store path say so to Nix
//!   (`allowedReferences = []`, for the kernel `outputChecks.out`), which
//!   real Nix enforces when it builds them;
//! * the dev shell does not export the kernel's `MAKEFLAGS`;
//! * the modules have no `src` attribute (which stdenv would export to
//!   kbuild).

use crate::exec::{self, cmd};
use crate::paths::Cache;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Environment variable naming a work tree of the pinned crane.
pub const CRANE_ENV: &str = "NIX_EVAL_CRANE";
/// Environment variable naming a work tree of nixpkgs.lib.
pub const NIXPKGS_LIB_ENV: &str = "NIX_EVAL_NIXPKGS_LIB";
/// Environment variable naming the tool's `run` script (default:
/// `shared/tools/nix-eval/run` in a directory above the checkout).
pub const RUN_ENV: &str = "NIX_EVAL_RUN";
/// The line the tool ends with when every step evaluated.
const SUCCESS: &str = "nix-eval: every step evaluated";

/// What the step did.
pub enum Outcome {
    /// Not asked for: the line to print.
    Skipped(String),
    /// Ran: the tool's last lines and the drv checks' summary.
    Ran(String),
}

/// Runs the tool and the drv checks if [`CRANE_ENV`] and
/// [`NIXPKGS_LIB_ENV`] are set; `Err` carries the problems.
pub fn run(repo: &Path, cache: &Cache) -> Result<Outcome, String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let (crane, nixpkgs_lib) = match (var(CRANE_ENV), var(NIXPKGS_LIB_ENV)) {
        (None, None) => {
            return Ok(Outcome::Skipped(format!(
                "skipped: set {CRANE_ENV} and {NIXPKGS_LIB_ENV} to work trees of the pinned crane and of nixpkgs.lib to evaluate the flake with a real Nix"
            )));
        }
        (Some(c), Some(l)) => (PathBuf::from(c), PathBuf::from(l)),
        _ => {
            return Err(format!(
                "set both {CRANE_ENV} and {NIXPKGS_LIB_ENV}, not one"
            ));
        }
    };
    let tool = run_script(repo)?;
    let log = cache.logs().join("nix-eval.log");
    let mut c = cmd(&tool, [&crane, &nixpkgs_lib]);
    c.current_dir(repo);
    let result = exec::run_logged(&mut c, "nix-eval (real Nix, stand-in nixpkgs)", &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let tail = last_lines(&text, 1);
    if let Err(e) = result {
        return Err(format!("{}\n{e:#}", failed_steps(&text)));
    }
    if text.lines().last().map(str::trim) != Some(SUCCESS) {
        return Err(format!(
            "the tool did not end with {SUCCESS:?} (log: {}):\n{tail}",
            log.display()
        ));
    }
    let setup = tool.with_file_name("setup");
    let root = exec::output(&mut cmd(&setup, [] as [&str; 0]))
        .map_err(|e| format!("cannot find the tool's chroot: {e:#}"))?;
    let store = StoreReader {
        root: PathBuf::from(root.trim()),
    };
    let summary = check_derivations(&text, &store)?;
    Ok(Outcome::Ran(format!(
        "{tail}\n{summary}\n(full log: {})",
        log.display()
    )))
}

/// The tool's `run`: `$NIX_EVAL_RUN`, else `shared/tools/nix-eval/run` in
/// the nearest directory above the checkout that has one.
fn run_script(repo: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(RUN_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    repo.ancestors()
        .map(|d| d.join("shared/tools/nix-eval/run"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no shared/tools/nix-eval/run above {}: set {RUN_ENV} to the tool's run script",
                repo.display()
            )
        })
}

/// The tool's failed steps and Nix's error lines, first of all.
fn failed_steps(log: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in log.lines().map(str::trim) {
        if (line.starts_with("FAILED: ") || line.starts_with("error: ")) && !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines.join("\n")
}

/// The last `n` non-empty lines of `text`.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Reads `.drv` files from the store of the tool's chroot.
struct StoreReader {
    root: PathBuf,
}

impl StoreReader {
    fn read(&self, drv_path: &str) -> Result<Derivation, String> {
        let file = self.root.join(drv_path.trim_start_matches('/'));
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        Derivation::parse(&text).map_err(|e| format!("{drv_path}: {e}"))
    }
}

/// The JSON object printed after the tool's step header `== {step}`.
fn step_json(log: &str, step: &str) -> Result<BTreeMap<String, String>, String> {
    let header = format!("== {step}");
    let json = log
        .lines()
        .skip_while(|l| l.trim() != header)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("the log has no JSON after `{header}`"))?;
    serde_json::from_str(json).map_err(|e| format!("`{header}`: {e}"))
}

/// The store path printed after the tool's step header `== {step}`.
fn step_path(log: &str, step: &str) -> Result<String, String> {
    let header = format!("== {step}");
    log.lines()
        .skip_while(|l| l.trim() != header)
        .find(|l| l.starts_with("/nix/store/"))
        .map(|l| l.trim().to_string())
        .ok_or_else(|| format!("the log has no store path after `{header}`"))
}

/// The drv checks (see the module documentation) on the drv paths of the
/// tool's log.
fn check_derivations(log: &str, store: &StoreReader) -> Result<String, String> {
    let packages = step_json(log, "drvPath of every package")?;
    let checks = step_json(log, "drvPath of every check")?;
    let dev_shell = step_path(log, "devShells.default")?;
    let kernels: BTreeMap<&str, &str> = packages
        .iter()
        .filter(|(name, _)| *name == "kernel" || name.starts_with("kernel-"))
        .map(|(name, path)| (path.as_str(), name.as_str()))
        .collect();
    if kernels.is_empty() {
        return Err("no kernel package (kernel, kernel-NAME) among the packages".into());
    }
    let named = |map: &BTreeMap<String, String>, name: &str| {
        map.get(name)
            .cloned()
            .ok_or_else(|| format!("no {name} among the flake's outputs"))
    };
    let mut problems = Vec::new();
    let mut summary = Vec::new();

    let booting = [
        ("packages.default", named(&packages, "default")?),
        ("packages.vm", named(&packages, "vm")?),
        ("checks.vm-tests", named(&checks, "vm-tests")?),
    ];
    for (what, path) in &booting {
        let drv = store.read(path)?;
        let taken = kernel_outputs(&drv, &kernels);
        if taken
            .iter()
            .any(|(_, outputs)| outputs.iter().any(|o| o != "out"))
        {
            problems.push(format!(
                "{what} takes more than the kernels' out output: {}",
                describe(&taken)
            ));
        }
        summary.push(format!("{what}: {}", describe(&taken)));
    }
    // Checks that need a kernel's build tree (its dev output): the gdb
    // test (vmlinux, the gdb scripts of the debug kernel) and ra-check
    // (the lab kernel's `make rust-analyzer`).
    for (check, kernel, without) in [
        ("vm-tests-gdb", "kernel-debug", "gdb would find no vmlinux"),
        (
            "ra-check",
            "kernel",
            "make rust-analyzer would have no tree",
        ),
    ] {
        let drv = store.read(&named(&checks, check)?)?;
        let taken = kernel_outputs(&drv, &kernels);
        if !taken
            .iter()
            .any(|(name, o)| name == kernel && o.iter().any(|o| o == "dev"))
        {
            problems.push(format!(
                "checks.{check} does not take {kernel}.dev ({}): {without}",
                describe(&taken)
            ));
        }
        summary.push(format!("checks.{check}: {}", describe(&taken)));
    }
    for (name, path) in packages
        .iter()
        .filter(|(n, _)| *n == "module" || n.starts_with("module-"))
    {
        let drv = store.read(path)?;
        let taken = kernel_outputs(&drv, &kernels);
        if !taken.iter().any(|(_, o)| o.iter().any(|o| o == "dev")) {
            problems.push(format!(
                "packages.{name} does not take a kernel's dev output ({}): the kernel scan is blind",
                describe(&taken)
            ));
        }
        summary.push(format!("packages.{name}: {}", describe(&taken)));
        if drv.attr("src").is_some() {
            problems.push(format!(
                "packages.{name} has a `src` attribute, which stdenv exports to kbuild"
            ));
        }
    }

    let leaves = packages.iter().filter(|(n, _)| {
        *n == "default"
            || *n == "ssdt"
            || ["module", "initramfs"]
                .iter()
                .any(|p| *n == p || n.starts_with(&format!("{p}-")))
    });
    for (name, path) in leaves {
        let drv = store.read(path)?;
        if !is_empty_list(drv.attr("allowedReferences").as_ref()) {
            problems.push(format!(
                "packages.{name} does not declare allowedReferences = [] (it must reference no store path)"
            ));
        }
    }
    for (path, name) in &kernels {
        let drv = store.read(path)?;
        let checks = drv.attr("outputChecks");
        let out = checks
            .as_ref()
            .and_then(|c| c.get("out"))
            .and_then(|o| o.get("allowedReferences"));
        if !is_empty_list(out) {
            problems.push(format!(
                "packages.{name} does not declare outputChecks.out.allowedReferences = []"
            ));
        }
        let outputs: Vec<&str> = drv.outputs.iter().map(String::as_str).collect();
        if outputs != ["dev", "out"] {
            problems.push(format!(
                "packages.{name} has outputs {outputs:?}, expected dev and out"
            ));
        }
    }

    let shell = store.read(&dev_shell)?;
    if shell.mentions_key("MAKEFLAGS") {
        problems.push(
            "the dev shell exports MAKEFLAGS (the kernel's CC would reach every make)".into(),
        );
    }

    if problems.is_empty() {
        Ok(format!("kernel outputs taken:\n  {}", summary.join("\n  ")))
    } else {
        Err(problems.join("\n"))
    }
}

/// `kernel package name -> outputs` for the kernel derivations among the
/// inputs of `drv`.
fn kernel_outputs(drv: &Derivation, kernels: &BTreeMap<&str, &str>) -> Vec<(String, Vec<String>)> {
    drv.input_drvs
        .iter()
        .filter_map(|(path, outputs)| {
            kernels
                .get(path.as_str())
                .map(|name| (name.to_string(), outputs.clone()))
        })
        .collect()
}

/// `kernel.out kernel-kunit.out`, or `no kernel`.
fn describe(taken: &[(String, Vec<String>)]) -> String {
    if taken.is_empty() {
        return "no kernel".into();
    }
    taken
        .iter()
        .flat_map(|(name, outputs)| outputs.iter().map(move |o| format!("{name}.{o}")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[]` as a JSON value, or the empty string a list becomes in a plain
/// derivation's environment.
fn is_empty_list(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// What a `.drv` file says (ATerm: `Derive([outputs],[inputDrvs],[inputSrcs],
/// system,builder,[args],[env])`), as far as the checks need it.
#[derive(Debug, PartialEq)]
pub struct Derivation {
    /// Output names.
    pub outputs: Vec<String>,
    /// Input derivations and the outputs taken from each.
    pub input_drvs: Vec<(String, Vec<String>)>,
    /// The environment.
    pub env: BTreeMap<String, String>,
}

impl Derivation {
    /// Parses a `.drv` file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut p = ATerm::new(text);
        p.literal("Derive(")?;
        let outputs = p.list(|p| {
            let t = p.tuple()?;
            t.into_iter()
                .next()
                .ok_or_else(|| "empty output".to_string())
        })?;
        p.literal(",")?;
        let input_drvs = p.list(|p| {
            p.literal("(")?;
            let path = p.string()?;
            p.literal(",")?;
            let outputs = p.list(ATerm::string)?;
            p.literal(")")?;
            Ok((path, outputs))
        })?;
        p.literal(",")?;
        p.list(ATerm::string)?;
        p.literal(",")?;
        p.string()?;
        p.literal(",")?;
        p.string()?;
        p.literal(",")?;
        p.list(ATerm::string)?;
        p.literal(",")?;
        let env = p
            .list(|p| {
                let t = p.tuple()?;
                match <[String; 2]>::try_from(t) {
                    Ok([k, v]) => Ok((k, v)),
                    Err(t) => Err(format!("environment entry of {} fields", t.len())),
                }
            })?
            .into_iter()
            .collect();
        p.literal(")")?;
        Ok(Derivation {
            outputs,
            input_drvs,
            env,
        })
    }

    /// The attributes the derivation was made from: with structured
    /// attributes the `__json` variable; with the nix-eval stand-in the
    /// `recorded` one; otherwise the environment itself.
    fn attrs(&self) -> BTreeMap<String, Value> {
        for var in ["__json", "recorded"] {
            if let Some(Ok(Value::Object(m))) = self.env.get(var).map(|j| serde_json::from_str(j)) {
                return m.into_iter().collect();
            }
        }
        self.env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    }

    /// One attribute (see [`Derivation::attrs`]).
    fn attr(&self, name: &str) -> Option<Value> {
        self.attrs().remove(name)
    }

    /// Whether `key` is an attribute or a key nested anywhere in one (an
    /// `env = { KEY = ...; }` attribute set, for instance).
    fn mentions_key(&self, key: &str) -> bool {
        fn walk(v: &Value, key: &str) -> bool {
            match v {
                Value::Object(m) => m.iter().any(|(k, v)| k == key || walk(v, key)),
                Value::Array(a) => a.iter().any(|v| walk(v, key)),
                _ => false,
            }
        }
        self.env.contains_key(key) || self.attrs().iter().any(|(k, v)| k == key || walk(v, key))
    }
}

/// A cursor over ATerm text.
struct ATerm<'a> {
    rest: &'a str,
}

impl<'a> ATerm<'a> {
    fn new(text: &'a str) -> Self {
        ATerm { rest: text }
    }

    fn literal(&mut self, s: &str) -> Result<(), String> {
        self.rest = self.rest.strip_prefix(s).ok_or_else(|| {
            format!(
                "expected {s:?} at {:?}",
                self.rest.chars().take(30).collect::<String>()
            )
        })?;
        Ok(())
    }

    /// `"..."` with `\"`, `\\`, `\n`, `\r`, `\t` escapes.
    fn string(&mut self) -> Result<String, String> {
        self.literal("\"")?;
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    /// `[item,item,...]`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.literal("[")?;
        let mut out = Vec::new();
        if self.rest.starts_with(']') {
            self.literal("]")?;
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.rest.starts_with(',') {
                self.literal(",")?;
            } else {
                self.literal("]")?;
                return Ok(out);
            }
        }
    }

    /// `("...","...",...)`: a tuple of strings.
    fn tuple(&mut self) -> Result<Vec<String>, String> {
        self.literal("(")?;
        let mut out = vec![self.string()?];
        while self.rest.starts_with(',') {
            self.literal(",")?;
            out.push(self.string()?);
        }
        self.literal(")")?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRV: &str = r#"Derive([("dev","/nix/store/d-k-dev","",""),("out","/nix/store/o-k","","")],[("/nix/store/a-x.drv",["out"]),("/nix/store/b-k.drv",["dev","out"])],["/nix/store/s-src"],"x86_64-linux","/bin/sh",["-c","echo \"hi\"\n"],[("MAKEFLAGS","CC=x"),("recorded","{\"allowedReferences\":[],\"env\":{\"A\":\"b\"}}")])"#;

    #[test]
    fn a_drv_file_is_read() {
        let d = Derivation::parse(DRV).unwrap();
        assert_eq!(d.outputs, ["dev", "out"]);
        assert_eq!(
            d.input_drvs,
            [
                ("/nix/store/a-x.drv".to_string(), vec!["out".to_string()]),
                (
                    "/nix/store/b-k.drv".to_string(),
                    vec!["dev".to_string(), "out".to_string()]
                )
            ]
        );
        assert_eq!(d.env["MAKEFLAGS"], "CC=x");
        assert!(is_empty_list(d.attr("allowedReferences").as_ref()));
        assert!(d.mentions_key("A"));
        assert!(d.mentions_key("MAKEFLAGS"));
        assert!(!d.mentions_key("src"));
        assert!(Derivation::parse("Derive([").is_err());
    }

    #[test]
    fn kernel_outputs_are_named_by_package() {
        let d = Derivation::parse(DRV).unwrap();
        let kernels = BTreeMap::from([("/nix/store/b-k.drv", "kernel-kunit")]);
        let taken = kernel_outputs(&d, &kernels);
        assert_eq!(describe(&taken), "kernel-kunit.dev kernel-kunit.out");
        assert_eq!(describe(&[]), "no kernel");
    }

    #[test]
    fn the_log_gives_the_drv_paths() {
        let log = "== drvPath of every package\n{\"kernel\":\"/nix/store/k.drv\"}\n\n== devShells.default\n/nix/store/s.drv\n";
        assert_eq!(
            step_json(log, "drvPath of every package").unwrap()["kernel"],
            "/nix/store/k.drv"
        );
        assert_eq!(
            step_path(log, "devShells.default").unwrap(),
            "/nix/store/s.drv"
        );
        assert!(step_json(log, "drvPath of every check").is_err());
    }

    #[test]
    fn failed_steps_and_errors_come_first() {
        let log = "== nix flake check --no-build\n       error: flake attribute 'checks.x86_64-linux.override' is not a derivation\nFAILED: nix flake check --no-build\n\n== apps.vm.program\n/nix/store/x\n";
        assert_eq!(
            failed_steps(log),
            "error: flake attribute 'checks.x86_64-linux.override' is not a derivation\nFAILED: nix flake check --no-build"
        );
    }
}
