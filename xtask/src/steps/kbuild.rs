//! The kernel's make and the tools it runs, shared by the steps that run it
//! (kernel, module, rust-analyzer project). The tools are explicit
//! ([`KernelTools`]) so that the host path (tools from provisioning) and the
//! flake (tools from nixpkgs) run the same code.

use crate::exec::{self, cmd};
use crate::pins::BuildStamp;
use anyhow::{Context, Result, bail};
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
    /// What the kernel records as its build's time, user and host.
    pub stamp: Option<BuildStamp>,
    /// Compile the Rust objects with clippy instead of rustc (kbuild's
    /// `CLIPPY=1`): the lint step's switch, never set for a build.
    pub clippy: Option<Clippy>,
}

/// kbuild's `CLIPPY=1`: the clippy-driver to run and the lints allowed on
/// top of the kernel's own lint set.
#[derive(Debug, Clone)]
pub struct Clippy {
    /// The clippy-driver binary (`CLIPPY_DRIVER`).
    pub driver: PathBuf,
    /// Lints allowed (`-A`), added to `KRUSTFLAGS` after the kernel's flags.
    pub allow: Vec<String>,
}

impl KernelTools {
    /// A `make` command for the kernel tree at `src` with our variables.
    /// Rust paths below the library sources and below each of `sources` (an
    /// out-of-tree module's directory) are written relative into the
    /// objects (`--remap-path-prefix`), so the build's location does not
    /// end up in them.
    pub fn make(&self, src: &Path, sources: &[&Path]) -> Command {
        let mut c = exec::cmd("make", [] as [&str; 0]);
        c.arg("-C").arg(src).arg(format!("LLVM={}", self.llvm));
        let mut remaps: Vec<String> = sources
            .iter()
            .map(|dir| format!("--remap-path-prefix={}/=", dir.display()))
            .collect();
        if let Some(dir) = &self.rust_lib_src {
            c.arg(format!("RUST_LIB_SRC={}", dir.display()));
            remaps.push(format!("--remap-path-prefix={}=/", dir.display()));
        }
        if let Some(clippy) = &self.clippy {
            c.arg("CLIPPY=1")
                .arg(format!("CLIPPY_DRIVER={}", clippy.driver.display()));
            remaps.extend(clippy.allow.iter().map(|lint| format!("-A{lint}")));
        }
        if !remaps.is_empty() {
            c.arg(format!("KRUSTFLAGS={}", remaps.join(" ")));
        }
        if let Some(stamp) = &self.stamp {
            c.env("KBUILD_BUILD_TIMESTAMP", &stamp.timestamp)
                .env("KBUILD_BUILD_USER", &stamp.user)
                .env("KBUILD_BUILD_HOST", &stamp.host)
                // The `#N` of `uname -v`: otherwise a count of the builds
                // done in this tree (.version).
                .env("KBUILD_BUILD_VERSION", "1");
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

    /// The name of the LLVM tool `tool` (`clang`, `llvm-objcopy`) that the
    /// kernel's make runs with this `LLVM=`: `llvm-objcopy-19` for `-19`,
    /// `llvm-objcopy` from PATH for `1`.
    pub fn llvm_tool(&self, tool: &str) -> String {
        let suffix = if self.llvm == "1" { "" } else { &self.llvm };
        format!("{tool}{suffix}")
    }

    /// Checks that the tools exist before a long build starts.
    pub fn check(&self) -> Result<()> {
        exec::require("make")?;
        for t in ["clang", "ld.lld", "llvm-ar", "llvm-objcopy"] {
            exec::require(&self.llvm_tool(t))?;
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
    pub fn identity(&self) -> String {
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
        // `remap=1`: the objects are built with `make`'s path remapping
        // (a tree built before it must be rebuilt).
        format!(
            "llvm={} rust_lib_src={:?} rustc={} bindgen={} stamp={:?} remap=1",
            self.llvm,
            self.rust_lib_src,
            version(rustc),
            version(bindgen),
            self.stamp
        )
    }
}

/// `path` made absolute; `what` names it in the error when it does not exist.
pub fn existing(path: &Path, what: &str) -> Result<PathBuf> {
    path.canonicalize()
        .with_context(|| format!("{what} {} does not exist", path.display()))
}
