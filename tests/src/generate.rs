//! Unique test data: document numbers, contacts, passwords, registrations.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    OnceLock,
};

use rand::Rng;
use serde_json::{json, Value};

/// A process-wide counter with a random start, so values are unique within one test run and
/// unlikely to repeat between runs.
pub(crate) fn next_unique() -> u64 {
    static COUNTER: OnceLock<AtomicU64> = OnceLock::new();
    COUNTER.get_or_init(|| AtomicU64::new(rand::thread_rng().gen_range(0..1_000_000))).fetch_add(1, Ordering::Relaxed)
}

pub(crate) const GB11643_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The GB 11643 (ISO 7064 mod 11-2) check character of 17 digits.
pub fn gb11643_check_char(first17: &str) -> char {
    assert_eq!(first17.len(), 17, "need 17 digits");
    let sum: u32 = first17.chars().zip(GB11643_WEIGHTS).map(|(c, w)| c.to_digit(10).expect("a digit") * w).sum();
    b"10X98765432"[(sum % 11) as usize] as char
}

/// A birth date `YYYYMMDD` between 1976-01-01 and about 2000, and a three-digit sequence,
/// both derived from `n` so that different `n` give different pairs.
pub(crate) fn birth_and_sequence(n: u64) -> (String, String) {
    let base = chrono::NaiveDate::from_ymd_opt(1976, 1, 1).unwrap();
    let birth = base + chrono::Duration::days((n % 9000) as i64);
    let sequence = (n / 9000) % 1000;
    (birth.format("%Y%m%d").to_string(), format!("{sequence:03}"))
}

/// A fresh valid resident ID card number (`resident_id_card`): a province code, a birth date
/// between 1976 and 2000, a sequence and the GB 11643 check character. Unique in this process.
pub fn resident_id_number() -> String {
    let n = next_unique();
    let areas = ["110101", "440305", "310104", "320102", "330106"];
    let area = areas[rand::thread_rng().gen_range(0..areas.len())];
    let (birth, sequence) = birth_and_sequence(n);
    let first17 = format!("{area}{birth}{sequence}");
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh valid resident ID card number of someone born on `birth` (`YYYYMMDD`).
pub fn resident_id_number_born(birth: &str) -> String {
    let first17 = format!("110101{birth}{:03}", next_unique() % 1000);
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh Hong Kong/Macau permit number (`hk_macau_permit`): `H` and 8 digits.
pub fn hk_macau_permit_number() -> String {
    format!("H{:08}", next_unique() % 100_000_000)
}

/// A fresh Hong Kong residence permit number (`hmt_residence_permit`): prefix 810000, a birth
/// date, a sequence and the GB 11643 check character.
pub fn hmt_residence_permit_number() -> String {
    let (birth, sequence) = birth_and_sequence(next_unique());
    let first17 = format!("810000{birth}{sequence}");
    format!("{first17}{}", gb11643_check_char(&first17))
}

/// A fresh mainland mobile number: `1`, one of `3`–`9`, and 9 digits.
pub fn mobile_number() -> String {
    let second = rand::thread_rng().gen_range(3..=9);
    format!("1{second}{:09}", next_unique() % 1_000_000_000)
}

/// A fresh e-mail address.
pub fn email_address() -> String {
    format!("holder{}@example.com", next_unique())
}

/// A fresh password that satisfies the rules (a letter, a digit, a special character, not
/// common, not containing a document number).
pub fn password() -> String {
    format!("Zq7#mountain{:04}", next_unique() % 10_000)
}

/// A fresh WeChat openid.
pub fn openid() -> String {
    format!("oTest{:012}", next_unique())
}

/// A fresh staff username (3–32 of `a-z0-9._-`).
pub fn staff_username() -> String {
    format!("staff.{}", next_unique())
}

/// `11**************1X`: the first two and last two characters, the rest starred.
pub fn masked(document_number: &str) -> String {
    let chars: Vec<char> = document_number.chars().collect();
    let n = chars.len();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        out.push(if i < 2 || i + 2 >= n { *c } else { '*' });
    }
    out
}

/// What a registration sends; [`Registration::body`] makes the JSON. Change fields freely.
#[derive(Debug, Clone)]
pub struct Registration {
    pub document_type: String,
    pub document_number: String,
    pub name: String,
    pub period: String,
    pub start: String,
    pub password: String,
    pub email: String,
    pub mobile: String,
}

impl Registration {
    /// A fresh resident ID card holder, validity 20 years from 2021-03-15.
    pub fn resident() -> Registration {
        Registration {
            document_type: "resident_id_card".into(),
            document_number: resident_id_number(),
            name: "王小明".into(),
            period: "20y".into(),
            start: "2021-03-15".into(),
            password: password(),
            email: email_address(),
            mobile: mobile_number(),
        }
    }

    /// A fresh Hong Kong/Macau permit holder, validity 10 years from 2022-06-01.
    pub fn hk_macau_permit() -> Registration {
        Registration {
            document_type: "hk_macau_permit".into(),
            document_number: hk_macau_permit_number(),
            name: "陈大文".into(),
            period: "10y".into(),
            start: "2022-06-01".into(),
            ..Registration::resident()
        }
    }

    /// A fresh holder of another document (`other`: straight to manual review), validity 10
    /// years from 2022-06-01.
    pub fn other() -> Registration {
        Registration {
            document_type: "other".into(),
            document_number: format!("P{:010}", next_unique() % 10_000_000_000),
            name: "林美玲".into(),
            period: "10y".into(),
            start: "2022-06-01".into(),
            ..Registration::resident()
        }
    }

    /// A fresh Hong Kong residence permit holder, validity 5 years from 2023-01-10.
    pub fn hmt_residence_permit() -> Registration {
        Registration {
            document_type: "hmt_residence_permit".into(),
            document_number: hmt_residence_permit_number(),
            name: "黄志明".into(),
            period: "5y".into(),
            start: "2023-01-10".into(),
            ..Registration::resident()
        }
    }

    /// The `POST /v1/accounts` body with this verification code.
    pub fn body(&self, code: &str) -> Value {
        json!({
            "agreement_accepted": true,
            "document_type": self.document_type,
            "document_number": self.document_number,
            "name": self.name,
            "validity": {"period": self.period, "start": self.start},
            "password": self.password,
            "password_confirmation": self.password,
            "email": self.email,
            "mobile": self.mobile,
            "verification": {"channel": "sms", "code": code},
        })
    }
}

/// A registered account and its credentials.
#[derive(Debug, Clone)]
pub struct Registered {
    pub document_type: String,
    pub document_number: String,
    pub name: String,
    pub password: String,
    pub mobile: String,
    pub email: String,
    pub account_id: String,
}
