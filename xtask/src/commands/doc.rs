//! `cargo xtask doc`: the module's rustdoc beside the kernel crates' in
//! `<cache>/doc` (against the host path's lab kernel, built if needed), or
//! with `--kdir` against the given tree and tools. Prints the page to open.

use super::{lab_kernel, module_dirs};
use crate::cli::DocArgs;
use crate::host::Host;
use crate::steps::doc;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::time::Instant;

/// The directories of `dirs` that hold Rust sources: rustdoc has nothing
/// to say about a C module (the C twin, the test modules).
fn rust_module_dirs(dirs: Vec<std::path::PathBuf>) -> Result<Vec<std::path::PathBuf>> {
    let mut rust = Vec::new();
    for d in dirs {
        if !crate::fsutil::files_with_extension(std::slice::from_ref(&d), "rs")?.is_empty() {
            rust.push(d);
        }
    }
    if rust.is_empty() {
        bail!("no module directory holds Rust sources");
    }
    Ok(rust)
}

/// Documents and says where.
pub fn run(args: &DocArgs) -> Result<()> {
    let start = Instant::now();
    let (kdir, srcs, tools, out, log_dir) = match &args.kdir {
        Some(kdir) => (
            kdir.clone(),
            args.src.clone(),
            args.tools.tools(),
            args.out.clone().context("--kdir needs --out")?,
            std::env::temp_dir(),
        ),
        None => {
            let host = Host::new()?;
            let (t, kdir) = lab_kernel(&host, args.tools.jobs)?;
            (
                kdir,
                rust_module_dirs(module_dirs(&host, &args.src)?)?,
                host.kernel_tools(&t, args.tools.jobs),
                args.out
                    .clone()
                    .unwrap_or_else(|| host.cache.root.join("doc")),
                host.logs(vm_tests::artifacts::LAB_KERNEL).join("doc"),
            )
        }
    };
    let done = doc::build(&kdir, &srcs, &out, &tools, &log_dir)?;
    let base = std::env::current_dir()?;
    for w in &done.warnings {
        eprintln!("{}\n", w.rendered);
    }
    if !done.warnings.is_empty() {
        eprintln!("doc: rustdoc warned {} time(s):", done.warnings.len());
        for w in &done.warnings {
            eprintln!("  {}", w.summary(&base));
        }
    }
    let mut fatal = 0;
    for check in &done.links {
        let into: Vec<String> = check
            .into
            .iter()
            .map(|(dir, n)| format!("{n} into {dir}/"))
            .collect();
        eprintln!(
            "doc: {}: {} relative links resolve offline ({})",
            check.crate_name,
            check.checked - check.broken.len(),
            into.join(", ")
        );
        // Links into the kernel crate, the module's own pages and sources
        // must resolve. The blanket impls rustdoc lists on the module's
        // types also link to #[doc(hidden)] items of other crates
        // (pin_init's __internal, zerocopy's pointer::invariant), which
        // have no page: those are counted, not errors.
        let own = |b: &doc::Broken| {
            b.into
                .as_deref()
                .is_none_or(|d| d == "kernel" || d == "src" || d == check.crate_name)
        };
        let mut hidden: BTreeMap<&str, usize> = BTreeMap::new();
        for b in &check.broken {
            if own(b) {
                eprintln!("  broken: {}: {}", b.page.display(), b.link);
                fatal += 1;
            } else {
                *hidden
                    .entry(b.into.as_deref().unwrap_or_default())
                    .or_default() += 1;
            }
        }
        if !hidden.is_empty() {
            let list: Vec<String> = hidden.iter().map(|(d, n)| format!("{d}/ {n}")).collect();
            eprintln!(
                "doc: {}: links to #[doc(hidden)] items of other crates (in blanket impls; they have no page): {}",
                check.crate_name,
                list.join(", ")
            );
        }
        if check.links_to("kernel") == 0 {
            bail!(
                "doc: the pages of {} have no link into the kernel crate's docs: rustdoc did not find them beside it",
                check.crate_name
            );
        }
    }
    if fatal > 0 {
        bail!(
            "doc: {fatal} link(s) of the module's pages into the kernel's or its own docs lead nowhere"
        );
    }
    eprintln!(
        "doc: kernel crates {} ({})",
        if done.kernel_rebuilt {
            "documented"
        } else {
            "up to date"
        },
        done.kernel_index.display()
    );
    eprintln!("doc: done in {:.1} s; open:", start.elapsed().as_secs_f64());
    for index in &done.indexes {
        println!("{}", index.display());
    }
    Ok(())
}
