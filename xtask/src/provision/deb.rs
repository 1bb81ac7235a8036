//! Unpacking the pinned `.deb`s into the cache: each into a partial
//! directory that is renamed into place and stamped with the `.deb`'s
//! sha256, so an interrupted unpack is never taken for a finished one.

use crate::exec::{self, cmd};
use crate::paths::Cache;
use crate::pins::DebPin;
use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};

/// File name `apt-get download` gives a pin (`:` in epochs becomes `%3a`).
pub fn deb_name(pin: &DebPin) -> String {
    pin.filename
        .rsplit('/')
        .next()
        .unwrap_or(&pin.filename)
        .replace(':', "%3a")
}

/// The stamp file in an unpacked tree: holds the sha256 of its `.deb`.
const STAMP: &str = ".lab-unpacked";

/// Where the package `name` at `pin` is unpacked.
pub fn unpacked_dir(cache: &Cache, name: &str, pin: &DebPin) -> PathBuf {
    cache.sources().join(format!("{name}-{}", pin.version))
}

/// Whether `dir` holds a finished unpack of exactly `pin`'s `.deb`.
pub fn is_unpacked(dir: &Path, pin: &DebPin) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).ok().as_deref() == Some(pin.sha256.as_str())
}

/// The kernel tree (the directory with the top-level Makefile) in `dir`.
pub fn kernel_tree(dir: &Path) -> Result<PathBuf> {
    std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("Makefile").is_file() && p.join("Kconfig").is_file())
        .ok_or_else(|| anyhow!("no kernel tree in {}", dir.display()))
}

/// Unpacks `deb` into [`unpacked_dir`]: `fill` fills a fresh partial
/// directory (logging to `log`), which then replaces the destination and gets
/// the stamp, so an interrupted unpack is never taken for a finished one.
fn unpack(
    cache: &Cache,
    name: &str,
    pin: &DebPin,
    fill: impl FnOnce(&Path, &Path) -> Result<()>,
) -> Result<PathBuf> {
    let dest = unpacked_dir(cache, name, pin);
    let tmp = cache
        .sources()
        .join(format!(".{name}-{}.partial", pin.version));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    fill(&tmp, &cache.logs().join(format!("unpack-{name}.log")))?;
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&tmp, &dest)?;
    std::fs::write(dest.join(STAMP), &pin.sha256)?;
    Ok(dest)
}

/// `dpkg-deb -x` of `deb` into `dir`.
fn extract_deb(deb: &Path, dir: &Path, title: &str, log: &Path) -> Result<()> {
    exec::run_logged(
        &mut cmd("dpkg-deb", [Path::new("-x"), deb, dir]),
        title,
        log,
    )
    .map(|_| ())
}

/// Unpacks a `.deb` as it is (rust-src).
pub fn unpack_deb(cache: &Cache, name: &str, pin: &DebPin, deb: &Path) -> Result<PathBuf> {
    unpack(cache, name, pin, |tmp, log| {
        extract_deb(deb, tmp, &format!("unpack {name} {}", pin.version), log)
    })
}

/// Unpacks the kernel source tarball out of its `.deb` (the `.deb`'s other
/// files are not kept).
pub fn unpack_kernel(cache: &Cache, pin: &DebPin, deb: &Path, tarball: &str) -> Result<PathBuf> {
    unpack(cache, "linux", pin, |tmp, log| {
        let deb_dir = tmp.join("deb");
        extract_deb(
            deb,
            &deb_dir,
            &format!("unpack linux-source {}", pin.version),
            log,
        )?;
        let tar = deb_dir.join(tarball);
        if !tar.is_file() {
            bail!(
                "the kernel .deb {} has no {tarball}: fix `tarball` in pins.toml",
                deb.display()
            );
        }
        exec::run_logged(
            &mut cmd("tar", [Path::new("-xf"), &tar, Path::new("-C"), tmp]),
            &format!("extract {tarball}"),
            log,
        )?;
        std::fs::remove_dir_all(&deb_dir)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_names_follow_apt_download() {
        let pin = DebPin {
            version: "1:2.0-1".into(),
            filename: "pool/main/x/x/x_1:2.0-1_all.deb".into(),
            sha256: String::new(),
        };
        assert_eq!(deb_name(&pin), "x_1%3a2.0-1_all.deb");
    }
}
