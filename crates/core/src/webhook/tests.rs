use jiff::Timestamp;

use super::signature::{self, verify};
use super::*;

const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const B: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
    move |name| {
        pairs
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

#[test]
fn githubs_documented_test_vector() {
    let secret = b"It's a Secret to Everybody";
    let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(signature::github(secret, b"Hello, World!"), expected);
    let check = |value: &str, body: &[u8]| {
        verify(
            Source::Github,
            secret,
            headers(&[("X-Hub-Signature-256", value)]),
            body,
            now(),
        )
    };
    assert_eq!(check(expected, b"Hello, World!"), Verdict::Valid);
    assert_eq!(check(expected, b"Hello, World?"), Verdict::Invalid);
    assert_eq!(check("sha256=00", b"Hello, World!"), Verdict::Invalid);
    assert_eq!(check(&expected[7..], b"Hello, World!"), Verdict::Invalid);
    assert_eq!(
        verify(Source::Github, secret, headers(&[]), b"", now()),
        Verdict::Missing
    );
}

#[test]
fn gitea_and_forgejo_sign_with_a_bare_hex_hmac() {
    let body = br#"{"ref":"refs/heads/main"}"#;
    let hex = &signature::github(b"s3cret", body)[7..];
    for (source, header) in [
        (Source::Gitea, "X-Gitea-Signature"),
        (Source::Forgejo, "X-Forgejo-Signature"),
        (Source::Forgejo, "X-Gitea-Signature"),
    ] {
        let pairs = [(header, hex)];
        assert_eq!(
            verify(source, b"s3cret", headers(&pairs), body, now()),
            Verdict::Valid
        );
        assert_eq!(
            verify(source, b"other", headers(&pairs), body, now()),
            Verdict::Invalid
        );
    }
    let forgejo_only = [("X-Forgejo-Signature", hex)];
    assert_eq!(
        verify(
            Source::Gitea,
            b"s3cret",
            headers(&forgejo_only),
            body,
            now()
        ),
        Verdict::Missing
    );
}

#[test]
fn gitlab_sends_the_token_itself() {
    let check =
        |pairs: &[(&str, &str)]| verify(Source::Gitlab, b"tok", headers(pairs), b"{}", now());
    assert_eq!(check(&[("X-Gitlab-Token", "tok")]), Verdict::Valid);
    assert_eq!(check(&[("X-Gitlab-Token", "tok2")]), Verdict::Invalid);
    assert_eq!(check(&[("X-Gitlab-Token", "")]), Verdict::Invalid);
    assert_eq!(check(&[]), Verdict::Missing);
}

#[test]
fn generic_signatures_cover_the_timestamp_and_expire() {
    let body = br#"{"ref":"main","after":"6113728f27ae82c7b1a177c8d03f9e96e0adf246"}"#;
    let sent = now().as_second();
    let signed = signature::generic(b"k", sent, body);
    let check = |timestamp: String, signature: &str, at: Timestamp| {
        let pairs = [
            ("X-Helvetia-Signature-256", signature),
            ("X-Helvetia-Timestamp", timestamp.as_str()),
        ];
        verify(Source::Generic, b"k", headers(&pairs), body, at)
    };
    assert_eq!(check(sent.to_string(), &signed, now()), Verdict::Valid);
    // The timestamp is signed: moving it breaks the signature.
    assert_eq!(
        check((sent + 1).to_string(), &signed, now()),
        Verdict::Invalid
    );
    let later = Timestamp::from_second(sent + 301).unwrap();
    assert_eq!(check(sent.to_string(), &signed, later), Verdict::Expired);
    let earlier = Timestamp::from_second(sent - 299).unwrap();
    assert_eq!(check(sent.to_string(), &signed, earlier), Verdict::Valid);
    assert_eq!(check("soon".into(), &signed, now()), Verdict::Invalid);
    let unsigned = [("X-Helvetia-Timestamp", "1")];
    assert_eq!(
        verify(Source::Generic, b"k", headers(&unsigned), body, now()),
        Verdict::Missing
    );
}

#[test]
fn events_and_delivery_ids_per_source() {
    let github = [
        ("X-GitHub-Event", "push"),
        ("X-GitHub-Delivery", "72d3162e-cc78"),
    ];
    assert_eq!(Source::Github.event(headers(&github)), Event::Push);
    assert_eq!(
        Source::Github.delivery_id(headers(&github)).as_deref(),
        Some("72d3162e-cc78")
    );
    let ping = [("X-GitHub-Event", "ping")];
    assert_eq!(Source::Github.event(headers(&ping)), Event::Ping);
    let gitlab = [
        ("X-Gitlab-Event", "Tag Push Hook"),
        ("X-Gitlab-Event-UUID", "u-1"),
        ("Idempotency-Key", "k-1"),
    ];
    assert_eq!(Source::Gitlab.event(headers(&gitlab)), Event::Push);
    assert_eq!(
        Source::Gitlab.delivery_id(headers(&gitlab)).as_deref(),
        Some("k-1")
    );
    let forgejo = [("X-Gitea-Event", "push"), ("X-Forgejo-Delivery", "f-1")];
    assert_eq!(Source::Forgejo.event(headers(&forgejo)), Event::Push);
    assert_eq!(
        Source::Forgejo.delivery_id(headers(&forgejo)).as_deref(),
        Some("f-1")
    );
    assert_eq!(Source::Generic.event(headers(&[])), Event::Push);
    let issue = [("X-Gitea-Event", "issues")];
    assert_eq!(
        Source::Gitea.event(headers(&issue)),
        Event::Other("issues".into())
    );
}

/// The shape of GitHub's documented example push payload (abridged: the repository's and
/// sender's URL fields left out): a tag deleted, no head commit, and timestamps in the
/// repository given as numbers as well as strings.
const GITHUB_EXAMPLE: &str = r#"{
  "ref": "refs/tags/simple-tag",
  "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "after": "0000000000000000000000000000000000000000",
  "created": false,
  "deleted": true,
  "forced": false,
  "base_ref": null,
  "compare": "https://github.com/Codertocat/Hello-World/compare/6113728f27ae...000000000000",
  "commits": [],
  "head_commit": null,
  "repository": {
    "id": 186853002,
    "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
    "name": "Hello-World",
    "full_name": "Codertocat/Hello-World",
    "private": false,
    "owner": {"name": "Codertocat", "login": "Codertocat", "id": 21031067, "type": "User", "site_admin": false},
    "created_at": 1557933565,
    "updated_at": "2019-05-15T15:20:41Z",
    "pushed_at": 1557933657,
    "default_branch": "master",
    "master_branch": "master",
    "stargazers": 0
  },
  "pusher": {"name": "Codertocat", "email": "21031067+Codertocat@users.noreply.github.com"},
  "sender": {"login": "Codertocat", "id": 21031067, "type": "User", "site_admin": false},
  "installation": {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="}
}"#;

#[test]
fn githubs_documented_example_push_parses() {
    let push = PushEvent::from_github(GITHUB_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(push.git_ref, "refs/tags/simple-tag");
    assert_eq!(push.before, A);
    assert_eq!(push.after, ZERO);
    assert!(push.deleted && !push.created && !push.forced);
    assert_eq!(push.pusher.as_deref(), Some("Codertocat"));
    assert_eq!(push.repository_id, Some(186853002));
    assert!(
        push.compare_url
            .unwrap()
            .ends_with("compare/6113728f27ae...000000000000")
    );
    let settings = PushSettings::default();
    assert_eq!(
        decide(
            &PushEvent::from_github(GITHUB_EXAMPLE.as_bytes()).unwrap(),
            "main",
            &settings
        ),
        Decision::Ignore("tag `simple-tag` pushed: only pushes to a branch deploy".into())
    );
}

fn github_push(branch: &str, files: &[&str]) -> String {
    serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": A, "after": B,
        "created": false, "deleted": false, "forced": false,
        "compare": "https://github.com/o/r/compare/6113728f27ae...0d1a26e67d8f",
        "commits": [{"id": B, "message": "Fix it", "added": files, "removed": [], "modified": []}],
        "head_commit": {"id": B, "message": "Fix it", "added": files, "removed": [], "modified": []},
        "pusher": {"name": "ada", "email": "ada@example.com"},
        "repository": {"id": 42, "full_name": "o/r"},
    })
    .to_string()
}

#[test]
fn a_branch_push_from_github() {
    let push = PushEvent::from_github(github_push("main", &["src/a.rs"]).as_bytes()).unwrap();
    assert_eq!(push.after, B);
    assert_eq!(push.message.as_deref(), Some("Fix it"));
    assert_eq!(push.changed_files, vec!["src/a.rs".to_owned()]);
    assert!(push.lists_every_change());
}

#[test]
fn giteas_push_format() {
    let body = serde_json::json!({
        "ref": "refs/heads/main", "before": A, "after": B,
        "compare_url": "https://gitea.example/o/r/compare/6113728f27ae...0d1a26e67d8f",
        "commits": [
            {"id": B, "message": "two\n", "added": ["a"], "removed": ["b"], "modified": ["c", "a"]}
        ],
        "total_commits": 3,
        "head_commit": {"id": B, "message": "two\n"},
        "pusher": {"id": 1, "login": "ada", "full_name": "", "email": "ada@example.com", "username": "ada"},
        "repository": {"id": 7, "full_name": "o/r"}
    });
    let push = PushEvent::from_github(body.to_string().as_bytes()).unwrap();
    assert_eq!(push.pusher.as_deref(), Some("ada"));
    assert_eq!(push.message.as_deref(), Some("two"));
    assert_eq!(push.changed_files, ["a", "b", "c"]);
    assert!(push.truncated, "3 commits pushed, 1 listed");
    assert!(
        push.compare_url
            .unwrap()
            .starts_with("https://gitea.example/")
    );
}

#[test]
fn gitlabs_push_format() {
    let body = serde_json::json!({
        "object_kind": "push", "event_name": "push",
        "before": ZERO, "after": B, "ref": "refs/heads/main", "checkout_sha": B,
        "user_name": "Ada Lovelace", "user_username": "ada",
        "project": {"id": 15, "web_url": "https://gitlab.example/o/r", "path_with_namespace": "o/r"},
        "commits": [{"id": B, "message": "first", "added": ["x"], "modified": [], "removed": []}],
        "total_commits_count": 1
    });
    let push = PushEvent::from_gitlab(body.to_string().as_bytes()).unwrap();
    assert_eq!(push.pusher.as_deref(), Some("ada"));
    assert_eq!(push.message.as_deref(), Some("first"));
    assert!(push.created && !push.deleted && !push.truncated);
    assert!(!push.lists_every_change(), "a new branch has no before");
    assert_eq!(
        push.compare_url.as_deref(),
        Some(format!("https://gitlab.example/o/r/-/compare/{ZERO}...{B}").as_str())
    );
}

#[test]
fn the_generic_format_and_its_refusals() {
    let push = PushEvent::from_generic(
        format!(r#"{{"ref":"main","after":"{B}","before":"{A}"}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(push.git_ref, "refs/heads/main");
    assert!(push.truncated, "no changed_files: unknown");
    let listed = format!(
        r#"{{"ref":"refs/heads/main","after":"{B}","before":"{A}","changed_files":["a"]}}"#
    );
    assert!(
        PushEvent::from_generic(listed.as_bytes())
            .unwrap()
            .lists_every_change()
    );
    for bad in [
        r#"{"ref":"main","after":"not-a-sha"}"#.to_owned(),
        format!(r#"{{"ref":"main","after":"{}"}}"#, &B[..7]),
        format!(r#"{{"ref":"main","after":"{B}","unknown":1}}"#),
        format!(r#"{{"ref":"","after":"{B}"}}"#),
        "not json".to_owned(),
    ] {
        assert!(PushEvent::from_generic(bad.as_bytes()).is_err(), "{bad}");
    }
}

fn settings(auto_deploy: bool, patterns: &[&str]) -> PushSettings {
    PushSettings {
        auto_deploy,
        watch_paths: WatchPaths::parse(patterns).unwrap(),
        cancel_running: false,
        wait_for_ci: false,
    }
}

#[test]
fn what_a_push_does_to_a_service() {
    let push = |branch, files: &[&str]| {
        PushEvent::from_github(github_push(branch, files).as_bytes()).unwrap()
    };
    assert_eq!(
        decide(&push("main", &["x"]), "main", &settings(true, &[])),
        Decision::Deploy
    );
    assert_eq!(
        decide(&push("dev", &["x"]), "main", &settings(true, &[])),
        Decision::Ignore("pushed to branch `dev`; the service deploys `main`".into())
    );
    assert_eq!(
        decide(&push("main", &["x"]), "main", &settings(false, &[])),
        Decision::Ignore("auto-deploy is off for this service".into())
    );
    assert_eq!(
        decide(
            &push("main", &["src/a.rs"]),
            "main",
            &settings(true, &["src/**"])
        ),
        Decision::Deploy
    );
    assert!(matches!(
        decide(&push("main", &["docs/a.md"]), "main", &settings(true, &["src/**"])),
        Decision::Ignore(reason) if reason.contains("watch paths (src/**)")
    ));
    let mut forced = push("main", &["docs/a.md"]);
    forced.forced = true;
    assert_eq!(
        decide(&forced, "main", &settings(true, &["src/**"])),
        Decision::Diff
    );
    assert_eq!(
        decide(&forced, "main", &settings(true, &[])),
        Decision::Deploy
    );
    let mut deleted = push("main", &[]);
    deleted.after = ZERO.into();
    deleted.deleted = true;
    assert_eq!(
        decide(&deleted, "main", &settings(true, &[])),
        Decision::Ignore("branch `main` was deleted".into())
    );
    let watch = WatchPaths::parse(&["src/"]).unwrap();
    assert_eq!(decide_with_files(None, &watch), Decision::Deploy);
    assert_eq!(
        decide_with_files(Some(&["src/x/y".into()]), &watch),
        Decision::Deploy
    );
}

#[test]
fn watch_paths_are_git_style_globs() {
    let watch = WatchPaths::parse(&["src/*.rs", "web/**", "Dockerfile", "docs/"]).unwrap();
    let matches = |file: &str| watch.matches_any(&[file.to_owned()]);
    assert!(matches("src/main.rs"));
    assert!(!matches("src/nested/main.rs"), "* stays in its directory");
    assert!(matches("web/a/b/c.css"));
    assert!(matches("Dockerfile"));
    assert!(!matches("app/Dockerfile"));
    assert!(matches("docs/guide/x.md"));
    assert!(!matches("README.md"));
    assert!(WatchPaths::parse(&["src/[".to_owned()]).is_err());
    assert!(WatchPaths::parse(&[""]).is_err());
    assert!(WatchPaths::parse(&vec!["a"; 51]).is_err());
}
