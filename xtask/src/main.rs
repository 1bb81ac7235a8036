//! `cargo xtask`: the host build tool of the lab.
//!
//! The user-facing commands (`build`, `vm`, `keys`, `test`, `provision`) run
//! the host path with tools provisioned into the cache. The single steps
//! (`kernel`, `module`, `ssdt`, `initramfs`) take every input explicitly and
//! use tools from PATH by default: the flake runs exactly these.

mod bench;
mod exec;
mod initramfs;
mod kconfig;
mod kernel;
mod lab;
mod nix_check;
mod paths;
mod pins;
mod provision;
mod ssdt;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Build, boot and test the Rust keyboard driver lab.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install the host packages, fetch the pinned kernel source and rust-src
    /// and install bindgen, all into the cache.
    Provision,
    /// Provision, then build the kernel, the module, the SSDTs and the
    /// initramfs into <cache>/artifacts.
    Build(lab::BuildArgs),
    /// Build if needed, then boot the VM with the console on this terminal.
    Vm(lab::VmArgs),
    /// Press keys on the PS/2 keyboard of a running `cargo xtask vm`.
    Keys(lab::KeysArgs),
    /// Build if needed, then run every test (host unit tests and VM tests)
    /// with cargo-nextest.
    Test(lab::TestArgs),
    /// Check the Nix files: parse, alejandra --check, deadnix, flake.lock.
    NixCheck,
    /// Benchmark: boot the VM several times, report boot-to-driver-bound time.
    Bench(lab::BenchArgs),
    /// Step: configure, check and build a kernel.
    Kernel(lab::KernelArgs),
    /// Step: build the out-of-tree module against a kernel build tree.
    Module(lab::ModuleArgs),
    /// Write module/rust-project.json for rust-analyzer (the kernel's
    /// `make rust-analyzer` against the kernel build tree).
    RustAnalyzer(lab::RustAnalyzerArgs),
    /// Step: compile the ACPI tables with iasl.
    Ssdt(lab::SsdtArgs),
    /// Step: pack the initramfs.
    Initramfs(lab::InitramfsArgs),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Cmd::Provision => lab::provision_only(),
        Cmd::Build(a) => lab::build(&a).map(|_| ()),
        Cmd::Vm(a) => lab::vm(&a),
        Cmd::Keys(a) => lab::keys(&a),
        Cmd::Test(a) => lab::test(&a),
        Cmd::NixCheck => lab::nix_check(),
        Cmd::Bench(a) => lab::bench(&a),
        Cmd::Kernel(a) => lab::kernel_step(&a),
        Cmd::Module(a) => lab::module_step(&a),
        Cmd::RustAnalyzer(a) => lab::rust_analyzer(&a),
        Cmd::Ssdt(a) => lab::ssdt_step(&a),
        Cmd::Initramfs(a) => lab::initramfs_step(&a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Default number of parallel jobs.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Path argument helper for clap.
fn path(s: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(s))
}
