//! The audit as a person reads it (a table) and as a machine reads it (JSON).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::advice::explain;
use super::beyond::Verdict;
use super::observatory::TestOutcome;
use super::Audit;

/// pass / warn / fail for an Observatory test: a penalty that fails the test is a
/// failure, a penalty or failure alone is a warning.
fn verdict(test: &TestOutcome) -> Verdict {
    match (test.pass, test.score_modifier < 0) {
        (false, true) => Verdict::Fail,
        (true, true) | (false, false) => Verdict::Warn,
        (true, false) => Verdict::Pass,
    }
}

const NAME_WIDTH: usize = 31;

/// The table: one line per check (verdict, score change, why), a `fix:` line under
/// each one that has something to do, then the score and grade.
pub(crate) fn render_table(audit: &Audit) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "portcullis audit {}", audit.url);
    let _ = writeln!(
        out,
        "graded: {} ({}, {})",
        audit.graded, audit.status, audit.protocol
    );
    for note in &audit.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let _ = writeln!(
        out,
        "\nHTTP Observatory tests (scored with its published algorithm)"
    );
    let _ = writeln!(
        out,
        "{:<NAME_WIDTH$} {:<7} {:>5}  why",
        "check", "verdict", "score"
    );
    for test in &audit.tests {
        let (why, fix) = explain(test.result);
        let _ = writeln!(
            out,
            "{:<NAME_WIDTH$} {:<7} {:>5}  {why} [{}]",
            test.name,
            verdict(test).as_str(),
            format!("{:+}", test.score_modifier),
            test.result
        );
        // A passing test shows its fix only when a bonus is still to be had.
        if !fix.is_empty() && (verdict(test) != Verdict::Pass || fix.contains("(+")) {
            let _ = writeln!(out, "{:<NAME_WIDTH$}   fix: {fix}", "");
        }
    }
    let _ = writeln!(
        out,
        "\nScore {} (bonuses count from 90 up)   Grade {}",
        audit.score, audit.grade
    );
    let _ = writeln!(out, "\nBeyond the Observatory (not scored)");
    let _ = writeln!(out, "{:<NAME_WIDTH$} {:<7}        why", "check", "verdict");
    for check in &audit.beyond {
        let _ = writeln!(
            out,
            "{:<NAME_WIDTH$} {:<7}        {}",
            check.name,
            check.verdict.as_str(),
            check.why
        );
        if matches!(check.verdict, Verdict::Warn | Verdict::Fail) {
            let _ = writeln!(out, "{:<NAME_WIDTH$}   fix: {}", "", check.fix);
        }
    }
    let failing = audit
        .beyond
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .count();
    let _ = writeln!(
        out,
        "\nGrade {} ({}); {} check(s) beyond the Observatory fail.",
        audit.grade, audit.score, failing
    );
    out
}

/// The JSON: `score`, `grade`, `tests` keyed by the Observatory's test names (with
/// its field names), `beyond` keyed by check name.
pub(crate) fn render_json(audit: &Audit) -> Value {
    let mut tests = Map::new();
    for test in &audit.tests {
        let (why, fix) = explain(test.result);
        tests.insert(
            test.name.to_owned(),
            json!({
                "pass": test.pass,
                "score_modifier": test.score_modifier,
                "result": test.result,
                "score_description": why,
                "recommendation": fix,
                "data": test.data,
            }),
        );
    }
    let mut beyond = Map::new();
    for check in &audit.beyond {
        beyond.insert(
            check.name.to_owned(),
            json!({ "verdict": check.verdict.as_str(), "why": check.why, "fix": check.fix }),
        );
    }
    json!({
        "url": audit.url.as_str(),
        "graded_url": audit.graded.as_str(),
        "status_code": audit.status,
        "protocol": audit.protocol,
        "algorithm_version": 4,
        "score": audit.score,
        "grade": audit.grade,
        "tests_passed": audit.tests.iter().filter(|t| t.pass).count(),
        "tests_quantity": audit.tests.len(),
        "tests": tests,
        "beyond": beyond,
        "notes": audit.notes,
    })
}
