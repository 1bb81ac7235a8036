//! Build steps that run the kernel's make: the kernel itself (configure,
//! check the configuration, build) and the out-of-tree module.
//!
//! Both take their tools explicitly ([`KernelTools`]) so that the host path
//! (tools from provisioning) and the flake (tools from nixpkgs) run the same
//! code.

use crate::exec::{self, cmd};
use crate::kconfig;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tools the kernel's make needs.
#[derive(Debug, Clone)]
pub struct KernelTools {
    /// The kernel's `LLVM=` value: `1` (tools on PATH) or a suffix like `-19`.
    pub llvm: String,
    /// `RUST_LIB_SRC`: the Rust `library` sources of the compiler in use.
    pub rust_lib_src: Option<PathBuf>,
    /// The bindgen binary (default: `bindgen` on PATH).
    pub bindgen: Option<PathBuf>,
    /// Directory holding `rustc` and `rustdoc` (default: PATH).
    pub rust_bin: Option<PathBuf>,
    /// Parallel jobs for make.
    pub jobs: usize,
}

impl KernelTools {
    /// A `make` command for the kernel tree at `src` with our variables.
    fn make(&self, src: &Path) -> Command {
        let mut c = Command::new("make");
        c.arg("-C").arg(src).arg(format!("LLVM={}", self.llvm));
        if let Some(dir) = &self.rust_lib_src {
            c.arg(format!("RUST_LIB_SRC={}", dir.display()));
        }
        if let Some(b) = &self.bindgen {
            c.arg(format!("BINDGEN={}", b.display()));
        }
        if let Some(bin) = &self.rust_bin {
            c.arg(format!("RUSTC={}", bin.join("rustc").display()));
            c.arg(format!("RUSTDOC={}", bin.join("rustdoc").display()));
        }
        // bindgen loads libclang at run time: point it at the LLVM in use.
        if let Some(ver) = self.llvm.strip_prefix('-') {
            let lib = PathBuf::from(format!("/usr/lib/llvm-{ver}/lib"));
            if lib.is_dir() && std::env::var_os("LIBCLANG_PATH").is_none() {
                c.env("LIBCLANG_PATH", lib);
            }
        }
        c
    }

    /// Checks that the tools exist before a long build starts.
    fn check(&self) -> Result<()> {
        exec::require("make")?;
        let suffix = if self.llvm == "1" {
            ""
        } else {
            self.llvm.as_str()
        };
        for t in ["clang", "ld.lld", "llvm-ar", "llvm-objcopy"] {
            exec::require(&format!("{t}{suffix}"))?;
        }
        for t in ["flex", "bison", "bc", "perl"] {
            exec::require(t)?;
        }
        match &self.bindgen {
            Some(b) if !b.is_file() => bail!("bindgen {} does not exist", b.display()),
            None => drop(exec::require("bindgen")?),
            _ => {}
        }
        Ok(())
    }

    /// A short description that changes whenever the tools change.
    fn identity(&self) -> String {
        let version = |program: PathBuf| {
            exec::output(&mut cmd(program, ["--version"]))
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let rustc = self
            .rust_bin
            .as_ref()
            .map_or_else(|| PathBuf::from("rustc"), |b| b.join("rustc"));
        let bindgen = self.bindgen.clone().unwrap_or_else(|| "bindgen".into());
        format!(
            "llvm={} rust_lib_src={:?} rustc={} bindgen={}",
            self.llvm,
            self.rust_lib_src,
            version(rustc),
            version(bindgen)
        )
    }
}

/// Where a kernel build puts things.
#[derive(Debug, Clone)]
pub struct KernelOutput {
    /// The kernel image.
    pub bz_image: PathBuf,
    /// The `O=` tree: `KDIR` for out-of-tree modules.
    pub build_dir: PathBuf,
}

/// Name of the stamp file that records what a finished build was made from.
const STAMP: &str = ".lab-kernel-stamp";

/// Configures and builds the kernel at `src` into `out` (`out/build` is the
/// `O=` tree, `out/bzImage` the image). Skips everything when `out` already
/// holds a build of the same source, fragments and tools.
pub fn build(
    src: &Path,
    fragments: &[PathBuf],
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<KernelOutput> {
    let src = existing(src, "kernel source")?;
    if !src.join("Kconfig").is_file() {
        bail!("{} is not a kernel source tree (no Kconfig)", src.display());
    }
    // merge_config.sh runs in the build directory: make the paths absolute.
    let fragments: Vec<PathBuf> = fragments
        .iter()
        .map(|f| existing(f, "config fragment"))
        .collect::<Result<_>>()?;
    let mut fragment_text = String::new();
    for f in &fragments {
        fragment_text.push_str(
            &std::fs::read_to_string(f)
                .with_context(|| format!("cannot read config fragment {}", f.display()))?,
        );
        fragment_text.push('\n');
    }
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    let build_dir = out.join("build");
    let bz_image = out.join("bzImage");
    let output = KernelOutput {
        bz_image: bz_image.clone(),
        build_dir: build_dir.clone(),
    };
    let key = {
        let mut h = Sha256::new();
        h.update(src.display().to_string());
        h.update(&fragment_text);
        h.update(tools.identity());
        crate::provision::hex(&h.finalize())
    };
    let stamp = out.join(STAMP);
    if bz_image.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&key) {
        eprintln!("  kernel: up to date ({})", out.display());
        return Ok(output);
    }
    tools.check()?;
    std::fs::create_dir_all(&build_dir)?;
    let _ = std::fs::remove_file(&stamp);

    let make = |args: &[&str]| {
        let mut c = tools.make(&src);
        c.arg(format!("O={}", build_dir.display())).args(args);
        c
    };
    let log = |name: &str| log_dir.join(format!("kernel-{name}.log"));

    // Configuration: tinyconfig + fragments, then olddefconfig.
    exec::run_logged(
        &mut make(&["tinyconfig"]),
        "kernel: tinyconfig",
        &log("config"),
    )?;
    let mut merge = cmd("sh", [src.join("scripts/kconfig/merge_config.sh")]);
    merge
        .arg("-m")
        .arg("-O")
        .arg(&build_dir)
        .arg(build_dir.join(".config"))
        .args(&fragments)
        .current_dir(&build_dir);
    exec::run_logged(&mut merge, "kernel: merge config fragments", &log("merge"))?;
    exec::run_logged(
        &mut make(&["olddefconfig"]),
        "kernel: olddefconfig",
        &log("olddefconfig"),
    )?;
    check_config(&build_dir, &fragment_text, &mut make(&["rustavailable"]))?;

    // Module.symvers (needed by out-of-tree modules) comes from `modules`.
    let jobs = format!("-j{}", tools.jobs.max(1));
    exec::run_logged(
        &mut make(&[&jobs, "bzImage", "modules"]),
        "kernel: build (a cold build takes 6 to 11 minutes on 2 cores)",
        &log("build"),
    )?;
    std::fs::copy(build_dir.join("arch/x86/boot/bzImage"), &bz_image)
        .context("the kernel build did not produce arch/x86/boot/bzImage")?;
    std::fs::write(&stamp, key)?;
    Ok(output)
}

/// Fails, listing every option Kconfig dropped or changed, if the final
/// `.config` does not honour the fragments. When CONFIG_RUST is among them,
/// the output of `make rustavailable` says why.
fn check_config(build_dir: &Path, fragment_text: &str, rustavailable: &mut Command) -> Result<()> {
    let config = std::fs::read_to_string(build_dir.join(".config"))
        .context("olddefconfig left no .config")?;
    let mismatches = kconfig::compare(&kconfig::parse(fragment_text), &kconfig::parse(&config));
    if mismatches.is_empty() {
        eprintln!("  kernel: .config honours every option of the fragment");
        return Ok(());
    }
    let list: Vec<String> = mismatches.iter().map(|m| format!("  {m}")).collect();
    let mut msg = format!(
        "Kconfig did not keep {} option(s) of the fragment (see {}):\n{}",
        mismatches.len(),
        build_dir.join(".config").display(),
        list.join("\n")
    );
    if mismatches.iter().any(|m| m.name == "CONFIG_RUST") {
        let why = rustavailable
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_else(|e| e.to_string());
        msg.push_str(
            "\n\nCONFIG_RUST needs a working Rust toolchain; `make rustavailable` says:\n",
        );
        msg.push_str(why.trim());
    }
    bail!(msg)
}

/// Builds the out-of-tree module in `src` against the kernel build tree
/// `kdir` with output in `out` (the source tree is left untouched) and
/// returns the `.ko` files built.
pub fn build_module(
    kdir: &Path,
    src: &Path,
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<Vec<PathBuf>> {
    let kdir = existing(kdir, "kernel build dir")?;
    if !kdir.join("Module.symvers").is_file() {
        bail!(
            "{} has no Module.symvers: it is not a finished kernel build tree (run `cargo xtask kernel` with `modules`)",
            kdir.display()
        );
    }
    let src = existing(src, "module source")?;
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    let objdir = out.join("obj");
    std::fs::create_dir_all(&objdir)?;
    let mut c = tools.make(&kdir);
    c.arg(format!("M={}", src.display()))
        .arg(format!("MO={}", objdir.display()))
        .arg(format!("-j{}", tools.jobs.max(1)))
        .arg("modules");
    exec::run_logged(&mut c, "module: build", &log_dir.join("module-build.log"))?;
    let mut built = Vec::new();
    for entry in std::fs::read_dir(&objdir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "ko") {
            let dest = out.join(p.file_name().unwrap_or_default());
            std::fs::copy(&p, &dest)?;
            built.push(dest);
        }
    }
    if built.is_empty() {
        bail!("the module build in {} produced no .ko", objdir.display());
    }
    Ok(built)
}

/// Writes `<src>/rust-project.json` for rust-analyzer: the kernel's own
/// `make rust-analyzer` (scripts/generate_rust_analyzer.py) for the external
/// module in `src`, against the kernel build tree `kdir`. Nothing else is
/// written into `src` (the make runs with a temporary `MO=`).
pub fn rust_analyzer_project(
    kdir: &Path,
    src: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<PathBuf> {
    let kdir = existing(kdir, "kernel build dir")?;
    let src = existing(src, "module source")?;
    let work = tempfile::Builder::new()
        .prefix("rust-kbd-lab-ra-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let work = work.path();
    let mut c = tools.make(&kdir);
    c.arg(format!("M={}", src.display()))
        .arg(format!("MO={}", work.display()))
        .arg("rust-analyzer");
    exec::run_logged(
        &mut c,
        "module: make rust-analyzer",
        &log_dir.join("rust-analyzer.log"),
    )?;
    let generated = work.join("rust-project.json");
    let dest = src.join("rust-project.json");
    std::fs::copy(&generated, &dest)
        .with_context(|| format!("make rust-analyzer left no {}", generated.display()))?;
    Ok(dest)
}

/// `path` made absolute; `what` names it in the error when it does not exist.
fn existing(path: &Path, what: &str) -> Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("{what} {} does not exist", path.display()))
}
