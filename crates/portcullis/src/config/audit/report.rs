//! The audit's outcome: one [`Check`] per row, the [`Report`] table, and the error
//! production refuses to start with.

use std::fmt;

/// Production refused to start: the audit failed. `Display` gives one line per
/// failing check, with its fix.
#[derive(Debug, Clone)]
pub struct AuditFailed {
    report: Report,
}

impl AuditFailed {
    pub(super) fn new(report: Report) -> Self {
        Self { report }
    }

    /// The whole audit.
    pub fn report(&self) -> &Report {
        &self.report
    }
}

impl fmt::Display for AuditFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for check in self.report.failures() {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(
                f,
                "portcullis: refusing to start in production: {}: {} (fix: {})",
                check.name, check.detail, check.fix
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for AuditFailed {}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fit for production.
    Pass,
    /// Production refuses this.
    Fail,
    /// Allowed, but worth a look: production starts anyway.
    Warn,
}

/// One row of the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name (`secret-key`, `https` …).
    pub name: &'static str,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it; empty when it passed.
    pub fix: String,
}

impl Check {
    pub(super) fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    pub(super) fn fail(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    pub(super) fn warn(
        name: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Warn,
            ..Self::fail(name, detail, fix)
        }
    }
}

/// Every check of an audit.
#[derive(Debug, Clone)]
pub struct Report {
    /// The rows, in a stable order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether no check failed (warnings do not stop production).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Fail)
    }

    /// The checks that passed with a warning.
    pub fn warnings(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Warn)
    }

    /// The failing checks.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }
}

impl fmt::Display for Report {
    /// A plain-text table: check, status, what was found, how to fix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        writeln!(f, "{:<width$}  {:<6}  detail / fix", "check", "status")?;
        for check in &self.checks {
            let status = match check.status {
                Status::Pass => "ok",
                Status::Fail => "FAIL",
                Status::Warn => "warn",
            };
            writeln!(f, "{:<width$}  {:<6}  {}", check.name, status, check.detail)?;
            if !check.fix.is_empty() {
                writeln!(f, "{:<width$}  {:<6}  fix: {}", "", "", check.fix)?;
            }
        }
        Ok(())
    }
}
