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
//! named `rust_keyboard_irq`, decodes the bytes it reads from the i8042 controller into key
//! events (see [`decoder`]) and logs every event:
//!
//! ```text
//! rust_keyboard KBD0001:00: probed: irq 1, data port 0x60, status port 0x64, mode threaded
//! rust_keyboard KBD0001:00: scancode 1e pressed
//! rust_keyboard KBD0001:00: scancode e0 c8 released
//! rust_keyboard KBD0001:00: removed: irq 1 freed
//! ```
//!
//! The events also go to `/dev/kbd0001` (see [`chardev`]), and counters to debugfs, in
//! `/sys/kernel/debug/rust_keyboard/KBD0001:00/`.
//!
//! # Interrupt paths
//!
//! The module parameter `mode` selects where the work of an interrupt is done (see [`Mode`]):
//!
//! - `0`, hard: the hard handler checks the status, reads the byte, decodes and logs it (the
//!   course's design). Handing the event to `/dev/kbd0001` needs locks that process context also
//!   takes, and 7.2's kernel crate has no interrupt-disabling lock, so the finished events go to
//!   the system workqueue through a [`Ring`], and a work item hands them to the readers;
//! - `1`, threaded (the default): the hard handler only checks the status, reads the byte and
//!   queues it; the IRQ thread decodes, logs and hands the events to the readers;
//! - `2`, workqueue: as threaded, but the bottom half is a work item on the system workqueue
//!   (the classic bottom half of LKMPG).
//!
//! In every mode the handler is registered with `IRQF_SHARED`: the line may be shared (the lab
//! has a test module that shares it), so the handler returns `IRQ_NONE` when the controller has
//! no byte for us. `IRQF_ONESHOT` is never set: it keeps a line masked until the thread has run,
//! which a level-triggered device that stays asserted until the thread services it needs. Here
//! the hard handler itself reads the byte, which is what deasserts the controller's interrupt,
//! and IRQ 1 is edge-triggered; masking it until the thread ran would only delay the next byte's
//! interrupt, and all handlers of a shared line must agree on `IRQF_ONESHOT`, or sharing fails.
//!
//! Wake-ups merge: one thread run or work run may find many bytes. The bottom half drains the
//! ring until it is empty. A byte that arrives after the drain saw the ring empty is not lost:
//! the hard handler queues the byte *before* it queues the work, and the workqueue clears a work
//! item's "pending" bit before it calls the work function, so that queueing starts another run;
//! in threaded mode the handler and the thread agree through a flag whether the thread must be
//! woken (see [`ThreadedHandler`]).
//!
//! # I/O ports
//!
//! The data and status ports are the first and second `IO` descriptors of the device's `_CRS`,
//! looked up with `platform::Device::io_port_request_by_index()` and claimed with
//! `request_region_sized::<1>()` (they show in `/proc/ioports` as `rust_keyboard`), both added to
//! the `kernel` crate by the lab's patch series (`kernel/patches/0001-*`; 7.2 itself has no I/O
//! port resource for a platform driver). Patch `0002-*` lets a driver claim the i8042's ports on
//! x86, which the architecture otherwise reserves as busy. Probe refuses a device whose
//! resources are not two single ports, or whose status register never reports an empty output
//! buffer (no i8042 there: an unassigned port reads `0xff`), with an error naming both ports.
//! The claims are device-managed (`Devres`): they are released when the device unbinds.
//!
//! The in-kernel i8042/atkbd drivers must be disabled (`CONFIG_SERIO_I8042=n`), otherwise they
//! own the controller. The driver only reads from the controller; the configuration SeaBIOS
//! leaves behind (keyboard interrupt enabled, set-1 translation on) is used as is.

mod chardev;
mod decoder;
mod ring;

use chardev::{
    DevNode,
    Hub,
    OpenFiles, //
};
use decoder::{
    Decoder,
    KeyEvent,
    Status, //
};
use kernel::{
    acpi, bindings,
    debugfs::{
        Dir,
        Scope, //
    },
    device::{
        self,
        Bound,
        Core, //
    },
    devres::Devres,
    driver, fmt,
    io::{
        port::IoPort,
        Io,
        ResourceSize, //
    },
    irq::{
        self,
        IrqReturn,
        ThreadedIrqReturn, //
    },
    new_spinlock, platform,
    prelude::*,
    sync::{
        aref::ARef,
        atomic::{
            Atomic,
            AtomicFlag,
            Full,
            Relaxed, //
        },
        barrier::smp_mb,
        Arc,
        SpinLock, //
    },
    workqueue::{
        self,
        impl_has_work,
        new_work,
        Work,
        WorkItem, //
    },
};
use ring::Ring;

module! {
    type: RustKeyboardModule,
    name: "rust_keyboard",
    authors: ["Rust keyboard lab"],
    description: "Rust PS/2 keyboard interrupt driver for the ACPI KBD0001 device",
    license: "GPL",
    params: {
        mode: u32 {
            default: 1,
            description: "Interrupt path: 0 = hard, 1 = threaded, 2 = workqueue",
        },
    },
}

/// Index of the data port among the device's ACPI I/O resources.
const DATA_INDEX: u32 = 0;

/// Index of the status port among the device's ACPI I/O resources.
const STATUS_INDEX: u32 = 1;

/// The name the ports are claimed under, as shown in `/proc/ioports`.
const PORT_OWNER: &CStr = c"rust_keyboard";

/// Index of the keyboard interrupt among the device's ACPI interrupt resources.
const IRQ_INDEX: u32 = 0;

/// Upper bound on the bytes read while draining the controller at probe.
///
/// The controller's output buffer holds one byte, and QEMU's keyboard queues at most 16 more,
/// so up to 17 stale bytes are there when keys came in while no driver was bound (the debug
/// kernel's slow unload leaves that much time); the bound keeps probe finite while keys keep
/// coming in.
const MAX_DRAIN: usize = 1 + 16;

/// Name of the interrupt handler, as shown in `/proc/interrupts`.
const IRQ_NAME: &CStr = c"rust_keyboard_irq";

/// Number of words the hard handler can hand to the bottom half before it has to drop them.
///
/// QEMU's keyboard queues at most 16 bytes and each byte needs an interrupt, so the bottom half
/// falls this far behind only if it does not run for 256 interrupts.
const RING_LEN: usize = 256;

/// Where the work of an interrupt is done; the module parameter `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `0`: status check, read, decode and log in the hard handler.
    Hard,
    /// `1`: the hard handler reads and queues the byte, the IRQ thread decodes and logs.
    Threaded,
    /// `2`: the hard handler reads and queues the byte, a work item decodes and logs.
    Workqueue,
}

impl Mode {
    /// Returns the mode of the module parameter's value, or `None` for an invalid value.
    const fn from_param(value: u32) -> Option<Self> {
        match value {
            0 => Some(Mode::Hard),
            1 => Some(Mode::Threaded),
            2 => Some(Mode::Workqueue),
            _ => None,
        }
    }

    /// The mode's name, as in the probe line and in debugfs.
    const fn name(self) -> &'static str {
        match self {
            Mode::Hard => "hard",
            Mode::Threaded => "threaded",
            Mode::Workqueue => "workqueue",
        }
    }
}

/// One claimed I/O port of the device's i8042 controller.
type Port = Devres<IoPort<'static, 1>>;

/// The data and status ports of the i8042 controller of a bound `KBD0001` device, from its
/// `_CRS`, claimed for this driver until the device unbinds.
struct I8042Ports {
    /// The data register: scancodes are read here.
    data: Port,
    /// The status register (when read).
    status: Port,
    /// The data port's number, for messages.
    data_port: ResourceSize,
    /// The status port's number, for messages.
    status_port: ResourceSize,
}

impl I8042Ports {
    /// Looks up, checks and claims the data and status ports of `pdev`.
    ///
    /// Fails with `EINVAL`, naming the resource, if either is not exactly one port, with
    /// `ENXIO` if the device has fewer than two I/O resources and `EBUSY` if a port is claimed
    /// already.
    fn new(pdev: &platform::Device<Core<'_>>) -> Result<Self> {
        let (data, data_port) = Self::claim(pdev, DATA_INDEX, "data")?;
        let (status, status_port) = Self::claim(pdev, STATUS_INDEX, "status")?;
        Ok(Self {
            data,
            status,
            data_port,
            status_port,
        })
    }

    /// Claims the one-port I/O resource `index` of `pdev` (`what` names it in messages).
    fn claim(
        pdev: &platform::Device<Core<'_>>,
        index: u32,
        what: &str,
    ) -> Result<(Port, ResourceSize)> {
        let dev = pdev.as_ref();
        let request = pdev.io_port_request_by_index(index).inspect_err(|_| {
            dev_err!(dev, "no I/O resource {index} ({what} port) in _CRS\n");
        })?;
        let (start, size) = (request.start(), request.size());
        if size != 1 {
            dev_err!(
                dev,
                "I/O resource {index} ({what} port) is {start:#x}, {size} ports: expected one\n"
            );
            return Err(EINVAL);
        }
        let port = request
            .request_region_sized::<1>(PORT_OWNER)
            .inspect_err(|e| {
                dev_err!(dev, "cannot claim the {what} port {start:#x}: {e:?}\n");
            })?
            .into_devres()?;
        Ok((port, start))
    }

    /// Reads the status register, or `None` once the device is unbound.
    fn status(&self, dev: &device::Device<Bound>) -> Option<Status> {
        Some(Status::new(self.status.access(dev).ok()?.read8(0)))
    }

    /// Reads (and thereby consumes) the byte in the output buffer, or `None` once the device
    /// is unbound.
    ///
    /// Only meaningful after [`Status::output_full`] returned `true`.
    fn read_data(&self, dev: &device::Device<Bound>) -> Option<u8> {
        Some(self.data.access(dev).ok()?.read8(0))
    }

    /// Discards stale bytes waiting in the controller, reading at most [`MAX_DRAIN`] of them.
    ///
    /// With the edge-triggered IRQ 1, a byte left unread (for example a key pressed before the
    /// driver was loaded) keeps the interrupt line from ever rising again. Returns the number of
    /// bytes discarded, or `ENODEV` if the status port reads `0xff`: no i8042 answers at these
    /// ports ([`Status::floating`]). Keys still coming in after [`MAX_DRAIN`] bytes are not an
    /// error: the output buffer is full again only because a new byte arrived, and the read
    /// after `request_irq()` (in probe) or the handler takes it.
    fn drain(&self, dev: &device::Device<Bound>) -> Result<usize> {
        let mut drained = 0;
        while drained < MAX_DRAIN {
            let Some(status) = self.status(dev) else {
                break;
            };
            if status.floating() {
                dev_err!(
                    dev,
                    "no i8042 controller at data port {:#x}, status port {:#x}: the status port reads 0xff\n",
                    self.data_port,
                    self.status_port
                );
                return Err(ENODEV);
            }
            if !status.output_full() {
                break;
            }
            let _stale = self.read_data(dev);
            drained += 1;
        }
        Ok(drained)
    }
}

/// The counters of one device, shown in debugfs. All count since probe.
///
/// Atomics, because the hard handler updates them without a lock.
struct Stats {
    /// Hard handler invocations.
    irqs: Atomic<u64>,
    /// Invocations that returned `IRQ_HANDLED` or `IRQ_WAKE_THREAD`.
    handled: Atomic<u64>,
    /// Invocations that returned `IRQ_NONE`: the controller had no byte waiting.
    not_ours: Atomic<u64>,
    /// Bytes read from the data port by the handler (not the stale ones drained at probe).
    bytes: Atomic<u64>,
    /// Key events decoded.
    events: Atomic<u64>,
    /// Bytes lost because the ring to the bottom half was full (threaded and workqueue modes).
    bytes_dropped: Atomic<u64>,
    /// Events lost: a reader's queue was full (counted once per reader), or, in hard mode, the
    /// ring to the work item was full.
    events_dropped: Atomic<u64>,
}

impl Stats {
    /// All counters at zero.
    const fn new() -> Self {
        Self {
            irqs: Atomic::new(0),
            handled: Atomic::new(0),
            not_ours: Atomic::new(0),
            bytes: Atomic::new(0),
            events: Atomic::new(0),
            bytes_dropped: Atomic::new(0),
            events_dropped: Atomic::new(0),
        }
    }
}

/// Adds one to `counter`.
fn count(counter: &Atomic<u64>) {
    counter.add(1, Relaxed);
}

/// The state of one bound device that the interrupt handler, the bottom half, debugfs and the
/// driver data share.
///
/// # Invariants
///
/// - `ring` has one producer, the hard handler (which the IRQ core never runs on two CPUs at
///   once for one line), and one consumer, [`Shared::bottom_half`], which runs only in the IRQ
///   thread (threaded mode) or in `work` (the other modes; a work item never runs concurrently
///   with itself). In hard mode it carries packed [`KeyEvent`]s, otherwise bytes.
/// - `decoder` is only locked by the one context of `mode` that decodes: the hard handler in
///   hard mode, the bottom half otherwise. A hard-IRQ context and process context never take it
///   both, so it cannot deadlock although it does not disable interrupts.
/// - `work` is only queued by the hard handler.
#[pin_data]
struct Shared {
    /// The device, for the log prefix.
    dev: ARef<device::Device>,
    /// The interrupt path.
    mode: Mode,
    /// The controller's ports; only the hard handler reads them.
    ports: I8042Ports,
    /// The counters.
    stats: Stats,
    /// Bytes (or, in hard mode, events) from the hard handler to the bottom half.
    ring: Ring<RING_LEN>,
    /// Decoder state (a pending prefix or part of the Pause sequence).
    #[pin]
    decoder: SpinLock<Decoder>,
    /// The readers of `/dev/kbd0001`.
    hub: Arc<Hub>,
    /// The bottom half of the hard and workqueue modes, on the system workqueue.
    #[pin]
    work: Work<Shared>,
    /// Threaded mode: the IRQ thread is neither running nor woken, so the next byte must wake
    /// it (see [`ThreadedHandler`]).
    thread_idle: AtomicFlag,
}

impl_has_work! {
    impl HasWork<Self> for Shared { self.work }
}

impl WorkItem for Shared {
    type Pointer = Arc<Shared>;

    fn run(this: Arc<Shared>) {
        this.bottom_half();
    }
}

impl Shared {
    /// Creates the shared state of the device `dev`.
    fn new(
        dev: &device::Device,
        mode: Mode,
        ports: I8042Ports,
        hub: Arc<Hub>,
    ) -> impl PinInit<Self> + '_ {
        // INVARIANT: nothing runs yet; the handlers and the work item follow the rules above.
        pin_init!(Self {
            dev: dev.into(),
            mode,
            ports,
            stats: Stats::new(),
            ring: Ring::new(),
            decoder <- new_spinlock!(Decoder::new()),
            hub,
            work <- new_work!("rust_keyboard::work"),
            thread_idle: AtomicFlag::new(true),
        })
    }

    /// The part of every mode's hard handler: counts the interrupt and, if the controller has a
    /// byte for us, reads it.
    ///
    /// Returns `None` if the output buffer is empty: the interrupt came from another device on
    /// the shared line (or was injected).
    fn read_byte(&self, dev: &device::Device<Bound>) -> Option<u8> {
        count(&self.stats.irqs);
        // A device that is being unbound has no ports any more: nothing for us either.
        let byte = if self.ports.status(dev).is_some_and(Status::output_full) {
            self.ports.read_data(dev)
        } else {
            None
        };
        let Some(byte) = byte else {
            count(&self.stats.not_ours);
            return None;
        };
        count(&self.stats.handled);
        count(&self.stats.bytes);
        Some(byte)
    }

    /// Hands `byte` to the bottom half, or counts it as dropped if the ring is full.
    ///
    /// Runs in the hard handler: does not block.
    fn queue_byte(&self, byte: u8) {
        if self.ring.push(u64::from(byte)).is_err() {
            count(&self.stats.bytes_dropped);
        }
    }

    /// Feeds one byte to the decoder and logs the event it completes, if any.
    fn decode(&self, byte: u8) -> Option<KeyEvent> {
        let event = self.decoder.lock().feed(byte)?;
        count(&self.stats.events);
        dev_info!(self.dev, "scancode {event}\n");
        Some(event)
    }

    /// Hands `event` to the readers of `/dev/kbd0001`. Process context only.
    fn publish(&self, event: KeyEvent) {
        let dropped = self.hub.publish(event);
        if dropped > 0 {
            self.stats.events_dropped.add(dropped, Relaxed);
        }
    }

    /// The bottom half: drains the ring until it is empty.
    ///
    /// Runs in the IRQ thread (threaded mode) or in the work item (the other modes).
    fn bottom_half(&self) {
        while let Some(word) = self.ring.pop() {
            let event = match self.mode {
                // The hard handler already decoded and logged the event.
                Mode::Hard => KeyEvent::from_word(word),
                // The ring carries bytes; the producer stored a `u8`.
                Mode::Threaded | Mode::Workqueue => self.decode(word as u8),
            };
            if let Some(event) = event {
                self.publish(event);
            }
        }
    }

    /// Queues the work item on the system high-priority workqueue, unless it is queued already.
    ///
    /// Not [`workqueue::system`]: that is 7.2's deprecated `system_wq`, and queueing on it warns
    /// ("enqueued on deprecated workqueue"); key input wants low latency, hence `highpri`.
    ///
    /// Called from the hard handler. The handler's own reference keeps `this` alive, so the
    /// reference given back when the work is already queued is never the last one and dropping
    /// it does not free anything in hard-IRQ context.
    fn queue_work(this: &Arc<Shared>) {
        // `Err` means a run is pending already; it has not started yet, so it will see what the
        // caller put into the ring.
        let _ = workqueue::system_highpri().enqueue(this.clone());
    }

    /// Waits until the last queued run of the work item has finished.
    ///
    /// 7.2's `workqueue` module has no flush or cancel, hence the binding. Must be called in
    /// process context, and not from the work item itself.
    fn flush_work(&self) {
        // SAFETY: `self.work` was initialised by `Work::new` (through `new_work!`), which
        // initialises the `work_struct`, and is pinned in `self`, which the reference keeps alive
        // for the duration of the call. `flush_work()` only waits for the work item; it neither
        // takes ownership of it nor runs it here.
        unsafe { bindings::flush_work(Work::raw_get(&self.work)) };
    }
}

/// The hard handler of hard mode: read, decode and log, then the work item hands the event to
/// the readers.
struct HardHandler {
    /// The device's shared state.
    shared: Arc<Shared>,
}

impl irq::Handler for HardHandler {
    fn handle(&self, dev: &device::Device<Bound>) -> IrqReturn {
        let Some(byte) = self.shared.read_byte(dev) else {
            return IrqReturn::None;
        };
        if let Some(event) = self.shared.decode(byte) {
            if self.shared.ring.push(event.to_word()).is_ok() {
                Shared::queue_work(&self.shared);
            } else {
                count(&self.shared.stats.events_dropped);
            }
        }
        IrqReturn::Handled
    }
}

/// The handlers of threaded mode: the hard handler reads and queues the byte, the thread
/// decodes.
///
/// The hard handler wakes the thread only when it is idle ([`Shared::thread_idle`]), and returns
/// `IRQ_HANDLED` when a run is already under way or pending that will find the byte. Each wake-up
/// then stands for exactly one run of the thread, which is what the IRQ core's spurious interrupt
/// accounting assumes (it counts a `IRQ_WAKE_THREAD` as handled only if the thread completed a
/// run since the previous one, so merged wake-ups would show up as unhandled interrupts in
/// `/proc/irq/1/spurious`).
///
/// No byte waits for a wake-up that never comes. The hard handler publishes the byte, then
/// swaps `thread_idle` to `false`; the thread, after draining, sets `thread_idle` and then looks at
/// the ring again. Both sides order their write before their read with a full barrier, so at
/// least one of them sees the other's write: either the hard handler sees the thread idle and
/// wakes it, or the thread sees the byte and drains it.
struct ThreadedHandler {
    /// The device's shared state.
    shared: Arc<Shared>,
}

impl irq::ThreadedHandler for ThreadedHandler {
    fn handle(&self, dev: &device::Device<Bound>) -> ThreadedIrqReturn {
        let shared = &self.shared;
        let Some(byte) = shared.read_byte(dev) else {
            return ThreadedIrqReturn::None;
        };
        // Even if the ring is full: the thread is then woken, or busy, and will empty it.
        shared.queue_byte(byte);
        // `Full`: the byte's publication is ordered before the read of the flag.
        if shared.thread_idle.xchg(false, Full) {
            ThreadedIrqReturn::WakeThread
        } else {
            ThreadedIrqReturn::Handled
        }
    }

    fn handle_threaded(&self, _dev: &device::Device<Bound>) -> IrqReturn {
        let shared = &self.shared;
        loop {
            shared.bottom_half();
            shared.thread_idle.store(true, Relaxed);
            // Orders the store above before the check below (see the type's documentation).
            smp_mb();
            if shared.ring.is_empty() {
                break;
            }
            // A byte came in after the drain, and its handler may have seen the thread busy.
            if !shared.thread_idle.xchg(false, Full) {
                // It saw the thread idle instead and has woken it: the next run drains the byte.
                break;
            }
        }
        IrqReturn::Handled
    }
}

/// The hard handler of workqueue mode: reads and queues the byte, the work item decodes.
struct WorkqueueHandler {
    /// The device's shared state.
    shared: Arc<Shared>,
}

impl irq::Handler for WorkqueueHandler {
    fn handle(&self, dev: &device::Device<Bound>) -> IrqReturn {
        let Some(byte) = self.shared.read_byte(dev) else {
            return IrqReturn::None;
        };
        self.shared.queue_byte(byte);
        Shared::queue_work(&self.shared);
        IrqReturn::Handled
    }
}

/// The interrupt registration of the selected mode. Dropping it frees the interrupt
/// (`free_irq()`, which waits for a running hard handler and, in threaded mode, for the thread).
enum IrqLine {
    /// Hard mode.
    Hard {
        /// Held for its drop.
        _registration: Pin<KBox<irq::Registration<HardHandler>>>,
    },
    /// Threaded mode.
    Threaded {
        /// Held for its drop.
        _registration: Pin<KBox<irq::ThreadedRegistration<ThreadedHandler>>>,
    },
    /// Workqueue mode.
    Workqueue {
        /// Held for its drop.
        _registration: Pin<KBox<irq::Registration<WorkqueueHandler>>>,
    },
}

impl IrqLine {
    /// Requests the interrupt of `request` with the handler(s) of `shared.mode`.
    fn register(request: irq::IrqRequest<'_>, shared: &Arc<Shared>) -> Result<Self> {
        // Shared in every mode, never oneshot: see the crate documentation.
        let flags = irq::Flags::SHARED;
        let shared = shared.clone();
        Ok(match shared.mode {
            Mode::Hard => IrqLine::Hard {
                _registration: KBox::pin_init(
                    irq::Registration::new(request, flags, IRQ_NAME, Ok(HardHandler { shared })),
                    GFP_KERNEL,
                )?,
            },
            Mode::Threaded => IrqLine::Threaded {
                _registration: KBox::pin_init(
                    irq::ThreadedRegistration::new(
                        request,
                        flags,
                        IRQ_NAME,
                        Ok(ThreadedHandler { shared }),
                    ),
                    GFP_KERNEL,
                )?,
            },
            Mode::Workqueue => IrqLine::Workqueue {
                _registration: KBox::pin_init(
                    irq::Registration::new(
                        request,
                        flags,
                        IRQ_NAME,
                        Ok(WorkqueueHandler { shared }),
                    ),
                    GFP_KERNEL,
                )?,
            },
        })
    }
}

/// Flushes the work item when dropped.
///
/// Dropped after [`RustKeyboard::irq`] (nothing queues the work any more) and before the misc
/// device and the hub go: no bottom half runs once the device is gone, and, at module exit, none
/// runs module code after the module is freed. The [`Arc`] the work item holds while queued would
/// keep [`Shared`] alive on its own, but not the module's code.
struct WorkFlush {
    /// The state whose work item to flush.
    shared: Arc<Shared>,
}

impl Drop for WorkFlush {
    fn drop(&mut self) {
        self.shared.flush_work();
    }
}

/// Closes the hub when dropped: readers of the open files are woken and read end of file.
///
/// Dropped after [`RustKeyboard::node`] is deregistered (no new file can open) and after the
/// last event was published.
struct HubShutdown {
    /// The hub to close.
    hub: Arc<Hub>,
}

impl Drop for HubShutdown {
    fn drop(&mut self) {
        self.hub.shutdown();
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

/// Writes a counter's debugfs file: its value in decimal and a newline.
fn write_counter(counter: &Atomic<u64>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", counter.load(Relaxed))
}

/// Writes the `mode` debugfs file.
fn write_mode(mode: &Mode, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "{}", mode.name())
}

/// Per-device driver data of a bound `KBD0001` device.
///
/// The fields are dropped in declaration order, which is the order of unbinding: the interrupt
/// is freed, the work item flushed, `/dev/kbd0001` deregistered, its readers woken, the debugfs
/// files removed, and the removal line logged.
///
/// The counters are in debugfs rather than sysfs: they are debugging aids, not a stable ABI
/// (sysfs attributes are ABI and documented as such in `Documentation/ABI/`), and 7.2's kernel
/// crate has no sysfs attribute API for drivers, while it has one for debugfs.
#[pin_data]
struct RustKeyboard {
    /// The interrupt registration.
    irq: IrqLine,
    /// Flushes the work item (see [`WorkFlush`]).
    _work: WorkFlush,
    /// `/dev/kbd0001`.
    #[pin]
    node: DevNode,
    /// Wakes the readers once `node` is gone.
    _hub: HubShutdown,
    /// `/sys/kernel/debug/rust_keyboard/<device>/` and its files.
    #[pin]
    _debugfs: Scope<Arc<Shared>>,
    /// `/sys/kernel/debug/rust_keyboard/`.
    _debugfs_root: Dir,
    /// Prints the removal line; must stay last (see [`RemovalNotice`]).
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

            let value = *module_parameters::mode.value();
            let Some(mode) = Mode::from_param(value) else {
                dev_err!(
                    dev,
                    "invalid mode {value} (0 = hard, 1 = threaded, 2 = workqueue)\n"
                );
                return Err(EINVAL);
            };

            // Look the interrupt up first (this only reads the ACPI resources), so that a device
            // without one fails probe before the controller is touched.
            let request = pdev.irq_by_index(IRQ_INDEX)?;
            let irq_number = request.irq();

            // Drain before the handler is registered; see `I8042Ports::drain`. No handler of ours
            // runs yet, so nothing else in this driver touches the ports.
            let ports = I8042Ports::new(pdev)?;
            let (data_port, status_port) = (ports.data_port, ports.status_port);
            let drained = ports.drain(dev)?;
            if drained > 0 {
                dev_dbg!(dev, "drained {drained} stale byte(s)\n");
            }

            let hub = Arc::pin_init(Hub::new(), GFP_KERNEL)?;
            let shared = Arc::pin_init(Shared::new(dev, mode, ports, hub.clone()), GFP_KERNEL)?;
            let root = Dir::new(c"rust_keyboard");

            // The interrupt is requested last, once everything its handlers reach exists.
            Ok(try_pin_init!(Self {
                _debugfs <- root.scope(shared.clone(), dev.name(), |shared, dir| {
                    let stats = &shared.stats;
                    dir.read_callback_file(c"irqs", &stats.irqs, &write_counter);
                    dir.read_callback_file(c"handled", &stats.handled, &write_counter);
                    dir.read_callback_file(c"not_ours", &stats.not_ours, &write_counter);
                    dir.read_callback_file(c"bytes", &stats.bytes, &write_counter);
                    dir.read_callback_file(c"events", &stats.events, &write_counter);
                    dir.read_callback_file(c"bytes_dropped", &stats.bytes_dropped, &write_counter);
                    dir.read_callback_file(
                        c"events_dropped",
                        &stats.events_dropped,
                        &write_counter,
                    );
                    dir.read_callback_file(c"mode", &shared.mode, &write_mode);
                }),
                _debugfs_root: root.clone(),
                node <- DevNode::new(hub.clone()),
                _hub: HubShutdown { hub },
                _work: WorkFlush {
                    shared: shared.clone(),
                },
                irq: IrqLine::register(request, &shared)?,
                _removal: RemovalNotice {
                    dev: dev.into(),
                    irq: irq_number,
                },
                _: {
                    // A byte that arrived between the drain above and `request_irq()` raised
                    // the edge-triggered line while no handler was there: that edge is lost, and
                    // the line stays high, with no further edge, until the byte is read. Read
                    // what is waiting once more now. It can race only with our own handler run
                    // for another device on the shared line (a new edge from the controller needs
                    // its output buffer empty first), and then one byte is read twice or counted
                    // as not ours: a key pressed while the driver binds.
                    let late = shared.ports.drain(dev).unwrap_or(0);
                    if late > 0 {
                        dev_dbg!(dev, "drained {late} byte(s) that arrived during probe\n");
                    }
                    dev_info!(
                        dev,
                        "probed: irq {irq_number}, data port {data_port:#04x}, status port {status_port:#04x}, mode {}\n",
                        mode.name()
                    );
                },
            }))
        })
    }
}

/// The module: the platform driver, and the wait for open `/dev/kbd0001` files at exit.
#[pin_data]
struct RustKeyboardModule {
    /// The driver's registration; dropping it unbinds every device.
    #[pin]
    _driver: driver::Registration<platform::Adapter<RustKeyboard>>,
    /// Dropped after `_driver`: waits for the files the unbinding woke up to be closed.
    _open_files: OpenFiles,
}

impl kernel::InPlaceModule for RustKeyboardModule {
    fn init(module: &'static ThisModule) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            _driver <- driver::Registration::new(<Self as kernel::ModuleMetadata>::NAME, module),
            _open_files: OpenFiles,
        })
    }
}
