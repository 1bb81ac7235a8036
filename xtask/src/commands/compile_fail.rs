//! `cargo xtask compile-fail`: the exercises' compile-fail tests. Every
//! `[[compile_fail]]` directory of kernel/kernels.toml is built against the
//! host path's lab kernel (built if needed), or with `--kdir` one directory
//! against the given tree and tools (what the flake's
//! `checks.compile-fail-<name>` runs); each must fail with exactly its
//! expected rustc error codes and build with `FIXED=1`
//! ([`crate::steps::compile_fail`]).

use super::lab_kernel;
use crate::cli::CompileFailArgs;
use crate::host::Host;
use crate::plan;
use crate::steps::compile_fail::{self, Errors};
use anyhow::{Result, bail};
use std::time::Instant;

/// Checks and reports, one line per directory.
pub fn run(args: &CompileFailArgs) -> Result<()> {
    let start = Instant::now();
    if let (Some(kdir), Some(src), Some(out)) = (&args.kdir, &args.src, &args.out) {
        let errors = compile_fail::check(
            kdir,
            src,
            &args.errors,
            out,
            &args.tools.tools(),
            &out.join("logs"),
        )?;
        report(&src.display().to_string(), &errors);
        return Ok(());
    }
    let host = Host::new()?;
    let mut entries = plan::load_compile_fail(&host.repo)?;
    for name in &args.only {
        if !entries.iter().any(|e| e.name() == name) {
            bail!(
                "no [[compile_fail]] entry named {name:?} in {}",
                plan::KERNELS_FILE
            );
        }
    }
    if !args.only.is_empty() {
        entries.retain(|e| args.only.iter().any(|n| n == e.name()));
    }
    if entries.is_empty() {
        bail!("no [[compile_fail]] entry in {}", plan::KERNELS_FILE);
    }
    let (t, kdir) = lab_kernel(&host, args.tools.jobs)?;
    let tools = host.kernel_tools(&t, args.tools.jobs);
    let logs = host.logs(vm_tests::artifacts::LAB_KERNEL);
    for e in &entries {
        eprintln!("compile-fail: {}: {}", e.name(), e.description);
        let out = host
            .cache
            .builds()
            .join("compile-fail")
            .join(e.dir.replace('/', "-"));
        let errors = compile_fail::check(
            &kdir,
            &host.repo.join(&e.dir),
            &e.errors,
            &out,
            &tools,
            &logs,
        )?;
        report(e.name(), &errors);
    }
    eprintln!(
        "compile-fail: {} director{} failed to build as expected, and built when fixed ({:.1} s)",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One line for a directory that passed, with the compiler's messages.
fn report(name: &str, errors: &Errors) {
    let shown: Vec<String> = errors
        .coded
        .iter()
        .map(|(c, m)| format!("error[{c}]: {m}"))
        .collect();
    println!(
        "compile-fail: {name}: fails as expected ({}); FIXED=1 builds",
        shown.join("; ")
    );
}
