//! One file per command of `cargo xtask` (the command line is in
//! [`crate::cli`]).

pub mod bench;
pub mod build;
pub mod checkpatch;
pub mod doc;
pub mod keys;
pub mod lint;
pub mod provision;
pub mod ra_check;
pub mod repro;
pub mod rust_analyzer;
pub mod steps;
pub mod test;
pub mod vm;
pub mod watch;

use crate::cli::BuildArgs;
use crate::paths::Cache;
use anyhow::{Result, bail};
use std::path::PathBuf;

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
