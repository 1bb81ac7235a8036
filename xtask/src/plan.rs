//! The lab's build plan: the kernels of `kernel/kernels.toml` and the list of
//! build steps made from them. `cargo xtask build` runs the list in order,
//! numbering its progress from it; the single-step commands (`xtask kernel`,
//! `module`, `ssdt`, `initramfs`, `artifacts`) are the same steps with
//! explicit inputs, and the flake derives one derivation per step from the
//! same `kernels.toml`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The kernel list's place in the checkout.
pub const KERNELS_FILE: &str = "kernel/kernels.toml";

/// When the host path builds a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum When {
    /// Every `build`, `vm` and `test`.
    Always,
    /// `test`, or `build --kernel <name>`.
    Test,
}

/// One kernel configuration of `kernel/kernels.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// Its name: build directories, artifact directory, flake packages.
    pub name: String,
    /// What it is for, shown in the progress output.
    pub description: String,
    /// Config fragments (relative to `kernel/`) merged onto tinyconfig, in
    /// order.
    pub fragments: Vec<String>,
    /// When the host path builds it.
    pub build: When,
    /// How many objects a full build of it counts: the progress bar's
    /// total on a machine that never built it (afterwards the count of the
    /// last full build is used).
    pub objects: Option<u64>,
}

impl KernelSpec {
    /// The fragment files, as paths in the checkout `repo`.
    pub fn fragment_paths(&self, repo: &Path) -> Vec<PathBuf> {
        self.fragments
            .iter()
            .map(|f| repo.join("kernel").join(f))
            .collect()
    }
}

/// One out-of-tree module directory of `kernel/kernels.toml`, built
/// against every kernel.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleSpec {
    /// The directory (with its Kbuild file), relative to the checkout.
    pub dir: String,
    /// What it holds, shown in the progress output.
    pub description: String,
}

/// One compile-fail module directory of `kernel/kernels.toml`: Rust code
/// that must not build against the lab kernel, failing with exactly the
/// `errors` given, and that must build with `FIXED=1` (its correct code).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileFailSpec {
    /// The directory (with its Kbuild file), relative to the checkout.
    pub dir: String,
    /// What it shows, shown in the progress output.
    pub description: String,
    /// The rustc error codes the build must fail with (`E0597`), all of
    /// them and no other.
    pub errors: Vec<String>,
}

impl CompileFailSpec {
    /// Its name: the directory's last component (`checks.compile-fail-<name>`
    /// in the flake, `--only <name>` of `xtask compile-fail`).
    pub fn name(&self) -> &str {
        self.dir.rsplit('/').next().unwrap_or(&self.dir)
    }
}

/// The file's shape: `[[kernel]]`, `[[module]]` and `[[compile_fail]]`
/// tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KernelsFile {
    kernel: Vec<KernelSpec>,
    #[serde(default)]
    module: Vec<ModuleSpec>,
    #[serde(default)]
    compile_fail: Vec<CompileFailSpec>,
}

/// The text of `kernel/kernels.toml` of the checkout `repo`.
fn read(repo: &Path) -> Result<(PathBuf, String)> {
    let path = repo.join(KERNELS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the kernel list {}", path.display()))?;
    Ok((path, text))
}

/// Reads and checks the kernels of `kernel/kernels.toml` of the checkout
/// `repo`.
pub fn load(repo: &Path) -> Result<Vec<KernelSpec>> {
    let (path, text) = read(repo)?;
    parse(&text, repo).with_context(|| format!("in the kernel list {}", path.display()))
}

/// Reads and checks the module directories of `kernel/kernels.toml` of the
/// checkout `repo`: at least one, each listed once, each with a Kbuild file.
pub fn load_modules(repo: &Path) -> Result<Vec<ModuleSpec>> {
    let (path, text) = read(repo)?;
    parse_modules(&text, repo).with_context(|| format!("in the kernel list {}", path.display()))
}

/// Parses and checks the `[[module]]` entries of kernel list text.
pub fn parse_modules(text: &str, repo: &Path) -> Result<Vec<ModuleSpec>> {
    let modules = toml::from_str::<KernelsFile>(text)?.module;
    if modules.is_empty() {
        bail!("no [[module]] entry: the driver's directory must be listed");
    }
    for (i, m) in modules.iter().enumerate() {
        if modules[..i].iter().any(|o| o.dir == m.dir) {
            bail!("module directory {:?} is listed twice", m.dir);
        }
        if !repo.join(&m.dir).join("Kbuild").is_file() {
            bail!("module directory {:?} has no Kbuild file", m.dir);
        }
    }
    Ok(modules)
}

/// Reads and checks the compile-fail directories of `kernel/kernels.toml`
/// of the checkout `repo`.
pub fn load_compile_fail(repo: &Path) -> Result<Vec<CompileFailSpec>> {
    let (path, text) = read(repo)?;
    parse_compile_fail(&text, repo)
        .with_context(|| format!("in the kernel list {}", path.display()))
}

/// Parses and checks the `[[compile_fail]]` entries of kernel list text:
/// each with a Kbuild file, a unique name, not also a `[[module]]` (the
/// build would fail), and at least one error code of rustc's form `E0123`.
pub fn parse_compile_fail(text: &str, repo: &Path) -> Result<Vec<CompileFailSpec>> {
    let file = toml::from_str::<KernelsFile>(text)?;
    let entries = file.compile_fail;
    for (i, c) in entries.iter().enumerate() {
        if entries[..i].iter().any(|o| o.name() == c.name()) {
            bail!("compile-fail name {:?} is listed twice", c.name());
        }
        if file.module.iter().any(|m| m.dir == c.dir) {
            bail!(
                "{:?} is both a [[module]] and a [[compile_fail]] directory",
                c.dir
            );
        }
        if !repo.join(&c.dir).join("Kbuild").is_file() {
            bail!("compile-fail directory {:?} has no Kbuild file", c.dir);
        }
        if c.errors.is_empty() {
            bail!("compile-fail directory {:?} expects no error code", c.dir);
        }
        for e in &c.errors {
            let valid =
                e.len() == 5 && e.starts_with('E') && e[1..].bytes().all(|b| b.is_ascii_digit());
            if !valid {
                bail!(
                    "compile-fail directory {:?}: {e:?} is not a rustc error code (E0123)",
                    c.dir
                );
            }
        }
    }
    Ok(entries)
}

/// Parses and checks kernel list text: unique, path-safe names, the lab
/// kernel present and built always, every fragment file present in `repo`.
pub fn parse(text: &str, repo: &Path) -> Result<Vec<KernelSpec>> {
    let kernels = toml::from_str::<KernelsFile>(text)?.kernel;
    for (i, k) in kernels.iter().enumerate() {
        let safe = !k.name.is_empty()
            && k.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !safe {
            bail!(
                "kernel name {:?}: use lowercase letters, digits and '-'",
                k.name
            );
        }
        if kernels[..i].iter().any(|o| o.name == k.name) {
            bail!("kernel {:?} is listed twice", k.name);
        }
        if k.fragments.is_empty() {
            bail!("kernel {:?} has no config fragment", k.name);
        }
        for f in k.fragment_paths(repo) {
            if !f.is_file() {
                bail!(
                    "kernel {:?}: fragment {} does not exist",
                    k.name,
                    f.display()
                );
            }
        }
    }
    match kernels
        .iter()
        .find(|k| k.name == vm_tests::artifacts::LAB_KERNEL)
    {
        Some(lab) if lab.build == When::Always => Ok(kernels),
        Some(_) => bail!("the lab kernel must have build = \"always\""),
        None => bail!(
            "no kernel named {:?}: the VM and the tests boot it",
            vm_tests::artifacts::LAB_KERNEL
        ),
    }
}

/// The kernels a build makes: those built always, those built for tests
/// when `for_tests`, and the ones named in `wanted`.
pub fn select(
    kernels: &[KernelSpec],
    wanted: &[String],
    for_tests: bool,
) -> Result<Vec<KernelSpec>> {
    for w in wanted {
        if !kernels.iter().any(|k| &k.name == w) {
            let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
            bail!(
                "no kernel named {w:?} in {KERNELS_FILE} (there are: {})",
                names.join(", ")
            );
        }
    }
    Ok(kernels
        .iter()
        .filter(|k| {
            k.build == When::Always
                || (for_tests && k.build == When::Test)
                || wanted.contains(&k.name)
        })
        .cloned()
        .collect())
}

/// One build step of the host path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Host packages, pinned sources, bindgen.
    Provision,
    /// The ACPI tables.
    Ssdt,
    /// Configure, check and build a kernel.
    Kernel(KernelSpec),
    /// The module directories (the driver, the test modules) against that
    /// kernel.
    Module(KernelSpec),
    /// The initramfs holding that driver.
    Initramfs(KernelSpec),
    /// Everything installed into the artifact directory, with the manifest.
    Artifacts,
}

impl Step {
    /// What the progress output says of it.
    pub fn title(&self) -> String {
        match self {
            Step::Provision => "provision: host packages, kernel source, rust-src, bindgen".into(),
            Step::Ssdt => "ssdt: compile the ACPI tables".into(),
            Step::Kernel(k) => format!("kernel {}: {}", k.name, k.description),
            Step::Module(k) => format!("modules against the {} kernel", k.name),
            Step::Initramfs(k) => format!("initramfs for the {} kernel", k.name),
            Step::Artifacts => "artifacts: install and write the manifest".into(),
        }
    }
}

/// The steps that build `kernels`, in the order they must run.
pub fn steps(kernels: &[KernelSpec]) -> Vec<Step> {
    let mut steps = vec![Step::Provision, Step::Ssdt];
    for k in kernels {
        steps.extend([
            Step::Kernel(k.clone()),
            Step::Module(k.clone()),
            Step::Initramfs(k.clone()),
        ]);
    }
    steps.push(Step::Artifacts);
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// A kernels.toml entry.
    fn entry(name: &str, frag: &str, build: &str) -> String {
        format!(
            "[[kernel]]\nname = \"{name}\"\ndescription = \"d\"\nfragments = [\"{frag}\"]\nbuild = \"{build}\"\n"
        )
    }

    /// The lab kernel plus a test-only kernel "debug", parsed.
    fn lab_and_debug() -> Vec<KernelSpec> {
        let text = format!(
            "{}{}",
            entry("lab", "lab.config", "always"),
            entry("debug", "lab.config", "test")
        );
        parse(&text, &repo()).unwrap()
    }

    #[test]
    fn the_repository_kernel_list_has_the_lab_kernel_with_kunit() {
        let kernels = load(&repo()).unwrap();
        let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"lab"), "{names:?}");
        assert_eq!(select(&kernels, &[], false).unwrap().len(), 1);
        let lab = &kernels[0];
        assert!(lab.fragments.iter().any(|f| f.ends_with("kunit.config")));
    }

    #[test]
    fn test_kernels_are_built_for_tests_or_on_demand() {
        let kernels = lab_and_debug();
        assert_eq!(select(&kernels, &[], false).unwrap().len(), 1);
        let test = select(&kernels, &[], true).unwrap();
        assert!(test.iter().any(|k| k.name == "debug"));
    }

    #[test]
    fn steps_come_three_per_kernel_between_setup_and_install() {
        let kernels = lab_and_debug();
        let two = select(&kernels, &["debug".into()], false).unwrap();
        let steps = steps(&two);
        assert_eq!(steps.len(), 2 + 3 * two.len() + 1);
        assert_eq!(steps[0], Step::Provision);
        assert_eq!(steps.last(), Some(&Step::Artifacts));
        assert!(matches!(&steps[5], Step::Kernel(k) if k.name == "debug"));
    }

    #[test]
    fn the_module_directories_start_with_the_driver_and_are_checked() {
        let modules = load_modules(&repo()).unwrap();
        assert_eq!(modules[0].dir, "module");
        let module = |dir: &str| format!("[[module]]\ndir = \"{dir}\"\ndescription = \"d\"\n");
        let lab = entry("lab", "lab.config", "always");
        for (text, why) in [
            (lab.clone(), "no [[module]]"),
            (
                format!("{lab}{}{}", module("module"), module("module")),
                "listed twice",
            ),
            (format!("{lab}{}", module("kernel")), "no Kbuild"),
        ] {
            let err = format!("{:#}", parse_modules(&text, &repo()).unwrap_err());
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn the_compile_fail_directories_are_checked() {
        let entries = load_compile_fail(&repo()).unwrap();
        assert!(
            entries.iter().any(|c| c.name() == "free_before_free_irq"),
            "{entries:?}"
        );
        let lab = entry("lab", "lab.config", "always");
        let dir = "exercises/rust-compile-fail/free_before_free_irq";
        let cf = |dir: &str, errors: &str| {
            format!("[[compile_fail]]\ndir = \"{dir}\"\ndescription = \"d\"\nerrors = [{errors}]\n")
        };
        assert_eq!(
            parse_compile_fail(&format!("{lab}{}", cf(dir, "\"E0597\"")), &repo()).unwrap()[0]
                .errors,
            ["E0597"]
        );
        for (text, why) in [
            (format!("{lab}{}", cf(dir, "")), "expects no error code"),
            (
                format!("{lab}{}", cf(dir, "\"0597\"")),
                "not a rustc error code",
            ),
            (
                format!("{lab}{}", cf(dir, "\"E05970\"")),
                "not a rustc error code",
            ),
            (format!("{lab}{}", cf("kernel", "\"E0597\"")), "no Kbuild"),
            (
                format!("{lab}{}{}", cf(dir, "\"E0597\""), cf(dir, "\"E0505\"")),
                "listed twice",
            ),
            (
                format!(
                    "{lab}[[module]]\ndir = \"{dir}\"\ndescription = \"d\"\n{}",
                    cf(dir, "\"E0597\"")
                ),
                "both a [[module]]",
            ),
        ] {
            let err = format!("{:#}", parse_compile_fail(&text, &repo()).unwrap_err());
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn unknown_names_and_bad_lists_are_refused_with_the_reason() {
        let kernels = lab_and_debug();
        let err = select(&kernels, &["nope".into()], false).unwrap_err();
        assert!(err.to_string().contains("there are: lab, debug"), "{err}");
        let lab = entry("lab", "lab.config", "always");
        for (text, why) in [
            (
                entry("debug", "lab.config", "test"),
                "no kernel named \"lab\"",
            ),
            (format!("{lab}{lab}"), "listed twice"),
            (entry("lab", "missing.config", "always"), "does not exist"),
            (entry("Lab X", "lab.config", "always"), "lowercase"),
            (entry("lab", "lab.config", "test"), "must have build"),
            (entry("lab", "lab.config", "sometimes"), "unknown variant"),
        ] {
            let err = format!("{:#}", parse(&text, &repo()).unwrap_err());
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
