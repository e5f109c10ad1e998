//! The synthetic log the replay benchmark rebuilds from: account streams written straight
//! into `events` with a binary `COPY`, each event hash-chained as the server writes them.

use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;
use shenfen_domain::account::AccountEvent;
use shenfen_domain::metadata::{Actor, EventMetadata};
use shenfen_domain::shared::document::check_char;
use shenfen_domain::shared::{DocumentNumber, DocumentType, Email, Mobile, PersonName, Validity};
use sqlx::{Executor, PgConnection};

/// Fills the log with `accounts` streams of `per_account` events; returns the count.
pub async fn generate(conn: &mut PgConnection, accounts: u32, per_account: u32) -> anyhow::Result<u64> {
    let at = Utc.with_ymd_and_hms(2026, 5, 10, 1, 0, 0).single().context("a fixed instant")?;
    let today = NaiveDate::from_ymd_opt(2026, 5, 10).context("a fixed date")?;
    let first17 = "11010519800101123";
    let number =
        DocumentNumber::parse(DocumentType::ResidentIdCard, &format!("{first17}{}", check_char(first17)), today)
            .map_err(|e| anyhow::anyhow!("template document number: {e:?}"))?;
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).context("a fixed date")?;
    let validity = Validity::parse("20y", start, DocumentType::ResidentIdCard, None, today)
        .map_err(|e| anyhow::anyhow!("template validity: {e:?}"))?;
    let email = Email::parse("template@example.com").map_err(|e| anyhow::anyhow!("template e-mail: {e:?}"))?;
    let registered = AccountEvent::Registered {
        document_type: DocumentType::ResidentIdCard,
        document_number: number,
        name: PersonName::parse("张三").map_err(|e| anyhow::anyhow!("template name: {e:?}"))?,
        validity,
        email: email.clone(),
        mobile: Mobile::parse("13800138000").map_err(|e| anyhow::anyhow!("template mobile: {e:?}"))?,
        password_hash:
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$0123456789abcdef0123456789abcdef0123456789a".into(),
        registered_at: at,
        consent: None,
    };
    let edited = AccountEvent::ProfileEdited { ethnicity: None, validity: None, email: Some(email), at };
    let mut metadata: serde_json::Map<String, Value> =
        EventMetadata { actor: Actor::Anonymous, request_id: "00000000-0000-4000-8000-000000000000".into(), at }
            .to_map()
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
    metadata.insert("prev_hash".into(), Value::String("0".repeat(64)));
    metadata.insert("hash".into(), Value::String("f".repeat(64)));
    let metadata = Value::Object(metadata);
    let registered = serde_json::to_value(&registered)?;
    let edited = serde_json::to_value(&edited)?;

    const CHUNK: u32 = 100_000;
    let mut from = 1u32;
    while from <= accounts {
        let to = accounts.min(from.saturating_add(CHUNK - 1));
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT 'account', 'bench-' || lpad(i::text, 8, '0'), 1, 'Registered', '1',
                    jsonb_set(jsonb_set(jsonb_set($1::jsonb,
                        '{Registered,email}', to_jsonb('u' || i || '@example.com')),
                        '{Registered,mobile}', to_jsonb('139' || lpad(i::text, 8, '0'))),
                        '{Registered,document_number}', to_jsonb('4403051990' || lpad(i::text, 7, '0') || 'X')),
                    $2::jsonb
               FROM generate_series($3::int, $4::int) AS i",
        )
        .bind(&registered)
        .bind(&metadata)
        .bind(from as i32)
        .bind(to as i32)
        .execute(&mut *conn)
        .await
        .context("inserting Registered events")?;
        from = to.saturating_add(1);
    }
    for sequence in 2..=per_account {
        let mut from = 1u32;
        while from <= accounts {
            let to = accounts.min(from.saturating_add(CHUNK - 1));
            sqlx::query(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 SELECT 'account', 'bench-' || lpad(i::text, 8, '0'), $3, 'ProfileEdited', '1',
                        jsonb_set($1::jsonb, '{ProfileEdited,email}', to_jsonb('u' || i || '.' || $3 || '@example.com')),
                        $2::jsonb
                   FROM generate_series($4::int, $5::int) AS i",
            )
            .bind(&edited)
            .bind(&metadata)
            .bind(i64::from(sequence))
            .bind(from as i32)
            .bind(to as i32)
            .execute(&mut *conn)
            .await
            .context("inserting ProfileEdited events")?;
            from = to.saturating_add(1);
        }
    }
    conn.execute("VACUUM (ANALYZE) events").await.context("vacuuming events")?;
    conn.execute("CHECKPOINT").await.context("checkpoint")?;

    // Every generated shape must decode as the domain's event.
    let sample: Vec<(Value,)> =
        sqlx::query_as("SELECT payload FROM events WHERE aggregate_id IN ('bench-00000001', 'bench-00000077')")
            .fetch_all(&mut *conn)
            .await?;
    for (payload,) in sample {
        serde_json::from_value::<AccountEvent>(payload.clone())
            .with_context(|| format!("a generated payload does not decode: {payload}"))?;
    }
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(&mut *conn).await?;
    Ok(count.max(0) as u64)
}
