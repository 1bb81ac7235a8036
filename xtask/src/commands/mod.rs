//! One file per command of `cargo xtask` (the command line is in
//! [`crate::cli`]).

pub mod bench;
pub mod build;
pub mod checkpatch;
pub mod compile_fail;
pub mod doc;
pub mod gdb;
pub mod keys;
pub mod lint;
pub mod provision;
pub mod ra_check;
pub mod repro;
pub mod rust_analyzer;
pub mod steps;
pub mod test;
pub mod trace;
pub mod vm;
pub mod watch;

use crate::cli::BuildArgs;
use crate::host::Host;
use crate::paths::Cache;
use crate::plan::{self, Step};
use crate::provision::Toolchain;
use anyhow::{Context, Result, bail};
use std::path::PathBuf;

/// The module directories to work on: those given, else every one of
/// kernel/kernels.toml.
fn module_dirs(host: &Host, given: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    Ok(plan::load_modules(&host.repo)?
        .into_iter()
        .map(|m| host.repo.join(&m.dir))
        .collect())
}

/// The host path's lab kernel, built if needed (as `cargo xtask build`
/// builds it): the provisioned toolchain and the kernel's `O=` tree.
fn lab_kernel(host: &Host, jobs: usize) -> Result<(Toolchain, PathBuf)> {
    let lab = plan::load(&host.repo)?
        .into_iter()
        .find(|k| k.name == vm_tests::artifacts::LAB_KERNEL)
        .context("kernel/kernels.toml has no lab kernel")?;
    let mut runner = build::Runner::new(host, jobs);
    for step in [Step::Provision, Step::Kernel(lab.clone())] {
        runner.run(&step)?;
    }
    let t = runner.toolchain()?.clone();
    let kdir = host.kernel_tree(&t, &lab.name);
    Ok((t, kdir))
}

/// The artifact directory of a command that boots or tests: built now, or
/// as it is with `no_build` (`$LAB_ARTIFACTS` if set, e.g. the flake's, else
/// the cache's). `for_tests` also builds the kernels the tests boot.
fn artifacts(no_build: bool, args: &BuildArgs, for_tests: bool) -> Result<PathBuf> {
    if !no_build {
        return build::build(args, for_tests);
    }
    let dir = match std::env::var_os(vm_tests::artifacts::ARTIFACTS_ENV) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Cache::from_env()?.artifacts(),
    };
    let layout = vm_tests::artifacts::Layout::new(&dir);
    if !layout.kernel(vm_tests::artifacts::LAB_KERNEL).is_file() {
        bail!("no artifacts in {}: run `cargo xtask build`", dir.display());
    }
    Ok(dir)
}
