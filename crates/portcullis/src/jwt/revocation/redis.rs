//! Refresh families and revocations in Redis, shared by every instance of an app.

use fred::types::scripts::Script;
use futures_util::future::BoxFuture;

use super::{RefreshUse, RevocationError, RevocationStore};
use crate::jwt::Claims;
use crate::redis::{lua_extend, script, Failure, RedisConnection};

/// Whether a token is revoked. KEYS: `fam:{family}`, `user:{user}`. ARGV: the token's
/// `sub`. 1 when revoked: an unknown family too (see `RevocationStore::is_revoked`).
const IS_REVOKED: &str = r"
local f = redis.call('HMGET', KEYS[1], 'user', 'gen', 'rev')
if not f[1] then return 1 end
if f[1] ~= ARGV[1] or f[3] == '1' then return 1 end
local ugen = tonumber(redis.call('HGET', KEYS[2], 'gen')) or 0
if (tonumber(f[2]) or 0) < ugen then return 1 end
return 0
";

/// Starts a family at the user's generation and revokes the user's oldest live
/// families beyond the cap. KEYS: `fam:{family}`, `user:{user}`, `ufam:{user}` (the
/// user's families by start time). ARGV: user, refresh jti, until (Unix s), cap, the
/// family id, the family keys' prefix.
const START_FAMILY: &str = concat!(
    lua_extend!(),
    r"
local gen = tonumber(redis.call('HGET', KEYS[2], 'gen')) or 0
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'cur', ARGV[2], 'gen', gen, 'rev', 0)
redis.call('EXPIREAT', KEYS[1], ARGV[3])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000000 + tonumber(t[2]), ARGV[5])
local live = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  local f = redis.call('HMGET', ARGV[6] .. m, 'rev', 'gen')
  if f[1] == '0' and tonumber(f[2]) == gen then
    table.insert(live, m)
  else
    redis.call('ZREM', KEYS[3], m)
  end
end
for i = 1, #live - tonumber(ARGV[4]) do
  redis.call('HSET', ARGV[6] .. live[i], 'rev', 1)
  redis.call('ZREM', KEYS[3], live[i])
end
extend(KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then extend(KEYS[2], ARGV[3]) end
return 1
"
);

/// One refresh step. KEYS: `fam:{family}`, `user:{user}`, `ufam:{user}`. ARGV: user,
/// presented jti, next jti, until (Unix s). 0 fresh, 1 reused (now revoked), 2 revoked.
const ROTATE_REFRESH: &str = concat!(
    lua_extend!(),
    r"
local f = redis.call('HMGET', KEYS[1], 'user', 'cur', 'gen', 'rev')
if not f[1] or f[1] ~= ARGV[1] or f[4] == '1' then return 2 end
local ugen = tonumber(redis.call('HGET', KEYS[2], 'gen')) or 0
if (tonumber(f[3]) or 0) < ugen then
  redis.call('HSET', KEYS[1], 'rev', 1)
  return 2
end
if f[2] ~= ARGV[2] then
  redis.call('HSET', KEYS[1], 'rev', 1)
  return 1
end
redis.call('HSET', KEYS[1], 'cur', ARGV[3])
extend(KEYS[1], ARGV[4])
extend(KEYS[3], ARGV[4])
if redis.call('EXISTS', KEYS[2]) == 1 then extend(KEYS[2], ARGV[4]) end
return 0
"
);

/// Revokes a family, remembering it even when it is unknown. KEYS: `fam:{family}`,
/// `user:{user}`. ARGV: user, until (Unix s).
const REVOKE_FAMILY: &str = concat!(
    lua_extend!(),
    r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'user', ARGV[1], 'cur', '', 'gen', 0)
end
redis.call('HSET', KEYS[1], 'rev', 1)
extend(KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then extend(KEYS[2], ARGV[2]) end
return 1
"
);

/// Revokes a user: a new generation (every family begun before is revoked) and a
/// not-before on Redis's clock, for families no longer known. KEYS: `user:{user}`,
/// `ufam:{user}`. ARGV: until (Unix s).
const REVOKE_USER: &str = concat!(
    lua_extend!(),
    r"
local t = redis.call('TIME')
local nbf = tonumber(t[1]) + 1
redis.call('HINCRBY', KEYS[1], 'gen', 1)
local old = tonumber(redis.call('HGET', KEYS[1], 'nbf')) or 0
if nbf > old then redis.call('HSET', KEYS[1], 'nbf', nbf) end
extend(KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"
);

/// Refresh families and revocations in Redis, shared by every instance:
/// `{prefix}:fam:{family}` (a hash: user, current refresh id, generation, revoked),
/// `{prefix}:user:{user}` (a hash: revocation generation, not-before) and
/// `{prefix}:ufam:{user}` (the user's live families, for the per-user cap), each until
/// the last token it concerns has expired. So the key count follows the live logins,
/// not the number of refreshes. Every operation is one script, so two instances
/// presenting the same refresh token at once get one `Fresh` between them, and a
/// refresh racing a user's revocation loses to it.
///
/// ```no_run
/// # async fn run(redis: portcullis::redis::RedisConnection, config: portcullis::jwt::JwtConfig, keys: portcullis::jwt::JwtKeys) {
/// use std::sync::Arc;
/// use portcullis::jwt::Jwt;
///
/// let jwt = Jwt::new(config, keys, Arc::new(redis.revocations()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisRevocationStore {
    backend: RedisConnection,
}

fn revocation_error(failure: Failure) -> RevocationError {
    RevocationError::unavailable(failure)
}

/// A script answered what it never returns: the keys were written by something else.
fn corrupt(script: &str, answer: i64) -> RevocationError {
    RevocationError::Corrupt {
        detail: format!("Redis: {script} answered {answer}"),
    }
}

impl RedisRevocationStore {
    /// The store on `connection` (what [`RedisConnection::revocations`] returns).
    pub fn new(connection: RedisConnection) -> Self {
        Self {
            backend: connection,
        }
    }

    /// The keys a family's scripts take: the family, its user, the user's families.
    fn family_keys(&self, user: &str, family: &str) -> Vec<String> {
        vec![
            self.backend.key("fam", family),
            self.backend.key("user", user),
            self.backend.key("ufam", user),
        ]
    }

    async fn run(
        &self,
        script: &Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<i64, RevocationError> {
        self.backend
            .script::<i64>(script, keys, args)
            .await
            .map_err(revocation_error)
    }
}

impl RevocationStore for RedisRevocationStore {
    fn is_revoked<'a>(
        &'a self,
        claims: &'a Claims,
    ) -> BoxFuture<'a, Result<bool, RevocationError>> {
        Box::pin(async move {
            let keys = vec![
                self.backend.key("fam", &claims.fam),
                self.backend.key("user", &claims.sub),
            ];
            let args = vec![claims.sub.clone()];
            match self.run(script!(IS_REVOKED), keys, args).await? {
                0 => Ok(false),
                1 => Ok(true),
                other => Err(corrupt("IS_REVOKED", other)),
            }
        })
    }

    fn start_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        refresh_jti: &'a str,
        until: i64,
        max_per_user: usize,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        Box::pin(async move {
            let keys = self.family_keys(user, family);
            let args = vec![
                user.to_owned(),
                refresh_jti.to_owned(),
                until.to_string(),
                max_per_user.max(1).to_string(),
                family.to_owned(),
                self.backend.key("fam", ""),
            ];
            self.run(script!(START_FAMILY), keys, args).await?;
            Ok(())
        })
    }

    fn rotate_refresh<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        presented: &'a str,
        next: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<RefreshUse, RevocationError>> {
        Box::pin(async move {
            let keys = self.family_keys(user, family);
            let args = vec![
                user.to_owned(),
                presented.to_owned(),
                next.to_owned(),
                until.to_string(),
            ];
            match self.run(script!(ROTATE_REFRESH), keys, args).await? {
                0 => Ok(RefreshUse::Fresh),
                1 => Ok(RefreshUse::Reused),
                2 => Ok(RefreshUse::Revoked),
                other => Err(corrupt("ROTATE_REFRESH", other)),
            }
        })
    }

    fn revoke_family<'a>(
        &'a self,
        user: &'a str,
        family: &'a str,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        Box::pin(async move {
            let keys = vec![
                self.backend.key("fam", family),
                self.backend.key("user", user),
            ];
            self.run(
                script!(REVOKE_FAMILY),
                keys,
                vec![user.to_owned(), until.to_string()],
            )
            .await?;
            Ok(())
        })
    }

    fn revoke_user<'a>(
        &'a self,
        user: &'a str,
        _not_before: i64,
        until: i64,
    ) -> BoxFuture<'a, Result<(), RevocationError>> {
        // The not-before is taken from Redis's clock inside the script, so that the
        // instances' clocks do not matter.
        Box::pin(async move {
            let keys = vec![
                self.backend.key("user", user),
                self.backend.key("ufam", user),
            ];
            self.run(script!(REVOKE_USER), keys, vec![until.to_string()])
                .await?;
            Ok(())
        })
    }
}
