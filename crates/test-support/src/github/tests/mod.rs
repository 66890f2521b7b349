//! The fake against GitHub's documented behaviour, through plain HTTP as a client sees it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::{LINK, LOCATION};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{AppCredentials, FakeGitHub};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .user_agent("helvetia-test")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An App JWT as GitHub documents it, valid from `iat` to `exp` (relative to now).
fn app_jwt(app: &AppCredentials, iat: i64, exp: i64) -> String {
    let key = rsa::PrivateKey::from_pkcs1_pem(&app.pem).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
    let now = jiff::Timestamp::now().as_second();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({"iat": now + iat, "exp": now + exp, "iss": app.client_id});
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = signer.sign(signed.as_bytes()).to_bytes();
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A fresh installation token for `installation`, through the App's JWT.
async fn mint_token(github: &FakeGitHub, app: &AppCredentials, installation: i64) -> String {
    let url = format!(
        "{}/app/installations/{installation}/access_tokens",
        github.api_url()
    );
    let request = client().post(url).bearer_auth(app_jwt(app, -60, 540));
    let minted = json_of(request.send().await.unwrap()).await;
    minted["token"].as_str().unwrap().to_owned()
}

fn query_parameter(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_manifest_flow_creates_an_app_whose_jwt_mints_installation_tokens() {
    let github = FakeGitHub::start().await;
    let http = client();
    let manifest = json!({
        "name": "Helvetia example",
        "url": "https://helvetia.example",
        "redirect_url": "https://helvetia.example/github/created",
        "callback_urls": ["https://helvetia.example/github/callback"],
        "default_permissions": {"contents": "read", "metadata": "read"},
        "default_events": ["push"],
    });
    let created = http
        .post(format!("{}/settings/apps/new?state=s1", github.web_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("manifest", manifest.to_string())]).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://helvetia.example/github/created?code="));
    assert_eq!(query_parameter(&location, "state").as_deref(), Some("s1"));
    let code = query_parameter(&location, "code").unwrap();

    let conversion = format!("{}/app-manifests/{code}/conversions", github.api_url());
    let converted = http.post(&conversion).send().await.unwrap();
    assert_eq!(converted.status(), StatusCode::CREATED);
    let body = json_of(converted).await;
    assert_eq!(body["slug"], "helvetia-example");
    assert!(
        body["pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let app = serde_json::from_value::<AppCredentials>(body.clone()).unwrap();
    let key = rsa::PrivateKey::from_pkcs1_pem(&app.pem).unwrap();
    assert_eq!(
        rsa::traits::PublicKeyParts::size(&key),
        256,
        "2048 bits, as GitHub's"
    );
    let again = http.post(&conversion).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NOT_FOUND,
        "a code converts once"
    );

    let repos: Vec<(String, Option<std::path::PathBuf>, bool)> = (0..65)
        .map(|n| (format!("repo-{n:02}"), None, n % 2 == 0))
        .collect();
    let repos: Vec<_> = repos
        .iter()
        .map(|(n, d, p)| (n.as_str(), d.clone(), *p))
        .collect();
    let installation = github.add_installation("acme", &repos);

    let jwt = app_jwt(&app, -60, 540);
    let installations = http
        .get(format!("{}/app/installations", github.api_url()))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(installations.status(), StatusCode::OK);
    let installations = json_of(installations).await;
    assert_eq!(installations[0]["id"], installation);
    assert_eq!(installations[0]["account"]["login"], "acme");

    let tokens_url = format!(
        "{}/app/installations/{installation}/access_tokens",
        github.api_url()
    );
    for (jwt, why) in [
        (app_jwt(&app, -60, 601), "lives longer than 10 minutes"),
        (app_jwt(&app, -700, -60), "expired"),
        (format!("{}x", &jwt[..jwt.len() - 1]), "a bad signature"),
    ] {
        let refused = http
            .post(&tokens_url)
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{why}");
    }
    let minted = http
        .post(&tokens_url)
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::CREATED);
    let minted = json_of(minted).await;
    let token = minted["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghs_"));
    assert!(minted["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(github.issued_tokens(), vec![token.clone()]);

    let page = |n: usize| {
        http.get(format!(
            "{}/installation/repositories?per_page=30&page={n}",
            github.api_url()
        ))
        .header("authorization", format!("token {token}"))
        .send()
    };
    let first = page(1).await.unwrap();
    let link = first.headers()[LINK].to_str().unwrap().to_owned();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    assert!(link.contains("page=3>; rel=\"last\""), "{link}");
    let first = json_of(first).await;
    assert_eq!(first["total_count"], 65);
    assert_eq!(first["repositories"].as_array().unwrap().len(), 30);
    assert_eq!(first["repositories"][0]["full_name"], "acme/repo-00");
    assert_eq!(first["repositories"][0]["private"], true);
    let last = page(3).await.unwrap();
    assert!(!last.headers()[LINK].to_str().unwrap().contains("next"));
    assert_eq!(
        json_of(last).await["repositories"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let anonymous = reqwest::Client::builder().no_proxy().build().unwrap();
    let without_agent = anonymous.get(format!("{}/installation/repositories", github.api_url()));
    let without_agent = without_agent.bearer_auth(&token).send().await.unwrap();
    assert_eq!(
        without_agent.status(),
        StatusCode::FORBIDDEN,
        "GitHub wants a User-Agent"
    );
    github.expire_tokens();
    assert_eq!(page(1).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let seen = github.requests();
    assert!(seen.iter().all(|r| !r.uri.contains(&token)));
    assert!(
        seen.iter()
            .flat_map(|r| &r.headers)
            .all(|(_, v)| !v.contains(&token) && !v.contains(&jwt))
    );
}

#[tokio::test]
async fn user_authorization_checks_the_code_and_the_pkce_verifier() {
    let github = FakeGitHub::start().await;
    let http = client();
    let app = github.create_app("Helvetia").await;
    let alice = github.add_user("alice", "alice@example.org", &["acme"]);
    let installation = github.add_installation("acme", &[("site", None, true)]);
    github.add_installation("elsewhere", &[("other", None, false)]);
    github.sign_in_as("alice");

    let verifier = "a-verifier-of-at-least-forty-three-characters-long";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let authorize = || async {
        let response = http
            .get(format!("{}/login/oauth/authorize", github.web_url()))
            .query(&[
                ("client_id", app.client_id.as_str()),
                ("redirect_uri", "http://helvetia.test/callback"),
                ("state", "st"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(location.starts_with("http://helvetia.test/callback?"));
        assert_eq!(query_parameter(&location, "state").as_deref(), Some("st"));
        query_parameter(&location, "code").unwrap()
    };
    let exchange = |code: String, verifier: Option<&'static str>| {
        let mut body = json!({
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "code": code,
            "redirect_uri": "http://helvetia.test/callback",
        });
        if let Some(verifier) = verifier {
            body["code_verifier"] = json!(verifier);
        }
        let request = http
            .post(format!("{}/login/oauth/access_token", github.web_url()))
            .header("accept", "application/json")
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "GitHub answers 200 even to errors"
            );
            json_of(response).await
        }
    };

    let code = authorize().await;
    let refused = exchange(code.clone(), Some("not-the-verifier")).await;
    assert_eq!(refused["error"], "bad_verification_code");
    let replayed = exchange(code, Some(verifier)).await;
    assert_eq!(
        replayed["error"], "bad_verification_code",
        "a code is spent"
    );
    let missing = exchange(authorize().await, None).await;
    assert_eq!(missing["error"], "bad_verification_code");
    let granted = exchange(authorize().await, Some(verifier)).await;
    let token = granted["access_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghu_"));
    assert_eq!(granted["token_type"], "bearer");

    let get = |path: &str| {
        http.get(format!("{}{path}", github.api_url()))
            .bearer_auth(&token)
            .send()
    };
    let user = json_of(get("/user").await.unwrap()).await;
    assert_eq!(
        (user["id"].as_i64(), user["login"].as_str()),
        (Some(alice), Some("alice"))
    );
    let emails = json_of(get("/user/emails").await.unwrap()).await;
    assert_eq!(emails[0]["email"], "alice@example.org");
    assert_eq!(emails[0]["primary"], true);
    let orgs = json_of(get("/user/orgs").await.unwrap()).await;
    assert_eq!(orgs[0]["login"], "acme");
    let installations = json_of(get("/user/installations").await.unwrap()).await;
    assert_eq!(
        installations["total_count"], 1,
        "only the user's organizations'"
    );
    assert_eq!(installations["installations"][0]["id"], installation);
    let repositories = get(&format!("/user/installations/{installation}/repositories"));
    let repositories = json_of(repositories.await.unwrap()).await;
    assert_eq!(
        repositories["repositories"][0]["clone_url"],
        format!("{}/acme/site.git", github.web_url())
    );
    let unknown = http
        .get(format!("{}/user", github.api_url()))
        .bearer_auth("ghu_unknown")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let wrong_secret = http
        .post(format!("{}/login/oauth/access_token", github.web_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            serde_urlencoded::to_string([
                ("client_id", app.client_id.as_str()),
                ("client_secret", "nope"),
                ("code", "x"),
            ])
            .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::OK);
    let wrong_secret = wrong_secret.text().await.unwrap();
    assert!(
        wrong_secret.starts_with("error=incorrect_client_credentials&"),
        "{wrong_secret}"
    );
}

/// A bare repository with one commit on `main`.
mod repositories;
