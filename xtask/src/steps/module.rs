//! The module steps: the out-of-tree driver built against a kernel build
//! tree, and the rust-analyzer project for it (the kernel's own
//! `make rust-analyzer`).

use super::kbuild::{KernelTools, existing};
use crate::exec;
use crate::fsutil::install_file;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the out-of-tree module in `src` against the kernel build tree
/// `kdir` with output in `out` (the source tree is left untouched) and
/// returns the `.ko` files built.
pub fn build(
    kdir: &Path,
    src: &Path,
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let kdir = existing(kdir, "kernel build dir")?;
    if !kdir.join("Module.symvers").is_file() {
        bail!(
            "{} has no Module.symvers: it is not a finished kernel build tree (run `cargo xtask kernel` with `modules`)",
            kdir.display()
        );
    }
    let src = existing(src, "module source")?;
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    let objdir = out.join("obj");
    std::fs::create_dir_all(&objdir)?;
    let mut c = make_modules(&kdir, &src, &objdir, tools);
    // One log per module directory: `module-build-<its name>.log`.
    let name = dir_name(&src);
    exec::run_logged(
        &mut c,
        &format!("module: build {name}/"),
        &log_dir.join(format!("module-build-{name}.log")),
    )?;
    let mut built = Vec::new();
    for entry in std::fs::read_dir(&objdir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "ko") {
            let dest = out.join(p.file_name().unwrap_or_default());
            install_file(&p, &dest)?;
            built.push(dest);
        }
    }
    if built.is_empty() {
        bail!("the module build in {} produced no .ko", objdir.display());
    }
    Ok(built)
}

/// kbuild's `make M=<src> MO=<objdir> modules` for the module directory
/// `src` against the kernel tree `kdir` (the objects go to `objdir`, the
/// source directory stays clean).
pub fn make_modules(kdir: &Path, src: &Path, objdir: &Path, tools: &KernelTools) -> Command {
    let mut c = tools.make(kdir, &[src]);
    c.arg(format!("M={}", src.display()))
        .arg(format!("MO={}", objdir.display()))
        .arg(format!("-j{}", tools.jobs.max(1)))
        .arg("modules");
    c
}

/// The last component of a module directory, for messages and log names.
pub fn dir_name(src: &Path) -> String {
    src.file_name()
        .map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned())
}

/// Writes `<src>/rust-project.json` for rust-analyzer: the kernel's own
/// `make rust-analyzer` (scripts/generate_rust_analyzer.py) for the external
/// module in `src`, against the kernel build tree `kdir`. Nothing else is
/// written into `src` (the make runs with a temporary `MO=`).
pub fn rust_analyzer_project(
    kdir: &Path,
    src: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<PathBuf> {
    let kdir = existing(kdir, "kernel build dir")?;
    let src = existing(src, "module source")?;
    let work = tempfile::Builder::new()
        .prefix("rust-kbd-lab-ra-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let work = work.path();
    let mut c = tools.make(&kdir, &[&src]);
    c.arg(format!("M={}", src.display()))
        .arg(format!("MO={}", work.display()))
        .arg("rust-analyzer");
    exec::run_logged(
        &mut c,
        "module: make rust-analyzer",
        &log_dir.join("rust-analyzer.log"),
    )?;
    let generated = work.join("rust-project.json");
    let dest = src.join("rust-project.json");
    if !generated.is_file() {
        bail!("make rust-analyzer left no {}", generated.display());
    }
    install_file(&generated, &dest)?;
    Ok(dest)
}
