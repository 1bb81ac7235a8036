//! Compiling the ACPI tables: `acpi/*.asl` (the lab's SSDT) and
//! `acpi/test/*.asl` (variants the VM tests boot with) into `.aml` with iasl.
//! Any error or warning fails the step with iasl's own message.

use crate::exec;
use crate::fsutil::files_with_extension;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::path::{Path, PathBuf};

/// Counts iasl prints on its summary line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Errors.
    pub errors: u32,
    /// Warnings.
    pub warnings: u32,
}

/// Reads iasl's "Compilation successful/failed. N Errors, N Warnings, ..."
/// line. `None` if iasl printed no such line.
pub fn parse_summary(output: &str) -> Option<Summary> {
    let re = Regex::new(r"(\d+) Errors?, (\d+) Warnings?").ok()?;
    let c = re.captures_iter(output).last()?;
    Some(Summary {
        errors: c[1].parse().ok()?,
        warnings: c[2].parse().ok()?,
    })
}

/// The `.asl` files of `src` and of `src/test`, sorted.
pub fn sources(src: &Path) -> Result<Vec<PathBuf>> {
    let files = files_with_extension(&[src.to_path_buf(), src.join("test")], "asl")?;
    if files.is_empty() {
        bail!("no .asl files in {}", src.display());
    }
    Ok(files)
}

/// Compiles every table of `src` into `out/<name>.aml`; returns the paths.
pub fn build(src: &Path, out: &Path, iasl: Option<&Path>) -> Result<Vec<PathBuf>> {
    let iasl = match iasl {
        Some(p) => p.to_path_buf(),
        None => exec::require("iasl")?,
    };
    std::fs::create_dir_all(out)?;
    let mut built = Vec::new();
    for asl in sources(src)? {
        let stem = asl
            .file_stem()
            .context("table file without a name")?
            .to_string_lossy()
            .into_owned();
        let prefix = out.join(&stem);
        let aml = out.join(format!("{stem}.aml"));
        let _ = std::fs::remove_file(&aml);
        let mut iasl_cmd = exec::cmd(&iasl, [Path::new("-p"), &prefix, &asl]);
        let result = exec::captured(&mut iasl_cmd)?;
        let text = result.text();
        let summary = parse_summary(&text);
        let clean = summary.is_some_and(|s| s.errors == 0 && s.warnings == 0);
        if !result.status.success() || !clean || !aml.is_file() {
            let _ = std::fs::remove_file(&aml);
            bail!(
                "iasl did not compile {} cleanly ({}; warnings count as errors here):\n{}",
                asl.display(),
                summary.map_or_else(
                    || "no summary line".to_string(),
                    |s| format!("{} errors, {} warnings", s.errors, s.warnings)
                ),
                text.trim()
            );
        }
        eprintln!("  ssdt: {} -> {}", asl.display(), aml.display());
        built.push(aml);
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_is_parsed() {
        let out = "ASL Input: x.asl\nCompilation successful. 0 Errors, 2 Warnings, 1 Remarks, 5 Optimizations\n";
        assert_eq!(
            parse_summary(out),
            Some(Summary {
                errors: 0,
                warnings: 2
            })
        );
        let out = "Compilation failed. 1 Error, 0 Warnings, 0 Remarks\n";
        assert_eq!(
            parse_summary(out),
            Some(Summary {
                errors: 1,
                warnings: 0
            })
        );
        assert_eq!(parse_summary("nothing"), None);
    }

    /// Runs the real iasl (a host package) on the repository's tables and on
    /// a broken one.
    #[test]
    fn repository_tables_compile_and_broken_ones_fail_with_the_message() {
        let Some(iasl) = exec::which("iasl") else {
            panic!("iasl is required for this test: run `cargo xtask provision`");
        };
        let dir = tempfile::tempdir().unwrap();
        let acpi = Path::new(env!("CARGO_MANIFEST_DIR")).join("../acpi");
        let built = build(&acpi, dir.path(), Some(&iasl)).unwrap();
        assert!(built.iter().any(|p| p.ends_with("ssdt.aml")));
        // Every .aml starts with its signature.
        for aml in &built {
            assert_eq!(
                &std::fs::read(aml).unwrap()[..4],
                b"SSDT",
                "{}",
                aml.display()
            );
        }

        let bad = tempfile::tempdir().unwrap();
        std::fs::write(
            bad.path().join("bad.asl"),
            "DefinitionBlock (\"\", \"SSDT\", 2, \"TEST\", \"BAD\", 1) { Scope (\\_SB) { Device (KBD) { Name (_HID, \"KBD0001\") Name (_UID 1) } } }",
        )
        .unwrap();
        let err = build(bad.path(), dir.path(), Some(&iasl))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.asl"), "{err}");
        assert!(err.contains("rror"), "{err}");
        assert!(!dir.path().join("bad.aml").exists());
    }
}
