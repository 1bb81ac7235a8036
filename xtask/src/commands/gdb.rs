//! `cargo xtask gdb`: attaches gdb to the kernel of a running `cargo xtask
//! vm --kernel debug --gdb`, with the one gdb command line of the lab
//! ([`vm_tests::gdb::GdbCommand`], which the VM tests run too): vmlinux, the
//! kernel's gdb scripts (auto-load safe-path set to the kernel's `O=` tree
//! only), `target remote <gdb.sock>` and `lx-symbols` on the kernel's
//! artifact directory, whose `.ko` files carry debug info. Then gdb's
//! prompt, or, with `-- -batch -ex ...`, gdb's batch mode.

use super::vm::RunningVm;
use crate::cli::GdbArgs;
use crate::exec;
use crate::paths::Cache;
use anyhow::{Context, Result, bail};
use std::time::Duration;
use vm_tests::VmConfig;
use vm_tests::gdb::{DEBUG_KERNEL, DebugKernel, GdbCommand};

/// How the message says to start a VM gdb can attach to.
const START: &str = "cargo xtask vm --kernel debug --gdb";

/// Attaches and hands the terminal to gdb; fails if gdb fails.
pub fn run(args: &GdbArgs) -> Result<()> {
    let cache = Cache::from_env()?;
    let runtime = cache.vm_runtime();
    let vm = RunningVm::load(&runtime, START)?;
    let Some(socket) = &vm.gdb_socket else {
        bail!(
            "the running VM (the {} kernel) has no gdb stub: quit it (Ctrl-A X) and start it with \
             `{START}`",
            vm.kernel
        );
    };
    let tree = vm.kernel_tree.clone().with_context(|| {
        format!(
            "the artifacts of the running VM ({}) have no manifest naming the kernel version, so \
             the {} kernel's build tree (vmlinux) is unknown: boot artifacts of `cargo xtask \
             build --kernel {DEBUG_KERNEL}`",
            vm.kernel_dir.display(),
            vm.kernel
        )
    })?;
    let kernel = DebugKernel::new(&vm.kernel, tree, &vm.kernel_dir)?;
    let gdb = vm_tests::gdb::find_gdb()?;
    let mut command = GdbCommand::new(&kernel, socket)
        .with_gdb(gdb)
        .with_index_cache(cache.root.join("gdb-index"))
        .with_args(&args.gdb_args);
    // A VM that never ran (`--gdb-wait`) has no module list yet.
    let mut qmp =
        vm_tests::QmpClient::connect(&VmConfig::qmp_socket(&runtime), Duration::from_secs(5))?;
    if qmp.status()? == "prelaunch" {
        eprintln!(
            "gdb: the VM waits before its first instruction: gdb runs it to start_kernel, then \
             loads the module symbols (lx-symbols loads those of every module inserted later)"
        );
        command = command.at_reset();
    }
    drop(qmp);
    eprintln!(
        "gdb: {} kernel, {} and the modules of {}; the VM stops while gdb holds it: `continue` \
         runs it, Ctrl-C stops it again, `detach` or `quit` lets it run on",
        kernel.name(),
        kernel.vmlinux().display(),
        kernel.modules().display()
    );
    eprintln!("gdb: {}", command.command_line());
    // Ctrl-C belongs to gdb (it stops the VM): xtask must not die of it and
    // leave gdb on the terminal. A handler, unlike SIG_IGN, is not inherited.
    ctrlc::set_handler(|| {}).context("cannot install a Ctrl-C handler")?;
    let status = exec::run_attached(&mut command.command())?;
    if !status.success() {
        bail!("gdb exited with {status}");
    }
    Ok(())
}
