//! Turning request fields into domain values, collecting every bad field (a 422 lists them
//! all, not just the first).

use chrono::NaiveDate;
use shenfen_domain::shared::contact::{Email, Mobile};
use shenfen_domain::shared::document::{DocumentNumber, DocumentType};
use shenfen_domain::shared::name::PersonName;
use shenfen_domain::shared::password;
use shenfen_domain::shared::validity::Validity;

use crate::error::{ApiError, ApiResult, FieldError};

/// The bad fields found so far.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Records a bad field.
    pub fn add(&mut self, field: &str, code: &str) {
        self.add_hint(field, code, None);
    }

    /// Records a bad field with a hint.
    pub fn add_hint(&mut self, field: &str, code: &str, hint: Option<&str>) {
        self.0.push(FieldError { field: field.into(), code: code.into(), hint: hint.map(str::to_string) });
    }

    /// A required field: records `required` when it is absent or blank.
    pub fn required<'a>(&mut self, field: &str, value: Option<&'a str>) -> Option<&'a str> {
        match value.map(str::trim) {
            Some(v) if !v.is_empty() => value,
            _ => {
                self.add(field, "required");
                None
            }
        }
    }

    /// Ok when nothing was recorded, else the 422.
    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0))
        }
    }
}

/// A `YYYY-MM-DD` date field.
pub fn date(errors: &mut Errors, field: &str, value: Option<&str>) -> Option<NaiveDate> {
    let value = value?;
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.add(field, "invalid_date");
            None
        }
    }
}

/// A document type and number.
pub fn document(
    errors: &mut Errors,
    doc_type: &Option<String>,
    number: &Option<String>,
    today: NaiveDate,
) -> Option<(DocumentType, DocumentNumber)> {
    let doc_type = errors.required("document_type", doc_type.as_deref()).and_then(|t| {
        let parsed = DocumentType::parse(t.trim());
        if parsed.is_none() {
            errors.add("document_type", "invalid_document_type");
        }
        parsed
    });
    let number = errors.required("document_number", number.as_deref())?;
    let doc_type = doc_type?;
    match DocumentNumber::parse(doc_type, number, today) {
        Ok(n) => Some((doc_type, n)),
        Err(e) => {
            errors.add_hint("document_number", e.code(), e.hint());
            None
        }
    }
}

/// A person's name.
pub fn name(errors: &mut Errors, field: &str, value: &Option<String>) -> Option<PersonName> {
    let raw = errors.required(field, value.as_deref())?;
    match PersonName::parse(raw) {
        Ok(n) => Some(n),
        Err(e) => {
            errors.add_hint(field, e.code(), e.hint());
            None
        }
    }
}

/// A validity `{period, start}` for a document.
pub fn validity(
    errors: &mut Errors,
    period: Option<&str>,
    start: Option<&str>,
    doc: Option<(DocumentType, Option<NaiveDate>)>,
    today: NaiveDate,
) -> Option<Validity> {
    if period.is_none_or(|p| p.trim().is_empty()) {
        errors.add("validity.period", "required");
    }
    if start.is_none_or(|s| s.trim().is_empty()) {
        errors.add("validity.start", "required");
    }
    let start = date(errors, "validity.start", start.filter(|s| !s.trim().is_empty()))?;
    let period = period.filter(|p| !p.trim().is_empty())?;
    let (doc_type, birth) = doc?;
    match Validity::parse(period.trim(), start, doc_type, birth, today) {
        Ok(v) => Some(v),
        Err(e) => {
            let field = match e.code() {
                "invalid_validity"
                    if shenfen_domain::shared::validity::ValidityPeriod::parse(period.trim()).is_none() =>
                {
                    "validity.period"
                }
                "long_term_not_allowed" => "validity.period",
                "document_expired" => "validity",
                _ => "validity.start",
            };
            errors.add(field, e.code());
            None
        }
    }
}

/// A new password and its confirmation.
pub fn new_password(
    errors: &mut Errors,
    field: &str,
    value: &Option<String>,
    confirmation_field: &str,
    confirmation: &Option<String>,
    document_number: Option<&str>,
) -> Option<String> {
    let pw = errors.required(field, value.as_deref())?;
    let mut ok = true;
    if let Err(e) = password::check_policy(pw, document_number) {
        errors.add_hint(field, e.code(), Some(e.reason()));
        ok = false;
    }
    match confirmation.as_deref() {
        None => {
            errors.add(confirmation_field, "required");
            ok = false;
        }
        Some(c) => {
            if let Err(e) = password::confirm(pw, c) {
                errors.add(confirmation_field, e.code());
                ok = false;
            }
        }
    }
    ok.then(|| pw.to_string())
}

/// An e-mail address.
pub fn email(errors: &mut Errors, field: &str, value: &Option<String>) -> Option<Email> {
    let raw = errors.required(field, value.as_deref())?;
    match Email::parse(raw) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.add_hint(field, e.code(), e.hint());
            None
        }
    }
}

/// A mainland mobile number.
pub fn mobile(errors: &mut Errors, field: &str, value: &Option<String>) -> Option<Mobile> {
    let raw = errors.required(field, value.as_deref())?;
    match Mobile::parse(raw) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.add(field, e.code());
            None
        }
    }
}
