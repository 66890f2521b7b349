use serde_json::json;

use super::*;

fn event(action: &str, fork: bool, label: Option<&str>) -> PullRequestEvent {
    let head_repo = if fork { 99 } else { 1 };
    let mut payload = json!({
        "action": action,
        "number": 7,
        "pull_request": {
            "title": "Add a page",
            "head": {"ref": "feature/page", "sha": "a".repeat(40), "repo": {"id": head_repo}},
        },
        "repository": {"id": 1},
        "sender": {"id": 42, "login": "octo"},
    });
    if let Some(label) = label {
        payload["label"] = json!({"name": label});
    }
    PullRequestEvent::parse(payload.to_string().as_bytes()).unwrap()
}

#[test]
fn a_pull_request_from_the_repository_itself_deploys() {
    let settings = PreviewSettings::default();
    for action in ["opened", "reopened", "synchronize"] {
        assert_eq!(
            event(action, false, None).decide(&settings, None),
            PreviewAction::Deploy
        );
    }
    assert_eq!(
        event("closed", false, None).decide(&settings, None),
        PreviewAction::Remove
    );
}

#[test]
fn a_fork_waits_for_an_approval_of_its_head_commit() {
    let settings = PreviewSettings::default();
    let opened = event("opened", true, None);
    assert!(opened.fork);
    assert_eq!(opened.decide(&settings, None), PreviewAction::AwaitApproval);
    assert_eq!(
        opened.decide(&settings, Some(&"b".repeat(40))),
        PreviewAction::AwaitApproval,
        "an approval of another commit does not count"
    );
    assert_eq!(
        opened.decide(&settings, Some(&"a".repeat(40))),
        PreviewAction::Deploy
    );
    let labeled = event("labeled", true, Some("deploy-preview"));
    assert_eq!(
        labeled.decide(&settings, None),
        PreviewAction::ApproveIfDeployer
    );
    let other_label = event("labeled", true, Some("bug"));
    assert!(matches!(
        other_label.decide(&settings, None),
        PreviewAction::Ignore(_)
    ));
}

#[test]
fn a_head_repository_deleted_since_counts_as_a_fork() {
    let payload = json!({
        "action": "opened", "number": 3,
        "pull_request": {"title": "t", "head": {"ref": "x", "sha": "c".repeat(40), "repo": null}},
        "repository": {"id": 1}, "sender": {"id": 1, "login": "a"},
    });
    assert!(
        PullRequestEvent::parse(payload.to_string().as_bytes())
            .unwrap()
            .fork
    );
}

#[test]
fn labels_and_names() {
    let parent = ServiceName::parse("web").unwrap();
    let label = PreviewLabel::pull_request(12);
    assert_eq!(label.service_name(&parent).as_str(), "web--pr-12");
    assert_eq!(
        label.hostname("web.demo.localhost"),
        "pr-12.web.demo.localhost"
    );
    let long = ServiceName::parse(&"s".repeat(63)).unwrap();
    assert_eq!(label.service_name(&long).as_str().len(), 63);
    assert_eq!(
        PreviewLabel::for_branch("feature/New_Login!")
            .unwrap()
            .as_str(),
        "new-login"
    );
    assert!(PreviewLabel::parse("pr-3").is_err());
    assert!(PreviewLabel::parse("a--b").is_err());
    assert!(PreviewLabel::parse("Bad").is_err());
    assert!(PreviewLabel::for_branch("___").is_err());
}

#[test]
fn settings_are_checked_field_by_field() {
    let settings = PreviewSettings::default();
    let input = PreviewSettingsInput {
        max_previews: Some(0),
        idle_minutes: Some(MAX_IDLE_MINUTES + 1),
        approve_label: Some(" ".into()),
        ..Default::default()
    };
    let errors = settings.merged(&input).unwrap_err();
    assert_eq!(errors.fields().len(), 3);
    let merged = settings
        .merged(&PreviewSettingsInput {
            enabled: Some(true),
            max_previews: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert!(merged.enabled && merged.max_previews == 2 && !merged.secrets);
}

#[test]
fn the_comment_names_the_state_and_the_url() {
    let label = PreviewLabel::pull_request(4);
    let body = comment_body(
        ("demo", "web"),
        &label,
        &"d".repeat(40),
        "http://pr-4.web.demo.localhost",
        CommentState::AwaitingApproval {
            label: "deploy-preview",
        },
    );
    assert!(body.contains("Waiting for approval") && body.contains("`ddddddd`"));
    assert!(body.contains("http://pr-4.web.demo.localhost"));
}
