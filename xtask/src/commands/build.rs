//! `cargo xtask build`: runs the plan's steps ([`crate::plan`]) on the host
//! path, numbering the progress from the plan.

use crate::cli::BuildArgs;
use crate::exec;
use crate::host::Host;
use crate::plan::{self, KernelSpec, Step};
use crate::provision::Toolchain;
use crate::steps::artifacts::{self, KernelFiles, ToolchainRecord};
use crate::steps::{initramfs, kernel, module, patches, ssdt};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use vm_tests::artifacts::{LAB_KERNEL, Layout};

/// `cargo xtask build`: returns the artifact directory.
pub fn run(args: &BuildArgs) -> Result<PathBuf> {
    build(args, false)
}

/// Builds what `args` asks for, and the test kernels too when `for_tests`;
/// returns the artifact directory.
pub fn build(args: &BuildArgs, for_tests: bool) -> Result<PathBuf> {
    let start = Instant::now();
    let host = Host::new()?;
    let kernels = plan::select(&plan::load(&host.repo)?, &args.kernels, for_tests)?;
    eprintln!("cache: {}", host.cache.root.display());
    let steps = plan::steps(&kernels);
    let mut runner = Runner::new(&host, args.jobs);
    runner.run_all(&steps)?;
    let artifacts = host.cache.artifacts();
    eprintln!(
        "artifacts ready in {} ({:.1} s)",
        artifacts.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(artifacts)
}

/// Runs steps in order, keeping what each produced for the later ones.
pub struct Runner<'a> {
    host: &'a Host,
    jobs: usize,
    toolchain: Option<Toolchain>,
    /// Kernel name to its `bzImage`.
    kernels: BTreeMap<String, PathBuf>,
    /// Kernel name to the modules built against it.
    modules: BTreeMap<String, Vec<PathBuf>>,
    /// Kernel name to its initramfs.
    initramfs: BTreeMap<String, PathBuf>,
}

impl<'a> Runner<'a> {
    /// A runner with nothing built yet.
    pub fn new(host: &'a Host, jobs: usize) -> Self {
        Self {
            host,
            jobs,
            toolchain: None,
            kernels: BTreeMap::new(),
            modules: BTreeMap::new(),
            initramfs: BTreeMap::new(),
        }
    }

    /// The toolchain of the provision step.
    pub fn toolchain(&self) -> Result<&Toolchain> {
        self.toolchain
            .as_ref()
            .context("the provision step must run before the build steps")
    }

    /// Runs `steps` in order, numbering the progress from the list
    /// (`[3/6] kernel lab: ...`).
    pub fn run_all(&mut self, steps: &[Step]) -> Result<()> {
        for (i, step) in steps.iter().enumerate() {
            eprintln!("[{}/{}] {}", i + 1, steps.len(), step.title());
            self.run(step)?;
        }
        Ok(())
    }

    /// Runs one step.
    pub fn run(&mut self, step: &Step) -> Result<()> {
        let host = self.host;
        match step {
            Step::Provision => {
                let t = host.provision()?;
                eprintln!("  linux-source {}", t.kernel_version);
                self.toolchain = Some(t);
            }
            Step::Ssdt => {
                let out = host.acpi_out();
                let _ = std::fs::remove_dir_all(&out);
                ssdt::build(&host.repo.join("acpi"), &out, None)?;
            }
            Step::Kernel(k) => {
                let t = self.toolchain()?;
                if let Some(n) = k.objects {
                    kernel::seed_object_count(&host.kernel_out(t, &k.name), n)?;
                }
                let built = kernel::build(
                    &t.kernel_src,
                    &patches::series(&host.repo)?,
                    &k.fragment_paths(&host.repo),
                    &host.kernel_out(t, &k.name),
                    &host.kernel_tree(t, &k.name),
                    &host.kernel_tools(t, self.jobs),
                    kernel::Scratch {
                        logs: &host.logs(&k.name),
                        tinyconfigs: Some(&host.cache.tinyconfigs()),
                    },
                )?;
                self.kernels.insert(k.name.clone(), built.bz_image);
            }
            Step::Module(k) => {
                let t = self.toolchain()?;
                let kernel_key = kernel::stamp_key(&host.kernel_out(t, &k.name));
                let mut kos = Vec::new();
                for m in plan::load_modules(&host.repo)? {
                    kos.extend(module::build_unless_up_to_date(
                        &host.kernel_tree(t, &k.name),
                        &host.repo.join(&m.dir),
                        &host.module_out(&k.name, &m.dir),
                        &host.kernel_tools(t, self.jobs),
                        &host.logs(&k.name),
                        kernel_key.as_deref(),
                    )?);
                }
                self.modules.insert(k.name.clone(), kos);
            }
            Step::Initramfs(k) => self.initramfs(k)?,
            Step::Artifacts => self.install()?,
        }
        Ok(())
    }

    /// The initramfs step for kernel `k`, with Debian's static busybox.
    fn initramfs(&mut self, k: &KernelSpec) -> Result<()> {
        let busybox = exec::which("busybox")
            .or_else(|| Some(PathBuf::from("/bin/busybox")).filter(|p| p.is_file()))
            .ok_or_else(|| exec::missing_tool("busybox"))?;
        let modules = self.built(&self.modules, &k.name, "module")?;
        let refs: Vec<&std::path::Path> = modules.iter().map(PathBuf::as_path).collect();
        let out = self.host.initramfs_out(&k.name);
        let tools = self.host.kernel_tools(self.toolchain()?, self.jobs);
        let objcopy = exec::require(&tools.llvm_tool("llvm-objcopy"))?;
        initramfs::pack(
            &busybox,
            &self.host.repo.join("initramfs/init"),
            &refs,
            &objcopy,
            &out,
        )?;
        self.initramfs.insert(k.name.clone(), out);
        Ok(())
    }

    /// The artifacts step: everything built so far, into the cache's
    /// artifact directory.
    fn install(&self) -> Result<()> {
        let host = self.host;
        let t = self.toolchain()?;
        let kernels = self
            .kernels
            .iter()
            .map(|(name, image)| {
                Ok(KernelFiles {
                    name: name.clone(),
                    kernel: image.clone(),
                    initramfs: self.built(&self.initramfs, name, "initramfs")?,
                    modules: self.built(&self.modules, name, "module")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // The source the lab kernel was built from: the patched copy when
        // the lab carries patches.
        let kernel_source = if patches::series(&host.repo)?.is_empty() {
            t.kernel_src.clone()
        } else {
            kernel::patched_source(&host.kernel_tree(t, LAB_KERNEL))
        };
        let toolchain = ToolchainRecord {
            kernel_source,
            kernel_build: host.kernel_tree(t, LAB_KERNEL),
            rust_lib_src: t.rust_lib_src.clone(),
            bindgen: t.bindgen.clone(),
            llvm: t.llvm.clone(),
            tinyconfig_cache: host.cache.tinyconfigs(),
        };
        artifacts::assemble(
            &Layout::new(host.cache.artifacts()),
            &host.acpi_out(),
            &kernels,
            &t.kernel_version,
            Some(&toolchain),
        )
    }

    /// What an earlier step built for kernel `name`.
    fn built<T: Clone>(&self, map: &BTreeMap<String, T>, name: &str, what: &str) -> Result<T> {
        map.get(name)
            .cloned()
            .with_context(|| format!("no {what} was built for the {name} kernel"))
    }
}
