//! The API against its own OpenAPI document: schemathesis generates requests from the
//! document (valid and invalid ones, and chains of calls along its links) and checks every
//! answer — its status is documented, its body and headers match the schema, valid input is
//! accepted, invalid input refused, no 5xx.
//!
//! Every check runs on every operation but token revocation (which could revoke the token the
//! run uses) and a notification channel's test message (which would send a request to a
//! generated host). The seed is fixed and the example budget small, so a run is repeatable and takes
//! well under a minute; `schemathesis.toml` beside this file lists the operations whose policy
//! refuses some schema-valid input, and why.

use std::path::Path;
use std::process::Command;

use helvetia_test_support::TestServer;
use helvetia_test_support::dns::TestDns;

/// `HELVETIA_SCHEMATHESIS_BIN` (set by `scripts/dev-setup.sh`, which pins the version), or
/// `schemathesis` on the `PATH`.
fn schemathesis() -> String {
    std::env::var("HELVETIA_SCHEMATHESIS_BIN").unwrap_or_else(|_| "schemathesis".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_as_its_openapi_document_says() {
    // Names resolve through a local resolver that knows none: a domain's check or a
    // channel's host never asks a server off this machine.
    let dns = TestDns::start(&[]).await;
    let resolver = dns.address().to_string();
    let server = TestServer::start_with(crate::BINARY, &["--resolver", &resolver]).await;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/schemathesis.toml");
    let output = Command::new(schemathesis())
        .arg("--config-file")
        .arg(&config)
        .args(["--no-color", "run"])
        .arg(format!("{}/api/v1/openapi.json", server.url()))
        .args(["--checks", "all"])
        .args(["--exclude-operation-id", "revoke_token"])
        // A test message to a channel it made would send a request to whatever host it
        // generated: nothing of a test run may leave this machine.
        .args(["--exclude-operation-id", "test_channel"])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", server.token),
        ])
        .args(["--seed", "20261128", "--max-examples", "10"])
        .args(["--generation-database", "none"])
        // Nothing of the run (reports, caches) is written into the source tree.
        .current_dir(server.dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} failed ({e}); run scripts/dev-setup.sh and export what it prints",
                schemathesis()
            )
        });
    let log = server.log();
    let log_tail: Vec<&str> = log.lines().rev().take(50).collect();
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{}\n{}\nthe server log's last lines:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        log_tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
}
