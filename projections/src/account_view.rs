//! `account_view`: one row per account, behind `GET /v1/me` and support lookups. Holds only
//! masked document numbers and contact (PIPL).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shenfen_domain::account::{Account, AccountEvent, RealNameStatus};
use shenfen_domain::shared::mask::{mask_document, mask_email, mask_mobile};

use crate::db::{Db, DbTx};
use crate::exec;
use crate::log::StoredEvent;
use crate::runner::{Projection, ProjectionError};

/// The projection.
pub struct AccountView;

/// A row of the view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub account_id: String,
    pub document_type: String,
    pub document_number_masked: String,
    pub name: String,
    pub profile_complete: bool,
    pub real_name_status: String,
    pub legacy: bool,
    pub email_masked: Option<String>,
    pub mobile_masked: Option<String>,
    pub wechat_bound: bool,
    pub registered_at: DateTime<Utc>,
}

impl AccountView {
    /// The projection's name.
    pub const NAME: &'static str = "account_view";

    /// One account's row.
    pub async fn get(db: &Db, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
        crate::fetch_optional!(
            db,
            AccountRow,
            "SELECT account_id, document_type, document_number_masked, name, profile_complete, real_name_status,
                    legacy, email_masked, mobile_masked, wechat_bound, registered_at
               FROM account_view WHERE account_id = $1",
            account_id
        )
    }
}

#[async_trait]
impl Projection for AccountView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn wants(&self, e: &StoredEvent) -> bool {
        e.aggregate_type == "account"
            && matches!(
                e.event_type.as_str(),
                "Registered"
                    | "LegacyImported"
                    | "Reregistered"
                    | "ProfileCompleted"
                    | "ProfileEdited"
                    | "WechatBound"
                    | "WechatUnbound"
                    | "RealNameStatusChanged"
                    | "VerifiedIdentityApplied"
                    | "ContactChangedBySupport"
                    | "CorrectedBySupport"
            )
    }

    fn tables(&self) -> &'static [&'static str] {
        &["account_view"]
    }

    async fn apply(&self, tx: &mut DbTx, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != <Account as cqrs_es::Aggregate>::TYPE {
            return Ok(());
        }
        let event: AccountEvent =
            serde_json::from_value(e.payload.clone()).map_err(|err| ProjectionError::decode(e, err))?;
        let id = e.aggregate_id.as_str();
        let at = e.at();
        let unverified = RealNameStatus::Unverified.as_str();
        match event {
            AccountEvent::Registered { document_type, document_number, name, email, mobile, registered_at, .. } => {
                exec!(tx tx,
                    "INSERT INTO account_view (account_id, document_type, document_number_masked, name, profile_complete,
                         real_name_status, legacy, email_masked, mobile_masked, wechat_bound, registered_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     ON CONFLICT (account_id) DO UPDATE SET document_type = excluded.document_type,
                         document_number_masked = excluded.document_number_masked, name = excluded.name,
                         profile_complete = excluded.profile_complete, real_name_status = excluded.real_name_status,
                         legacy = excluded.legacy, email_masked = excluded.email_masked,
                         mobile_masked = excluded.mobile_masked, wechat_bound = excluded.wechat_bound,
                         registered_at = excluded.registered_at, updated_at = excluded.updated_at",
                    id, document_type.as_str(), mask_document(document_number.as_str()), name.as_str(), false,
                    unverified, false, Some(mask_email(email.as_str())), Some(mask_mobile(mobile.as_str())), false,
                    registered_at, at)?;
            }
            AccountEvent::LegacyImported { document_type, document_number, name, registered_at } => {
                exec!(tx tx,
                    "INSERT INTO account_view (account_id, document_type, document_number_masked, name, profile_complete,
                         real_name_status, legacy, email_masked, mobile_masked, wechat_bound, registered_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $9, $10)
                     ON CONFLICT (account_id) DO NOTHING",
                    id, document_type.as_str(), mask_document(document_number.as_str()), name.as_str(), false,
                    unverified, true, false, registered_at, at)?;
            }
            AccountEvent::Reregistered { name, email, mobile, .. } => {
                exec!(tx tx,
                    "UPDATE account_view SET name = $1, email_masked = $2, mobile_masked = $3, real_name_status = $4,
                            legacy = $5, updated_at = $6 WHERE account_id = $7",
                    name.as_str(), mask_email(email.as_str()), mask_mobile(mobile.as_str()), unverified, false, at, id)?;
            }
            AccountEvent::ProfileCompleted { profile, .. } => {
                exec!(tx tx,
                    "UPDATE account_view SET profile_complete = $1, gender = $2, updated_at = $3 WHERE account_id = $4",
                    true, profile.gender.map(|g| g.as_str()), at, id)?;
            }
            AccountEvent::ProfileEdited { email: Some(email), .. } => {
                exec!(tx tx, "UPDATE account_view SET email_masked = $1, updated_at = $2 WHERE account_id = $3",
                    mask_email(email.as_str()), at, id)?;
            }
            AccountEvent::WechatBound { .. } | AccountEvent::WechatUnbound { .. } => {
                let bound = matches!(event, AccountEvent::WechatBound { .. });
                exec!(tx tx, "UPDATE account_view SET wechat_bound = $1, updated_at = $2 WHERE account_id = $3",
                    bound, at, id)?;
            }
            AccountEvent::RealNameStatusChanged { status, .. } => {
                exec!(tx tx, "UPDATE account_view SET real_name_status = $1, updated_at = $2 WHERE account_id = $3",
                    status.as_str(), at, id)?;
            }
            AccountEvent::VerifiedIdentityApplied { name: Some(name), .. } => {
                exec!(tx tx, "UPDATE account_view SET name = $1, updated_at = $2 WHERE account_id = $3",
                    name.as_str(), at, id)?;
            }
            AccountEvent::ContactChangedBySupport { mobile, email, .. } => {
                if let Some(mobile) = mobile {
                    exec!(tx tx, "UPDATE account_view SET mobile_masked = $1, updated_at = $2 WHERE account_id = $3",
                        mask_mobile(mobile.as_str()), at, id)?;
                }
                if let Some(email) = email {
                    exec!(tx tx, "UPDATE account_view SET email_masked = $1, updated_at = $2 WHERE account_id = $3",
                        mask_email(email.as_str()), at, id)?;
                }
            }
            AccountEvent::CorrectedBySupport { gender, name, .. } => {
                if let Some(name) = name {
                    exec!(tx tx, "UPDATE account_view SET name = $1, updated_at = $2 WHERE account_id = $3",
                        name.as_str(), at, id)?;
                }
                if let Some(gender) = gender {
                    exec!(tx tx, "UPDATE account_view SET gender = $1, updated_at = $2 WHERE account_id = $3",
                        gender.as_str(), at, id)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
