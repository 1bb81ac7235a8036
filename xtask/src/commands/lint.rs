//! `cargo xtask lint`: the module directories linted the kernel's way
//! (clippy through kbuild's `CLIPPY=1`, rustfmt with the kernel's
//! `.rustfmt.toml`), against the host path's lab kernel (built if needed),
//! or with `--kdir` against the given tree and tools (what the flake's
//! check runs). Fails on any finding.

use super::{lab_kernel, module_dirs};
use crate::cli::LintArgs;
use crate::host::Host;
use crate::steps::kbuild::Clippy;
use crate::steps::lint::{self, Finding};
use anyhow::{Result, bail};
use std::path::Path;
use std::time::Instant;

/// Lints and reports.
pub fn run(args: &LintArgs) -> Result<()> {
    let start = Instant::now();
    let (kdir, srcs, mut tools, rustfmt, log_dir) = match &args.kdir {
        Some(kdir) => (
            kdir.clone(),
            args.src.clone(),
            args.tools.tools(),
            args.rustfmt.clone().unwrap_or_else(|| "rustfmt".into()),
            std::env::temp_dir(),
        ),
        None => {
            let host = Host::new()?;
            let (t, kdir) = lab_kernel(&host, args.tools.jobs)?;
            let srcs = module_dirs(&host, &args.src)?;
            let rustfmt = args
                .rustfmt
                .clone()
                .unwrap_or_else(|| t.rust_bin.join("rustfmt"));
            let mut tools = host.kernel_tools(&t, args.tools.jobs);
            tools.clippy = Some(Clippy {
                driver: t.rust_bin.join("clippy-driver"),
                allow: Vec::new(),
            });
            (
                kdir,
                srcs,
                tools,
                rustfmt,
                host.logs(vm_tests::artifacts::LAB_KERNEL).join("lint"),
            )
        }
    };
    let driver = match (&args.clippy_driver, &tools.clippy) {
        (Some(d), _) => d.clone(),
        (None, Some(c)) => c.driver.clone(),
        (None, None) => "clippy-driver".into(),
    };
    tools.clippy = Some(Clippy {
        driver: driver.clone(),
        allow: args.allow.clone(),
    });
    let clippy_version = lint::check_clippy(&driver, &kdir)?;
    let config = args
        .rustfmt_config
        .clone()
        .unwrap_or_else(|| kdir.join("source/.rustfmt.toml"));
    let rustfmt_version = crate::exec::output(&mut crate::exec::cmd(&rustfmt, ["--version"]))?;
    let base = std::env::current_dir()?;
    let mut findings = Vec::new();
    for src in &srcs {
        findings.extend(lint::clippy(&kdir, src, &tools, &log_dir)?);
        findings.extend(lint::rustfmt(&rustfmt, &config, src)?);
    }
    let shown: Vec<String> = srcs.iter().map(|s| shown_path(s, &base)).collect();
    if !args.allow.is_empty() {
        eprintln!(
            "lint: allowed on top of the kernel's lints: {}",
            args.allow.join(" ")
        );
    }
    eprintln!(
        "lint: {} with {clippy_version} (the kernel's lint set, make CLIPPY=1) and {} ({})",
        shown.join(" "),
        rustfmt_version.trim(),
        shown_path(&config, &base)
    );
    report(&findings, &base, start.elapsed().as_secs_f64())
}

/// Prints every finding in full, then one line each; an error if any.
fn report(findings: &[Finding], base: &Path, seconds: f64) -> Result<()> {
    if findings.is_empty() {
        println!("lint: no findings ({seconds:.1} s)");
        return Ok(());
    }
    for f in findings {
        println!("{}\n", f.rendered);
    }
    println!("lint: {} finding(s):", findings.len());
    for f in findings {
        println!("  {}", f.summary(base));
    }
    let count = |tool: &str| findings.iter().filter(|f| f.tool == tool).count();
    bail!(
        "lint: {} finding(s) (clippy {}, rustfmt {}, other {}) in {seconds:.1} s",
        findings.len(),
        count("clippy"),
        count("rustfmt"),
        findings.len() - count("clippy") - count("rustfmt")
    )
}

/// `path` relative to `base` when below it.
fn shown_path(path: &Path, base: &Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    abs.strip_prefix(base).unwrap_or(&abs).display().to_string()
}
