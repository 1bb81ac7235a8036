//! Provisioning of the host path: Debian host packages, the pinned
//! architecture-independent `.deb`s (kernel source, rust-src) fetched through
//! an isolated apt configuration from the host's own Debian mirror, and
//! crates installed from the crate registry (bindgen, cargo-nextest).
//! Everything lands in the cache; the host's apt sources and state are never
//! modified.

mod apt;
mod deb;
pub mod mirror;

use crate::exec::{self, cmd};
use crate::paths::Cache;
use crate::pins::{DebPin, Pins};
use anyhow::{Context, Result, anyhow, bail};
use apt::IsolatedApt;
pub use apt::ensure_host_packages;
use std::path::{Path, PathBuf};

/// Everything the build steps need from provisioning.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Unpacked kernel source tree.
    pub kernel_src: PathBuf,
    /// The Debian version of the kernel source in use.
    pub kernel_version: String,
    /// `RUST_LIB_SRC` for the kernel.
    pub rust_lib_src: PathBuf,
    /// The bindgen binary.
    pub bindgen: PathBuf,
    /// Directory holding the pinned `rustc` and `rustdoc`.
    pub rust_bin: PathBuf,
    /// The kernel's `LLVM=` value (`-19` on Debian 12).
    pub llvm: String,
}

/// Runs every provisioning step, each a no-op when already done.
pub fn provision(repo: &Path, cache: &Cache, pins: &Pins) -> Result<Toolchain> {
    crate::pins::check_toolchain_matches(
        &std::fs::read_to_string(repo.join("rust-toolchain.toml"))?,
        pins,
    )?;
    ensure_host_packages(&pins.host.packages)?;
    let rust_bin = pinned_rust_bin(&pins.rust_src.rustc)?;
    // A tree unpacked from a verified .deb needs neither apt nor the .deb;
    // apt is set up only when something must be downloaded.
    let mut apt = None;
    let mut obtain = |name: &str,
                      package: &str,
                      list: &[DebPin],
                      unpack: &dyn Fn(&DebPin, &Path) -> Result<PathBuf>|
     -> Result<(DebPin, PathBuf)> {
        let done = list.iter().find_map(|pin| {
            let dir = deb::unpacked_dir(cache, name, pin);
            deb::is_unpacked(&dir, pin).then(|| (pin.clone(), dir))
        });
        if let Some((pin, dir)) = done {
            eprintln!("  {package} {}: unpacked", pin.version);
            return Ok((pin, dir));
        }
        let apt = match &apt {
            Some(a) => a,
            None => apt.insert(IsolatedApt::new(
                cache,
                pins,
                &mirror::debian_mirror(Path::new("/etc/apt"))?,
            )?),
        };
        let (pin, deb) = apt.fetch(package, list)?;
        let dir = unpack(&pin, &deb)?;
        Ok((pin, dir))
    };
    let (kernel_pin, kernel_root) = obtain(
        "linux",
        &pins.kernel.package,
        &pins.kernel.pins,
        &|pin, deb| deb::unpack_kernel(cache, pin, deb, &pins.kernel.tarball),
    )?;
    let kernel_root = deb::kernel_tree(&kernel_root)?;
    let (rust_pin, rust_root) = obtain(
        "rust-src",
        &pins.rust_src.package,
        &pins.rust_src.pins,
        &|pin, deb| deb::unpack_deb(cache, "rust-src", pin, deb),
    )?;
    let rust_lib_src = rust_root.join(&pins.rust_src.library);
    if !rust_lib_src.join("core").is_dir() {
        bail!(
            "rust-src {} has no core library at {}: the pin's `library` path is wrong",
            rust_pin.version,
            rust_lib_src.display()
        );
    }
    let bindgen = install_crate(cache, &pins.bindgen.name, &pins.bindgen.version, "bindgen")?;
    // Real paths: they are part of the kernel build's identity and of the
    // objects (RUST_LIB_SRC, remaps, BINDGEN), so a cache whose `src/` and
    // `tools/` are links to another cache's shares that cache's kernel
    // builds instead of redoing them.
    let kernel_root = kernel_root.canonicalize()?;
    let rust_lib_src = rust_lib_src.canonicalize()?;
    let bindgen = bindgen.canonicalize()?;
    Ok(Toolchain {
        kernel_src: kernel_root,
        kernel_version: kernel_pin.version,
        rust_lib_src,
        bindgen,
        rust_bin,
        llvm: pins.host.llvm_suffix.clone(),
    })
}

/// Finds the directory of the pinned `rustc` and checks its version.
fn pinned_rust_bin(version: &str) -> Result<PathBuf> {
    let rustc = match exec::which("rustup") {
        Some(_) => PathBuf::from(
            exec::output(&mut cmd(
                "rustup",
                ["which", "--toolchain", version, "rustc"],
            ))
            .with_context(|| {
                format!(
                    "rustup has no {version} toolchain: run `rustup toolchain install {version}`"
                )
            })?
            .trim(),
        ),
        None => exec::require("rustc")?,
    };
    let reported = exec::output(&mut cmd(&rustc, ["--version"]))?;
    if !reported.starts_with(&format!("rustc {version} ")) {
        bail!(
            "{} reports `{}` but the lab pins rustc {version} (rust-toolchain.toml and pins.toml's rust_src)",
            rustc.display(),
            reported.trim()
        );
    }
    rustc
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("rustc path {} has no directory", rustc.display()))
}

/// Installs crate `name` at `version` into `<cache>/tools/<name>-<version>`
/// (once) and returns the path of its binary `bin`.
pub fn install_crate(cache: &Cache, name: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let root = cache.tools().join(format!("{name}-{version}"));
    let binary = root.join("bin").join(bin);
    if binary.is_file() {
        return Ok(binary);
    }
    let mut c = cmd(
        "cargo",
        [
            "install",
            "--locked",
            "--quiet",
            "--version",
            version,
            "--root",
        ],
    );
    c.arg(&root).arg(name);
    // From the checkout, so that rustup uses the pinned toolchain of
    // rust-toolchain.toml (cargo install keeps its target dir elsewhere).
    c.current_dir(crate::paths::repo_root()?);
    exec::run_logged(
        &mut c,
        &format!("cargo install {name} {version}"),
        &cache.logs().join(format!("install-{name}.log")),
    )?;
    if !binary.is_file() {
        bail!(
            "cargo install {name} {version} did not produce {}",
            binary.display()
        );
    }
    Ok(binary)
}
