//! `cargo xtask provision`.

use crate::host::Host;
use anyhow::Result;

/// Provisions and says what is where.
pub fn run() -> Result<()> {
    let t = Host::new()?.provision()?;
    eprintln!(
        "provisioned: linux-source {} at {}\n  RUST_LIB_SRC={}\n  bindgen {}",
        t.kernel_version,
        t.kernel_src.display(),
        t.rust_lib_src.display(),
        t.bindgen.display()
    );
    Ok(())
}
