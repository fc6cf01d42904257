//! All SQL of auth-service, one code path for SQLite and PostgreSQL ([`bookstore_kit::storage`]).
//! Each function is one statement or one writing transaction; nothing is acknowledged to a
//! caller before its commit. What must happen exactly once across replicas rests on the
//! database: conditional updates (a refresh token is spent by the one `UPDATE` that finds it
//! unspent), row locks (throttle counters) and table locks (signing keys, revocation cursors).

use bookstore_kit::{
    paging::Cursor,
    storage::{
        self, lock_table,
        read::{self, Arg, Cost, FromColumns},
        Backend, Database, Migrations, Tx,
    },
};
use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::{
    counter::{Counter, Scope},
    error::{Error, Result},
};

/// auth-service's database handle (cheap to clone).
#[derive(Debug, Clone)]
pub struct Db(Database);

/// A row of `users`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub admin: bool,
    pub create_time: i64,
    /// A disabled user cannot log in or refresh.
    pub disabled: bool,
    /// Access tokens issued before this are revoked; new ones carry an `iat` no earlier.
    pub tokens_not_before: i64,
    /// Bumped by every event that ends all of the user's sessions (ChangePassword, disable):
    /// a Login starts its session only if the epoch it read with the hash is still current.
    pub session_epoch: i64,
}

// Read by position from this one list; flags are stored as 0/1 integers on both backends.
bookstore_kit::columns!(UserRow {
    id,
    username,
    password_hash,
    admin: flag,
    create_time,
    disabled: flag,
    tokens_not_before,
    session_epoch,
});

/// A row of `revocations`: exactly one of `session_id` and `user_id` is set.
#[derive(Debug, Clone)]
pub struct RevocationRow {
    pub cursor: i64,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub not_before: Option<i64>,
    pub expire_time: i64,
}

bookstore_kit::columns!(RevocationRow {
    cursor,
    session_id,
    user_id,
    not_before,
    expire_time,
});

/// When a revocation is made and until when it matters: `now`, and the time by which every
/// access token it covers has expired.
#[derive(Debug, Clone, Copy)]
pub struct Revoking {
    pub now: i64,
    pub expire_time: i64,
}

/// A row of `signing_keys`.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub create_time: i64,
    pub retire_time: Option<i64>,
}

bookstore_kit::columns!(KeyRow {
    kid,
    private_key,
    create_time,
    retire_time,
});

/// What a refresh-token rotation found.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and its successor stored. Holds the user (as
    /// locked by the rotation) and the family's absolute expiry.
    Rotated {
        user: UserRow,
        family_id: String,
        expire_time: i64,
    },
    /// No such token (never issued, or purged long after its family ended).
    Unknown,
    /// Revoked, expired, or its owner is disabled.
    Invalid,
    /// Already spent: the family (login session) of this user has now been revoked.
    Reused { user_id: String },
}

/// What [`Db::start_session`] found when it came to store a Login's first refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionStart {
    /// The token is stored: the session is live.
    Started,
    /// The account was disabled meanwhile (or deleted): nothing stored.
    Disabled,
    /// The password was changed or the account disabled since the Login read the user (a later
    /// `admin enable` does not bring that Login back): nothing stored.
    Superseded,
}

/// A row of `clients`: a service client (machine identity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    /// Space-separated scopes it may hold.
    pub scopes: String,
    /// SHA-256 (hex) of its secret.
    pub secret_hash: String,
    /// The secret before the last rotation, accepted until `previous_until`.
    pub previous_hash: Option<String>,
    pub previous_until: Option<i64>,
    /// Rotations so far: a token's `sid` is `<id>.<generation>`.
    pub generation: i64,
    pub create_time: i64,
}

bookstore_kit::columns!(ClientRow {
    id,
    name,
    scopes,
    secret_hash,
    previous_hash,
    previous_until,
    generation,
    create_time,
});

/// The `sid` of the tokens a client's secret of `generation` issued.
pub fn client_session(client_id: &str, generation: i64) -> String {
    format!("{client_id}.{generation}")
}

/// What [`Db::end_session`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// No such refresh token: nothing written.
    Unknown,
    /// Its session had already ended: nothing written.
    AlreadyEnded,
    /// The session is now ended and a revocation recorded.
    Ended,
}

/// The family a refresh token belongs to, read without the writer by [`Db::end_session`].
struct FamilyRef {
    family_id: String,
    user_id: String,
    revoked: bool,
}

bookstore_kit::columns!(FamilyRef {
    family_id,
    user_id,
    revoked: flag,
});

impl Db {
    /// Opens the database at `url` (created if missing) and runs the embedded migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let migrations = Migrations {
            sqlite: sqlx::migrate!("./migrations/sqlite"),
            postgres: sqlx::migrate!("./migrations/postgres"),
        };
        Ok(Db(Database::connect(url, &migrations).await?))
    }

    /// The storage underneath (secrets, closing).
    pub fn database(&self) -> &Database {
        &self.0
    }

    // ---- users ----

    /// Stores a new user (every column of [`UserRow`]); a taken username is
    /// [`Error::UsernameTaken`].
    pub async fn insert_user(&self, user: &UserRow) -> Result<()> {
        let mut tx = self.0.begin_write().await?;
        let args = user.args();
        let inserted = read::bind(
            sqlx::query(&read::insert_sql("users", UserRow::COLUMNS)),
            &args,
        )
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if storage::is_unique_violation(&e) => return Err(Error::UsernameTaken),
            other => other?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// The user called `username` (already lower-case).
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>> {
        let sql = format!(
            "SELECT {} FROM users WHERE username = $1",
            UserRow::select_list()
        );
        let args = vec![username.into()];
        Ok(self.0.fetch_optional(Cost::Lookup, &sql, args).await?)
    }

    /// The user with id `id`.
    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {} FROM users WHERE id = $1", UserRow::select_list());
        let args = vec![id.into()];
        Ok(self.0.fetch_optional(Cost::Lookup, &sql, args).await?)
    }

    /// Makes `username` an admin; false when there is no such user.
    pub async fn promote(&self, username: &str) -> Result<bool> {
        let mut tx = self.0.begin_write().await?;
        let done = sqlx::query("UPDATE users SET admin = 1 WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Up to `limit` users after the keyset position `after` (create_time, id), oldest first.
    pub async fn list_users(&self, after: Option<&Cursor>, limit: i64) -> Result<Vec<UserRow>> {
        let (time, id) = after.map_or((i64::MIN, ""), |c| (c.create_time, c.id.as_str()));
        let sql = format!(
            "SELECT {} FROM users WHERE (create_time, id) > ($1, $2)
             ORDER BY create_time, id LIMIT $3",
            UserRow::select_list()
        );
        let args = vec![time.into(), id.into(), limit.into()];
        Ok(self.0.fetch_all(Cost::Lookup, &sql, args).await?)
    }

    /// Replaces the user's password hash and revokes every refresh token of the user, in one
    /// transaction. `revoking` is asked for the time only once the user's row is locked (the
    /// `UPDATE`), so every Login or RefreshToken that stored a token before us started earlier
    /// and its access token's `iat` is covered by the revocation.
    pub async fn change_password(
        &self,
        user_id: &str,
        password_hash: &str,
        revoking: impl FnOnce() -> Revoking,
    ) -> Result<()> {
        let mut tx = self.0.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        revoke_user(&mut tx, self.0.backend(), user_id, revoking()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Disables or enables `username`; the user's id, or `None` when there is no such user.
    /// Disabling also ends every session and revokes every access token of the user, in the
    /// same transaction (`revoking` is asked for the time once the row is locked, as in
    /// [`Db::change_password`]).
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        revoking: impl FnOnce() -> Revoking,
    ) -> Result<Option<String>> {
        let mut tx = self.0.begin_write().await?;
        let user_id: Option<String> =
            sqlx::query_scalar("UPDATE users SET disabled = $1 WHERE username = $2 RETURNING id")
                .bind(i64::from(disabled))
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
        if let (Some(user_id), true) = (&user_id, disabled) {
            revoke_user(&mut tx, self.0.backend(), user_id, revoking()).await?;
        }
        tx.commit().await?;
        Ok(user_id)
    }

    // ---- service clients ----

    /// Stores a new client; a taken name is [`Error::ClientNameTaken`].
    pub async fn insert_client(&self, client: &ClientRow) -> Result<()> {
        let mut tx = self.0.begin_write().await?;
        let args = client.args();
        let inserted = read::bind(
            sqlx::query(&read::insert_sql("clients", ClientRow::COLUMNS)),
            &args,
        )
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if storage::is_unique_violation(&e) => return Err(Error::ClientNameTaken),
            other => other?,
        };
        tx.commit().await?;
        Ok(())
    }

    /// The client whose id or name is `key`.
    pub async fn client(&self, key: &str) -> Result<Option<ClientRow>> {
        let sql = format!(
            "SELECT {} FROM clients WHERE id = $1 OR name = $1",
            ClientRow::select_list()
        );
        let args = vec![key.into()];
        Ok(self.0.fetch_optional(Cost::Lookup, &sql, args).await?)
    }

    /// Every client, by name.
    pub async fn clients(&self) -> Result<Vec<ClientRow>> {
        let sql = format!(
            "SELECT {} FROM clients ORDER BY name",
            ClientRow::select_list()
        );
        Ok(self.0.fetch_all(Cost::Lookup, &sql, Vec::new()).await?)
    }

    /// Deletes the client `name` and revokes every token it holds, in one transaction; its id,
    /// or `None` when there is no such client.
    pub async fn delete_client(&self, name: &str, revoking: Revoking) -> Result<Option<String>> {
        let mut tx = self.0.begin_write().await?;
        let id: Option<String> =
            sqlx::query_scalar("DELETE FROM clients WHERE name = $1 RETURNING id")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = &id {
            let not_before = revoking.now + 1;
            record_user_revocation(&mut tx, self.0.backend(), id, not_before, revoking).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Gives the client `name` the secret `new_hash`; the current one keeps working until
    /// `grace_until` (with no grace, its tokens are revoked now, in the same transaction). A
    /// previous secret still in its grace is revoked now: only one older secret is kept.
    pub async fn rotate_client_secret(
        &self,
        name: &str,
        new_hash: &str,
        grace_until: i64,
        revoking: Revoking,
    ) -> Result<Option<ClientRow>> {
        let mut tx = self.0.begin_write().await?;
        let sql = format!(
            "SELECT {} FROM clients WHERE name = $1{}",
            ClientRow::select_list(),
            self.0.for_update()
        );
        let row: Option<AnyRow> = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(old) = row.as_ref().map(ClientRow::from_columns).transpose()? else {
            return Ok(None);
        };
        let backend = self.0.backend();
        if old.previous_hash.is_some() {
            let sid = client_session(&old.id, old.generation - 1);
            record_session_revocation(&mut tx, backend, &sid, revoking).await?;
        }
        let keep_previous = grace_until > revoking.now;
        if !keep_previous {
            let sid = client_session(&old.id, old.generation);
            record_session_revocation(&mut tx, backend, &sid, revoking).await?;
        }
        let (previous_hash, previous_until) = match keep_previous {
            true => (Some(old.secret_hash.clone()), Some(grace_until)),
            false => (None, None),
        };
        sqlx::query(
            "UPDATE clients SET secret_hash = $1, previous_hash = $2, previous_until = $3,
                                generation = generation + 1
             WHERE id = $4",
        )
        .bind(new_hash)
        .bind(&previous_hash)
        .bind(previous_until)
        .bind(&old.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ClientRow {
            secret_hash: new_hash.to_string(),
            previous_hash,
            previous_until,
            generation: old.generation + 1,
            ..old
        }))
    }

    /// Ends the graces that are over at `revoking.now`: the previous secrets are forgotten and
    /// their tokens revoked, in one transaction. Returns how many. A conditional `UPDATE`
    /// claims each, so replicas doing this together revoke each once.
    pub async fn end_client_graces(&self, revoking: Revoking) -> Result<usize> {
        // Most of the time there is none: answered from a read, without the writer.
        let sql = "SELECT COUNT(*) FROM clients WHERE previous_until <= $1";
        let due: Option<i64> = self
            .0
            .fetch_optional(Cost::Lookup, sql, vec![revoking.now.into()])
            .await?;
        if due.unwrap_or(0) == 0 {
            return Ok(0);
        }
        let mut tx = self.0.begin_write().await?;
        let ended: Vec<(String, i64)> = sqlx::query_as(
            "UPDATE clients SET previous_hash = NULL, previous_until = NULL
             WHERE previous_until <= $1 RETURNING id, generation",
        )
        .bind(revoking.now)
        .fetch_all(&mut *tx)
        .await?;
        for (id, generation) in &ended {
            let sid = client_session(id, generation - 1);
            record_session_revocation(&mut tx, self.0.backend(), &sid, revoking).await?;
        }
        tx.commit().await?;
        Ok(ended.len())
    }

    // ---- revocations ----

    /// Revocations after `cursor` that still matter at `now`, in stream order (at most
    /// `limit`).
    pub async fn revocations_after(
        &self,
        cursor: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<RevocationRow>> {
        let sql = format!(
            "SELECT {} FROM revocations
             WHERE cursor > $1 AND expire_time > $2 ORDER BY cursor LIMIT $3",
            RevocationRow::select_list()
        );
        let args = vec![cursor.into(), now.into(), limit.into()];
        Ok(self.0.fetch_all(Cost::Lookup, &sql, args).await?)
    }

    // ---- signing keys ----

    /// Every signing key, the active one (never retired) first, then the newest.
    pub async fn signing_keys(&self) -> Result<Vec<KeyRow>> {
        let sql = format!(
            "SELECT {} FROM signing_keys
             ORDER BY (retire_time IS NULL) DESC, create_time DESC, retire_time DESC, kid",
            KeyRow::select_list()
        );
        Ok(self.0.fetch_all(Cost::Lookup, &sql, Vec::new()).await?)
    }

    /// Adds `key` as the active key. With `only_if_none`, does nothing when a key exists
    /// (first start); otherwise retires the current key (rotation). The table is locked
    /// first, so replicas starting together on a fresh database make one key, not one each.
    pub async fn add_signing_key(&self, key: &KeyRow, only_if_none: bool) -> Result<()> {
        let mut tx = self.0.begin_write().await?;
        lock_table(&mut tx, self.0.backend(), "signing_keys").await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
            .fetch_one(&mut *tx)
            .await?;
        if only_if_none && existing > 0 {
            return Ok(());
        }
        sqlx::query("UPDATE signing_keys SET retire_time = $1 WHERE retire_time IS NULL")
            .bind(key.create_time)
            .execute(&mut *tx)
            .await?;
        let args = key.args();
        read::bind(
            sqlx::query(&read::insert_sql("signing_keys", KeyRow::COLUMNS)),
            &args,
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- refresh tokens ----

    /// Stores the first token of a new family for `user`, as a Login read it, unless the
    /// user's sessions were ended since ([`SessionStart`]). The user's row is locked first
    /// (PostgreSQL; SQLite's writes exclude each other), in the order every session write takes
    /// (user, then tokens): a ChangePassword or disable either finished before, and is seen
    /// here, or waits for this insert and then revokes the token it stored.
    pub async fn start_session(
        &self,
        token_hash: &str,
        family_id: &str,
        user: &UserRow,
        expire_time: i64,
    ) -> Result<SessionStart> {
        let (token_hash, family_id, user_id) =
            (token_hash.to_owned(), family_id.to_owned(), user.id.clone());
        let (epoch, lock) = (user.session_epoch, self.0.for_update());
        // A login's one write after the hash: on SQLite it shares the next group commit.
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    let Some(now) = lock_user(&mut tx, lock, &user_id).await? else {
                        return Ok(SessionStart::Disabled);
                    };
                    if now.disabled {
                        return Ok(SessionStart::Disabled);
                    }
                    if now.session_epoch != epoch {
                        return Ok(SessionStart::Superseded);
                    }
                    insert_refresh_token(&mut tx, &token_hash, &family_id, &user_id, expire_time)
                        .await?;
                    Ok(SessionStart::Started)
                })
            }))
            .await
    }

    /// Spends the token `old_hash` and stores `new_hash` in its family, or revokes the family
    /// when `old_hash` was already spent. The token is spent by one conditional `UPDATE`: of
    /// two racing refreshes of one token (on any replicas) exactly one finds it unspent. The
    /// owner's row is locked first, as every session write does: a Logout, ChangePassword or
    /// disable running at the same time either ended the family before (the token is found
    /// revoked) or waits and then revokes the successor stored here too.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        revoking: Revoking,
    ) -> Result<Rotation> {
        let now = revoking.now;
        // An unknown token is answered from a read, without the writer.
        let found = self.family_of(old_hash).await?;
        let Some(FamilyRef { user_id: owner, .. }) = found else {
            return Ok(Rotation::Unknown);
        };
        let mut tx = self.0.begin_write().await?;
        let user = match lock_user(&mut Tx::Sqlx(&mut tx), self.0.for_update(), &owner).await? {
            Some(user) if !user.disabled => user,
            _ => return Ok(Rotation::Invalid),
        };
        let spent: Option<AnyRow> = sqlx::query(
            "UPDATE refresh_tokens SET spent = 1
             WHERE token_hash = $1 AND spent = 0 AND revoked = 0 AND expire_time > $2
             RETURNING family_id, user_id, expire_time",
        )
        .bind(old_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = spent {
            let family_id: String = row.try_get("family_id")?;
            let expire_time: i64 = row.try_get("expire_time")?;
            let mut write = Tx::Sqlx(&mut tx);
            insert_refresh_token(&mut write, new_hash, &family_id, &user.id, expire_time).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated {
                user,
                family_id,
                expire_time,
            });
        }
        // Not spendable: unknown, revoked, expired, or spent before (reuse).
        let row: Option<AnyRow> = sqlx::query(
            "SELECT family_id, user_id, expire_time, spent, revoked FROM refresh_tokens
             WHERE token_hash = $1",
        )
        .bind(old_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Rotation::Invalid);
        };
        let expire_time: i64 = row.try_get("expire_time")?;
        if row.try_get::<i64, _>("revoked")? != 0 || now >= expire_time {
            return Ok(Rotation::Invalid);
        }
        let family: String = row.try_get("family_id")?;
        let user_id: String = row.try_get("user_id")?;
        revoke_session(&mut tx, self.0.backend(), &family, revoking).await?;
        tx.commit().await?;
        Ok(Rotation::Reused { user_id })
    }

    /// The user who owns the refresh token `token_hash`, if it exists.
    pub async fn refresh_token_owner(&self, token_hash: &str) -> Result<Option<UserRow>> {
        match self.family_of(token_hash).await? {
            Some(family) => self.user_by_id(&family.user_id).await,
            None => Ok(None),
        }
    }

    /// The family, owner and state of the refresh token `token_hash`, read without the writer.
    async fn family_of(&self, token_hash: &str) -> Result<Option<FamilyRef>> {
        let sql = format!(
            "SELECT {} FROM refresh_tokens WHERE token_hash = $1",
            FamilyRef::select_list()
        );
        let args = vec![token_hash.into()];
        Ok(self.0.fetch_optional(Cost::Lookup, &sql, args).await?)
    }

    /// Ends the session (family) of the token `token_hash`. An unknown token, or one whose
    /// session already ended, is answered from a read and writes nothing: a flood of junk
    /// Logouts never takes the writer. Otherwise the owner's row is locked first, as every
    /// session write does, so a rotation running at the same time cannot leave a successor
    /// behind.
    pub async fn end_session(&self, token_hash: &str, revoking: Revoking) -> Result<Ending> {
        let Some(family) = self.family_of(token_hash).await? else {
            return Ok(Ending::Unknown);
        };
        if family.revoked {
            return Ok(Ending::AlreadyEnded);
        }
        let mut tx = self.0.begin_write().await?;
        lock_user(&mut Tx::Sqlx(&mut tx), self.0.for_update(), &family.user_id).await?;
        let ended = revoke_session(&mut tx, self.0.backend(), &family.family_id, revoking).await?;
        tx.commit().await?;
        Ok(if ended {
            Ending::Ended
        } else {
            Ending::AlreadyEnded
        })
    }

    // ---- throttle ----

    /// The counters of `keys` as they are now (zero where none is stored), read without the
    /// writer.
    pub async fn throttle_counters(&self, keys: &[(Scope, String)]) -> Result<Vec<Counter>> {
        let sql = format!(
            "SELECT {} FROM login_throttle WHERE scope = $1 AND key = $2",
            ThrottleRow::select_list()
        );
        let mut counters = Vec::with_capacity(keys.len());
        for (scope, key) in keys {
            let args = vec![scope.as_str().into(), key.as_str().into()];
            let row: Option<ThrottleRow> = self.0.fetch_optional(Cost::Lookup, &sql, args).await?;
            counters.push(row.map(|row| row.counter()).unwrap_or_default());
        }
        Ok(counters)
    }

    /// Reads the counters of `keys`, lets `update` change them (or refuse, which changes
    /// nothing), and stores them, all in one write: two attempts can never both read the same
    /// count, on one replica or several. One statement makes the missing counter rows and
    /// locks and reads all of them (a no-op `ON CONFLICT DO UPDATE … RETURNING`: on PostgreSQL
    /// it locks the row and returns its latest committed version, as `SELECT … FOR UPDATE`
    /// would), in one global order (`keys` sorted) so that two attempts sharing counters
    /// cannot deadlock; one more stores them. On SQLite the write joins the next group commit
    /// ([`Database::write`]): a login's two counter updates and its refresh token would
    /// otherwise cost three fsyncs of their own, next to the password hash. (Two statements
    /// rather than two per counter: on PostgreSQL each is a round trip to the server.)
    pub async fn update_throttle_counters<T>(
        &self,
        keys: Vec<(Scope, String)>,
        update: impl FnOnce(&mut [Counter], &[(Scope, String)]) -> Result<T> + Send + 'static,
    ) -> Result<T>
    where
        T: Send + 'static,
    {
        // Distinct keys (one per layer): a statement may not upsert one row twice.
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        let (lock_sql, store_sql) = (
            throttle_lock_sql(keys.len()),
            throttle_store_sql(keys.len()),
        );
        self.0
            .write(Box::new(move |mut tx| {
                Box::pin(async move {
                    let lock: Vec<Arg> = sorted
                        .iter()
                        .flat_map(|(scope, key)| [scope.as_str().into(), key.as_str().into()])
                        .collect();
                    let rows: Vec<ThrottleRow> = tx.fetch_all(&lock_sql, &lock).await?;
                    let mut counters = vec![Counter::default(); keys.len()];
                    for row in rows {
                        let Some(i) = keys
                            .iter()
                            .position(|(s, k)| s.as_str() == row.scope && *k == row.key)
                        else {
                            continue;
                        };
                        counters[i] = row.counter();
                    }
                    let out = update(&mut counters, &keys)?;
                    let args: Vec<Arg> = keys
                        .iter()
                        .zip(&counters)
                        .flat_map(|((scope, key), counter)| {
                            ThrottleRow::new(*scope, key, counter).args()
                        })
                        .collect();
                    tx.execute(&store_sql, &args).await?;
                    Ok(out)
                })
            }))
            .await
    }

    // ---- housekeeping ----

    /// Deletes what can no longer matter at `now`: refresh tokens of expired or revoked
    /// families (spent tokens of live families stay: they detect reuse), and throttle counters
    /// that are unlocked and whose window ended `idle_after` seconds ago. Returns the number of
    /// (tokens, counters) deleted.
    pub async fn purge(&self, now: i64, idle_after: i64) -> Result<(u64, u64)> {
        let mut tx = self.0.begin_write().await?;
        let tokens =
            sqlx::query("DELETE FROM refresh_tokens WHERE expire_time <= $1 OR revoked = 1")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("DELETE FROM revocations WHERE expire_time <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let counters = sqlx::query(
            "DELETE FROM login_throttle
             WHERE locked_until <= $1 AND window_start <= $2 AND pending_since <= $3",
        )
        .bind(now)
        .bind(now - idle_after)
        .bind(now - idle_after)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok((tokens, counters))
    }
}

/// Stores a live refresh token of `family_id` (the first of a login, or a rotation's successor).
async fn insert_refresh_token(
    tx: &mut Tx<'_>,
    token_hash: &str,
    family_id: &str,
    user_id: &str,
    expire_time: i64,
) -> Result<(), sqlx::Error> {
    tx.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expire_time)
         VALUES ($1, $2, $3, $4)",
        &[
            token_hash.into(),
            family_id.into(),
            user_id.into(),
            expire_time.into(),
        ],
    )
    .await?;
    Ok(())
}

/// The user `id`, its row locked until the transaction ends (PostgreSQL, with `lock` from
/// [`Database::for_update`]; SQLite's writing transactions already exclude each other). Every
/// write that starts, rotates or ends sessions takes this lock first, so they serialise per
/// user and cannot deadlock.
async fn lock_user(tx: &mut Tx<'_>, lock: &str, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM users WHERE id = $1{lock}",
        UserRow::select_list()
    );
    tx.fetch_optional(&sql, &[id.into()]).await
}

/// Ends the login session `family`: its refresh tokens are revoked and, if any was still live,
/// a session revocation is recorded for the verifiers. True when it did.
async fn revoke_session(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    family: &str,
    revoking: Revoking,
) -> Result<bool, sqlx::Error> {
    let ended =
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1 AND revoked = 0")
            .bind(family)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if ended > 0 {
        record_session_revocation(tx, backend, family, revoking).await?;
    }
    Ok(ended > 0)
}

/// Records that every access token of the session `sid` is revoked, for the verifiers.
async fn record_session_revocation(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    sid: &str,
    revoking: Revoking,
) -> Result<(), sqlx::Error> {
    lock_table(tx, backend, "revocations").await?;
    sqlx::query(
        "INSERT INTO revocations (session_id, expire_time, create_time) VALUES ($1, $2, $3)",
    )
    .bind(sid)
    .bind(revoking.expire_time)
    .bind(revoking.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records that every access token of `subject` (a user or a client) with an `iat` before
/// `not_before` is revoked, for the verifiers; `revoking.expire_time` is when the last of them
/// expires.
async fn record_user_revocation(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    subject: &str,
    not_before: i64,
    revoking: Revoking,
) -> Result<(), sqlx::Error> {
    lock_table(tx, backend, "revocations").await?;
    sqlx::query(
        "INSERT INTO revocations (user_id, not_before, expire_time, create_time)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(subject)
    .bind(not_before)
    .bind(revoking.expire_time)
    .bind(revoking.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes every refresh token and every access token of `user_id` issued up to now: tokens
/// issued from the next second on are not affected (new tokens carry an `iat` no earlier than
/// `tokens_not_before`). A second revocation within the second of the first moves
/// `tokens_not_before` one second further, so it also covers the tokens issued between the
/// two, whose `iat` the first one had already moved to its `tokens_not_before`.
async fn revoke_user(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    user_id: &str,
    revoking: Revoking,
) -> Result<(), sqlx::Error> {
    let not_before: i64 = sqlx::query_scalar(
        "UPDATE users SET session_epoch = session_epoch + 1,
             tokens_not_before = CASE WHEN tokens_not_before > $1 THEN tokens_not_before + 1
                                      ELSE $1 + 1 END
         WHERE id = $2 RETURNING tokens_not_before",
    )
    .bind(revoking.now)
    .bind(user_id)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    // Tokens stamped up to `not_before - 1` live that much longer than ones stamped `now`.
    let revoking = Revoking {
        expire_time: revoking.expire_time + (not_before - 1 - revoking.now),
        ..revoking
    };
    record_user_revocation(tx, backend, user_id, not_before, revoking).await
}

/// A row of `login_throttle`: the [`Counter`] of one (scope, key).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ThrottleRow {
    scope: String,
    key: String,
    window_start: i64,
    failures: i64,
    lockouts: i64,
    locked_until: i64,
    pending: i64,
    pending_since: i64,
}

bookstore_kit::columns!(ThrottleRow {
    scope,
    key,
    window_start,
    failures,
    lockouts,
    locked_until,
    pending,
    pending_since,
});

impl ThrottleRow {
    /// The columns an upsert replaces (all but the key).
    const COUNTER_COLUMNS: std::ops::RangeFrom<usize> = 2..;

    /// The row of `counter` (the pattern names every field: a new one is a compile error).
    fn new(scope: Scope, key: &str, counter: &Counter) -> ThrottleRow {
        let Counter {
            window_start,
            failures,
            lockouts,
            locked_until,
            pending,
            pending_since,
        } = *counter;
        ThrottleRow {
            scope: scope.as_str().to_owned(),
            key: key.to_owned(),
            window_start,
            failures,
            lockouts,
            locked_until,
            pending,
            pending_since,
        }
    }

    /// Its counter.
    fn counter(&self) -> Counter {
        Counter {
            window_start: self.window_start,
            failures: self.failures,
            lockouts: self.lockouts,
            locked_until: self.locked_until,
            pending: self.pending,
            pending_since: self.pending_since,
        }
    }
}

/// Makes the `n` counter rows bound as `(scope, key)` pairs if missing, locks them and returns
/// them (as [`ThrottleRow`]s). The no-op update is what locks and returns an existing row.
fn throttle_lock_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("(${}, ${}, 0, 0)", 2 * i + 1, 2 * i + 2))
        .collect();
    format!(
        "INSERT INTO login_throttle (scope, key, window_start, failures) VALUES {}
         ON CONFLICT (scope, key) DO UPDATE SET failures = login_throttle.failures
         RETURNING {}",
        rows.join(", "),
        ThrottleRow::select_list()
    )
}

/// Stores `n` counters, each bound as the [`ThrottleRow::args`] of its row.
fn throttle_store_sql(n: usize) -> String {
    let width = ThrottleRow::COLUMNS.len();
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let first = width * i + 1;
            let params: Vec<String> = (first..first + width).map(|p| format!("${p}")).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    let replaced: Vec<String> = ThrottleRow::COLUMNS[ThrottleRow::COUNTER_COLUMNS]
        .iter()
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    format!(
        "INSERT INTO login_throttle ({}) VALUES {}
         ON CONFLICT (scope, key) DO UPDATE SET {}",
        ThrottleRow::select_list(),
        rows.join(", "),
        replaced.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows written through their `columns!` lists (`args`, or a table's own INSERT) read back
    /// through the same lists as they were written, every field distinct: the column lists and
    /// the row mappings agree, on SQLite and, in the PostgreSQL pass, on PostgreSQL.
    #[tokio::test]
    async fn rows_read_back_as_they_were_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(&bookstore_testkit::database::database_url(
            dir.path(),
            "auth.db",
        ))
        .await
        .expect("database");

        let user = UserRow {
            id: "user-id".into(),
            username: "someone".into(),
            password_hash: "hash".into(),
            admin: true,
            create_time: 11,
            disabled: true,
            tokens_not_before: 12,
            session_epoch: 13,
        };
        db.insert_user(&user).await.expect("insert user");
        assert_eq!(db.user_by_name("someone").await.expect("read"), Some(user));

        let client = ClientRow {
            id: "client-id".into(),
            name: "a-client".into(),
            scopes: "books:read".into(),
            secret_hash: "secret".into(),
            previous_hash: Some("previous".into()),
            previous_until: Some(21),
            generation: 22,
            create_time: 23,
        };
        db.insert_client(&client).await.expect("insert client");
        assert_eq!(db.client("a-client").await.expect("read"), Some(client));

        let key = KeyRow {
            kid: "kid".into(),
            private_key: vec![1, 2, 3],
            create_time: 31,
            retire_time: None,
        };
        db.add_signing_key(&key, false).await.expect("add key");
        let keys = db.signing_keys().await.expect("keys");
        assert_eq!(
            keys.iter()
                .map(|k| (&k.kid, &k.private_key, k.create_time, k.retire_time))
                .collect::<Vec<_>>(),
            [(&key.kid, &key.private_key, 31, None)]
        );

        let counter = Counter {
            window_start: 41,
            failures: 42,
            lockouts: 43,
            locked_until: 44,
            pending: 45,
            pending_since: 46,
        };
        let keys = vec![(Scope::Pair, "pair-key".to_string())];
        db.update_throttle_counters(keys.clone(), move |counters, _| {
            counters[0] = counter;
            Ok(())
        })
        .await
        .expect("store counter");
        assert_eq!(db.throttle_counters(&keys).await.expect("read"), [counter]);
        db.0.close().await;
    }
}
