//! `cargo xtask repro`: does the same checkout give the same bytes twice?
//! A benchmark-style check, not a test (it builds every kernel twice): it
//! builds from clean in two fresh cache directories (their own unpacked
//! sources, build trees and artifacts; only the verified `.deb`s, the apt
//! state and the installed tools are shared with the main cache), then
//! compares the sha256 of every artifact that the two manifests record and
//! names the first difference.

use crate::cli::ReproArgs;
use crate::exec::{self, cmd};
use crate::host::Host;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use vm_tests::artifacts::Layout;

/// Builds twice and compares.
pub fn run(args: &ReproArgs) -> Result<()> {
    let host = Host::new()?;
    let root = host.cache.root.join("repro");
    let dirs = [root.join("a"), root.join("b")];
    let mut manifests = Vec::new();
    for dir in &dirs {
        prepare(&host.cache.root, dir)?;
        let mut build = cmd(
            std::env::current_exe().context("cannot find the xtask binary")?,
            ["build", "--jobs", &args.jobs.to_string()],
        );
        for k in &args.kernels {
            build.args(["--kernel", k]);
        }
        build.env(vm_tests::artifacts::CACHE_DIR_ENV, dir);
        eprintln!("repro: building from clean in {}", dir.display());
        let start = Instant::now();
        let status = exec::run_attached(&mut build)?;
        if !status.success() {
            bail!("the build in {} failed ({status})", dir.display());
        }
        eprintln!(
            "repro: build in {} took {:.0} s",
            dir.display(),
            start.elapsed().as_secs_f64()
        );
        manifests.push(sums(&Layout::new(dir.join("artifacts")).manifest())?);
    }
    let report = compare(&manifests[0], &manifests[1]);
    match report {
        Ok(n) => {
            println!(
                "repro: {n} artifacts, every one identical in {} and {}",
                dirs[0].display(),
                dirs[1].display()
            );
            if !args.keep {
                for dir in &dirs {
                    std::fs::remove_dir_all(dir)
                        .with_context(|| format!("cannot remove {}", dir.display()))?;
                }
            }
            Ok(())
        }
        Err(difference) => bail!(
            "repro: the two builds differ: {difference} (both kept: {} and {})",
            dirs[0].display(),
            dirs[1].display()
        ),
    }
}

/// A fresh cache directory `dir` that shares the downloads and tools of
/// the cache `main`.
fn prepare(main: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for shared in ["debs", "apt", "tools"] {
        let target = main.join(shared);
        std::fs::create_dir_all(&target)?;
        std::os::unix::fs::symlink(&target, dir.join(shared))
            .with_context(|| format!("cannot link {} into {}", target.display(), dir.display()))?;
    }
    Ok(())
}

/// The `sha256` table of a manifest: artifact path to hash.
fn sums(manifest: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)?;
    serde_json::from_value(value["sha256"].clone())
        .with_context(|| format!("{} has no sha256 table", manifest.display()))
}

/// The number of artifacts if `a` and `b` list the same files with the
/// same hashes, else the first difference in path order.
fn compare(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Result<usize, String> {
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for path in paths {
        match (a.get(path), b.get(path)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => return Err(format!("{path}: sha256 {x} and {y}")),
            (Some(_), None) => return Err(format!("{path} is only in the first build")),
            (None, _) => return Err(format!("{path} is only in the second build")),
        }
    }
    Ok(a.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_first_difference_is_named() {
        let a = table(&[("acpi/ssdt.aml", "1"), ("bzImage", "2"), ("x.ko", "3")]);
        assert_eq!(compare(&a, &a), Ok(3));
        let b = table(&[("acpi/ssdt.aml", "1"), ("bzImage", "9"), ("x.ko", "4")]);
        assert_eq!(compare(&a, &b), Err("bzImage: sha256 2 and 9".into()));
        let c = table(&[("acpi/ssdt.aml", "1"), ("bzImage", "2")]);
        assert_eq!(
            compare(&a, &c),
            Err("x.ko is only in the first build".into())
        );
        assert_eq!(
            compare(&c, &a),
            Err("x.ko is only in the second build".into())
        );
    }

    #[test]
    fn a_fresh_cache_shares_only_downloads_and_tools() {
        let main = tempfile::tempdir().unwrap();
        let dir = main.path().join("repro/a");
        std::fs::create_dir_all(dir.join("build")).unwrap();
        prepare(main.path(), &dir).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["apt", "debs", "tools"]);
        assert_eq!(
            std::fs::read_link(dir.join("debs")).unwrap(),
            main.path().join("debs")
        );
    }
}
