//! `cargo xtask`: the host build tool of the lab.
//!
//! * [`cli`]: the command line; [`commands`]: one file per command.
//! * [`plan`]: the kernels of `kernel/kernels.toml` and the list of build
//!   steps made from them; [`steps`]: the steps themselves, each with
//!   explicit inputs, which the flake runs as the single-step commands.
//! * [`host`]: the host path's checkout, cache and pins; [`provision`]: host
//!   packages, pinned `.deb`s, crates; [`paths`], [`pins`].
//! * [`exec`]: the one place that runs external tools; [`fsutil`]: atomic
//!   writes and hashes.
//! * [`nix_check`]: the static checks of the Nix files.

mod cli;
mod commands;
mod exec;
mod fsutil;
mod host;
mod nix_check;
mod paths;
mod pins;
mod plan;
mod provision;
mod steps;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let result = match Cli::parse().command {
        Command::Provision => commands::provision::run(),
        Command::Build(args) => commands::build::run(&args).map(drop),
        Command::Vm(args) => commands::vm::run(&args),
        Command::Keys(args) => commands::keys::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::NixCheck => {
            paths::repo_root().and_then(|repo| nix_check::run(&repo, &paths::Cache::from_env()?))
        }
        Command::Bench(args) => commands::bench::run(&args),
        Command::RustAnalyzer(args) => commands::rust_analyzer::run(&args),
        Command::Kernel(args) => commands::steps::kernel(&args),
        Command::Module(args) => commands::steps::module(&args),
        Command::Ssdt(args) => commands::steps::ssdt(&args),
        Command::Initramfs(args) => commands::steps::initramfs(&args),
        Command::Artifacts(args) => commands::steps::artifacts(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
