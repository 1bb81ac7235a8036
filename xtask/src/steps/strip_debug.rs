//! The debug information out of the kernel modules the initramfs packs:
//! `llvm-objcopy --strip-debug`, what the kernel's own `INSTALL_MOD_STRIP=1`
//! runs (its `$(STRIP) --strip-debug`, llvm-strip under `LLVM=`).
//!
//! The guest never reads a module's DWARF: the kernel loads the allocated
//! sections and the symbol table (which KASAN's and lockdep's reports name
//! functions from, and which stays), and gdb reads the full `.ko` of the
//! artifact directory on the host (`cargo xtask gdb`). Without it the debug
//! kernel's archive shrinks from 6.3 MB to 2.9 MB (its ten modules from 4.3
//! MB to 0.9 MB) and its bare boot to `LAB-INIT-READY` on TCG from 4.89 s to
//! 4.53 s (medians of 4 interleaved rounds, 2026-12-03). The lab kernel's
//! modules have no debug sections and are packed as they are.
//!
//! Stripping alone does not make a debug module the same from every
//! checkout: KASAN's descriptors of global variables in `.rodata` name the
//! source file as kbuild passed it, which the module step makes relative
//! (`super::module`, its `TREE`).

use crate::exec::{self, cmd};
use anyhow::{Context, Result};
use object::{Object, ObjectSection};
use std::path::Path;

/// Whether a section named `name` is debug information, as llvm-objcopy's
/// `--strip-debug` counts it: DWARF (`.debug_*`, compressed `.zdebug_*`)
/// and gdb's index.
fn is_debug(name: &str) -> bool {
    name.starts_with(".debug") || name.starts_with(".zdebug") || name == ".gdb_index"
}

/// Whether the ELF object `data` has a debug section.
fn has_debug_sections(data: &[u8]) -> Result<bool> {
    let file = object::File::parse(data).context("not an ELF object")?;
    Ok(file.sections().any(|s| s.name().is_ok_and(is_debug)))
}

/// The bytes of the module `data` (read from `module`) without its debug
/// sections: `objcopy --strip-debug`'s output when it has any, `None` when
/// it has none (a module built without debug information is packed as it
/// is, with no tool run).
pub fn stripped(module: &Path, data: &[u8], objcopy: &Path) -> Result<Option<Vec<u8>>> {
    if !has_debug_sections(data).with_context(|| format!("{}", module.display()))? {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("rust-kbd-lab-strip-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let out = dir.path().join("module.ko");
    exec::output(cmd(objcopy, ["--strip-debug"]).arg(module).arg(&out))?;
    let bytes = std::fs::read(&out).with_context(|| format!("cannot read {}", out.display()))?;
    // What objcopy wrote is checked, not trusted: no debug section is left.
    anyhow::ensure!(
        !has_debug_sections(&bytes)?,
        "{} --strip-debug left debug sections in {}",
        objcopy.display(),
        module.display()
    );
    Ok(Some(bytes))
}

/// A relocatable ELF object compiled by the host's C compiler (`cc`, which
/// the host path and Nix's stdenv both have) from `source`, with DWARF when
/// `debug`: what the tests of this step and of the initramfs pack.
#[cfg(test)]
pub(crate) fn c_object(dir: &Path, name: &str, source: &str, debug: bool) -> std::path::PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let obj = dir.join(format!("{name}.ko"));
    let status = std::process::Command::new("cc")
        .args(if debug { ["-g", "-c"] } else { ["-g0", "-c"] })
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc {}", src.display());
    obj
}

/// A shell script named `objcopy` in `dir` standing in for objcopy (its
/// arguments: `--strip-debug IN OUT`).
#[cfg(test)]
pub(crate) fn fake_objcopy(dir: &Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("objcopy");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pins::Pins;
    use object::ObjectSymbol;

    const SOURCE: &str = "extern int ext(int);\nint counter = 3;\n\
                          int f(int x) { return ext(x + counter); }\n";

    /// The kernel build's own llvm-objcopy: `llvm-objcopy` on PATH (Nix),
    /// or the one with pins.toml's LLVM suffix (the host path's
    /// `llvm-objcopy-19`, which provisioning installs).
    fn real_objcopy() -> std::path::PathBuf {
        let pins = Pins::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../pins.toml")).unwrap();
        let suffixed = format!("llvm-objcopy{}", pins.host.llvm_suffix);
        exec::which("llvm-objcopy")
            .or_else(|| exec::which(&suffixed))
            .unwrap_or_else(|| {
                panic!(
                    "neither llvm-objcopy nor {suffixed} is on PATH: run `cargo xtask provision`"
                )
            })
    }

    /// Section name -> bytes of the sections the kernel loads.
    fn loaded_sections(data: &[u8]) -> Vec<(String, Vec<u8>)> {
        let file = object::File::parse(data).unwrap();
        file.sections()
            .filter(|s| {
                s.address() == 0
                    && matches!(
                        s.kind(),
                        object::SectionKind::Text
                            | object::SectionKind::Data
                            | object::SectionKind::ReadOnlyData
                    )
            })
            .map(|s| (s.name().unwrap().to_owned(), s.data().unwrap().to_vec()))
            .collect()
    }

    /// The named symbols but source file names (`STT_FILE`, which
    /// `--strip-debug` counts as debug information), sorted.
    fn symbol_names(data: &[u8]) -> Vec<String> {
        let file = object::File::parse(data).unwrap();
        let mut names: Vec<String> = file
            .symbols()
            .filter(|s| s.kind() != object::SymbolKind::File)
            .filter_map(|s| s.name().ok().filter(|n| !n.is_empty()).map(str::to_owned))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn llvm_objcopy_takes_the_dwarf_and_leaves_code_data_and_symbols() {
        let dir = tempfile::tempdir().unwrap();
        let ko = c_object(dir.path(), "m", SOURCE, true);
        let input = std::fs::read(&ko).unwrap();
        assert!(has_debug_sections(&input).unwrap());
        let out = stripped(&ko, &input, &real_objcopy())
            .unwrap()
            .expect("it has DWARF");
        assert!(!has_debug_sections(&out).unwrap());
        assert!(out.len() < input.len());
        let sections = loaded_sections(&out);
        assert!(sections.iter().any(|(n, _)| n == ".text"), "{sections:?}");
        assert_eq!(sections, loaded_sections(&input));
        assert_eq!(symbol_names(&out), symbol_names(&input));
        assert!(symbol_names(&out).contains(&"ext".to_owned()));
    }

    #[test]
    fn a_module_without_debug_information_runs_no_tool() {
        let dir = tempfile::tempdir().unwrap();
        let ko = c_object(dir.path(), "m", SOURCE, false);
        let input = std::fs::read(&ko).unwrap();
        let missing = dir.path().join("no-such-objcopy");
        assert_eq!(stripped(&ko, &input, &missing).unwrap(), None);
    }

    #[test]
    fn an_objcopy_that_fails_or_leaves_dwarf_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ko = c_object(dir.path(), "m", SOURCE, true);
        let input = std::fs::read(&ko).unwrap();
        let failing = fake_objcopy(dir.path(), "echo 'bad option' >&2; exit 3");
        let err = stripped(&ko, &input, &failing).unwrap_err();
        assert!(format!("{err:#}").contains("bad option"), "{err:#}");
        let copying = fake_objcopy(dir.path(), "cp \"$2\" \"$3\"");
        let err = stripped(&ko, &input, &copying).unwrap_err();
        assert!(
            format!("{err:#}").contains("left debug sections"),
            "{err:#}"
        );
    }

    #[test]
    fn debug_sections_are_what_strip_debug_removes() {
        for name in [
            ".debug_info",
            ".debug_line_str",
            ".zdebug_str",
            ".gdb_index",
        ] {
            assert!(is_debug(name), "{name}");
        }
        for name in [
            ".text",
            ".rela.debug_info",
            ".modinfo",
            ".symtab",
            ".BTF",
            "",
        ] {
            assert!(!is_debug(name), "{name}");
        }
    }

    #[test]
    fn what_is_not_elf_is_an_error() {
        let err = has_debug_sections(b"not an ELF file").unwrap_err();
        assert!(format!("{err:#}").contains("not an ELF object"), "{err:#}");
    }
}
