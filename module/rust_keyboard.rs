// SPDX-License-Identifier: GPL-2.0

//! Rust PS/2 keyboard interrupt driver for the lab's ACPI `KBD0001` device.
//!
//! The driver binds, through ACPI, to the platform device that the lab's SSDT declares:
//!
//! ```asl
//! Device (KBD) {
//!     Name (_HID, "KBD0001")
//!     Name (_CRS, ResourceTemplate () {
//!         IO (Decode16, 0x60, 0x60, 0x01, 0x01)   // data port
//!         IO (Decode16, 0x64, 0x64, 0x01, 0x01)   // status port
//!         IRQNoFlags () {1}
//!     })
//! }
//! ```
//!
//! It takes the interrupt line from the device's ACPI resources, registers a shared IRQ handler
//! named `rust_keyboard_irq` and logs every key event it reads from the i8042 controller:
//!
//! ```text
//! rust_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64
//! rust_keyboard KBD0001:00: scancode 1e pressed
//! rust_keyboard KBD0001:00: scancode e0 c8 released
//! rust_keyboard KBD0001:00: removed: irq 1 freed
//! ```
//!
//! The in-kernel i8042/atkbd drivers must be disabled (`CONFIG_SERIO_I8042=n`), otherwise they
//! own the controller. The driver only reads from the controller; the configuration SeaBIOS
//! leaves behind (keyboard interrupt enabled, set-1 translation on) is used as is.
//!
//! # I/O ports
//!
//! The ports are the named constants [`DATA_PORT`] and [`STATUS_PORT`], not values read from the
//! device's resources, because the Rust API of this kernel (7.2) cannot give a driver an I/O port
//! resource:
//!
//! - `platform::Device::resource_by_index()` and `resource_by_name()` call
//!   `platform_get_resource{,_byname}()` with `IORESOURCE_MEM` hard-coded
//!   (`rust/kernel/platform.rs`), so the two `IO` descriptors of `_CRS` are invisible to them;
//! - `io::resource::Resource::from_raw()` and `device::Device::as_raw()` are `pub(crate)`, so a
//!   driver cannot reach the `struct resource` of an `IORESOURCE_IO` range, nor the parent
//!   `ioport_resource` that `Resource::request_region()` would need to claim the ports, without
//!   calling raw bindings on a pointer cast that relies on the private layout of
//!   `platform::Device`.
//!
//! For the same reason probe cannot compare the constants with the device's I/O resources. What
//! ties the constants to the device is the match itself: the driver only binds to `KBD0001`,
//! whose `_CRS` declares exactly these ports (the ACPI core already shows them in
//! `/proc/ioports` as `KBD0001:00`). The hardware access is confined to [`PortIo`], whose
//! constructor is reachable only from [`I8042Ports::new`], which needs the device bound to this
//! driver.

mod decoder;

use decoder::{Decoder, Status};
use kernel::{
    acpi,
    device::{
        self,
        Bound,
        Core, //
    },
    irq::{
        self,
        IrqReturn, //
    },
    platform,
    prelude::*,
    sync::{
        aref::ARef,
        new_spinlock,
        SpinLock, //
    },
};

/// I/O port of the i8042 data register: scancodes are read here.
const DATA_PORT: u16 = 0x60;

/// I/O port of the i8042 status register (when read).
const STATUS_PORT: u16 = 0x64;

/// Index of the keyboard interrupt among the device's ACPI interrupt resources.
const IRQ_INDEX: u32 = 0;

/// Upper bound on the bytes read while draining the controller at probe.
///
/// The controller's output buffer holds one byte, and QEMU's keyboard queues at most 16 more;
/// the bound keeps probe finite even if the status register were stuck at "full".
const MAX_DRAIN: usize = 16;

/// Name of the interrupt handler, as shown in `/proc/interrupts`.
const IRQ_NAME: &CStr = c"rust_keyboard_irq";

/// One x86 I/O port of the keyboard controller this driver is bound to, read with `in al, dx`.
///
/// There is no port I/O abstraction in the kernel crate (`io::mem` is MMIO only), so this type is
/// the only place where the driver executes a port instruction.
///
/// # Invariants
///
/// `port` is [`DATA_PORT`] or [`STATUS_PORT`] of the i8042 controller described by the
/// `KBD0001` ACPI device this driver is bound to, and no other driver uses that controller.
struct PortIo {
    /// The port number, passed to the `in` instruction in `dx`.
    port: u16,
}

impl PortIo {
    /// Wraps `port`.
    ///
    /// # Safety
    ///
    /// `port` must be [`DATA_PORT`] or [`STATUS_PORT`] of the i8042 controller of a `KBD0001`
    /// device that is bound to this driver.
    const unsafe fn new(port: u16) -> Self {
        // INVARIANT: guaranteed by the caller.
        Self { port }
    }

    /// Reads one byte from the port.
    ///
    /// Reading the data port pops the byte from the controller's output buffer; reading the
    /// status port has no side effect.
    fn read(&self) -> u8 {
        let value: u8;
        // SAFETY: `in al, dx` reads one byte from the I/O port in `dx` into `al`; both registers
        // are declared as operands. It does not access memory (`nomem`), does not use the stack
        // (`nostack`) and does not change the flags (`preserves_flags`), so it cannot break any
        // guarantee the compiler relies on. It runs at CPL 0 in the kernel, so it does not fault
        // (in an SEV-ES/TDX guest the kernel's #VC/#VE handler emulates it, exactly as for the
        // C `inb()`). Its only effect is on the device behind the port: by the type invariant that
        // is the i8042 controller this driver owns, and reading an i8042 register at most
        // consumes the byte waiting in its output buffer, which is this driver's to consume.
        unsafe {
            core::arch::asm!(
                "in al, dx",
                out("al") value,
                in("dx") self.port,
                options(nomem, nostack, preserves_flags),
            );
        }
        value
    }
}

/// The data and status ports of the i8042 controller of the bound `KBD0001` device.
///
/// # Invariants
///
/// `data.port == DATA_PORT` and `status.port == STATUS_PORT`.
struct I8042Ports {
    /// The data register, [`DATA_PORT`].
    data: PortIo,
    /// The status register, [`STATUS_PORT`].
    status: PortIo,
}

impl I8042Ports {
    /// Returns the controller ports of `_pdev`.
    ///
    /// Taking the `Core` device, which only exists inside bus callbacks, ensures that this is
    /// called for a device that is being bound to this driver: the only bus callback of this
    /// crate that receives a `platform::Device<Core>` is [`RustKeyboard::probe`], and the
    /// driver's match table holds nothing but `KBD0001`.
    fn new(_pdev: &platform::Device<Core<'_>>) -> Self {
        // INVARIANT: the ports are `DATA_PORT` and `STATUS_PORT`.
        Self {
            // SAFETY: `_pdev` is a `KBD0001` device being bound to this driver (see above); that
            // device is the i8042 controller whose data port is `DATA_PORT` (its `_CRS`).
            data: unsafe { PortIo::new(DATA_PORT) },
            // SAFETY: as above; the status port of that controller is `STATUS_PORT`.
            status: unsafe { PortIo::new(STATUS_PORT) },
        }
    }

    /// Reads the status register.
    fn status(&self) -> Status {
        Status::new(self.status.read())
    }

    /// Reads (and thereby consumes) the byte in the output buffer.
    ///
    /// Only meaningful after [`Status::output_full`] returned `true`.
    fn read_data(&self) -> u8 {
        self.data.read()
    }

    /// Discards stale bytes waiting in the controller, reading at most [`MAX_DRAIN`] of them.
    ///
    /// With the edge-triggered IRQ 1, a byte left unread (for example a key pressed before the
    /// driver was loaded) keeps the interrupt line from ever rising again. Returns the number of
    /// bytes discarded.
    fn drain(&self) -> usize {
        let mut drained = 0;
        while drained < MAX_DRAIN && self.status().output_full() {
            let _stale = self.read_data();
            drained += 1;
        }
        drained
    }
}

/// The interrupt handler: reads one byte per interrupt and logs the decoded key events.
///
/// # Invariants
///
/// `decoder` is locked around every access to `ports` from the handler, so the status check, the
/// data read and the decoder update for one byte happen as one step.
#[pin_data]
struct KeyboardHandler {
    /// The controller's ports.
    ports: I8042Ports,
    /// Decoder state (a pending `0xe0` prefix), shared by all invocations of the handler.
    #[pin]
    decoder: SpinLock<Decoder>,
}

impl irq::Handler for KeyboardHandler {
    fn handle(&self, dev: &device::Device<Bound>) -> IrqReturn {
        let event = {
            let mut decoder = self.decoder.lock();
            if !self.ports.status().output_full() {
                // Nothing for us: the interrupt came from another device on the shared line.
                return IrqReturn::None;
            }
            decoder.feed(self.ports.read_data())
        };

        if let Some(event) = event {
            dev_info!(dev, "scancode {event}\n");
        }
        IrqReturn::Handled
    }
}

/// Logs the removal line when dropped.
///
/// It is the last field of [`RustKeyboard`]; fields are dropped in declaration order, so it is
/// dropped, and the line printed, after [`RustKeyboard::irq`] has freed the interrupt.
struct RemovalNotice {
    /// The device, for the log prefix.
    dev: ARef<device::Device>,
    /// The interrupt line that was freed.
    irq: u32,
}

impl Drop for RemovalNotice {
    fn drop(&mut self) {
        dev_info!(self.dev, "removed: irq {} freed\n", self.irq);
    }
}

/// Per-device driver data of a bound `KBD0001` device.
#[pin_data]
struct RustKeyboard {
    /// The interrupt registration; dropping it frees the interrupt (`free_irq()`, which waits
    /// for a running handler to finish).
    #[pin]
    irq: irq::Registration<KeyboardHandler>,
    /// Prints the removal line; must stay after `irq` (see [`RemovalNotice`]).
    _removal: RemovalNotice,
}

kernel::acpi_device_table!(
    ACPI_TABLE,
    MODULE_ACPI_TABLE,
    <RustKeyboard as platform::Driver>::IdInfo,
    [(acpi::DeviceId::new(c"KBD0001"), ())]
);

impl platform::Driver for RustKeyboard {
    type IdInfo = ();
    type Data<'bound> = Self;
    const ACPI_ID_TABLE: Option<acpi::IdTable<Self::IdInfo>> = Some(&ACPI_TABLE);

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let dev = pdev.as_ref();

            // Look the interrupt up first (this only reads the ACPI resources), so that a device
            // without one fails probe before the controller is touched.
            let request = pdev.irq_by_index(IRQ_INDEX)?;
            let irq_number = request.irq();

            // Drain before the handler is registered; see `I8042Ports::drain`. No handler of ours
            // runs yet, so nothing else in this driver touches the ports. A byte that arrives
            // between the drain and `request_irq()` can still be missed; the window is short (the
            // allocation in `Registration::new`), and closing it would need a process-context
            // read racing the handler.
            let ports = I8042Ports::new(pdev);
            let drained = ports.drain();
            if drained > 0 {
                dev_dbg!(dev, "drained {drained} stale byte(s)\n");
            }

            Ok(try_pin_init!(Self {
                irq <- irq::Registration::new(
                    request,
                    irq::Flags::SHARED,
                    IRQ_NAME,
                    try_pin_init!(KeyboardHandler {
                        ports,
                        decoder <- new_spinlock!(Decoder::new()),
                    }),
                ),
                _removal: RemovalNotice {
                    dev: dev.into(),
                    irq: irq_number,
                },
                _: {
                    dev_info!(
                        dev,
                        "probed: irq {irq_number}, data port {DATA_PORT:#04x}, status port {STATUS_PORT:#04x}\n"
                    );
                },
            }))
        })
    }
}

kernel::module_platform_driver! {
    type: RustKeyboard,
    name: "rust_keyboard",
    authors: ["Rust keyboard lab"],
    description: "Rust PS/2 keyboard interrupt driver for the ACPI KBD0001 device",
    license: "GPL",
}
