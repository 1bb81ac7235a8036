//! Choosing the QEMU accelerator: hardware KVM or TCG.
//!
//! `/dev/kvm` alone proves nothing: on some machines it is a software layer
//! (for example the `kvm_pvm` module) under which guests hang for minutes.
//! KVM is therefore chosen only when a *hardware* KVM module (`kvm_intel` or
//! `kvm_amd`) is loaded **and** `/dev/kvm` opens read-write. Everything else
//! runs under TCG, and the decision always carries a human-readable reason.
//! The environment variable [`ACCEL_ENV`] (`LAB_ACCEL=kvm|tcg|auto`) or an
//! explicit override (`--accel`) wins over detection.

use std::fmt;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::{Error, Result};

/// Environment variable that overrides the accelerator choice.
pub const ACCEL_ENV: &str = "LAB_ACCEL";

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelKind {
    /// Hardware virtualisation through `/dev/kvm`.
    Kvm,
    /// QEMU's portable emulator (Tiny Code Generator).
    Tcg,
}

impl AccelKind {
    /// Parses `kvm` or `tcg` (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kvm" => Ok(AccelKind::Kvm),
            "tcg" => Ok(AccelKind::Tcg),
            _ => Err(Error::InvalidAccel(s.to_owned())),
        }
    }

    /// The QEMU name (`kvm` or `tcg`).
    pub fn name(self) -> &'static str {
        match self {
            AccelKind::Kvm => "kvm",
            AccelKind::Tcg => "tcg",
        }
    }
}

/// An accelerator decision and why it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accel {
    /// The chosen accelerator.
    pub kind: AccelKind,
    /// Why it was chosen, for humans (printed when a VM starts).
    pub reason: String,
}

impl Accel {
    /// TCG with the given reason.
    pub fn tcg(reason: impl Into<String>) -> Self {
        Accel {
            kind: AccelKind::Tcg,
            reason: reason.into(),
        }
    }

    /// The QEMU arguments selecting this accelerator.
    ///
    /// KVM also uses `-cpu host`; TCG keeps QEMU's default CPU model.
    pub fn qemu_args(&self) -> Vec<String> {
        match self.kind {
            AccelKind::Kvm => vec!["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()],
            AccelKind::Tcg => vec!["-accel".into(), "tcg".into()],
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            AccelKind::Kvm => "KVM",
            AccelKind::Tcg => "TCG",
        };
        write!(f, "{name} ({})", self.reason)
    }
}

/// Where detection looks; [`HostProbe::host`] is the real machine, tests use
/// fake directories.
#[derive(Debug, Clone)]
pub struct HostProbe {
    /// The directory of loaded modules (normally `/sys/module`).
    pub sys_module: PathBuf,
    /// The KVM device (normally `/dev/kvm`).
    pub dev_kvm: PathBuf,
}

impl HostProbe {
    /// The running host: `/sys/module` and `/dev/kvm`.
    pub fn host() -> Self {
        HostProbe {
            sys_module: PathBuf::from("/sys/module"),
            dev_kvm: PathBuf::from("/dev/kvm"),
        }
    }
}

/// Chooses the accelerator for this host.
///
/// Order: `override_` (e.g. from `--accel`), then `$LAB_ACCEL`, then
/// detection ([`detect`]). An override of `auto` (or an empty `LAB_ACCEL`)
/// means detection. Fails only on an override that is not `kvm`, `tcg` or
/// `auto`.
pub fn choose(override_: Option<&str>) -> Result<Accel> {
    let env = std::env::var(ACCEL_ENV).ok();
    choose_with(override_, env.as_deref(), &HostProbe::host())
}

/// [`choose`] without an explicit override, decided once per process and
/// reused by every VM it starts (what [`VmConfig::new`](crate::VmConfig::new)
/// uses). Every [`Machine`](crate::Machine) prints the decision and its
/// reason when it boots (on stderr, so also in nextest's JUnit report).
pub fn chosen() -> Result<Accel> {
    static CHOSEN: OnceLock<Accel> = OnceLock::new();
    if let Some(accel) = CHOSEN.get() {
        return Ok(accel.clone());
    }
    let accel = choose(None)?;
    Ok(CHOSEN.get_or_init(|| accel).clone())
}

/// [`choose`] with explicit inputs (testable).
pub fn choose_with(override_: Option<&str>, env: Option<&str>, probe: &HostProbe) -> Result<Accel> {
    let explicit = |value: &str, origin: &str| -> Result<Option<Accel>> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        let kind = AccelKind::parse(value)?;
        Ok(Some(Accel {
            kind,
            reason: format!("forced by {origin}{}", kind.name()),
        }))
    };
    if let Some(value) = override_
        && let Some(accel) = explicit(value, "--accel ")?
    {
        return Ok(accel);
    }
    if let Some(value) = env
        && let Some(accel) = explicit(value, &format!("{ACCEL_ENV}="))?
    {
        return Ok(accel);
    }
    Ok(detect(probe))
}

/// Detects hardware KVM: a `kvm_intel` or `kvm_amd` module and a `/dev/kvm`
/// that opens read-write. Anything else gives TCG with the reason.
pub fn detect(probe: &HostProbe) -> Accel {
    let hardware: Vec<&str> = ["kvm_intel", "kvm_amd"]
        .into_iter()
        .filter(|m| probe.sys_module.join(m).exists())
        .collect();
    let hint = format!("set {ACCEL_ENV}=kvm to force KVM");
    if hardware.is_empty() {
        if !probe.dev_kvm.exists() {
            return Accel::tcg(format!(
                "no hardware KVM: neither kvm_intel nor kvm_amd is loaded and {} does not exist",
                probe.dev_kvm.display()
            ));
        }
        let others = other_kvm_modules(&probe.sys_module);
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" (loaded: {})", others.join(", "))
        };
        return Accel::tcg(format!(
            "{} exists but neither kvm_intel nor kvm_amd is loaded{others}: a software or nested \
             KVM layer is not trusted because guests hang under it; {hint}",
            probe.dev_kvm.display()
        ));
    }
    match OpenOptions::new()
        .read(true)
        .write(true)
        .open(&probe.dev_kvm)
    {
        Ok(_) => Accel {
            kind: AccelKind::Kvm,
            reason: format!(
                "{} is loaded and {} is usable",
                hardware.join(", "),
                probe.dev_kvm.display()
            ),
        },
        Err(e) => Accel::tcg(format!(
            "{} is loaded but {} cannot be opened read-write ({e}); add yourself to the `kvm` \
             group for hardware acceleration",
            hardware.join(", "),
            probe.dev_kvm.display()
        )),
    }
}

/// Names of other loaded `kvm*` modules (e.g. `kvm`, `kvm_pvm`), sorted.
fn other_kvm_modules(sys_module: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(sys_module)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("kvm"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Fake {
        _dir: tempfile::TempDir,
        probe: HostProbe,
    }

    /// A fake host with the given loaded modules and optionally a `/dev/kvm`.
    fn fake(modules: &[&str], dev_kvm: bool) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let sys_module = dir.path().join("sys/module");
        fs::create_dir_all(&sys_module).unwrap();
        for m in modules {
            fs::create_dir(sys_module.join(m)).unwrap();
        }
        let dev_kvm_path = dir.path().join("dev-kvm");
        if dev_kvm {
            fs::write(&dev_kvm_path, b"").unwrap();
        }
        Fake {
            probe: HostProbe {
                sys_module,
                dev_kvm: dev_kvm_path,
            },
            _dir: dir,
        }
    }

    #[test]
    fn software_kvm_gives_tcg_with_reason() {
        let f = fake(&["kvm", "kvm_pvm"], true);
        let a = detect(&f.probe);
        assert_eq!(a.kind, AccelKind::Tcg);
        assert!(
            a.reason.contains("neither kvm_intel nor kvm_amd"),
            "{}",
            a.reason
        );
        assert!(a.reason.contains("kvm_pvm"), "{}", a.reason);
    }

    #[test]
    fn no_kvm_at_all_gives_tcg() {
        let f = fake(&[], false);
        let a = detect(&f.probe);
        assert_eq!(a.kind, AccelKind::Tcg);
        assert!(a.reason.contains("does not exist"), "{}", a.reason);
    }

    #[test]
    fn hardware_module_and_usable_device_gives_kvm() {
        for module in ["kvm_intel", "kvm_amd"] {
            let f = fake(&["kvm", module], true);
            let a = detect(&f.probe);
            assert_eq!(a.kind, AccelKind::Kvm, "{module}: {}", a.reason);
            assert!(a.reason.contains(module));
        }
    }

    #[test]
    fn hardware_module_without_device_gives_tcg() {
        let f = fake(&["kvm", "kvm_intel"], false);
        let a = detect(&f.probe);
        assert_eq!(a.kind, AccelKind::Tcg);
        assert!(
            a.reason.contains("cannot be opened read-write"),
            "{}",
            a.reason
        );
    }

    #[test]
    fn overrides_win_in_order() {
        let f = fake(&["kvm", "kvm_intel"], true);
        let a = choose_with(Some("tcg"), Some("kvm"), &f.probe).unwrap();
        assert_eq!(a.kind, AccelKind::Tcg);
        assert_eq!(a.reason, "forced by --accel tcg");
        let a = choose_with(None, Some("TCG"), &f.probe).unwrap();
        assert_eq!(a.kind, AccelKind::Tcg);
        assert_eq!(a.reason, "forced by LAB_ACCEL=tcg");
        let sw = fake(&["kvm_pvm"], true);
        let a = choose_with(None, Some("kvm"), &sw.probe).unwrap();
        assert_eq!(a.kind, AccelKind::Kvm);
        let a = choose_with(Some("auto"), Some(""), &sw.probe).unwrap();
        assert_eq!(a.kind, AccelKind::Tcg);
    }

    #[test]
    fn invalid_override_is_an_error() {
        let f = fake(&[], false);
        assert!(matches!(
            choose_with(Some("hvf"), None, &f.probe),
            Err(Error::InvalidAccel(v)) if v == "hvf"
        ));
        assert!(choose_with(None, Some("xen"), &f.probe).is_err());
    }

    #[test]
    fn qemu_args() {
        assert_eq!(Accel::tcg("x").qemu_args(), ["-accel", "tcg"]);
        let kvm = Accel {
            kind: AccelKind::Kvm,
            reason: String::new(),
        };
        assert_eq!(kvm.qemu_args(), ["-accel", "kvm", "-cpu", "host"]);
    }
}
