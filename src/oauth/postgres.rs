//! [`GrantStore`] in the PostgreSQL database replicas share (`--journal-url`): a small pool of
//! its own on the journal's database, whose schema the journal's store brings up to date (the
//! tables are its migration 5) before the first call here. A code or refresh token is read
//! `FOR UPDATE`, so two replicas never redeem one twice.

use std::sync::atomic::{AtomicBool, Ordering};

use postgres::{GenericClient, NoTls, Row};
use r2d2_postgres::PostgresConnectionManager;

use super::store::{self, Code, Grant, GrantStore, Issued, Redeemed, RegisteredClient};
use crate::journal::{postgres::PgStore, Dialect, JobStore, Owner, StoreError};

const POOL_SIZE: u32 = 4;
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

pub(crate) struct PgGrants {
    url: String,
    /// Always `Some` but in `drop` (see there).
    pool: Option<Pool>,
    migrated: AtomicBool,
}

impl Drop for PgGrants {
    /// The `postgres` crate closes a connection by blocking on a runtime of its own, which
    /// panics on a tokio thread: the pool is dropped on a thread of its own (as the journal's).
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            std::thread::spawn(move || drop(pool));
        }
    }
}

fn sql(template: &str) -> String {
    Dialect::Postgres.render(template)
}

fn error(e: postgres::Error) -> StoreError {
    StoreError::Query(format!("the sign-in store: {e}"))
}

impl PgGrants {
    /// A store on the database at `url` (already checked by the journal's settings). Needs
    /// the database only when called.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse().map_err(error)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("runcomfy-mcp oauth");
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(PostgresConnectionManager::new(config, NoTls));
        Ok(Self {
            url: url.to_owned(),
            pool: Some(pool),
            migrated: AtomicBool::new(false),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        if !self.migrated.load(Ordering::Acquire) {
            let journal = PgStore::open(&self.url).map_err(|e| StoreError::Query(e.to_string()))?;
            journal.health()?;
            self.migrated.store(true, Ordering::Release);
        }
        let mut conn = self
            .pool
            .as_ref()
            .expect("the pool is taken only by drop")
            .get()
            .map_err(|e| StoreError::Unreachable {
                place: "the sign-in store's database".to_owned(),
                reason: e.to_string(),
            })?;
        let mut tx = conn.transaction().map_err(error)?;
        let out = f(&mut tx).map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(out)
    }
}

fn grant(tx: &mut impl GenericClient, grant_id: &str) -> Result<Option<Grant>, postgres::Error> {
    let row: Option<Row> = tx.query_opt(&sql(store::SELECT_GRANT), &[&grant_id])?;
    Ok(row.map(|r| Grant {
        grant_id: r.get(0),
        owner: Owner::from_stored(r.get::<_, String>(1)),
        client_id: r.get(2),
        resource: r.get(3),
        sealed_key: r.get(4),
        limits: store::limits_from(r.get(5), r.get(6)),
        confirm_above_usd: r.get(7),
    }))
}

fn delete(tx: &mut impl GenericClient, grant_id: &str) -> Result<(), postgres::Error> {
    for statement in store::DELETE_GRANT {
        tx.execute(&sql(statement), &[&grant_id])?;
    }
    Ok(())
}

fn insert_tokens(tx: &mut impl GenericClient, grant_id: &str, tokens: &Issued) -> Result<(), postgres::Error> {
    let insert = sql(store::INSERT_TOKEN);
    tx.execute(
        &insert,
        &[
            &tokens.access_hash,
            &grant_id,
            &store::ACCESS,
            &tokens.access_expires_at,
        ],
    )?;
    tx.execute(
        &insert,
        &[
            &tokens.refresh_hash,
            &grant_id,
            &store::REFRESH,
            &tokens.refresh_expires_at,
        ],
    )?;
    Ok(())
}

type TokenRow = (String, String, i64, Option<i64>);

fn token(tx: &mut impl GenericClient, hash: &str, lock: bool) -> Result<Option<TokenRow>, postgres::Error> {
    let mut query = sql(store::SELECT_TOKEN);
    if lock {
        query.push_str(" FOR UPDATE");
    }
    Ok(tx
        .query_opt(&query, &[&hash])?
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))))
}

impl GrantStore for PgGrants {
    fn save_client(&self, client: &RegisteredClient, now: i64) -> Result<(), StoreError> {
        self.with(|tx| {
            tx.execute(
                &sql(store::INSERT_CLIENT),
                &[
                    &client.client_id,
                    &client.client_name,
                    &store::uris_to_text(&client.redirect_uris),
                    &now,
                ],
            )
            .map(drop)
        })
    }

    fn client(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        self.with(|tx| {
            Ok(tx
                .query_opt(&sql(store::SELECT_CLIENT), &[&client_id])?
                .map(|r| RegisteredClient {
                    client_id: r.get(0),
                    client_name: r.get(1),
                    redirect_uris: store::uris_from_text(&r.get::<_, String>(2)),
                }))
        })
    }

    fn begin_grant(&self, grant: &Grant, code: &Code, now: i64) -> Result<(), StoreError> {
        self.with(|tx| {
            tx.execute(
                &sql(store::INSERT_GRANT),
                &[
                    &grant.grant_id,
                    &grant.owner.as_str(),
                    &grant.client_id,
                    &grant.resource,
                    &grant.sealed_key,
                    &grant.limits.max_spend_usd_per_day,
                    &grant.limits.max_jobs_per_hour.map(i64::from),
                    &now,
                    &grant.confirm_above_usd,
                ],
            )?;
            tx.execute(
                &sql(store::INSERT_CODE),
                &[
                    &code.code_hash,
                    &code.grant_id,
                    &code.client_id,
                    &code.redirect_uri,
                    &code.code_challenge,
                    &code.expires_at,
                ],
            )
            .map(drop)
        })
    }

    fn redeem_code(&self, code_hash: &str, now: i64) -> Result<Redeemed<(Code, Grant)>, StoreError> {
        self.with(|tx| {
            let row = tx.query_opt(&format!("{} FOR UPDATE", sql(store::SELECT_CODE)), &[&code_hash])?;
            let Some(r) = row else {
                return Ok(Redeemed::Unknown);
            };
            let code = Code {
                code_hash: code_hash.to_owned(),
                grant_id: r.get(0),
                client_id: r.get(1),
                redirect_uri: r.get(2),
                code_challenge: r.get(3),
                expires_at: r.get(4),
            };
            if r.get::<_, Option<i64>>(5).is_some() {
                delete(tx, &code.grant_id)?;
                return Ok(Redeemed::Reused);
            }
            if code.expires_at < now {
                return Ok(Redeemed::Unknown);
            }
            tx.execute(&sql(store::USE_CODE), &[&now, &code_hash])?;
            Ok(match grant(tx, &code.grant_id)? {
                Some(grant) => Redeemed::Fresh((code, grant)),
                None => Redeemed::Unknown,
            })
        })
    }

    fn issue(&self, grant_id: &str, tokens: &Issued) -> Result<(), StoreError> {
        self.with(|tx| insert_tokens(tx, grant_id, tokens))
    }

    fn refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        tokens: &Issued,
        now: i64,
    ) -> Result<Redeemed<Grant>, StoreError> {
        self.with(|tx| {
            let Some((grant_id, kind, expires_at, used_at)) = token(tx, refresh_hash, true)? else {
                return Ok(Redeemed::Unknown);
            };
            let Some(grant) = grant(tx, &grant_id)? else {
                return Ok(Redeemed::Unknown);
            };
            if kind != store::REFRESH || expires_at < now || grant.client_id != client_id {
                return Ok(Redeemed::Unknown);
            }
            if used_at.is_some() {
                delete(tx, &grant_id)?;
                return Ok(Redeemed::Reused);
            }
            tx.execute(&sql(store::USE_TOKEN), &[&now, &refresh_hash])?;
            insert_tokens(tx, &grant_id, tokens)?;
            Ok(Redeemed::Fresh(grant))
        })
    }

    fn grant_for_access(&self, access_hash: &str, now: i64) -> Result<Option<Grant>, StoreError> {
        self.with(|tx| match token(tx, access_hash, false)? {
            Some((grant_id, kind, expires_at, _)) if kind == store::ACCESS && expires_at >= now => grant(tx, &grant_id),
            _ => Ok(None),
        })
    }

    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.with(|tx| delete(tx, grant_id))
    }

    fn revoke(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.with(|tx| match token(tx, token_hash, true)? {
            Some((grant_id, ..)) => delete(tx, &grant_id).map(|()| true),
            None => Ok(false),
        })
    }

    fn revoke_owner(&self, owner: &Owner) -> Result<usize, StoreError> {
        self.with(|tx| {
            let ids: Vec<String> = tx
                .query(&sql(store::SELECT_OWNER_GRANTS), &[&owner.as_str()])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            for id in &ids {
                delete(tx, id)?;
            }
            Ok(ids.len())
        })
    }

    fn prune(&self, now: i64, grant_cutoff: i64) -> Result<(), StoreError> {
        self.with(|tx| {
            tx.execute(&sql(store::PRUNE[0]), &[&now])?;
            tx.execute(&sql(store::PRUNE[1]), &[&now])?;
            tx.execute(&sql(store::PRUNE[2]), &[&grant_cutoff]).map(drop)
        })
    }
}
