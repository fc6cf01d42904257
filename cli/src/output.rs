//! What the commands print: aligned tables, proto3 JSON, prices, and one-line errors.

use std::sync::OnceLock;

use bookstore_contract::proto::book::Book;
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic_types::StatusExt;

/// Parses a price such as `12.50`, `12.5` or `12` into cents, exactly (no floating point).
pub fn parse_price(text: &str) -> Result<i64, String> {
    let bad = || format!("invalid price {text:?}: use a number like 12.50");
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .ok_or_else(bad)
}

/// `1250` → `12.50`.
pub fn format_price(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A table with a header row, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// Books as a table.
pub fn books_table(books: &[Book]) -> String {
    let rows: Vec<Vec<String>> = books
        .iter()
        .map(|b| {
            vec![
                b.id.clone(),
                b.title.clone(),
                b.author.clone(),
                format_price(b.price_cents),
                b.isbn.clone(),
            ]
        })
        .collect();
    table(&["ID", "TITLE", "AUTHOR", "PRICE", "ISBN"], &rows)
}

/// One book, field per line.
pub fn book_details(book: &Book) -> String {
    let time =
        |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| t.to_string()).unwrap_or_default();
    table(
        &["FIELD", "VALUE"],
        &[
            vec!["id".into(), book.id.clone()],
            vec!["title".into(), book.title.clone()],
            vec!["author".into(), book.author.clone()],
            vec!["publisher".into(), book.publisher.clone()],
            vec!["price".into(), format_price(book.price_cents)],
            vec!["isbn".into(), book.isbn.clone()],
            vec!["created".into(), time(&book.create_time)],
            vec!["updated".into(), time(&book.update_time)],
            vec!["etag".into(), book.etag.clone()],
        ],
    )
}

/// `message` (of proto type `full_name`) in the proto3 JSON mapping, as grpcurl prints it.
pub fn json<M: prost::Message>(message: &M, full_name: &str) -> anyhow::Result<String> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            DescriptorPool::decode(bookstore_contract::FILE_DESCRIPTOR_SET)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("embedded descriptors: {e}"))?;
    let descriptor = pool
        .get_message_by_name(full_name)
        .ok_or_else(|| anyhow::anyhow!("unknown message {full_name}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())?;
    Ok(serde_json::to_string_pretty(&dynamic)?)
}

/// One line for an error: the status message (which lists field violations), or the chain of
/// causes for anything else.
pub fn error_line(error: &anyhow::Error) -> String {
    if let Some(status) = error.downcast_ref::<tonic::Status>() {
        let mut line = format!("{:?}: {}", status.code(), status.message());
        if let Some(bad) = status.get_details_bad_request() {
            let listed: Vec<String> = bad
                .field_violations
                .iter()
                .filter(|v| !status.message().contains(&v.description))
                .map(|v| format!("{}: {}", v.field, v.description))
                .collect();
            if !listed.is_empty() {
                line.push_str(&format!(" ({})", listed.join("; ")));
            }
        }
        if status.code() == tonic::Code::Unauthenticated && !status.message().contains("password") {
            line.push_str(" — run `bookstore login NAME`");
        }
        return line;
    }
    format!("{error:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_and_format_back() {
        assert_eq!(parse_price("12.50"), Ok(1250));
        assert_eq!(parse_price("12.5"), Ok(1250));
        assert_eq!(parse_price("12"), Ok(1200));
        assert_eq!(parse_price("0.07"), Ok(7));
        for bad in [
            "",
            "-1",
            "1.234",
            "abc",
            "1,50",
            ".5",
            "99999999999999999999",
        ] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
        assert_eq!(format_price(1250), "12.50");
        assert_eq!(format_price(7), "0.07");
    }

    #[test]
    fn tables_align_columns_by_characters() {
        let t = table(
            &["A", "B"],
            &[
                vec!["é".into(), "x".into()],
                vec!["long".into(), "y".into()],
            ],
        );
        assert_eq!(t, "A     B\né     x\nlong  y");
    }
}
