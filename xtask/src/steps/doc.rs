//! The doc step: the kernel crates' rustdoc (the kernel's own
//! `make rustdoc`: core, kernel, macros, pin_init, ...) and the module's
//! beside them in one directory, so that the module's links to `kernel::`
//! items resolve, offline.
//!
//! The module is documented with the very flags kbuild compiled it with:
//! the step builds it (objects in a temporary directory) and turns the
//! rustc command kbuild saved for each Rust object (`.<name>.o.cmd`) into a
//! rustdoc command.

use super::kbuild::{KernelTools, existing};
use super::lint::{self, Finding};
use super::module;
use crate::exec::{self, cmd};
use crate::fsutil::sha256_of;
use anyhow::{Context, Result, bail};
use regex::Regex;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

/// The file that marks a directory as written by this step (`make rustdoc`
/// empties its output directory first: no other directory is handed to it)
/// and records what the kernel's part was made from.
const STAMP: &str = ".lab-doc-stamp";

/// What the doc step wrote.
#[derive(Debug)]
pub struct DocOutput {
    /// `<out>/<crate>/index.html` of every crate of the modules.
    pub indexes: Vec<PathBuf>,
    /// The kernel crate's page.
    pub kernel_index: PathBuf,
    /// Whether the kernel's part was rebuilt (else it was up to date).
    pub kernel_rebuilt: bool,
    /// rustdoc's warnings on the modules.
    pub warnings: Vec<Finding>,
    /// The links of the modules' pages.
    pub links: Vec<LinkCheck>,
}

/// The kernel crates' documentation into `out` (the kernel's
/// `make rustdoc` against the tree `kdir`, skipped when `out` already
/// holds it for this tree and these tools), then that of every module in
/// `srcs` beside it.
pub fn build(
    kdir: &Path,
    srcs: &[PathBuf],
    out: &Path,
    tools: &KernelTools,
    log_dir: &Path,
) -> Result<DocOutput> {
    let kdir = existing(kdir, "kernel build dir")?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let out = out.canonicalize()?;
    let stamp = out.join(STAMP);
    let empty = std::fs::read_dir(&out)?.next().is_none();
    if !empty && !stamp.is_file() {
        bail!(
            "{} is not empty and was not written by the doc step (no {STAMP}): `make rustdoc` empties its output directory, so give an empty or new one",
            out.display()
        );
    }
    let key = kernel_doc_key(&kdir, tools)?;
    let kernel_rebuilt = std::fs::read_to_string(&stamp).ok().as_deref() != Some(&key);
    if kernel_rebuilt {
        let _ = std::fs::remove_file(&stamp);
        kernel_docs(&kdir, &out, tools, log_dir)?;
        // After `make rustdoc`, which removes the whole directory.
        std::fs::write(&stamp, &key)?;
    } else {
        eprintln!("  doc: kernel crates up to date ({})", out.display());
    }
    let kernel_index = out.join("kernel/index.html");
    if !kernel_index.is_file() {
        bail!("make rustdoc wrote no {}", kernel_index.display());
    }
    let workaround = abi_workaround(&kdir);
    let mut indexes = Vec::new();
    let mut warnings = Vec::new();
    let mut links = Vec::new();
    for src in srcs {
        let src = existing(src, "module source")?;
        let work = tempfile::Builder::new()
            .prefix("rust-kbd-lab-doc-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        // The checkout's own directory, not the copy a module build
        // compiles (module::build): rustdoc's warnings name its files.
        let objdir = work.path();
        let name = module::dir_name(&src);
        exec::run_logged(
            &mut module::make_modules(&kdir, &src, objdir, tools),
            &format!("doc: build {name}/"),
            &log_dir.join(format!("doc-build-{name}.log")),
        )?;
        for saved in rust_objects(objdir)? {
            let krate = saved.crate_name.clone();
            for stale in [out.join(&krate), out.join("src").join(&krate)] {
                let _ = std::fs::remove_dir_all(stale);
            }
            let mut c = saved.rustdoc_command(&src, &out, workaround.as_deref())?;
            c.current_dir(objdir);
            let title = format!("doc: rustdoc {krate}");
            eprintln!("  {title} ...");
            let done = exec::captured(&mut c)?;
            let found = lint::diagnostics(&done.stderr, "rustdoc");
            if !done.status.success() {
                bail!(
                    "rustdoc failed on {} ({}):\n{}\ncommand: {}",
                    saved.source.display(),
                    done.status,
                    done.text(),
                    exec::display(&c)
                );
            }
            warnings.extend(found);
            let index = out.join(&krate).join("index.html");
            if !index.is_file() {
                bail!("rustdoc wrote no {}", index.display());
            }
            links.push(check_links(&out, &krate)?);
            indexes.push(index);
        }
    }
    Ok(DocOutput {
        indexes,
        kernel_index,
        kernel_rebuilt,
        warnings,
        links,
    })
}

/// What the kernel crates' documentation depends on: the tree, the
/// kernel crate it built and the tools.
fn kernel_doc_key(kdir: &Path, tools: &KernelTools) -> Result<String> {
    let rmeta = kdir.join("rust/libkernel.rmeta");
    let meta = std::fs::metadata(&rmeta).with_context(|| {
        format!(
            "{} does not exist: {} is not a built Rust-enabled kernel tree",
            rmeta.display(),
            kdir.display()
        )
    })?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Ok(sha256_of([
        kdir.display().to_string(),
        format!("{modified} {}", meta.len()),
        tools.identity(),
    ]))
}

/// The kernel's `make rustdoc`, run as the kernel step runs make (from the
/// tree's source with `O=`, the same variables, so nothing of the tree is
/// rebuilt), with its output directory moved to `out`. It writes only
/// `.rustdoc-*.cmd` files into the tree.
fn kernel_docs(kdir: &Path, out: &Path, tools: &KernelTools, log_dir: &Path) -> Result<()> {
    let source = existing(&kdir.join("source"), "the kernel tree's source link")?;
    let mut c = tools.make(&source, &[]);
    c.arg(format!("O={}", kdir.display()))
        .arg(format!("-j{}", tools.jobs.max(1)))
        .arg("rustdoc")
        .arg(format!("rustdoc_output={}", out.display()));
    exec::run_logged(
        &mut c,
        "doc: make rustdoc (the kernel crates: core, kernel, macros, pin_init...; about 2 min on 2 cores)",
        &log_dir.join("doc-kernel.log"),
    )?;
    Ok(())
}

/// The `-Cunsafe-allow-abi-mismatch=...` flag of the kernel's own rustdoc
/// commands (`rustdoc_modifiers_workaround` of rust/Makefile), which the
/// module needs as the kernel crate did; `None` if the kernel uses none.
fn abi_workaround(kdir: &Path) -> Option<String> {
    let saved = std::fs::read_to_string(kdir.join(".rustdoc-kernel.cmd")).ok()?;
    saved
        .split_whitespace()
        .find(|w| w.starts_with("-Cunsafe-allow-abi-mismatch="))
        .map(str::to_owned)
}

/// A Rust object's compile command as kbuild saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCommand {
    /// The crate: the source file's stem, as rustc names it.
    pub crate_name: String,
    /// The crate root.
    pub source: PathBuf,
    /// Environment assignments before the program (`OBJTREE=...`).
    pub env: Vec<(String, String)>,
    /// The compiler (rustc or clippy-driver).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

static SAVED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^savedcmd_\S+\.o := (.*)$").expect("valid regex"));
static SOURCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^source_\S+\.o := (\S+\.rs)$").expect("valid regex"));

impl SavedCommand {
    /// Parses a kbuild `.<name>.o.cmd` file; `None` unless it compiled a
    /// `.rs` file.
    pub fn parse(text: &str) -> Result<Option<Self>> {
        let (Some(saved), Some(source)) = (SAVED.captures(text), SOURCE.captures(text)) else {
            return Ok(None);
        };
        let source = PathBuf::from(&source[1]);
        let mut words =
            shlex::split(&saved[1]).context("kbuild's saved command does not parse as shell")?;
        // The compile command ends where kbuild chains objtool with `;`.
        if let Some(end) = words.iter().position(|w| w == ";") {
            words.truncate(end);
        }
        let mut words = words.into_iter();
        let mut env = Vec::new();
        let program = loop {
            let Some(w) = words.next() else {
                bail!("kbuild's saved command has no program");
            };
            match w.split_once('=') {
                Some((k, v)) if !k.starts_with('-') && !k.contains('/') => {
                    env.push((k.to_owned(), v.to_owned()));
                }
                _ => break PathBuf::from(w),
            }
        };
        let crate_name = source
            .file_stem()
            .map(|s| s.to_string_lossy().replace('-', "_"))
            .context("the saved command's source has no name")?;
        Ok(Some(Self {
            crate_name,
            source,
            env,
            program,
            args: words.collect(),
        }))
    }

    /// The rustdoc command for this crate into `out`: rustdoc beside the
    /// compiler, the compile flags without those that only concern the
    /// object (`--emit`, `--out-dir`) or rustdoc refuses
    /// (`--remap-path-scope`, which the kernel filters out of its own
    /// rustdoc commands too) and without the remapping of the module's
    /// directory `src` (so that warnings name the real files), plus the
    /// private items (a driver has little else) and the kernel's ABI
    /// workaround flag.
    pub fn rustdoc_command(
        &self,
        src: &Path,
        out: &Path,
        workaround: Option<&str>,
    ) -> Result<std::process::Command> {
        let dir = self.program.parent().unwrap_or(Path::new(""));
        let rustdoc = dir.join("rustdoc");
        let own_remap = format!("--remap-path-prefix={}/", src.display());
        let mut args = Vec::new();
        let mut words = self.args.iter();
        while let Some(w) = words.next() {
            if w == "--out-dir" || w == "-o" || w == "--emit" {
                words.next();
            } else if !(w.starts_with("--emit=")
                || w.starts_with("--out-dir=")
                || w.starts_with("--remap-path-scope")
                || w.starts_with(&own_remap))
            {
                args.push(w.clone());
            }
        }
        let mut c = cmd(&rustdoc, &args);
        c.envs(self.env.iter().map(|(k, v)| (k, v)))
            // What the kernel's Makefile exports for its compilers.
            .env("RUSTC_BOOTSTRAP", "1")
            .arg("--crate-name")
            .arg(&self.crate_name)
            .arg("--output")
            .arg(out)
            .args([
                "--document-private-items",
                // Links from documented private items to other private
                // items are fine here (everything is documented).
                "-Arustdoc::private_intra_doc_links",
                "-Zunstable-options",
                "--generate-link-to-definition",
            ]);
        if let Some(flag) = workaround {
            c.arg(flag);
        }
        Ok(c)
    }
}

/// The Rust objects kbuild compiled in `objdir`, from its saved commands.
fn rust_objects(objdir: &Path) -> Result<Vec<SavedCommand>> {
    let mut found = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(objdir)
        .with_context(|| format!("cannot read {}", objdir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with('.') && n.ends_with(".o.cmd") && !n.ends_with(".mod.o.cmd")
            })
        })
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path)?;
        if let Some(saved) =
            SavedCommand::parse(&text).with_context(|| format!("in {}", path.display()))?
        {
            found.push(saved);
        }
    }
    if found.is_empty() {
        bail!(
            "the module build in {} compiled no Rust object",
            objdir.display()
        );
    }
    Ok(found)
}

/// The relative links of one crate's pages, checked against the files of
/// the documentation directory.
#[derive(Debug, Default)]
pub struct LinkCheck {
    /// The crate.
    pub crate_name: String,
    /// Relative links checked.
    pub checked: usize,
    /// Links per top directory they lead to (`kernel`, `core`, `src`...).
    pub into: BTreeMap<String, usize>,
    /// Links whose file does not exist: the page, the link and the top
    /// directory it leads to.
    pub broken: Vec<Broken>,
}

/// A link whose file does not exist.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Broken {
    /// The top directory it leads to (the crate), if inside the root.
    pub into: Option<String>,
    /// The page it is on.
    pub page: PathBuf,
    /// The link.
    pub link: String,
}

impl LinkCheck {
    /// Links into the documentation of crate `name`.
    pub fn links_to(&self, name: &str) -> usize {
        self.into.get(name).copied().unwrap_or(0)
    }
}

static HREF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"href="([^"]*)""#).expect("valid regex"));

/// Checks every relative link of the pages of `crate_name` in the
/// documentation directory `root` (the pages of the crate and of its
/// sources): the file it names must exist below `root`, so the pages work
/// offline. Fragments (`#method.x`) are not checked.
pub fn check_links(root: &Path, crate_name: &str) -> Result<LinkCheck> {
    let mut check = LinkCheck {
        crate_name: crate_name.to_owned(),
        ..LinkCheck::default()
    };
    let mut dirs = vec![root.join(crate_name), root.join("src").join(crate_name)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let page = entry?.path();
            if page.is_dir() {
                dirs.push(page);
                continue;
            }
            if page.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let html = std::fs::read_to_string(&page)?;
            for href in HREF.captures_iter(&html) {
                let link = &href[1];
                let Some(target) = resolve(&page, link) else {
                    continue;
                };
                check.checked += 1;
                let top = target
                    .strip_prefix(root)
                    .ok()
                    .and_then(|rel| rel.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                if target.exists() && top.is_some() {
                    *check.into.entry(top.unwrap_or_default()).or_default() += 1;
                } else {
                    check.broken.push(Broken {
                        into: top,
                        page: page.clone(),
                        link: link.to_owned(),
                    });
                }
            }
        }
    }
    check.broken.sort();
    Ok(check)
}

/// The file a relative link of `page` names; `None` for links that are
/// not relative file links (`https:`, `#anchor`, `javascript:`, `/abs`,
/// the `${f}` of a script's template).
fn resolve(page: &Path, link: &str) -> Option<PathBuf> {
    let path = link.split(['#', '?']).next().unwrap_or_default();
    if path.is_empty() || path.starts_with('/') || path.contains(':') || path.contains("${") {
        return None;
    }
    let mut target = page.parent()?.to_path_buf();
    for part in Path::new(path).components() {
        match part {
            Component::ParentDir => {
                target.pop();
            }
            Component::Normal(p) => target.push(p),
            _ => {}
        }
    }
    Some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED_CMD: &str = "savedcmd_rust_keyboard.o := OBJTREE=/k/build RUST_MODFILE=./rust_keyboard /tc/bin/rustc --edition=2021 -Wclippy::all --remap-path-prefix=/src/module/= --remap-path-scope=macro --remap-path-prefix=/rs/library=/ --cfg MODULE @/k/build/include/generated/rustc_cfg -Zcrate-attr=no_std -Zcrate-attr='feature(arbitrary_self_types,asm_goto)' -Zunstable-options --extern kernel --crate-type rlib -L /k/build/rust/ --sysroot=/dev/null --out-dir ./ --emit=dep-info=./.rust_keyboard.o.d --emit=obj=rust_keyboard.o /src/module/rust_keyboard.rs   ; /k/build/tools/objtool/objtool --link --module rust_keyboard.o

source_rust_keyboard.o := /src/module/rust_keyboard.rs

deps_rust_keyboard.o := \\
";

    #[test]
    fn a_saved_rust_command_becomes_a_rustdoc_command() {
        let saved = SavedCommand::parse(SAVED_CMD).unwrap().unwrap();
        assert_eq!(saved.crate_name, "rust_keyboard");
        assert_eq!(saved.program, PathBuf::from("/tc/bin/rustc"));
        assert_eq!(
            saved.env,
            [
                ("OBJTREE".to_owned(), "/k/build".to_owned()),
                ("RUST_MODFILE".to_owned(), "./rust_keyboard".to_owned())
            ]
        );
        assert!(
            saved
                .args
                .contains(&"-Zcrate-attr=feature(arbitrary_self_types,asm_goto)".to_owned())
        );
        assert!(!saved.args.iter().any(|a| a.contains("objtool")));
        let c = saved
            .rustdoc_command(
                Path::new("/src/module"),
                Path::new("/doc"),
                Some("-Cunsafe-allow-abi-mismatch=fixed-x18"),
            )
            .unwrap();
        assert_eq!(c.get_program(), "/tc/bin/rustdoc");
        let args: Vec<String> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for gone in [
            "--out-dir",
            "./",
            "--emit=obj=rust_keyboard.o",
            "--remap-path-scope=macro",
            "--remap-path-prefix=/src/module/=",
        ] {
            assert!(!args.iter().any(|a| a == gone), "{gone} in {args:?}");
        }
        for kept in [
            "--remap-path-prefix=/rs/library=/",
            "--extern",
            "kernel",
            "@/k/build/include/generated/rustc_cfg",
            "/src/module/rust_keyboard.rs",
            "--document-private-items",
            "-Cunsafe-allow-abi-mismatch=fixed-x18",
        ] {
            assert!(args.iter().any(|a| a == kept), "{kept} not in {args:?}");
        }
        let out = args.iter().position(|a| a == "--output").unwrap();
        assert_eq!(args[out + 1], "/doc");
        assert!(
            c.get_envs()
                .any(|(k, v)| k == "RUSTC_BOOTSTRAP" && v == Some("1".as_ref()))
        );
    }

    #[test]
    fn c_objects_are_not_rust_crates() {
        let c = "savedcmd_x.o := clang -c -o x.o x.c\n\nsource_x.o := x.c\n";
        assert_eq!(SavedCommand::parse(c).unwrap(), None);
    }

    #[test]
    fn links_are_checked_against_the_files() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for dir in ["m", "kernel/irq", "src/m"] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
        }
        std::fs::write(r.join("kernel/irq/struct.Registration.html"), "").unwrap();
        std::fs::write(
            r.join("src/m/m.rs.html"),
            r#"<a href="../../m/index.html">"#,
        )
        .unwrap();
        std::fs::write(
            r.join("m/index.html"),
            r##"<a href="../kernel/irq/struct.Registration.html#method.new">x</a>
               <a href="../kernel/irq/struct.Gone.html">y</a>
               <a href="https://example.org/">z</a> <a href="#top">t</a>
               <a href="../static.files/${f}">js</a>
               <a href="../src/m/m.rs.html#1">s</a>"##,
        )
        .unwrap();
        let check = check_links(r, "m").unwrap();
        assert_eq!(check.checked, 4);
        assert_eq!(check.links_to("kernel"), 1);
        assert_eq!(check.links_to("src"), 1);
        assert_eq!(check.links_to("m"), 1);
        assert_eq!(
            check.broken,
            [Broken {
                into: Some("kernel".into()),
                page: r.join("m/index.html"),
                link: "../kernel/irq/struct.Gone.html".to_owned()
            }]
        );
    }
}
