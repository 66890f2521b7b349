//! A browser without JavaScript, for the dashboard's tests: it keeps the cookies it is given,
//! submits forms with the page's CSRF token, and signs in through the sign-in page.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::harness::Api;
use crate::sessions::PASSWORD;

/// A browser: the cookies it was given, and what it answers.
pub struct Browser<'a> {
    api: &'a Api,
    pub cookies: BTreeMap<String, String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl<'a> Browser<'a> {
    pub fn new(api: &'a Api) -> Browser<'a> {
        Browser {
            api,
            cookies: BTreeMap::new(),
        }
    }

    pub async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let request = request.header(header::COOKIE, cookie.join("; "));
        let response = self
            .api
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        for set in response.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status();
        let headers = response.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::builder().uri(path), Body::empty()).await
    }

    /// Submits a form with the browser's CSRF token added (as the page's hidden field does).
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self
            .cookies
            .get("helvetia_csrf")
            .cloned()
            .unwrap_or_default();
        self.submit_with(path, &csrf, fields).await
    }

    pub async fn submit_with(&mut self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", csrf);
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.send(request, Body::from(form.finish())).await
    }

    /// Signs in with a password through the sign-in page.
    pub async fn sign_in(&mut self, email: &str) {
        let page = self.get("/signin").await;
        assert_eq!(page.status, StatusCode::OK);
        let page = self
            .submit(
                "/signin",
                &[("email", email), ("password", PASSWORD), ("next", "/")],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location, "/");
    }
}
