//! Long scans report progress and stop when the caller cancels. A tool's scan loop calls
//! [`Work::tick`] once per item; the check itself is an atomic load every [`Work::CHECK_EVERY`]
//! items, so a scan of a million entries pays almost nothing for it.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::ToolError;

/// Progress reports: `(items done, items in all)`.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Cancellation and progress for one tool call.
pub struct Work<'a> {
    cancelled: Option<&'a AtomicBool>,
    progress: Option<ProgressFn<'a>>,
    /// When progress was last reported; reports are at most one per `interval`.
    last_report: Mutex<Option<Instant>>,
    interval: Duration,
    /// The call's deadline (`--tool-timeout`): past it the scan stops like a cancelled one.
    deadline: Option<(Instant, Duration)>,
    expired: AtomicBool,
}

impl<'a> Work<'a> {
    pub const CHECK_EVERY: u64 = 1024;
    pub const REPORT_EVERY: Duration = Duration::from_millis(200);

    /// No cancellation, no progress (the CLI's `call`).
    pub fn none() -> Work<'static> {
        Work {
            cancelled: None,
            progress: None,
            last_report: Mutex::new(None),
            interval: Self::REPORT_EVERY,
            deadline: None,
            expired: AtomicBool::new(false),
        }
    }

    pub fn new(cancelled: Option<&'a AtomicBool>, progress: Option<ProgressFn<'a>>) -> Self {
        Work {
            cancelled,
            progress,
            last_report: Mutex::new(None),
            interval: Self::REPORT_EVERY,
            deadline: None,
            expired: AtomicBool::new(false),
        }
    }

    /// Stops the scan `timeout` from now (`--tool-timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some((Instant::now() + timeout, timeout));
        self
    }

    /// Reports progress at most once per `interval` (default [`Work::REPORT_EVERY`]).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Called with the index of each item scanned; breaks once the call is cancelled.
    #[inline]
    pub fn tick(&self, done: u64, total: u64) -> ControlFlow<()> {
        if !done.is_multiple_of(Self::CHECK_EVERY) {
            return ControlFlow::Continue(());
        }
        self.check(done, total)
    }

    #[cold]
    fn check(&self, done: u64, total: u64) -> ControlFlow<()> {
        if self.is_cancelled() {
            return ControlFlow::Break(());
        }
        if let Some(p) = self.progress {
            let mut last = self.last_report.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            // The first report waits one interval: quick calls send none.
            match *last {
                None => *last = Some(now),
                Some(t) if now.duration_since(t) >= self.interval => {
                    *last = Some(now);
                    p(done, total);
                }
                Some(_) => {}
            }
        }
        ControlFlow::Continue(())
    }

    /// Cancelled by the client, or past the deadline.
    pub fn is_cancelled(&self) -> bool {
        if self.cancelled.is_some_and(|c| c.load(Ordering::Relaxed)) || self.expired.load(Ordering::Relaxed) {
            return true;
        }
        if let Some((at, _)) = self.deadline
            && Instant::now() >= at
        {
            self.expired.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// The error a stopped tool returns: cancelled by the client, or past its deadline.
    pub fn stopped_error(&self, tool: &str) -> ToolError {
        match self.deadline {
            Some((_, t)) if self.expired.load(Ordering::Relaxed) => ToolError(format!(
                "{tool}: stopped after {} ms, the tool-call deadline (--tool-timeout); narrow `filter` \
                 (a protocol, a service, a status) or the time window and call again",
                t.as_millis()
            )),
            _ => Self::cancelled_error(tool),
        }
    }

    /// The error a cancelled tool returns.
    pub fn cancelled_error(tool: &str) -> ToolError {
        ToolError(format!("{tool}: cancelled by the client before the scan finished"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn cancellation_breaks_at_the_next_check() {
        let flag = AtomicBool::new(false);
        let w = Work::new(Some(&flag), None);
        assert!(w.tick(0, 10).is_continue());
        flag.store(true, Ordering::Relaxed);
        assert!(w.tick(1, 10).is_continue(), "checked only every CHECK_EVERY items");
        assert!(w.tick(Work::CHECK_EVERY, 10).is_break());
        assert!(w.is_cancelled());
        assert!(Work::none().tick(0, 1).is_continue());
    }

    #[test]
    fn progress_is_rate_limited() {
        let calls = AtomicU64::new(0);
        let report = |_: u64, _: u64| {
            calls.fetch_add(1, Ordering::Relaxed);
        };
        let w = Work::new(None, Some(&report));
        for i in 0..(Work::CHECK_EVERY * 10) {
            let _ = w.tick(i, 0);
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0, "a fast scan reports nothing");
        std::thread::sleep(Work::REPORT_EVERY);
        let _ = w.tick(0, 0);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_deadline_stops_the_scan_with_an_error_that_says_so() {
        let work = Work::none().with_timeout(Duration::from_millis(20));
        assert!(work.tick(0, 10).is_continue());
        assert!(!work.is_cancelled());
        std::thread::sleep(Duration::from_millis(30));
        // Between checks nothing is read; at the next check the scan stops.
        assert!(work.tick(1, 10).is_continue());
        assert!(work.tick(Work::CHECK_EVERY, 10).is_break());
        assert!(work.is_cancelled());
        let e = work.stopped_error("list_entries").0;
        assert!(e.contains("stopped after 20 ms") && e.contains("--tool-timeout"), "{e}");
        // A client's cancellation says that instead.
        let flag = AtomicBool::new(true);
        let w = Work::new(Some(&flag), None).with_timeout(Duration::from_secs(60));
        assert!(w.is_cancelled());
        assert!(w.stopped_error("x").0.contains("cancelled by the client"));
    }
}
