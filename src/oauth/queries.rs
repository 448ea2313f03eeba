//! The sign-in store's logic, written once over the journal's plumbing ([`Database`]: a
//! connection for reads, write transactions) with the statements of [`super::store`]: the
//! journal's SQLite file and its PostgreSQL database are each a [`GrantStore`] by this one
//! implementation. Each change is one transaction; a code or refresh token is read locked
//! (`{lock_row}`), so two replicas never redeem one twice.

use super::store::{self, Code, Grant, GrantStore, Issued, Redeemed, RegisteredClient};
use crate::journal::{
    sql::{values, Database, Row, Session, Tx},
    Owner, StoreError,
};

impl<D: Database> GrantStore for D {
    fn save_client(&self, client: &RegisteredClient, now: i64) -> Result<(), StoreError> {
        self.write(|mut tx| {
            tx.execute(
                store::INSERT_CLIENT,
                values![
                    &client.client_id,
                    client.client_name.as_deref(),
                    store::uris_to_text(&client.redirect_uris),
                    now
                ],
            )?;
            tx.commit()
        })
    }

    fn client(&self, client_id: &str) -> Result<Option<RegisteredClient>, StoreError> {
        self.read(|s| {
            let Some(row) = one(s.query(store::SELECT_CLIENT, values![client_id])?) else {
                return Ok(None);
            };
            let mut cells = row.cells();
            Ok(Some(RegisteredClient {
                client_id: cells.text()?,
                client_name: cells.opt_text()?,
                redirect_uris: store::uris_from_text(&cells.text()?),
            }))
        })
    }

    fn begin_grant(&self, grant: &Grant, code: &Code, now: i64) -> Result<(), StoreError> {
        self.write(|mut tx| {
            tx.execute(
                store::INSERT_GRANT,
                values![
                    &grant.grant_id,
                    grant.owner.as_str(),
                    &grant.client_id,
                    &grant.resource,
                    &grant.sealed_key,
                    grant.limits.max_spend_usd_per_day,
                    grant.limits.max_jobs_per_hour,
                    now,
                    grant.confirm_above_usd
                ],
            )?;
            tx.execute(
                store::INSERT_CODE,
                values![
                    &code.code_hash,
                    &code.grant_id,
                    &code.client_id,
                    &code.redirect_uri,
                    &code.code_challenge,
                    code.expires_at
                ],
            )?;
            tx.commit()
        })
    }

    fn redeem_code(&self, code_hash: &str, now: i64) -> Result<Redeemed<(Code, Grant)>, StoreError> {
        self.write(|mut tx| {
            let Some(row) = one(tx.query(store::SELECT_CODE, values![code_hash])?) else {
                return Ok(Redeemed::Unknown);
            };
            let mut cells = row.cells();
            let code = Code {
                code_hash: code_hash.to_owned(),
                grant_id: cells.text()?,
                client_id: cells.text()?,
                redirect_uri: cells.text()?,
                code_challenge: cells.text()?,
                expires_at: cells.int()?,
            };
            let used_at = cells.opt_int()?;
            let redeemed = if used_at.is_some() {
                delete(&mut tx, &code.grant_id)?;
                Redeemed::Reused
            } else if code.expires_at < now {
                Redeemed::Unknown
            } else {
                tx.execute(store::USE_CODE, values![now, code_hash])?;
                match grant(&mut tx, &code.grant_id)? {
                    Some(grant) => Redeemed::Fresh((code, grant)),
                    None => Redeemed::Unknown,
                }
            };
            tx.commit()?;
            Ok(redeemed)
        })
    }

    fn issue(&self, grant_id: &str, tokens: &Issued) -> Result<(), StoreError> {
        self.write(|mut tx| {
            insert_tokens(&mut tx, grant_id, tokens)?;
            tx.commit()
        })
    }

    fn refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        tokens: &Issued,
        now: i64,
    ) -> Result<Redeemed<Grant>, StoreError> {
        self.write(|mut tx| {
            let Some(found) = token(&mut tx, store::SELECT_TOKEN_LOCKED, refresh_hash)? else {
                return Ok(Redeemed::Unknown);
            };
            let Some(grant) = grant(&mut tx, &found.grant_id)? else {
                return Ok(Redeemed::Unknown);
            };
            if found.kind != store::REFRESH || found.expires_at < now || grant.client_id != client_id {
                return Ok(Redeemed::Unknown);
            }
            let redeemed = if found.used_at.is_some() {
                delete(&mut tx, &found.grant_id)?;
                Redeemed::Reused
            } else {
                tx.execute(store::USE_TOKEN, values![now, refresh_hash])?;
                insert_tokens(&mut tx, &found.grant_id, tokens)?;
                Redeemed::Fresh(grant)
            };
            tx.commit()?;
            Ok(redeemed)
        })
    }

    fn grant_for_access(&self, access_hash: &str, now: i64) -> Result<Option<Grant>, StoreError> {
        self.read(|s| match token(s, store::SELECT_TOKEN, access_hash)? {
            Some(found) if found.kind == store::ACCESS && found.expires_at >= now => grant(s, &found.grant_id),
            _ => Ok(None),
        })
    }

    fn delete_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.write(|mut tx| {
            delete(&mut tx, grant_id)?;
            tx.commit()
        })
    }

    fn revoke(&self, token_hash: &str) -> Result<bool, StoreError> {
        self.write(|mut tx| {
            let Some(found) = token(&mut tx, store::SELECT_TOKEN_LOCKED, token_hash)? else {
                return Ok(false);
            };
            delete(&mut tx, &found.grant_id)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn revoke_owner(&self, owner: &Owner) -> Result<usize, StoreError> {
        self.write(|mut tx| {
            let ids = tx
                .query(store::SELECT_OWNER_GRANTS, values![owner.as_str()])?
                .into_iter()
                .map(|row| row.cells().text())
                .collect::<Result<Vec<_>, _>>()?;
            for id in &ids {
                delete(&mut tx, id)?;
            }
            tx.commit()?;
            Ok(ids.len())
        })
    }

    fn prune(&self, now: i64, grant_cutoff: i64) -> Result<(), StoreError> {
        self.write(|mut tx| {
            tx.execute(store::PRUNE[0], values![now])?;
            tx.execute(store::PRUNE[1], values![now])?;
            tx.execute(store::PRUNE[2], values![grant_cutoff])?;
            tx.commit()
        })
    }
}

/// A row of [`store::SELECT_TOKEN`].
struct TokenRow {
    grant_id: String,
    kind: String,
    expires_at: i64,
    used_at: Option<i64>,
}

/// The token with digest `hash`, read by `select` ([`store::SELECT_TOKEN`] or its locked twin).
fn token(s: &mut impl Session, select: &str, hash: &str) -> Result<Option<TokenRow>, StoreError> {
    let Some(row) = one(s.query(select, values![hash])?) else {
        return Ok(None);
    };
    let mut cells = row.cells();
    Ok(Some(TokenRow {
        grant_id: cells.text()?,
        kind: cells.text()?,
        expires_at: cells.int()?,
        used_at: cells.opt_int()?,
    }))
}

fn grant(s: &mut impl Session, grant_id: &str) -> Result<Option<Grant>, StoreError> {
    let Some(row) = one(s.query(store::SELECT_GRANT, values![grant_id])?) else {
        return Ok(None);
    };
    let mut cells = row.cells();
    Ok(Some(Grant {
        grant_id: cells.text()?,
        owner: Owner::from_stored(cells.text()?),
        client_id: cells.text()?,
        resource: cells.text()?,
        sealed_key: cells.text()?,
        limits: store::limits_from(cells.opt_real()?, cells.opt_int()?),
        confirm_above_usd: cells.opt_real()?,
    }))
}

/// A grant, its code and its tokens.
fn delete(tx: &mut impl Tx, grant_id: &str) -> Result<(), StoreError> {
    for statement in store::DELETE_GRANT {
        tx.execute(statement, values![grant_id])?;
    }
    Ok(())
}

fn insert_tokens(tx: &mut impl Tx, grant_id: &str, tokens: &Issued) -> Result<(), StoreError> {
    tx.execute(
        store::INSERT_TOKEN,
        values![&tokens.access_hash, grant_id, store::ACCESS, tokens.access_expires_at],
    )?;
    tx.execute(
        store::INSERT_TOKEN,
        values![
            &tokens.refresh_hash,
            grant_id,
            store::REFRESH,
            tokens.refresh_expires_at
        ],
    )?;
    Ok(())
}

/// The first row of a statement that selects at most one.
fn one(rows: Vec<Row>) -> Option<Row> {
    rows.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{location, postgres::PgStore, store_tests::pg::Cluster, Limits};

    /// Each test once per database, in modules `sqlite` (a fresh journal file) and `postgres` (a
    /// throwaway cluster, where PostgreSQL is installed), as the journal's own store tests.
    macro_rules! on_every_database {
        ($($test:ident),* $(,)?) => {
            mod sqlite {
                $(
                    #[test]
                    fn $test() {
                        let dir = tempfile::tempdir().unwrap();
                        let (store, _) = super::location::open_in(dir.path(), "journal.sqlite3").unwrap();
                        super::$test(&store)
                    }
                )*
            }
            mod postgres {
                $(
                    #[test]
                    fn $test() {
                        if let Some(cluster) = super::Cluster::start(concat!("oauth_", stringify!($test))) {
                            super::$test(&super::PgStore::lazily(&cluster.socket_url(), "test", 2).unwrap())
                        }
                    }
                )*
            }
        };
    }

    on_every_database!(
        a_code_is_good_once_and_its_second_use_revokes_the_grant,
        refresh_tokens_rotate_and_a_replayed_one_revokes_the_grant,
        revoking_any_token_or_the_owner_deletes_the_grant_and_pruning_forgets_the_expired,
    );

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

    fn a_code_is_good_once_and_its_second_use_revokes_the_grant(store: &impl Database) {
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

    fn refresh_tokens_rotate_and_a_replayed_one_revokes_the_grant(store: &impl Database) {
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

    fn revoking_any_token_or_the_owner_deletes_the_grant_and_pruning_forgets_the_expired(store: &impl Database) {
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
        let left = store
            .read(|s| {
                s.query("SELECT COUNT(*) FROM {prefix}oauth_grants", &[])?
                    .remove(0)
                    .cells()
                    .int()
            })
            .unwrap();
        assert_eq!(left, 0, "expired tokens and codes, then the grants with nothing live");
    }
}
