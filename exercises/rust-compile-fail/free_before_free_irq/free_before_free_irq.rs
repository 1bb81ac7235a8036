// SPDX-License-Identifier: GPL-2.0

//! Exercise 6 in Rust: freeing what the handler uses before the interrupt is freed.
//!
//! The C exercise (`exercises/c/bug_free_before_free_irq.c`) frees its state with `kfree()` and
//! only then calls `free_irq()`; the handler runs once more on the freed memory and KASAN reports
//! it. Here the same mistake is written with the kernel crate's `irq::Registration`, and it does
//! not compile:
//!
//! - the handler borrows the state (`UsesState { state: &state }`), but a handler must be
//!   `'static` (`irq::Handler: Sync + 'static`): it may run until the registration is dropped,
//!   which the borrow checker cannot tie to the local `state`, so `state` "does not live long
//!   enough" (E0597);
//! - `drop(state)` frees the state while the registration still borrows it: "cannot move out of
//!   `state` because it is borrowed" (E0505).
//!
//! The correct code (built with `--cfg fixed`, `make ... FIXED=1`) gives the handler its own
//! reference count on the state (`Arc`): dropping the probe's reference frees nothing while the
//! handler holds one, and the registration, dropped on unbind, frees the interrupt (`free_irq()`)
//! before it drops the handler and with it the last reference.

use kernel::{
    acpi,
    device::{
        Bound,
        Core,
        Device, //
    },
    irq::{
        self,
        IrqReturn, //
    },
    platform,
    prelude::*,
    sync::atomic::{
        Atomic,
        Relaxed, //
    },
};

#[cfg(fixed)]
use kernel::sync::Arc;

/// What the handler uses: a count of its calls.
struct State {
    /// Handler invocations.
    calls: Atomic<u64>,
}

/// The interrupt handler, which uses the state.
struct UsesState {
    /// The state: borrowed in the bug, shared in the fix.
    #[cfg(not(fixed))]
    state: &'static State,
    /// The state: borrowed in the bug, shared in the fix.
    #[cfg(fixed)]
    state: Arc<State>,
}

impl irq::Handler for UsesState {
    fn handle(&self, _dev: &Device<Bound>) -> IrqReturn {
        self.state.calls.fetch_add(1, Relaxed);
        IrqReturn::None
    }
}

/// The driver data: the interrupt registration. Dropping it frees the interrupt.
#[pin_data]
struct FreeBeforeFreeIrq {
    /// The registration.
    _irq: Pin<KBox<irq::Registration<UsesState>>>,
}

kernel::acpi_device_table!(
    ACPI_TABLE,
    MODULE_ACPI_TABLE,
    <FreeBeforeFreeIrq as platform::Driver>::IdInfo,
    [(acpi::DeviceId::new(c"KBD0001"), ())]
);

impl platform::Driver for FreeBeforeFreeIrq {
    type IdInfo = ();
    type Data<'bound> = Self;
    const ACPI_ID_TABLE: Option<acpi::IdTable<Self::IdInfo>> = Some(&ACPI_TABLE);

    fn probe<'bound>(
        pdev: &'bound platform::Device<Core<'_>>,
        _id_info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self, Error> + 'bound {
        pin_init::pin_init_scope(move || {
            let request = pdev.irq_by_index(0)?;
            let fresh = State {
                calls: Atomic::new(0),
            };

            #[cfg(not(fixed))]
            let state = KBox::new(fresh, GFP_KERNEL)?;
            #[cfg(not(fixed))]
            let handler = UsesState { state: &state };

            #[cfg(fixed)]
            let state = Arc::new(fresh, GFP_KERNEL)?;
            #[cfg(fixed)]
            let handler = UsesState {
                state: state.clone(),
            };

            let registration = KBox::pin_init(
                irq::Registration::new(
                    request,
                    irq::Flags::SHARED,
                    c"free_before_free_irq",
                    Ok::<_, Error>(handler),
                ),
                GFP_KERNEL,
            )?;
            // THE BUG (in C: kfree() before free_irq()): the state goes while the handler may
            // still run. With the fix this drops the probe's reference only.
            drop(state);
            Ok(try_pin_init!(Self {
                _irq: registration
            }))
        })
    }
}

kernel::module_platform_driver! {
    type: FreeBeforeFreeIrq,
    name: "free_before_free_irq",
    authors: ["Rust keyboard lab"],
    description: "Compile-fail exercise: state freed before the interrupt that uses it",
    license: "GPL",
}
