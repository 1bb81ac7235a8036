//! `cargo xtask trace`: streams the irq tracepoints of a running `cargo
//! xtask vm --trace` to the terminal. With `--trace` the VM has a third
//! serial port, a unix socket `trace.sock` in its runtime directory, and
//! /init (`lab.trace` on the kernel command line) enables
//! `irq:irq_handler_entry` and `irq:irq_handler_exit` for IRQ 1 and copies
//! `/sys/kernel/tracing/trace_pipe` to it. Lines are printed as the kernel
//! writes them; Ctrl-C stops.

use super::vm::RunningVm;
use crate::paths::Cache;
use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

/// How the messages say to start a VM with a trace stream.
const START: &str = "cargo xtask vm --trace";

/// Copies the trace stream to stdout until the VM ends.
pub fn run() -> Result<()> {
    let runtime = Cache::from_env()?.vm_runtime();
    let vm = RunningVm::load(&runtime, START)?;
    let Some(socket) = &vm.trace_socket else {
        bail!(
            "the running VM was started without --trace, so its irq tracepoints go nowhere: quit \
             it (Ctrl-A X) and start it with `{START}`"
        );
    };
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to the trace stream {}", socket.display()))?;
    eprintln!(
        "trace: irq_handler_entry/irq_handler_exit of IRQ 1 from {} (ret=handled: the handler \
         claimed the interrupt); press keys with `cargo xtask keys`, Ctrl-C stops",
        socket.display()
    );
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(stream).split(b'\n') {
        let line = line.context("reading the trace stream")?;
        let line = String::from_utf8_lossy(&line);
        writeln!(out, "{}", line.trim_end_matches('\r'))?;
        out.flush()?;
    }
    eprintln!("trace: the VM closed the stream (it stopped)");
    Ok(())
}
