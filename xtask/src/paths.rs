//! Where things live: the checkout, and the cache outside it.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Directory name of the lab's cache below `$XDG_CACHE_HOME` or `~/.cache`.
const CACHE_NAME: &str = "rust-kbd-lab";

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
    bail!("cannot find the lab checkout (a directory with pins.toml) above {}", cwd.display())
}

/// Resolves the cache root from the environment values given:
/// `LAB_CACHE_DIR`, else `$XDG_CACHE_HOME/rust-kbd-lab`, else
/// `$HOME/.cache/rust-kbd-lab`.
pub fn cache_root_from(
    lab_cache_dir: Option<&str>,
    xdg_cache_home: Option<&str>,
    home: Option<&str>,
) -> Result<PathBuf> {
    let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(lab_cache_dir) {
        return Ok(dir);
    }
    if let Some(xdg) = non_empty(xdg_cache_home) {
        return Ok(xdg.join(CACHE_NAME));
    }
    if let Some(home) = non_empty(home) {
        return Ok(home.join(".cache").join(CACHE_NAME));
    }
    bail!("no cache directory: set LAB_CACHE_DIR (or XDG_CACHE_HOME or HOME)")
}

/// The cache root of this process's environment, created if needed.
pub fn cache_root() -> Result<PathBuf> {
    let var = |k: &str| std::env::var(k).ok();
    let root = cache_root_from(
        var("LAB_CACHE_DIR").as_deref(),
        var("XDG_CACHE_HOME").as_deref(),
        var("HOME").as_deref(),
    )?;
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
        Ok(Self { root: cache_root()? })
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
    /// Build and VM logs.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// Sockets of a running `cargo xtask vm`.
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_then_xdg_then_home() {
        assert_eq!(
            cache_root_from(Some("/c"), Some("/x"), Some("/h")).unwrap(),
            PathBuf::from("/c")
        );
        assert_eq!(
            cache_root_from(None, Some("/x"), Some("/h")).unwrap(),
            PathBuf::from("/x/rust-kbd-lab")
        );
        assert_eq!(
            cache_root_from(Some(""), Some(""), Some("/h")).unwrap(),
            PathBuf::from("/h/.cache/rust-kbd-lab")
        );
        assert!(cache_root_from(None, None, None).is_err());
    }
}
