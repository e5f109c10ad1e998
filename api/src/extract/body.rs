//! Request bodies: JSON (required or optional) and multipart forms, each refused with a
//! problem+json that says what is wrong.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body. Not JSON → 415, malformed → 400, too large → 413, a field of the wrong
/// type → 422 naming the field.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::unsupported_media_type("application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large("The request body", "64 KiB")
            } else {
                ApiError::bad_request()
            }
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let parsed = serde_path_to_error::deserialize(&mut de);
        let trailing_garbage = parsed.is_ok() && de.end().is_err();
        if trailing_garbage {
            return Err(ApiError::malformed_json());
        }
        match parsed {
            Ok(value) => Ok(AppJson(value)),
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_data() && path != "." {
                    Err(ApiError::field(&path, "invalid_type"))
                } else {
                    Err(ApiError::malformed_json())
                }
            }
        }
    }
}

/// An optional JSON body: no body at all (no `Content-Type`, no or a zero `Content-Length`)
/// is `T::default()`; anything else is read as [`AppJson`].
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let headers = req.headers();
        let empty = headers.get(header::CONTENT_TYPE).is_none()
            && headers.get(header::CONTENT_LENGTH).is_none_or(|v| v.as_bytes() == b"0");
        if empty {
            return Ok(OptionalJson(T::default()));
        }
        let AppJson(body) = AppJson::<T>::from_request(req, state).await?;
        Ok(OptionalJson(body))
    }
}

/// The largest part of a multipart form.
pub const MAX_PART_BYTES: usize = 1024 * 1024;

/// A multipart form read whole: its text fields, and its file parts (named `photo_…`) as bytes.
/// Not multipart → 415, unreadable → 400 `malformed_multipart`, a part over 1 MiB → 413.
pub struct MultipartForm {
    pub fields: HashMap<String, String>,
    pub files: HashMap<String, Vec<u8>>,
}

impl MultipartForm {
    /// A text field, if sent.
    pub fn field(&self, name: &str) -> Option<String> {
        self.fields.get(name).cloned()
    }
}

fn part_problem(err: &axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::payload_too_large("A part of the form", "1 MiB")
    } else {
        ApiError::malformed_multipart()
    }
}

impl<S: Send + Sync> FromRequest<S> for MultipartForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
        if !is_multipart {
            return Err(ApiError::unsupported_media_type("multipart/form-data"));
        }
        let mut multipart = Multipart::from_request(req, state).await.map_err(|_| ApiError::malformed_multipart())?;
        let mut form = MultipartForm { fields: HashMap::new(), files: HashMap::new() };
        while let Some(field) = multipart.next_field().await.map_err(|e| part_problem(&e))? {
            let name = field.name().unwrap_or_default().to_string();
            let is_file = name.starts_with("photo_") || shenfen_domain::student::Material::parse(&name).is_some();
            if is_file {
                let bytes = field.bytes().await.map_err(|e| part_problem(&e))?;
                if bytes.len() > MAX_PART_BYTES {
                    return Err(ApiError::payload_too_large("A part of the form", "1 MiB"));
                }
                form.files.insert(name, bytes.to_vec());
            } else {
                let text = field.text().await.map_err(|e| part_problem(&e))?;
                form.fields.insert(name, text);
            }
        }
        Ok(form)
    }
}
