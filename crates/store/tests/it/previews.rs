use helvetia_core::name::ServiceName;
use helvetia_core::preview::{PreviewLabel, PreviewSettings};
use helvetia_store::env::{EnvScope, StoredValue};
use helvetia_store::previews::{NewPreview, PreviewHead};

use crate::backend::TestDb;
use crate::deployments::demo_service;
use crate::projects::project;

fn var(name: &str, value: &str) -> StoredValue {
    StoredValue {
        name: name.into(),
        value: value.into(),
        secret: false,
        build: false,
        build_arg: false,
        key_id: None,
    }
}

pub async fn a_preview_is_a_service_of_its_parent_with_its_own_hostname_and_variables(db: &TestDb) {
    let store = &db.store;
    let admin = db.admin().await;
    let web = demo_service(db, "web").await;
    assert_eq!(
        store.preview_settings(web.id).await.unwrap(),
        PreviewSettings::default()
    );
    let settings = PreviewSettings {
        enabled: true,
        max_previews: 2,
        ..PreviewSettings::default()
    };
    store
        .set_preview_settings(&admin, &web, &settings)
        .await
        .unwrap();
    assert_eq!(store.preview_settings(web.id).await.unwrap(), settings);

    let label = PreviewLabel::pull_request(7);
    let name = label.service_name(&web.name);
    let sha = "a".repeat(40);
    let new = NewPreview {
        parent: &web,
        label: &label,
        name: &name,
        hostname: "pr-7.web.demo.old.example",
        settings: &web.settings,
        runtime: &web.runtime,
        head: PreviewHead {
            pull_request: Some(7),
            title: "Add a page",
            branch: "feature",
            head_sha: Some(&sha),
            fork: true,
        },
    };
    let preview = store.create_preview(&admin, &new).await.unwrap();
    let of = preview.preview.clone().unwrap();
    assert_eq!((of.parent_id, of.label.as_str()), (web.id, "pr-7"));
    assert_eq!(preview.name, ServiceName::parse("web--pr-7").unwrap());

    // Listings of services leave previews out; the previews' own listing has them.
    let listed = store
        .list_services(Some(&[admin.team]), Some(&project("demo")))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    let previews = store.previews(Some(web.id)).await.unwrap();
    assert_eq!(previews.len(), 1);
    let named = store.preview_named(web.id, &name).await.unwrap().unwrap();
    assert_eq!(named.service.id, preview.id);
    assert!(
        store
            .preview_named(preview.id, &name)
            .await
            .unwrap()
            .is_none(),
        "not its own preview"
    );
    assert!(previews[0].fork && previews[0].approved_sha.is_none());
    store
        .approve_preview(&admin, &preview, &sha, "someone")
        .await
        .unwrap();
    let record = store.preview(preview.id).await.unwrap().unwrap();
    assert_eq!(record.approved_sha.as_deref(), Some(sha.as_str()));
    store.set_preview_comment(preview.id, 99).await.unwrap();
    assert_eq!(
        store.preview(preview.id).await.unwrap().unwrap().comment_id,
        Some(99)
    );

    // A changed base domain moves the preview's hostname under its parent's.
    store.sync_generated_hostnames("new.example").await.unwrap();
    assert_eq!(
        store.hostnames(preview.id).await.unwrap(),
        ["pr-7.web.demo.new.example"]
    );
    assert_eq!(
        store.hostnames(web.id).await.unwrap(),
        ["web.demo.new.example"]
    );

    // The parent's variables for previews are apart from its own, and come last.
    let own = EnvScope::Service {
        project_id: web.project_id,
        service_id: web.id,
    };
    let for_previews = EnvScope::Previews {
        project_id: web.project_id,
        service_id: web.id,
    };
    store
        .set_env(&admin, own, "demo/web", &[var("MODE", "production")])
        .await
        .unwrap();
    store
        .set_env(&admin, for_previews, "demo/web", &[var("MODE", "preview")])
        .await
        .unwrap();
    assert_eq!(store.env(own).await.unwrap()[0].value, "production");
    assert_eq!(store.env(for_previews).await.unwrap()[0].value, "preview");
    let production = store
        .service_env(web.project_id, web.id, false)
        .await
        .unwrap();
    assert_eq!(production.len(), 1);
    let previewed = store
        .service_env(web.project_id, web.id, true)
        .await
        .unwrap();
    let values: Vec<&str> = previewed.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["production", "preview"]);

    store.delete_preview_service(preview.id).await.unwrap();
    assert!(store.preview(preview.id).await.unwrap().is_none());
    assert!(store.previews(Some(web.id)).await.unwrap().is_empty());
}
