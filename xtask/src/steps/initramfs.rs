//! Packing the initramfs: an uncompressed newc cpio archive with busybox and
//! a link for each of its applets, the lab's `/init` and the modules (without
//! their debug sections, see [`super::strip_debug`]). Written
//! in Rust (no cpio tool) with fixed owners and times, so the same inputs give
//! the same bytes. Uncompressed because the kernel then copies the archive
//! instead of inflating it: gzip's inflate took 112 ms of every boot on TCG
//! (`initcall_debug`, populate_rootfs), for a 1.1 MB archive of 2.5 MB.

use super::strip_debug::stripped;
use crate::exec::{self, cmd};
use crate::fsutil::{sha256_of, write_atomically};
use anyhow::{Context, Result};
use cpio::newc::Builder;
use std::borrow::Cow;
use std::io::{BufWriter, Cursor, Write};
use std::path::Path;

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Where the module lands inside the initramfs (the guest's /init loads it
/// from here).
pub const MODULE_DIR: &str = "lib/modules";

/// One archive member.
struct Member {
    name: String,
    mode: u32,
    data: Vec<u8>,
    rdev: Option<(u32, u32)>,
}

impl Member {
    fn dir(name: &str) -> Self {
        Self {
            name: name.into(),
            mode: S_IFDIR | 0o755,
            data: Vec::new(),
            rdev: None,
        }
    }
    fn file(name: &str, perm: u32, data: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            mode: S_IFREG | perm,
            data,
            rdev: None,
        }
    }
    fn symlink(name: &str, target: &str) -> Self {
        Self {
            name: name.into(),
            mode: S_IFLNK | 0o777,
            data: target.as_bytes().to_vec(),
            rdev: None,
        }
    }
    fn char_dev(name: &str, perm: u32, major: u32, minor: u32) -> Self {
        Self {
            name: name.into(),
            mode: S_IFCHR | perm,
            data: Vec::new(),
            rdev: Some((major, minor)),
        }
    }
}

/// The directories busybox installs its applets' links into.
const APPLET_DIRS: [&str; 4] = ["bin", "sbin", "usr/bin", "usr/sbin"];

/// The links `busybox --install -s` would create (`bin/ls`, `sbin/insmod`,
/// ...), from `busybox --list-full`: the archive brings them, so /init does
/// not spend a fork on creating them at every boot. `busybox` must run on
/// this machine (a static x86-64 busybox does, on the host and in Nix's
/// build sandbox).
fn applet_links(busybox: &Path) -> Result<Vec<String>> {
    let listing = exec::output(&mut cmd(busybox, ["--list-full"]))?;
    parse_applet_list(&listing).with_context(|| format!("{} --list-full", busybox.display()))
}

/// The applet links of a `--list-full` listing: one `<dir>/<applet>` per
/// line. Links outside [`APPLET_DIRS`] (`linuxrc` at the top) and the two
/// members the archive always has (`bin/busybox`, `bin/sh`) are left out.
fn parse_applet_list(text: &str) -> Result<Vec<String>> {
    let mut links = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((dir, name)) = line.rsplit_once('/') else {
            continue;
        };
        if !APPLET_DIRS.contains(&dir) || matches!(line, "bin/busybox" | "bin/sh") {
            continue;
        }
        anyhow::ensure!(
            !name.is_empty() && name != "." && name != "..",
            "applet link {line:?} has no name"
        );
        links.push(line.to_owned());
    }
    anyhow::ensure!(!links.is_empty(), "no applet in the listing");
    links.sort();
    links.dedup();
    Ok(links)
}

/// Packs `busybox` with its applets' links ([`applet_links`]), `init` and
/// the `modules` (their debug sections removed with `objcopy`, see
/// [`stripped`]) into `out` (a newc `.cpio`, uncompressed).
pub fn pack(
    busybox: &Path,
    init: &Path,
    modules: &[&Path],
    objcopy: &Path,
    out: &Path,
) -> Result<()> {
    let busybox_bytes = read(busybox)?;
    if !busybox_bytes.starts_with(b"\x7fELF") {
        anyhow::bail!("{} is not an ELF binary", busybox.display());
    }
    pack_members(
        busybox_bytes,
        &applet_links(busybox)?,
        init,
        modules,
        objcopy,
        out,
    )
}

/// Reads a file, naming it on error.
fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// [`pack`] with busybox's bytes and its applet links given.
fn pack_members(
    busybox_bytes: Vec<u8>,
    applets: &[String],
    init: &Path,
    modules: &[&Path],
    objcopy: &Path,
    out: &Path,
) -> Result<()> {
    let mut members = vec![];
    for d in [
        "bin", "sbin", "dev", "etc", "lib", MODULE_DIR, "proc", "root", "run", "sys", "tmp", "usr",
        "usr/bin", "usr/sbin",
    ] {
        members.push(Member::dir(d));
    }
    // The kernel opens /dev/console for init before anything mounts devtmpfs.
    members.push(Member::char_dev("dev/console", 0o600, 5, 1));
    members.push(Member::file("bin/busybox", 0o755, busybox_bytes));
    // /init is a shell script: /bin/sh must exist before it runs.
    members.push(Member::symlink("bin/sh", "busybox"));
    for link in applets {
        members.push(Member::symlink(link, "/bin/busybox"));
    }
    members.push(Member::file("init", 0o755, read(init)?));
    let first_module = members.len();
    for m in modules {
        let name = m
            .file_name()
            .with_context(|| format!("module path {} has no file name", m.display()))?;
        members.push(Member::file(
            &format!("{MODULE_DIR}/{}", name.to_string_lossy()),
            0o644,
            read(m)?,
        ));
    }

    // The archive is a function of its members as read (the modules before
    // their debug sections are stripped, which the stripped bytes follow
    // from): when they are what the archive in place was packed from, it
    // stays: not written again, its inode and time stay, which a saved
    // machine's name follows, and no objcopy runs.
    let key = sha256_of(members.iter().flat_map(|m| {
        let head = format!("{}\0{:o}\0{:?}\0{}\0", m.name, m.mode, m.rdev, m.data.len());
        [
            Cow::Owned(head.into_bytes()),
            Cow::Borrowed(m.data.as_slice()),
        ]
    }));
    let stamp = inputs_stamp(out);
    let recorded = |key: &str| archive_id(out).map(|id| format!("{key} {id}"));
    if std::fs::read_to_string(&stamp).ok() == recorded(&key) && out.is_file() {
        return Ok(());
    }
    let _ = std::fs::remove_file(&stamp);
    for (m, member) in modules.iter().zip(&mut members[first_module..]) {
        if let Some(bytes) = stripped(m, &member.data, objcopy)? {
            member.data = bytes;
        }
    }
    let inputs = members.into_iter().enumerate().map(|(i, m)| {
        let mut b = Builder::new(&m.name)
            .ino(i as u32 + 1)
            .mode(m.mode)
            .uid(0)
            .gid(0)
            .mtime(0)
            .nlink(if m.mode & S_IFDIR != 0 { 2 } else { 1 });
        if let Some((major, minor)) = m.rdev {
            b = b.rdev_major(major).rdev_minor(minor);
        }
        (b, Cursor::new(m.data))
    });
    write_atomically(out, |file| {
        cpio::write_cpio(inputs, BufWriter::new(file))?.flush()?;
        Ok(())
    })?;
    let text = recorded(&key).with_context(|| format!("{} is gone", out.display()))?;
    std::fs::write(&stamp, text).with_context(|| format!("cannot write {}", stamp.display()))
}

/// The size and modification time of the archive `out`: the stamp holds
/// them, so an archive replaced by something else is packed again.
fn archive_id(out: &Path) -> Option<String> {
    let m = std::fs::metadata(out).ok()?;
    let mtime = m
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{} {}", m.len(), mtime.as_nanos()))
}

/// The file beside the archive `out` that records the hash of the members
/// it was packed from, and the archive's [`archive_id`].
fn inputs_stamp(out: &Path) -> std::path::PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".inputs");
    out.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::strip_debug::{c_object, fake_objcopy};
    use std::io::Read;

    /// The bytes the tests pack as busybox (an ELF magic, not a program).
    fn fake_busybox() -> Vec<u8> {
        b"\x7fELF fake".to_vec()
    }

    /// [`pack_members`] of the fake busybox, [`applets`], `init` and the one
    /// module `ko` into `out`.
    fn pack_one(init: &Path, ko: &Path, objcopy: &Path, out: &Path) -> Result<()> {
        pack_members(fake_busybox(), &applets(), init, &[ko], objcopy, out)
    }

    /// Two applet links, as [`applet_links`] gives them.
    fn applets() -> Vec<String> {
        vec!["bin/ls".into(), "sbin/insmod".into()]
    }

    #[test]
    fn archive_holds_init_busybox_console_and_module_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("init"), b"#!/bin/sh\necho hi\n").unwrap();
        let ko = c_object(
            dir.path(),
            "rust_keyboard",
            "int f(void) { return 1; }\n",
            false,
        );
        let objcopy = p("no-objcopy");
        pack_one(&p("init"), &ko, &objcopy, &p("a.cpio")).unwrap();
        pack_one(&p("init"), &ko, &objcopy, &p("b.cpio")).unwrap();
        let a = std::fs::read(p("a.cpio")).unwrap();
        assert_eq!(a, std::fs::read(p("b.cpio")).unwrap());

        let mut rest = &a[..];
        let mut seen = Vec::new();
        loop {
            let mut r = cpio::NewcReader::new(rest).unwrap();
            if r.entry().is_trailer() {
                break;
            }
            let e = r.entry();
            let name = e.name().to_string();
            seen.push((name.clone(), e.mode(), e.rdev_major(), e.rdev_minor()));
            let mut body = Vec::new();
            r.read_to_end(&mut body).unwrap();
            if name == "init" {
                assert_eq!(body, b"#!/bin/sh\necho hi\n");
            }
            if name == "sbin/insmod" {
                assert_eq!(body, b"/bin/busybox");
            }
            rest = r.finish().unwrap();
        }
        let find = |n: &str| {
            seen.iter()
                .find(|s| s.0 == n)
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(find("init").1, 0o100755);
        assert_eq!(find("dev/console").1 & 0o170000, S_IFCHR);
        assert_eq!((find("dev/console").2, find("dev/console").3), (5, 1));
        assert_eq!(find("bin/sh").1 & 0o170000, S_IFLNK);
        assert_eq!(find("bin/ls").1 & 0o170000, S_IFLNK);
        assert_eq!(find("sbin/insmod").1 & 0o170000, S_IFLNK);
        find("lib/modules/rust_keyboard.ko");
    }

    #[test]
    fn applet_listing_gives_the_links_in_the_four_directories() {
        let listing = "linuxrc\nbin/busybox\nbin/sh\nbin/ls\nsbin/insmod\nusr/bin/[\n\
                       usr/sbin/chroot\nusr/bin/[\n";
        assert_eq!(
            parse_applet_list(listing).unwrap(),
            ["bin/ls", "sbin/insmod", "usr/bin/[", "usr/sbin/chroot"]
        );
        let err = parse_applet_list("linuxrc\nbin/sh\n").unwrap_err();
        assert!(err.to_string().contains("no applet"), "{err}");
        let err = parse_applet_list("bin/..\n").unwrap_err();
        assert!(err.to_string().contains("no name"), "{err}");
    }

    #[test]
    fn the_same_members_leave_the_archive_alone_and_a_new_module_repacks_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("init"), b"#!/bin/sh\n").unwrap();
        let ko = c_object(dir.path(), "m", "int one;\n", false);
        let out = p("i.cpio");
        let objcopy = p("no-objcopy");
        let pack = || pack_one(&p("init"), &ko, &objcopy, &out);
        let inode = || std::fs::metadata(&out).unwrap().ino();
        pack().unwrap();
        let first = inode();
        pack().unwrap();
        assert_eq!(inode(), first);
        c_object(dir.path(), "m", "int two;\n", false);
        pack().unwrap();
        assert_ne!(inode(), first);
        let raw = std::fs::read(&out).unwrap();
        assert!(raw.windows(4).any(|w| w == b"two\0"));
        // An archive replaced behind the stamp's back is packed again.
        std::fs::write(&out, b"other").unwrap();
        pack().unwrap();
        assert!(std::fs::read(&out).unwrap().starts_with(b"070701"));
    }

    #[test]
    fn a_module_with_debug_information_is_packed_as_objcopy_strips_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("init"), b"#!/bin/sh\n").unwrap();
        let ko = c_object(dir.path(), "m", "int with_dwarf;\n", true);
        let plain = c_object(dir.path(), "plain", "int without_dwarf;\n", false);
        // The stand-in's output is another object: the archive must hold it.
        let objcopy = fake_objcopy(dir.path(), &format!("cp {} \"$3\"", plain.display()));
        let out = p("i.cpio");
        pack_one(&p("init"), &ko, &objcopy, &out).unwrap();
        let raw = std::fs::read(&out).unwrap();
        let has = |text: &[u8]| raw.windows(text.len()).any(|w| w == text);
        assert!(has(b"lib/modules/m.ko\0"));
        assert!(has(b"without_dwarf\0") && !has(b"with_dwarf\0"));
        // The same module again: the archive is up to date, no objcopy runs.
        let failing = fake_objcopy(dir.path(), "exit 3");
        pack_one(&p("init"), &ko, &failing, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), raw);
    }

    #[test]
    fn a_non_elf_busybox_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("busybox"), b"#!/bin/sh").unwrap();
        std::fs::write(p("init"), b"").unwrap();
        let err = pack(&p("busybox"), &p("init"), &[], &p("objcopy"), &p("x")).unwrap_err();
        assert!(err.to_string().contains("not an ELF"), "{err}");
    }
}
