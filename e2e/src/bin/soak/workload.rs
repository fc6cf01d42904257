//! The mixed workload: actors, each a user at a time, that register, log in, refresh, create,
//! update, read, list and delete books, log out and change passwords, on replicas picked at
//! random. Each actor keeps a model of its books: the state last acknowledged, or, after a write
//! whose answer was lost (UNAVAILABLE), the states it may have left. Every read is checked
//! against the model as it happens, every revocation is probed on every book-service a second
//! after it was answered, and at the end every book of every user is read back.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use bookstore_contract::proto::{
    auth::{
        auth_service_client::AuthServiceClient, user_service_client::UserServiceClient,
        ChangePasswordRequest, LoginRequest, LogoutRequest, RefreshTokenRequest, RegisterRequest,
    },
    book::{
        book_service_client::BookServiceClient, Book, CreateBookRequest, DeleteBookRequest,
        GetBookRequest, ListBooksRequest, UpdateBookRequest,
    },
};
use rand::{rngs::StdRng, Rng, SeedableRng};
use tonic::{transport::Channel, Code, Request, Status};

use crate::{faults::Faults, history::History};

/// A call that has not answered in this long is a violation of its own (DEADLINE_EXCEEDED): no
/// fault lasts longer than auth-service's 10 s away.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The clients, one per replica, and what every actor shares.
pub struct Context {
    pub auth: Vec<AuthServiceClient<Channel>>,
    /// The replicas' names, in the clients' order (a failure names its replica).
    pub auth_names: Vec<Arc<str>>,
    pub book_names: Vec<Arc<str>>,
    pub users: Vec<UserServiceClient<Channel>>,
    pub books: Vec<BookServiceClient<Channel>>,
    pub history: Arc<History>,
    pub faults: Arc<Faults>,
    pub until: Instant,
    /// An actor refreshes its session when it is this old: half the access tokens' lifetime.
    pub refresh_after: Duration,
}

impl Context {
    /// Lazy channels: a replica that is down fails its calls with UNAVAILABLE, and its clients
    /// reconnect once it is back. `auth` and `book` are the replicas' (name, URL).
    pub fn new(
        auth: &[(String, String)],
        book: &[(String, String)],
        history: Arc<History>,
        faults: Arc<Faults>,
        until: Instant,
        refresh_after: Duration,
    ) -> anyhow::Result<Context> {
        let channel = |url: &String| -> anyhow::Result<Channel> {
            Ok(Channel::from_shared(url.clone())?
                .connect_timeout(Duration::from_secs(2))
                .timeout(CALL_TIMEOUT)
                .connect_lazy())
        };
        let names = |replicas: &[(String, String)]| -> Vec<Arc<str>> {
            replicas
                .iter()
                .map(|(name, _)| name.as_str().into())
                .collect()
        };
        let auth_channels: Vec<Channel> = auth
            .iter()
            .map(|(_, url)| channel(url))
            .collect::<Result<_, _>>()?;
        Ok(Context {
            users: auth_channels
                .iter()
                .cloned()
                .map(UserServiceClient::new)
                .collect(),
            auth: auth_channels
                .into_iter()
                .map(AuthServiceClient::new)
                .collect(),
            auth_names: names(auth),
            books: book
                .iter()
                .map(|(_, url)| channel(url).map(BookServiceClient::new))
                .collect::<Result<_, _>>()?,
            book_names: names(book),
            history,
            faults,
            until,
            refresh_after,
        })
    }
}

/// A book's fields that the workload changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    title: String,
    price_cents: i64,
}

impl State {
    fn of(book: &Book) -> State {
        State {
            title: book.title.clone(),
            price_cents: book.price_cents,
        }
    }
}

/// What a book may be now: one state once known (`None`: deleted), several after a write whose
/// answer was lost. `etag` is known only with the state.
#[derive(Debug, Clone)]
struct Model {
    possible: Vec<Option<State>>,
    etag: Option<String>,
}

impl Model {
    fn known(state: Option<State>, etag: Option<String>) -> Model {
        Model {
            possible: vec![state],
            etag,
        }
    }

    fn current(&self) -> Option<&State> {
        match self.possible.as_slice() {
            [Some(state)] => Some(state),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
    issued: Instant,
}

/// One user and everything the actor knows of it.
#[derive(Debug)]
pub struct User {
    name: String,
    /// The password, or the candidates after a ChangePassword whose answer was lost.
    passwords: Vec<String>,
    session: Option<Session>,
    books: HashMap<String, Model>,
    /// CreateBook requests never answered OK: resent at the end, when they must be.
    pending: Vec<(String, State)>,
}

/// Runs `actors` actors until the context's deadline, then checks every book they wrote.
pub async fn run(context: Arc<Context>, actors: usize, seed: u64) {
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..actors {
        let context = context.clone();
        tasks.spawn(async move {
            let mut actor = Actor {
                id,
                current: 0,
                rng: StdRng::seed_from_u64(seed.wrapping_add(id as u64)),
                cx: context,
                users: Vec::new(),
                serial: 0,
                replica: "".into(),
            };
            actor.work().await;
            actor.verify().await;
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(panic) = done {
            context
                .history
                .violation(format!("an actor stopped: {panic}"));
        }
    }
}

struct Actor {
    id: usize,
    rng: StdRng,
    cx: Arc<Context>,
    /// Every user this actor made.
    users: Vec<User>,
    /// The one it acts as: the newest while it works, each in turn when it verifies.
    current: usize,
    serial: u64,
    /// The replica of the client handed out last: the one the next call goes to, named in
    /// its failure.
    replica: Arc<str>,
}

impl Actor {
    async fn work(&mut self) {
        while self.users.is_empty() && Instant::now() < self.cx.until {
            self.new_user().await;
        }
        while Instant::now() < self.cx.until {
            if !self.ensure_session().await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            match self.rng.gen_range(0..100) {
                0..30 => self.create().await,
                30..48 => self.update().await,
                48..56 => self.delete().await,
                56..76 => self.read().await,
                76..86 => self.list().await,
                86..93 => self.refresh().await,
                93..96 => self.logout().await,
                96..98 => self.change_password().await,
                _ => self.new_user().await,
            }
        }
    }

    fn user(&mut self) -> &mut User {
        &mut self.users[self.current]
    }

    fn next(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    fn book_client(&mut self) -> BookServiceClient<Channel> {
        let i = self.rng.gen_range(0..self.cx.books.len());
        self.replica = self.cx.book_names[i].clone();
        self.cx.books[i].clone()
    }

    fn auth_client(&mut self) -> AuthServiceClient<Channel> {
        let i = self.rng.gen_range(0..self.cx.auth.len());
        self.replica = self.cx.auth_names[i].clone();
        self.cx.auth[i].clone()
    }

    fn token(&mut self) -> String {
        self.user()
            .session
            .as_ref()
            .map(|s| s.access.clone())
            .unwrap_or_default()
    }

    /// Times `call`, records its answer, and returns it.
    async fn call<T>(
        &self,
        rpc: &'static str,
        expected: &[Code],
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        let start = Instant::now();
        let result = call
            .await
            .map(tonic::Response::into_inner)
            .map_err(connection_lost_is_unavailable);
        self.cx
            .history
            .answer(rpc, &self.replica, start, &result, expected);
        result
    }

    async fn new_user(&mut self) {
        let serial = self.next();
        let name = format!("soak-{}-{serial}", self.id);
        let password = format!("a soak passphrase {}", self.next());
        // Retried through lost answers: ALREADY_EXISTS then means an earlier try registered it.
        let mut expected: &[Code] = &[];
        loop {
            let mut auth = self.auth_client();
            let request = RegisterRequest {
                username: name.clone(),
                password: password.clone(),
            };
            match self
                .call("Register", expected, auth.register(request))
                .await
            {
                Ok(_) => break,
                Err(s) if s.code() == Code::AlreadyExists && !expected.is_empty() => break,
                Err(s) if s.code() == Code::Unavailable => {
                    expected = &[Code::AlreadyExists];
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(_) => return,
            }
        }
        self.current = self.users.len();
        self.users.push(User {
            name,
            passwords: vec![password],
            session: None,
            books: HashMap::new(),
            pending: Vec::new(),
        });
    }

    /// Logs in if there is no session, refreshes one that is getting old. False when neither
    /// worked (a fault): the caller waits and tries again.
    async fn ensure_session(&mut self) -> bool {
        if let Some(session) = &self.user().session {
            if session.issued.elapsed() < self.cx.refresh_after {
                return true;
            }
            self.refresh().await;
            return self.user().session.is_some();
        }
        self.login().await
    }

    async fn login(&mut self) -> bool {
        let candidates = self.user().passwords.clone();
        // With more than one candidate, the wrong one is expected to be refused.
        let expected: &[Code] = if candidates.len() > 1 {
            &[Code::Unauthenticated]
        } else {
            &[]
        };
        for password in candidates {
            let mut auth = self.auth_client();
            let request = LoginRequest {
                username: self.user().name.clone(),
                password: password.clone(),
                scopes: vec![],
            };
            match self.call("Login", expected, auth.login(request)).await {
                Ok(answer) => {
                    let user = self.user();
                    user.passwords = vec![password];
                    user.session = Some(Session {
                        access: answer.access_token,
                        refresh: answer.refresh_token,
                        issued: Instant::now(),
                    });
                    return true;
                }
                Err(s) if s.code() == Code::Unauthenticated => continue,
                Err(_) => return false,
            }
        }
        false
    }

    async fn create(&mut self) {
        self.serial += 1;
        let state = State {
            title: format!("Soak {} {}", self.id, self.serial),
            price_cents: self.rng.gen_range(0..100_000),
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut books = self.book_client();
        let token = self.token();
        let request = CreateBookRequest {
            book: Some(book_of(&state)),
            request_id: request_id.clone(),
        };
        match self
            .call(
                "CreateBook",
                &[],
                books.create_book(bearer(request, &token)),
            )
            .await
        {
            Ok(answer) => {
                let book = answer.book.unwrap_or_default();
                self.acknowledged_create(&book, &state);
            }
            // Resent at the end with the same request_id: it must then store it exactly once.
            Err(_) => self.user().pending.push((request_id, state)),
        }
    }

    fn acknowledged_create(&mut self, book: &Book, state: &State) {
        if State::of(book) != *state {
            let what = format!("CreateBook answered {:?} for {state:?}", State::of(book));
            self.cx.history.violation(what);
        }
        let model = Model::known(Some(state.clone()), Some(book.etag.clone()));
        if self.user().books.insert(book.id.clone(), model).is_some() {
            let what = format!("CreateBook returned the id of another book ({})", book.id);
            self.cx.history.violation(what);
        }
    }

    /// A book of the current user not known to be deleted (one whose write lost its answer is
    /// read back before it is written again).
    fn pick(&mut self) -> Option<String> {
        let ids: Vec<String> = (self.user().books.iter())
            .filter(|(_, model)| model.possible != [None])
            .map(|(id, _)| id.clone())
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.gen_range(0..ids.len())].clone())
    }

    async fn update(&mut self) {
        let Some(id) = self.pick() else { return };
        let model = self.user().books[&id].clone();
        let (Some(current), Some(etag)) = (model.current().cloned(), model.etag.clone()) else {
            return self.read_book(&id).await;
        };
        let next = State {
            price_cents: self.rng.gen_range(0..100_000),
            ..current.clone()
        };
        let mut book = book_of(&next);
        book.id = id.clone();
        book.etag = etag;
        let request = UpdateBookRequest {
            book: Some(book),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["price_cents".into()],
            }),
        };
        let mut books = self.book_client();
        let token = self.token();
        let answer = self
            .call(
                "UpdateBook",
                &[],
                books.update_book(bearer(request, &token)),
            )
            .await;
        let model = match answer {
            Ok(answer) => Model::known(
                Some(next),
                answer.book.map(|b| b.etag).filter(|e| !e.is_empty()),
            ),
            Err(s) if s.code() == Code::Unavailable => Model {
                possible: vec![Some(current), Some(next)],
                etag: None,
            },
            Err(_) => return,
        };
        self.user().books.insert(id, model);
    }

    async fn delete(&mut self) {
        let Some(id) = self.pick() else { return };
        let model = self.user().books[&id].clone();
        let (Some(current), Some(etag)) = (model.current().cloned(), model.etag.clone()) else {
            return self.read_book(&id).await;
        };
        let mut books = self.book_client();
        let token = self.token();
        let request = DeleteBookRequest {
            id: id.clone(),
            etag,
        };
        let model = match self
            .call(
                "DeleteBook",
                &[],
                books.delete_book(bearer(request, &token)),
            )
            .await
        {
            Ok(_) => Model::known(None, None),
            Err(s) if s.code() == Code::Unavailable => Model {
                possible: vec![Some(current), None],
                etag: None,
            },
            Err(_) => return,
        };
        self.user().books.insert(id, model);
    }

    async fn read(&mut self) {
        if let Some(id) = self.pick() {
            self.read_book(&id).await;
        }
    }

    /// Reads `id` from a random replica and checks it against the model (narrowing it when a
    /// lost answer left it open).
    async fn read_book(&mut self, id: &str) {
        let mut books = self.book_client();
        let replica = self.replica.clone();
        let token = self.token();
        let request = GetBookRequest { id: id.to_string() };
        let answer = self
            .call(
                "GetBook",
                &[Code::NotFound],
                books.get_book(bearer(request, &token)),
            )
            .await;
        let (seen, etag) = match answer {
            Ok(answer) => {
                let book = answer.book.unwrap_or_default();
                (Some(State::of(&book)), Some(book.etag))
            }
            Err(s) if s.code() == Code::NotFound => (None, None),
            Err(_) => return,
        };
        self.cx.history.book_checked();
        let model = &self.user().books[id];
        if model.possible.contains(&seen) {
            self.user()
                .books
                .insert(id.to_string(), Model::known(seen, etag));
        } else {
            let what = format!(
                "book {id} read on {} as {seen:?}; acknowledged or attempted: {:?}",
                replica, model.possible
            );
            self.cx.history.violation(what);
        }
    }

    async fn list(&mut self) {
        let mut books = self.book_client();
        let token = self.token();
        let request = ListBooksRequest {
            page_size: 10,
            ..Default::default()
        };
        let _ = self
            .call("ListBooks", &[], books.list_books(bearer(request, &token)))
            .await;
    }

    async fn refresh(&mut self) {
        let Some(session) = self.user().session.clone() else {
            return;
        };
        let mut auth = self.auth_client();
        let request = RefreshTokenRequest {
            refresh_token: session.refresh.clone(),
            scopes: vec![],
        };
        match self
            .call("RefreshToken", &[], auth.refresh_token(request))
            .await
        {
            Ok(answer) => {
                self.cx.history.refresh_accepted(&session.refresh);
                let fresh = Session {
                    access: answer.access_token,
                    refresh: answer.refresh_token,
                    issued: Instant::now(),
                };
                self.user().session = Some(fresh.clone());
                if self.rng.gen_range(0..5) == 0 {
                    self.reuse(&session.refresh, &fresh).await;
                }
            }
            // A lost answer may have spent the token: log in again.
            Err(_) => self.user().session = None,
        }
    }

    /// Presents a spent refresh token again, as a thief would: refused, and the session it
    /// belongs to revoked (its fresh access token refused within a second).
    async fn reuse(&mut self, spent: &str, fresh: &Session) {
        match self.present_dead("RefreshToken (reused)", spent).await {
            Ok(()) => {}
            Err(s) if s.code() == Code::Unauthenticated => {
                self.probe_revoked("refresh-token reuse", fresh.access.clone(), Instant::now());
            }
            Err(_) => {}
        }
        self.user().session = None;
    }

    /// Presents a refresh token that must be refused (spent, or its user's password changed);
    /// an acceptance is recorded, so a second one of the same token is a violation.
    async fn present_dead(&mut self, rpc: &'static str, token: &str) -> Result<(), Status> {
        let mut auth = self.auth_client();
        let request = RefreshTokenRequest {
            refresh_token: token.to_string(),
            scopes: vec![],
        };
        let answer = self
            .call(rpc, &[Code::Unauthenticated], auth.refresh_token(request))
            .await;
        if answer.is_ok() {
            self.cx.history.refresh_accepted(token);
        }
        answer.map(|_| ())
    }

    async fn logout(&mut self) {
        let Some(session) = self.user().session.take() else {
            return;
        };
        let mut auth = self.auth_client();
        let request = LogoutRequest {
            refresh_token: session.refresh.clone(),
        };
        if self.call("Logout", &[], auth.logout(request)).await.is_ok() {
            self.probe_revoked("Logout", session.access, Instant::now());
        }
    }

    async fn change_password(&mut self) {
        let Some(session) = self.user().session.take() else {
            return;
        };
        let current = self.user().passwords[0].clone();
        let new = format!("a soak passphrase {}", self.next());
        let i = self.rng.gen_range(0..self.cx.users.len());
        let mut users = self.cx.users[i].clone();
        let request = ChangePasswordRequest {
            current_password: current.clone(),
            new_password: new.clone(),
        };
        match self
            .call(
                "ChangePassword",
                &[],
                users.change_password(bearer(request, &session.access)),
            )
            .await
        {
            Ok(_) => {
                let answered = Instant::now();
                self.user().passwords = vec![new];
                self.probe_revoked("ChangePassword", session.access, answered);
                // The session's refresh token is dead at once: it lives in the database.
                let answer = self
                    .present_dead("RefreshToken (after ChangePassword)", &session.refresh)
                    .await;
                if answer.is_ok() {
                    self.cx.history.violation(
                        "a refresh token was accepted after its user's ChangePassword answered"
                            .into(),
                    );
                }
            }
            Err(s) if s.code() == Code::Unavailable => {
                self.user().passwords = vec![current, new];
            }
            Err(_) => {}
        }
    }

    /// In the background: once a second has passed since `answered` (or since the end of a
    /// fault that overlapped that second), `access` must be refused by every book-service.
    fn probe_revoked(&self, why: &'static str, access: String, answered: Instant) {
        let cx = self.cx.clone();
        tokio::spawn(async move {
            loop {
                match cx.faults.felt_from(answered) {
                    Some(from) => {
                        let due = from + Duration::from_secs(1);
                        if Instant::now() >= due {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            for (i, client) in cx.books.iter().enumerate() {
                let mut client = client.clone();
                let start = Instant::now();
                let request = ListBooksRequest {
                    page_size: 1,
                    ..Default::default()
                };
                let answer = client
                    .list_books(bearer(request, &access))
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(connection_lost_is_unavailable);
                cx.history.answer(
                    "ListBooks (revoked token)",
                    &cx.book_names[i],
                    start,
                    &answer,
                    &[Code::Unauthenticated],
                );
                match answer {
                    Ok(_) => {
                        let refused = refused_after(&mut client, &access, answered).await;
                        cx.history.violation(format!(
                            "{} accepted a token {:?} after its {why} was answered \
                             (refused after {refused:?})",
                            cx.book_names[i],
                            start.duration_since(answered),
                        ))
                    }
                    Err(s) if s.code() == Code::Unauthenticated => {
                        cx.history.revocation_checked();
                    }
                    Err(_) => {}
                }
            }
        });
    }

    /// After the run: every user logs in again, resends its unanswered creates, reads every
    /// book it wrote and lists its shelf, which must hold exactly the books it should.
    async fn verify(&mut self) {
        for index in 0..self.users.len() {
            self.current = index;
            self.verify_current().await;
        }
    }

    async fn verify_current(&mut self) {
        self.user().session = None;
        let mut tries = 0;
        while !self.login().await {
            tries += 1;
            if tries == 50 {
                let what = format!("{} cannot log in after the run", self.user().name);
                return self.cx.history.violation(what);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for (request_id, state) in std::mem::take(&mut self.user().pending) {
            let token = self.token();
            let mut books = self.book_client();
            let request = CreateBookRequest {
                book: Some(book_of(&state)),
                request_id,
            };
            if let Ok(answer) = self
                .call(
                    "CreateBook (resent)",
                    &[],
                    books.create_book(bearer(request, &token)),
                )
                .await
            {
                self.acknowledged_create(&answer.book.unwrap_or_default(), &state);
            }
        }
        let ids: Vec<String> = self.user().books.keys().cloned().collect();
        for id in &ids {
            self.read_book(id).await;
        }
        let mut stored = std::collections::HashSet::new();
        let mut page_token = String::new();
        loop {
            let mut books = self.book_client();
            let token = self.token();
            let request = ListBooksRequest {
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            };
            let Ok(page) = self
                .call(
                    "ListBooks (final)",
                    &[],
                    books.list_books(bearer(request, &token)),
                )
                .await
            else {
                return;
            };
            stored.extend(page.books.into_iter().map(|b| b.id));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        // Present for sure: every possible state is a book; possibly present: any is.
        let books = &self.user().books;
        let missing = (books.iter())
            .filter(|(id, model)| {
                model.possible.iter().all(Option::is_some) && !stored.contains(*id)
            })
            .count();
        let unexpected = (stored.iter())
            .filter(|id| {
                books
                    .get(*id)
                    .is_none_or(|m| m.possible.iter().all(Option::is_none))
            })
            .count();
        if missing + unexpected > 0 {
            let what = format!(
                "{}'s shelf misses {missing} acknowledged books and holds {unexpected} it should not",
                self.user().name,
            );
            self.cx.history.violation(what);
        }
    }
}

/// How long after `answered` `client` first refuses `access` (polled every 20 ms, for 10 s).
async fn refused_after(
    client: &mut BookServiceClient<Channel>,
    access: &str,
    answered: Instant,
) -> Option<Duration> {
    while answered.elapsed() < Duration::from_secs(10) {
        let request = ListBooksRequest {
            page_size: 1,
            ..Default::default()
        };
        if let Err(s) = client.list_books(bearer(request, access)).await {
            if s.code() == Code::Unauthenticated {
                return Some(answered.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// A call whose connection was cut before any answer (its server killed) is UNAVAILABLE, as
/// gRPC's status-code table has it; tonic's client reports it as UNKNOWN ("transport error",
/// "h2 protocol error: ..."), CANCELLED ("operation was canceled") or, for a GOAWAY with
/// ENHANCE_YOUR_CALM, RESOURCE_EXHAUSTED. Every other status is the server's own.
fn connection_lost_is_unavailable(status: Status) -> Status {
    let h2 = status.message().starts_with("h2 protocol error");
    let cut = match status.code() {
        Code::Unknown => status.message() == "transport error" || h2,
        Code::Cancelled => status.message() == "operation was canceled",
        // A GOAWAY ENHANCE_YOUR_CALM closing the connection (tonic maps that reason to this
        // code); the services' own RESOURCE_EXHAUSTED never reads "h2 protocol error".
        Code::ResourceExhausted => h2,
        _ => false,
    };
    if !cut {
        return status;
    }
    // The whole chain: whether h2 "detected" the error itself or "received" it from the peer.
    let mut chain = status.message().to_string();
    let mut source = std::error::Error::source(&status);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    Status::unavailable(format!("connection lost ({:?}: {chain})", status.code()))
}

fn book_of(state: &State) -> Book {
    Book {
        title: state.title.clone(),
        author: "Soak Tester".into(),
        publisher: "Faults Press".into(),
        price_cents: state.price_cents,
        ..Book::default()
    }
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    bookstore_testkit::bearer(message, token)
}
