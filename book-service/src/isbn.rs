//! ISBN-10 and ISBN-13: check digits, and conversion to the ISBN-13 form we store.

/// The ISBN-13 digits of `input` (ISBN-10 or ISBN-13, hyphens and spaces allowed), or why it is
/// not a valid ISBN.
pub fn normalize(input: &str) -> Result<String, &'static str> {
    let chars: Vec<char> = input.chars().filter(|c| *c != '-' && *c != ' ').collect();
    match chars.len() {
        10 => {
            let mut sum = 0;
            for (i, c) in chars.iter().enumerate() {
                let value = match (i, c) {
                    (9, 'X' | 'x') => 10,
                    (_, c) => c
                        .to_digit(10)
                        .ok_or("must contain only digits (and a final X for ISBN-10)")?,
                };
                sum += value * (10 - i as u32);
            }
            if sum % 11 != 0 {
                return Err("has a wrong check digit");
            }
            let body: String = std::iter::once("978")
                .chain(std::iter::once(&*chars[..9].iter().collect::<String>()))
                .collect();
            Ok(format!("{body}{}", isbn13_check(&body)))
        }
        13 => {
            let digits: String = chars.iter().collect();
            if !digits.chars().all(|c| c.is_ascii_digit()) {
                return Err("must contain only digits");
            }
            if !(digits.starts_with("978") || digits.starts_with("979")) {
                return Err("ISBN-13 must start with 978 or 979");
            }
            if isbn13_check(&digits[..12]) != digits[12..].chars().next().unwrap_or(' ') {
                return Err("has a wrong check digit");
            }
            Ok(digits)
        }
        _ => Err("must be an ISBN-10 or ISBN-13 (10 or 13 digits)"),
    }
}

/// Check digit of the first 12 digits of an ISBN-13.
fn isbn13_check(first12: &str) -> char {
    let sum: u32 = first12
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { d } else { d * 3 })
        .sum();
    char::from_digit((10 - sum % 10) % 10, 10).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn isbn_10_becomes_isbn_13() {
        assert_eq!(normalize("0-306-40615-2").as_deref(), Ok("9780306406157"));
        assert_eq!(normalize("080442957X").as_deref(), Ok("9780804429573"));
    }

    #[test]
    fn isbn_13_is_kept_and_checked() {
        assert_eq!(
            normalize("978-0-306-40615-7").as_deref(),
            Ok("9780306406157")
        );
        assert!(normalize("978-0-306-40615-8").is_err());
        assert!(normalize("0-306-40615-3").is_err());
        assert!(normalize("123").is_err());
        assert!(normalize("97803064061X7").is_err());
        assert!(normalize("1234567890128").is_err(), "not a 978/979 prefix");
    }
}
