//! [`GrantStore`] in the journal's SQLite file: its own connection to the same file (WAL lets
//! the journal's and this one share it), each change one `BEGIN IMMEDIATE` transaction. The file
//! is opened through the journal first, which migrates it (the tables are its migration 5).

use std::{path::Path, sync::Mutex, time::Duration};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use super::store::{self, Code, Grant, GrantStore, Issued, Redeemed, RegisteredClient};
use crate::journal::{location, Dialect, Owner, StoreError};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct SqliteGrants {
    conn: Mutex<Connection>,
}

/// A statement of [`store`] for SQLite.
fn sql(template: &str) -> String {
    Dialect::Sqlite.render(template)
}

fn error(e: rusqlite::Error) -> StoreError {
    StoreError::Query(format!("the sign-in store: {e}"))
}

impl SqliteGrants {
    /// The store in the journal file `file_name` in `dir`, which the journal opens (and
    /// migrates, or repairs) first.
    pub(crate) fn open(dir: &Path, file_name: &str) -> Result<Self, StoreError> {
        let (journal, path) = location::open_in(dir, file_name).map_err(StoreError::Query)?;
        drop(journal);
        let conn = Connection::open(path).map_err(error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(error)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(error)?;
        let out = f(&tx).map_err(error)?;
        tx.commit().map_err(error)?;
        Ok(out)
    }
}

fn grant(tx: &Connection, grant_id: &str) -> rusqlite::Result<Option<Grant>> {
    tx.query_row(&sql(store::SELECT_GRANT), params![grant_id], |r: &Row<'_>| {
        Ok(Grant {
            grant_id: r.get(0)?,
            owner: Owner::from_stored(r.get::<_, String>(1)?),
            client_id: r.get(2)?,
            resource: r.get(3)?,
            sealed_key: r.get(4)?,
            limits: store::limits_from(r.get(5)?, r.get(6)?),
            confirm_above_usd: r.get(7)?,
        })
    })
    .optional()
}

fn delete(tx: &Connection, grant_id: &str) -> rusqlite::Result<()> {
    for statement in store::DELETE_GRANT {
        tx.execute(&sql(statement), params![grant_id])?;
    }
    Ok(())
}

fn insert_tokens(tx: &Connection, grant_id: &str, tokens: &Issued) -> rusqlite::Result<()> {
    tx.execute(
        &sql(store::INSERT_TOKEN),
        params![tokens.access_hash, grant_id, store::ACCESS, tokens.access_expires_at],
    )?;
    tx.execute(
        &sql(store::INSERT_TOKEN),
        params![tokens.refresh_hash, grant_id, store::REFRESH, tokens.refresh_expires_at],
    )?;
    Ok(())
}

type TokenRow = (String, String, i64, Option<i64>);

fn token(tx: &Connection, hash: &str) -> rusqlite::Result<Option<TokenRow>> {
    tx.query_row(&sql(store::SELECT_TOKEN), params![hash], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .optional()
}

impl GrantStore for SqliteGrants {
    fn save_client(&self, client: &RegisteredClient, now: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                &sql(store::INSERT_CLIENT),
                params![
                    client.client_id,
                    client.client_name,
                    store::uris_to_text(&client.redirect_uris),
                    now
                ],
            )
            .map(drop)
        })
    }

    fn client(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(&sql(store::SELECT_CLIENT), params![client_id], |r| {
            Ok(RegisteredClient {
                client_id: r.get(0)?,
                client_name: r.get(1)?,
                redirect_uris: store::uris_from_text(&r.get::<_, String>(2)?),
            })
        })
        .optional()
        .map_err(error)
    }

    fn begin_grant(&self, grant: &Grant, code: &Code, now: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                &sql(store::INSERT_GRANT),
                params![
                    grant.grant_id,
                    grant.owner.as_str(),
                    grant.client_id,
                    grant.resource,
                    grant.sealed_key,
                    grant.limits.max_spend_usd_per_day,
                    grant.limits.max_jobs_per_hour.map(i64::from),
                    now,
                    grant.confirm_above_usd
                ],
            )?;
            tx.execute(
                &sql(store::INSERT_CODE),
                params![
                    code.code_hash,
                    code.grant_id,
                    code.client_id,
                    code.redirect_uri,
                    code.code_challenge,
                    code.expires_at
                ],
            )
            .map(drop)
        })
    }

    fn redeem_code(&self, code_hash: &str, now: i64) -> Result<Redeemed<(Code, Grant)>, StoreError> {
        self.write(|tx| {
            let row = tx
                .query_row(&sql(store::SELECT_CODE), params![code_hash], |r| {
                    Ok((
                        Code {
                            code_hash: code_hash.to_owned(),
                            grant_id: r.get(0)?,
                            client_id: r.get(1)?,
                            redirect_uri: r.get(2)?,
                            code_challenge: r.get(3)?,
                            expires_at: r.get(4)?,
                        },
                        r.get::<_, Option<i64>>(5)?,
                    ))
                })
                .optional()?;
            let Some((code, used_at)) = row else {
                return Ok(Redeemed::Unknown);
            };
            if used_at.is_some() {
                delete(tx, &code.grant_id)?;
                return Ok(Redeemed::Reused);
            }
            if code.expires_at < now {
                return Ok(Redeemed::Unknown);
            }
            tx.execute(&sql(store::USE_CODE), params![now, code_hash])?;
            Ok(match grant(tx, &code.grant_id)? {
                Some(grant) => Redeemed::Fresh((code, grant)),
                None => Redeemed::Unknown,
            })
        })
    }

    fn issue(&self, grant_id: &str, tokens: &Issued) -> Result<(), StoreError> {
        self.write(|tx| insert_tokens(tx, grant_id, tokens))
    }

    fn refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        tokens: &Issued,
        now: i64,
    ) -> Result<Redeemed<Grant>, StoreError> {
        self.write(|tx| {
            let Some((grant_id, kind, expires_at, used_at)) = token(tx, refresh_hash)? else {
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
            tx.execute(&sql(store::USE_TOKEN), params![now, refresh_hash])?;
            insert_tokens(tx, &grant_id, tokens)?;
            Ok(Redeemed::Fresh(grant))
        })
    }

    fn grant_for_access(&self, access_hash: &str, now: i64) -> Result<Option<Grant>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let found = (|| match token(&conn, access_hash)? {
            Some((grant_id, kind, expires_at, _)) if kind == store::ACCESS && expires_at >= now => {
                grant(&conn, &grant_id)
            }
            _ => Ok(None),
        })();
        found.map_err(error)
    }

    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.write(|tx| delete(tx, grant_id))
    }

    fn revoke(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.write(|tx| match token(tx, token_hash)? {
            Some((grant_id, ..)) => delete(tx, &grant_id).map(|()| true),
            None => Ok(false),
        })
    }

    fn revoke_owner(&self, owner: &Owner) -> Result<usize, StoreError> {
        self.write(|tx| {
            let ids = {
                let mut select = tx.prepare(&sql(store::SELECT_OWNER_GRANTS))?;
                let ids = select
                    .query_map(params![owner.as_str()], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                ids
            };
            for id in &ids {
                delete(tx, id)?;
            }
            Ok(ids.len())
        })
    }

    fn prune(&self, now: i64, grant_cutoff: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(&sql(store::PRUNE[0]), params![now])?;
            tx.execute(&sql(store::PRUNE[1]), params![now])?;
            tx.execute(&sql(store::PRUNE[2]), params![grant_cutoff]).map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Limits;

    /// A store in a fresh journal file; the directory lives as long as the store is used.
    fn fresh() -> (tempfile::TempDir, SqliteGrants) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteGrants::open(dir.path(), "journal.sqlite3").unwrap();
        (dir, store)
    }

    fn grant(id: &str, owner: &str) -> Grant {
        Grant {
            grant_id: id.into(),
            owner: Owner::from_stored(owner),
            client_id: "client".into(),
            resource: "http://127.0.0.1:1/mcp".into(),
            sealed_key: "sealed".into(),
            limits: Limits {
                max_spend_usd_per_day: Some(2.5),
                max_jobs_per_hour: Some(4),
            },
            confirm_above_usd: Some(0.25),
        }
    }

    fn code(hash: &str, grant_id: &str, expires_at: i64) -> Code {
        Code {
            code_hash: hash.into(),
            grant_id: grant_id.into(),
            client_id: "client".into(),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            code_challenge: "challenge".into(),
            expires_at,
        }
    }

    fn tokens(n: u32, now: i64) -> Issued {
        Issued {
            access_hash: format!("a{n}"),
            access_expires_at: now + 60,
            refresh_hash: format!("r{n}"),
            refresh_expires_at: now + 600,
        }
    }

    #[test]
    fn a_code_is_good_once_and_its_second_use_revokes_the_grant() {
        let (_dir, store) = fresh();
        store
            .begin_grant(&grant("g1", "alice"), &code("c1", "g1", 200), 100)
            .unwrap();
        let Redeemed::Fresh((found, g)) = store.redeem_code("c1", 150).unwrap() else {
            panic!("a fresh code")
        };
        assert_eq!(found.redirect_uri, "http://127.0.0.1:9/cb");
        assert_eq!(
            g,
            grant("g1", "alice"),
            "the grant, its limits and its confirm threshold read back"
        );
        store.issue("g1", &tokens(1, 150)).unwrap();
        assert!(store.grant_for_access("a1", 160).unwrap().is_some());
        assert_eq!(store.redeem_code("c1", 160).unwrap(), Redeemed::Reused);
        assert_eq!(
            store.grant_for_access("a1", 160).unwrap(),
            None,
            "revoked with its grant"
        );
        assert_eq!(store.redeem_code("nope", 160).unwrap(), Redeemed::Unknown);
        store
            .begin_grant(&grant("g2", "alice"), &code("c2", "g2", 200), 100)
            .unwrap();
        assert_eq!(store.redeem_code("c2", 201).unwrap(), Redeemed::Unknown, "expired");
    }

    #[test]
    fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_grant() {
        let (_dir, store) = fresh();
        store
            .begin_grant(&grant("g1", "alice"), &code("c1", "g1", 200), 100)
            .unwrap();
        store.issue("g1", &tokens(1, 100)).unwrap();
        assert_eq!(
            store.refresh("r1", "another client", &tokens(2, 110), 110).unwrap(),
            Redeemed::Unknown
        );
        assert!(matches!(
            store.refresh("r1", "client", &tokens(2, 110), 110).unwrap(),
            Redeemed::Fresh(_)
        ));
        assert!(store.grant_for_access("a2", 120).unwrap().is_some());
        assert_eq!(store.grant_for_access("a2", 171).unwrap(), None, "expired");
        assert_eq!(
            store.refresh("a2", "client", &tokens(3, 120), 120).unwrap(),
            Redeemed::Unknown,
            "not a refresh token"
        );
        assert_eq!(
            store.refresh("r1", "client", &tokens(3, 120), 120).unwrap(),
            Redeemed::Reused
        );
        assert_eq!(
            store.refresh("r2", "client", &tokens(4, 120), 120).unwrap(),
            Redeemed::Unknown,
            "revoked"
        );
    }

    #[test]
    fn revoking_any_token_or_the_owner_deletes_the_grant_and_pruning_forgets_the_expired() {
        let (_dir, store) = fresh();
        for (id, owner) in [("g1", "alice"), ("g2", "alice"), ("g3", "bob")] {
            store
                .begin_grant(&grant(id, owner), &code(&format!("c{id}"), id, 200), 100)
                .unwrap();
        }
        store.issue("g1", &tokens(1, 100)).unwrap();
        store.issue("g3", &tokens(3, 100)).unwrap();
        assert!(store.revoke("r1").unwrap());
        assert!(!store.revoke("r1").unwrap());
        assert_eq!(store.grant_for_access("a1", 100).unwrap(), None);
        assert_eq!(
            store.revoke_owner(&Owner::from_stored("alice")).unwrap(),
            1,
            "g2 is left of alice's"
        );
        assert!(store.grant_for_access("a3", 100).unwrap().is_some(), "bob's untouched");
        store.prune(10_000, 10_000).unwrap();
        let conn = store.conn.lock().unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM oauth_grants", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "expired tokens and codes, then the grants with nothing live");
    }
}
