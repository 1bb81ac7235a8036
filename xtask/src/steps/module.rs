//! The module steps: the out-of-tree driver built against a kernel build
//! tree, and the rust-analyzer project for it (the kernel's own
//! `make rust-analyzer`).

use super::kbuild::{KernelTools, existing};
use crate::exec;
use crate::fsutil::{files_below, install_file, sha256_of};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Name of the file in a module's output directory that records what its
/// `.ko` files were built from ([`inputs_key`]) and their names.
const STAMP: &str = ".lab-module-stamp";

/// [`build`], unless `out` holds the `.ko` files of a build of the same
/// sources against the same kernel build: `kernel_key` is the kernel
/// step's stamp (which changes with the kernel's source, patches, fragments
/// and tools). A build with nothing to do then runs no make (kbuild's own
/// no-op takes about half a second per directory). Without a key (no
/// stamp) it always builds.
pub fn build_unless_up_to_date(
    kdir: &Path,
    src: &Path,
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
    kernel_key: Option<&str>,
) -> Result<Vec<PathBuf>> {
    let stamp = out.join(STAMP);
    let key = kernel_key
        .map(|k| inputs_key(k, kdir, src, out))
        .transpose()?;
    if let Some(kos) = key.as_deref().and_then(|k| recorded(&stamp, k, out)) {
        eprintln!("  module: {}/ up to date", dir_name(src));
        return Ok(kos);
    }
    let _ = std::fs::remove_file(&stamp);
    let built = build(kdir, src, out, tools, log_dir)?;
    if let Some(key) = key {
        let mut text = key;
        for ko in &built {
            text.push('\n');
            text.push_str(&ko.file_name().unwrap_or_default().to_string_lossy());
        }
        std::fs::write(&stamp, text)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    Ok(built)
}

/// The `.ko` files the stamp at `stamp` lists, if it was written for `key`
/// and they are all in `out`.
fn recorded(stamp: &Path, key: &str, out: &Path) -> Option<Vec<PathBuf>> {
    let text = std::fs::read_to_string(stamp).ok()?;
    let mut lines = text.lines();
    if lines.next()? != key {
        return None;
    }
    let kos: Vec<PathBuf> = lines.map(|name| out.join(name)).collect();
    (!kos.is_empty() && kos.iter().all(|k| k.is_file())).then_some(kos)
}

/// What a module build is made from: the kernel step's key, the paths of
/// the kernel build and the output, and the name and content of every file
/// of the source directory ([`module_files`]). Not the source directory's
/// path: the build compiles a copy of it ([`TREE`]), so a second checkout
/// of the same sources finds its modules built.
pub fn inputs_key(kernel_key: &str, kdir: &Path, src: &Path, out: &Path) -> Result<String> {
    let mut parts = vec![
        kernel_key.as_bytes().to_vec(),
        format!("\0{}\0{}\0", kdir.display(), out.display()).into_bytes(),
    ];
    for file in module_files(src)? {
        let rel = file.strip_prefix(src).unwrap_or(&file);
        let data =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        parts.push(format!("{}\0{}\0", rel.display(), data.len()).into_bytes());
        parts.push(data);
    }
    Ok(sha256_of(parts))
}

/// Builds the out-of-tree module in `src` against the kernel build tree
/// `kdir` with output in `out` (the source tree is left untouched) and
/// returns the `.ko` files built.
pub fn build(
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
    let tree = out.join(TREE);
    stage(&src, &tree)?;
    let objdir = tree.join(OBJ);
    std::fs::create_dir_all(&objdir)?;
    let mut c = make_modules(&kdir, &tree, &objdir, tools);
    // One log per module directory: `module-build-<its name>.log`.
    let name = dir_name(&src);
    exec::run_logged(
        &mut c,
        &format!("module: build {name}/"),
        &log_dir.join(format!("module-build-{name}.log")),
    )?;
    let mut built = Vec::new();
    for entry in std::fs::read_dir(&objdir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "ko") {
            let dest = out.join(p.file_name().unwrap_or_default());
            install_file(&p, &dest)?;
            built.push(dest);
        }
    }
    if built.is_empty() {
        bail!("the module build in {} produced no .ko", objdir.display());
    }
    Ok(built)
}

/// The directory of a module's output directory that [`build`] compiles
/// from: a copy of the module directory ([`stage`]).
///
/// kbuild hands each source to the compiler as `$(srcroot)/<file>`, and
/// `srcroot` is the module directory's absolute path unless kbuild's output
/// directory is that directory or a direct subdirectory of it (the kernel's
/// Makefile, "Building in a subdirectory of the source": `srcroot := ..`).
/// Clang's KASAN names every object's globals after that input path
/// (`module_name` of `struct kasan_global`, in `.rodata`, so also in the
/// stripped modules the initramfs packs), and none of clang's prefix maps
/// (`-ffile-prefix-map`, `-fdebug-prefix-map`, `-fmacro-prefix-map`)
/// changes it: with the checkout's path there, the debug kernel's modules,
/// its initramfs and every machine saved from it differed between two
/// checkouts of the same commit. Built from this copy with the output in
/// [`OBJ`] below it, the objects say `../<file>`, wherever the checkout is.
const TREE: &str = "tree";

/// kbuild's output directory, below [`TREE`]: hidden, so that [`stage`]
/// never lists it (it lists no hidden files) and no module file can have
/// its name.
const OBJ: &str = ".kbuild";

/// Makes `tree` a copy of the module directory `src`: the files
/// [`inputs_key`] covers, each written only if its content differs (so make
/// sees a file's time change only with its content), and the files `src`
/// no longer has removed. Hidden entries, among them kbuild's [`OBJ`]
/// directory, are left alone.
fn stage(src: &Path, tree: &Path) -> Result<()> {
    let sources = module_files(src)?;
    let mut wanted = std::collections::BTreeSet::new();
    for file in &sources {
        let rel = file.strip_prefix(src).unwrap_or(file);
        install_file(file, &tree.join(rel))?;
        wanted.insert(rel.to_path_buf());
    }
    for old in files_below(tree, &|_| true)? {
        if !old.strip_prefix(tree).is_ok_and(|rel| wanted.contains(rel)) {
            std::fs::remove_file(&old)
                .with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
    Ok(())
}

/// The files of the module directory `src` a build reads: every file but
/// hidden ones and an editor's rust-project.json. More files than kbuild
/// reads is the safe side: an extra rebuild, never a missed one.
fn module_files(src: &Path) -> Result<Vec<PathBuf>> {
    files_below(src, &|p| {
        p.file_name().is_none_or(|n| n != "rust-project.json")
    })
}

/// kbuild's `make M=<src> MO=<objdir> modules` for the module directory
/// `src` against the kernel tree `kdir` (the objects go to `objdir`, the
/// source directory stays clean).
pub fn make_modules(kdir: &Path, src: &Path, objdir: &Path, tools: &KernelTools) -> Command {
    let mut c = tools.make(kdir, &[src]);
    c.arg(format!("M={}", src.display()))
        .arg(format!("MO={}", objdir.display()))
        .arg(format!("-j{}", tools.jobs.max(1)))
        .arg("modules");
    c
}

/// The last component of a module directory, for messages and log names.
pub fn dir_name(src: &Path) -> String {
    src.file_name()
        .map_or_else(|| "module".into(), |n| n.to_string_lossy().into_owned())
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
    let mut c = tools.make(&kdir, &[&src]);
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
    if !generated.is_file() {
        bail!("make rust-analyzer left no {}", generated.display());
    }
    install_file(&generated, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn the_inputs_key_follows_content_and_kernel_not_times_or_editor_files() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("module");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        for (f, text) in [
            ("Kbuild", "obj-m := m.o\n"),
            ("m.rs", "fn a() {}\n"),
            ("sub/x.h", ""),
        ] {
            std::fs::write(src.join(f), text).unwrap();
        }
        let (kdir, out) = (Path::new("/k"), Path::new("/o"));
        let key = |kernel: &str| inputs_key(kernel, kdir, &src, out).unwrap();
        let first = key("kernel-a");
        // A touch, an editor's swap file and rust-project.json change nothing.
        std::fs::File::options()
            .write(true)
            .open(src.join("m.rs"))
            .unwrap()
            .set_modified(SystemTime::now() + Duration::from_secs(60))
            .unwrap();
        std::fs::write(src.join(".m.rs.swp"), "x").unwrap();
        std::fs::write(src.join("rust-project.json"), "{}").unwrap();
        assert_eq!(key("kernel-a"), first);
        // Another kernel build, an edit or a new file does.
        assert_ne!(key("kernel-b"), first);
        std::fs::write(src.join("m.rs"), "fn b() {}\n").unwrap();
        let edited = key("kernel-a");
        assert_ne!(edited, first);
        std::fs::write(src.join("sub/y.c"), "").unwrap();
        assert_ne!(key("kernel-a"), edited);
    }

    #[test]
    fn the_staged_tree_follows_the_sources_and_keeps_unchanged_files_and_kbuild_output() {
        let dir = tempfile::tempdir().unwrap();
        let (src, tree) = (dir.path().join("module"), dir.path().join("tree"));
        std::fs::create_dir_all(src.join("sub")).unwrap();
        for (f, text) in [
            ("Kbuild", "obj-m := m.o\n"),
            ("m.c", "int a;\n"),
            ("sub/x.h", ""),
        ] {
            std::fs::write(src.join(f), text).unwrap();
        }
        std::fs::write(src.join(".m.c.swp"), "x").unwrap();
        std::fs::write(src.join("rust-project.json"), "{}").unwrap();
        stage(&src, &tree).unwrap();
        let listed = |d: &Path| -> Vec<PathBuf> {
            files_below(d, &|_| true)
                .unwrap()
                .iter()
                .map(|f| f.strip_prefix(d).unwrap().to_path_buf())
                .collect()
        };
        assert_eq!(
            listed(&tree),
            ["Kbuild", "m.c", "sub/x.h"].map(PathBuf::from),
            "no hidden file, no rust-project.json"
        );
        // kbuild's output below the tree, an old file's time.
        std::fs::create_dir_all(tree.join(OBJ)).unwrap();
        std::fs::write(tree.join(OBJ).join("m.o"), "o").unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        for f in ["Kbuild", "m.c"] {
            std::fs::File::options()
                .write(true)
                .open(tree.join(f))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let mtime = |f: &str| std::fs::metadata(tree.join(f)).unwrap().modified().unwrap();
        // An edit, a removed file and a new one.
        std::fs::write(src.join("m.c"), "int b;\n").unwrap();
        std::fs::remove_file(src.join("sub/x.h")).unwrap();
        std::fs::write(src.join("n.c"), "").unwrap();
        stage(&src, &tree).unwrap();
        assert_eq!(listed(&tree), ["Kbuild", "m.c", "n.c"].map(PathBuf::from));
        assert_eq!(
            std::fs::read_to_string(tree.join("m.c")).unwrap(),
            "int b;\n"
        );
        assert_eq!(mtime("Kbuild"), old, "an unchanged file is not rewritten");
        assert_ne!(mtime("m.c"), old, "an edited file is newer for make");
        assert_eq!(
            std::fs::read_to_string(tree.join(OBJ).join("m.o")).unwrap(),
            "o"
        );
    }

    #[test]
    fn a_stamp_counts_only_for_its_key_and_with_every_module_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let stamp = out.join(STAMP);
        std::fs::write(&stamp, "k1\na.ko\nb.ko").unwrap();
        std::fs::write(out.join("a.ko"), "").unwrap();
        assert_eq!(recorded(&stamp, "k1", out), None, "b.ko is missing");
        std::fs::write(out.join("b.ko"), "").unwrap();
        assert_eq!(
            recorded(&stamp, "k1", out),
            Some(vec![out.join("a.ko"), out.join("b.ko")])
        );
        assert_eq!(recorded(&stamp, "k2", out), None);
        std::fs::write(&stamp, "k1").unwrap();
        assert_eq!(recorded(&stamp, "k1", out), None, "a stamp without modules");
    }
}
