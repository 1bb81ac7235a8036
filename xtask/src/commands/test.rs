//! `cargo xtask test`: builds the artifacts the tests need (the kernels
//! built always and those built for tests), then runs every test with
//! cargo-nextest's `ci` profile.

use crate::cli::TestArgs;
use crate::exec::{self, cmd};
use crate::host::Host;
use crate::provision;
use anyhow::{Result, bail};

/// Builds, then runs nextest.
pub fn run(args: &TestArgs) -> Result<()> {
    let artifacts = super::artifacts(args.no_build, &args.build, true)?;
    let host = Host::new()?;
    let nextest = test_tools(&host)?;
    let vm_logs = host.cache.logs().join("vm");
    let mut c = cmd(
        &nextest,
        ["nextest", "run", "--workspace", "--profile", "ci"],
    );
    c.args(&args.nextest_args)
        .current_dir(&host.repo)
        .env(vm_tests::artifacts::ARTIFACTS_ENV, &artifacts)
        .env(vm_tests::artifacts::LOG_DIR_ENV, &vm_logs);
    eprintln!(
        "running tests: LAB_ARTIFACTS={} (VM logs in {})",
        artifacts.display(),
        vm_logs.display()
    );
    let status = exec::run_attached(&mut c)?;
    if !status.success() {
        bail!(
            "tests failed ({status}); VM console logs are in {}",
            vm_logs.display()
        );
    }
    Ok(())
}

/// What running the tests needs: the test packages (the window test's X
/// server, input tool and QEMU GUI) and cargo-nextest (installed at the
/// pinned version if missing). Returns nextest.
pub fn test_tools(host: &Host) -> Result<std::path::PathBuf> {
    provision::ensure_host_packages(&host.pins.host.test_packages)?;
    match exec::which("cargo-nextest") {
        Some(p) => Ok(p),
        None => provision::install_crate(
            &host.cache,
            &host.pins.nextest.name,
            &host.pins.nextest.version,
            "cargo-nextest",
        ),
    }
}
