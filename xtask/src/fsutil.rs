//! File helpers shared by the steps: writing a file so that readers never
//! see half of it, and content hashes.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Writes `dest` through `fill`, which writes into a temporary file beside
/// it, then renames the file into place: a VM or test reading `dest` sees
/// the old file or the whole new one, never a part. The temporary file is
/// removed if `fill` fails.
pub fn write_atomically(
    dest: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    let tmp = partial_path(dest);
    let result = std::fs::File::create(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))
        .and_then(|mut file| {
            fill(&mut file)?;
            file.sync_all()
                .with_context(|| format!("cannot write {}", tmp.display()))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, dest)
                .with_context(|| format!("cannot install {}", dest.display()))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary name [`write_atomically`] writes `dest` under.
fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".partial.{}", std::process::id()));
    dest.with_file_name(name)
}

/// Writes `data` to `dest` atomically ([`write_atomically`]).
pub fn install_bytes(dest: &Path, data: &[u8]) -> Result<()> {
    write_atomically(dest, |f| {
        f.write_all(data)
            .with_context(|| format!("cannot write {}", dest.display()))
    })
}

/// Copies `src` to `dest` atomically ([`write_atomically`]).
pub fn install_file(src: &Path, dest: &Path) -> Result<()> {
    let data = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    install_bytes(dest, &data)
}

/// Writes `text` to `path` (atomically) unless it already holds exactly
/// that, so that its modification time changes only with its content.
pub fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        install_bytes(path, text.as_bytes())?;
    }
    Ok(())
}

/// The files named `*.<extension>` directly in each of `dirs` that exist,
/// sorted.
pub fn files_with_extension(dirs: &[PathBuf], extension: &str) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let p = e?.path();
            if p.extension().is_some_and(|e| e == extension) {
                files.push(p);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex SHA-256 of the concatenation of `parts`.
pub fn sha256_of<I, B>(parts: I) -> String
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

/// Lowercase hex of bytes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("abc");
        std::fs::write(&f, "abc").unwrap();
        let known = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_file(&f).unwrap(), known);
        assert_eq!(sha256_of(["a", "bc"]), known);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial_one() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.bin");
        install_bytes(&dest, b"old").unwrap();
        let err = write_atomically(&dest, |_| anyhow::bail!("disk full")).unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.bin"]);
    }
}
