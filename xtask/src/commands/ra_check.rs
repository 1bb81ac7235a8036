//! `cargo xtask ra-check`: does rust-analyzer understand the module with
//! the rust-project.json that `cargo xtask rust-analyzer` writes (the
//! kernel's `make rust-analyzer` against the lab kernel)? It runs
//! `rust-analyzer diagnostics` on a copy of each module directory with that
//! file and requires that every path, import and macro of the module
//! resolves, `kernel::` ones included. A probe proves the module was
//! analysed: an import of a `kernel::` item that does not exist, appended to
//! the copy's crate roots, must be reported as unresolved.
//!
//! rustup's rust-analyzer component cannot be installed on the project's
//! machines; `--install` builds `ra_ap_rust-analyzer` (rust-analyzer's
//! weekly release on the crate registry, binary `rust-analyzer`) with the
//! pinned toolchain.

use super::{lab_kernel, module_dirs};
use crate::cli::RaCheckArgs;
use crate::exec::{self, cmd};
use crate::host::Host;
use crate::provision;
use crate::steps::{lint, module};
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Instant;

/// The crate and version `--install` builds: the newest weekly release that
/// builds with rustc 1.95.0 (0.0.349 uses `std::assert_matches`, unstable
/// in 1.95); its Cargo.lock is used (`--locked`: without it a newer salsa
/// breaks the build). 6 min 54 s alone on 2 cores, 13 min 26 s sharing
/// them with other work (2026-12-03).
const RA_CRATE: (&str, &str) = ("ra_ap_rust-analyzer", "0.0.348");

/// The name of the probe item: no kernel has it.
const PROBE: &str = "lab_rust_analyzer_probe_no_such_item";

/// Diagnostic codes that mean a name did not resolve.
const UNRESOLVED: &[&str] = &[
    "E0405",
    "E0412",
    "E0422",
    "E0423",
    "E0425",
    "E0432",
    "E0433",
    "E0531",
    "unresolved",
    "macro-error",
];

/// One line of `rust-analyzer diagnostics`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Diagnostic {
    crate_name: String,
    file: PathBuf,
    severity: String,
    code: String,
    /// 1-based.
    line: u32,
    /// 1-based.
    column: u32,
    message: String,
}

impl Diagnostic {
    fn unresolved(&self) -> bool {
        UNRESOLVED.iter().any(|c| self.code.contains(c))
    }

    fn summary(&self, from: &Path, to: &Path) -> String {
        let file = self
            .file
            .strip_prefix(from)
            .map_or_else(|_| self.file.clone(), |rel| to.join(rel));
        format!(
            "{}:{}:{}: {} {}: {}",
            file.display(),
            self.line,
            self.column,
            self.severity,
            self.code,
            self.message
        )
    }
}

static LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^at crate (\S+), file (.+?): (\w+) (.+?) from LineCol \{ line: (\d+), col: (\d+) \} to LineCol \{[^}]*\}: (.*)$",
    )
    .expect("valid regex")
});
static CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\w+\("([^"]+)"(?:, \w+)?\)$"#).expect("valid regex"));

/// The diagnostics of `rust-analyzer diagnostics` output.
fn parse(text: &str) -> Vec<Diagnostic> {
    text.lines()
        .filter_map(|l| LINE.captures(l))
        .map(|c| Diagnostic {
            crate_name: c[1].to_owned(),
            file: PathBuf::from(&c[2]),
            severity: c[3].to_owned(),
            code: CODE
                .captures(&c[4])
                .map_or_else(|| c[4].to_owned(), |m| m[1].to_owned()),
            line: c[5].parse::<u32>().unwrap_or(0) + 1,
            column: c[6].parse::<u32>().unwrap_or(0) + 1,
            message: c[7].trim().to_owned(),
        })
        .collect()
}

/// Checks every module directory.
pub fn run(args: &RaCheckArgs) -> Result<()> {
    let start = Instant::now();
    let (ra, kdir, srcs, tools, logs) = match (&args.kdir, &args.rust_analyzer) {
        (Some(kdir), Some(ra)) => (
            ra.clone(),
            kdir.clone(),
            args.src.clone(),
            args.tools.tools(),
            std::env::temp_dir(),
        ),
        _ => {
            let host = Host::new()?;
            let ra = rust_analyzer(&host, args)?;
            let (t, kdir) = lab_kernel(&host, args.tools.jobs)?;
            let srcs = rust_module_dirs(module_dirs(&host, &args.src)?)?;
            (
                ra,
                kdir,
                srcs,
                host.kernel_tools(&t, args.tools.jobs),
                host.logs(vm_tests::artifacts::LAB_KERNEL).join("ra-check"),
            )
        }
    };
    let version = exec::output(&mut cmd(&ra, ["--version"]))?;
    let base = std::env::current_dir()?;
    for src in srcs {
        let src = src
            .canonicalize()
            .with_context(|| format!("module source {} does not exist", src.display()))?;
        let shown = src.strip_prefix(&base).unwrap_or(&src).to_path_buf();
        let work = tempfile::Builder::new()
            .prefix("rust-kbd-lab-ra-check-")
            .tempdir()?;
        let copy = work.path().join(src.file_name().unwrap_or_default());
        copy_sources(&src, &copy)?;
        let project = module::rust_analyzer_project(&kdir, &copy, &tools, &logs)?;
        let copy = copy.canonicalize()?;
        let roots = crate_roots(&project, &copy)?;
        for root in &roots {
            let mut text = std::fs::read_to_string(root)?;
            text.push_str(&format!(
                "\n#[allow(unused_imports)]\nuse kernel::{PROBE};\n"
            ));
            std::fs::write(root, text)?;
        }
        eprintln!(
            "  ra-check: {} diagnostics on {} ...",
            version.trim(),
            shown.display()
        );
        let out = exec::captured(cmd(&ra, ["diagnostics", "."]).current_dir(&copy))?;
        let all = parse(&out.text());
        let ours: Vec<&Diagnostic> = all.iter().filter(|d| d.file.starts_with(&copy)).collect();
        if all.is_empty() && !out.status.success() {
            bail!(
                "rust-analyzer diagnostics failed ({}):\n{}",
                out.status,
                out.text()
            );
        }
        let (probe, rest): (Vec<&Diagnostic>, Vec<&Diagnostic>) = ours.into_iter().partition(|d| {
            d.unresolved() && roots.contains(&d.file) && d.line >= probe_line(&d.file)
        });
        if probe.len() < roots.len() {
            bail!(
                "ra-check: rust-analyzer did not analyse {}: the probe `use kernel::{PROBE};` in its crate root was not reported as unresolved",
                shown.display()
            );
        }
        let (unresolved, other): (Vec<&Diagnostic>, Vec<&Diagnostic>) =
            rest.into_iter().partition(|d| d.unresolved());
        let crates = all
            .iter()
            .map(|d| d.crate_name.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if !unresolved.is_empty() {
            for d in &unresolved {
                println!("  {}", d.summary(&copy, &shown));
            }
            bail!(
                "ra-check: {} name(s) of {} do not resolve in rust-analyzer",
                unresolved.len(),
                shown.display()
            );
        }
        println!(
            "ra-check: {}: every import, path and macro resolves, kernel:: ones included (the probe's bogus kernel:: import was reported; {crates} crates with diagnostics analysed)",
            shown.display()
        );
        if !other.is_empty() {
            let mut lines: Vec<String> = other.iter().map(|d| d.summary(&copy, &shown)).collect();
            lines.dedup();
            println!(
                "ra-check: {} other diagnostic(s) that rustc does not give (rust-analyzer's type inference is incomplete for this core; not failures):",
                other.len()
            );
            for l in lines.iter().take(10) {
                println!("  {l}");
            }
            if lines.len() > 10 {
                println!("  ... {} more", lines.len() - 10);
            }
        }
    }
    eprintln!("ra-check: done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// The directories of `dirs` that hold Rust code (rust-analyzer has nothing
/// to say about a C module's).
fn rust_module_dirs(dirs: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut rust = Vec::new();
    for dir in dirs {
        if !lint::rust_files(&dir)?.is_empty() {
            rust.push(dir);
        }
    }
    if rust.is_empty() {
        bail!("none of the module directories holds Rust code");
    }
    Ok(rust)
}

/// The first line of the probe in a crate root (the probe is its last two
/// lines).
fn probe_line(root: &Path) -> u32 {
    let lines = std::fs::read_to_string(root)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    u32::try_from(lines.saturating_sub(1)).unwrap_or(0)
}

/// The root files of the crates of `project` that are in `dir`.
fn crate_roots(project: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(project)?)
        .with_context(|| format!("{} is not JSON", project.display()))?;
    let roots: Vec<PathBuf> = json["crates"]
        .as_array()
        .context("rust-project.json has no crates")?
        .iter()
        .filter_map(|c| c["root_module"].as_str())
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    if roots.is_empty() {
        bail!("{} lists no crate of {}", project.display(), dir.display());
    }
    Ok(roots)
}

/// Copies the module's Kbuild and sources (not an editor's
/// rust-project.json) to `dest`.
fn copy_sources(src: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    std::fs::copy(src.join("Kbuild"), dest.join("Kbuild"))
        .with_context(|| format!("{} has no Kbuild", src.display()))?;
    for file in lint::rust_files(src)? {
        let to = dest.join(file.strip_prefix(src)?);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&file, &to)?;
    }
    Ok(())
}

/// The rust-analyzer to run: given, built before by `--install`, on PATH
/// (if it runs: rustup's proxy fails without the component), or built now
/// with `--install`.
fn rust_analyzer(host: &Host, args: &RaCheckArgs) -> Result<PathBuf> {
    if let Some(ra) = &args.rust_analyzer {
        return Ok(ra.clone());
    }
    let (name, version) = RA_CRATE;
    let installed = host
        .cache
        .tools()
        .join(format!("{name}-{version}/bin/rust-analyzer"));
    if installed.is_file() {
        return Ok(installed);
    }
    if let Some(ra) = exec::which("rust-analyzer")
        && exec::captured(&mut cmd(&ra, ["--version"])).is_ok_and(|o| o.status.success())
    {
        return Ok(ra);
    }
    if args.install {
        return provision::install_crate(&host.cache, name, version, "rust-analyzer");
    }
    bail!(
        "no rust-analyzer: rustup's component is not installed (and cannot be downloaded on the project's machines). `cargo xtask ra-check --install` builds {name} {version} from the crate registry with the pinned toolchain (6 to 13 min on 2 cores), or pass --rust-analyzer PATH"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_lines_are_parsed_one_based() {
        let out = "\
at crate rust_keyboard, file /t/m/decoder.rs: Error RustcHardError(\"E0599\") from LineCol { line: 154, col: 40 } to LineCol { line: 154, col: 47 }: no method `get_mut` on type `&mut [u8]`
full type: `({unknown}, &[&str])`
at crate rust_keyboard, file /t/m/rust_keyboard.rs: Error RustcHardError(\"E0432\") from LineCol { line: 56, col: 4 } to LineCol { line: 56, col: 30 }: unresolved import
at crate zerocopy, file /k/z.rs: WeakWarning RaLint(\"inactive_code\", WeakWarning) from LineCol { line: 1, col: 0 } to LineCol { line: 2, col: 3 }: code is inactive
";
        let d = parse(out);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].code, "E0599");
        assert_eq!((d[0].line, d[0].column), (155, 41));
        assert!(!d[0].unresolved());
        assert!(d[1].unresolved());
        assert_eq!(d[2].code, "inactive_code");
        assert_eq!(
            d[1].summary(Path::new("/t/m"), Path::new("module")),
            "module/rust_keyboard.rs:57:5: Error E0432: unresolved import"
        );
    }
}
