// SPDX-License-Identifier: GPL-2.0

//! A bounded single-producer, single-consumer queue of `u64` words that is safe to use in hard
//! interrupt context.
//!
//! The interrupt handler hands bytes (or packed key events) to its bottom half through a [`Ring`]:
//! the handler is the only producer, the bottom half (the IRQ thread or the work item) the only
//! consumer. Pushing never blocks, never spins on a lock and never allocates; a full ring refuses
//! the word and the caller counts the loss.
//!
//! Why not a lock: the kernel crate of this kernel (7.2) has no interrupt-disabling lock
//! (`spin_lock_irqsave()` is not wrapped), so a [`SpinLock`] taken in the hard handler and in
//! process context could deadlock when the interrupt arrives on the CPU that holds it. The ring
//! needs no lock at all: the producer only writes `head`, the consumer only writes `tail`, and
//! every slot is an atomic, so even a second producer or consumer (which the driver never has)
//! could lose or reorder words but never cause undefined behaviour.
//!
//! [`SpinLock`]: kernel::sync::SpinLock

use kernel::sync::atomic::{
    Acquire,
    Atomic,
    Relaxed,
    Release, //
};

/// The ring refused a word because it was full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Full;

/// A bounded FIFO of `N` words with one producer and one consumer.
///
/// `head` and `tail` count the words ever pushed and popped, wrapping at 2^32; the word pushed
/// as number `n` lives in slot `n % N`.
///
/// # Invariants
///
/// - `N` is a power of two no larger than 2^31, so that `head - tail` (wrapping) is the number
///   of words in the ring and `n % N` is continuous across the wrap of the counters.
/// - `0 <= head - tail <= N` (wrapping arithmetic).
/// - Only [`Ring::push`] stores to `head` and the slots, only [`Ring::pop`] stores to `tail`;
///   the driver calls `push` from one context at a time (the hard interrupt handler of one IRQ
///   line, which the IRQ core never runs on two CPUs at once) and `pop` from one context at a
///   time (the line's IRQ thread, or a work item, which a workqueue never runs concurrently with
///   itself).
pub(crate) struct Ring<const N: usize> {
    /// The words; slot `n % N` holds word number `n` while `tail <= n < head`.
    slots: [Atomic<u64>; N],
    /// Number of words ever pushed.
    head: Atomic<u32>,
    /// Number of words ever popped.
    tail: Atomic<u32>,
}

impl<const N: usize> Ring<N> {
    /// Compile-time check of the invariant on `N`.
    const VALID_CAPACITY: () = assert!(N.is_power_of_two() && N <= 1 << 31);

    /// Creates an empty ring.
    pub(crate) const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_CAPACITY;
        // INVARIANT: `N` is checked at compile time above; `head == tail`: the ring is empty.
        Self {
            slots: [const { Atomic::new(0) }; N],
            head: Atomic::new(0),
            tail: Atomic::new(0),
        }
    }

    /// Returns the slot of word number `n`.
    fn slot(&self, n: u32) -> &Atomic<u64> {
        // In bounds: `N` is a power of two (type invariant), so the mask is below `N`.
        &self.slots[n as usize & (N - 1)]
    }

    /// Appends `word`, or returns [`Full`] if the ring holds `N` words already.
    ///
    /// Never blocks: safe in hard interrupt context. Must only be called by the ring's producer.
    pub(crate) fn push(&self, word: u64) -> Result<(), Full> {
        // Only the producer stores `head`, so a relaxed load sees our own last store.
        let head = self.head.load(Relaxed);
        // Pairs with the `Release` store of `tail` in `pop`: once we see a slot as free, the
        // consumer's load of the word that was in it has happened.
        let tail = self.tail.load(Acquire);
        if head.wrapping_sub(tail) as usize >= N {
            return Err(Full);
        }
        self.slot(head).store(word, Relaxed);
        // INVARIANT: one more word, at most `N`. Publishes the slot to the consumer (pairs with
        // the `Acquire` load of `head` in `pop`).
        self.head.store(head.wrapping_add(1), Release);
        Ok(())
    }

    /// Removes and returns the oldest word, or `None` if the ring is empty.
    ///
    /// Never blocks. Must only be called by the ring's consumer.
    pub(crate) fn pop(&self) -> Option<u64> {
        // Only the consumer stores `tail`.
        let tail = self.tail.load(Relaxed);
        // Pairs with the `Release` store of `head` in `push`: the word in the slot is visible.
        let head = self.head.load(Acquire);
        if head == tail {
            return None;
        }
        let word = self.slot(tail).load(Relaxed);
        // INVARIANT: one word fewer. Hands the slot back to the producer (pairs with the
        // `Acquire` load of `tail` in `push`).
        self.tail.store(tail.wrapping_add(1), Release);
        Some(word)
    }

    /// Returns `true` if the ring holds no word (as seen at the time of the call).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Acquire) == self.tail.load(Acquire)
    }
}

#[kernel::macros::kunit_tests(rust_keyboard_ring)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order() {
        let ring = Ring::<4>::new();
        assert!(ring.is_empty());
        assert_eq!(ring.pop(), None);
        for word in [1, 2, 3] {
            assert_eq!(ring.push(word), Ok(()));
        }
        assert!(!ring.is_empty());
        assert_eq!(ring.pop(), Some(1));
        assert_eq!(ring.pop(), Some(2));
        assert_eq!(ring.pop(), Some(3));
        assert_eq!(ring.pop(), None);
        assert!(ring.is_empty());
    }

    #[test]
    fn full_ring_refuses_and_keeps_its_words() {
        let ring = Ring::<4>::new();
        for word in 10..14 {
            assert_eq!(ring.push(word), Ok(()));
        }
        assert_eq!(ring.push(99), Err(Full));
        assert_eq!(ring.pop(), Some(10));
        // One slot is free again.
        assert_eq!(ring.push(14), Ok(()));
        assert_eq!(ring.push(15), Err(Full));
        for word in 11..15 {
            assert_eq!(ring.pop(), Some(word));
        }
        assert_eq!(ring.pop(), None);
    }

    #[test]
    fn counters_wrap() {
        let ring = Ring::<2>::new();
        // Start just below the wrap of the 32-bit counters.
        ring.head.store(u32::MAX - 1, Relaxed);
        ring.tail.store(u32::MAX - 1, Relaxed);
        for word in 0..10u64 {
            assert_eq!(ring.push(word), Ok(()));
            assert_eq!(ring.push(word + 100), Ok(()));
            assert_eq!(ring.push(0), Err(Full));
            assert_eq!(ring.pop(), Some(word));
            assert_eq!(ring.pop(), Some(word + 100));
            assert_eq!(ring.pop(), None);
        }
    }
}
