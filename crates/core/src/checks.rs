//! Whether a commit's CI has passed, from what GitHub reports on it: the latest commit status
//! of each context and its check runs. A service that waits for CI deploys a pushed commit only
//! once the verdict is [`Verdict::Passed`]. Helvetia's own statuses (`helvetia/…`, see
//! [`crate::commit_status`]) are not CI: they would wait for themselves.

/// A commit status's context and state, as GitHub's combined status lists them (the newest
/// per context).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReportedStatus {
    pub context: String,
    /// `success`, `pending`, `failure` or `error`.
    pub state: String,
}

/// A check run's name, status and conclusion, as GitHub lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReportedCheckRun {
    pub name: String,
    /// `queued`, `in_progress`, `completed` (and, for Actions, `waiting`, `requested`,
    /// `pending`).
    pub status: String,
    /// Set once completed: `success`, `neutral`, `skipped`, `failure`, `cancelled`,
    /// `timed_out`, `action_required`, `stale`, `startup_failure`.
    pub conclusion: Option<String>,
}

/// What a commit's checks say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every status and check run passed (and there is at least one).
    Passed,
    /// One failed: which, and how.
    Failed(String),
    /// Some are still running: which.
    Running(String),
    /// Nothing is reported on the commit (yet): CI may not have started, or there is none.
    NothingReported,
}

/// The verdict on a commit from its statuses and check runs.
pub fn verdict(statuses: &[ReportedStatus], runs: &[ReportedCheckRun]) -> Verdict {
    let mut running = vec![];
    let mut seen = false;
    for status in statuses.iter().filter(|status| {
        !status
            .context
            .starts_with(crate::commit_status::CONTEXT_PREFIX)
    }) {
        seen = true;
        match status.state.as_str() {
            "success" => {}
            "pending" => running.push(status.context.clone()),
            other => return Verdict::Failed(format!("status `{}` is {other}", status.context)),
        }
    }
    for run in runs {
        seen = true;
        match (run.status.as_str(), run.conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => {}
            ("completed", conclusion) => {
                return Verdict::Failed(format!(
                    "check `{}` concluded {}",
                    run.name,
                    conclusion.unwrap_or("without a conclusion")
                ));
            }
            _ => running.push(run.name.clone()),
        }
    }
    if !running.is_empty() {
        Verdict::Running(running.join(", "))
    } else if seen {
        Verdict::Passed
    } else {
        Verdict::NothingReported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(context: &str, state: &str) -> ReportedStatus {
        ReportedStatus {
            context: context.into(),
            state: state.into(),
        }
    }

    fn run(name: &str, status: &str, conclusion: Option<&str>) -> ReportedCheckRun {
        ReportedCheckRun {
            name: name.into(),
            status: status.into(),
            conclusion: conclusion.map(Into::into),
        }
    }

    #[test]
    fn all_passed_is_passed_and_nothing_is_nothing() {
        assert_eq!(verdict(&[], &[]), Verdict::NothingReported);
        let passed = verdict(
            &[status("ci/lint", "success")],
            &[
                run("test", "completed", Some("success")),
                run("docs", "completed", Some("skipped")),
                run("optional", "completed", Some("neutral")),
            ],
        );
        assert_eq!(passed, Verdict::Passed);
    }

    #[test]
    fn a_failure_wins_over_running_checks() {
        let failed = verdict(
            &[status("ci/lint", "pending")],
            &[run("test", "completed", Some("timed_out"))],
        );
        assert_eq!(
            failed,
            Verdict::Failed("check `test` concluded timed_out".into())
        );
        let errored = verdict(&[status("ci/build", "error")], &[]);
        assert_eq!(
            errored,
            Verdict::Failed("status `ci/build` is error".into())
        );
    }

    #[test]
    fn running_checks_are_named() {
        let running = verdict(
            &[status("ci/lint", "pending")],
            &[
                run("test", "in_progress", None),
                run("e2e", "completed", Some("success")),
            ],
        );
        assert_eq!(running, Verdict::Running("ci/lint, test".into()));
    }

    #[test]
    fn helvetias_own_statuses_are_not_ci() {
        let own = [status("helvetia/shop/web", "pending")];
        assert_eq!(verdict(&own, &[]), Verdict::NothingReported);
        let own_failed = [
            status("helvetia/shop/api", "failure"),
            status("ci/test", "success"),
        ];
        assert_eq!(verdict(&own_failed, &[]), Verdict::Passed);
    }
}
