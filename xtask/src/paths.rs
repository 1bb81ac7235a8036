//! Where things live: the checkout, and the cache outside it.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The root of the checkout (the workspace holding `pins.toml`).
pub fn repo_root() -> Result<PathBuf> {
    // CARGO_MANIFEST_DIR is xtask/ at build time; its parent is the checkout.
    // Under Nix the binary runs outside the checkout: then the current
    // directory (or an explicit --src) is used instead.
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if compiled.join("pins.toml").is_file() {
        return Ok(compiled.canonicalize()?);
    }
    let cwd = std::env::current_dir()?;
    for dir in cwd.ancestors() {
        if dir.join("pins.toml").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "cannot find the lab checkout (a directory with pins.toml) above {}",
        cwd.display()
    )
}

/// The cache root of this process's environment (the rule lives in
/// [`vm_tests::artifacts::cache_dir`], shared with the test harness), created
/// if needed.
pub fn cache_root() -> Result<PathBuf> {
    let root = vm_tests::artifacts::cache_dir();
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create the cache directory {}", root.display()))?;
    Ok(root)
}

/// The layout of the cache.
#[derive(Debug, Clone)]
pub struct Cache {
    /// Root directory.
    pub root: PathBuf,
}

impl Cache {
    /// The cache of this process's environment.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            root: cache_root()?,
        })
    }
    /// Isolated apt configuration and state.
    pub fn apt(&self) -> PathBuf {
        self.root.join("apt")
    }
    /// Downloaded, verified `.deb` files.
    pub fn debs(&self) -> PathBuf {
        self.root.join("debs")
    }
    /// Unpacked sources (kernel, rust-src).
    pub fn sources(&self) -> PathBuf {
        self.root.join("src")
    }
    /// Tools installed with cargo (bindgen, alejandra, deadnix).
    pub fn tools(&self) -> PathBuf {
        self.root.join("tools")
    }
    /// Kernel and module build trees.
    pub fn builds(&self) -> PathBuf {
        self.root.join("build")
    }
    /// The artifact directory the VM and the tests use.
    pub fn artifacts(&self) -> PathBuf {
        self.root.join("artifacts")
    }
    /// The runtime directory of `cargo xtask vm`: its QMP socket, which
    /// `cargo xtask keys` talks to.
    pub fn vm_runtime(&self) -> PathBuf {
        self.root.join("vm")
    }
    /// tinyconfig's results, reused by every kernel of the same source,
    /// patches and tools (`steps::kernel::Scratch`).
    pub fn tinyconfigs(&self) -> PathBuf {
        self.root.join("tinyconfig")
    }
    /// Build and VM logs.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
}
