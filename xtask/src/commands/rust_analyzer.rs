//! `cargo xtask rust-analyzer`: module/rust-project.json against the host
//! path's lab kernel (built if needed), or with `--kdir` against the given
//! tree and tools (what the flake runs).

use crate::cli::RustAnalyzerArgs;
use crate::host::Host;
use crate::steps::module;
use anyhow::{Context, Result};

/// Writes the project file and says where.
pub fn run(args: &RustAnalyzerArgs) -> Result<()> {
    let written = match &args.kdir {
        Some(kdir) => {
            let src = args.src.clone().context("--kdir needs --src")?;
            module::rust_analyzer_project(kdir, &src, &args.tools.tools(), &std::env::temp_dir())?
        }
        None => {
            let host = Host::new()?;
            let (t, kdir) = super::lab_kernel(&host, args.tools.jobs)?;
            let src = args.src.clone().unwrap_or_else(|| host.repo.join("module"));
            module::rust_analyzer_project(
                &kdir,
                &src,
                &host.kernel_tools(&t, args.tools.jobs),
                &host.logs(vm_tests::artifacts::LAB_KERNEL),
            )?
        }
    };
    eprintln!("rust-analyzer: wrote {}", written.display());
    Ok(())
}
