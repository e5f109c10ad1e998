//! Made-up but valid identities for the accounts the load generator registers: mainland
//! mobile numbers and resident identity card numbers with a correct GB 11643 check character.

use chrono::NaiveDate;
use rand::Rng;
use shenfen_domain::shared::document::check_char;

/// A fresh mainland mobile number: `1`, a digit 3–9, then 9 digits.
pub fn mobile(rng: &mut impl Rng) -> String {
    format!("1{}{:09}", rng.gen_range(3..=9), rng.gen_range(0..1_000_000_000u32))
}

/// Beijing's sixteen districts (GB/T 2260): the areas of the numbers drawn here. The seeded
/// accounts use Shenzhen's 440305, so the two never meet.
const AREAS: [u32; 16] = [
    110101, 110102, 110105, 110106, 110107, 110108, 110109, 110111, 110112, 110113, 110114, 110115, 110116, 110117,
    110118, 110119,
];

/// A resident identity card number: a Beijing district, a birth date in 1970–1999, three
/// sequence digits and the check character — 161 million numbers, so that runs on a reused
/// database rarely draw one registered before.
pub fn resident_id(rng: &mut impl Rng) -> String {
    let birth = NaiveDate::from_ymd_opt(rng.gen_range(1970..=1999), rng.gen_range(1..=12), rng.gen_range(1..=28))
        .unwrap_or_default();
    let area = AREAS[rng.gen_range(0..AREAS.len())];
    let first17 = format!("{area}{}{:03}", birth.format("%Y%m%d"), rng.gen_range(0..1000));
    let check = check_char(&first17);
    format!("{first17}{check}")
}

/// A fresh e-mail address of the form `NNN@example.com`.
pub fn email(rng: &mut impl Rng) -> String {
    format!("{}@example.com", rng.gen_range(100_000_000..1_000_000_000u32))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_check_character_follows_gb_11643() {
        assert_eq!(check_char("11010519491231002"), 'X');
        assert_eq!(check_char("44052418800101001"), '4');
        assert_eq!(check_char("11010120000101001"), '0');
    }

    #[test]
    fn generated_numbers_have_the_right_shape() {
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let id = resident_id(&mut rng);
            assert_eq!(id.len(), 18);
            assert!(AREAS.iter().any(|a| id.starts_with(&a.to_string())));
            assert_eq!(id.chars().last().unwrap(), check_char(&id[..17]));
            let year: i32 = id[6..10].parse().unwrap();
            assert!((1970..=1999).contains(&year));
            let m = mobile(&mut rng);
            assert_eq!(m.len(), 11);
            assert!(m.starts_with('1') && (b'3'..=b'9').contains(&m.as_bytes()[1]));
        }
    }
}
