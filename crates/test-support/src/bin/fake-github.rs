//! The fake GitHub as its own process, for tests that cannot hold it in-process (browser
//! tests): `fake-github [PORT]` serves on 127.0.0.1:PORT (a free port by default), prints one
//! JSON line `{"web_url": …, "api_url": …, "control_url": …}` and runs until killed. Set it up
//! through the JSON API under `control_url` (`helvetia_test_support::github`'s `control`).

use helvetia_test_support::github::FakeGitHub;

#[tokio::main]
async fn main() {
    let port = match std::env::args().nth(1).map(|port| port.parse::<u16>()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(error)) => {
            eprintln!("usage: fake-github [PORT]: {error}");
            std::process::exit(2);
        }
    };
    let github = FakeGitHub::start_on(port).await;
    println!(
        "{}",
        serde_json::json!({
            "web_url": github.web_url(),
            "api_url": github.api_url(),
            "control_url": format!("{}/_fake", github.web_url()),
        })
    );
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("fake-github: waiting for a signal: {error}");
    }
}
