//! Property tests of book-service's decoders of untrusted input: book fields, update masks,
//! ISBNs and ids. Any input is answered without a panic, and what passes validation keeps
//! every rule a stored book relies on. `PROPTEST_CASES` sets the number of cases (256 by
//! default, as CI runs them).

use book_service::{
    isbn,
    validate::{self, BookFields, Field, MAX_TEXT_CHARS},
};
use bookstore_contract::{error::Violations, proto::book::Book};
use proptest::prelude::*;

proptest! {
    #[test]
    fn valid_fields_keep_every_rule_a_stored_book_relies_on(
        title in ".{0,210}", author in ".{0,210}", publisher in ".{0,210}",
        price_cents in any::<i64>(), isbn in ".{0,20}|[0-9]{13}|[0-9-]{10,17}",
    ) {
        let book = Book { title, author, publisher, price_cents, isbn, ..Book::default() };
        let mut v = Violations::default();
        let fields = BookFields::from_proto(&book, "book", &mut v);
        if v.is_empty() {
            for text in [&fields.title, &fields.author] {
                prop_assert!(!text.is_empty() && text.chars().count() <= MAX_TEXT_CHARS);
                prop_assert_eq!(text.trim(), text.as_str());
            }
            prop_assert!(fields.publisher.chars().count() <= MAX_TEXT_CHARS);
            for text in [&fields.title, &fields.author, &fields.publisher] {
                prop_assert!(!text.contains('\0'), "PostgreSQL cannot store NUL");
            }
            prop_assert!(fields.price_cents >= 0);
            if let Some(isbn) = &fields.isbn {
                prop_assert!(isbn.len() == 13 && isbn.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    #[test]
    fn only_the_settable_fields_are_mask_paths(path in ".{0,20}|title|author|publisher|price_cents|isbn") {
        match Field::from_path(&path) {
            Some(field) => prop_assert_eq!(field.path(), path.as_str()),
            None => prop_assert!(Field::all().all(|field| field.path() != path)),
        }
    }

    #[test]
    fn an_isbn_normalizes_to_thirteen_digits_or_is_refused(text in ".{0,20}|[0-9Xx -]{10,17}") {
        if let Ok(normalized) = isbn::normalize(&text) {
            prop_assert!(normalized.len() == 13 && normalized.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(isbn::normalize(&normalized), Ok(normalized.clone()), "idempotent");
        }
    }

    #[test]
    fn any_id_or_filter_is_answered_without_a_panic(text in ".{0,300}") {
        let mut v = Violations::default();
        let parsed = validate::uuid(&text, "request_id", &mut v);
        prop_assert_eq!(parsed.is_some(), v.is_empty());
        validate::book_id(&text, "id", &mut Violations::default());
        let mut v = Violations::default();
        validate::filter_text(&text, "author", &mut v);
        if text.trim().chars().count() > MAX_TEXT_CHARS || text.contains('\0') {
            prop_assert!(!v.is_empty());
        }
    }
}
