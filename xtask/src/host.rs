//! The host path's context: the checkout, the cache, the pins, and where in
//! the cache each build step works.

use crate::paths::{self, Cache};
use crate::pins::Pins;
use crate::provision::Toolchain;
use crate::steps::kbuild::KernelTools;
use anyhow::Result;
use std::path::PathBuf;

/// The checkout, the cache and the pins of this run.
pub struct Host {
    /// The checkout.
    pub repo: PathBuf,
    /// The cache outside it.
    pub cache: Cache,
    /// `pins.toml`.
    pub pins: Pins,
}

impl Host {
    /// The host context of this process's checkout and environment.
    pub fn new() -> Result<Self> {
        let repo = paths::repo_root()?;
        let pins = Pins::load(&repo.join("pins.toml"))?;
        Ok(Self {
            repo,
            cache: Cache::from_env()?,
            pins,
        })
    }

    /// Runs provisioning (each part a no-op when done).
    pub fn provision(&self) -> Result<Toolchain> {
        crate::provision::provision(&self.repo, &self.cache, &self.pins)
    }

    /// The build directory of the kernel `name`: `bzImage` and the stamp;
    /// its `O=` tree is [`Host::kernel_tree`].
    pub fn kernel_out(&self, t: &Toolchain, name: &str) -> PathBuf {
        // The rule is the harness's, which finds vmlinux there for gdb.
        vm_tests::artifacts::kernel_build_dir(&self.cache.root, &t.kernel_version, name)
    }

    /// The `O=` tree of the kernel `name`.
    pub fn kernel_tree(&self, t: &Toolchain, name: &str) -> PathBuf {
        self.kernel_out(t, name).join("build")
    }

    /// The build directory of the module directory `dir` (of
    /// kernels.toml) for the kernel `name`.
    pub fn module_out(&self, name: &str, dir: &str) -> PathBuf {
        self.cache
            .builds()
            .join(format!("module-{name}"))
            .join(dir.replace('/', "-"))
    }

    /// The initramfs built for the kernel `name`.
    pub fn initramfs_out(&self, name: &str) -> PathBuf {
        self.cache
            .builds()
            .join(format!("initramfs-{name}"))
            .join("initramfs.cpio")
    }

    /// The compiled ACPI tables.
    pub fn acpi_out(&self) -> PathBuf {
        self.cache.builds().join("acpi")
    }

    /// The logs of the steps for the kernel `name`.
    pub fn logs(&self, name: &str) -> PathBuf {
        self.cache.logs().join(name)
    }
}

impl Host {
    /// The kernel tools of the host path: the provisioned toolchain `t` and
    /// the build stamp of the pins.
    pub fn kernel_tools(&self, t: &Toolchain, jobs: usize) -> KernelTools {
        KernelTools {
            llvm: t.llvm.clone(),
            rust_lib_src: Some(t.rust_lib_src.clone()),
            bindgen: Some(t.bindgen.clone()),
            rust_bin: Some(t.rust_bin.clone()),
            jobs,
            stamp: Some(self.pins.build.clone()),
            clippy: None,
        }
    }
}
