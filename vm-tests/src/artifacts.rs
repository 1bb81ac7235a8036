//! The artifact directory (`$LAB_ARTIFACTS`) and the cache and log directories.
//!
//! Layout of the artifact directory (produced by `cargo xtask build` or the flake):
//!
//! ```text
//! $LAB_ARTIFACTS/bzImage              the kernel
//! $LAB_ARTIFACTS/rust_keyboard.ko     the module (also inside the initramfs)
//! $LAB_ARTIFACTS/initramfs.cpio.gz    busybox initramfs with /init
//! $LAB_ARTIFACTS/acpi/ssdt.aml        the real SSDT
//! $LAB_ARTIFACTS/acpi/<name>.aml      test variants (sta-absent, no-irq, ...)
//! $LAB_ARTIFACTS/kunit/bzImage        kernel with KUnit and Rust tests
//! ```

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Environment variable naming the artifact directory.
pub const ARTIFACTS_ENV: &str = "LAB_ARTIFACTS";
/// Environment variable naming the directory of VM logs.
pub const LOG_DIR_ENV: &str = "LAB_LOG_DIR";
/// Environment variable naming the cache root.
pub const CACHE_DIR_ENV: &str = "LAB_CACHE_DIR";

/// A located artifact directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    root: PathBuf,
}

impl Artifacts {
    /// The directory named by `$LAB_ARTIFACTS`.
    ///
    /// Fails with [`Error::ArtifactsUnset`] when the variable is unset or
    /// empty, and with [`Error::ArtifactMissing`] when it does not name a
    /// directory. Individual files are checked by the accessors.
    pub fn from_env() -> Result<Self> {
        match std::env::var_os(ARTIFACTS_ENV) {
            Some(dir) if !dir.is_empty() => Self::from_dir(dir),
            _ => Err(Error::ArtifactsUnset),
        }
    }

    /// An artifact directory at an explicit path (must exist).
    pub fn from_dir(dir: impl Into<PathBuf>) -> Result<Self> {
        let root = dir.into();
        if !root.is_dir() {
            return Err(Error::ArtifactMissing {
                what: format!("artifact directory (${ARTIFACTS_ENV})"),
                path: root,
            });
        }
        Ok(Artifacts { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The kernel, `bzImage`.
    pub fn kernel(&self) -> Result<PathBuf> {
        self.file("kernel", "bzImage")
    }

    /// The module, `rust_keyboard.ko`.
    pub fn module(&self) -> Result<PathBuf> {
        self.file("kernel module", "rust_keyboard.ko")
    }

    /// The initramfs, `initramfs.cpio.gz`.
    pub fn initramfs(&self) -> Result<PathBuf> {
        self.file("initramfs", "initramfs.cpio.gz")
    }

    /// The real SSDT, `acpi/ssdt.aml`.
    pub fn ssdt(&self) -> Result<PathBuf> {
        self.file("SSDT", "acpi/ssdt.aml")
    }

    /// A compiled ACPI table `acpi/<name>.aml` (e.g. `sta-absent`, `no-irq`).
    pub fn acpi_table(&self, name: &str) -> Result<PathBuf> {
        let name = name.strip_suffix(".aml").unwrap_or(name);
        self.file(&format!("ACPI table {name}"), &format!("acpi/{name}.aml"))
    }

    /// The KUnit kernel, `kunit/bzImage`.
    pub fn kunit_kernel(&self) -> Result<PathBuf> {
        self.file("KUnit kernel", "kunit/bzImage")
    }

    /// The initramfs of the KUnit kernel (its module is built against that
    /// kernel), `kunit/initramfs.cpio.gz`.
    pub fn kunit_initramfs(&self) -> Result<PathBuf> {
        self.file("KUnit initramfs", "kunit/initramfs.cpio.gz")
    }

    fn file(&self, what: &str, rel: &str) -> Result<PathBuf> {
        let path = self.root.join(rel);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::ArtifactMissing {
                what: what.to_owned(),
                path,
            })
        }
    }
}

/// The cache root: `$LAB_CACHE_DIR`, else `$XDG_CACHE_HOME/rust-kbd-lab`,
/// else `~/.cache/rust-kbd-lab` (else `/tmp/rust-kbd-lab` without `$HOME`).
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CACHE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("rust-kbd-lab");
    }
    if let Some(home) = var("HOME") {
        return PathBuf::from(home).join(".cache/rust-kbd-lab");
    }
    std::env::temp_dir().join("rust-kbd-lab")
}

/// The directory of VM logs: `$LAB_LOG_DIR`, else `<cache>/logs`.
pub fn log_dir() -> PathBuf {
    match std::env::var_os(LOG_DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("logs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_check_files_and_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("acpi")).unwrap();
        std::fs::write(dir.path().join("bzImage"), b"k").unwrap();
        std::fs::write(dir.path().join("acpi/no-irq.aml"), b"t").unwrap();
        let a = Artifacts::from_dir(dir.path()).unwrap();
        assert_eq!(a.kernel().unwrap(), dir.path().join("bzImage"));
        assert_eq!(
            a.acpi_table("no-irq.aml").unwrap(),
            dir.path().join("acpi/no-irq.aml")
        );
        let err = a.initramfs().unwrap_err().to_string();
        assert!(err.contains("initramfs.cpio.gz"), "{err}");
        assert!(err.contains("cargo xtask build"), "{err}");
        assert!(Artifacts::from_dir(dir.path().join("nope")).is_err());
    }
}
