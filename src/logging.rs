//! The process's log: `tracing` to stderr, filtered by `OBAGENT_LOG` (default `warn`).
//!
//! A thread that ends runs its thread-local destructors, and some of them log (a
//! dependency's deferred drop, a connection closed): at `trace` level that reaches
//! `tracing-subscriber`'s own thread-locals, which may already be gone, and a panic in a
//! thread-local destructor aborts the process (tokio-rs/tracing#3239). So every thread
//! that the process ends on purpose says so first ([`thread_ends`]: tokio's threads, the
//! main thread once the command returned), and from then on [`ExitSafe`] drops what that
//! thread logs. On the threads that cannot say so (a dependency's, a library's own),
//! [`ExitSafe`] catches a panic of the inner subscriber instead of letting it end the
//! process; its message is still printed.
//!
//! Invariant: once [`thread_ends`] ran on a thread, nothing it logs reaches the inner
//! subscriber, and no panic of the inner subscriber leaves [`ExitSafe`].

use std::cell::Cell;

use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_core::span::Current;
use tracing_subscriber::util::SubscriberInitExt as _;

thread_local! {
    /// Set once this thread ends (const, no destructor: readable until the very end).
    static ENDING: Cell<bool> = const { Cell::new(false) };
}

/// The id of every span opened on an ending thread: never one of the inner
/// subscriber's (the registry's ids are slab indexes plus one).
const DROPPED_SPAN: u64 = u64::MAX;

/// Installs the process's subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OBAGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish();
    // Also routes `log` records (sled's, say) to it.
    let _ = ExitSafe(subscriber).try_init();
}

/// This thread is ending: what it logs from now on (its thread-local destructors
/// included) is dropped.
pub fn thread_ends() {
    let _ = ENDING.try_with(|ending| ending.set(true));
}

fn ending() -> bool {
    ENDING.try_with(Cell::get).unwrap_or(true)
}

/// A subscriber that forwards to `S` except on a thread that [`thread_ends`].
#[derive(Debug)]
pub struct ExitSafe<S>(pub S);

/// `f`, or `otherwise` if it panicked.
fn guarded<T>(otherwise: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(otherwise)
}

impl<S: Subscriber> Subscriber for ExitSafe<S> {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !ending() && self.0.enabled(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        self.0.max_level_hint()
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        if ending() {
            return Id::from_u64(DROPPED_SPAN);
        }
        guarded(Id::from_u64(DROPPED_SPAN), || self.0.new_span(span))
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if !ending() && span.into_u64() != DROPPED_SPAN {
            guarded((), || self.0.record(span, values));
        }
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        let dropped = [span, follows]
            .iter()
            .any(|id| id.into_u64() == DROPPED_SPAN);
        if !ending() && !dropped {
            guarded((), || self.0.record_follows_from(span, follows));
        }
    }

    fn event_enabled(&self, event: &Event<'_>) -> bool {
        !ending() && self.0.event_enabled(event)
    }

    fn event(&self, event: &Event<'_>) {
        if !ending() {
            guarded((), || self.0.event(event));
        }
    }

    fn enter(&self, span: &Id) {
        if !ending() && span.into_u64() != DROPPED_SPAN {
            guarded((), || self.0.enter(span));
        }
    }

    fn exit(&self, span: &Id) {
        if !ending() && span.into_u64() != DROPPED_SPAN {
            guarded((), || self.0.exit(span));
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        if ending() || span.into_u64() == DROPPED_SPAN {
            return span.clone();
        }
        guarded(span.clone(), || self.0.clone_span(span))
    }

    fn try_close(&self, span: Id) -> bool {
        if ending() || span.into_u64() == DROPPED_SPAN {
            return false;
        }
        guarded(false, || self.0.try_close(span))
    }

    fn current_span(&self) -> Current {
        if ending() {
            return Current::none();
        }
        guarded(Current::none(), || self.0.current_span())
    }
}

#[cfg(test)]
mod tests {
    //! The abort itself, in a child process (it kills the process it happens in): a
    //! thread-local whose destructor logs at `trace`, on a thread whose
    //! `tracing-subscriber` thread-locals are destroyed first.

    use std::process::Command;

    use super::*;

    const CHILD: &str = "OBAGENT_LOGGING_TEST_CHILD";
    const TEST: &str = "logging::tests::a_thread_local_that_logs_as_its_thread_ends";

    struct LogsOnDrop;

    impl Drop for LogsOnDrop {
        fn drop(&mut self) {
            let span = tracing::trace_span!("dropping");
            let _entered = span.enter();
            tracing::trace!("dropped as the thread ends");
        }
    }

    thread_local! {
        static LOGS_ON_DROP: LogsOnDrop = const { LogsOnDrop };
    }

    /// The child: `plain` without [`ExitSafe`], `safe` with it and [`thread_ends`],
    /// `unmarked` with it but without [`thread_ends`].
    fn child(mode: &str) {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_writer(std::io::stderr)
            .finish();
        let safe = mode == "safe";
        if mode != "plain" {
            tracing::subscriber::set_global_default(ExitSafe(subscriber)).unwrap();
        } else {
            tracing::subscriber::set_global_default(subscriber).unwrap();
        }
        std::thread::spawn(move || {
            // Ours first, the subscriber's after: theirs are destroyed before ours.
            LOGS_ON_DROP.with(|_| ());
            let span = tracing::trace_span!("running");
            span.in_scope(|| tracing::trace!("the thread runs"));
            if safe {
                thread_ends();
            }
        })
        .join()
        .unwrap();
        println!("CHILD EXITED NORMALLY");
    }

    fn run_child(mode: &str) -> std::process::Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
            .env(CHILD, mode)
            .output()
            .unwrap()
    }

    #[test]
    fn a_thread_local_that_logs_as_its_thread_ends() {
        if let Ok(mode) = std::env::var(CHILD) {
            child(&mode);
            return;
        }
        let plain = run_child("plain");
        let safe = run_child("safe");
        let unmarked = run_child("unmarked");
        let text = |out: &std::process::Output| {
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        // The hazard is real: without the wrapper the process aborts. (Should a
        // `tracing-subscriber` release fix tokio-rs/tracing#3239, this fails, and
        // `ExitSafe` can go.)
        assert!(
            !plain.status.success() && !text(&plain).contains("CHILD EXITED NORMALLY"),
            "{:?}\n{}",
            plain.status,
            text(&plain)
        );
        assert!(
            safe.status.success() && text(&safe).contains("CHILD EXITED NORMALLY"),
            "{:?}\n{}",
            safe.status,
            text(&safe)
        );
        assert!(text(&safe).contains("the thread runs"), "{}", text(&safe));
        assert!(!text(&safe).contains("dropped as the thread ends"));
        // A thread that did not say it ends: the panic is caught, the process lives on.
        assert!(
            unmarked.status.success() && text(&unmarked).contains("CHILD EXITED NORMALLY"),
            "{:?}\n{}",
            unmarked.status,
            text(&unmarked)
        );
    }
}
