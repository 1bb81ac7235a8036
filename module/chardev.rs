// SPDX-License-Identifier: GPL-2.0

//! `/dev/kbd0001`: a misc device that hands the decoded key events to user space.
//!
//! Every `read()` returns whole lines, `<seq> <press|release> <KEY_NAME> <bytes>\n` (see
//! [`Line`]). Each open file has its own bounded queue, filled from the moment it was opened; a
//! read blocks until the queue holds a line (or fails with `EAGAIN` under `O_NONBLOCK`).
//!
//! # Lifetimes
//!
//! The device's part is a [`Hub`] (the sequence counter and the list of open files), shared
//! through an [`Arc`] by the driver data, the [`DevNode`] and every open file ([`Reader`]).
//! Files can outlive the device: when the device goes away the driver deregisters the misc
//! device (no new opens), then calls [`Hub::shutdown`], which marks every queue as gone and wakes
//! its readers. A reader of a gone device drains what its queue still holds and then reads end of
//! file. Nothing a file holds points into the driver data.
//!
//! The misc device's `file_operations` live in the module, and the 7.2 `MiscDeviceOptions` has
//! no way to set their `.owner` (Rust-for-Linux issue #1182), so open files do not pin the module.
//! [`OpenFiles`], dropped at module exit after the driver is unregistered, therefore waits until
//! the last file is released before the module's memory can go away.

use crate::decoder::{KeyEvent, Line, LineBuf};
use kernel::{
    fs::{
        file::flags::O_NONBLOCK,
        File,
        Kiocb,
        LocalFile, //
    },
    iov::IovIterDest,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    new_condvar, new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{
            Acquire,
            Atomic,
            Relaxed,
            Release, //
        },
        Arc,
        CondVar,
        Mutex,
        SpinLock, //
    },
    time::{
        delay::fsleep,
        Delta, //
    },
};

/// Name of the misc device: `/dev/kbd0001`.
const DEVICE_NAME: &CStr = c"kbd0001";

/// Number of events each open file's queue holds.
pub(crate) const READER_QUEUE_LEN: usize = 256;

/// Number of open `/dev/kbd0001` files, over all devices and including files of devices that are
/// gone. See [`OpenFiles`].
static OPEN_FILES: Atomic<usize> = Atomic::new(0);

/// The queue of one open file.
///
/// # Invariants
///
/// - `slots.len() == READER_QUEUE_LEN`.
/// - `len <= slots.len()` and `first < slots.len()`; the queued lines are the `len` slots
///   starting at `first` (wrapping), all `Some`.
struct Queue {
    /// The ring's storage, allocated when the file is opened.
    slots: KVec<Option<Line>>,
    /// Index of the oldest line.
    first: usize,
    /// Number of queued lines.
    len: usize,
    /// The device is gone: no line will be added any more.
    gone: bool,
}

impl Queue {
    /// Creates an empty queue with room for [`READER_QUEUE_LEN`] lines.
    fn new() -> Result<Self> {
        // INVARIANT: `READER_QUEUE_LEN` slots, empty.
        Ok(Self {
            slots: KVec::from_elem(None, READER_QUEUE_LEN, GFP_KERNEL)?,
            first: 0,
            len: 0,
            gone: false,
        })
    }

    /// Appends `line`; returns `false` (and drops it) if the queue is full.
    fn push(&mut self, line: Line) -> bool {
        if self.len == self.slots.len() {
            return false;
        }
        let index = (self.first + self.len) % self.slots.len();
        match self.slots.get_mut(index) {
            Some(slot) => *slot = Some(line),
            None => return false,
        }
        // INVARIANT: the slot after the last queued one now holds `line`, and `len` was below
        // the capacity.
        self.len += 1;
        true
    }

    /// Returns the oldest line without removing it.
    fn front(&self) -> Option<Line> {
        if self.len == 0 {
            return None;
        }
        self.slots.get(self.first).copied().flatten()
    }

    /// Removes the oldest line, if any.
    fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        if let Some(slot) = self.slots.get_mut(self.first) {
            *slot = None;
        }
        // INVARIANT: the queued lines are now the `len - 1` slots after the old `first`.
        self.first = (self.first + 1) % self.slots.len();
        self.len -= 1;
    }
}

/// One open file of `/dev/kbd0001`: its queue and the wait queue of its readers.
#[pin_data]
pub(crate) struct Reader {
    /// The device's hub, to leave it when the file is released.
    hub: Arc<Hub>,
    /// The file's lines.
    #[pin]
    queue: SpinLock<Queue>,
    /// Readers of this file wait here for a line or for the device to go away.
    #[pin]
    readable: CondVar,
}

impl Reader {
    /// Queues `line`; returns `false` if the queue was full and the line is dropped.
    fn deliver(&self, line: Line) -> bool {
        let pushed = self.queue.lock().push(line);
        if pushed {
            self.readable.notify_all();
        }
        pushed
    }

    /// Marks the queue as gone and wakes every reader.
    fn close(&self) {
        self.queue.lock().gone = true;
        self.readable.notify_all();
    }
}

/// The state of a [`Hub`].
struct HubState {
    /// Sequence number of the next event; the first event of a device is 1.
    next_seq: u64,
    /// The open files.
    readers: KVec<Arc<Reader>>,
    /// The device is gone ([`Hub::shutdown`]): no file can join any more.
    gone: bool,
}

/// The per-device part of `/dev/kbd0001`: event numbering and fan-out to the open files.
///
/// Only used in process context (`open()`, `release()`, and the driver's bottom half).
#[pin_data]
pub(crate) struct Hub {
    /// Sequence counter and the open files.
    #[pin]
    state: Mutex<HubState>,
}

impl Hub {
    /// Creates the hub of a new device.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            state <- new_mutex!(HubState {
                next_seq: 1,
                readers: KVec::new(),
                gone: false,
            }),
        })
    }

    /// Numbers `event` and queues it for every open file.
    ///
    /// Returns the number of files whose queue was full and lost the event.
    pub(crate) fn publish(&self, event: KeyEvent) -> u64 {
        let mut state = self.state.lock();
        let line = Line {
            seq: state.next_seq,
            event,
        };
        state.next_seq = state.next_seq.wrapping_add(1);
        let mut dropped = 0;
        for reader in state.readers.iter() {
            if !reader.deliver(line) {
                dropped += 1;
            }
        }
        dropped
    }

    /// Adds `reader` to the open files; fails with `ENODEV` if the device is gone.
    fn attach(&self, reader: Arc<Reader>) -> Result {
        let mut state = self.state.lock();
        if state.gone {
            return Err(ENODEV);
        }
        state.readers.push(reader, GFP_KERNEL)?;
        Ok(())
    }

    /// Removes `reader` from the open files.
    fn detach(&self, reader: &Arc<Reader>) {
        self.state
            .lock()
            .readers
            .retain(|r| !Arc::ptr_eq(r, reader));
    }

    /// The device is going away: closes every file's queue (waking its readers) and forgets the
    /// files. Call after the misc device is deregistered and the last event was published.
    pub(crate) fn shutdown(&self) {
        let mut state = self.state.lock();
        state.gone = true;
        for reader in state.readers.iter() {
            reader.close();
        }
        state.readers.clear();
    }
}

/// The misc device `/dev/kbd0001` of one keyboard, with the hub its files join.
///
/// # Invariants
///
/// Every `MiscDeviceRegistration<Reader>` is the `misc` field of a `DevNode`: the only place
/// that registers one is [`DevNode::new`] (`Reader` is private to this crate).
#[pin_data]
pub(crate) struct DevNode {
    /// The registration. Declared first so that it is dropped (deregistered, which waits for a
    /// running `open()`) before `hub`, which `open()` reads.
    #[pin]
    misc: MiscDeviceRegistration<Reader>,
    /// The device's hub.
    hub: Arc<Hub>,
}

impl DevNode {
    /// Registers `/dev/kbd0001` for the device whose hub is `hub`.
    pub(crate) fn new(hub: Arc<Hub>) -> impl PinInit<Self, Error> {
        // `hub` is initialised before `misc`: the device can be opened as soon as it is
        // registered.
        try_pin_init!(Self {
            hub,
            misc <- MiscDeviceRegistration::register(MiscDeviceOptions { name: DEVICE_NAME }),
        })
    }

    /// Returns the `DevNode` that contains `misc`.
    fn from_misc(misc: &MiscDeviceRegistration<Reader>) -> &Self {
        let misc = core::ptr::from_ref(misc);
        // SAFETY: By the type invariant, `misc` is the `misc` field of a `DevNode`, so stepping
        // back by the field's offset gives a pointer to that `DevNode`, which is valid for as
        // long as `misc` is: the `DevNode` is pinned and is only dropped after its `misc` field.
        unsafe { &*kernel::container_of!(misc, DevNode, misc) }
    }
}

#[vtable]
impl MiscDevice for Reader {
    type Ptr = Arc<Reader>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<Arc<Reader>> {
        // `misc_open()` holds `misc_mtx` while it calls us, and deregistration takes it too: the
        // `DevNode` (and its hub) stays alive during this call.
        let hub = DevNode::from_misc(misc).hub.clone();
        let reader = Arc::pin_init(
            try_pin_init!(Reader {
                hub: DevNode::from_misc(misc).hub.clone(),
                queue <- new_spinlock!(Queue::new()?),
                readable <- new_condvar!(),
            }),
            GFP_KERNEL,
        )?;
        hub.attach(reader.clone())?;
        OPEN_FILES.fetch_add(1, Relaxed);
        Ok(reader)
    }

    fn release(reader: Arc<Reader>, _file: &File) {
        reader.hub.detach(&reader);
        drop(reader);
        // Last: `OpenFiles` may let the module go once this reaches zero.
        OPEN_FILES.fetch_sub(1, Release);
    }

    fn read_iter(kiocb: Kiocb<'_, Self::Ptr>, iov: &mut IovIterDest<'_>) -> Result<usize> {
        let reader = kiocb.file();
        // SAFETY: `ki_filp` of the `kiocb` of a `read_iter()` call is the file being read; the VFS
        // holds a reference to it for the whole call, which outlives `file`. A `LocalFile` may
        // coexist with an `fdget_pos()` of this read on the current thread.
        let file = unsafe { LocalFile::from_raw_file((*kiocb.as_raw()).ki_filp) };
        let nonblock = file.flags() & O_NONBLOCK != 0;

        let mut queue = reader.queue.lock();
        while queue.len == 0 {
            if queue.gone {
                // The device is gone and every line was read: end of file.
                return Ok(0);
            }
            if nonblock {
                return Err(EAGAIN);
            }
            if reader.readable.wait_interruptible(&mut queue) {
                return Err(ERESTARTSYS);
            }
        }

        // Whole lines only: each line is formatted and checked against the room left before it
        // is taken off the queue. The copy to user space happens without the lock held (it may
        // fault in pages); a line whose copy faults is lost, as `evdev` loses its events.
        let mut copied = 0;
        while let Some(line) = queue.front() {
            let buf = LineBuf::new(&line).map_err(|_| EINVAL)?;
            let bytes = buf.as_bytes();
            if bytes.len() > iov.len() {
                break;
            }
            queue.pop_front();
            drop(queue);
            let n = iov.copy_to_iter(bytes);
            if n < bytes.len() {
                // Only whole lines count: the partial one is not part of the result.
                return if copied > 0 { Ok(copied) } else { Err(EFAULT) };
            }
            copied += n;
            queue = reader.queue.lock();
        }
        if copied == 0 {
            // The buffer cannot hold the next line.
            return Err(EINVAL);
        }
        Ok(copied)
    }
}

/// Waits, when dropped, until every `/dev/kbd0001` file has been released.
///
/// The module holds one, after the driver registration: at module exit every device is unbound
/// first, which wakes blocked readers (they read end of file); this then waits for the files to
/// be closed, because each still calls into the module's `file_operations` (see the module
/// documentation). A process that keeps the file open without reading holds `rmmod` here.
pub(crate) struct OpenFiles;

impl Drop for OpenFiles {
    fn drop(&mut self) {
        /// Polling interval.
        const POLL: Delta = Delta::from_millis(10);
        /// Polls before the wait is logged: a reader that was just woken closes its file sooner.
        const QUIET_POLLS: u32 = 100;

        let mut polls = 0u32;
        // Pairs with the `Release` decrement in `release()`.
        while OPEN_FILES.load(Acquire) != 0 {
            if polls == QUIET_POLLS {
                pr_info!("waiting for the open /dev/kbd0001 files to be closed\n");
            }
            polls = polls.saturating_add(1);
            fsleep(POLL);
        }
    }
}
