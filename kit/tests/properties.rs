//! Property tests of the page-token decoder: any string is refused (as a field violation)
//! without a panic, a token decodes to the cursor it was made for only with the filters it was
//! made for, and any page size is answered. `PROPTEST_CASES` sets the number of cases (256 by
//! default, as CI runs them).

use bookstore_contract::error::Violations;
use bookstore_kit::paging::{Cursor, PageTokens};
use proptest::prelude::*;

fn tokens() -> PageTokens {
    PageTokens::new([9; 32])
}

proptest! {
    #[test]
    fn any_page_token_is_refused_without_a_panic(token in ".{1,300}", filters in ".{0,40}") {
        prop_assert!(tokens().decode(&token, &filters).is_none());
        let mut v = Violations::default();
        tokens().request(20, &token, filters, &mut v);
        prop_assert!(!v.is_empty(), "a forged token is a field violation");
    }

    #[test]
    fn a_token_decodes_to_its_cursor_with_its_filters_only(
        create_time in any::<i64>(), id in ".{0,60}", filters in ".{0,60}", other in ".{0,60}",
    ) {
        let cursor = Cursor { create_time, id };
        let token = tokens().encode(&cursor, &filters);
        prop_assert_eq!(tokens().decode(&token, &filters), Some(cursor));
        if other != filters {
            prop_assert!(tokens().decode(&token, &other).is_none());
        }
        prop_assert!(PageTokens::new([8; 32]).decode(&token, &filters).is_none(), "another secret");
    }

    #[test]
    fn any_page_size_is_answered(size in any::<i32>()) {
        let mut v = Violations::default();
        tokens().request(size, "", String::new(), &mut v);
        prop_assert_eq!(v.is_empty(), size >= 0);
    }
}
