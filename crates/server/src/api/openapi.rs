//! What the OpenAPI document says about every operation without each `#[utoipa::path]`
//! repeating it.
//!
//! The error answers an operation can give follow from what it is: any operation that reaches
//! the store can fail on the server's side (500, 503, 507); a secured one can be refused (401,
//! 403); one with parameters can be sent one that does not parse (400), and one
//! with path parameters can name what does not exist or is not the caller's (404) or a name that
//! is not valid (422); one with a body can get a malformed, too large, non-JSON or invalid one
//! (400, 413, 415, 422). [`ErrorResponses`] adds exactly those, all with the [`ErrorBody`]
//! schema; what depends on policy (a taken name → 409, an unparsable `since` → 400 …) stays on
//! the operation. [`ResourceLinks`] adds the links from an answer naming a resource to the
//! operations on it, so clients (and schemathesis' stateful tests) chain calls by the
//! resource's *name* — the path's key — rather than guessing from its numeric id.
//! [`MergePatches`] says what a request body's runtime settings are: a JSON merge patch, in
//! which any field may be left out or be `null` (back to its default).
//!
//! [`ErrorBody`]: super::error::ErrorBody

use axum::http::Method;
use utoipa::Modify;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::link::Link;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

use super::rate_limit::RATE_LIMITED_ROUTES;

/// Adds the documented errors and links to a document built from the routes.
pub(super) fn complete(document: &mut OpenApi) {
    ErrorResponses.modify(document);
    ResourceLinks.modify(document);
    MergePatches.modify(document);
}

/// The error answers, each a reusable response in `components/responses`.
const ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Malformed request: a parameter or body field that does not parse as its type, an \
         unknown query parameter, or a body that is not valid JSON",
    ),
    (
        "401",
        "Unauthenticated",
        "No bearer token, or one that is invalid, expired or revoked",
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the scope this operation requires",
    ),
    (
        "404",
        "NotFound",
        "What the path names does not exist or does not belong to the caller",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The request body is larger than 1 MiB",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not `application/json`",
    ),
    (
        "422",
        "InvalidInput",
        "A value is not valid; `fields` names each problem",
    ),
    (
        "429",
        "TooManyRequests",
        "Too many attempts from this client address or for this account; `Retry-After` says \
         in how many seconds to try again",
    ),
    (
        "500",
        "Internal",
        "The server failed; the detail is in its log, never in the answer",
    ),
    (
        "503",
        "Unavailable",
        "The database does not answer for now (restarting, unreachable); try again shortly",
    ),
    (
        "507",
        "InsufficientStorage",
        "The server's disk is full; changes fail until space is freed",
    ),
];

/// The operations that never reach the store. Every other one — authentication alone reads
/// it and notes a token's use — can fail on our side (500), meet the database down (503) or
/// its disk full (507). `/healthz` declares its own.
const STORE_FREE: &[&str] = &["/api/v1/openapi.json", "/healthz"];

/// Declares, for every operation, the error answers that follow from its shape.
pub(super) struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, document: &mut OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        for (code, name, description) in ERRORS {
            let mut response = Response::builder().description(*description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
            if *code == "429" {
                response = response.header("Retry-After", retry_after());
            }
            let response = response.build();
            components
                .responses
                .insert((*name).to_owned(), RefOr::T(response));
        }
        for (path, item) in document.paths.paths.iter_mut() {
            let limited: Vec<&Method> = RATE_LIMITED_ROUTES
                .iter()
                .filter(|(_, limited, _)| limited == path)
                .map(|(method, ..)| method)
                .collect();
            for (method, operation) in operations_by_method(item) {
                let mut statuses = error_statuses(operation);
                if !STORE_FREE.contains(&path.as_str()) {
                    statuses.extend(["500", "503", "507"]);
                }
                if limited.contains(&&method) {
                    statuses.push("429");
                }
                for status in statuses {
                    let Some((_, name, _)) = ERRORS.iter().find(|(code, ..)| *code == status)
                    else {
                        continue;
                    };
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                        });
                }
            }
        }
    }
}

/// `Retry-After`, in seconds.
fn retry_after() -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(1)),
        ))
        .description(Some("Seconds to wait before trying again"))
        .build()
}

/// The error statuses an operation can answer because of what it is.
fn error_statuses(operation: &Operation) -> Vec<&'static str> {
    let mut statuses = vec![];
    let parameters: Vec<_> = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|parameter| match parameter {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        })
        .collect();
    let in_path = |parameter: &&&utoipa::openapi::path::Parameter| {
        parameter.parameter_in == ParameterIn::Path
    };
    let has_body = operation.request_body.is_some();
    if has_body || !parameters.is_empty() {
        statuses.push("400");
    }
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.extend(["401", "403"]);
    }
    if parameters.iter().any(|p| in_path(&p)) {
        statuses.push("404");
    }
    if has_body {
        statuses.extend(["413", "415", "422"]);
    }
    // A name in the path (a project, service, variable or volume) is validated like the same
    // name in a body; ids are only parsed.
    if parameters.iter().filter(in_path).any(|p| is_name(p)) {
        statuses.push("422");
    }
    statuses
}

/// Whether a parameter is a validated name: a string with a pattern, or a reference to one.
fn is_name(parameter: &utoipa::openapi::path::Parameter) -> bool {
    match &parameter.schema {
        Some(RefOr::Ref(_)) => true,
        Some(RefOr::T(Schema::Object(object))) => object.pattern.is_some(),
        Some(RefOr::T(_)) | None => false,
    }
}

/// The operations of a path item with their methods.
fn operations_by_method(item: &mut PathItem) -> impl Iterator<Item = (Method, &mut Operation)> {
    [
        (Method::GET, &mut item.get),
        (Method::PUT, &mut item.put),
        (Method::POST, &mut item.post),
        (Method::DELETE, &mut item.delete),
        (Method::OPTIONS, &mut item.options),
        (Method::HEAD, &mut item.head),
        (Method::PATCH, &mut item.patch),
        (Method::TRACE, &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
}

/// The operations of a path item.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    operations_by_method(item).map(|(_, operation)| operation)
}

/// A resource an answer can name, and how the paths of the operations on it take it.
struct Resource {
    /// The schemas of answers that are (or wrap) this resource.
    schemas: &'static [&'static str],
    /// Operations on the resource have paths under this one.
    path: &'static str,
    /// Each path parameter with the JSON pointer to its value in the answer.
    parameters: &'static [(&'static str, &'static str)],
}

const RESOURCES: &[Resource] = &[
    Resource {
        schemas: &["Project"],
        path: "/api/v1/projects/{project}",
        parameters: &[("project", "/name")],
    },
    Resource {
        schemas: &["ServiceView", "UpdatedService"],
        path: "/api/v1/projects/{project}/services/{service}",
        parameters: &[("project", "/project"), ("service", "/name")],
    },
    Resource {
        schemas: &["Deployment", "DeploymentDetail"],
        path: "/api/v1/deployments/{id}",
        parameters: &[("id", "/id")],
    },
    // A user by id: without this link schemathesis infers one from the user's `name`, which
    // names no user.
    Resource {
        schemas: &["CreatedUser"],
        path: "/api/v1/users/{user}",
        parameters: &[("user", "/user/id")],
    },
];

/// Links each answer that names a resource to every operation under the resource's path.
pub(super) struct ResourceLinks;

impl Modify for ResourceLinks {
    fn modify(&self, document: &mut OpenApi) {
        // (operation id, path) of every operation, to find the targets of each resource.
        let targets: Vec<(String, String)> = document
            .paths
            .paths
            .iter_mut()
            .flat_map(|(path, item)| {
                operations(item)
                    .filter_map(|operation| operation.operation_id.clone())
                    .map(|id| (id, path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for item in document.paths.paths.values_mut() {
            for operation in operations(item) {
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if !status.starts_with('2') {
                        continue;
                    }
                    let Some(resource) = answered_resource(response) else {
                        continue;
                    };
                    for (target, path) in &targets {
                        if !path.starts_with(resource.path) {
                            continue;
                        }
                        let mut link = Link::builder().operation_id(target);
                        for (parameter, pointer) in resource.parameters {
                            link = link.parameter(*parameter, format!("$response.body#{pointer}"));
                        }
                        response
                            .links
                            .insert(target.clone(), RefOr::T(link.build()));
                    }
                }
            }
        }
    }
}

/// The resource a response's JSON body is, if any.
fn answered_resource(response: &Response) -> Option<&'static Resource> {
    let content = response.content.get("application/json")?;
    let RefOr::T(content) = content else {
        return None;
    };
    let Some(RefOr::Ref(schema)) = &content.schema else {
        return None;
    };
    let name = schema.ref_location.rsplit('/').next()?;
    RESOURCES
        .iter()
        .find(|resource| resource.schemas.contains(&name))
}

/// Schemas that request bodies carry as JSON merge patches (RFC 7396).
const MERGE_PATCHED: &[&str] = &["RuntimeSettings"];

/// In request bodies, a [`MERGE_PATCHED`] schema `X` becomes `XPatch`: the same fields and
/// constraints, none required, each also `null`, nested objects patches themselves.
pub(super) struct MergePatches;

impl Modify for MergePatches {
    fn modify(&self, document: &mut OpenApi) {
        let mut bodies = vec![];
        for item in document.paths.paths.values_mut() {
            for operation in operations(item) {
                let Some(RefOr::T(body)) = &operation.request_body else {
                    continue;
                };
                for content in body.content.values() {
                    if let RefOr::T(content) = content
                        && let Some(RefOr::Ref(schema)) = &content.schema
                    {
                        bodies.push(component_name(schema).to_owned());
                    }
                }
            }
        }
        let components = document.components.get_or_insert_with(Default::default);
        for patched in MERGE_PATCHED {
            add_patch(&mut components.schemas, patched);
            for body in &bodies {
                if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(body) {
                    for property in object.properties.values_mut() {
                        retarget(property, patched, &patch_name(patched));
                    }
                }
            }
        }
    }
}

fn patch_name(name: &str) -> String {
    format!("{name}Patch")
}

fn component_name(reference: &Ref) -> &str {
    reference
        .ref_location
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

/// Adds `<name>Patch`, and the patches of the objects it nests, to `schemas`.
fn add_patch(schemas: &mut std::collections::BTreeMap<String, RefOr<Schema>>, name: &str) {
    let Some(RefOr::T(Schema::Object(object))) = schemas.get(name) else {
        return;
    };
    let mut patch = object.clone();
    patch.required.clear();
    patch.description = Some(format!(
        "A JSON merge patch of {name}: fields left out keep their value, `null` resets one to its default."
    ));
    let mut nested = vec![];
    for property in patch.properties.values_mut() {
        if let RefOr::Ref(reference) = property {
            let target = component_name(reference).to_owned();
            if matches!(schemas.get(&target), Some(RefOr::T(Schema::Object(o))) if !o.properties.is_empty())
            {
                reference.ref_location = format!("#/components/schemas/{}", patch_name(&target));
                nested.push(target);
            }
        }
        *property = nullable(property.clone());
    }
    schemas.insert(patch_name(name), RefOr::T(Schema::Object(patch)));
    for target in nested {
        add_patch(schemas, &target);
    }
}

/// `schema`, or `null` (unless it already takes `null`).
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    if takes_null(&schema) {
        return schema;
    }
    OneOfBuilder::new()
        .item(schema)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

fn takes_null(schema: &RefOr<Schema>) -> bool {
    match schema {
        RefOr::T(Schema::Object(object)) => type_takes_null(&object.schema_type),
        RefOr::T(Schema::Array(array)) => type_takes_null(&array.schema_type),
        RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter().any(takes_null),
        RefOr::T(Schema::AnyOf(any_of)) => any_of.items.iter().any(takes_null),
        RefOr::T(_) | RefOr::Ref(_) => false,
    }
}

fn type_takes_null(schema_type: &SchemaType) -> bool {
    match schema_type {
        SchemaType::Type(single) => *single == Type::Null,
        SchemaType::Array(types) => types.contains(&Type::Null),
        SchemaType::AnyValue => true,
    }
}

/// Points every reference to `from` within `schema` at `to`.
fn retarget(schema: &mut RefOr<Schema>, from: &str, to: &str) {
    match schema {
        RefOr::Ref(reference) => {
            if component_name(reference) == from {
                reference.ref_location = format!("#/components/schemas/{to}");
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            one_of
                .items
                .iter_mut()
                .for_each(|item| retarget(item, from, to));
        }
        RefOr::T(Schema::AllOf(all_of)) => {
            all_of
                .items
                .iter_mut()
                .for_each(|item| retarget(item, from, to));
        }
        RefOr::T(Schema::AnyOf(any_of)) => {
            any_of
                .items
                .iter_mut()
                .for_each(|item| retarget(item, from, to));
        }
        // `Schema` is non-exhaustive: anything else holds no reference to retarget.
        RefOr::T(_) => {}
    }
}
