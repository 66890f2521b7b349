//! A local OpenID Connect issuer, as a CI system runs one: its discovery document and key set
//! served over HTTP, its keys (ES256 made at start, RS256 from a test-only PEM) signing tokens
//! with the claims a CI job's token carries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::Timestamp;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{Value, json};

/// The commit the claims name unless changed.
pub const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// An RSA key made for the tests only.
const RSA_KEY: &str = include_str!("../../engine/src/github/test-app-key.pem");

/// A signing key of the issuer, and its public half as a JWK.
pub struct TestKey {
    kid: String,
    signer: Signer,
    jwk: Value,
}

enum Signer {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
}

impl TestKey {
    pub fn es256(kid: &str) -> TestKey {
        let rng = SystemRandom::new();
        let algorithm = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(algorithm, &rng).expect("the test issuer");
        let pair =
            EcdsaKeyPair::from_pkcs8(algorithm, pkcs8.as_ref(), &rng).expect("the test issuer");
        // Uncompressed: 0x04 ‖ x ‖ y.
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        TestKey {
            kid: kid.into(),
            signer: Signer::Es256(pair),
            jwk,
        }
    }

    pub fn rs256(kid: &str) -> TestKey {
        let base64: String = RSA_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let pair = RsaKeyPair::from_der(&STANDARD.decode(base64).expect("the test issuer"))
            .expect("the test issuer");
        let public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let jwk = json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        });
        TestKey {
            kid: kid.into(),
            signer: Signer::Rs256(pair),
            jwk,
        }
    }

    /// A JWT of `claims`, signed by this key.
    pub fn sign(&self, claims: &Value) -> String {
        let alg = match self.signer {
            Signer::Es256(_) => "ES256",
            Signer::Rs256(_) => "RS256",
        };
        let header = json!({"alg": alg, "typ": "JWT", "kid": self.kid});
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match &self.signer {
            Signer::Es256(pair) => pair
                .sign(&rng, message.as_bytes())
                .expect("the test issuer")
                .as_ref()
                .to_vec(),
            Signer::Rs256(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    message.as_bytes(),
                    &mut signature,
                )
                .expect("the test issuer");
                signature
            }
        };
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// What the issuer publishes, and how often its key set was read.
#[derive(Clone, Default)]
struct Published {
    url: Arc<Mutex<String>>,
    keys: Arc<Mutex<Vec<Value>>>,
    key_set_reads: Arc<AtomicUsize>,
}

/// A local OpenID Connect issuer.
pub struct TestIssuer {
    pub url: String,
    published: Published,
}

impl TestIssuer {
    pub async fn start(keys: &[&TestKey]) -> TestIssuer {
        let published = Published::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the test issuer");
        let url = format!("http://{}", listener.local_addr().expect("the test issuer"));
        *published.url.lock().expect("the test issuer") = url.clone();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(p): State<Published>| async move {
                    let url = p.url.lock().expect("the test issuer").clone();
                    Json(json!({"issuer": url, "jwks_uri": format!("{url}/keys")}))
                }),
            )
            .route(
                "/keys",
                get(|State(p): State<Published>| async move {
                    p.key_set_reads.fetch_add(1, Ordering::SeqCst);
                    Json(json!({"keys": *p.keys.lock().expect("the test issuer")}))
                }),
            )
            .with_state(published.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("the test issuer") });
        let issuer = TestIssuer { url, published };
        issuer.publish(keys);
        issuer
    }

    /// Publishes exactly `keys` from now on (a rotation drops the old ones).
    pub fn publish(&self, keys: &[&TestKey]) {
        *self.published.keys.lock().expect("the test issuer") =
            keys.iter().map(|key| key.jwk.clone()).collect();
    }

    pub fn key_set_reads(&self) -> usize {
        self.published.key_set_reads.load(Ordering::SeqCst)
    }

    /// A CI job's claims for `acme/web` on `main` for `audience`, valid for five minutes,
    /// with `changes` (a `null` removes a claim).
    pub fn claims(&self, audience: &str, changes: Value) -> Value {
        let now = Timestamp::now().as_second();
        let mut claims = json!({
            "iss": self.url, "aud": audience, "sub": "repo:acme/web:ref:refs/heads/main",
            "repository": "acme/web", "ref": "refs/heads/main", "sha": SHA,
            "workflow": "deploy", "run_id": "4242", "actor": "ada",
            "iat": now, "nbf": now - 5, "exp": now + 300,
        });
        for (name, value) in changes.as_object().expect("changes are an object") {
            match value {
                Value::Null => claims.as_object_mut().map(|c| c.remove(name)),
                value => claims
                    .as_object_mut()
                    .map(|c| c.insert(name.clone(), value.clone())),
            };
        }
        claims
    }
}
