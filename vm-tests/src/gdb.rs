//! gdb on the kernel of a running VM: the one gdb command line, which
//! `cargo xtask gdb` runs on the terminal and the VM tests run in batch mode
//! ([`BatchGdb`]).
//!
//! QEMU's gdb stub ([`VmConfig::with_gdb_stub`](crate::VmConfig::with_gdb_stub))
//! listens on `gdb.sock` in the VM's runtime directory. [`GdbCommand`]
//! starts gdb with
//! * the kernel's `vmlinux`, which needs debug info: the `debug` kernel of
//!   `kernel/kernels.toml` has it (`kernel/debug.config`: DWARF 5 and
//!   `CONFIG_GDB_SCRIPTS`), the lab kernel has none ([`DebugKernel`] says so);
//! * `set auto-load safe-path <O= tree>` before vmlinux is read: gdb loads
//!   the kernel's gdb scripts (`vmlinux-gdb.py` beside vmlinux: `lx-symbols`,
//!   `lx-dmesg`, `lx-ps`, ...) and no other auto-load script;
//! * `target remote <gdb.sock>` (gdb reaches a unix socket by its path);
//! * `lx-symbols <module directory>`: the symbols of every loaded module at
//!   its load address, read from the `.ko` files of that directory, which
//!   carry debug info when built against the debug kernel (the artifact
//!   directory of that kernel). `lx-symbols` also scans gdb's current
//!   directory recursively, so gdb runs in the module directory. It also
//!   arms a breakpoint on `do_init_module`, so a module loaded later gets
//!   its symbols too.
//!
//! A VM that waits before its first instruction (`-S`) has no module list
//! in memory yet: [`GdbCommand::at_reset`] first runs it to `start_kernel`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use regex::Regex;

use crate::artifacts::{self, Artifacts};
use crate::qemu::kill_with_parent;
use crate::wait::{PAUSE, retry};
use crate::{Error, Result};

/// The gdb program, looked up on `PATH`.
pub const GDB: &str = "gdb";
/// The Debian package of gdb, for messages.
pub const GDB_PACKAGE: &str = "gdb";
/// The kernel's gdb scripts, beside vmlinux in the `O=` tree.
pub const GDB_SCRIPTS: &str = "vmlinux-gdb.py";
/// The kernel of `kernel/kernels.toml` that carries debug info.
pub const DEBUG_KERNEL: &str = "debug";

/// The linkage (mangled) name of the function whose demangled name is
/// `demangled` in the object file `object` (e.g. a `.ko`), for a gdb
/// breakpoint: gdb does not parse Rust's `<T as Trait>::f` names, but takes
/// a linkage name (`break *_RNvXs3_...6handle` stops at the function's
/// first instruction). Read with binutils' `nm`, which demangles Rust's v0
/// names; [`Error::Parse`] when no or more than one symbol has that name.
pub fn function_symbol(object: &Path, demangled: &str) -> Result<String> {
    let nm = |demangle: bool| -> Result<String> {
        let mut c = Command::new("nm");
        c.arg("--defined-only").arg("-p");
        if demangle {
            c.arg("-C");
        }
        let out = c.arg(object).output().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ToolMissing {
                    tool: "nm".into(),
                    package: "binutils".into(),
                }
            } else {
                Error::io(format!("running nm on {}", object.display()), e)
            }
        })?;
        if !out.status.success() {
            return Err(Error::Parse {
                what: "the symbols of an object file",
                message: format!(
                    "nm {} failed: {}",
                    object.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    pick_symbol(&nm(false)?, &nm(true)?, demangled).map_err(|message| Error::Parse {
        what: "the symbols of an object file",
        message: format!("{}: {message}", object.display()),
    })
}

/// The mangled name of the one function symbol named `demangled`, from the
/// output of `nm -p` (`mangled`) and `nm -p -C` (`demangled_list`) of the
/// same file: both list the symbol table in its order, one line each.
fn pick_symbol(
    mangled: &str,
    demangled_list: &str,
    demangled: &str,
) -> std::result::Result<String, String> {
    let (m, d): (Vec<&str>, Vec<&str>) =
        (mangled.lines().collect(), demangled_list.lines().collect());
    if m.len() != d.len() {
        return Err(format!(
            "nm listed {} symbols mangled and {} demangled",
            m.len(),
            d.len()
        ));
    }
    // `ADDRESS TYPE NAME`, the name possibly with spaces once demangled.
    let fields = |line: &str| -> Option<(char, String)> {
        let mut it = line.splitn(3, ' ');
        let (_, kind, name) = (it.next()?, it.next()?, it.next()?);
        Some((kind.chars().next()?, name.to_owned()))
    };
    let found: Vec<String> = m
        .iter()
        .zip(&d)
        .filter_map(|(m, d)| {
            let (kind, name) = fields(d)?;
            let function = matches!(kind, 'T' | 't' | 'W' | 'w');
            (function && name == demangled).then(|| fields(m).map(|(_, n)| n))?
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!("no function named {demangled}")),
        many => Err(format!(
            "{} functions named {demangled}: {many:?}",
            many.len()
        )),
    }
}

/// gdb on `PATH`, or [`Error::ToolMissing`].
pub fn find_gdb() -> Result<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(GDB))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| Error::ToolMissing {
            tool: GDB.into(),
            package: GDB_PACKAGE.into(),
        })
}

/// A kernel gdb can debug: its `O=` tree with `vmlinux` (debug info in it)
/// and the kernel's gdb scripts, and a directory of its modules' `.ko`
/// files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugKernel {
    name: String,
    tree: PathBuf,
    modules: PathBuf,
}

impl DebugKernel {
    /// The kernel `name` built in the `O=` tree `tree`, its modules in
    /// `modules`. Fails with [`Error::NoDebugInfo`], saying what is missing
    /// and how to get it: no tree or no vmlinux (not built on this host),
    /// a `.config` without `CONFIG_DEBUG_INFO` (the lab kernel), no
    /// `vmlinux-gdb.py` (no `CONFIG_GDB_SCRIPTS`).
    pub fn new(name: &str, tree: impl Into<PathBuf>, modules: impl Into<PathBuf>) -> Result<Self> {
        let tree = tree.into();
        let fix = format!(
            "gdb needs the {DEBUG_KERNEL} kernel: `cargo xtask build --kernel {DEBUG_KERNEL}`, then \
             `cargo xtask vm --kernel {DEBUG_KERNEL} --gdb`"
        );
        let config = tree.join(".config");
        let Ok(config_text) = std::fs::read_to_string(&config) else {
            return Err(Error::NoDebugInfo(format!(
                "no build tree of the {name} kernel at {} (no .config): it was not built on this \
                 host; {fix}",
                tree.display()
            )));
        };
        if !has_debug_info(&config_text) {
            return Err(Error::NoDebugInfo(format!(
                "the {name} kernel has no debug info (CONFIG_DEBUG_INFO is not set in {}), so gdb \
                 would know no function, variable or line: {fix}",
                config.display()
            )));
        }
        let kernel = DebugKernel {
            name: name.to_owned(),
            tree,
            modules: modules.into(),
        };
        for (file, why) in [
            (kernel.vmlinux(), "the kernel build did not finish"),
            (
                kernel.tree.join(GDB_SCRIPTS),
                "the kernel has no CONFIG_GDB_SCRIPTS",
            ),
        ] {
            if !file.is_file() {
                return Err(Error::NoDebugInfo(format!(
                    "{} is missing ({why}): {fix}",
                    file.display()
                )));
            }
        }
        if !kernel.modules.is_dir() {
            return Err(Error::NoDebugInfo(format!(
                "no module directory {} for lx-symbols: run `cargo xtask build --kernel {name}`",
                kernel.modules.display()
            )));
        }
        Ok(kernel)
    }

    /// The kernel `name` of an artifact directory: its `O=` tree
    /// ([`artifacts::find_kernel_tree`]: `$LAB_KERNEL_TREE_<NAME>`, else the
    /// host build's in the cache, the version from the manifest) and its
    /// modules in the artifact directory.
    pub fn of_artifacts(artifacts: &Artifacts, name: &str) -> Result<Self> {
        let tree = artifacts::find_kernel_tree(
            &artifacts::cache_dir(),
            &artifacts.kernel_version()?,
            name,
        );
        Self::new(name, tree, artifacts.layout().kernel_dir(name))
    }

    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `O=` tree.
    pub fn tree(&self) -> &Path {
        &self.tree
    }

    /// `vmlinux`.
    pub fn vmlinux(&self) -> PathBuf {
        self.tree.join("vmlinux")
    }

    /// The directory of the modules' `.ko` files.
    pub fn modules(&self) -> &Path {
        &self.modules
    }
}

/// Whether a kernel `.config` turns debug info on.
fn has_debug_info(config: &str) -> bool {
    config.lines().any(|l| l.trim() == "CONFIG_DEBUG_INFO=y")
}

/// The gdb command line (see the module documentation).
#[derive(Debug, Clone)]
pub struct GdbCommand {
    gdb: PathBuf,
    kernel: DebugKernel,
    socket: PathBuf,
    at_reset: bool,
    init_files: bool,
    index_cache: Option<PathBuf>,
    extra: Vec<OsString>,
}

impl GdbCommand {
    /// gdb (`gdb` on `PATH`) on `kernel` through the stub at `socket`, the
    /// kernel already running, the user's gdb init files read.
    pub fn new(kernel: &DebugKernel, socket: &Path) -> Self {
        GdbCommand {
            gdb: PathBuf::from(GDB),
            kernel: kernel.clone(),
            socket: socket.to_owned(),
            at_reset: false,
            init_files: true,
            index_cache: None,
            extra: Vec::new(),
        }
    }

    /// Uses this gdb binary.
    pub fn with_gdb(mut self, gdb: impl Into<PathBuf>) -> Self {
        self.gdb = gdb.into();
        self
    }

    /// The VM waits before its first instruction: gdb runs it to
    /// `start_kernel` (a temporary breakpoint) before `lx-symbols`.
    pub fn at_reset(mut self) -> Self {
        self.at_reset = true;
        self
    }

    /// Reads no gdb init file (`-nx`): what a test wants, for the same
    /// behaviour on every machine.
    pub fn without_init_files(mut self) -> Self {
        self.init_files = false;
        self
    }

    /// Keeps gdb's index of the DWARF of vmlinux and the modules in `dir`
    /// (`set index-cache`): the next gdb on the same build skips indexing.
    pub fn with_index_cache(mut self, dir: impl Into<PathBuf>) -> Self {
        self.index_cache = Some(dir.into());
        self
    }

    /// Adds gdb arguments after the lab's (e.g. `-batch -ex 'bt'`).
    pub fn with_args(mut self, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// The kernel.
    pub fn kernel(&self) -> &DebugKernel {
        &self.kernel
    }

    /// The arguments (without the program), in this order: options read
    /// before vmlinux (`-iex`), vmlinux, the attach commands (`-ex`), then
    /// the added arguments.
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-q".into()];
        if !self.init_files {
            a.push("-nx".into());
        }
        let iex = |a: &mut Vec<OsString>, command: String| {
            a.push("-iex".into());
            a.push(command.into());
        };
        iex(
            &mut a,
            format!("set auto-load safe-path {}", self.kernel.tree.display()),
        );
        if let Some(dir) = &self.index_cache {
            iex(
                &mut a,
                format!("set index-cache directory {}", dir.display()),
            );
            iex(&mut a, "set index-cache enabled on".into());
        }
        a.push(self.kernel.vmlinux().into());
        let mut ex = vec![format!("target remote {}", self.socket.display())];
        if self.at_reset {
            ex.push("tbreak start_kernel".into());
            ex.push("continue".into());
        }
        ex.push(format!("lx-symbols {}", self.kernel.modules.display()));
        for command in ex {
            a.push("-ex".into());
            a.push(command.into());
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The command: the program, [`GdbCommand::args`], and the module
    /// directory as the current directory. Stdio is left as inherited.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.gdb);
        c.args(self.args()).current_dir(&self.kernel.modules);
        c
    }

    /// The command line as one shell-like string, for messages.
    pub fn command_line(&self) -> String {
        std::iter::once(self.gdb.clone().into_os_string())
            .chain(self.args())
            .map(|a| crate::qemu::shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// gdb running [`GdbCommand`] in batch mode (`-batch`, one `-ex` per
/// command), its stdout and stderr read into one text as they come. gdb is
/// killed when this is dropped, and dies with the thread that spawned it.
pub struct BatchGdb {
    child: Option<Child>,
    output: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
    cursor: usize,
    status: Option<ExitStatus>,
}

impl BatchGdb {
    /// Starts `command` with `-batch` and `commands` after the lab's attach
    /// commands; gdb exits after the last one.
    pub fn spawn(command: &GdbCommand, commands: &[&str]) -> Result<BatchGdb> {
        let mut args = vec![OsString::from("-batch")];
        for c in commands {
            args.push("-ex".into());
            args.push((*c).into());
        }
        let mut c = command.clone().with_args(args).command();
        let (reader, writer) =
            std::io::pipe().map_err(|e| Error::io("creating a pipe for gdb's output", e))?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| Error::io("cloning gdb's output pipe", e))?;
        c.stdin(Stdio::null()).stdout(writer).stderr(writer2);
        kill_with_parent(&mut c);
        let child = c.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::ToolMissing {
                    tool: command.gdb.display().to_string(),
                    package: GDB_PACKAGE.into(),
                }
            } else {
                Error::io(format!("starting {}", command.gdb.display()), e)
            }
        })?;
        // `c` holds the pipe's write ends: without dropping it the reader
        // would never see the end of gdb's output.
        drop(c);
        let output = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&output);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        Ok(BatchGdb {
            child: Some(child),
            output,
            reader: Some(reader),
            cursor: 0,
            status: None,
        })
    }

    /// Everything gdb printed so far.
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a line gdb printed matches `regex` and returns it. Lines
    /// are consumed: the search starts after the line matched by the
    /// previous call. Fails if gdb exits first or after `timeout`.
    pub fn wait_for_line(&mut self, regex: &str, timeout: Duration) -> Result<String> {
        let re = Regex::new(regex)?;
        let found = retry(
            self,
            Instant::now() + timeout,
            |_| std::thread::sleep(PAUSE),
            |g| {
                let text = g.output();
                let mut at = g.cursor;
                for line in text[g.cursor..].split_inclusive('\n') {
                    at += line.len();
                    let Some(line) = line.strip_suffix('\n') else {
                        break;
                    };
                    if re.is_match(line) {
                        g.cursor = at;
                        return Ok(Ok(line.to_owned()));
                    }
                }
                if let Some(status) = g.try_status()? {
                    // Its last lines may have come after the check above.
                    let rest = g.output()[g.cursor..].to_owned();
                    if g.reader_done() && !rest.lines().any(|l| re.is_match(l)) {
                        return Err(g.error(format!(
                            "gdb exited ({status}) before printing a line matching /{regex}/"
                        )));
                    }
                }
                Ok(Err(()))
            },
        )?;
        found.map_err(|()| {
            self.error(format!(
                "timed out after {:.1} s waiting for a line matching /{regex}/",
                timeout.as_secs_f64()
            ))
        })
    }

    /// Waits up to `timeout` for gdb to exit and returns its status and all
    /// its output; kills it (and fails) when it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<(ExitStatus, String)> {
        let exited = retry(
            self,
            Instant::now() + timeout,
            |_| std::thread::sleep(PAUSE),
            |g| Ok::<_, Error>(g.try_status()?.ok_or(())),
        )?;
        match exited {
            Ok(status) => {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                Ok((status, self.output()))
            }
            Err(()) => {
                self.kill();
                Err(self.error(format!(
                    "did not exit within {:.1} s (killed)",
                    timeout.as_secs_f64()
                )))
            }
        }
    }

    /// Kills gdb (if it still runs) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status.get_or_insert(status);
            }
        }
    }

    /// gdb's exit status once it has exited.
    fn try_status(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let Some(child) = self.child.as_mut() else {
            return Ok(self.status);
        };
        let status = child
            .try_wait()
            .map_err(|e| Error::io("waiting for gdb", e))?;
        if let Some(status) = status {
            self.status = Some(status);
            self.child = None;
        }
        Ok(status)
    }

    /// Whether the output reader has seen the end of gdb's output.
    fn reader_done(&self) -> bool {
        self.reader.as_ref().is_none_or(JoinHandle::is_finished)
    }

    fn error(&self, message: String) -> Error {
        Error::Gdb {
            message,
            output: crate::console::quote(self.output().lines()),
        }
    }
}

impl Drop for BatchGdb {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake O= tree: `.config` with or without debug info, vmlinux and
    /// the gdb scripts if asked for.
    fn tree(config: &str, files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".config"), config).unwrap();
        for f in files {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        dir
    }

    #[test]
    fn a_kernel_without_debug_info_is_refused_with_the_fix() {
        let modules = tempfile::tempdir().unwrap();
        let lab = tree(
            "CONFIG_DEBUG_INFO_NONE=y\n# CONFIG_DEBUG_INFO_DWARF5 is not set\n",
            &["vmlinux"],
        );
        let err = DebugKernel::new("lab", lab.path(), modules.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("the lab kernel has no debug info"), "{err}");
        assert!(err.contains("cargo xtask vm --kernel debug --gdb"), "{err}");

        let none = DebugKernel::new("debug", "/nonexistent/tree", modules.path())
            .unwrap_err()
            .to_string();
        assert!(none.contains("not built on this host"), "{none}");

        let debug = "CONFIG_DEBUG_INFO=y\nCONFIG_DEBUG_INFO_DWARF5=y\nCONFIG_GDB_SCRIPTS=y\n";
        let no_scripts = tree(debug, &["vmlinux"]);
        let err = DebugKernel::new("debug", no_scripts.path(), modules.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("vmlinux-gdb.py is missing"), "{err}");

        let full = tree(debug, &["vmlinux", "vmlinux-gdb.py"]);
        let k = DebugKernel::new("debug", full.path(), modules.path()).unwrap();
        assert_eq!(k.vmlinux(), full.path().join("vmlinux"));
        assert!(DebugKernel::new("debug", full.path(), "/nonexistent/modules").is_err());
    }

    #[test]
    fn the_command_line() {
        let k = DebugKernel {
            name: "debug".into(),
            tree: "/c/build/kernel-7.2-debug/build".into(),
            modules: "/c/artifacts/debug".into(),
        };
        let args = |c: &GdbCommand| -> Vec<String> {
            c.args()
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        let c = GdbCommand::new(&k, Path::new("/run/vm/gdb.sock"));
        assert_eq!(
            args(&c),
            [
                "-q",
                "-iex",
                "set auto-load safe-path /c/build/kernel-7.2-debug/build",
                "/c/build/kernel-7.2-debug/build/vmlinux",
                "-ex",
                "target remote /run/vm/gdb.sock",
                "-ex",
                "lx-symbols /c/artifacts/debug",
            ]
        );
        assert_eq!(
            c.command().get_current_dir(),
            Some(Path::new("/c/artifacts/debug"))
        );
        let c = c
            .at_reset()
            .without_init_files()
            .with_index_cache("/c/gdb-index")
            .with_args(["-batch", "-ex", "bt"]);
        assert_eq!(
            args(&c),
            [
                "-q",
                "-nx",
                "-iex",
                "set auto-load safe-path /c/build/kernel-7.2-debug/build",
                "-iex",
                "set index-cache directory /c/gdb-index",
                "-iex",
                "set index-cache enabled on",
                "/c/build/kernel-7.2-debug/build/vmlinux",
                "-ex",
                "target remote /run/vm/gdb.sock",
                "-ex",
                "tbreak start_kernel",
                "-ex",
                "continue",
                "-ex",
                "lx-symbols /c/artifacts/debug",
                "-batch",
                "-ex",
                "bt",
            ]
        );
        assert!(
            c.command_line()
                .starts_with("gdb -q -nx -iex 'set auto-load safe-path "),
            "{}",
            c.command_line()
        );
    }

    /// A stand-in for gdb: prints its arguments, one per line, then hangs.
    fn fake_gdb(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-gdb");
        std::fs::write(
            &path,
            "#!/bin/sh\nfor a; do echo \"arg: $a\"; done\necho oops >&2\nexec sleep 60\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn batch_output_is_read_line_by_line_and_gdb_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let k = DebugKernel {
            name: "debug".into(),
            tree: "/t".into(),
            modules: dir.path().to_owned(),
        };
        let fake = GdbCommand::new(&k, Path::new("/s")).with_gdb(fake_gdb(dir.path()));
        let mut g = BatchGdb::spawn(&fake, &["break f", "continue"]).unwrap();
        let t = Duration::from_secs(10);
        assert_eq!(g.wait_for_line("^arg: -batch$", t).unwrap(), "arg: -batch");
        assert_eq!(g.wait_for_line("^arg: ", t).unwrap(), "arg: -ex");
        assert_eq!(g.wait_for_line("continue", t).unwrap(), "arg: continue");
        // stderr is in the same text.
        g.wait_for_line("^oops$", t).unwrap();
        let err = g
            .wait_for_line("never", Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timed out") && err.contains("| arg: break f"),
            "{err}"
        );
        let err = g
            .wait_exit(Duration::from_millis(200))
            .unwrap_err()
            .to_string();
        assert!(err.contains("killed"), "{err}");
        assert!(g.child.is_none() && g.status.is_some());

        // A gdb that exits early: waiting for a line fails at once.
        let gone = GdbCommand::new(&k, Path::new("/s")).with_gdb("/bin/false");
        let mut g = BatchGdb::spawn(&gone, &[]).unwrap();
        let err = g.wait_for_line("never", t).unwrap_err().to_string();
        assert!(err.contains("exited"), "{err}");
        let missing = GdbCommand::new(&k, Path::new("/s")).with_gdb("/nonexistent/gdb");
        assert!(matches!(
            BatchGdb::spawn(&missing, &[]),
            Err(Error::ToolMissing { .. })
        ));
    }

    #[test]
    fn a_function_symbol_by_its_demangled_name() {
        // Lines of `nm -p` and `nm -p -C` of the debug kernel's rust_keyboard.ko.
        let mangled = "\
0000000000005202 t _RNvMs2_Cse3uz1OCc3ut_13rust_keyboardNtB5_6Shared6decode
0000000000014134 T _RNvXs3_Cse3uz1OCc3ut_13rust_keyboardNtB5_11HardHandlerNtNtNtCs1EKtwoKEMO2_6kernel3irq7request7Handler6handle
0000000000000010 d _RNvXs3_Cse3uz1OCc3ut_13rust_keyboardNtB5_11HardHandlerNtNtNtCs1EKtwoKEMO2_6kernel3irq7request7Handler6handle.data
";
        let demangled = "\
0000000000005202 t <rust_keyboard::Shared>::decode
0000000000014134 T <rust_keyboard::HardHandler as kernel::irq::request::Handler>::handle
0000000000000010 d <rust_keyboard::HardHandler as kernel::irq::request::Handler>::handle
";
        assert_eq!(
            pick_symbol(
                mangled,
                demangled,
                "<rust_keyboard::HardHandler as kernel::irq::request::Handler>::handle"
            )
            .unwrap(),
            "_RNvXs3_Cse3uz1OCc3ut_13rust_keyboardNtB5_11HardHandlerNtNtNtCs1EKtwoKEMO2_6kernel3irq7request7Handler6handle"
        );
        assert_eq!(
            pick_symbol(mangled, demangled, "<rust_keyboard::Shared>::decode").unwrap(),
            "_RNvMs2_Cse3uz1OCc3ut_13rust_keyboardNtB5_6Shared6decode"
        );
        let twice = format!("{demangled}{}", demangled.lines().nth(1).unwrap());
        let twice_m = format!("{mangled}{}", mangled.lines().nth(1).unwrap());
        assert!(pick_symbol(&twice_m, &twice, "<rust_keyboard::Shared>::decode").is_ok());
        let err = pick_symbol(
            &twice_m,
            &twice,
            "<rust_keyboard::HardHandler as kernel::irq::request::Handler>::handle",
        )
        .unwrap_err();
        assert!(err.contains("2 functions"), "{err}");
        assert!(pick_symbol(mangled, demangled, "nope").is_err());
        assert!(pick_symbol(mangled, "", "nope").is_err());
    }

    #[test]
    fn debug_info_in_a_config() {
        assert!(has_debug_info("CONFIG_X=y\nCONFIG_DEBUG_INFO=y\n"));
        assert!(!has_debug_info("# CONFIG_DEBUG_INFO is not set\n"));
        assert!(!has_debug_info("CONFIG_DEBUG_INFO_NONE=y\n"));
    }
}
