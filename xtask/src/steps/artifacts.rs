//! The artifacts step: installs what the other steps built into the artifact
//! directory, through the one [`Layout`] the VM and the tests read, and
//! writes its manifest. The host path and the flake (`xtask artifacts`) both
//! write the directory with this code.

use crate::fsutil::{files_with_extension, install_bytes, install_file, sha256_file};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::path::{Path, PathBuf};
use vm_tests::artifacts::Layout;

/// What was built for one kernel of `kernel/kernels.toml`.
#[derive(Debug, Clone)]
pub struct KernelFiles {
    /// The kernel's name.
    pub name: String,
    /// Its `bzImage`.
    pub kernel: PathBuf,
    /// The initramfs holding the module built against it.
    pub initramfs: PathBuf,
    /// The module(s) built against it (`.ko`).
    pub modules: Vec<PathBuf>,
}

/// The toolchain a host build used (the flake's builds have none to record:
/// their inputs are store paths already named by the derivations).
#[derive(Debug, Clone, Serialize)]
pub struct ToolchainRecord {
    /// The unpacked kernel source.
    pub kernel_source: PathBuf,
    /// The lab kernel's `O=` tree.
    pub kernel_build: PathBuf,
    /// `RUST_LIB_SRC`.
    pub rust_lib_src: PathBuf,
    /// The bindgen binary.
    pub bindgen: PathBuf,
    /// The kernel's `LLVM=` value.
    pub llvm: String,
    /// The kernel step's earlier tinyconfig results (`--tinyconfig-cache`).
    pub tinyconfig_cache: PathBuf,
}

/// `manifest.json`.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    kernel_version: &'a str,
    /// Kernel name to the artifact paths of that kernel, relative to the
    /// artifact directory.
    kernels: std::collections::BTreeMap<&'a str, KernelEntry>,
    /// Every file installed (relative path) and its sha256: what two builds
    /// are compared by (`cargo xtask repro`).
    sha256: std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    toolchain: Option<&'a ToolchainRecord>,
}

/// One kernel's entry in the manifest.
#[derive(Debug, Serialize)]
struct KernelEntry {
    kernel: PathBuf,
    initramfs: PathBuf,
    modules: Vec<PathBuf>,
}

/// Installs `kernels` and the `.aml` tables of `acpi` into `layout` and
/// writes the manifest. Kernels not in `kernels` keep what an earlier build
/// installed; the ACPI tables are replaced as a whole.
pub fn assemble(
    layout: &Layout,
    acpi: &Path,
    kernels: &[KernelFiles],
    kernel_version: &str,
    toolchain: Option<&ToolchainRecord>,
) -> Result<()> {
    if kernels.is_empty() {
        bail!("no kernel to install");
    }
    let tables = aml_files(acpi)?;
    let acpi_dir = layout.acpi_dir();
    // Unchanged files stay as they are (install_file); only tables that
    // are no longer built go.
    for old in files_with_extension(std::slice::from_ref(&acpi_dir), "aml")? {
        if !tables.iter().any(|t| t.file_name() == old.file_name()) {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
    let mut sha256 = std::collections::BTreeMap::new();
    // Copies `src` to `dest` and records its sha256 under its relative path.
    let mut install = |src: &Path, dest: PathBuf| -> Result<PathBuf> {
        install_file(src, &dest)?;
        let rel = dest
            .strip_prefix(layout.root())
            .map_or_else(|_| dest.clone(), Path::to_path_buf);
        sha256.insert(rel.display().to_string(), sha256_file(&dest)?);
        Ok(rel)
    };
    for table in &tables {
        install(table, acpi_dir.join(file_name(table)?))?;
    }
    let mut entries = std::collections::BTreeMap::new();
    for k in kernels {
        let kernel = install(&k.kernel, layout.kernel(&k.name))?;
        let initramfs = install(&k.initramfs, layout.initramfs(&k.name))?;
        let mut modules = Vec::new();
        for m in &k.modules {
            modules.push(install(m, layout.module(&k.name, file_name(m)?))?);
        }
        entries.insert(
            k.name.as_str(),
            KernelEntry {
                kernel,
                initramfs,
                modules,
            },
        );
    }
    let manifest = Manifest {
        kernel_version,
        kernels: entries,
        sha256,
        toolchain,
    };
    install_bytes(
        &layout.manifest(),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )
}

/// The `.aml` files directly in `dir`, sorted; at least one.
fn aml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let tables = files_with_extension(&[dir.to_path_buf()], "aml")?;
    if tables.is_empty() {
        bail!("no .aml tables in {}", dir.display());
    }
    Ok(tables)
}

/// The file name of `path` as text.
fn file_name(path: &Path) -> Result<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} has no usable file name", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::sha256_of;
    use vm_tests::Artifacts;
    use vm_tests::artifacts::LAB_KERNEL;

    /// A file `name` in `dir` holding `name`.
    fn file(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, name).unwrap();
        p
    }

    #[test]
    fn what_is_written_is_what_the_test_harness_reads() {
        let built = tempfile::tempdir().unwrap();
        let b = built.path();
        file(b, "acpi/ssdt.aml");
        file(b, "acpi/no-irq.aml");
        file(b, "acpi/ssdt.lst");
        let kernels: Vec<KernelFiles> = [LAB_KERNEL, "debug"]
            .iter()
            .map(|name| KernelFiles {
                name: (*name).to_owned(),
                kernel: file(b, &format!("{name}/bzImage")),
                initramfs: file(b, &format!("{name}/initramfs.cpio")),
                modules: vec![file(b, &format!("{name}/rust_keyboard.ko"))],
            })
            .collect();
        let out = tempfile::tempdir().unwrap();
        let layout = Layout::new(out.path());
        assemble(&layout, &b.join("acpi"), &kernels, "7.2.12-1", None).unwrap();

        let a = Artifacts::from_dir(out.path()).unwrap();
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(a.kernel().unwrap()), "lab/bzImage");
        assert_eq!(read(a.module().unwrap()), "lab/rust_keyboard.ko");
        assert_eq!(read(a.initramfs().unwrap()), "lab/initramfs.cpio");
        assert_eq!(read(a.ssdt().unwrap()), "acpi/ssdt.aml");
        assert_eq!(read(a.acpi_table("no-irq").unwrap()), "acpi/no-irq.aml");
        assert_eq!(read(a.kernel_of("debug").unwrap()), "debug/bzImage");
        assert_eq!(
            read(a.initramfs_of("debug").unwrap()),
            "debug/initramfs.cpio"
        );
        assert!(!layout.acpi_dir().join("ssdt.lst").exists());
        let manifest: serde_json::Value = serde_json::from_str(&read(layout.manifest())).unwrap();
        assert_eq!(manifest["kernel_version"], "7.2.12-1");
        assert_eq!(manifest["kernels"]["debug"]["kernel"], "debug/bzImage");
        assert_eq!(manifest["kernels"]["lab"]["modules"][0], "rust_keyboard.ko");
        let sums = manifest["sha256"].as_object().unwrap();
        assert_eq!(sums.len(), 8, "{sums:?}");
        assert_eq!(sums["debug/bzImage"], sha256_of(["debug/bzImage"]));
        assert_eq!(sums["acpi/no-irq.aml"], sha256_of(["acpi/no-irq.aml"]));
    }

    #[test]
    fn missing_tables_or_kernels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().join("out"));
        let err = assemble(&layout, dir.path(), &[], "v", None).unwrap_err();
        assert!(err.to_string().contains("no kernel"), "{err}");
        let k = KernelFiles {
            name: LAB_KERNEL.into(),
            kernel: file(dir.path(), "bzImage"),
            initramfs: file(dir.path(), "i"),
            modules: vec![],
        };
        let err = assemble(&layout, dir.path(), &[k], "v", None).unwrap_err();
        assert!(err.to_string().contains("no .aml tables"), "{err}");
    }
}
