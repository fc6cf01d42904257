//! Thin gRPC handlers: validate the request (every field violation at once), call one
//! [`Books`] method, convert the result. Handlers never parse tokens: the interceptor put the
//! verified claims in the request extensions.

use bookstore_contract::{
    error::Violations,
    proto::book::{
        book_service_server::BookService, Book, CreateBookRequest, CreateBookResponse,
        DeleteBookRequest, DeleteBookResponse, GetBookRequest, GetBookResponse, ListBooksRequest,
        ListBooksResponse, UpdateBookRequest, UpdateBookResponse,
    },
    scope,
};
use bookstore_kit::{auth::claims, clock::timestamp_from_micros};
use tonic::{Request, Response, Status};

use crate::{
    books::{etag, Books},
    db::{BookRow, Filter},
    error::DOMAIN,
    validate::{self, fold, BookFields, Field},
};

/// Most paths an `update_mask` may name (there are only five fields, and `*`).
pub const MAX_MASK_PATHS: usize = 16;

/// Implements BookService over [`Books`].
#[derive(Debug, Clone)]
pub struct Handlers {
    /// The work.
    pub books: Books,
}

fn book(row: BookRow) -> Book {
    let etag = etag(&row);
    Book {
        id: row.id,
        title: row.title,
        author: row.author,
        publisher: row.publisher,
        price_cents: row.price_cents,
        isbn: row.isbn.unwrap_or_default(),
        owner_id: row.owner_id,
        create_time: Some(timestamp_from_micros(row.create_time)),
        update_time: Some(timestamp_from_micros(row.update_time)),
        etag,
    }
}

/// `None` for an empty string.
fn optional(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

#[tonic::async_trait]
impl BookService for Handlers {
    async fn create_book(
        &self,
        request: Request<CreateBookRequest>,
    ) -> Result<Response<CreateBookResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::BOOKS_WRITE)?;
        let CreateBookRequest {
            book: input,
            request_id,
        } = request.into_inner();
        let mut v = Violations::default();
        let fields = match &input {
            Some(b) => BookFields::from_proto(b, "book", &mut v),
            None => {
                v.add("book", "is required");
                BookFields::default()
            }
        };
        if !request_id.is_empty() {
            validate::uuid(&request_id, "request_id", &mut v);
        }
        v.check(DOMAIN)?;
        let row = self
            .books
            .create(&caller.sub, fields, optional(request_id))
            .await?;
        Ok(Response::new(CreateBookResponse {
            book: Some(book(row)),
        }))
    }

    async fn get_book(
        &self,
        request: Request<GetBookRequest>,
    ) -> Result<Response<GetBookResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::BOOKS_READ)?;
        let id = request.into_inner().id;
        let mut v = Violations::default();
        validate::book_id(&id, "id", &mut v);
        v.check(DOMAIN)?;
        let row = self.books.get(&caller.sub, &id).await?;
        Ok(Response::new(GetBookResponse {
            book: Some(book(row)),
        }))
    }

    async fn list_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::BOOKS_READ)?;
        let ListBooksRequest {
            page_size,
            page_token,
            author,
            title_query,
            owner_id,
        } = request.into_inner();
        if !owner_id.is_empty() && owner_id != caller.sub {
            scope::require(&caller, DOMAIN, scope::BOOKS_ADMIN)?;
        }
        let mut v = Violations::default();
        if !owner_id.is_empty() {
            validate::uuid(&owner_id, "owner_id", &mut v);
        }
        validate::filter_text(&author, "author", &mut v);
        validate::filter_text(&title_query, "title_query", &mut v);
        let filter = Filter {
            owner_id: optional(owner_id).unwrap_or(caller.sub),
            author: optional(fold(&author)),
            title_query: optional(fold(&title_query)),
        };
        let request =
            self.books
                .page_tokens
                .request(page_size, &page_token, filter.fingerprint(), &mut v);
        v.check(DOMAIN)?;
        let page = self.books.list(&filter, &request).await?;
        Ok(Response::new(ListBooksResponse {
            books: page.books.into_iter().map(book).collect(),
            next_page_token: page.next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        }))
    }

    async fn update_book(
        &self,
        request: Request<UpdateBookRequest>,
    ) -> Result<Response<UpdateBookResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::BOOKS_WRITE)?;
        let UpdateBookRequest {
            book: input,
            update_mask,
        } = request.into_inner();
        let mut v = Violations::default();
        let input = input.unwrap_or_else(|| {
            v.add("book", "is required");
            Book::default()
        });
        validate::book_id(&input.id, "book.id", &mut v);
        let mut fields: Vec<Field> = Vec::new();
        let mut mask = update_mask.map(|m| m.paths).unwrap_or_default();
        if mask.len() > MAX_MASK_PATHS {
            v.add(
                "update_mask",
                format!(
                    "has {} paths; at most {MAX_MASK_PATHS} (use \"*\" for every field)",
                    mask.len()
                ),
            );
            mask.clear();
        } else if mask.is_empty() {
            v.add(
                "update_mask",
                format!(
                    "is required: name the fields to change ({})",
                    Field::paths()
                ),
            );
        }
        for path in &mask {
            if path == "*" {
                fields.extend(Field::all());
            } else if let Some(known) = Field::from_path(path) {
                fields.push(known);
            } else {
                v.add(
                    "update_mask",
                    format!("{path:?} cannot be updated; updatable: {}", Field::paths()),
                );
            }
        }
        let mut patch = BookFields::default();
        for field in &fields {
            patch.set(*field, &input, "book", &mut v);
        }
        v.check(DOMAIN)?;
        let row = self
            .books
            .update(
                &caller.sub,
                &input.id,
                optional(input.etag.clone()),
                patch,
                fields,
            )
            .await?;
        Ok(Response::new(UpdateBookResponse {
            book: Some(book(row)),
        }))
    }

    async fn delete_book(
        &self,
        request: Request<DeleteBookRequest>,
    ) -> Result<Response<DeleteBookResponse>, Status> {
        let caller = claims(&request, DOMAIN)?;
        scope::require(&caller, DOMAIN, scope::BOOKS_WRITE)?;
        let DeleteBookRequest { id, etag } = request.into_inner();
        let mut v = Violations::default();
        validate::book_id(&id, "id", &mut v);
        v.check(DOMAIN)?;
        self.books.delete(&caller.sub, &id, optional(etag)).await?;
        Ok(Response::new(DeleteBookResponse {}))
    }
}
