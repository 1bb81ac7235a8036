//! Saved machines: a VM whose config asks for it
//! ([`VmConfig::with_snapshot`]) boots once and is saved the moment it is
//! ready (QMP `stop`, `migrate` to a file, `cont`), and every later start of
//! the same configuration restores that file (`-incoming`) instead of
//! booting: about 0.15 s instead of 1.5 s on the lab kernel and 15 s on the
//! debug kernel under TCG.
//!
//! Isolation is that of a fresh boot: every test still gets its own QEMU
//! process, with its own memory and devices, restored from the same
//! read-only file. Only the first boot's console shows the boot: a restored
//! machine's console log starts at the restore (the kernel log, `dmesg`,
//! still holds the boot, and the boot was checked for kernel problems when
//! it was saved). So tests that read the boot's console lines, or expect a
//! kernel report from boot on, do not ask for a snapshot.
//!
//! The file's name is a hash of everything the guest's state depends on:
//! QEMU's arguments (with the per-run paths of sockets and logs fixed), and
//! the path, size, inode and modification time of the kernel, the
//! initramfs, the SSDT and the QEMU binary. A rebuilt artifact therefore
//! gets a new snapshot; the hash is Rust's `DefaultHasher`, stable within
//! one build of the harness, so a new toolchain only misses the cache.
//! Files are written under a temporary name and renamed into place, so
//! concurrent tests never read half a snapshot; snapshots unused for two
//! days are removed when a new one is saved.

use std::ffi::OsString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::artifacts;
use crate::qemu::{self, ConsoleMode, VmConfig};
use crate::{Error, Result};

/// Changes the names of all snapshots when what they hold changes meaning.
const FORMAT: u32 = 1;
/// How long saving a machine may take.
pub(crate) const SAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Snapshots not restored for this long are removed when one is saved.
const MAX_AGE: Duration = Duration::from_secs(2 * 24 * 3600);
/// The suffix of snapshot files.
const SUFFIX: &str = "vmstate";

/// The snapshot file of one VM configuration, which may not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    path: PathBuf,
}

impl Snapshot {
    /// The snapshot of `config` in `<cache>/snapshots`
    /// ([`artifacts::cache_dir`]).
    pub(crate) fn of(config: &VmConfig) -> Result<Snapshot> {
        Self::in_dir(&artifacts::cache_dir().join("snapshots"), config)
    }

    /// The snapshot of `config` in `dir`.
    fn in_dir(dir: &Path, config: &VmConfig) -> Result<Snapshot> {
        Ok(Snapshot {
            path: dir.join(format!("{:016x}.{SUFFIX}", key(config)?)),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether it was saved.
    pub(crate) fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// QEMU's arguments that restore it.
    pub(crate) fn incoming_args(&self) -> Vec<OsString> {
        vec![
            "-incoming".into(),
            format!(
                "exec:cat {}",
                qemu::shell_quote(&self.path.to_string_lossy())
            )
            .into(),
        ]
    }

    /// Records a restore (the modification time), which keeps it from
    /// being pruned.
    pub(crate) fn touch(&self) {
        if let Ok(f) = std::fs::File::options().append(true).open(&self.path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Removes it (a restore from it failed).
    pub(crate) fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Where this process writes it before [`Snapshot::commit`].
    pub(crate) fn temporary(&self) -> Result<PathBuf> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(self
            .path
            .with_extension(format!("tmp-{}", std::process::id())))
    }

    /// Moves the file written at `temporary` into place, then prunes
    /// snapshots unused for [`MAX_AGE`].
    pub(crate) fn commit(&self, temporary: &Path) -> Result<()> {
        std::fs::rename(temporary, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(temporary);
            Error::io(format!("saving {}", self.path.display()), e)
        })?;
        if let Some(dir) = self.path.parent() {
            prune(dir, &self.path, MAX_AGE);
        }
        Ok(())
    }
}

/// Removes the snapshots in `dir` but `keep` that were not used for `age`.
fn prune(dir: &Path, keep: &Path, age: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > age);
        if path != keep && path.extension().is_some_and(|e| e == SUFFIX) && old {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The hash naming the snapshot of `config` (see the module documentation).
fn key(config: &VmConfig) -> Result<u64> {
    let mut h = DefaultHasher::new();
    FORMAT.hash(&mut h);
    let fixed = config
        .clone()
        .with_console(ConsoleMode::LogFile(PathBuf::from("/snapshot/console.log")));
    fixed.args(Path::new("/snapshot"))?.hash(&mut h);
    let qemu = find_program(&config.qemu);
    let files = [
        Some(&config.kernel),
        Some(&config.initramfs),
        config.ssdt.as_ref(),
        qemu.as_ref(),
    ];
    for file in files.into_iter().flatten() {
        let meta = std::fs::metadata(file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        file.hash(&mut h);
        (meta.len(), meta.ino(), meta.mtime(), meta.mtime_nsec()).hash(&mut h);
    }
    Ok(h.finish())
}

/// `program` as the shell finds it: itself if it names a path, else the
/// first match in `PATH`.
fn find_program(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config of real files in `dir`, so the key can read them.
    fn config(dir: &Path) -> VmConfig {
        for f in ["bzImage", "initramfs.cpio.gz"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        VmConfig::new(dir.join("bzImage"), dir.join("initramfs.cpio.gz")).unwrap()
    }

    #[test]
    fn the_name_follows_the_guest_not_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path().join("snapshots");
        let c = config(dir.path());
        let s = Snapshot::in_dir(&snaps, &c).unwrap();
        assert_eq!(s.path().parent(), Some(snaps.as_path()));
        // Logs, names and sockets differ from run to run: same snapshot.
        let run = c
            .clone()
            .with_name("other")
            .with_console(ConsoleMode::LogFile("/elsewhere.log".into()));
        assert_eq!(Snapshot::in_dir(&snaps, &run).unwrap(), s);
        // What the guest sees does not.
        for other in [
            c.clone().with_append("rust_keyboard.mode=1"),
            c.clone().with_memory(512),
            c.clone().with_ssdt(Some(dir.path().join("bzImage"))),
        ] {
            assert_ne!(Snapshot::in_dir(&snaps, &other).unwrap(), s);
        }
        // A rebuilt kernel (another size here) neither.
        std::fs::write(dir.path().join("bzImage"), "rebuilt").unwrap();
        assert_ne!(Snapshot::in_dir(&snaps, &c).unwrap(), s);
    }

    #[test]
    fn a_missing_kernel_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = VmConfig::new(dir.path().join("nope"), dir.path().join("nope2")).unwrap();
        let err = Snapshot::in_dir(dir.path(), &c).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn commit_moves_into_place_and_prunes_only_old_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path());
        let s = Snapshot::in_dir(dir.path(), &c).unwrap();
        let stale = dir.path().join(format!("0.{SUFFIX}"));
        let fresh = dir.path().join(format!("1.{SUFFIX}"));
        let other = dir.path().join("bzImage");
        for f in [&stale, &fresh] {
            std::fs::write(f, "x").unwrap();
        }
        let old = SystemTime::now() - MAX_AGE - Duration::from_secs(60);
        std::fs::File::options()
            .append(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let tmp = s.temporary().unwrap();
        std::fs::write(&tmp, "state").unwrap();
        s.commit(&tmp).unwrap();
        assert!(s.exists() && !tmp.exists());
        assert!(!stale.exists(), "a snapshot unused for {MAX_AGE:?} stays");
        assert!(fresh.exists() && other.exists());
        assert_eq!(
            s.incoming_args(),
            [
                OsString::from("-incoming"),
                format!("exec:cat {}", s.path().display()).into()
            ]
        );
    }
}
