//! The `kernel` step against the real kernel source: a fragment option that
//! Kconfig drops must stop the build with a message naming it.
//!
//! Needs the host path's artifacts (`$LAB_ARTIFACTS/manifest.json`, written
//! by `cargo xtask build`) for the kernel source and toolchain paths; fails,
//! never skips, without them. The flake's `test` check runs only xtask's unit
//! tests (`--bins`), since the sandbox has neither.

use std::path::PathBuf;
use std::process::Command;

mod common;
use common::lab_artifacts;

/// Paths of the provisioned toolchain, from the artifact manifest.
struct Provisioned {
    kernel_source: PathBuf,
    rust_lib_src: PathBuf,
    bindgen: PathBuf,
    llvm: String,
    tinyconfig_cache: PathBuf,
}

fn provisioned() -> Provisioned {
    let manifest = PathBuf::from(lab_artifacts()).join("manifest.json");
    let text = std::fs::read_to_string(&manifest)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", manifest.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let path = |k: &str| PathBuf::from(v[k].as_str().unwrap_or_else(|| panic!("{k} missing")));
    Provisioned {
        kernel_source: path("kernel_source"),
        rust_lib_src: path("rust_lib_src"),
        bindgen: path("bindgen"),
        llvm: v["llvm"].as_str().unwrap().to_string(),
        tinyconfig_cache: path("tinyconfig_cache"),
    }
}

#[test]
fn an_option_kconfig_drops_fails_the_kernel_step_and_is_named() {
    let p = provisioned();
    let dir = tempfile::tempdir().unwrap();
    // INPUT is off in lab.config, so Kconfig must drop EVDEV, which needs it.
    let extra = dir.path().join("extra.config");
    std::fs::write(&extra, "CONFIG_INPUT_EVDEV=y\n").unwrap();
    let lab = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kernel/lab.config");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("kernel")
        .arg("--src")
        .arg(&p.kernel_source)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--fragment")
        .arg(&lab)
        .arg("--fragment")
        .arg(&extra)
        .arg(format!("--llvm={}", p.llvm))
        .arg("--rust-lib-src")
        .arg(&p.rust_lib_src)
        .arg("--bindgen")
        .arg(&p.bindgen)
        .arg("--tinyconfig-cache")
        .arg(&p.tinyconfig_cache)
        .env("CI", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the step succeeded:\n{stderr}");
    assert!(
        stderr.contains("Kconfig did not keep 1 option(s)")
            && stderr
                .contains("CONFIG_INPUT_EVDEV: wanted y, got n (not set) (dropped by Kconfig)"),
        "unexpected message:\n{stderr}"
    );
    // CONFIG_RUST survived: it is not in the list.
    assert!(!stderr.contains("CONFIG_RUST:"), "{stderr}");
    // It stopped before compiling anything.
    assert!(!dir.path().join("out/bzImage").exists());
}
