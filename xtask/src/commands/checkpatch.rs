//! `cargo xtask checkpatch`: the kernel's own style checker,
//! `scripts/checkpatch.pl --strict` of the pinned kernel source, on every C
//! file of the module directories of kernel/kernels.toml (the C twin, the
//! test-only modules). Any error, warning or check fails it.

use crate::exec::{self, cmd};
use crate::fsutil::files_with_extension;
use crate::host::Host;
use anyhow::{Result, bail};

/// Runs checkpatch on each C source and header; fails naming every file
/// with a finding (checkpatch's own report above says what and where).
pub fn run() -> Result<()> {
    let host = Host::new()?;
    let t = host.provision()?;
    let script = t.kernel_src.join("scripts/checkpatch.pl");
    let dirs = super::module_dirs(&host, &[])?;
    let mut files = files_with_extension(&dirs, "c")?;
    files.extend(files_with_extension(&dirs, "h")?);
    if files.is_empty() {
        bail!("no C file in the module directories of kernel/kernels.toml");
    }
    let mut failed = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&host.repo).unwrap_or(f);
        // --no-tree: a file outside the kernel tree; -f: a file, not a patch.
        let mut c = cmd("perl", [script.as_os_str()]);
        c.args(["--no-tree", "--strict", "--terse", "--show-types", "-f"])
            .arg(rel)
            .current_dir(&host.repo);
        let out = exec::captured(&mut c)?;
        let text = out.text();
        if out.status.success() {
            eprintln!("checkpatch: {}: clean", rel.display());
        } else {
            eprint!("{text}");
            failed.push(rel.display().to_string());
        }
    }
    if !failed.is_empty() {
        bail!(
            "checkpatch --strict found problems in: {}",
            failed.join(", ")
        );
    }
    eprintln!("checkpatch: {} file(s) clean", files.len());
    Ok(())
}
