//! `cargo xtask rust-analyzer`: module/rust-project.json against the host
//! path's lab kernel (built if needed), or with `--kdir` against the given
//! tree and tools (what the flake runs).

use super::build::Runner;
use crate::cli::RustAnalyzerArgs;
use crate::host::Host;
use crate::plan::{self, Step};
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
            let lab = plan::load(&host.repo)?
                .into_iter()
                .find(|k| k.name == vm_tests::artifacts::LAB_KERNEL)
                .context("kernel/kernels.toml has no lab kernel")?;
            let mut runner = Runner::new(&host, args.tools.jobs);
            for step in [Step::Provision, Step::Kernel(lab.clone())] {
                runner.run(&step)?;
            }
            let t = runner.toolchain()?;
            let src = args.src.clone().unwrap_or_else(|| host.repo.join("module"));
            module::rust_analyzer_project(
                &host.kernel_tree(t, &lab.name),
                &src,
                &host.kernel_tools(t, args.tools.jobs),
                &host.logs(&lab.name),
            )?
        }
    };
    eprintln!("rust-analyzer: wrote {}", written.display());
    Ok(())
}
