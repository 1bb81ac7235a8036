//! The lint step: an out-of-tree module compiled with clippy the way kbuild
//! does it (`make CLIPPY=1`, the kernel's own lint set from its Makefile)
//! and checked with rustfmt against the kernel's `.rustfmt.toml`. Every
//! diagnostic becomes a [`Finding`] with its file and line; the command fails
//! on any.

use super::kbuild::{KernelTools, existing};
use crate::exec::{self, cmd};
use crate::fsutil::files_below;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, as the tool named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, when the tool gives one.
    pub column: Option<u32>,
}

/// One diagnostic of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The tool that reported it: `clippy`, `rustfmt`, `rustdoc`, `kbuild`.
    pub tool: &'static str,
    /// `warning` or `error`.
    pub level: String,
    /// The one-line message.
    pub message: String,
    /// Where, if the tool said.
    pub location: Option<Location>,
    /// The lint that fired (`clippy::ptr_as_ptr`), if the tool said.
    pub lint: Option<String>,
    /// The tool's whole text for it.
    pub rendered: String,
}

impl Finding {
    /// `file:line:col: level: message [lint]`, with the file relative to
    /// `base` when it is below it.
    pub fn summary(&self, base: &Path) -> String {
        let place = match &self.location {
            Some(l) => {
                let file = l.file.strip_prefix(base).unwrap_or(&l.file);
                match l.column {
                    Some(c) => format!("{}:{}:{c}: ", file.display(), l.line),
                    None => format!("{}:{}: ", file.display(), l.line),
                }
            }
            None => String::new(),
        };
        let lint = self
            .lint
            .as_ref()
            .map_or_else(String::new, |l| format!(" [{l}]"));
        format!(
            "{place}{} {}: {}{lint}",
            self.tool, self.level, self.message
        )
    }
}

static HEADER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(warning|error)(\[[A-Z]\d{4}\])?: (.+)$").expect("valid regex"));
static SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d+ (warnings?|errors?) emitted|aborting due to .*|could not compile .*|.* generated \d+ warnings?.*|\d+ warnings?( and \d+ errors?)? emitted)$",
    )
    .expect("valid regex")
});
static ARROW: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*--> (.+):(\d+):(\d+)$").expect("valid regex"));
static CLIPPY_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"rust-clippy/[^ ]*index\.html#([a-z0-9_]+)").expect("valid regex")
});
static LINT_ATTR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"#\[(?:warn|deny|forbid)\(([a-z0-9_:]+)\)\]|`-[WDF] ?([a-z0-9_:-]+)`")
        .expect("valid regex")
});
static MODPOST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^WARNING: (.+)$").expect("valid regex"));
static C_DIAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+?):(\d+):(\d+): (warning|error): (.+)$").expect("valid regex")
});

/// The diagnostics in the output of rustc-like tools (rustc, clippy-driver,
/// rustdoc) interleaved with kbuild's own lines: every `warning:` and
/// `error:` block with its `-->` location, kbuild's `WARNING:` lines
/// (modpost) and C compiler diagnostics. The tools' closing counts
/// (`1 warning emitted`) are not findings.
pub fn diagnostics(text: &str, tool: &'static str) -> Vec<Finding> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(c) = HEADER.captures(line) {
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim().is_empty() || HEADER.is_match(lines[j]))
                .unwrap_or(lines.len());
            let block = &lines[i..end];
            i = end;
            let message = c[3].trim().to_owned();
            if SUMMARY.is_match(&message) {
                continue;
            }
            let location = block.iter().find_map(|l| {
                ARROW.captures(l).map(|a| Location {
                    file: PathBuf::from(&a[1]),
                    line: a[2].parse().unwrap_or(0),
                    column: a[3].parse().ok(),
                })
            });
            let text = block.join("\n");
            let lint = CLIPPY_URL
                .captures(&text)
                .map(|u| format!("clippy::{}", &u[1]))
                .or_else(|| {
                    LINT_ATTR.captures(&text).and_then(|a| {
                        a.get(1)
                            .or_else(|| a.get(2))
                            .map(|m| m.as_str().replace('-', "_"))
                    })
                });
            found.push(Finding {
                tool,
                level: c[1].to_owned(),
                message,
                location,
                lint,
                rendered: text,
            });
            continue;
        }
        if let Some(c) = MODPOST.captures(line) {
            found.push(Finding {
                tool: "kbuild",
                level: "warning".into(),
                message: c[1].trim().to_owned(),
                location: None,
                lint: None,
                rendered: line.to_owned(),
            });
        } else if let Some(c) = C_DIAG.captures(line) {
            found.push(Finding {
                tool: "cc",
                level: c[4].to_owned(),
                message: c[5].trim().to_owned(),
                location: Some(Location {
                    file: PathBuf::from(&c[1]),
                    line: c[2].parse().unwrap_or(0),
                    column: c[3].parse().ok(),
                }),
                lint: None,
                rendered: line.to_owned(),
            });
        }
        i += 1;
    }
    found
}

/// The rustc version text the kernel tree `kdir` was configured with
/// (`CONFIG_RUSTC_VERSION_TEXT` of its `.config`).
pub fn kernel_rustc(kdir: &Path) -> Result<String> {
    let config = kdir.join(".config");
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("CONFIG_RUSTC_VERSION_TEXT="))
        .map(|v| v.trim_matches('"').to_owned())
        .with_context(|| {
            format!(
                "{} has no CONFIG_RUSTC_VERSION_TEXT: not a Rust-enabled kernel",
                config.display()
            )
        })
}

/// Checks that `driver` is the clippy of the rustc that built the kernel
/// tree `kdir` (clippy-driver is rustc with lints: its crate metadata must
/// match the kernel crate's), and returns `clippy-driver --version`.
pub fn check_clippy(driver: &Path, kdir: &Path) -> Result<String> {
    let version = exec::output(&mut cmd(driver, ["--version"]))
        .with_context(|| format!("cannot run the clippy-driver {}", driver.display()))?;
    let rustc = exec::output(&mut cmd(driver, ["--rustc", "--version"]))?;
    let rustc = rustc.lines().next().unwrap_or_default().trim().to_owned();
    let kernel = kernel_rustc(kdir)?;
    if rustc != kernel {
        bail!(
            "{} is the clippy of `{rustc}`, but the kernel tree {} was built with `{kernel}`: use the clippy-driver of that rustc (rustup: `rustup component add clippy` for the toolchain of rust-toolchain.toml; --clippy-driver PATH)",
            driver.display(),
            kdir.display()
        );
    }
    Ok(version.lines().next().unwrap_or_default().trim().to_owned())
}

/// The module's sources compiled with clippy against the kernel tree `kdir`
/// (`make M=<src> CLIPPY=1`, objects in a fresh temporary directory so that
/// every file is linted every time): the findings of clippy and kbuild.
/// `tools.clippy` must be set.
pub fn clippy(
    kdir: &Path,
    src: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<Vec<Finding>> {
    let kdir = existing(kdir, "kernel build dir")?;
    let src = existing(src, "module source")?;
    if tools.clippy.is_none() {
        bail!("the lint step needs a clippy-driver (KernelTools::clippy)");
    }
    let work = tempfile::Builder::new()
        .prefix("rust-kbd-lab-lint-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let name = super::module::dir_name(&src);
    let log = log_dir.join(format!("lint-clippy-{name}.log"));
    let mut c = super::module::make_modules(&kdir, &src, work.path(), tools);
    // `cargo xtask` runs under cargo, which sets CARGO_PKG_RUST_VERSION
    // (the workspace's MSRV): clippy would take it for the module's and
    // warn that the kernel's .clippy.toml names another.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CARGO_") {
            c.env_remove(name);
        }
    }
    let built = exec::run_logged(&mut c, &format!("lint: clippy on {name}/"), &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let findings = diagnostics(&text, "clippy");
    match built {
        Ok(_) => Ok(findings),
        // A lint the kernel denies stops the build: its error is the finding.
        Err(_) if !findings.is_empty() => Ok(findings),
        Err(e) => Err(e),
    }
}

static ANSI: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\x1b(\[[0-9;]*m|\(B)").expect("valid regex"));
static DIFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Diff in (.+?)(?::(\d+):| at line (\d+):)$").expect("valid regex")
});

/// The Rust files below `src` (not hidden ones), sorted.
pub fn rust_files(src: &Path) -> Result<Vec<PathBuf>> {
    files_below(src, &|p| p.extension().is_some_and(|e| e == "rs"))
}

/// `rustfmt --check` on the Rust files of `src` with the kernel's
/// configuration `config` (the kernel tree's `.rustfmt.toml`, edition 2021
/// as the kernel compiles): one finding per place where the formatting
/// differs.
pub fn rustfmt(rustfmt: &Path, config: &Path, src: &Path) -> Result<Vec<Finding>> {
    let config = existing(config, "rustfmt configuration")?;
    let files = rust_files(src)?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let color = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        "always"
    } else {
        "never"
    };
    let mut c = cmd(rustfmt, ["--check", "--edition", "2021", "--color", color]);
    c.arg("--config-path").arg(&config).args(&files);
    let out = exec::captured(&mut c)?;
    let findings = rustfmt_diffs(&out.stdout, &config);
    if !out.status.success() && findings.is_empty() {
        bail!(
            "`{}` failed ({}):\n{}",
            exec::display(&c),
            out.status,
            out.text()
        );
    }
    Ok(findings)
}

/// The places of rustfmt's `--check` output (`Diff in FILE:LINE:` and the
/// diff below it), each once (a file given and also reached through `mod`
/// is reported twice by rustfmt). rustfmt's line is the first of the hunk,
/// context included: the finding's line is the first changed one.
fn rustfmt_diffs(stdout: &str, config: &Path) -> Vec<Finding> {
    let mut context: Option<u32> = None;
    let mut findings: Vec<Finding> = Vec::new();
    let mut current: Option<Finding> = None;
    let push = |f: Option<Finding>, all: &mut Vec<Finding>| {
        if let Some(f) = f
            && !all.contains(&f)
        {
            all.push(f);
        }
    };
    for line in stdout.lines() {
        if let Some(c) = DIFF.captures(line) {
            push(current.take(), &mut findings);
            let file = PathBuf::from(&c[1]);
            let at = c.get(2).or_else(|| c.get(3)).map_or("0", |m| m.as_str());
            context = Some(0);
            current = Some(Finding {
                tool: "rustfmt",
                level: "warning".into(),
                message: format!(
                    "formatting differs from the kernel's style (fix: rustfmt --edition 2021 --config-path {} {})",
                    config.display(),
                    file.display()
                ),
                location: Some(Location {
                    file,
                    line: at.parse().unwrap_or(0),
                    column: None,
                }),
                lint: None,
                rendered: line.to_owned(),
            });
        } else if let Some(f) = current.as_mut() {
            f.rendered.push('\n');
            f.rendered.push_str(line);
            let plain = ANSI.replace_all(line, "");
            if let (Some(n), Some(at)) = (context.as_mut(), f.location.as_mut()) {
                if plain.starts_with(['-', '+']) {
                    at.line += *n;
                    context = None;
                } else {
                    *n += 1;
                }
            }
        }
    }
    push(current, &mut findings);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIPPY_OUTPUT: &str = "\
  CLIPPY [M] rust_keyboard.o
warning: casting `u8` to `u32` may become silently lossy if you later change the type
  --> /src/module/decoder.rs:42:9
   |
42 |         b as u32
   |         ^^^^^^^^ help: use `u32::from` instead: `u32::from(b)`
   |
   = help: for further information visit https://rust-lang.github.io/rust-clippy/rust-1.95.0/index.html#cast_lossless
   = note: requested on the command line with `-W clippy::cast-lossless`

warning: unused variable: `x`
 --> /src/module/rust_keyboard.rs:7:9
  |
7 |     let x = 1;
  |         ^ help: if this is intentional, prefix it with an underscore: `_x`
  |
  = note: `#[warn(unused_variables)]` on by default

error[E0133]: call to unsafe function is unsafe and requires unsafe block
  --> /src/module/rust_keyboard.rs:9:5
   |
9  |     f();
   |     ^^^ call to unsafe function

warning: 2 warnings emitted

error: aborting due to 1 previous error; 2 warnings emitted

WARNING: modpost: missing MODULE_DESCRIPTION() in rust_keyboard.o
make[3]: *** [Makefile:10: x] Error 1
";

    #[test]
    fn rustc_blocks_become_findings_with_their_place_and_lint() {
        let found = diagnostics(CLIPPY_OUTPUT, "clippy");
        let base = Path::new("/src");
        let lines: Vec<String> = found.iter().map(|f| f.summary(base)).collect();
        assert_eq!(
            lines,
            [
                "module/decoder.rs:42:9: clippy warning: casting `u8` to `u32` may become silently lossy if you later change the type [clippy::cast_lossless]",
                "module/rust_keyboard.rs:7:9: clippy warning: unused variable: `x` [unused_variables]",
                "module/rust_keyboard.rs:9:5: clippy error: call to unsafe function is unsafe and requires unsafe block",
                "kbuild warning: modpost: missing MODULE_DESCRIPTION() in rust_keyboard.o",
            ]
        );
        assert!(found[0].rendered.contains("u32::from(b)"));
        assert!(found[0].rendered.ends_with("cast-lossless`"));
    }

    #[test]
    fn a_clean_build_has_no_findings() {
        let out =
            "  CLIPPY [M] rust_keyboard.o\n  MODPOST Module.symvers\n  LD [M]  rust_keyboard.ko\n";
        assert!(diagnostics(out, "clippy").is_empty());
    }

    #[test]
    fn c_compiler_diagnostics_are_findings() {
        let found = diagnostics(
            "a/b.c:3:14: warning: unused variable 'x' [-Wunused]\n",
            "cc",
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].tool, "cc");
        assert_eq!(found[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn rustfmt_diffs_are_findings_once_each() {
        let out = "\
Diff in /src/module/decoder.rs:12:
-fn a() { }
+fn a() {}
Diff in /src/module/decoder.rs:12:
-fn a() { }
+fn a() {}
Diff in /src/module/rust_keyboard.rs at line 3:
 }
 
\x1b[31m-use b ;
\x1b(B\x1b[m\x1b[32m+use b;
\x1b(B\x1b[m
";
        let found = rustfmt_diffs(out, Path::new("/k/.rustfmt.toml"));
        let base = Path::new("/src");
        assert_eq!(found.len(), 2);
        assert!(
            found[0]
                .summary(base)
                .starts_with("module/decoder.rs:12: rustfmt warning: formatting differs"),
            "{}",
            found[0].summary(base)
        );
        assert_eq!(found[0].rendered.lines().count(), 3);
        assert_eq!(found[0].location.as_ref().unwrap().line, 12);
        // Two lines of context before the change.
        assert_eq!(found[1].location.as_ref().unwrap().line, 5);
    }

    #[test]
    fn the_kernel_rustc_comes_from_the_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".config"),
            "CONFIG_RUST=y\nCONFIG_RUSTC_VERSION_TEXT=\"rustc 1.95.0 (59807616e 2026-04-14)\"\n",
        )
        .unwrap();
        assert_eq!(
            kernel_rustc(dir.path()).unwrap(),
            "rustc 1.95.0 (59807616e 2026-04-14)"
        );
        std::fs::write(dir.path().join(".config"), "CONFIG_RUST=n\n").unwrap();
        assert!(kernel_rustc(dir.path()).is_err());
    }

    #[test]
    fn rust_files_skip_hidden_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        for f in ["b.rs", "a.rs", ".git/x.rs", "sub/c.rs", "Kbuild"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names: Vec<_> = rust_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.rs", "b.rs", "sub/c.rs"]);
    }
}
