//! The command line of `cargo xtask`: every command and its arguments. Each
//! command's code is in its own file of [`crate::commands`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Build, boot and test the Rust keyboard driver lab.
#[derive(Parser)]
#[command(name = "xtask", bin_name = "cargo xtask", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// Install the host packages, fetch the pinned kernel source and rust-src
    /// and install bindgen, all into the cache.
    Provision,
    /// Provision, then build the kernels of kernel/kernels.toml, the module
    /// against each, the SSDTs and the initramfs into <cache>/artifacts.
    Build(BuildArgs),
    /// Build if needed, then boot the VM with the console on this terminal.
    Vm(VmArgs),
    /// Press keys on the PS/2 keyboard of a running `cargo xtask vm`.
    Keys(KeysArgs),
    /// Attach gdb to the kernel of a running `cargo xtask vm --kernel debug
    /// --gdb`: vmlinux, the kernel's gdb scripts, the modules' symbols at
    /// their load addresses (lx-symbols).
    Gdb(GdbArgs),
    /// Stream the irq tracepoints of a running `cargo xtask vm --trace`
    /// (irq_handler_entry/exit of IRQ 1) to this terminal; Ctrl-C stops.
    Trace,
    /// Build if needed, then run every test (host unit tests and VM tests)
    /// with cargo-nextest.
    Test(TestArgs),
    /// Check the Nix files: parse, alejandra --check, deadnix, flake.lock.
    NixCheck,
    /// Format every Nix file of the checkout in place with alejandra (the
    /// version nix-check checks with; `nix fmt` does the same where Nix works).
    NixFmt,
    /// The kernel's checkpatch.pl --strict on every C file of the module
    /// directories (the C twin, the test-only modules).
    Checkpatch,
    /// Benchmark: boot the VM several times, report boot-to-driver-bound
    /// time (`bench`), measure key throughput and latency per interrupt
    /// mode (`bench keys`), time a guest command (`bench command`), or write
    /// the report of the lab against the bare tools (`bench report`).
    Bench(BenchArgs),
    /// Check that two builds from clean, in two fresh cache directories,
    /// give the same bytes (compares every artifact's sha256).
    Repro(ReproArgs),
    /// Write module/rust-project.json for rust-analyzer (the kernel's
    /// `make rust-analyzer` against the kernel build tree).
    RustAnalyzer(RustAnalyzerArgs),
    /// Lint the module directories the kernel's way: clippy with the
    /// kernel's lint set (kbuild's `make CLIPPY=1`) and rustfmt with the
    /// kernel's .rustfmt.toml; fails on any finding, naming file:line.
    Lint(LintArgs),
    /// The exercises' compile-fail tests: each [[compile_fail]] directory of
    /// kernel/kernels.toml built against the lab kernel must fail with
    /// exactly its expected rustc error codes, and build with FIXED=1.
    CompileFail(CompileFailArgs),
    /// Document the module beside the kernel crates (the kernel's
    /// `make rustdoc`) in <cache>/doc, offline; prints the page to open.
    Doc(DocArgs),
    /// Build, run the tests named, then on every save under the module
    /// directories rebuild the modules, initramfs and artifacts and rerun
    /// them, printing one line per round with the time from the save.
    Watch(WatchArgs),
    /// Check that rust-analyzer understands the module with the
    /// rust-project.json of `rust-analyzer` (every name resolves, kernel::
    /// ones included).
    RaCheck(RaCheckArgs),
    /// Step: configure, check and build a kernel.
    Kernel(KernelStepArgs),
    /// Step: build the out-of-tree module against a kernel build tree.
    Module(ModuleStepArgs),
    /// Step: compile the ACPI tables with iasl.
    Ssdt(SsdtStepArgs),
    /// Step: pack the initramfs.
    Initramfs(InitramfsStepArgs),
    /// Step: install built kernels, modules, initramfs and ACPI tables into
    /// an artifact directory and write its manifest.
    Artifacts(ArtifactsStepArgs),
}

/// Arguments of `build` (and of the commands that build first).
#[derive(Args, Clone)]
pub struct BuildArgs {
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Also build this kernel of kernel/kernels.toml (repeatable); kernels
    /// with `build = "always"` are always built.
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
}

/// Arguments of the `kernel` step.
#[derive(Args)]
pub struct KernelStepArgs {
    /// Kernel source tree.
    #[arg(long)]
    pub src: PathBuf,
    /// Output: `<out>/bzImage`.
    #[arg(long)]
    pub out: PathBuf,
    /// The `O=` tree (default: <out>/build): KDIR for out-of-tree modules.
    #[arg(long)]
    pub build_dir: Option<PathBuf>,
    /// Kernel patch(es) applied onto a copy of the source before the
    /// build, in the order given (the lab's series: kernel/patches/*.patch).
    #[arg(long = "patch")]
    pub patches: Vec<PathBuf>,
    /// Config fragment(s) merged onto tinyconfig, in order.
    #[arg(long = "fragment", required = true)]
    pub fragments: Vec<PathBuf>,
    /// The toolchain.
    #[command(flatten)]
    pub tools: ToolArgs,
    /// Where build logs go (default: <out>/logs).
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// A directory of earlier tinyconfig results to reuse and add to, one
    /// file per source, patch series and toolchain (default: none, run
    /// tinyconfig every time).
    #[arg(long)]
    pub tinyconfig_cache: Option<PathBuf>,
}

/// The kernel toolchain options of the steps that run the kernel's make.
#[derive(Args)]
pub struct ToolArgs {
    /// The kernel's LLVM= value: 1 (tools on PATH) or a version suffix (-19).
    #[arg(long, default_value = "1", allow_hyphen_values = true)]
    pub llvm: String,
    /// RUST_LIB_SRC: the `library` directory of the Rust sources.
    #[arg(long)]
    pub rust_lib_src: Option<PathBuf>,
    /// The bindgen binary (default: bindgen on PATH).
    #[arg(long)]
    pub bindgen: Option<PathBuf>,
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = default_jobs())]
    pub jobs: usize,
    /// KBUILD_BUILD_TIMESTAMP: the build time the kernel records (pins.toml
    /// `[build]`; default: now).
    #[arg(long, requires_all = ["build_user", "build_host"])]
    pub build_timestamp: Option<String>,
    /// KBUILD_BUILD_USER (with --build-timestamp).
    #[arg(long, requires = "build_timestamp")]
    pub build_user: Option<String>,
    /// KBUILD_BUILD_HOST (with --build-timestamp).
    #[arg(long, requires = "build_timestamp")]
    pub build_host: Option<String>,
}

/// Arguments of the `module` step.
#[derive(Args)]
pub struct ModuleStepArgs {
    /// The kernel build tree (the `O=` tree of the `kernel` step).
    #[arg(long)]
    pub kdir: PathBuf,
    /// The module's source directory.
    #[arg(long)]
    pub src: PathBuf,
    /// Output directory for the .ko (objects in <out>/obj).
    #[arg(long)]
    pub out: PathBuf,
    /// The toolchain.
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `rust-analyzer`.
#[derive(Args)]
pub struct RustAnalyzerArgs {
    /// The kernel build tree (default: the host path's, built if needed).
    #[arg(long, requires = "src")]
    pub kdir: Option<PathBuf>,
    /// The module's source directory (default: module/ of the checkout).
    #[arg(long)]
    pub src: Option<PathBuf>,
    /// The toolchain.
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `lint`.
#[derive(Args)]
pub struct LintArgs {
    /// The kernel build tree (default: the host path's, built if needed).
    #[arg(long, requires = "src")]
    pub kdir: Option<PathBuf>,
    /// A module directory (repeatable; default: every module directory of
    /// kernel/kernels.toml).
    #[arg(long)]
    pub src: Vec<PathBuf>,
    /// The clippy-driver (default: the pinned toolchain's; with --kdir,
    /// clippy-driver on PATH). It must be the clippy of the kernel's rustc.
    #[arg(long)]
    pub clippy_driver: Option<PathBuf>,
    /// The rustfmt (default: the pinned toolchain's; with --kdir, PATH).
    #[arg(long)]
    pub rustfmt: Option<PathBuf>,
    /// The rustfmt configuration (default: <kdir>/source/.rustfmt.toml,
    /// the kernel's).
    #[arg(long)]
    pub rustfmt_config: Option<PathBuf>,
    /// Allow this lint on top of the kernel's lint set (repeatable; the
    /// flake's check allows the lints its newer clippy adds).
    #[arg(long, value_name = "LINT")]
    pub allow: Vec<String>,
    /// The toolchain (with --kdir).
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `compile-fail`.
#[derive(Args)]
pub struct CompileFailArgs {
    /// The kernel build tree (default: the host path's lab kernel, built if
    /// needed); with it, one --src and its --error codes.
    #[arg(long, requires_all = ["src", "errors", "out"])]
    pub kdir: Option<PathBuf>,
    /// The compile-fail directory (with --kdir).
    #[arg(long, requires = "kdir")]
    pub src: Option<PathBuf>,
    /// A rustc error code the build must fail with (repeatable; with --kdir).
    #[arg(long = "error", value_name = "CODE", requires = "kdir")]
    pub errors: Vec<String>,
    /// Where the objects go (with --kdir; default: the cache).
    #[arg(long, requires = "kdir")]
    pub out: Option<PathBuf>,
    /// Check only this entry of kernel/kernels.toml (its directory's last
    /// component; repeatable).
    #[arg(long, value_name = "NAME", conflicts_with = "kdir")]
    pub only: Vec<String>,
    /// The toolchain (with --kdir).
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `doc`.
#[derive(Args)]
pub struct DocArgs {
    /// The kernel build tree (default: the host path's, built if needed).
    #[arg(long, requires_all = ["src", "out"])]
    pub kdir: Option<PathBuf>,
    /// A module directory (repeatable; default: every module directory of
    /// kernel/kernels.toml).
    #[arg(long)]
    pub src: Vec<PathBuf>,
    /// The documentation directory (default: <cache>/doc); `make rustdoc`
    /// empties it, so it must be new, empty or an earlier one of `doc`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The toolchain (with --kdir).
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `ra-check`.
#[derive(Args)]
pub struct RaCheckArgs {
    /// The kernel build tree (default: the host path's, built if needed).
    #[arg(long, requires_all = ["src", "rust_analyzer"])]
    pub kdir: Option<PathBuf>,
    /// A Rust module directory (repeatable; default: those of
    /// kernel/kernels.toml that hold Rust code).
    #[arg(long)]
    pub src: Vec<PathBuf>,
    /// The rust-analyzer binary (default: the one `--install` built, else
    /// rust-analyzer on PATH if it runs).
    #[arg(long)]
    pub rust_analyzer: Option<PathBuf>,
    /// Build rust-analyzer from the crate registry if there is none
    /// (ra_ap_rust-analyzer, 6 to 13 min on 2 cores).
    #[arg(long, conflicts_with = "kdir")]
    pub install: bool,
    /// The toolchain (with --kdir).
    #[command(flatten)]
    pub tools: ToolArgs,
}

/// Arguments of `watch`.
#[derive(Args)]
pub struct WatchArgs {
    /// How to build (`--kernel kunit` also builds the KUnit kernel and
    /// rebuilds its module on every save).
    #[command(flatten)]
    pub build: BuildArgs,
    /// Arguments for `cargo nextest run` every round (e.g. a test name
    /// filter: -- ex4_driver_probes).
    #[arg(last = true)]
    pub nextest_args: Vec<String>,
}

/// Arguments of the `ssdt` step.
#[derive(Args)]
pub struct SsdtStepArgs {
    /// Directory of .asl files (and test/*.asl).
    #[arg(long)]
    pub src: PathBuf,
    /// Output directory for the .aml files.
    #[arg(long)]
    pub out: PathBuf,
    /// The iasl binary (default: iasl on PATH).
    #[arg(long)]
    pub iasl: Option<PathBuf>,
}

/// Arguments of the `initramfs` step.
#[derive(Args)]
pub struct InitramfsStepArgs {
    /// A static busybox binary.
    #[arg(long)]
    pub busybox: PathBuf,
    /// Kernel module(s) to include under /lib/modules.
    #[arg(long = "module")]
    pub modules: Vec<PathBuf>,
    /// The /init script.
    #[arg(long)]
    pub init: PathBuf,
    /// The llvm-objcopy that strips the modules' debug sections (the
    /// kernel toolchain's; default: llvm-objcopy on PATH).
    #[arg(long, default_value = "llvm-objcopy")]
    pub objcopy: PathBuf,
    /// The .cpio to write (an uncompressed newc archive).
    #[arg(long)]
    pub out: PathBuf,
}

/// Arguments of the `artifacts` step.
#[derive(Args)]
pub struct ArtifactsStepArgs {
    /// The artifact directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Directory of the compiled ACPI tables (.aml).
    #[arg(long)]
    pub acpi: PathBuf,
    /// The kernel version, for the manifest.
    #[arg(long)]
    pub kernel_version: String,
    /// NAME=PATH: the bzImage of kernel NAME (repeat for every kernel).
    #[arg(long = "kernel", value_name = "NAME=PATH", value_parser = named_path)]
    pub kernels: Vec<(String, PathBuf)>,
    /// NAME=PATH: a module built against kernel NAME.
    #[arg(long = "module", value_name = "NAME=PATH", value_parser = named_path)]
    pub modules: Vec<(String, PathBuf)>,
    /// NAME=PATH: the initramfs of kernel NAME.
    #[arg(long = "initramfs", value_name = "NAME=PATH", value_parser = named_path)]
    pub initramfs: Vec<(String, PathBuf)>,
}

/// Arguments of `vm`.
#[derive(Args)]
pub struct VmArgs {
    /// Open a QEMU window on your display: keys typed into it go to the PS/2
    /// keyboard the driver owns.
    #[arg(long, conflicts_with = "vnc")]
    pub gui: bool,
    /// Show the screen on a VNC server at this address instead (keys typed
    /// into the viewer go to the PS/2 keyboard).
    #[arg(long, value_name = "HOST:DISPLAY", num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    pub vnc: Option<String>,
    /// Accelerator: kvm or tcg (default: kvm only if hardware KVM works).
    #[arg(long, env = "LAB_ACCEL")]
    pub accel: Option<String>,
    /// Boot without the lab's SSDT (no KBD0001 device).
    #[arg(long, conflicts_with = "ssdt")]
    pub no_ssdt: bool,
    /// Boot with another SSDT (.aml).
    #[arg(long)]
    pub ssdt: Option<PathBuf>,
    /// Extra kernel command line.
    #[arg(long, default_value = "")]
    pub append: String,
    /// Machine type: pc or q35.
    #[arg(long, default_value = "pc")]
    pub machine: String,
    /// Memory in MiB.
    #[arg(long, default_value_t = 256)]
    pub memory: u32,
    /// Boot this kernel of kernel/kernels.toml (built first unless
    /// --no-build): `debug` has the debug info gdb needs.
    #[arg(long, value_name = "NAME", default_value = vm_tests::artifacts::LAB_KERNEL)]
    pub kernel: String,
    /// Start QEMU's gdb stub on gdb.sock in the VM's runtime directory (the
    /// guest runs; attach with `cargo xtask gdb`); boots with nokaslr.
    #[arg(long, conflicts_with = "gdb_wait")]
    pub gdb: bool,
    /// The gdb stub, and QEMU waits before the first instruction until gdb
    /// continues it (QEMU's -S).
    #[arg(long)]
    pub gdb_wait: bool,
    /// Stream the irq tracepoints of IRQ 1 to trace.sock (a third serial
    /// port, fed by /init from trace_pipe): `cargo xtask trace` shows them.
    #[arg(long)]
    pub trace: bool,
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    pub no_build: bool,
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = default_jobs())]
    pub jobs: usize,
}

/// Arguments of `gdb`.
#[derive(Args)]
pub struct GdbArgs {
    /// Arguments for gdb after the lab's (e.g. -- -batch -ex bt).
    #[arg(last = true)]
    pub gdb_args: Vec<String>,
}

/// Arguments of `keys`.
#[derive(Args)]
pub struct KeysArgs {
    /// QMP socket of the VM (default: the one `cargo xtask vm` opens).
    #[arg(long)]
    pub qmp: Option<PathBuf>,
    /// Type this text (one key press per character).
    #[arg(long)]
    pub text: Option<String>,
    /// Keys to press, QEMU names (a, ret, up, ctrl_r); a-b-c is one chord,
    /// a lone `-` is the minus key (`ctrl--` is ctrl and minus).
    pub keys: Vec<String>,
}

/// Arguments of `test`.
#[derive(Args)]
pub struct TestArgs {
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    pub no_build: bool,
    /// How to build first.
    #[command(flatten)]
    pub build: BuildArgs,
    /// Extra arguments for `cargo nextest run` (e.g. a test name filter).
    #[arg(last = true)]
    pub nextest_args: Vec<String>,
}

/// Arguments of `bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: `boot` (boot to driver bound), `keys` (per
    /// interrupt mode: key events per second without loss, key latency,
    /// counters), `command` (a guest command's round trip, per kernel) or
    /// `report` (the lab against the bare tools, written to --out; always
    /// builds first).
    #[arg(value_enum, default_value_t = BenchWhat::Boot)]
    pub what: BenchWhat,
    /// Number of boots (`boot`).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Interrupt modes to measure (`keys`; repeatable, default: all).
    #[arg(long = "mode", value_enum)]
    pub modes: Vec<BenchMode>,
    /// Latency samples per mode (`keys`): key events, one per QMP command.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// Commands per script and kernel (`command`).
    #[arg(long, default_value_t = 50)]
    pub commands: usize,
    /// Key presses of the throughput burst per mode (`keys`; two events each).
    #[arg(long, default_value_t = 400)]
    pub presses: usize,
    /// Rounds (`report`; each runs every pair once, after a warm-up round).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Key events per round (`report`), one per QMP command.
    #[arg(long, default_value_t = 20)]
    pub key_events: usize,
    /// Where `report` writes report.md, report.json and boot-timeline.svg
    /// (default: docs/bench/ in the checkout).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Use the artifacts as they are; do not build.
    #[arg(long)]
    pub no_build: bool,
    /// How to build first.
    #[command(flatten)]
    pub build: BuildArgs,
}

/// What `bench` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchWhat {
    /// Boot to driver bound, over `--runs` boots.
    Boot,
    /// Key events per second and key latency, per interrupt mode.
    Keys,
    /// The round trip of one guest command, on the lab kernel and each
    /// `--kernel`.
    Command,
    /// The lab against the bare tools, alternating over `--rounds` rounds:
    /// VM test vs bare QEMU, no-op builds vs bare make, module edit to
    /// green, key latency, boot timeline; writes Markdown, JSON and SVG.
    Report,
}

/// An interrupt mode of the driver (its `mode` parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchMode {
    /// `mode=0`.
    Hard,
    /// `mode=1`.
    Threaded,
    /// `mode=2`.
    Workqueue,
}

/// Arguments of `repro`.
#[derive(Args)]
pub struct ReproArgs {
    /// Parallel jobs for make.
    #[arg(long, short, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Also build and compare this kernel of kernel/kernels.toml
    /// (repeatable; the kernels built always are always compared).
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
    /// Keep both cache directories (<cache>/repro/a and b) when the builds
    /// agree; they are always kept when they differ.
    #[arg(long)]
    pub keep: bool,
}

/// Default number of parallel jobs: the machine's cores.
fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Parses `NAME=PATH`.
fn named_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn named_paths_need_both_halves() {
        assert_eq!(
            named_path("debug=/a/b=c").unwrap(),
            ("debug".to_owned(), PathBuf::from("/a/b=c"))
        );
        assert!(named_path("/a/b").is_err());
        assert!(named_path("=x").is_err());
    }
}
