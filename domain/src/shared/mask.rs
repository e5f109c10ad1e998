//! Masks for personal data shown to anyone but its holder (PIPL): document numbers keep their
//! first two and last two characters, mobiles their first three and last four digits, e-mail
//! addresses the first character of the local part and the domain.
//!
//! Masks work on characters, not bytes, so they never split a character. Values too short to
//! keep anything hidden are masked entirely.

/// `22**************47`: the first two and last two characters, the rest `*`. A value of four
/// characters or fewer is masked entirely.
pub fn mask_document(number: &str) -> String {
    if number == super::ERASED {
        return number.to_string();
    }
    keep_ends(number, 2, 2)
}

/// `138****0000`: the first three and last four digits, the rest `*`. A value of seven
/// characters or fewer is masked entirely.
pub fn mask_mobile(mobile: &str) -> String {
    if mobile == super::ERASED {
        return mobile.to_string();
    }
    keep_ends(mobile, 3, 4)
}

/// `a***@qq.com`: the first character of the local part, `***`, and the domain. Without an `@`
/// the whole value becomes `***`.
pub fn mask_email(email: &str) -> String {
    if email == super::ERASED {
        return email.to_string();
    }
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// Keeps `head` leading and `tail` trailing characters and stars the rest; stars everything
/// when nothing would be hidden.
fn keep_ends(s: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    if n <= head + tail {
        return "*".repeat(n);
    }
    let mut out = String::with_capacity(s.len());
    out.extend(&chars[..head]);
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_number_keeps_its_first_two_and_last_two_characters() {
        assert_eq!(mask_document("220102199003070047"), "22**************47");
        assert_eq!(mask_document("H12345678"), "H1*****78");
        assert_eq!(mask_document("AB12"), "****");
        assert_eq!(mask_document(""), "");
    }

    #[test]
    fn a_mobile_keeps_its_first_three_and_last_four_digits() {
        assert_eq!(mask_mobile("13800000000"), "138****0000");
        assert_eq!(mask_mobile("1380000"), "*******");
    }

    #[test]
    fn an_email_keeps_the_first_character_and_the_domain() {
        assert_eq!(mask_email("alice@qq.com"), "a***@qq.com");
        assert_eq!(mask_email("123456@qq.com"), "1***@qq.com");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("nobody"), "***");
    }
}
