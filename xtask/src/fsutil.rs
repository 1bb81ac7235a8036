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

/// Writes `data` to `dest` atomically ([`write_atomically`]), unless `dest`
/// already holds exactly these bytes: then it is left alone, so its inode
/// and modification time change only with its content (a saved machine's
/// name follows them, `vm_tests::snapshot`, and so does make).
pub fn install_bytes(dest: &Path, data: &[u8]) -> Result<()> {
    if same_content(dest, data) {
        return Ok(());
    }
    write_atomically(dest, |f| {
        f.write_all(data)
            .with_context(|| format!("cannot write {}", dest.display()))
    })
}

/// Whether the file `path` exists and holds exactly `data`.
fn same_content(path: &Path, data: &[u8]) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == data.len() as u64)
        && std::fs::read(path).is_ok_and(|d| d == data)
}

/// Copies `src` to `dest` as [`install_bytes`] writes.
pub fn install_file(src: &Path, dest: &Path) -> Result<()> {
    let data = std::fs::read(src).with_context(|| format!("cannot read {}", src.display()))?;
    install_bytes(dest, &data)
}

/// Writes `text` to `path` as [`install_bytes`] writes: only when it
/// changes.
pub fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    install_bytes(path, text.as_bytes())
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

/// The files below `dir` (recursively) that `keep` accepts, sorted;
/// hidden files and directories (an editor's lock and swap files, `.git`)
/// are never listed.
pub fn files_below(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if keep(&path) {
                files.push(path);
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
    fn installing_the_same_bytes_keeps_the_file_and_other_bytes_replace_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("kernel");
        install_bytes(&dest, b"image").unwrap();
        let inode = || std::fs::metadata(&dest).unwrap().ino();
        let first = inode();
        install_bytes(&dest, b"image").unwrap();
        assert_eq!(inode(), first, "the same bytes must not replace the file");
        install_bytes(&dest, b"imagf").unwrap();
        assert_ne!(inode(), first, "new bytes are written through a new file");
        assert_eq!(std::fs::read(&dest).unwrap(), b"imagf");
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
