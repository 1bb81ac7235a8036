//! The kernel patch series the lab carries (`kernel/patches/*.patch`, in name
//! order): applied with `patch -p1` onto a copy of the pristine source, which
//! stays untouched (on the Nix path it is a read-only store path).
//!
//! The patched tree is kept and reused while the series and the pristine
//! source stay the same (a stamp inside it records both); any change gives a
//! fresh copy, so a patch removed from the series is really gone.

use crate::exec::{self, cmd};
use crate::fsutil::sha256_of;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The directory of the series in the checkout.
pub const PATCH_DIR: &str = "kernel/patches";

/// Name of the stamp file inside a patched tree.
const STAMP: &str = ".lab-patches-stamp";

/// The series of the checkout `repo`: every `kernel/patches/*.patch`, sorted
/// by name (the order they apply in). No directory means no patches.
pub fn series(repo: &Path) -> Result<Vec<PathBuf>> {
    crate::fsutil::files_with_extension(&[repo.join(PATCH_DIR)], "patch")
}

/// What identifies a series applied onto `pristine`: the pristine tree's
/// path and every patch's name and content.
pub fn identity(pristine: &Path, patches: &[PathBuf]) -> Result<String> {
    let mut parts = vec![pristine.display().to_string()];
    for p in patches {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("cannot read kernel patch {}", p.display()))?;
        parts.push(file_name(p));
        parts.push(text);
    }
    Ok(sha256_of(parts))
}

/// Returns the tree to build: `pristine` itself when there are no patches
/// (removing a stale patched copy at `patched`), else `patched`, a copy of
/// `pristine` with `patches` applied in order (reused if it already holds
/// exactly this series). A patch that does not apply fails the step with
/// the patch's file name and what `patch` said of each hunk.
pub fn apply(pristine: &Path, patches: &[PathBuf], patched: &Path) -> Result<PathBuf> {
    if patches.is_empty() {
        if patched.exists() {
            std::fs::remove_dir_all(patched)
                .with_context(|| format!("cannot remove {}", patched.display()))?;
        }
        return Ok(pristine.to_path_buf());
    }
    let key = identity(pristine, patches)?;
    let stamp = patched.join(STAMP);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(key.as_str()) {
        eprintln!(
            "  kernel: {} patch(es) already applied in {}",
            patches.len(),
            patched.display()
        );
        return Ok(patched.to_path_buf());
    }
    if patched.exists() {
        std::fs::remove_dir_all(patched)
            .with_context(|| format!("cannot remove {}", patched.display()))?;
    }
    if let Some(parent) = patched.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A plain recursive copy: the store's read-only modes are made writable
    // afterwards, since `patch` replaces files by renaming in their directory.
    let mut copy = cmd("cp", ["-R", "--preserve=timestamps"]);
    copy.arg(pristine).arg(patched);
    exec::output(&mut copy).context("cannot copy the kernel source for patching")?;
    let mut writable = cmd("chmod", ["-R", "u+w"]);
    writable.arg(patched);
    exec::output(&mut writable)?;
    for p in patches {
        let mut c = cmd(
            "patch",
            ["-p1", "--forward", "--batch", "--no-backup-if-mismatch"],
        );
        c.arg("--directory").arg(patched).arg("--input").arg(p);
        let out = exec::captured(&mut c)?;
        if !out.status.success() {
            bail!(
                "kernel patch {} does not apply to {}:\n{}",
                p.display(),
                pristine.display(),
                out.text().trim_end()
            );
        }
        eprintln!("  kernel: applied {}", file_name(p));
    }
    std::fs::write(&stamp, key)?;
    Ok(patched.to_path_buf())
}

/// The file name of `p`, for messages and the identity.
fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pristine tree with one file, `a.txt`.
    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a.txt"), "one\ntwo\nthree\n").unwrap();
        d
    }

    /// A patch changing `from` into `to` on line 2 of a.txt.
    fn patch(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(
            &p,
            format!("--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-{from}\n+{to}\n three\n"),
        )
        .unwrap();
        p
    }

    #[test]
    fn a_series_applies_onto_a_copy_and_is_reused_until_it_changes() {
        let d = tree();
        let pristine = d.path().join("src");
        let patched = d.path().join("out/source");
        let series = vec![
            patch(d.path(), "0001-x.patch", "two", "TWO"),
            patch(d.path(), "0002-y.patch", "TWO", "2"),
        ];
        let tree = apply(&pristine, &series, &patched).unwrap();
        assert_eq!(tree, patched);
        let read = |p: &Path| std::fs::read_to_string(p.join("a.txt")).unwrap();
        assert_eq!(read(&patched), "one\n2\nthree\n");
        assert_eq!(read(&pristine), "one\ntwo\nthree\n", "pristine untouched");
        // Same series: reused (a marker file survives).
        std::fs::write(patched.join("marker"), "").unwrap();
        apply(&pristine, &series, &patched).unwrap();
        assert!(patched.join("marker").exists());
        // One patch less: a fresh copy.
        apply(&pristine, &series[..1], &patched).unwrap();
        assert_eq!(read(&patched), "one\nTWO\nthree\n");
        assert!(!patched.join("marker").exists());
        // No patches: the pristine tree, and the copy is gone.
        assert_eq!(apply(&pristine, &[], &patched).unwrap(), pristine);
        assert!(!patched.exists());
    }

    #[test]
    fn a_patch_that_does_not_apply_names_its_file_and_hunk() {
        let d = tree();
        let bad = patch(d.path(), "0001-bad.patch", "zwei", "2");
        let err = apply(&d.path().join("src"), &[bad], &d.path().join("p")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("0001-bad.patch"), "{msg}");
        assert!(msg.contains("Hunk #1 FAILED"), "{msg}");
        assert!(!d.path().join("p").join(STAMP).exists());
    }

    #[test]
    fn the_identity_follows_names_and_contents() {
        let d = tree();
        let a = patch(d.path(), "0001-a.patch", "two", "2");
        let id = identity(Path::new("/src"), std::slice::from_ref(&a)).unwrap();
        assert_eq!(
            id,
            identity(Path::new("/src"), std::slice::from_ref(&a)).unwrap()
        );
        assert_ne!(
            id,
            identity(Path::new("/other"), std::slice::from_ref(&a)).unwrap()
        );
        patch(d.path(), "0001-a.patch", "two", "II");
        assert_ne!(id, identity(Path::new("/src"), &[a]).unwrap());
    }
}
