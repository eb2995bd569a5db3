//! Crash points: named places right after a durable side effect where a test can make
//! the process die, as a `SIGKILL` would, to check that a restart converges. Compiled
//! only with the `failpoints` cargo feature (as sled's failpoints); without it every
//! function here is an empty inline function and nothing reads the environment.
//!
//! Each point has a name (the engine's is [`ENGINE_COMMIT`]; the restore steps name
//! theirs `step:<step>:<side effect>`) and counts its hits in the process. With
//! `OBRESTORE_CRASH_POINT=<name>#<nth>` in the environment (read once, at the first
//! hit of any point), the `nth` hit of `name` (the first is 1) writes one line to
//! stderr and calls [`std::process::abort`]: no destructor runs, nothing is flushed,
//! no task gets to finish. [`hits`] lists every point hit so far, so a test can run a
//! workload once to discover its points, then once per `(name, nth)` to crash there.
//!
//! Invariant: a point is hit only once its side effect is durable (for the engine: the
//! commit returned), so the crash leaves exactly what a kill at that moment would.

/// The environment variable that arms one crash point: `<name>#<nth>`.
pub const CRASH_POINT_ENV: &str = "OBRESTORE_CRASH_POINT";

/// The engine's point: hit once per transition a commit made durable, right after the
/// commit returned and before any of its effects (replies, events, sub-task starts).
/// Counting transitions rather than commits keeps the count of a workload independent
/// of how group commit merged its batches: `engine:commit#n` aborts right after the
/// commit that made the `n`-th transition durable.
pub const ENGINE_COMMIT: &str = "engine:commit";

#[cfg(feature = "failpoints")]
mod armed {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, OnceLock};

    /// The point the environment armed, if any.
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    /// Hits per point so far.
    static HITS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

    /// Parses `<name>#<nth>` (the name may itself hold `#`; `nth` ≥ 1).
    pub(super) fn parse(spec: &str) -> Option<(String, u64)> {
        let (name, nth) = spec.trim().rsplit_once('#')?;
        let nth = nth.parse::<u64>().ok().filter(|n| *n > 0)?;
        (!name.is_empty()).then(|| (name.to_string(), nth))
    }

    fn armed() -> Option<&'static (String, u64)> {
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::CRASH_POINT_ENV).ok()?;
                let parsed = parse(&spec);
                if parsed.is_none() {
                    eprintln!(
                        "{}={spec:?} is not <name>#<nth>; no crash point armed",
                        super::CRASH_POINT_ENV
                    );
                }
                parsed
            })
            .as_ref()
    }

    pub(super) fn hit(name: &str, times: u64) {
        if times == 0 {
            return;
        }
        let (before, after) = {
            let Ok(mut hits) = HITS.lock() else {
                return;
            };
            let count = hits.entry(name.to_string()).or_insert(0);
            let before = *count;
            *count += times;
            (before, *count)
        };
        if let Some((armed, nth)) = armed() {
            if armed == name && before < *nth && *nth <= after {
                eprintln!("crash point {name}#{nth}: aborting the process");
                std::process::abort();
            }
        }
    }

    pub(super) fn hits() -> Vec<(String, u64)> {
        HITS.lock()
            .map(|hits| hits.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

/// Hits point `name` once: aborts the process if this is the armed hit.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    armed::hit(name, 1);
}

/// Hits point `name` `times` times at once (one commit making several transitions
/// durable): aborts the process if the armed hit is among them.
#[cfg(feature = "failpoints")]
pub fn hit_times(name: &str, times: u64) {
    armed::hit(name, times);
}

/// Every point hit so far in this process and its hit count, by name.
#[cfg(feature = "failpoints")]
pub fn hits() -> Vec<(String, u64)> {
    armed::hits()
}

/// Without the `failpoints` feature a crash point is nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Without the `failpoints` feature a crash point is nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit_times(_name: &str, _times: u64) {}

#[cfg(all(test, feature = "failpoints"))]
mod tests {
    use super::armed::parse;

    #[test]
    fn a_spec_is_a_name_then_a_positive_count() {
        let cases: [(&str, Option<(&str, u64)>); 7] = [
            ("engine:commit#3", Some(("engine:commit", 3))),
            (
                "step:Create restoring tenant:after-create-tenant#1",
                Some(("step:Create restoring tenant:after-create-tenant", 1)),
            ),
            ("a#b#2", Some(("a#b", 2))),
            ("engine:commit#0", None),
            ("engine:commit", None),
            ("#4", None),
            ("engine:commit#x", None),
        ];
        for (spec, expected) in cases {
            let expected = expected.map(|(name, nth)| (name.to_string(), nth));
            assert_eq!(parse(spec), expected, "{spec}");
        }
    }
}
