//! The kernel step: apply the lab's patch series (onto a copy of the source,
//! see [`super::patches`]), configure (tinyconfig, taken from the cache when
//! the same source, patches and tools made one before, + fragments +
//! olddefconfig), check that Kconfig kept every option of the fragments,
//! build `bzImage` and `modules` (Module.symvers for out-of-tree modules).

use super::kbuild::{KernelTools, existing};
use super::kconfig;
use super::patches;
use crate::exec::{self, cmd};
use crate::fsutil::{install_file, sha256_of};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a kernel build puts things.
#[derive(Debug, Clone)]
pub struct KernelOutput {
    /// The kernel image.
    pub bz_image: PathBuf,
    /// The `O=` tree: `KDIR` for out-of-tree modules.
    pub build_dir: PathBuf,
}

/// Name of the stamp file (beside the image) that records what a finished
/// build was made from.
const STAMP: &str = ".lab-kernel-stamp";

/// Name of the lock file (beside the image) held while the kernel is
/// configured and built.
const LOCK: &str = ".lab-kernel-lock";

/// Name of the file (beside the image) that records how many objects the
/// last full build of this kernel counted: the progress bar's total.
const UNITS: &str = ".lab-kernel-objects";

/// Whether a line of kbuild's quiet output reports one object built:
/// two spaces, the command in capitals (`CC`, `RUSTC`, `AS`, `LD`,
/// `HOSTCC`, `BINDGEN`, ...), an optional marker (`[M]`, `L`, `P`), then the
/// target, e.g. `  CC      init/main.o`, `  RUSTC L rust/core.o`.
fn kbuild_unit(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("  ") else {
        return false;
    };
    let mut words = rest.split_whitespace();
    let command = words.next().unwrap_or("");
    let is_command = (2..=10).contains(&command.len())
        && command
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && command.as_bytes()[0].is_ascii_uppercase();
    is_command && words.next().is_some()
}

/// Where a kernel build keeps what is not the kernel: its logs, and the
/// configurations it can reuse.
#[derive(Debug, Clone, Copy)]
pub struct Scratch<'a> {
    /// Build logs (`kernel-<phase>.log`).
    pub logs: &'a Path,
    /// Earlier `tinyconfig` results, one file per source, patch series and
    /// toolchain ([`tinyconfig`]); `None` makes it every time (the Nix
    /// sandbox, which has no cache).
    pub tinyconfigs: Option<&'a Path>,
}

/// Configures and builds the kernel at `src` with `patches` applied: the
/// `O=` tree is `build_dir` (the kernel builds in place there, so its own
/// Makefile's paths stay valid), the patched source is `source` beside it
/// (`<build_dir>/../source`: kept, since the `O=` tree refers to it), the
/// image is copied to `out/bzImage`. Skips everything when both already
/// hold a build of the same source, patches, fragments and tools.
pub fn build(
    src: &Path,
    patches: &[PathBuf],
    fragments: &[PathBuf],
    out: &Path,
    build_dir: &Path,
    tools: &KernelTools,
    scratch: Scratch<'_>,
) -> Result<KernelOutput> {
    let pristine = existing(src, "kernel source")?;
    if !pristine.join("Kconfig").is_file() {
        bail!(
            "{} is not a kernel source tree (no Kconfig)",
            pristine.display()
        );
    }
    // merge_config.sh runs in the build directory and patch in the copy of
    // the source: make the paths absolute.
    let fragments: Vec<PathBuf> = fragments
        .iter()
        .map(|f| existing(f, "config fragment"))
        .collect::<Result<_>>()?;
    let patches: Vec<PathBuf> = patches
        .iter()
        .map(|p| existing(p, "kernel patch"))
        .collect::<Result<_>>()?;
    let patches = patches.as_slice();
    let mut fragment_text = String::new();
    for f in &fragments {
        fragment_text.push_str(
            &std::fs::read_to_string(f)
                .with_context(|| format!("cannot read config fragment {}", f.display()))?,
        );
        fragment_text.push('\n');
    }
    std::fs::create_dir_all(out)?;
    std::fs::create_dir_all(build_dir)?;
    let out = out.canonicalize()?;
    let build_dir = build_dir.canonicalize()?;
    // One build of a kernel tree at a time: a second `xtask` (another
    // terminal, a watch loop, a cache shared by worktrees) waits here, then
    // finds the stamp of the first one's build. Two builds in one O= tree
    // rewrite each other's .config mid-build (tinyconfig is 32-bit).
    let _lock = lock_tree(&out)?;
    let src = patches::apply(&pristine, patches, &patched_source(&build_dir))?;
    let bz_image = out.join("bzImage");
    let output = KernelOutput {
        bz_image: bz_image.clone(),
        build_dir: build_dir.clone(),
    };
    // The patched tree's path is the same for every series: the series
    // itself is part of the key (and nothing is added without patches, so
    // an unpatched build keeps its key).
    let tools_identity = tools.identity();
    let series = if patches.is_empty() {
        None
    } else {
        Some(patches::identity(&pristine, patches)?)
    };
    let mut identity = vec![
        src.display().to_string(),
        fragment_text.clone(),
        tools_identity.clone(),
    ];
    identity.extend(series.clone());
    let key = sha256_of(identity);
    let stamp = out.join(STAMP);
    if bz_image.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&key) {
        eprintln!("  kernel: up to date ({})", out.display());
        return Ok(output);
    }
    tools.check()?;
    let _ = std::fs::remove_file(&stamp);

    let make = |args: &[&str]| {
        let mut c = tools.make(&src, &[]);
        c.arg(format!("O={}", build_dir.display())).args(args);
        c
    };
    let log = |name: &str| scratch.logs.join(format!("kernel-{name}.log"));

    // Configuration: tinyconfig + fragments, then olddefconfig.
    let mut tiny_identity = vec![
        "tinyconfig".to_string(),
        pristine.display().to_string(),
        tools_identity,
    ];
    tiny_identity.extend(series);
    tinyconfig(
        &build_dir,
        scratch
            .tinyconfigs
            .map(|dir| dir.join(format!("{}.config", sha256_of(tiny_identity)))),
        &mut make(&["tinyconfig"]),
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
    let mut targets = vec![jobs.as_str(), "bzImage", "modules"];
    // `all` would link the kernel's gdb scripts (vmlinux-gdb.py) into the
    // O= tree; `bzImage modules` does not, so ask for them (the debug
    // kernel's gdb support, kernel/debug.config).
    if fragment_text
        .lines()
        .any(|l| l.trim() == "CONFIG_GDB_SCRIPTS=y")
    {
        targets.push("scripts_gdb");
    }
    let units_file = out.join(UNITS);
    let units = exec::Units {
        is_unit: kbuild_unit,
        expected: std::fs::read_to_string(&units_file)
            .ok()
            .and_then(|t| t.trim().parse().ok()),
        name: "objects",
    };
    let (_, counted) = exec::run_counted(
        &mut make(&targets),
        "kernel: build (one kernel took 4 to 9 min from clean on the project's 2-core machines)",
        &log("build"),
        &units,
    )?;
    let image = build_dir.join("arch/x86/boot/bzImage");
    if !image.is_file() {
        bail!("the kernel build did not produce {}", image.display());
    }
    // A partial rebuild counts fewer objects: keep the larger (full) count.
    if units.expected.is_none_or(|n| counted > n) {
        std::fs::write(&units_file, counted.to_string())?;
    }
    install_file(&image, &bz_image)?;
    std::fs::write(&stamp, key)?;
    Ok(output)
}

/// Writes tinyconfig's `.config` into `build_dir`: a copy of `cached` if
/// that file exists, else by running `make` (`make tinyconfig`) and then
/// keeping its result as `cached`. tinyconfig depends only on the source,
/// the patch series and the toolchain (its two Kconfig passes run a hundred
/// compiler and rustc probes each), which `cached`'s name must encode; the
/// fragments and olddefconfig still run on every configuration.
fn tinyconfig(
    build_dir: &Path,
    cached: Option<PathBuf>,
    make: &mut Command,
    log: &Path,
) -> Result<()> {
    let config = build_dir.join(".config");
    if let Some(cached) = cached.as_deref().filter(|c| c.is_file()) {
        install_file(cached, &config)?;
        eprintln!("  kernel: tinyconfig: reused {}", cached.display());
        return Ok(());
    }
    exec::run_logged(make, "kernel: tinyconfig", log)?;
    if let Some(cached) = cached {
        install_file(&config, &cached)
            .with_context(|| format!("cannot keep tinyconfig's result as {}", cached.display()))?;
    }
    Ok(())
}

/// Records `objects` as the object count of the kernel in the output
/// directory `out` unless a build there counted them already: the progress
/// bar's total for a first build.
pub fn seed_object_count(out: &Path, objects: u64) -> Result<()> {
    let file = out.join(UNITS);
    if !file.exists() {
        std::fs::create_dir_all(out)?;
        std::fs::write(&file, objects.to_string())
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}

/// The key of the build that the kernel output directory `out` holds (what
/// it was made from), if it holds a finished one.
pub fn stamp_key(out: &Path) -> Option<String> {
    std::fs::read_to_string(out.join(STAMP)).ok()
}

/// Takes the lock file of the kernel output directory `out`, waiting (with a
/// message) while another build holds it. The lock is released when the
/// returned file is dropped, or when the process dies.
pub(crate) fn lock_tree(out: &Path) -> Result<std::fs::File> {
    let path = out.join(LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "  kernel: another build of this kernel is running (lock {}), waiting for it",
                path.display()
            );
            file.lock()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    Ok(file)
}

/// Where the patched source of the `O=` tree `build_dir` lives: `source`
/// beside it.
pub fn patched_source(build_dir: &Path) -> PathBuf {
    build_dir.with_file_name("source")
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
        let why = exec::captured(rustavailable).map_or_else(|e| e.to_string(), |o| o.text());
        msg.push_str(
            "\n\nCONFIG_RUST needs a working Rust toolchain; `make rustavailable` says:\n",
        );
        msg.push_str(why.trim());
    }
    bail!(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_a_tree_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_tree(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_owned();
        let waiter = std::thread::spawn(move || {
            let _second = lock_tree(&path).unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err()
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn tinyconfig_is_made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        let cached = dir.path().join("cache/key.config");
        let log = dir.path().join("config.log");
        let mut make = cmd("sh", ["-c", "echo CONFIG_MADE=y > .config"]);
        make.current_dir(&tree);
        tinyconfig(&tree, Some(cached.clone()), &mut make, &log).unwrap();
        assert_eq!(std::fs::read_to_string(&cached).unwrap(), "CONFIG_MADE=y\n");
        // A second configuration of another tree copies the kept result:
        // a `make` that would fail is not run.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let mut failing = cmd("false", [""; 0]);
        tinyconfig(&other, Some(cached), &mut failing, &log).unwrap();
        assert_eq!(
            std::fs::read_to_string(other.join(".config")).unwrap(),
            "CONFIG_MADE=y\n"
        );
        // Without a cache, make runs every time.
        assert!(tinyconfig(&other, None, &mut failing, &log).is_err());
    }

    #[test]
    fn kbuild_units_are_the_quiet_command_lines() {
        for line in [
            "  CC      init/main.o",
            "  RUSTC L rust/core.o",
            "  CC [M]  drivers/foo.o",
            "  HOSTCC  scripts/basic/fixdep",
            "  BINDGEN rust/bindings/bindings_generated.rs",
            "  LD      vmlinux.o",
        ] {
            assert!(kbuild_unit(line), "{line}");
        }
        for line in [
            "make[1]: Entering directory '/b'",
            "Kernel: arch/x86/boot/bzImage is ready  (#1)",
            "  GEN",
            "  cc1: warning: x",
            "init/main.c:12:3: warning: unused variable",
            "CC      init/main.o",
        ] {
            assert!(!kbuild_unit(line), "{line}");
        }
    }
}
