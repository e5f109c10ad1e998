#![allow(clippy::unwrap_used)]
use super::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
}

/// A full 18-character number with the right check character.
fn with_check(first17: &str) -> String {
    format!("{first17}{}", check_char(first17))
}

fn parse(doc_type: DocumentType, raw: &str) -> Result<DocumentNumber, DocumentError> {
    DocumentNumber::parse(doc_type, raw, today())
}

#[test]
fn other_cannot_hold_a_number_valid_for_another_type() {
    for (number, actual) in [
        ("11010519491231002X", DocumentType::ResidentIdCard),
        ("H12345678", DocumentType::HkMacauPermit),
        ("12345678", DocumentType::TaiwanPermit),
    ] {
        assert_eq!(parse(DocumentType::Other, number), Err(DocumentError::WrongDocumentType { actual }), "{number}");
        assert_eq!(DocumentError::WrongDocumentType { actual }.code(), "wrong_document_type");
    }
    // A number of no other type is fine, and one of another type's shape but invalid too.
    assert!(parse(DocumentType::Other, "AB1234567").is_ok());
    assert!(parse(DocumentType::Other, "110105194912310021").is_ok(), "a wrong check character");
}

#[test]
fn the_check_character_follows_gb_11643() {
    assert_eq!(check_char("11010519491231002"), 'X');
    assert_eq!(check_char("44052418800101001"), '4');
    assert_eq!(check_char("11010120000101001"), '0');
}

#[test]
fn a_resident_id_card_with_check_character_x_is_accepted() {
    let n = parse(DocumentType::ResidentIdCard, "11010519491231002X").unwrap();
    assert_eq!(n.as_str(), "11010519491231002X");
    assert_eq!(n.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31));
}

#[test]
fn a_lower_case_x_is_normalised_to_upper_case() {
    let n = parse(DocumentType::ResidentIdCard, "  11010519491231002x ").unwrap();
    assert_eq!(n.as_str(), "11010519491231002X");
}

#[test]
fn full_width_digits_are_normalised_to_ascii() {
    let n = parse(DocumentType::ResidentIdCard, "１１０１０５１９４９１２３１００２ｘ").unwrap();
    assert_eq!(n.as_str(), "11010519491231002X");
}

#[test]
fn a_wrong_check_digit_is_refused() {
    assert_eq!(parse(DocumentType::ResidentIdCard, "110105194912310021"), Err(DocumentError::ChecksumMismatch));
    let ok = with_check("44052418800101001");
    assert!(parse(DocumentType::ResidentIdCard, &ok).is_ok());
}

#[test]
fn a_birth_date_in_the_future_is_refused() {
    let n = with_check("11010120260502001");
    assert_eq!(parse(DocumentType::ResidentIdCard, &n), Err(DocumentError::BirthDateInFuture));
    let born_today = with_check("11010120260501001");
    assert!(parse(DocumentType::ResidentIdCard, &born_today).is_ok());
}

#[test]
fn the_thirtieth_of_february_is_not_a_birth_date() {
    let n = with_check("11010120000230001");
    assert_eq!(parse(DocumentType::ResidentIdCard, &n), Err(DocumentError::InvalidBirthDate));
    let leap = with_check("11010120000229001");
    assert!(parse(DocumentType::ResidentIdCard, &leap).is_ok());
    let not_leap = with_check("11010119000229001");
    assert_eq!(parse(DocumentType::ResidentIdCard, &not_leap), Err(DocumentError::InvalidBirthDate));
}

#[test]
fn an_unknown_province_code_is_refused() {
    let n = with_check("99010119900101001");
    assert_eq!(parse(DocumentType::ResidentIdCard, &n), Err(DocumentError::UnknownProvince { code: "99".into() }));
    let n = with_check("10010119900101001");
    assert!(matches!(parse(DocumentType::ResidentIdCard, &n), Err(DocumentError::UnknownProvince { .. })));
}

#[test]
fn resident_id_cards_of_the_wrong_shape_are_refused() {
    for raw in ["", "   ", "1101051949123100", "11010519491231002XX", "1101051949123100AX", "11010519491231002Y"] {
        let err = parse(DocumentType::ResidentIdCard, raw).unwrap_err();
        assert_eq!(err.code(), "invalid_document_number");
        assert_eq!(err.hint(), None);
    }
}

#[test]
fn a_hong_kong_macau_permit_is_h_or_m_and_eight_digits() {
    assert_eq!(parse(DocumentType::HkMacauPermit, "H12345678").unwrap().as_str(), "H12345678");
    assert_eq!(parse(DocumentType::HkMacauPermit, "m87654321").unwrap().as_str(), "M87654321");
    for raw in ["X12345678", "H1234567", "H123456789", "12345678", "H1234567A"] {
        assert!(matches!(parse(DocumentType::HkMacauPermit, raw), Err(DocumentError::BadFormat { .. })));
    }
}

#[test]
fn a_hong_kong_macau_permit_with_renewal_digits_gets_a_hint() {
    let err = parse(DocumentType::HkMacauPermit, "H1234567801").unwrap_err();
    assert_eq!(err, DocumentError::PermitRenewalDigits { doc_type: DocumentType::HkMacauPermit, expected: 9 });
    assert_eq!(err.code(), "invalid_document_number");
    assert_eq!(err.hint(), Some("permit_renewal_digits_not_entered"));
}

#[test]
fn a_taiwan_permit_is_eight_digits() {
    assert_eq!(parse(DocumentType::TaiwanPermit, " 12345678 ").unwrap().as_str(), "12345678");
    for raw in ["1234567", "123456789", "T1234567"] {
        assert!(matches!(parse(DocumentType::TaiwanPermit, raw), Err(DocumentError::BadFormat { .. })));
    }
}

#[test]
fn a_taiwan_permit_with_renewal_digits_gets_a_hint() {
    let err = parse(DocumentType::TaiwanPermit, "1234567801").unwrap_err();
    assert_eq!(err.hint(), Some("permit_renewal_digits_not_entered"));
    assert_eq!(err.code(), "invalid_document_number");
}

#[test]
fn residence_permits_of_hong_kong_macau_and_taiwan_are_accepted() {
    for prefix in ["810000", "820000", "830000"] {
        let n = with_check(&format!("{prefix}19900101001"));
        let parsed = parse(DocumentType::HmtResidencePermit, &n).unwrap();
        assert_eq!(parsed.birth_date(), NaiveDate::from_ymd_opt(1990, 1, 1));
    }
}

#[test]
fn a_residence_permit_with_another_prefix_is_refused() {
    for first17 in ["81010119900101001", "11010119900101001", "84000019900101001"] {
        let n = with_check(first17);
        assert_eq!(parse(DocumentType::HmtResidencePermit, &n), Err(DocumentError::ResidencePermitPrefix));
    }
}

#[test]
fn a_residence_permit_checks_its_checksum_and_birth_date() {
    let good = with_check("81000019900101001");
    let wrong = if good.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{wrong}", &good[..17]);
    assert_eq!(parse(DocumentType::HmtResidencePermit, &bad), Err(DocumentError::ChecksumMismatch));
    let future = with_check("81000020990101001");
    assert_eq!(parse(DocumentType::HmtResidencePermit, &future), Err(DocumentError::BirthDateInFuture));
}

#[test]
fn a_residence_permit_number_entered_as_an_id_card_points_to_the_right_type() {
    let n = with_check("81000019900101001");
    let err = parse(DocumentType::ResidentIdCard, &n).unwrap_err();
    assert_eq!(err, DocumentError::ResidencePermitNumberAsIdCard);
    assert_eq!(err.hint(), Some("use_hmt_residence_permit"));
}

#[test]
fn other_documents_are_four_to_thirty_two_letters_or_digits() {
    assert_eq!(parse(DocumentType::Other, "e1234567").unwrap().as_str(), "E1234567");
    assert!(parse(DocumentType::Other, "AB12").is_ok());
    assert!(parse(DocumentType::Other, &"A".repeat(32)).is_ok());
    for raw in ["AB1", &"A".repeat(33), "AB-1234", "护照12345", "AB 1234"] {
        assert!(matches!(parse(DocumentType::Other, raw), Err(DocumentError::BadFormat { .. })));
    }
}

#[test]
fn types_are_inferred_from_the_format() {
    use DocumentType::*;
    assert_eq!(infer_types("11010519491231002x"), vec![ResidentIdCard, Other]);
    assert_eq!(infer_types(&with_check("82000019900101001")), vec![HmtResidencePermit, Other]);
    assert_eq!(infer_types("h12345678"), vec![HkMacauPermit, Other]);
    assert_eq!(infer_types("12345678"), vec![TaiwanPermit, Other]);
    assert_eq!(infer_types("E1234567"), vec![Other]);
    assert_eq!(infer_types("ab"), Vec::<DocumentType>::new());
    assert_eq!(DocumentNumber::infer_types("12345678"), vec![TaiwanPermit, Other]);
}

#[test]
fn document_types_have_snake_case_wire_names() {
    for t in DocumentType::ALL {
        assert_eq!(DocumentType::parse(t.as_str()), Some(t));
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.as_str()));
    }
    assert_eq!(DocumentType::parse("passport"), None);
    assert!(DocumentType::ResidentIdCard.auto_verifiable());
    assert!(DocumentType::HmtResidencePermit.auto_verifiable());
    assert!(DocumentType::HkMacauPermit.auto_verifiable());
    assert!(DocumentType::TaiwanPermit.auto_verifiable());
    assert!(!DocumentType::Other.auto_verifiable());
}

#[test]
fn a_document_number_serialises_as_a_plain_string_and_debugs_masked() {
    let n = parse(DocumentType::ResidentIdCard, "11010519491231002X").unwrap();
    let json = serde_json::to_string(&n).unwrap();
    assert_eq!(json, "\"11010519491231002X\"");
    assert_eq!(serde_json::from_str::<DocumentNumber>(&json).unwrap(), n);
    assert!(serde_json::from_str::<DocumentNumber>("\"ab\"").is_err());
    assert_eq!(format!("{n:?}"), "DocumentNumber(11**************2X)");
}

#[test]
fn the_gender_and_birth_date_come_from_the_number() {
    let female = parse(DocumentType::ResidentIdCard, "11010519491231002X").unwrap();
    assert_eq!(female.gender(), Some(Gender::Female));
    let n = parse(DocumentType::ResidentIdCard, &with_check("11010119900101001")).unwrap();
    assert_eq!(n.gender(), Some(Gender::Male));
    let permit = parse(DocumentType::TaiwanPermit, "12345678").unwrap();
    assert_eq!(permit.birth_date(), None);
    assert_eq!(permit.gender(), None);
    assert_eq!(n.birth_date_for(DocumentType::Other), None);
}
