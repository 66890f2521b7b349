//! Deliveries that redeploy a service run from a registry image: a registry's notification
//! (Docker distribution's `{"events":[{"action":"push","target":{…}}]}`) that a followed tag
//! moved, or any other signed delivery, which asks for a redeploy as it is.

use serde::Deserialize;

use crate::image::ImageRef;

/// What a verified delivery does to a service run from `image`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageDecision {
    /// Pull again (a tag is resolved anew) and deploy: why, for the delivery log.
    Deploy(String),
    /// Nothing to do: why.
    Ignore(String),
}

#[derive(Deserialize)]
struct Notification {
    events: Vec<NotificationEvent>,
}

#[derive(Deserialize)]
struct NotificationEvent {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Option<NotificationTarget>,
}

#[derive(Deserialize)]
struct NotificationTarget {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: Option<String>,
}

/// Decides what a verified delivery with `body` does to a service run from `image`, pushed
/// settings' `auto_deploy` aside (the caller checks it first).
pub fn decide(image: &ImageRef, body: &[u8]) -> ImageDecision {
    let notification = serde_json::from_slice::<Notification>(body).ok();
    let Some(notification) = notification else {
        return ImageDecision::Deploy(format!("a signed delivery asked to redeploy {image}"));
    };
    let moved = notification.events.iter().any(|event| {
        event.action == "push"
            && event
                .target
                .as_ref()
                .is_some_and(|target| image.is_moved_by(&target.repository, target.tag.as_deref()))
    });
    match (moved, image.tag()) {
        (true, _) => ImageDecision::Deploy(format!("the registry reported a push of {image}")),
        (false, None) => ImageDecision::Ignore(format!(
            "{image} is pinned to a digest: no push to the registry moves it"
        )),
        (false, Some(tag)) => ImageDecision::Ignore(format!(
            "the notification reports no push of {}:{tag}",
            image.path()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::DestinationPolicy;

    fn image(reference: &str) -> ImageRef {
        ImageRef::parse(
            reference,
            DestinationPolicy {
                allow_private: true,
            },
        )
        .unwrap()
    }

    fn notification(action: &str, repository: &str, tag: &str) -> Vec<u8> {
        serde_json::json!({"events": [
            {"action": "pull", "target": {"repository": repository, "tag": tag}},
            {"action": action, "target": {"repository": repository, "tag": tag,
                                          "digest": "sha256:00", "mediaType": "x"}},
        ]})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_push_of_the_followed_tag_deploys() {
        let app = image("127.0.0.1:5000/team/app:v1");
        let deploys = |body: &[u8]| matches!(decide(&app, body), ImageDecision::Deploy(_));
        assert!(deploys(&notification("push", "team/app", "v1")));
        assert!(!deploys(&notification("push", "team/app", "v2")));
        assert!(!deploys(&notification("push", "team/other", "v1")));
        assert!(!deploys(&notification("delete", "team/app", "v1")));
        assert!(!deploys(br#"{"events": []}"#));
    }

    #[test]
    fn any_other_signed_delivery_redeploys() {
        let app = image("127.0.0.1:5000/team/app:v1");
        for body in [&b""[..], b"{}", b"not json", br#"{"ref": "x"}"#] {
            assert!(matches!(decide(&app, body), ImageDecision::Deploy(_)));
        }
    }

    #[test]
    fn a_pinned_digest_ignores_notifications() {
        let pinned = image(
            "127.0.0.1:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        let decision = decide(&pinned, &notification("push", "team/app", "v1"));
        assert!(matches!(decision, ImageDecision::Ignore(reason) if reason.contains("pinned")));
    }
}
