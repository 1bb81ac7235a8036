//! A NixOS-test-style QEMU driver for the Rust-for-Linux PS/2 keyboard lab.
//!
//! The crate boots the lab kernel and busybox initramfs in QEMU and gives a
//! test a [`Machine`] to talk to, in the spirit of the NixOS test driver:
//!
//! ```no_run
//! use std::time::Duration;
//! use vm_tests::{Artifacts, Machine, VmConfig};
//!
//! # fn main() -> Result<(), vm_tests::Error> {
//! let artifacts = Artifacts::from_env()?;
//! let mut machine = Machine::start(VmConfig::from_artifacts(&artifacts)?)?;
//! machine.succeed("test -d /sys/bus/acpi/devices/KBD0001:00")?;
//! let before = machine.interrupts()?.count(1).unwrap_or(0);
//! machine.send_key("a")?; // make 1e, break 9e: two interrupts
//! machine.wait_for_interrupts(1, before + 2, Duration::from_secs(10))?;
//! machine.wait_for_console_text(r"scancode 9e released", Duration::from_secs(10))?;
//! machine.shutdown()?;
//! # Ok(())
//! # }
//! ```
//!
//! Guarantees, because these are what users of such tools get burnt by:
//! * every wait has a timeout, and its error says what was awaited and shows
//!   the last lines of the serial console;
//! * a kernel panic, oops, `BUG:`, `WARNING:` or general protection fault on
//!   the console makes every later call fail at once;
//! * the accelerator (KVM or TCG) is chosen explicitly and the reason is
//!   printed ([`accel`]); a software `/dev/kvm` is never trusted;
//! * QEMU never outlives the test process ([`Machine`] kills it on drop, and
//!   the kernel kills it if the test process dies);
//! * the serial console of every boot is kept in a log file
//!   ([`Machine::console_log_path`]);
//! * a test written with [`run_test`] ends with a health check (a clean
//!   [`Machine::shutdown`]), and with `LAB_INTERACTIVE=1` a failing test
//!   hands its still running VM to [`Machine::interact`] ([`interact`]).
//!
//! Modules:
//! * [`accel`]: KVM/TCG decision;
//! * [`artifacts`]: the `$LAB_ARTIFACTS` directory, cache and log directories;
//! * [`qemu`]: the QEMU command line ([`VmConfig`]);
//! * [`qmp`]: a small blocking QMP client (keys, quit);
//! * [`machine`]: the running VM ([`Machine`], [`run_test`]);
//! * [`console`]: serial console log, line buffer and kernel-problem scanning;
//! * [`channel`]: the host side of the ttyS1 command protocol;
//! * [`interrupts`]: a `/proc/interrupts` parser;
//! * [`ioports`]: a `/proc/ioports` parser;
//! * [`dmesg`]: `dmesg -r` records and their levels;
//! * [`acpi`]: ACPI table headers, from the boot log and from `.aml` files;
//! * [`asl`]: I/O and IRQ resources declared in ASL source (a test oracle);
//! * [`ktap`]: a parser for the KTAP results KUnit prints;
//! * [`scancodes`]: QEMU key names to PS/2 scan code set 1 (the test oracle);
//! * [`kbd`]: the driver's interfaces (modes, `/dev/kbd0001` lines, debugfs
//!   counters) and QEMU key names to the kernel's `KEY_*` names (oracle);
//! * [`guest_tool`]: `kbdtool`, a tiny guest program for `/dev/kbd0001`
//!   (non-blocking opens, chosen read sizes, errno names);
//! * [`interact`]: the interactive mode ([`Machine::interact`],
//!   `LAB_INTERACTIVE=1`) for debugging a failing test;
//! * [`gdb`]: gdb on a VM's kernel through QEMU's gdb stub (the command line
//!   of `cargo xtask gdb`, and gdb in batch mode for tests);
//! * [`trace`]: the irq tracepoints (`irq_handler_entry`/`_exit`) through
//!   tracefs, and a parser for their lines;
//! * [`utc`]: UTC calendar time for log names and reports.

#![warn(missing_docs)]

pub mod accel;
pub mod acpi;
pub mod artifacts;
pub mod asl;
pub mod channel;
pub mod console;
pub mod dmesg;
mod error;
pub mod gdb;
pub mod guest_tool;
pub mod interact;
pub mod interrupts;
pub mod ioports;
pub mod kbd;
pub mod ktap;
pub mod machine;
pub mod qemu;
pub mod qmp;
pub mod scancodes;
mod snapshot;
pub mod trace;
pub mod utc;
mod wait;

pub use accel::{Accel, AccelKind};
pub use artifacts::Artifacts;
pub use error::{Error, Result};
pub use interrupts::{Interrupts, IrqLine};
pub use machine::{Machine, run_test};
pub use qemu::{ConsoleMode, Display, GdbStub, MachineType, VmConfig};
pub use qmp::QmpClient;
