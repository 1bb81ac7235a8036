//! The pin file (`pins.toml`): every version the lab builds from.
//!
//! The flake reads the same file with `builtins.fromTOML`, so the field names
//! here are the file's contract with `nix/pins.nix`.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::Path;

/// The whole pin file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pins {
    /// The Debian archive the architecture-independent packages come from.
    pub archive: Archive,
    /// Linux kernel source package.
    pub kernel: KernelPins,
    /// Rust library sources for the kernel's `RUST_LIB_SRC`.
    pub rust_src: RustSrcPins,
    /// bindgen, installed from the crate registry.
    pub bindgen: CratePin,
    /// cargo-nextest, installed when the host has none.
    pub nextest: CratePin,
    /// Host packages from the host's own Debian release.
    pub host: HostPins,
    /// What the kernel records of its build.
    pub build: BuildStamp,
    /// Nix formatting and lint tools run by `cargo xtask nix-check`.
    pub nix_tools: Option<NixTools>,
}

/// Which suites of Debian's archive the pinned `.deb` files come from (the
/// mirror is the host's own, see `provision::mirror`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Archive {
    /// Suites listed in the isolated apt configuration.
    pub suites: Vec<String>,
}

/// One acceptable version of a Debian package.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DebPin {
    /// Debian version string, e.g. `7.2.12-1~bpo13+1`.
    pub version: String,
    /// Path of the `.deb` below the archive root (`pool/main/...`).
    pub filename: String,
    /// SHA-256 of the `.deb`, as in Debian's Packages index.
    pub sha256: String,
}

/// The kernel source package and its acceptable versions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelPins {
    /// Debian package name, e.g. `linux-source-7.2`.
    pub package: String,
    /// Path of the source tarball inside the package.
    pub tarball: String,
    /// Acceptable versions, most preferred first.
    pub pins: Vec<DebPin>,
}

/// The rust-src package, which must match the compiler exactly.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustSrcPins {
    /// Debian package name (`rust-src`).
    pub package: String,
    /// The rustc version these sources belong to.
    pub rustc: String,
    /// Path of the `library` directory inside the package.
    pub library: String,
    /// Acceptable versions, most preferred first.
    pub pins: Vec<DebPin>,
}

/// A crate installed with `cargo install --locked`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CratePin {
    /// Crate name on the crate registry.
    #[serde(rename = "crate")]
    pub name: String,
    /// Exact version.
    pub version: String,
}

/// Packages installed from the host's Debian release.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPins {
    /// The `LLVM=` suffix of the host's LLVM packages (e.g. `-19`).
    pub llvm_suffix: String,
    /// Package names.
    pub packages: Vec<String>,
    /// What `vm --gui` needs besides (QEMU's GTK display).
    pub gui_packages: Vec<String>,
    /// What `test` needs besides: the GUI's and the X server and input
    /// tool of the window test.
    pub test_packages: Vec<String>,
}

/// What the kernel records of its build (`uname -v`, /proc/version): fixed
/// by pins.toml's `[build]` so that two builds give the same bytes, instead
/// of the time, user and host of the build (scripts/mkcompile_h,
/// init/Makefile).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildStamp {
    /// `KBUILD_BUILD_TIMESTAMP`, in the format of `date` (e.g.
    /// `Sat Nov 21 00:00:00 UTC 2026`).
    pub timestamp: String,
    /// `KBUILD_BUILD_USER`.
    pub user: String,
    /// `KBUILD_BUILD_HOST`.
    pub host: String,
}

/// Versions of the Nix tooling installed from the crate registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NixTools {
    /// alejandra (the formatter) version.
    pub alejandra: String,
    /// deadnix (dead code finder) version.
    pub deadnix: String,
}

impl Pins {
    /// Reads and validates the pin file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the pin file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in the pin file {}", path.display()))
    }

    /// Parses and validates pin file text.
    pub fn parse(text: &str) -> Result<Self> {
        let pins: Pins = toml::from_str(text)?;
        pins.validate()?;
        Ok(pins)
    }

    fn validate(&self) -> Result<()> {
        for (what, list) in [
            (&self.kernel.package, &self.kernel.pins),
            (&self.rust_src.package, &self.rust_src.pins),
        ] {
            if list.is_empty() {
                bail!("package {what} has no pins: list at least one [[...pins]] entry");
            }
            for pin in list {
                if pin.sha256.len() != 64 || !pin.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    bail!(
                        "pin {what} {}: sha256 must be 64 hex digits, got {:?}",
                        pin.version,
                        pin.sha256
                    );
                }
                let file = pin.filename.rsplit('/').next().unwrap_or_default();
                if !file.starts_with(&format!("{what}_")) || !file.ends_with("_all.deb") {
                    bail!(
                        "pin {what} {}: filename {} is not an architecture-independent .deb of {what}",
                        pin.version,
                        pin.filename
                    );
                }
            }
        }
        for pin in &self.rust_src.pins {
            if !pin
                .version
                .starts_with(&format!("{}+", self.rust_src.rustc))
            {
                bail!(
                    "rust-src pin {} does not belong to rustc {}: the kernel needs the sources of exactly the compiler it is built with",
                    pin.version,
                    self.rust_src.rustc
                );
            }
        }
        Ok(())
    }
}

/// Checks that `rust-toolchain.toml`'s channel equals the rust-src pin.
pub fn check_toolchain_matches(toolchain_toml: &str, pins: &Pins) -> Result<()> {
    #[derive(Deserialize)]
    struct File {
        toolchain: Toolchain,
    }
    #[derive(Deserialize)]
    struct Toolchain {
        channel: String,
    }
    let file: File = toml::from_str(toolchain_toml).context("cannot parse rust-toolchain.toml")?;
    if file.toolchain.channel != pins.rust_src.rustc {
        bail!(
            "rust-toolchain.toml pins rustc {} but pins.toml's rust_src is for rustc {}: make them equal",
            file.toolchain.channel,
            pins.rust_src.rustc
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_PINS: &str = include_str!("../../pins.toml");
    const REPO_TOOLCHAIN: &str = include_str!("../../rust-toolchain.toml");

    #[test]
    fn repository_pin_file_is_valid_and_matches_the_toolchain() {
        let pins = Pins::parse(REPO_PINS).unwrap();
        assert_eq!(pins.kernel.package, "linux-source-7.2");
        assert!(
            pins.kernel
                .pins
                .iter()
                .all(|p| p.version.starts_with("7.2."))
        );
        check_toolchain_matches(REPO_TOOLCHAIN, &pins).unwrap();
    }

    fn with(replace: &str, by: &str) -> String {
        assert!(
            REPO_PINS.contains(replace),
            "fixture text {replace:?} missing"
        );
        REPO_PINS.replacen(replace, by, 1)
    }

    #[test]
    fn short_sha256_is_rejected_with_the_pin_named() {
        let text = with(
            "73ca6c22599ba411ab3179642d33501ca2c90174e13c3c8d86e996ea1cbf2a8f",
            "73ca6c",
        );
        let err = format!("{:#}", Pins::parse(&text).unwrap_err());
        assert!(err.contains("7.2.12-1~bpo13+1"), "{err}");
        assert!(err.contains("sha256"), "{err}");
    }

    #[test]
    fn rust_src_for_another_compiler_is_rejected() {
        let text = with("rustc = \"1.95.0\"", "rustc = \"1.96.0\"");
        let err = format!("{:#}", Pins::parse(&text).unwrap_err());
        assert!(err.contains("does not belong to rustc 1.96.0"), "{err}");
    }

    #[test]
    fn toolchain_mismatch_is_reported() {
        let pins = Pins::parse(REPO_PINS).unwrap();
        let err =
            check_toolchain_matches("[toolchain]\nchannel = \"1.94.0\"\n", &pins).unwrap_err();
        assert!(err.to_string().contains("1.94.0"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = with("[bindgen]", "[bindgen]\nversoin = \"1\"");
        assert!(Pins::parse(&text).is_err());
    }
}
