//! The single-step commands (`kernel`, `module`, `ssdt`, `initramfs`,
//! `artifacts`): the build steps of [`crate::steps`] with every input given
//! on the command line and tools from PATH by default. The flake runs these.

use crate::cli::{
    ArtifactsStepArgs, InitramfsStepArgs, KernelStepArgs, ModuleStepArgs, SsdtStepArgs, ToolArgs,
};
use crate::pins::BuildStamp;
use crate::steps::artifacts::{self, KernelFiles};
use crate::steps::kbuild::KernelTools;
use crate::steps::{initramfs, kernel, module, ssdt};
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};
use vm_tests::artifacts::Layout;

impl ToolArgs {
    /// The kernel tools these options name.
    pub fn tools(&self) -> KernelTools {
        KernelTools {
            llvm: self.llvm.clone(),
            rust_lib_src: self.rust_lib_src.clone(),
            bindgen: self.bindgen.clone(),
            rust_bin: None,
            jobs: self.jobs,
            stamp: self.build_timestamp.as_ref().map(|timestamp| BuildStamp {
                timestamp: timestamp.clone(),
                user: self.build_user.clone().unwrap_or_default(),
                host: self.build_host.clone().unwrap_or_default(),
            }),
            clippy: None,
        }
    }
}

/// `xtask kernel`.
pub fn kernel(args: &KernelStepArgs) -> Result<()> {
    let logs = args
        .log_dir
        .clone()
        .unwrap_or_else(|| args.out.join("logs"));
    let build_dir = args
        .build_dir
        .clone()
        .unwrap_or_else(|| args.out.join("build"));
    let out = kernel::build(
        &args.src,
        &args.patches,
        &args.fragments,
        &args.out,
        &build_dir,
        &args.tools.tools(),
        kernel::Scratch {
            logs: &logs,
            tinyconfigs: args.tinyconfig_cache.as_deref(),
        },
    )?;
    eprintln!(
        "kernel: {} (O= tree {})",
        out.bz_image.display(),
        out.build_dir.display()
    );
    Ok(())
}

/// `xtask module`.
pub fn module(args: &ModuleStepArgs) -> Result<()> {
    let logs = args.out.join("logs");
    for ko in module::build(&args.kdir, &args.src, &args.out, &args.tools.tools(), &logs)? {
        eprintln!("module: {}", ko.display());
    }
    Ok(())
}

/// `xtask ssdt`.
pub fn ssdt(args: &SsdtStepArgs) -> Result<()> {
    ssdt::build(&args.src, &args.out, args.iasl.as_deref()).map(|_| ())
}

/// `xtask initramfs`.
pub fn initramfs(args: &InitramfsStepArgs) -> Result<()> {
    let mods: Vec<&Path> = args.modules.iter().map(PathBuf::as_path).collect();
    initramfs::pack(&args.busybox, &args.init, &mods, &args.objcopy, &args.out)?;
    eprintln!("initramfs: {}", args.out.display());
    Ok(())
}

/// `xtask artifacts`: every kernel needs its image and initramfs, modules
/// are optional; a module or initramfs of a kernel not given is an error.
pub fn artifacts(args: &ArtifactsStepArgs) -> Result<()> {
    let mut kernels = Vec::new();
    for (name, image) in &args.kernels {
        let of = |list: &[(String, PathBuf)]| -> Vec<PathBuf> {
            list.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
                .collect()
        };
        let found = of(&args.initramfs);
        let [initramfs] = found.as_slice() else {
            bail!("kernel {name} needs exactly one --initramfs {name}=PATH");
        };
        kernels.push(KernelFiles {
            name: name.clone(),
            kernel: image.clone(),
            initramfs: initramfs.clone(),
            modules: of(&args.modules),
        });
    }
    for (name, _) in args.modules.iter().chain(&args.initramfs) {
        if !args.kernels.iter().any(|(k, _)| k == name) {
            bail!("{name}=... is given without --kernel {name}=PATH");
        }
    }
    let layout = Layout::new(&args.out);
    artifacts::assemble(&layout, &args.acpi, &kernels, &args.kernel_version, None)?;
    eprintln!("artifacts: {}", args.out.display());
    Ok(())
}
