//! Provisioning of the host path: Debian host packages, the pinned
//! architecture-independent `.deb`s (kernel source, rust-src) fetched through
//! an isolated apt configuration, and bindgen from crates.io. Everything lands
//! in the cache; the host's apt sources and state are never modified.

use crate::exec::{self, cmd};
use crate::paths::Cache;
use crate::pins::{DebPin, Pins};
use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Everything the build steps need from provisioning.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Unpacked kernel source tree.
    pub kernel_src: PathBuf,
    /// The Debian version of the kernel source in use.
    pub kernel_version: String,
    /// `RUST_LIB_SRC` for the kernel.
    pub rust_lib_src: PathBuf,
    /// The bindgen binary.
    pub bindgen: PathBuf,
    /// Directory holding the pinned `rustc` and `rustdoc`.
    pub rust_bin: PathBuf,
    /// The kernel's `LLVM=` value (`-19` on Debian 12).
    pub llvm: String,
}

/// Runs every provisioning step, each a no-op when already done.
pub fn provision(repo: &Path, cache: &Cache, pins: &Pins) -> Result<Toolchain> {
    crate::pins::check_toolchain_matches(
        &std::fs::read_to_string(repo.join("rust-toolchain.toml"))?,
        pins,
    )?;
    ensure_host_packages(&pins.host.packages)?;
    let rust_bin = pinned_rust_bin(&pins.rust_src.rustc)?;
    // A tree unpacked from a verified .deb needs neither apt nor the .deb;
    // apt is set up only when something must be downloaded.
    let mut apt = None;
    let mut obtain = |name: &str,
                      package: &str,
                      list: &[DebPin],
                      unpack: &dyn Fn(&DebPin, &Path) -> Result<PathBuf>|
     -> Result<(DebPin, PathBuf)> {
        let done = list.iter().find_map(|pin| {
            let dir = unpacked_dir(cache, name, pin);
            is_unpacked(&dir, pin).then(|| (pin.clone(), dir))
        });
        if let Some((pin, dir)) = done {
            eprintln!("  {package} {}: unpacked", pin.version);
            return Ok((pin, dir));
        }
        let apt = match &apt {
            Some(a) => a,
            None => apt.insert(IsolatedApt::new(cache, pins)?),
        };
        let (pin, deb) = apt.fetch(package, list)?;
        let dir = unpack(&pin, &deb)?;
        Ok((pin, dir))
    };
    let (kernel_pin, kernel_root) = obtain(
        "linux",
        &pins.kernel.package,
        &pins.kernel.pins,
        &|pin, deb| unpack_kernel(cache, pin, deb, &pins.kernel.tarball),
    )?;
    let kernel_root = kernel_tree(&kernel_root)?;
    let (rust_pin, rust_root) = obtain(
        "rust-src",
        &pins.rust_src.package,
        &pins.rust_src.pins,
        &|pin, deb| unpack_deb(cache, "rust-src", pin, deb),
    )?;
    let rust_lib_src = rust_root.join(&pins.rust_src.library);
    if !rust_lib_src.join("core").is_dir() {
        bail!(
            "rust-src {} has no core library at {}: the pin's `library` path is wrong",
            rust_pin.version,
            rust_lib_src.display()
        );
    }
    let bindgen = install_crate(cache, &pins.bindgen.name, &pins.bindgen.version, "bindgen")?;
    Ok(Toolchain {
        kernel_src: kernel_root,
        kernel_version: kernel_pin.version,
        rust_lib_src,
        bindgen,
        rust_bin,
        llvm: pins.host.llvm_suffix.clone(),
    })
}

/// Packages of `wanted` that dpkg does not list as installed.
fn missing_packages(wanted: &[String]) -> Result<Vec<String>> {
    if exec::which("dpkg-query").is_none() {
        bail!(
            "the host path needs a Debian or Ubuntu host (dpkg-query not found); on other systems use the Nix flake (`nix run .#vm`)"
        );
    }
    // dpkg-query exits 1 when some package is unknown: read stdout anyway.
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(wanted)
        .output()
        .context("cannot run dpkg-query")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            (it.next()? == "ii").then_some(name)
        })
        .collect();
    Ok(wanted
        .iter()
        .filter(|p| !installed.contains(&p.as_str()))
        .cloned()
        .collect())
}

/// Installs missing host packages with apt (as root, or with passwordless
/// sudo); otherwise fails with the exact command to run.
pub fn ensure_host_packages(wanted: &[String]) -> Result<()> {
    let missing = missing_packages(wanted)?;
    if missing.is_empty() {
        eprintln!("  host packages: all {} installed", wanted.len());
        return Ok(());
    }
    let apt_args = |verb: &str| -> Vec<String> {
        let mut v = vec![
            "apt-get".to_string(),
            "-o".into(),
            "DPkg::Lock::Timeout=600".into(),
            verb.to_string(),
        ];
        if verb == "install" {
            v.extend(["-y".into(), "--no-install-recommends".into()]);
            v.extend(missing.iter().cloned());
        }
        v
    };
    let is_root = exec::output(&mut cmd("id", ["-u"]))?.trim() == "0";
    let sudo_ok = !is_root
        && exec::which("sudo").is_some()
        && Command::new("sudo")
            .args(["-n", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !is_root && !sudo_ok {
        bail!(
            "missing host packages: {}. Run as root:\n  sudo {} && sudo {}",
            missing.join(" "),
            apt_args("update").join(" "),
            apt_args("install").join(" ")
        );
    }
    let log_dir = Cache::from_env()?.logs();
    for verb in ["update", "install"] {
        let mut argv = apt_args(verb);
        if sudo_ok {
            argv.insert(0, "sudo".into());
            argv.insert(1, "-n".into());
        }
        let mut c = cmd(&argv[0], &argv[1..]);
        c.env("DEBIAN_FRONTEND", "noninteractive");
        exec::run_logged(
            &mut c,
            &format!("apt-get {verb} ({})", missing.join(" ")),
            &log_dir.join(format!("apt-{verb}.log")),
        )?;
    }
    let still = missing_packages(wanted)?;
    if !still.is_empty() {
        bail!(
            "apt-get finished but these packages are still not installed: {}",
            still.join(" ")
        );
    }
    Ok(())
}

/// Finds the directory of the pinned `rustc` and checks its version.
fn pinned_rust_bin(version: &str) -> Result<PathBuf> {
    let rustc = match exec::which("rustup") {
        Some(_) => PathBuf::from(
            exec::output(&mut cmd(
                "rustup",
                ["which", "--toolchain", version, "rustc"],
            ))
            .with_context(|| {
                format!(
                    "rustup has no {version} toolchain: run `rustup toolchain install {version}`"
                )
            })?
            .trim(),
        ),
        None => exec::require("rustc")?,
    };
    let reported = exec::output(&mut cmd(&rustc, ["--version"]))?;
    if !reported.starts_with(&format!("rustc {version} ")) {
        bail!(
            "{} reports `{}` but the lab pins rustc {version} (rust-toolchain.toml and pins.toml's rust_src)",
            rustc.display(),
            reported.trim()
        );
    }
    rustc
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| anyhow!("rustc path {} has no directory", rustc.display()))
}

/// An apt configuration of our own in the cache: its own sources list, lists,
/// cache and status file, and none of the host's configuration fragments
/// (some of which delete downloaded packages from hooks).
struct IsolatedApt {
    config: PathBuf,
    debs: PathBuf,
    lists: PathBuf,
    log_dir: PathBuf,
}

impl IsolatedApt {
    fn new(cache: &Cache, pins: &Pins) -> Result<Self> {
        let root = cache.apt();
        let lists = root.join("lists");
        let empty = root.join("empty.d");
        for d in [
            lists.join("partial"),
            root.join("cache/archives/partial"),
            empty.clone(),
            cache.debs(),
        ] {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        let status = root.join("status");
        if !status.exists() {
            std::fs::write(&status, "")?;
        }
        let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
        let sources: String = pins
            .archive
            .suites
            .iter()
            .map(|s| format!("deb [signed-by={keyring}] {} {s} main\n", pins.archive.url))
            .collect();
        write_if_changed(&root.join("sources.list"), &sources)?;
        let q = |p: &Path| format!("\"{}\"", p.display());
        let config = format!(
            "// Generated by cargo xtask: an apt that shares nothing with the host's.\n\
             Dir::Etc::Main \"/dev/null\";\n\
             Dir::Etc::Parts {};\n\
             Dir::Etc::SourceList {};\n\
             Dir::Etc::SourceParts {};\n\
             Dir::Etc::Preferences \"/dev/null\";\n\
             Dir::Etc::PreferencesParts {};\n\
             Dir::State::Lists {};\n\
             Dir::State::status {};\n\
             Dir::Cache {};\n\
             Dir::Cache::pkgcache \"\";\n\
             Dir::Cache::srcpkgcache \"\";\n\
             APT::Architecture \"amd64\";\n\
             Acquire::Languages \"none\";\n\
             APT::Sandbox::User \"root\";\n\
             // Archive mirrors may serve Release files past their Valid-Until\n\
             // date; signatures are still checked, and every .deb is checked\n\
             // against the sha256 of pins.toml.\n\
             Acquire::Check-Valid-Until \"false\";\n\
             Acquire::Check-Date \"false\";\n",
            q(&empty),
            q(&root.join("sources.list")),
            q(&empty),
            q(&empty),
            q(&lists),
            q(&status),
            q(&root.join("cache")),
        );
        let config_path = root.join("apt.conf");
        write_if_changed(&config_path, &config)?;
        Ok(Self {
            config: config_path,
            debs: cache.debs(),
            lists,
            log_dir: cache.logs(),
        })
    }

    fn apt(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("APT_CONFIG", &self.config);
        c
    }

    fn has_lists(&self) -> bool {
        std::fs::read_dir(&self.lists)
            .map(|d| {
                d.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with("_Packages"))
            })
            .unwrap_or(false)
    }

    fn update(&self) -> Result<()> {
        if !Path::new("/usr/share/keyrings/debian-archive-keyring.gpg").exists() {
            bail!("Debian's archive keyring is missing: `apt-get install debian-archive-keyring`");
        }
        let mut c = self.apt("apt-get");
        c.arg("update");
        exec::run_logged(
            &mut c,
            "apt-get update (isolated: pinned suites only)",
            &self.log_dir.join("apt-isolated-update.log"),
        )
        .map(|_| ())
    }

    /// Returns the first pin of `pins` whose `.deb` is in the cache or can be
    /// downloaded, verified against its sha256.
    fn fetch(&self, package: &str, pins: &[DebPin]) -> Result<(DebPin, PathBuf)> {
        // Already downloaded and verified?
        for pin in pins {
            let path = self.debs.join(deb_name(pin));
            if path.is_file() && sha256_file(&path)? == pin.sha256 {
                eprintln!("  {package} {}: cached", pin.version);
                return Ok((pin.clone(), path));
            }
        }
        if !self.has_lists() {
            self.update()?;
        }
        let mut refreshed = false;
        let mut tried = Vec::new();
        loop {
            for pin in pins {
                // apt-cache show may exit 0 for a version it does not
                // have: look for the version's own record.
                let record = exec::output(
                    self.apt("apt-cache")
                        .args(["show", &format!("{package}={}", pin.version)]),
                )
                .unwrap_or_default();
                let wanted = format!("Version: {}", pin.version);
                if !record.lines().any(|l| l == wanted) {
                    tried.push(pin.version.clone());
                    continue;
                }
                return self.download(package, pin).map(|p| (pin.clone(), p));
            }
            if refreshed {
                break;
            }
            refreshed = true;
            tried.clear();
            self.update()?;
        }
        let available = exec::output(self.apt("apt-cache").args(["policy", package]))
            .unwrap_or_else(|e| e.to_string());
        bail!(
            "none of the pinned versions of {package} is in the archive any more (tried {}).\n\
             Add a current version to pins.toml ([[...pins]] with version, filename, sha256 from \
             `APT_CONFIG={} apt-cache show {package}`). The archive has:\n{available}",
            tried.join(", "),
            self.config.display()
        )
    }

    fn download(&self, package: &str, pin: &DebPin) -> Result<PathBuf> {
        let mut c = self.apt("apt-get");
        c.current_dir(&self.debs)
            .args(["download", &format!("{package}={}", pin.version)]);
        exec::run_logged(
            &mut c,
            &format!("download {package} {}", pin.version),
            &self.log_dir.join(format!("download-{package}.log")),
        )?;
        let path = self.debs.join(deb_name(pin));
        if !path.is_file() {
            bail!(
                "apt-get download of {package} {} did not produce {}",
                pin.version,
                path.display()
            );
        }
        let got = sha256_file(&path)?;
        if got != pin.sha256 {
            let bad = path.with_extension("deb.rejected");
            std::fs::rename(&path, &bad)?;
            bail!(
                "pin {package} {}: sha256 mismatch: pins.toml says {} but the download is {got} \
                 (kept as {}). Either pins.toml is wrong or the archive changed: compare with \
                 `APT_CONFIG={} apt-cache show {package}={}`",
                pin.version,
                pin.sha256,
                bad.display(),
                self.config.display(),
                pin.version
            );
        }
        Ok(path)
    }
}

/// File name `apt-get download` gives a pin (`:` in epochs becomes `%3a`).
fn deb_name(pin: &DebPin) -> String {
    pin.filename
        .rsplit('/')
        .next()
        .unwrap_or(&pin.filename)
        .replace(':', "%3a")
}

/// Writes `text` to `path` unless it already holds exactly that.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
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

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stamp file in an unpacked tree: holds the sha256 of its `.deb`.
const STAMP: &str = ".lab-unpacked";

/// Where the package `name` at `pin` is unpacked.
fn unpacked_dir(cache: &Cache, name: &str, pin: &DebPin) -> PathBuf {
    cache.sources().join(format!("{name}-{}", pin.version))
}

/// Whether `dir` holds a finished unpack of exactly `pin`'s `.deb`.
fn is_unpacked(dir: &Path, pin: &DebPin) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).ok().as_deref() == Some(pin.sha256.as_str())
}

/// The kernel tree (the directory with the top-level Makefile) in `dir`.
fn kernel_tree(dir: &Path) -> Result<PathBuf> {
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
fn unpack_deb(cache: &Cache, name: &str, pin: &DebPin, deb: &Path) -> Result<PathBuf> {
    unpack(cache, name, pin, |tmp, log| {
        extract_deb(deb, tmp, &format!("unpack {name} {}", pin.version), log)
    })
}

/// Unpacks the kernel source tarball out of its `.deb` (the `.deb`'s other
/// files are not kept).
fn unpack_kernel(cache: &Cache, pin: &DebPin, deb: &Path, tarball: &str) -> Result<PathBuf> {
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

/// Installs crate `name` at `version` into `<cache>/tools/<name>-<version>`
/// (once) and returns the path of its binary `bin`.
pub fn install_crate(cache: &Cache, name: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let root = cache.tools().join(format!("{name}-{version}"));
    let binary = root.join("bin").join(bin);
    if binary.is_file() {
        return Ok(binary);
    }
    let mut c = cmd(
        "cargo",
        [
            "install",
            "--locked",
            "--quiet",
            "--version",
            version,
            "--root",
        ],
    );
    c.arg(&root).arg(name);
    // From the checkout, so that rustup uses the pinned toolchain of
    // rust-toolchain.toml (cargo install keeps its target dir elsewhere).
    c.current_dir(crate::paths::repo_root()?);
    exec::run_logged(
        &mut c,
        &format!("cargo install {name} {version}"),
        &cache.logs().join(format!("install-{name}.log")),
    )?;
    if !binary.is_file() {
        bail!(
            "cargo install {name} {version} did not produce {}",
            binary.display()
        );
    }
    Ok(binary)
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
            snapshot: String::new(),
        };
        assert_eq!(deb_name(&pin), "x_1%3a2.0-1_all.deb");
    }

    #[test]
    fn sha256_of_a_known_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("abc");
        std::fs::write(&f, "abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
