//! The one deadline loop of the crate: every bounded wait goes through
//! [`retry`].

use std::time::{Duration, Instant};

/// The pause between two quick attempts: connecting to a socket QEMU is
/// about to create, reaping a QEMU that is about to exit.
pub(crate) const PAUSE: Duration = Duration::from_millis(20);

/// Calls `attempt` until it succeeds, fails or the deadline passes, calling
/// `pause` between two attempts. There is always at least one attempt.
///
/// An attempt returns `Ok(Ok(value))` when done, `Ok(Err(miss))` when it
/// has to be tried again (`miss`: what it saw instead), and `Err(e)` to give
/// up at once. `retry` returns the value, the error, or `Ok(Err(miss))` of
/// the last attempt once one that missed ended at or after `deadline`.
///
/// `state` is handed to both closures, so that both can use it (a machine
/// that one polls and the other waits on).
pub(crate) fn retry<S, T, M, E>(
    state: &mut S,
    deadline: Instant,
    mut pause: impl FnMut(&mut S),
    mut attempt: impl FnMut(&mut S) -> Result<Result<T, M>, E>,
) -> Result<Result<T, M>, E> {
    loop {
        let missed = match attempt(state)? {
            Ok(value) => return Ok(Ok(value)),
            Err(missed) => missed,
        };
        if Instant::now() >= deadline {
            return Ok(Err(missed));
        }
        pause(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_done_error_or_deadline() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut pauses = 0;
        let r: Result<Result<u32, u32>, ()> = retry(
            &mut pauses,
            far,
            |p| *p += 1,
            |p| Ok(if *p == 3 { Ok(7) } else { Err(*p) }),
        );
        assert_eq!((r, pauses), (Ok(Ok(7)), 3));

        let r: Result<Result<(), ()>, &str> = retry(&mut (), far, |_| {}, |_| Err("broken"));
        assert_eq!(r, Err("broken"));

        // A past deadline: one attempt, no pause, its miss returned.
        let mut pauses = 0;
        let r: Result<Result<(), &str>, ()> = retry(
            &mut pauses,
            Instant::now(),
            |p| *p += 1,
            |_| Ok(Err("not yet")),
        );
        assert_eq!((r, pauses), (Ok(Err("not yet")), 0));
    }
}
