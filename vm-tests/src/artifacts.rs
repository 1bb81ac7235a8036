//! The artifact directory (`$LAB_ARTIFACTS`) and the cache and log directories.
//!
//! [`Layout`] is the one definition of where each artifact lives: the host
//! build tool (`cargo xtask build`, and the `xtask artifacts` step the flake
//! runs) writes through it and [`Artifacts`] reads through it. For the
//! kernels of `kernel/kernels.toml` it gives:
//!
//! ```text
//! $LAB_ARTIFACTS/bzImage              the lab kernel ("lab")
//! $LAB_ARTIFACTS/rust_keyboard.ko     the module built against it
//! $LAB_ARTIFACTS/initramfs.cpio       busybox initramfs with /init and that module
//! $LAB_ARTIFACTS/<kernel>/...         the same three for every other kernel (e.g. debug/)
//! $LAB_ARTIFACTS/acpi/ssdt.aml        the real SSDT
//! $LAB_ARTIFACTS/acpi/<name>.aml      test variants (sta-absent, no-irq, ...)
//! $LAB_ARTIFACTS/manifest.json        versions and toolchain of the build
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Environment variable naming the artifact directory.
pub const ARTIFACTS_ENV: &str = "LAB_ARTIFACTS";
/// Environment variable naming the directory of VM logs.
pub const LOG_DIR_ENV: &str = "LAB_LOG_DIR";
/// Environment variable naming the cache root.
pub const CACHE_DIR_ENV: &str = "LAB_CACHE_DIR";

/// The name of the lab's main kernel in `kernel/kernels.toml`.
pub const LAB_KERNEL: &str = "lab";
/// The driver's file name.
pub const MODULE_FILE: &str = "rust_keyboard.ko";

/// Where every artifact lives below an artifact directory. Pure path
/// arithmetic: nothing is checked or created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of the artifact directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The artifact directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a kernel's files: the top for [`LAB_KERNEL`],
    /// `<root>/<kernel>` for every other kernel.
    pub fn kernel_dir(&self, kernel: &str) -> PathBuf {
        if kernel == LAB_KERNEL {
            self.root.clone()
        } else {
            self.root.join(kernel)
        }
    }

    /// A kernel's image, `bzImage`.
    pub fn kernel(&self, kernel: &str) -> PathBuf {
        self.kernel_dir(kernel).join("bzImage")
    }

    /// A module file (`file` is its name, e.g. [`MODULE_FILE`]) built
    /// against `kernel`.
    pub fn module(&self, kernel: &str, file: &str) -> PathBuf {
        self.kernel_dir(kernel).join(file)
    }

    /// The initramfs holding the module built against `kernel`.
    pub fn initramfs(&self, kernel: &str) -> PathBuf {
        self.kernel_dir(kernel).join("initramfs.cpio")
    }

    /// The directory of the compiled ACPI tables.
    pub fn acpi_dir(&self) -> PathBuf {
        self.root.join("acpi")
    }

    /// A compiled ACPI table, `acpi/<name>.aml`.
    pub fn acpi_table(&self, name: &str) -> PathBuf {
        let name = name.strip_suffix(".aml").unwrap_or(name);
        self.acpi_dir().join(format!("{name}.aml"))
    }

    /// The build manifest, `manifest.json`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.json")
    }
}

/// A located artifact directory, read through its [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    layout: Layout,
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
        Ok(Artifacts {
            layout: Layout::new(root),
        })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// The layout of the directory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The lab kernel's image.
    pub fn kernel(&self) -> Result<PathBuf> {
        self.kernel_of(LAB_KERNEL)
    }

    /// The module built against the lab kernel.
    pub fn module(&self) -> Result<PathBuf> {
        file("kernel module", self.layout.module(LAB_KERNEL, MODULE_FILE))
    }

    /// The lab kernel's initramfs.
    pub fn initramfs(&self) -> Result<PathBuf> {
        self.initramfs_of(LAB_KERNEL)
    }

    /// The real SSDT, `acpi/ssdt.aml`.
    pub fn ssdt(&self) -> Result<PathBuf> {
        file("SSDT", self.layout.acpi_table("ssdt"))
    }

    /// A compiled ACPI table `acpi/<name>.aml` (e.g. `sta-absent`, `no-irq`).
    pub fn acpi_table(&self, name: &str) -> Result<PathBuf> {
        let name = name.strip_suffix(".aml").unwrap_or(name);
        file(&format!("ACPI table {name}"), self.layout.acpi_table(name))
    }

    /// The image of the kernel `kernel` of `kernel/kernels.toml`.
    pub fn kernel_of(&self, kernel: &str) -> Result<PathBuf> {
        file(&format!("{kernel} kernel"), self.layout.kernel(kernel))
    }

    /// The kernel version the artifacts were built from (`kernel_version`
    /// of `manifest.json`, e.g. `7.2.12-1~bpo13+1`).
    pub fn kernel_version(&self) -> Result<String> {
        let path = file("build manifest", self.layout.manifest())?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
            what: "the build manifest",
            message: format!("{}: {e}", path.display()),
        })?;
        parsed["kernel_version"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Parse {
                what: "the build manifest",
                message: format!("{} has no kernel_version", path.display()),
            })
    }

    /// The initramfs of the kernel `kernel` (its module is built against
    /// that kernel).
    pub fn initramfs_of(&self, kernel: &str) -> Result<PathBuf> {
        file(
            &format!("{kernel} kernel's initramfs"),
            self.layout.initramfs(kernel),
        )
    }
}

/// `path` if it is a file, else [`Error::ArtifactMissing`] naming `what`.
fn file(what: &str, path: PathBuf) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::ArtifactMissing {
            what: what.to_owned(),
            path,
        })
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

/// The host path's build directory of the kernel `kernel` of version
/// `version` in the cache `cache`: `<cache>/build/kernel-<version>-<kernel>`
/// (`cargo xtask build` builds there; its `O=` tree is [`kernel_tree`]).
pub fn kernel_build_dir(cache: &Path, version: &str, kernel: &str) -> PathBuf {
    cache
        .join("build")
        .join(format!("kernel-{version}-{kernel}"))
}

/// The `O=` tree of a host build of `kernel` (`vmlinux`, `.config`, the
/// kernel's gdb scripts): `build/` of [`kernel_build_dir`].
pub fn kernel_tree(cache: &Path, version: &str, kernel: &str) -> PathBuf {
    kernel_build_dir(cache, version, kernel).join("build")
}

/// The environment variable that names the `O=` tree of `kernel` where it
/// was not built in the cache (Nix: the `build/` of the kernel's `dev`
/// output): `LAB_KERNEL_TREE_<KERNEL>`, the name in upper case with `-`
/// as `_` (`LAB_KERNEL_TREE_DEBUG`).
pub fn kernel_tree_env(kernel: &str) -> String {
    format!(
        "LAB_KERNEL_TREE_{}",
        kernel.to_ascii_uppercase().replace('-', "_")
    )
}

/// The `O=` tree of `kernel`: `$LAB_KERNEL_TREE_<KERNEL>` ([`kernel_tree_env`])
/// when set, else the host build's [`kernel_tree`] in `cache`.
pub fn find_kernel_tree(cache: &Path, version: &str, kernel: &str) -> PathBuf {
    tree_or_cache(
        std::env::var_os(kernel_tree_env(kernel)),
        cache,
        version,
        kernel,
    )
}

/// [`find_kernel_tree`] with the variable's value `var`.
fn tree_or_cache(var: Option<OsString>, cache: &Path, version: &str, kernel: &str) -> PathBuf {
    match var.filter(|v| !v.is_empty()) {
        Some(tree) => PathBuf::from(tree),
        None => kernel_tree(cache, version, kernel),
    }
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
        assert!(err.contains("initramfs.cpio"), "{err}");
        assert!(err.contains("cargo xtask build"), "{err}");
        assert!(Artifacts::from_dir(dir.path().join("nope")).is_err());
    }

    #[test]
    fn a_kernel_tree_is_named_by_its_variable_or_found_in_the_cache() {
        assert_eq!(kernel_tree_env("debug"), "LAB_KERNEL_TREE_DEBUG");
        assert_eq!(kernel_tree_env("rust-2"), "LAB_KERNEL_TREE_RUST_2");
        let cache = Path::new("/c");
        let in_cache = Path::new("/c/build/kernel-7.2-debug/build");
        assert_eq!(tree_or_cache(None, cache, "7.2", "debug"), in_cache);
        assert_eq!(
            tree_or_cache(Some("".into()), cache, "7.2", "debug"),
            in_cache
        );
        assert_eq!(
            tree_or_cache(Some("/nix/store/x-dev/build".into()), cache, "7.2", "debug"),
            Path::new("/nix/store/x-dev/build")
        );
    }

    #[test]
    fn the_lab_kernel_is_at_the_top_and_every_other_in_its_own_directory() {
        let l = Layout::new("/a");
        assert_eq!(l.kernel(LAB_KERNEL), Path::new("/a/bzImage"));
        assert_eq!(l.initramfs(LAB_KERNEL), Path::new("/a/initramfs.cpio"));
        assert_eq!(
            l.module(LAB_KERNEL, MODULE_FILE),
            Path::new("/a/rust_keyboard.ko")
        );
        assert_eq!(l.kernel("debug"), Path::new("/a/debug/bzImage"));
        assert_eq!(l.initramfs("debug"), Path::new("/a/debug/initramfs.cpio"));
        assert_eq!(l.acpi_table("no-irq.aml"), Path::new("/a/acpi/no-irq.aml"));
        assert_eq!(l.manifest(), Path::new("/a/manifest.json"));
        assert_eq!(
            kernel_tree(Path::new("/c"), "7.2.12-1", "debug"),
            Path::new("/c/build/kernel-7.2.12-1-debug/build")
        );
    }

    #[test]
    fn the_kernel_version_comes_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let a = Artifacts::from_dir(dir.path()).unwrap();
        assert!(a.kernel_version().is_err());
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"kernel_version": "7.2.12-1~bpo13+1", "kernels": {}}"#,
        )
        .unwrap();
        assert_eq!(a.kernel_version().unwrap(), "7.2.12-1~bpo13+1");
        std::fs::write(dir.path().join("manifest.json"), "{}").unwrap();
        assert!(a.kernel_version().is_err());
    }
}
