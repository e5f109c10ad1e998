//! Property tests of the value parsers and validators in `shenfen_domain::shared`, over
//! generated input, through the public API only.
//!
//! Checked here:
//! - no parser or validator panics on any string (any Unicode, control characters included) or
//!   on any date chrono can represent;
//! - document numbers: every accepted number is normalised (4–32 upper-case ASCII letters and
//!   digits), re-parses and round-trips through JSON to itself, is listed by `infer_types` under
//!   the type it was accepted as, and never shows whole in `Debug`; resident ID cards and
//!   residence permits built from a prefix, a birth date, 3 digits and `check_char` are
//!   accepted, with that birth date and the gender of the 17th digit; the check character
//!   completes the ISO 7064 mod 11-2 sum and so catches every change of one character to
//!   another digit and every swap of two adjacent different digits among the first 17; an
//!   unknown province, an impossible or future birth date each get their own error; lower case,
//!   full-width forms and surrounding white space give the same stored number; Hong Kong/Macau
//!   and Taiwan permits are accepted, and refused with the renewal hint when their 2 renewal
//!   digits are typed; a number is valid for at most one type besides `other`, which refuses it
//!   with `wrong_document_type`, so `infer_types` is never ambiguous;
//! - mobiles: exactly the strings that trim to `1[3-9]` and 9 digits are accepted; they
//!   round-trip and mask to the same shape;
//! - e-mail addresses: generated addresses are accepted with the local part as typed and the
//!   domain lower-cased; every accepted address re-parses to itself; full-width `．。＠` always
//!   get their hint; `qq.com` takes digits only;
//! - names: generated names are accepted when 2–50 characters long, as their NFC form; every
//!   accepted name is NFC, trimmed, well punctuated and re-parses to itself; NFD and NFC input
//!   parse alike; a digit or a look-alike of the middle dot anywhere is refused;
//! - validity: `add_years` keeps month and day (29 February becomes 28 February in a common
//!   year) and is monotonic; `age_on` turns n on the nth birthday; `Validity::parse`/`check`
//!   follow the documented rules in their order, and an accepted validity ends on
//!   `add_years(start, years)`;
//! - passwords: `check_policy` gives the first rule broken, in the documented order; strong
//!   passwords pass; a password containing the document number, or any common password in any
//!   case, never does; `confirm` accepts exactly an identical confirmation;
//! - ethnicity and gender: exactly the GB/T 3304 codes and `male`/`female` are accepted.
#![allow(clippy::unwrap_used)]

use chrono::{Datelike, NaiveDate, TimeDelta};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use shenfen_domain::shared::document::{check_char, infer_types};
use shenfen_domain::shared::password::is_common;
use shenfen_domain::shared::validity::{add_years, age_on};
use shenfen_domain::shared::{
    check_policy, confirm, DocumentError, DocumentNumber, DocumentType, Email, EmailError, Ethnicity, Gender, Mobile,
    NameError, PasswordError, PersonName, Validity, ValidityError, ValidityPeriod, ETHNICITIES,
};
use unicode_normalization::{is_nfc, UnicodeNormalization};

use DocumentType::{HkMacauPermit, HmtResidencePermit, Other, ResidentIdCard, TaiwanPermit};

// ----------------------------------------------------------------------------------------------
// Generators shared by several properties.

fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap()
}

/// Dates from `from` to `to`, both included.
fn dates(from: NaiveDate, to: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    (from.num_days_from_ce()..=to.num_days_from_ce()).prop_map(|n| NaiveDate::from_num_days_from_ce_opt(n).unwrap())
}

/// A plausible "today".
fn sane_date() -> impl Strategy<Value = NaiveDate> {
    dates(ymd(1900, 1, 1), ymd(2200, 12, 31))
}

/// Any date chrono can represent, its two ends included.
fn any_date() -> impl Strategy<Value = NaiveDate> {
    prop_oneof![
        4 => sane_date(),
        4 => dates(NaiveDate::MIN, NaiveDate::MAX),
        1 => Just(NaiveDate::MIN),
        1 => Just(NaiveDate::MAX),
    ]
}

/// The earliest birth date 4 digits can hold.
fn year_zero() -> NaiveDate {
    ymd(0, 1, 1)
}

/// Birth dates up to `today`, often `today` itself.
fn births_until(today: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    prop_oneof![4 => dates(year_zero(), today), 1 => Just(today)]
}

/// Birth dates after `today` that 4 digits can hold, often the day after.
fn births_after(today: NaiveDate) -> impl Strategy<Value = NaiveDate> {
    let tomorrow = today.succ_opt().unwrap();
    prop_oneof![Just(tomorrow), dates(tomorrow, ymd(9999, 12, 31))]
}

/// Any text: printable strings of any script, and any chars at all (controls, lone combining
/// marks, private use, noncharacters).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), vec(any::<char>(), 0..48).prop_map(|cs| cs.into_iter().collect::<String>())]
}

/// Text from a small alphabet, so that the interesting shapes come up often.
fn text_of(alphabet: &[char], len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
    vec(select(alphabet.to_vec()), len).prop_map(|cs| cs.into_iter().collect::<String>())
}

/// White space that `str::trim` removes, as people type it (ideographic and no-break space too).
fn white() -> impl Strategy<Value = String> {
    text_of(&[' ', '\t', '\n', '\r', '\u{3000}', '\u{A0}'], 0..3)
}

/// The province codes of GB/T 2260 that the parser knows (a copy: the table is private).
const PROVINCE_CODES: [&str; 35] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82", "83",
];

const PERMIT_PREFIXES: [&str; 3] = ["810000", "820000", "830000"];

fn with_check(first17: &str) -> String {
    format!("{first17}{}", check_char(first17))
}

/// An 18-character number: 6-digit prefix, birth date, 3 digits and its check character.
fn eighteen(prefix: &str, birth: NaiveDate, seq: u16) -> String {
    with_check(&format!("{prefix}{:04}{:02}{:02}{seq:03}", birth.year(), birth.month(), birth.day()))
}

/// A resident ID card prefix: a province code and 4 digits, never a residence-permit prefix.
fn id_card_prefix() -> impl Strategy<Value = String> {
    (select(PROVINCE_CODES.to_vec()), 0u32..10_000)
        .prop_map(|(province, area)| format!("{province}{area:04}"))
        .prop_filter("a residence-permit prefix", |p| !PERMIT_PREFIXES.contains(&p.as_str()))
}

fn resident_id_card(today: NaiveDate) -> impl Strategy<Value = String> {
    (id_card_prefix(), births_until(today), 0u16..1000).prop_map(|(p, birth, seq)| eighteen(&p, birth, seq))
}

fn residence_permit(today: NaiveDate) -> impl Strategy<Value = String> {
    (select(PERMIT_PREFIXES.to_vec()), births_until(today), 0u16..1000)
        .prop_map(|(p, birth, seq)| eighteen(p, birth, seq))
}

fn hk_macau_permit() -> impl Strategy<Value = String> {
    (select(vec!['H', 'M']), 0u32..100_000_000).prop_map(|(letter, n)| format!("{letter}{n:08}"))
}

fn taiwan_permit() -> impl Strategy<Value = String> {
    (0u32..100_000_000).prop_map(|n| format!("{n:08}"))
}

/// 4–32 letters and digits, often of the lengths the other types use.
fn other_shaped() -> impl Strategy<Value = String> {
    const ALNUM: [char; 16] = ['0', '1', '2', '5', '8', '9', 'A', 'E', 'H', 'M', 'X', 'Z', 'a', 'h', 'm', 'x'];
    const DIGITS: [char; 10] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
    prop_oneof![
        text_of(&ALNUM, 4..33),
        text_of(&DIGITS, 4..33),
        text_of(&DIGITS, 8..9),
        text_of(&DIGITS, 17..19),
        (select(vec!['H', 'M', 'h']), text_of(&DIGITS, 8..9)).prop_map(|(c, digits)| format!("{c}{digits}")),
    ]
}

/// A number valid on `today`, with its type.
fn valid_number(today: NaiveDate) -> impl Strategy<Value = (DocumentType, String)> {
    prop_oneof![
        resident_id_card(today).prop_map(|n| (ResidentIdCard, n)),
        residence_permit(today).prop_map(|n| (HmtResidencePermit, n)),
        hk_macau_permit().prop_map(|n| (HkMacauPermit, n)),
        taiwan_permit().prop_map(|n| (TaiwanPermit, n)),
        // Never H or M first, so never a Hong Kong/Macau permit by chance.
        "[A-GI-LN-Z][A-Z0-9]{3,31}".prop_map(|n| (Other, n)),
    ]
}

/// `today` and a number valid on it.
fn dated_valid_number() -> impl Strategy<Value = (NaiveDate, (DocumentType, String))> {
    sane_date().prop_flat_map(|today| (Just(today), valid_number(today)))
}

/// `today` and an 18-character number valid on it, with its type.
fn dated_eighteen() -> impl Strategy<Value = (NaiveDate, DocumentType, String)> {
    sane_date().prop_flat_map(|today| {
        prop_oneof![
            resident_id_card(today).prop_map(move |n| (today, ResidentIdCard, n)),
            residence_permit(today).prop_map(move |n| (today, HmtResidencePermit, n)),
        ]
    })
}

/// How someone might type a number: some letters in lower case, some characters in their
/// full-width form, white space around.
#[derive(Debug, Clone)]
struct Typing {
    lower: Vec<bool>,
    wide: Vec<bool>,
    lead: String,
    trail: String,
}

impl Typing {
    fn apply(&self, number: &str) -> String {
        let body: String = number
            .chars()
            .zip(self.lower.iter().zip(&self.wide))
            .map(|(c, (&lower, &wide))| {
                let c = if lower { c.to_ascii_lowercase() } else { c };
                if wide && c.is_ascii_alphanumeric() {
                    char::from_u32(c as u32 + 0xFEE0).unwrap()
                } else {
                    c
                }
            })
            .collect();
        format!("{}{body}{}", self.lead, self.trail)
    }
}

fn typing() -> impl Strategy<Value = Typing> {
    (vec(any::<bool>(), 32), vec(any::<bool>(), 32), white(), white()).prop_map(|(lower, wide, lead, trail)| Typing {
        lower,
        wide,
        lead,
        trail,
    })
}

/// Text that looks like a document number, or nearly does.
fn document_text() -> impl Strategy<Value = String> {
    const NEAR: [char; 20] = [
        '0', '1', '2', '8', '9', 'X', 'x', 'H', 'h', 'M', 'm', 'A', ' ', '-', '０', '９', 'ｘ', 'Ｈ', '\u{3000}', '中',
    ];
    prop_oneof![any_text(), text_of(&NEAR, 0..36)]
}

/// Any input a document field may get on `today`: junk, near misses, and valid numbers of every
/// type as people type them.
fn document_input(today: NaiveDate) -> impl Strategy<Value = String> {
    prop_oneof![
        document_text(),
        other_shaped(),
        (valid_number(today), typing()).prop_map(|((_, number), typing)| typing.apply(&number)),
    ]
}

fn doc_type() -> impl Strategy<Value = DocumentType> {
    select(DocumentType::ALL.to_vec())
}

// ----------------------------------------------------------------------------------------------
// Document numbers.

proptest! {
    #[test]
    fn no_document_parser_panics_on_any_input(doc_type in doc_type(), raw in document_text(), today in any_date()) {
        let _ = DocumentNumber::parse(doc_type, &raw, today);
        let _ = infer_types(&raw);
        let _ = check_char(&raw);
        let _ = DocumentType::parse(&raw);
    }

    #[test]
    fn every_accepted_number_is_normalised_and_parses_to_itself_again(
        (today, raw) in sane_date().prop_flat_map(|today| (Just(today), document_input(today))),
    ) {
        for doc_type in DocumentType::ALL {
            let Ok(number) = DocumentNumber::parse(doc_type, &raw, today) else { continue };
            let s = number.as_str();
            prop_assert!((4..=32).contains(&s.len()), "{doc_type}: {} characters", s.len());
            prop_assert!(s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()), "{doc_type}: {s:?}");
            prop_assert_eq!(DocumentNumber::parse(doc_type, s, today), Ok(number.clone()));
            prop_assert!(infer_types(s).contains(&doc_type), "{doc_type} not inferred for {s:?}");
            prop_assert_eq!(infer_types(s), infer_types(&raw));
            let json = serde_json::to_string(&number).unwrap();
            prop_assert_eq!(json.clone(), format!("\"{s}\""));
            prop_assert_eq!(serde_json::from_str::<DocumentNumber>(&json).unwrap(), number.clone());
            prop_assert!(!format!("{number:?}").contains(s), "Debug shows the whole number");
            prop_assert_eq!(number.masked().chars().count(), s.len());
        }
    }

    #[test]
    fn how_a_valid_number_is_typed_does_not_change_the_stored_number(
        (today, (doc_type, number)) in dated_valid_number(),
        typing in typing(),
    ) {
        let typed = typing.apply(&number);
        let parsed = DocumentNumber::parse(doc_type, &typed, today).map(DocumentNumber::into_string);
        prop_assert_eq!(parsed, Ok(number), "typed as {:?}", typed);
    }

    #[test]
    fn a_resident_id_card_built_from_a_province_a_birth_date_and_its_check_character_is_accepted(
        (today, prefix, birth, seq) in sane_date()
            .prop_flat_map(|today| (Just(today), id_card_prefix(), births_until(today), 0u16..1000)),
    ) {
        let raw = eighteen(&prefix, birth, seq);
        let number = DocumentNumber::parse(ResidentIdCard, &raw, today);
        prop_assert!(number.is_ok(), "{raw} refused: {number:?}");
        let number = number.unwrap();
        prop_assert_eq!(number.as_str(), raw.as_str());
        prop_assert_eq!(number.birth_date(), Some(birth));
        prop_assert_eq!(number.birth_date_for(ResidentIdCard), Some(birth));
        prop_assert_eq!(number.birth_date_for(Other), None);
        let gender = if seq % 2 == 1 { Gender::Male } else { Gender::Female };
        prop_assert_eq!(number.gender(), Some(gender));
        prop_assert_eq!(infer_types(&raw), vec![ResidentIdCard, Other]);
        let as_permit = DocumentNumber::parse(HmtResidencePermit, &raw, today);
        prop_assert_eq!(as_permit, Err(DocumentError::ResidencePermitPrefix));
    }

    #[test]
    fn a_residence_permit_is_accepted_as_one_and_pointed_to_when_entered_as_an_id_card(
        (today, prefix, birth, seq) in sane_date().prop_flat_map(|today| {
            (Just(today), select(PERMIT_PREFIXES.to_vec()), births_until(today), 0u16..1000)
        }),
    ) {
        let raw = eighteen(prefix, birth, seq);
        let number = DocumentNumber::parse(HmtResidencePermit, &raw, today);
        prop_assert!(number.is_ok(), "{raw} refused: {number:?}");
        let number = number.unwrap();
        prop_assert_eq!(number.as_str(), raw.as_str());
        prop_assert_eq!(number.birth_date_for(HmtResidencePermit), Some(birth));
        prop_assert_eq!(infer_types(&raw), vec![HmtResidencePermit, Other]);
        let as_id_card = DocumentNumber::parse(ResidentIdCard, &raw, today).unwrap_err();
        prop_assert_eq!(as_id_card.clone(), DocumentError::ResidencePermitNumberAsIdCard);
        prop_assert_eq!(as_id_card.hint(), Some("use_hmt_residence_permit"));
    }

    #[test]
    fn the_check_character_completes_the_iso_7064_mod_11_2_sum(digits in vec(0u32..10, 17)) {
        let first17: String = digits.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
        let check = check_char(&first17);
        prop_assert!(check.is_ascii_digit() || check == 'X', "{check:?}");
        // Counting positions from the right, the character at position n weighs 2^(n-1) mod 11;
        // the check character (position 1, weight 1) makes the total 1 mod 11.
        let weight = |i: usize| (0..17 - i).fold(1, |w, _| w * 2 % 11);
        let value = if check == 'X' { 10 } else { check.to_digit(10).unwrap() };
        let total: u32 = digits.iter().enumerate().map(|(i, d)| d * weight(i)).sum::<u32>() + value;
        prop_assert_eq!(total % 11, 1);
    }

    #[test]
    fn changing_any_one_character_of_an_eighteen_character_number_to_another_digit_is_detected(
        (today, doc_type, number) in dated_eighteen(),
        position in 0usize..18,
        pick in 0usize..9,
    ) {
        let mut chars: Vec<char> = number.chars().collect();
        let old = chars[position];
        chars[position] = ('0'..='9').filter(|c| *c != old).nth(pick).unwrap();
        let changed: String = chars.into_iter().collect();
        let result = DocumentNumber::parse(doc_type, &changed, today);
        prop_assert!(result.is_err(), "{number} changed to {changed} still accepted as {doc_type}");
    }

    #[test]
    fn swapping_two_adjacent_different_digits_among_the_first_seventeen_is_detected(
        (today, doc_type, number) in dated_eighteen(),
        start in 0usize..16,
    ) {
        let mut chars: Vec<char> = number.chars().collect();
        // The first pair of different neighbours among the 17 digits, from `start` on.
        let Some(i) = (0..16).map(|k| (start + k) % 16).find(|&i| chars[i] != chars[i + 1]) else {
            return Ok(());
        };
        chars.swap(i, i + 1);
        let swapped: String = chars.into_iter().collect();
        let result = DocumentNumber::parse(doc_type, &swapped, today);
        prop_assert!(result.is_err(), "{number} swapped to {swapped} still accepted as {doc_type}");
    }

    #[test]
    fn an_unknown_province_code_is_refused_and_named(
        code in (0u32..100)
            .prop_map(|n| format!("{n:02}"))
            .prop_filter("a province", |c| !PROVINCE_CODES.contains(&c.as_str())),
        area in 0u32..10_000,
        (today, birth) in sane_date().prop_flat_map(|today| (Just(today), births_until(today))),
        seq in 0u16..1000,
    ) {
        let raw = eighteen(&format!("{code}{area:04}"), birth, seq);
        let result = DocumentNumber::parse(ResidentIdCard, &raw, today);
        prop_assert_eq!(result, Err(DocumentError::UnknownProvince { code }));
    }

    #[test]
    fn a_birth_date_after_today_is_refused(
        (today, birth) in sane_date().prop_flat_map(|today| (Just(today), births_after(today))),
        prefix in id_card_prefix(),
        permit_prefix in select(PERMIT_PREFIXES.to_vec()),
        seq in 0u16..1000,
    ) {
        let id_card = eighteen(&prefix, birth, seq);
        prop_assert_eq!(DocumentNumber::parse(ResidentIdCard, &id_card, today), Err(DocumentError::BirthDateInFuture));
        let permit = eighteen(permit_prefix, birth, seq);
        let as_permit = DocumentNumber::parse(HmtResidencePermit, &permit, today);
        prop_assert_eq!(as_permit, Err(DocumentError::BirthDateInFuture));
    }

    #[test]
    fn digits_seven_to_fourteen_that_are_no_calendar_date_are_refused(
        (year, month, day) in (0i32..10_000, 0u32..100, 0u32..100)
            .prop_filter("a real date", |(y, m, d)| NaiveDate::from_ymd_opt(*y, *m, *d).is_none()),
        prefix in prop_oneof![id_card_prefix(), select(PERMIT_PREFIXES.to_vec()).prop_map(String::from)],
        seq in 0u16..1000,
        today in sane_date(),
    ) {
        let raw = with_check(&format!("{prefix}{year:04}{month:02}{day:02}{seq:03}"));
        let doc_type = if PERMIT_PREFIXES.contains(&prefix.as_str()) { HmtResidencePermit } else { ResidentIdCard };
        prop_assert_eq!(DocumentNumber::parse(doc_type, &raw, today), Err(DocumentError::InvalidBirthDate));
    }

    #[test]
    fn a_hong_kong_macau_permit_is_h_or_m_and_eight_digits_without_its_renewal_digits(
        number in hk_macau_permit(),
        renewal in 0u32..100,
        typing in typing(),
        today in sane_date(),
    ) {
        let parsed = DocumentNumber::parse(HkMacauPermit, &typing.apply(&number), today);
        prop_assert_eq!(parsed.clone().map(DocumentNumber::into_string), Ok(number.clone()));
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.birth_date(), None);
        prop_assert_eq!(parsed.gender(), None);
        prop_assert_eq!(infer_types(&number), vec![HkMacauPermit, Other]);
        let err = DocumentNumber::parse(HkMacauPermit, &format!("{number}{renewal:02}"), today).unwrap_err();
        prop_assert_eq!(err.clone(), DocumentError::PermitRenewalDigits { doc_type: HkMacauPermit, expected: 9 });
        prop_assert_eq!(err.hint(), Some("permit_renewal_digits_not_entered"));
        prop_assert_eq!(err.code(), "invalid_document_number");
    }

    #[test]
    fn a_taiwan_permit_is_eight_digits_without_its_renewal_digits(
        number in taiwan_permit(),
        renewal in 0u32..100,
        typing in typing(),
        today in sane_date(),
    ) {
        let parsed = DocumentNumber::parse(TaiwanPermit, &typing.apply(&number), today);
        prop_assert_eq!(parsed.clone().map(DocumentNumber::into_string), Ok(number.clone()));
        prop_assert_eq!(parsed.unwrap().birth_date(), None);
        prop_assert_eq!(infer_types(&number), vec![TaiwanPermit, Other]);
        let err = DocumentNumber::parse(TaiwanPermit, &format!("{number}{renewal:02}"), today).unwrap_err();
        prop_assert_eq!(err.clone(), DocumentError::PermitRenewalDigits { doc_type: TaiwanPermit, expected: 8 });
        prop_assert_eq!(err.hint(), Some("permit_renewal_digits_not_entered"));
    }

    #[test]
    fn a_number_is_valid_for_at_most_one_type_besides_other_and_other_then_refuses_it(
        (today, raw) in sane_date().prop_flat_map(|today| (Just(today), document_input(today))),
    ) {
        let accepting: Vec<DocumentType> = DocumentType::ALL
            .into_iter()
            .filter(|t| *t != Other && DocumentNumber::parse(*t, &raw, today).is_ok())
            .collect();
        prop_assert!(accepting.len() <= 1, "accepted as {accepting:?}");
        let inferred = infer_types(&raw);
        prop_assert!(inferred.iter().filter(|t| **t != Other).count() <= 1, "inferred as {inferred:?}");
        if inferred.contains(&Other) {
            prop_assert_eq!(inferred.last(), Some(&Other));
        }
        let as_other = DocumentNumber::parse(Other, &raw, today);
        match accepting.first() {
            Some(&actual) => {
                prop_assert_eq!(inferred.first(), Some(&actual));
                let err = as_other.unwrap_err();
                prop_assert_eq!(err.clone(), DocumentError::WrongDocumentType { actual });
                prop_assert_eq!(err.code(), "wrong_document_type");
                prop_assert_eq!(err.hint(), Some(actual.as_str()));
            }
            None => prop_assert!(
                matches!(
                    as_other,
                    Ok(_) | Err(DocumentError::Empty | DocumentError::BadFormat { doc_type: Other, .. })
                ),
                "{as_other:?}"
            ),
        }
    }

    #[test]
    fn a_document_type_is_read_from_its_wire_name_only(
        raw in prop_oneof![
            any_text(),
            (white(), doc_type(), white()).prop_map(|(lead, t, trail)| format!("{lead}{t}{trail}")),
        ],
    ) {
        let expected = DocumentType::ALL.into_iter().find(|t| t.as_str() == raw.trim());
        prop_assert_eq!(DocumentType::parse(&raw), expected);
    }
}

// ----------------------------------------------------------------------------------------------
// Mobiles.

fn is_mainland_mobile(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    chars.len() == 11 && chars.iter().all(char::is_ascii_digit) && chars[0] == '1' && ('3'..='9').contains(&chars[1])
}

proptest! {
    #[test]
    fn a_mainland_mobile_is_accepted_round_trips_and_masks_to_the_same_shape(
        number in "1[3-9][0-9]{9}",
        lead in white(),
        trail in white(),
    ) {
        let mobile = Mobile::parse(&format!("{lead}{number}{trail}")).unwrap();
        prop_assert_eq!(mobile.as_str(), number.as_str());
        prop_assert_eq!(Mobile::parse(mobile.as_str()), Ok(mobile.clone()));
        prop_assert_eq!(mobile.masked(), format!("{}****{}", &number[..3], &number[7..]));
        let debug = format!("{mobile:?}");
        prop_assert!(!debug.contains(&number), "Debug shows the whole number: {debug}");
        let json = serde_json::to_string(&mobile).unwrap();
        prop_assert_eq!(serde_json::from_str::<Mobile>(&json).unwrap(), mobile);
    }

    #[test]
    fn only_strings_that_trim_to_a_mainland_mobile_are_accepted(
        raw in prop_oneof![
            any_text(),
            "[0-9]{9,13}",
            "1[0-9]{10}",
            "[ \t]?1[3-9][0-9 -]{8,11}[ \u{3000}]?",
            "\\+861[3-9][0-9]{9}",
            "[1１][3-9３-９][0-9０-９]{9}",
        ],
    ) {
        let result = Mobile::parse(&raw);
        prop_assert_eq!(result.is_ok(), is_mainland_mobile(raw.trim()), "{:?}", raw);
        if let Err(err) = result {
            prop_assert_eq!(err.code(), "invalid_mobile");
        }
    }
}

// ----------------------------------------------------------------------------------------------
// E-mail addresses.

/// RFC 5322 atext.
const ATEXT: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-";

fn local_part() -> impl Strategy<Value = String> {
    let atext: Vec<char> = ATEXT.chars().collect();
    vec(text_of(&atext, 1..11), 1..5).prop_map(|atoms| atoms.join("."))
}

fn domain() -> impl Strategy<Value = String> {
    let label = "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?";
    (vec(label, 1..5), "[a-zA-Z]{2,10}").prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

fn email_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(),
        "[a-zA-Z0-9._+@ -]{0,16}@[a-zA-Z0-9.@-]{0,16}",
        (local_part(), domain(), white()).prop_map(|(l, d, w)| format!("{w}{l}@{d}{w}")),
        (local_part(), "[qQ][qQ]\\.[cC][oO][mM]").prop_map(|(l, d)| format!("{l}@{d}")),
    ]
}

proptest! {
    #[test]
    fn a_generated_address_is_accepted_with_the_local_part_as_typed_and_the_domain_lower_cased(
        local in local_part(),
        domain in domain(),
        lead in white(),
        trail in white(),
    ) {
        let result = Email::parse(&format!("{lead}{local}@{domain}{trail}"));
        let lower = domain.to_ascii_lowercase();
        if lower == "qq.com" && !local.bytes().all(|b| b.is_ascii_digit()) {
            prop_assert_eq!(result, Err(EmailError::QqLocalPartDigitsOnly));
            return Ok(());
        }
        let email = result.unwrap();
        prop_assert_eq!(email.as_str(), format!("{local}@{lower}"));
        prop_assert_eq!(email.local_part(), local.as_str());
        prop_assert_eq!(email.domain(), lower.as_str());
        prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        let json = serde_json::to_string(&email).unwrap();
        prop_assert_eq!(serde_json::from_str::<Email>(&json).unwrap(), email);
    }

    #[test]
    fn every_accepted_address_is_well_formed_and_parses_to_itself_again(raw in email_text()) {
        let Ok(email) = Email::parse(&raw) else { return Ok(()) };
        let s = email.as_str();
        prop_assert!(s.is_ascii() && !s.contains(char::is_whitespace), "{s:?}");
        prop_assert!(s.chars().count() <= 254);
        prop_assert_eq!(s.matches('@').count(), 1);
        let (local, domain) = raw.trim().split_once('@').unwrap();
        prop_assert_eq!(email.local_part(), local);
        prop_assert_eq!(email.domain(), domain.to_ascii_lowercase());
        prop_assert_eq!(Email::parse(s), Ok(email.clone()));
        prop_assert_eq!(email.masked(), format!("{}***@{}", &local[..1], email.domain()));
    }

    #[test]
    fn a_full_width_dot_or_at_sign_anywhere_gets_its_hint(
        raw in email_text(),
        mark in select(vec!['．', '。', '＠']),
        at in any::<Index>(),
    ) {
        let chars: Vec<char> = raw.chars().collect();
        let i = at.index(chars.len() + 1);
        let with_mark: String = chars[..i].iter().chain([&mark]).chain(&chars[i..]).collect();
        let err = Email::parse(&with_mark).unwrap_err();
        prop_assert_eq!(err.clone(), EmailError::FullWidthPunctuation);
        prop_assert_eq!(err.hint(), Some("use_ascii_dot_and_at"));
    }

    #[test]
    fn a_qq_com_address_is_accepted_only_with_a_qq_number_before_the_at(
        local in prop_oneof![local_part(), "[0-9]{5,12}"],
        domain in "[qQ][qQ]\\.[cC][oO][mM]",
    ) {
        let result = Email::parse(&format!("{local}@{domain}"));
        if local.bytes().all(|b| b.is_ascii_digit()) {
            prop_assert_eq!(result.map(Email::into_string), Ok(format!("{local}@qq.com")));
        } else {
            let err = result.unwrap_err();
            prop_assert_eq!(err.clone(), EmailError::QqLocalPartDigitsOnly);
            prop_assert_eq!(err.hint(), Some("qq_local_part_digits_only"));
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Names.

const MIDDLE_DOT: char = '\u{B7}';

/// The look-alikes of the middle dot that the parser refuses with a hint (a copy: the list is
/// private).
const LOOK_ALIKES: [char; 8] =
    ['\u{30FB}', '\u{FF65}', '\u{2022}', '\u{2027}', '\u{22C5}', '\u{2219}', '\u{FF0E}', '.'];

/// A letter a name may have: CJK ideographs of several blocks (compatibility ideographs too,
/// which NFC maps to unified ones), `〇`, and Latin letters.
fn name_letter() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('\u{4E00}', '\u{9FFF}'),
        1 => prop::char::range('\u{3400}', '\u{4DBF}'),
        2 => prop::char::range('\u{20000}', '\u{2A6DF}'),
        1 => prop::char::range('\u{F900}', '\u{FAFF}'),
        1 => Just('〇'),
        3 => prop::char::range('a', 'z'),
        2 => prop::char::range('A', 'Z'),
        1 => prop::char::range('\u{C0}', '\u{D6}'),
        1 => prop::char::range('\u{F8}', '\u{24F}'),
        1 => prop::char::range('\u{1E00}', '\u{1EFF}'),
    ]
}

/// 1–5 parts of 1–12 letters, separated by one space or one middle dot: up to 64 characters.
fn well_formed_name() -> impl Strategy<Value = String> {
    (vec(vec(name_letter(), 1..13), 1..6), vec(select(vec![' ', MIDDLE_DOT]), 4)).prop_map(|(parts, seps)| {
        let mut name = String::new();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                name.push(seps[i - 1]);
            }
            name.extend(part);
        }
        name
    })
}

fn name_text() -> impl Strategy<Value = String> {
    let odd = prop_oneof![
        Just(' '),
        Just(MIDDLE_DOT),
        Just('\u{301}'),
        Just('\u{308}'),
        select(LOOK_ALIKES.to_vec()),
        select(vec!['1', '３', '\t', '\u{3000}', '\u{200B}', '-', '\'', '😀']),
    ];
    prop_oneof![
        any_text(),
        well_formed_name(),
        (white(), well_formed_name(), white()).prop_map(|(lead, name, trail)| format!("{lead}{name}{trail}")),
        vec(prop_oneof![3 => name_letter(), 2 => odd], 0..60).prop_map(|cs| cs.into_iter().collect::<String>()),
    ]
}

proptest! {
    #[test]
    fn a_well_formed_name_is_accepted_as_its_nfc_form_when_two_to_fifty_characters_long(
        name in prop_oneof![
            well_formed_name(),
            // Lengths at the limits.
            select(vec![1, 2, 3, 49, 50, 51, 52])
                .prop_flat_map(|n| vec(name_letter(), n))
                .prop_map(|cs| cs.into_iter().collect::<String>()),
        ],
    ) {
        let nfc: String = name.nfc().collect();
        let count = nfc.chars().count();
        let result = PersonName::parse(&name);
        if count < PersonName::MIN_CHARS {
            prop_assert_eq!(result, Err(NameError::TooShort));
        } else if count > PersonName::MAX_CHARS {
            prop_assert_eq!(result, Err(NameError::TooLong));
        } else {
            prop_assert_eq!(result.map(PersonName::into_string), Ok(nfc));
        }
    }

    #[test]
    fn every_accepted_name_is_nfc_trimmed_well_punctuated_and_parses_to_itself_again(raw in name_text()) {
        let Ok(name) = PersonName::parse(&raw) else { return Ok(()) };
        let s = name.as_str();
        prop_assert!((PersonName::MIN_CHARS..=PersonName::MAX_CHARS).contains(&name.char_count()));
        prop_assert_eq!(name.char_count(), s.chars().count());
        prop_assert!(is_nfc(s), "{s:?}");
        let nfc: String = raw.nfc().collect();
        prop_assert_eq!(s, nfc.trim());
        prop_assert!(!s.starts_with([' ', MIDDLE_DOT]) && !s.ends_with([' ', MIDDLE_DOT]), "{s:?}");
        for pair in ["  ", " \u{B7}", "\u{B7} ", "\u{B7}\u{B7}"] {
            prop_assert!(!s.contains(pair), "{s:?} contains {pair:?}");
        }
        prop_assert_eq!(PersonName::parse(s), Ok(name.clone()));
        let masked = name.masked();
        prop_assert_eq!(masked.chars().next(), s.chars().next());
        prop_assert!(masked.chars().skip(1).all(|c| c == '*') && masked.chars().count() == name.char_count());
        let json = serde_json::to_string(&name).unwrap();
        prop_assert_eq!(serde_json::from_str::<PersonName>(&json).unwrap(), name);
    }

    #[test]
    fn decomposed_and_composed_input_give_the_same_result(raw in name_text()) {
        let nfd: String = raw.nfd().collect();
        prop_assert_eq!(PersonName::parse(&nfd), PersonName::parse(&raw));
    }

    #[test]
    fn a_digit_or_a_look_alike_of_the_middle_dot_anywhere_in_a_name_is_refused(
        name in well_formed_name(),
        (c, expected) in prop_oneof![
            "[0-9０-９]".prop_map(|d| (d.chars().next().unwrap(), NameError::ForbiddenCharacter)),
            select(LOOK_ALIKES.to_vec()).prop_map(|c| (c, NameError::LookAlikeMiddleDot)),
        ],
        at in any::<Index>(),
    ) {
        let chars: Vec<char> = name.chars().collect();
        let i = at.index(chars.len() + 1);
        let spoiled: String = chars[..i].iter().chain([&c]).chain(&chars[i..]).collect();
        let err = PersonName::parse(&spoiled).unwrap_err();
        prop_assert_eq!(err.clone(), expected);
        prop_assert_eq!(err.code(), "invalid_name");
    }
}

// ----------------------------------------------------------------------------------------------
// Validity.

fn period() -> impl Strategy<Value = ValidityPeriod> {
    select(ValidityPeriod::ALL.to_vec())
}

/// How far one date lies before another: a number of days, or whole years and a few days.
#[derive(Debug, Clone, Copy)]
enum Before {
    Days(i64),
    YearsAndDays(i32, i64),
}

impl Before {
    fn from(self, date: NaiveDate) -> NaiveDate {
        match self {
            Before::Days(days) => date - TimeDelta::days(days),
            Before::YearsAndDays(years, days) => add_years(date, -years).unwrap() - TimeDelta::days(days),
        }
    }
}

/// `today`, a start near it and perhaps a birth date near the start, so that every rule comes
/// into play: starts up to 400 days ahead or ~25 years back, or 5, 10 or 20 years back give or
/// take a day (documents that end yesterday, today or tomorrow); births up to 400 days after the
/// start or ~68 years before it, or 46 years before it give or take a day.
fn validity_dates() -> impl Strategy<Value = (NaiveDate, NaiveDate, Option<NaiveDate>)> {
    let start = prop_oneof![
        (-400i64..=9_000).prop_map(Before::Days),
        (select(vec![5, 10, 20]), -1i64..=1).prop_map(|(years, days)| Before::YearsAndDays(years, days)),
    ];
    let birth = prop_oneof![
        (-400i64..=25_000).prop_map(Before::Days),
        (-1i64..=1).prop_map(|days| Before::YearsAndDays(46, days)),
    ];
    (dates(ymd(1950, 1, 1), ymd(2100, 12, 31)), start, prop::option::of(birth)).prop_map(|(today, start, birth)| {
        let start = start.from(today);
        (today, start, birth.map(|birth| birth.from(start)))
    })
}

/// The day the holder turns 46: the same month and day 46 years on, 1 March when that would be
/// 29 February of a common year.
fn forty_sixth_birthday(birth: NaiveDate) -> NaiveDate {
    let year = birth.year() + 46;
    NaiveDate::from_ymd_opt(year, birth.month(), birth.day()).unwrap_or_else(|| ymd(year, 3, 1))
}

/// The rules of `validity.rs`, in the order its module documentation gives them.
fn expected_validity(
    period: ValidityPeriod,
    start: NaiveDate,
    doc_type: DocumentType,
    birth: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<(), ValidityError> {
    if start > today {
        return Err(ValidityError::StartInFuture);
    }
    if birth.is_some_and(|birth| start < birth) {
        return Err(ValidityError::StartBeforeBirth);
    }
    if period == ValidityPeriod::LongTerm
        && doc_type == ResidentIdCard
        && birth.is_none_or(|birth| start < forty_sixth_birthday(birth))
    {
        return Err(ValidityError::LongTermNotAllowed);
    }
    match period.years().and_then(|years| add_years(start, years)) {
        Some(end) if end < today => Err(ValidityError::Expired { end }),
        _ => Ok(()),
    }
}

proptest! {
    #[test]
    fn no_validity_function_panics_on_any_input(
        period_text in prop_oneof![any_text(), period().prop_map(|p| p.as_str().to_string())],
        start in any_date(),
        birth in prop::option::of(any_date()),
        today in any_date(),
        doc_type in doc_type(),
        years in any::<i32>(),
    ) {
        let _ = ValidityPeriod::parse(&period_text);
        if let Ok(validity) = Validity::parse(&period_text, start, doc_type, birth, today) {
            let _ = validity.end();
            let _ = validity.is_expired_on(today);
        }
        let _ = add_years(start, years);
        let _ = age_on(start, today);
    }

    #[test]
    fn a_period_is_read_from_its_wire_name_only(
        raw in prop_oneof![
            any_text(),
            (white(), period(), white()).prop_map(|(lead, p, trail)| format!("{lead}{p}{trail}")),
        ],
        (today, start, birth) in validity_dates(),
        doc_type in doc_type(),
    ) {
        match ValidityPeriod::parse(&raw) {
            Some(period) => {
                prop_assert_eq!(period.as_str(), raw.trim());
                let parsed = Validity::parse(&raw, start, doc_type, birth, today);
                prop_assert_eq!(parsed, Validity::check(period, start, doc_type, birth, today));
            }
            None => {
                prop_assert!(ValidityPeriod::ALL.iter().all(|p| p.as_str() != raw.trim()));
                let parsed = Validity::parse(&raw, start, doc_type, birth, today);
                prop_assert_eq!(parsed, Err(ValidityError::UnknownPeriod));
            }
        }
    }

    #[test]
    fn a_validity_follows_the_rules_and_ends_on_the_start_plus_its_years(
        period in period(),
        (today, start, birth) in validity_dates(),
        doc_type in doc_type(),
    ) {
        let result = Validity::check(period, start, doc_type, birth, today);
        prop_assert_eq!(result.clone().map(|_| ()), expected_validity(period, start, doc_type, birth, today));
        let Ok(validity) = result else { return Ok(()) };
        prop_assert_eq!(validity.period(), period);
        prop_assert_eq!(validity.start(), start);
        prop_assert_eq!(validity.end(), period.years().and_then(|years| add_years(start, years)));
        prop_assert!(!validity.is_expired_on(today));
        if let Some(end) = validity.end() {
            prop_assert!(!validity.is_expired_on(end));
            prop_assert!(validity.is_expired_on(end.succ_opt().unwrap()));
        }
        let json = serde_json::to_string(&validity).unwrap();
        prop_assert_eq!(serde_json::from_str::<Validity>(&json).unwrap(), validity);
    }

    #[test]
    fn add_years_keeps_the_month_and_day_but_the_twenty_ninth_of_february_in_a_common_year(
        date in sane_date(),
        years in -200i32..=200,
    ) {
        let end = add_years(date, years).unwrap();
        prop_assert_eq!(end.year(), date.year() + years);
        prop_assert_eq!(end.month(), date.month());
        let common_year = NaiveDate::from_ymd_opt(end.year(), 2, 29).is_none();
        let expected_day = if (date.month(), date.day()) == (2, 29) && common_year { 28 } else { date.day() };
        prop_assert_eq!(end.day(), expected_day);
        prop_assert_eq!(add_years(date, 0), Some(date));
    }

    #[test]
    fn add_years_never_moves_a_later_date_before_an_earlier_one(
        a in sane_date(),
        b in sane_date(),
        years in -200i32..=200,
    ) {
        let (earlier, later) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(add_years(earlier, years) <= add_years(later, years));
    }

    #[test]
    fn the_holder_turns_n_on_the_nth_birthday_and_not_the_day_before(birth in sane_date(), n in 1i32..=100) {
        prop_assume!((birth.month(), birth.day()) != (2, 29));
        let birthday = add_years(birth, n).unwrap();
        prop_assert_eq!(age_on(birth, birthday), n);
        prop_assert_eq!(age_on(birth, birthday.pred_opt().unwrap()), n - 1);
    }
}

// ----------------------------------------------------------------------------------------------
// Passwords.

const SPECIALS: &str = "#%*-_!@$&";

/// The password rules in the order the module documents them: length, characters, composition,
/// document number, common list.
fn expected_policy(password: &str, document_number: Option<&str>) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < 8 {
        return Err(PasswordError::TooShort);
    }
    if length > 32 {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(|c| !c.is_ascii_alphanumeric() && !SPECIALS.contains(c)) {
        return Err(PasswordError::ForbiddenCharacter);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(PasswordError::MissingDigit);
    }
    if !password.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(PasswordError::MissingLetter);
    }
    if !password.chars().any(|c| SPECIALS.contains(c)) {
        return Err(PasswordError::MissingSpecial);
    }
    let number = document_number.map(str::trim).unwrap_or_default().to_ascii_lowercase();
    if !number.is_empty() && password.to_ascii_lowercase().contains(&number) {
        return Err(PasswordError::ContainsDocumentNumber);
    }
    if is_common(password) {
        return Err(PasswordError::TooCommon);
    }
    Ok(())
}

fn password_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range('a', 'z'),
        3 => prop::char::range('A', 'Z'),
        4 => prop::char::range('0', '9'),
        3 => select(SPECIALS.chars().collect::<Vec<_>>()),
        1 => select(vec![' ', '+', '.', '\u{E9}', '＃', '老', '\t', '\u{0}']),
    ]
}

/// Candidate passwords that break each rule in turn, or none.
fn policy_text() -> impl Strategy<Value = String> {
    let no_digit: Vec<char> = ('a'..='z').chain('A'..='Z').chain(SPECIALS.chars()).collect();
    let no_letter: Vec<char> = ('0'..='9').chain(SPECIALS.chars()).collect();
    let no_special: Vec<char> = ('a'..='z').chain('0'..='9').collect();
    prop_oneof![
        vec(password_char(), 0..40).prop_map(|cs| cs.into_iter().collect::<String>()),
        text_of(&no_digit, 6..34),
        text_of(&no_letter, 6..34),
        text_of(&no_special, 6..34),
        "[0-9]{6,34}|[a-zA-Z]{6,34}|[#%*_!@$&-]{6,34}",
        strong_password(),
        (select(common_passwords()), vec(any::<bool>(), 1..8)).prop_map(|(p, upper)| recased(p, &upper)),
        any_text(),
    ]
}

/// 8–32 allowed characters with at least one digit, one letter and one special, shuffled.
fn strong_password() -> impl Strategy<Value = String> {
    let allowed: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').chain(SPECIALS.chars()).collect();
    (
        prop::char::range('0', '9'),
        prop_oneof![prop::char::range('a', 'z'), prop::char::range('A', 'Z')],
        select(SPECIALS.chars().collect::<Vec<_>>()),
        vec(select(allowed), 5..30),
    )
        .prop_map(|(digit, letter, special, mut rest)| {
            rest.extend([digit, letter, special]);
            rest
        })
        .prop_shuffle()
        .prop_map(|cs| cs.into_iter().collect::<String>())
}

/// A random-case copy of `s`.
fn recased(s: &str, upper: &[bool]) -> String {
    s.chars()
        .zip(upper.iter().cycle())
        .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect()
}

/// The shipped list of common passwords, read as the domain reads it.
fn common_passwords() -> Vec<&'static str> {
    include_str!("../src/shared/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

proptest! {
    #[test]
    fn no_password_check_panics_on_any_input(
        password in any_text(),
        number in prop::option::of(any_text()),
        confirmation in any_text(),
    ) {
        if let Err(err) = check_policy(&password, number.as_deref()) {
            prop_assert_eq!(err.code(), "weak_password");
            let _ = err.reason();
        }
        let _ = confirm(&password, &confirmation);
        let _ = is_common(&password);
    }

    #[test]
    fn the_reason_given_is_the_first_rule_broken(
        (password, number) in prop_oneof![
            (policy_text(), prop::option::of(prop_oneof![
                Just(String::new()),
                "[A-Za-z0-9]{1,4}",
                (white(), hk_macau_permit(), white()).prop_map(|(l, n, t)| format!("{l}{n}{t}")),
            ])),
            // The number inside a password that may or may not pass the other rules.
            (strong_password(), hk_macau_permit(), any::<Index>(), white()).prop_map(|(p, n, at, w)| {
                let i = at.index(p.len() + 1);
                (format!("{}{}{}", &p[..i], n.to_lowercase(), &p[i..]), Some(format!("{w}{n}")))
            }),
        ],
    ) {
        prop_assert_eq!(check_policy(&password, number.as_deref()), expected_policy(&password, number.as_deref()));
    }

    #[test]
    fn a_strong_password_is_accepted_unless_it_is_common(password in strong_password()) {
        prop_assume!(!is_common(&password));
        prop_assert_eq!(check_policy(&password, None), Ok(()));
        prop_assert_eq!(confirm(&password, &password), Ok(()));
    }

    #[test]
    fn a_password_containing_the_document_number_in_any_case_is_refused(
        (today, (doc_type, number)) in dated_valid_number(),
        upper in vec(any::<bool>(), 1..8),
        letter in prop::char::range('a', 'z'),
        special in select(SPECIALS.chars().collect::<Vec<_>>()),
        digit in prop::char::range('0', '9'),
        typing in typing(),
    ) {
        prop_assume!(number.len() <= 28);
        let stored = DocumentNumber::parse(doc_type, &typing.apply(&number), today).unwrap();
        let password = format!("{letter}{special}{}{digit}{letter}", recased(stored.as_str(), &upper));
        let err = check_policy(&password, Some(stored.as_str())).unwrap_err();
        prop_assert_eq!(err, PasswordError::ContainsDocumentNumber);
        prop_assert_eq!(err.reason(), "contains_document_number");
        let padded = format!(" {} ", stored.as_str());
        prop_assert_eq!(check_policy(&password, Some(&padded)), Err(PasswordError::ContainsDocumentNumber));
    }

    #[test]
    fn no_common_password_is_accepted_in_any_case(
        common in select(common_passwords()),
        upper in vec(any::<bool>(), 1..8),
    ) {
        let password = recased(common, &upper);
        prop_assert!(is_common(&password));
        prop_assert!(check_policy(&password, None).is_err(), "{password:?} accepted");
    }

    #[test]
    fn a_confirmation_is_accepted_exactly_when_it_repeats_the_password(
        password in strong_password(),
        confirmation in prop_oneof![strong_password(), any_text()],
        upper in vec(any::<bool>(), 1..8),
    ) {
        prop_assert_eq!(confirm(&password, &password), Ok(()));
        let expected = if confirmation == password { Ok(()) } else { Err(PasswordError::Mismatch) };
        prop_assert_eq!(confirm(&password, &confirmation), expected);
        let other_case = recased(&password, &upper);
        if other_case != password {
            prop_assert_eq!(confirm(&password, &other_case), Err(PasswordError::Mismatch));
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Ethnicity and gender.

proptest! {
    #[test]
    fn the_ethnicity_codes_are_01_to_56_97_and_98(n in 0u32..100, lead in white(), trail in white()) {
        let code = format!("{n:02}");
        let result = Ethnicity::parse(&format!("{lead}{code}{trail}"));
        prop_assert_eq!(result.is_ok(), (1..=56).contains(&n) || n == 97 || n == 98);
        let Ok(ethnicity) = result else { return Ok(()) };
        prop_assert_eq!(ethnicity.code(), code.as_str());
        let name = ETHNICITIES.iter().find(|(c, _)| *c == code).map(|(_, name)| *name);
        prop_assert_eq!(Some(ethnicity.name_zh()), name);
        let json = serde_json::to_string(&ethnicity).unwrap();
        prop_assert_eq!(serde_json::from_str::<Ethnicity>(&json).unwrap(), ethnicity);
    }

    #[test]
    fn nothing_but_a_code_is_an_ethnicity(raw in any_text()) {
        let is_code = ETHNICITIES.iter().any(|(code, _)| *code == raw.trim());
        prop_assert_eq!(Ethnicity::parse(&raw).is_ok(), is_code);
    }

    #[test]
    fn only_male_and_female_are_genders(
        raw in prop_oneof![
            any_text(),
            (white(), select(vec!["male", "female", "Male", "FEMALE", "other", ""]), white())
                .prop_map(|(lead, g, trail)| format!("{lead}{g}{trail}")),
        ],
    ) {
        match Gender::parse(&raw) {
            Ok(gender) => prop_assert_eq!(gender.as_str(), raw.trim()),
            Err(err) => {
                prop_assert!(!["male", "female"].contains(&raw.trim()));
                prop_assert_eq!(err.code(), "invalid_gender");
            }
        }
    }
}
