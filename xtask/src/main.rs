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
        Command::Gdb(args) => commands::gdb::run(&args),
        Command::Trace => commands::trace::run(),
        Command::Test(args) => commands::test::run(&args),
        Command::NixCheck => {
            paths::repo_root().and_then(|repo| nix_check::run(&repo, &paths::Cache::from_env()?))
        }
        Command::Checkpatch => commands::checkpatch::run(),
        Command::NixFmt => paths::repo_root().and_then(|repo| nix_check::format(&repo)),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Repro(args) => commands::repro::run(&args),
        Command::RustAnalyzer(args) => commands::rust_analyzer::run(&args),
        Command::Lint(args) => commands::lint::run(&args),
        Command::CompileFail(args) => commands::compile_fail::run(&args),
        Command::Doc(args) => commands::doc::run(&args),
        Command::Watch(args) => commands::watch::run(&args),
        Command::RaCheck(args) => commands::ra_check::run(&args),
        Command::Kernel(args) => commands::steps::kernel(&args),
        Command::Module(args) => commands::steps::module(&args),
        Command::Ssdt(args) => commands::steps::ssdt(&args),
        Command::Initramfs(args) => commands::steps::initramfs(&args),
        Command::Artifacts(args) => commands::steps::artifacts(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {}", render(&e));
        std::process::exit(1);
    }
}

/// An error and its causes on one line, each said once: a cause whose text
/// an outer message already includes (as `vm_tests::Error` does with the
/// I/O error it wraps) is not repeated.
fn render(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let inner = anyhow::Error::msg(format!("cannot connect: {io}")).context("no VM answers");
        assert_eq!(
            render(&inner),
            format!("no VM answers: cannot connect: {io}")
        );
        let wrapped = anyhow::Error::new(io).context("cannot connect");
        assert_eq!(render(&wrapped), "cannot connect: connection refused");
    }
}
