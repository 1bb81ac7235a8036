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
//! concurrent tests never read half a snapshot; when one is saved,
//! snapshots unused for two days are removed, and the least recently used
//! ones beyond 4 GiB.

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
/// At most this many bytes of snapshots are kept: a full suite saves about
/// 30 lab kernel machines (25 to 28 MB each) and 30 debug kernel ones (89 MB
/// each), so this is a suite's and a bench run's worth, which a suite must
/// not push out of the cache while it runs.
const MAX_TOTAL: u64 = 4 << 30;
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
        let _ = set_used(&self.path, SystemTime::now());
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
    /// snapshots unused for [`MAX_AGE`] or beyond [`MAX_TOTAL`].
    pub(crate) fn commit(&self, temporary: &Path) -> Result<()> {
        std::fs::rename(temporary, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(temporary);
            Error::io(format!("saving {}", self.path.display()), e)
        })?;
        if let Some(dir) = self.path.parent() {
            prune(dir, &self.path, MAX_AGE, MAX_TOTAL);
        }
        Ok(())
    }
}

/// Sets when the snapshot at `path` was last used: its modification time.
fn set_used(path: &Path, time: SystemTime) -> std::io::Result<()> {
    std::fs::File::options()
        .append(true)
        .open(path)?
        .set_modified(time)
}

/// Removes the snapshots in `dir` but `keep` that were not used for `age`,
/// then the least recently used ones beyond `total` bytes in all. A
/// restore that loses the race with a removal boots instead.
fn prune(dir: &Path, keep: &Path, age: Duration, total: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut kept = std::fs::metadata(keep).map_or(0, |m| m.len());
    let mut others: Vec<(SystemTime, u64, PathBuf)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != keep && p.extension().is_some_and(|e| e == SUFFIX))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((m.modified().ok()?, m.len(), p))
        })
        .collect();
    // Most recently used first.
    others.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (used, len, path) in others {
        if now.duration_since(used).unwrap_or_default() > age || kept + len > total {
            let _ = std::fs::remove_file(path);
        } else {
            kept += len;
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
        for f in ["bzImage", "initramfs.cpio"] {
            std::fs::write(dir.join(f), f).unwrap();
        }
        VmConfig::new(dir.join("bzImage"), dir.join("initramfs.cpio")).unwrap()
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
    fn prune_keeps_the_most_recently_used_within_the_total() {
        let dir = tempfile::tempdir().unwrap();
        let keep = dir.path().join(format!("k.{SUFFIX}"));
        std::fs::write(&keep, [0; 10]).unwrap();
        let now = SystemTime::now();
        let mut files = Vec::new();
        for (i, secs_ago) in [30, 10, 20].into_iter().enumerate() {
            let f = dir.path().join(format!("{i}.{SUFFIX}"));
            std::fs::write(&f, [0; 10]).unwrap();
            set_used(&f, now - Duration::from_secs(secs_ago)).unwrap();
            files.push(f);
        }
        // Room for `keep` and two more: the one used 30 s ago goes.
        prune(dir.path(), &keep, MAX_AGE, 30);
        assert!(keep.exists());
        assert!(!files[0].exists());
        assert!(files[1].exists() && files[2].exists());
        // Room for `keep` alone.
        prune(dir.path(), &keep, MAX_AGE, 10);
        assert!(keep.exists() && !files[1].exists() && !files[2].exists());
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
        set_used(
            &stale,
            SystemTime::now() - MAX_AGE - Duration::from_secs(60),
        )
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
