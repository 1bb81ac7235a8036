//! The commands: host-path orchestration (`build`, `vm`, `keys`, `test`) and
//! the single build steps the flake also runs.

use crate::exec::{self, cmd};
use crate::kernel::{self, KernelTools};
use crate::paths::{self, Cache};
use crate::pins::Pins;
use crate::provision::{self, Toolchain};
use crate::{initramfs, ssdt};
use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `build`.
#[derive(Args, Clone)]
pub struct BuildArgs {
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = crate::default_jobs())]
    pub jobs: usize,
    /// Also build the KUnit kernel (lab.config + kunit.config) with its own
    /// module and initramfs into <artifacts>/kunit (`test` always does).
    #[arg(long)]
    pub kunit: bool,
}

/// Arguments of `kernel`.
#[derive(Args)]
pub struct KernelArgs {
    /// Kernel source tree.
    #[arg(long, value_parser = crate::path)]
    src: PathBuf,
    /// Output: `<out>/bzImage` and the `O=` tree `<out>/build`.
    #[arg(long, value_parser = crate::path)]
    out: PathBuf,
    /// Config fragment(s) merged onto tinyconfig, in order.
    #[arg(long = "fragment", required = true, value_parser = crate::path)]
    fragments: Vec<PathBuf>,
    #[command(flatten)]
    tools: ToolArgs,
    /// Where build logs go (default: <out>/logs).
    #[arg(long, value_parser = crate::path)]
    log_dir: Option<PathBuf>,
}

/// The kernel toolchain options shared by the `kernel` and `module` steps.
#[derive(Args)]
struct ToolArgs {
    /// The kernel's LLVM= value: 1 (tools on PATH) or a version suffix (-19).
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    llvm: String,
    /// RUST_LIB_SRC: the `library` directory of the Rust sources.
    #[arg(long, value_parser = crate::path)]
    rust_lib_src: Option<PathBuf>,
    /// The bindgen binary (default: bindgen on PATH).
    #[arg(long, value_parser = crate::path)]
    bindgen: Option<PathBuf>,
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = crate::default_jobs())]
    jobs: usize,
}

impl ToolArgs {
    fn tools(&self) -> KernelTools {
        KernelTools {
            llvm: self.llvm.clone(),
            rust_lib_src: self.rust_lib_src.clone(),
            bindgen: self.bindgen.clone(),
            rust_bin: None,
            jobs: self.jobs,
        }
    }
}

/// Arguments of `module`.
#[derive(Args)]
pub struct ModuleArgs {
    /// The kernel build tree (the `O=` tree of the `kernel` step).
    #[arg(long, value_parser = crate::path)]
    kdir: PathBuf,
    /// The module's source directory.
    #[arg(long, value_parser = crate::path)]
    src: PathBuf,
    /// Output directory for the .ko (objects in <out>/obj).
    #[arg(long, value_parser = crate::path)]
    out: PathBuf,
    #[command(flatten)]
    tools: ToolArgs,
}

/// Arguments of the `rust-analyzer` step.
#[derive(Args)]
pub struct RustAnalyzerArgs {
    /// The kernel build tree (default: the host path's, built if needed).
    #[arg(long, value_parser = crate::path, requires = "src")]
    kdir: Option<PathBuf>,
    /// The module's source directory (default: module/ of the checkout).
    #[arg(long, value_parser = crate::path)]
    src: Option<PathBuf>,
    #[command(flatten)]
    tools: ToolArgs,
}

/// Arguments of `ssdt`.
#[derive(Args)]
pub struct SsdtArgs {
    /// Directory of .asl files (and test/*.asl).
    #[arg(long, value_parser = crate::path)]
    src: PathBuf,
    /// Output directory for the .aml files.
    #[arg(long, value_parser = crate::path)]
    out: PathBuf,
    /// The iasl binary (default: iasl on PATH).
    #[arg(long, value_parser = crate::path)]
    iasl: Option<PathBuf>,
}

/// Arguments of `initramfs`.
#[derive(Args)]
pub struct InitramfsArgs {
    /// A static busybox binary.
    #[arg(long, value_parser = crate::path)]
    busybox: PathBuf,
    /// Kernel module(s) to include under /lib/modules.
    #[arg(long = "module", value_parser = crate::path)]
    modules: Vec<PathBuf>,
    /// The /init script.
    #[arg(long, value_parser = crate::path)]
    init: PathBuf,
    /// The .cpio.gz to write.
    #[arg(long, value_parser = crate::path)]
    out: PathBuf,
}

/// Arguments of `vm`.
#[derive(Args)]
pub struct VmArgs {
    /// Open a QEMU window (the PS/2 keyboard then takes keys typed into it).
    #[arg(long)]
    gui: bool,
    /// Accelerator: kvm or tcg (default: kvm only if hardware KVM works).
    #[arg(long, env = "LAB_ACCEL")]
    accel: Option<String>,
    /// Boot without the lab's SSDT (no KBD0001 device).
    #[arg(long, conflicts_with = "ssdt")]
    no_ssdt: bool,
    /// Boot with another SSDT (.aml).
    #[arg(long, value_parser = crate::path)]
    ssdt: Option<PathBuf>,
    /// Extra kernel command line.
    #[arg(long, default_value = "")]
    append: String,
    /// Machine type: pc or q35.
    #[arg(long, default_value = "pc")]
    machine: String,
    /// Memory in MiB.
    #[arg(long, default_value_t = 256)]
    memory: u32,
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    no_build: bool,
    #[command(flatten)]
    build: BuildArgs,
}

/// Arguments of `keys`.
#[derive(Args)]
pub struct KeysArgs {
    /// QMP socket of the VM (default: the one `cargo xtask vm` opens).
    #[arg(long, value_parser = crate::path)]
    qmp: Option<PathBuf>,
    /// Type this text (one key press per character).
    #[arg(long)]
    text: Option<String>,
    /// Keys to press, QEMU names (a, ret, up, ctrl_r); a-b-c is one chord;
    /// the key - is minus (`-`, `ctrl--`).
    keys: Vec<String>,
}

/// Arguments of `test`.
#[derive(Args)]
pub struct TestArgs {
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    no_build: bool,
    #[command(flatten)]
    build: BuildArgs,
    /// Extra arguments for `cargo nextest run` (e.g. a test name filter).
    #[arg(last = true)]
    nextest_args: Vec<String>,
}

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Number of boots.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    no_build: bool,
    #[command(flatten)]
    build: BuildArgs,
}

/// The host path's context: checkout, cache, pins.
struct Host {
    repo: PathBuf,
    cache: Cache,
    pins: Pins,
}

impl Host {
    fn new() -> Result<Self> {
        let repo = paths::repo_root()?;
        let pins = Pins::load(&repo.join("pins.toml"))?;
        Ok(Self {
            repo,
            cache: Cache::from_env()?,
            pins,
        })
    }
}

/// `cargo xtask provision`.
pub fn provision_only() -> Result<()> {
    let host = Host::new()?;
    let t = provision::provision(&host.repo, &host.cache, &host.pins)?;
    eprintln!(
        "provisioned: linux-source {} at {}\n  RUST_LIB_SRC={}\n  bindgen {}",
        t.kernel_version,
        t.kernel_src.display(),
        t.rust_lib_src.display(),
        t.bindgen.display()
    );
    Ok(())
}

/// `cargo xtask build`: every step of the host path; returns the artifact
/// directory.
pub fn build(args: &BuildArgs) -> Result<PathBuf> {
    let start = Instant::now();
    let host = Host::new()?;
    eprintln!("cache: {}", host.cache.root.display());
    eprintln!("[1/4] provision");
    let t: Toolchain = provision::provision(&host.repo, &host.cache, &host.pins)?;
    let tools = host_tools(&t, args.jobs);
    let artifacts = host.cache.artifacts();
    eprintln!("[2/4] ssdt");
    let acpi_out = artifacts.join("acpi");
    let _ = std::fs::remove_dir_all(&acpi_out);
    ssdt::build(&host.repo.join("acpi"), &acpi_out, None)?;
    eprintln!(
        "[3/4] lab kernel (Linux {}), module, initramfs",
        t.kernel_version
    );
    let kdir = build_set(&host, &t, &tools, &lab_set(&artifacts))?;
    if args.kunit {
        eprintln!("[4/4] KUnit kernel, module, initramfs");
        build_set(
            &host,
            &t,
            &tools,
            &KernelSet {
                name: "kunit",
                fragments: &["kernel/lab.config", "kernel/kunit.config"],
                out: &artifacts.join("kunit"),
            },
        )?;
    } else {
        eprintln!("[4/4] KUnit kernel: skipped (built by `cargo xtask test` or `build --kunit`)");
    }
    install_bytes(
        &artifacts.join("manifest.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "kernel_version": t.kernel_version,
            "kernel_source": t.kernel_src,
            "kernel_build": kdir,
            "rust_lib_src": t.rust_lib_src,
            "bindgen": t.bindgen,
            "llvm": t.llvm,
        }))?
        .as_bytes(),
    )?;
    eprintln!(
        "artifacts ready in {} ({:.1} s)",
        artifacts.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(artifacts)
}

/// The kernel tools of the host path.
fn host_tools(t: &Toolchain, jobs: usize) -> KernelTools {
    KernelTools {
        llvm: t.llvm.clone(),
        rust_lib_src: Some(t.rust_lib_src.clone()),
        bindgen: Some(t.bindgen.clone()),
        rust_bin: Some(t.rust_bin.clone()),
        jobs,
    }
}

/// The lab's main kernel, installed into `artifacts`.
fn lab_set(artifacts: &Path) -> KernelSet<'_> {
    KernelSet {
        name: "lab",
        fragments: &["kernel/lab.config"],
        out: artifacts,
    }
}

/// One kernel configuration of the lab and where its artifacts go.
struct KernelSet<'a> {
    /// Short name: the build directories are `kernel-<version>-<name>` and
    /// `module-<name>`.
    name: &'a str,
    /// Config fragments, relative to the checkout, in merge order.
    fragments: &'a [&'a str],
    /// Directory receiving `bzImage`, the module and `initramfs.cpio.gz`.
    out: &'a Path,
}

/// Builds a kernel, the module against it and an initramfs holding that
/// module, and installs them into `set.out`. Returns the kernel build tree.
fn build_set(host: &Host, t: &Toolchain, tools: &KernelTools, set: &KernelSet) -> Result<PathBuf> {
    let logs = host.cache.logs().join(set.name);
    let fragments: Vec<PathBuf> = set.fragments.iter().map(|f| host.repo.join(f)).collect();
    let kout = kernel::build(
        &t.kernel_src,
        &fragments,
        &host
            .cache
            .builds()
            .join(format!("kernel-{}-{}", t.kernel_version, set.name)),
        tools,
        &logs,
    )?;
    let module_out = host.cache.builds().join(format!("module-{}", set.name));
    let kos = kernel::build_module(
        &kout.build_dir,
        &host.repo.join("module"),
        &module_out,
        tools,
        &logs,
    )?;
    let busybox = exec::which("busybox")
        .or_else(|| Some(PathBuf::from("/bin/busybox")).filter(|p| p.is_file()))
        .ok_or_else(|| exec::missing_tool("busybox"))?;
    let ko_refs: Vec<&Path> = kos.iter().map(PathBuf::as_path).collect();
    std::fs::create_dir_all(set.out)?;
    initramfs::pack(
        &busybox,
        &host.repo.join("initramfs/init"),
        &ko_refs,
        &set.out.join("initramfs.cpio.gz"),
    )?;
    install_file(&kout.bz_image, &set.out.join("bzImage"))?;
    for ko in &kos {
        install_file(ko, &set.out.join(ko.file_name().unwrap_or_default()))?;
    }
    Ok(kout.build_dir)
}

/// Copies `src` to `dest` through a temporary file and a rename, so that a
/// VM or test reading `dest` never sees a half-written file.
fn install_file(src: &Path, dest: &Path) -> Result<()> {
    let data = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    install_bytes(dest, &data)
}

/// Writes `data` to `dest` through a temporary file and a rename.
fn install_bytes(dest: &Path, data: &[u8]) -> Result<()> {
    let tmp = dest.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, dest).with_context(|| format!("cannot install {}", dest.display()))?;
    Ok(())
}

/// `cargo xtask kernel` (step).
pub fn kernel_step(a: &KernelArgs) -> Result<()> {
    let logs = a.log_dir.clone().unwrap_or_else(|| a.out.join("logs"));
    let out = kernel::build(&a.src, &a.fragments, &a.out, &a.tools.tools(), &logs)?;
    eprintln!("kernel: {}", out.bz_image.display());
    Ok(())
}

/// `cargo xtask module` (step).
pub fn module_step(a: &ModuleArgs) -> Result<()> {
    let logs = a.out.join("logs");
    for ko in kernel::build_module(&a.kdir, &a.src, &a.out, &a.tools.tools(), &logs)? {
        eprintln!("module: {}", ko.display());
    }
    Ok(())
}

/// `cargo xtask rust-analyzer`: module/rust-project.json against the host
/// path's kernel, or (with `--kdir`) against the given tree and tools.
pub fn rust_analyzer(a: &RustAnalyzerArgs) -> Result<()> {
    let written = match &a.kdir {
        Some(kdir) => {
            let src = a.src.clone().context("--kdir needs --src")?;
            kernel::rust_analyzer_project(kdir, &src, &a.tools.tools(), &std::env::temp_dir())?
        }
        None => {
            let host = Host::new()?;
            let t = provision::provision(&host.repo, &host.cache, &host.pins)?;
            let tools = host_tools(&t, a.tools.jobs);
            let kdir = build_set(&host, &t, &tools, &lab_set(&host.cache.artifacts()))?;
            let src = a.src.clone().unwrap_or_else(|| host.repo.join("module"));
            kernel::rust_analyzer_project(&kdir, &src, &tools, &host.cache.logs().join("lab"))?
        }
    };
    eprintln!("rust-analyzer: wrote {}", written.display());
    Ok(())
}

/// `cargo xtask ssdt` (step).
pub fn ssdt_step(a: &SsdtArgs) -> Result<()> {
    ssdt::build(&a.src, &a.out, a.iasl.as_deref()).map(|_| ())
}

/// `cargo xtask initramfs` (step).
pub fn initramfs_step(a: &InitramfsArgs) -> Result<()> {
    let mods: Vec<&Path> = a.modules.iter().map(PathBuf::as_path).collect();
    initramfs::pack(&a.busybox, &a.init, &mods, &a.out)?;
    eprintln!("initramfs: {}", a.out.display());
    Ok(())
}

/// The artifact directory: built now, or as it is with `no_build`
/// (`$LAB_ARTIFACTS` if set, e.g. the flake's, else the cache's).
fn artifacts(no_build: bool, args: &BuildArgs) -> Result<PathBuf> {
    if no_build {
        let dir = match std::env::var_os(vm_tests::artifacts::ARTIFACTS_ENV) {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => Cache::from_env()?.artifacts(),
        };
        if !dir.join("bzImage").is_file() {
            bail!("no artifacts in {}: run `cargo xtask build`", dir.display());
        }
        Ok(dir)
    } else {
        build(args)
    }
}

/// `cargo xtask vm`.
pub fn vm(a: &VmArgs) -> Result<()> {
    let dir = artifacts(a.no_build, &a.build)?;
    let artifacts = vm_tests::Artifacts::from_dir(&dir)?;
    let ssdt = match (&a.ssdt, a.no_ssdt) {
        (_, true) => None,
        (Some(file), false) => Some(file.clone()),
        (None, false) => Some(artifacts.ssdt()?),
    };
    let machine = match a.machine.as_str() {
        "pc" => vm_tests::MachineType::Pc,
        "q35" => vm_tests::MachineType::Q35,
        other => bail!("unknown machine type {other:?}: use pc or q35"),
    };
    let log = Cache::from_env()?.logs().join("vm-console.log");
    let config = vm_tests::VmConfig::new(artifacts.kernel()?, artifacts.initramfs()?)?
        .with_ssdt(ssdt)
        .with_accel(vm_tests::accel::choose(a.accel.as_deref())?)
        .with_machine(machine)
        .with_memory(a.memory)
        .with_gui(a.gui)
        .with_append(&a.append)
        .with_console(vm_tests::ConsoleMode::Stdio {
            log: Some(log.clone()),
        });
    eprintln!(
        "vm: booting {} (console log: {})",
        dir.display(),
        log.display()
    );
    if !a.gui {
        eprintln!(
            "vm: press keys on the VM's PS/2 keyboard with `cargo xtask keys a b c` (or --gui)"
        );
    }
    let status = config.run_interactive()?;
    if !status.success() {
        bail!("QEMU exited with {status}");
    }
    Ok(())
}

/// `cargo xtask keys`.
pub fn keys(a: &KeysArgs) -> Result<()> {
    let socket = a.qmp.clone().unwrap_or_else(|| {
        vm_tests::VmConfig::qmp_socket(&vm_tests::qemu::interactive_runtime_dir())
    });
    if a.keys.is_empty() && a.text.is_none() {
        bail!("nothing to press: give key names (a, ret, up, ctrl-alt-delete) or --text");
    }
    let chords = a
        .keys
        .iter()
        .map(|k| vm_tests::qmp::parse_chord(k))
        .collect::<Result<Vec<_>, _>>()?;
    let text_chords = vm_tests::qmp::text_chords(a.text.as_deref().unwrap_or_default())?;
    let mut qmp = vm_tests::QmpClient::connect(&socket, std::time::Duration::from_secs(5))
        .with_context(|| {
            format!(
                "no VM answers on {}: start one with `cargo xtask vm`",
                socket.display()
            )
        })?;
    let hold = std::time::Duration::from_millis(KEY_HOLD_MS);
    for chord in chords.iter().chain(&text_chords) {
        // One chord at a time, each delivered before the next: the PS/2
        // queue of QEMU holds only 16 bytes.
        qmp.press(chord, hold)?;
        eprintln!("keys: pressed {}", chord.join("-"));
    }
    Ok(())
}

/// How long `keys` holds each key down.
const KEY_HOLD_MS: u64 = 30;

/// `cargo xtask nix-check`.
pub fn nix_check() -> Result<()> {
    crate::nix_check::run(&paths::repo_root()?, &Cache::from_env()?)
}

/// `cargo xtask bench`.
pub fn bench(a: &BenchArgs) -> Result<()> {
    let dir = artifacts(a.no_build, &a.build)?;
    crate::bench::boot_to_bound(&dir, a.runs)
}

/// `cargo xtask test`: build, then run all tests with nextest.
pub fn test(a: &TestArgs) -> Result<()> {
    let cache = Cache::from_env()?;
    let build_args = BuildArgs {
        kunit: true,
        ..a.build.clone()
    };
    let artifacts = artifacts(a.no_build, &build_args)?;
    let nextest = match exec::which("cargo-nextest") {
        Some(p) => p,
        None => {
            provision::install_crate(&cache, "cargo-nextest", NEXTEST_VERSION, "cargo-nextest")?
        }
    };
    let repo = paths::repo_root()?;
    let mut c = cmd(
        &nextest,
        ["nextest", "run", "--workspace", "--profile", "ci"],
    );
    c.args(&a.nextest_args)
        .current_dir(&repo)
        .env("LAB_ARTIFACTS", &artifacts)
        .env("LAB_LOG_DIR", cache.logs().join("vm"));
    eprintln!(
        "running tests: LAB_ARTIFACTS={} (VM logs in {})",
        artifacts.display(),
        cache.logs().join("vm").display()
    );
    let status = c
        .status()
        .with_context(|| format!("cannot run {}", nextest.display()))?;
    if !status.success() {
        bail!(
            "tests failed ({status}); VM console logs are in {}",
            cache.logs().join("vm").display()
        );
    }
    Ok(())
}

/// cargo-nextest version installed when the host has none.
const NEXTEST_VERSION: &str = "0.9.143";
