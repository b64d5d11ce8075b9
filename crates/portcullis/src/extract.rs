//! Extractors whose refusals are the crate's uniform errors.
//!
//! axum's own rejections answer with their text, which can quote parser internals
//! (`expected value at line 1 column 7`, a field name, a serde message). An API that
//! promises `{"error":{"code","message"}}` on every 4xx needs its body extractor to
//! keep that promise too: [`JsonBody`] is axum's `Json` with its rejection turned into
//! an [`Error`], the detail logged at debug level and never sent.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::Json;

use crate::error::Error;

/// A JSON request body, read exactly as axum's `Json` reads it (the same content-type
/// rules, the same body limit), refused with the uniform error body:
///
/// | refusal | status | code |
/// |---|---|---|
/// | not `application/json` | 415 | `unsupported_media_type` |
/// | not JSON | 400 | `bad_request` |
/// | JSON without the expected fields | 422 | `invalid_input` |
/// | over the body limit | 413 | `payload_too_large` |
/// | a body that broke while it was read | 400 | `bad_request` |
///
/// ```
/// use portcullis::extract::JsonBody;
///
/// #[derive(serde::Deserialize)]
/// struct NewComment {
///     body: String,
/// }
///
/// async fn add(JsonBody(comment): JsonBody<NewComment>) -> String {
///     comment.body
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> Error {
    tracing::debug!(%rejection, "refused a JSON body");
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::unsupported_media_type("Send the body as application/json.")
        }
        JsonRejection::JsonSyntaxError(_) => Error::bad_request("The body is not valid JSON."),
        JsonRejection::JsonDataError(_) => Error::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "The JSON body does not have the expected fields.",
        ),
        // Over the limit is 413; any other failure to read the body is the client's.
        JsonRejection::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::payload_too_large()
        }
        _ => Error::bad_request("The body could not be read."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Login {
        #[allow(dead_code)]
        username: String,
    }

    async fn answer(content_type: &str, body: &'static str) -> (u16, String) {
        let app = Router::new()
            .route("/", post(|JsonBody(_): JsonBody<Login>| async { "ok" }))
            .layer(DefaultBodyLimit::max(64));
        let response = app
            .oneshot(
                Request::post("/")
                    .header("content-type", content_type)
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_refusal_is_the_uniform_error_and_quotes_no_parser() {
        assert_eq!(
            answer("application/json", r#"{"username":"a"}"#).await.0,
            200
        );
        for (content_type, body, status, code) in [
            (
                "text/plain",
                r#"{"username":"a"}"#,
                415,
                "unsupported_media_type",
            ),
            ("application/json", "{\"username\":", 400, "bad_request"),
            (
                "application/json",
                r#"{"username":"a","admin":true}"#,
                422,
                "invalid_input",
            ),
            ("application/json", r#"{"user":"a"}"#, 422, "invalid_input"),
            (
                "application/json",
                r#"{"username":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#,
                413,
                "payload_too_large",
            ),
        ] {
            let (got, text) = answer(content_type, body).await;
            assert_eq!(got, status, "{body}: {text}");
            assert!(text.contains(code), "{body}: {text}");
            for internal in ["line", "column", "admin", "unknown field", "serde"] {
                assert!(
                    !text.contains(internal),
                    "{body} leaks {internal:?}: {text}"
                );
            }
        }
    }
}
