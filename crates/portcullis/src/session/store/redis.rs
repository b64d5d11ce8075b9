//! [`RedisSessionStore`]: sessions in Redis, shared by every instance of an app.

use fred::interfaces::KeysInterface as _;
use futures_util::future::BoxFuture;

use super::{SessionStore, SessionStoreError};
use crate::redis::{script, Failure, RedisConnection};
use crate::session::record::SessionRecord;

/// Saves a record and adds it to its user's index, whose TTL becomes the latest
/// expiry of the user's sessions. KEYS: the record, the user's index (absent for an
/// anonymous session). ARGV: the JSON, the expiry (Unix ms), the index member, and
/// `XX` to write only a record that still exists (`SET … XX`: the check and the
/// write are one step) or `ANY`. Returns 1 when written, 0 when the record was gone
/// (ended while a request of it was in flight).
const SAVE_SESSION: &str = r"
if ARGV[4] == 'XX' then
  if not redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'XX') then return 0 end
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[3])
  local pttl = redis.call('PTTL', KEYS[2])
  local time = redis.call('TIME')
  local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  if pttl < 0 or now + pttl < tonumber(ARGV[2]) then
    redis.call('PEXPIREAT', KEYS[2], ARGV[2])
  end
end
return 1
";

/// Deletes a record and its entry in its user's index. KEYS: the record. ARGV: the
/// index key's prefix, the index member.
const DELETE_SESSION: &str = r"
local json = redis.call('GET', KEYS[1])
if not json then return 0 end
local ok, record = pcall(cjson.decode, json)
if ok and type(record) == 'table' and type(record.user_id) == 'number' then
  redis.call('SREM', ARGV[1] .. string.format('%.0f', record.user_id), ARGV[2])
end
return redis.call('DEL', KEYS[1])
";

/// Deletes every session of a user but one; returns how many went. Members whose
/// record expired, or no longer belongs to the user, leave the index. KEYS: the index.
/// ARGV: the record keys' prefix, the member to spare (or ''), the user id.
const DELETE_USER_SESSIONS: &str = r"
local user = ARGV[3]
local removed = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if member ~= ARGV[2] then
    local key = ARGV[1] .. member
    local json = redis.call('GET', key)
    if json then
      local ok, record = pcall(cjson.decode, json)
      if ok and type(record) == 'table' and type(record.user_id) == 'number'
          and string.format('%.0f', record.user_id) == user then
        redis.call('DEL', key)
        removed = removed + 1
      end
    end
    redis.call('SREM', KEYS[1], member)
  end
end
return removed
";

/// Every live session of a user, as key and JSON pairs in one flat array; members
/// whose record expired, or no longer belongs to the user, leave the index. KEYS: the
/// index. ARGV: the record keys' prefix, the user id.
///
/// The owner is read from the JSON's text, not through `cjson`: Lua numbers are
/// doubles, under which two ids above 2^53 can compare equal, and ending a session
/// must never take one user for another. A record's JSON begins with its `user_id`
/// (the field's place in [`SessionRecord`], checked by a test below).
const LIST_USER_SESSIONS: &str = r#"
local user = ARGV[2]
local found = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local json = redis.call('GET', ARGV[1] .. member)
  if json and string.match(json, '^{"user_id":(%-?%d+)[,}]') == user then
    found[#found + 1] = member
    found[#found + 1] = json
  else
    redis.call('SREM', KEYS[1], member)
  end
end
return found
"#;

/// Deletes a record only if it belongs to the user: the check and the delete in one
/// script, so atomic. KEYS: the record, the user's index. ARGV: the user id, the
/// index member. Returns 1 when deleted, 0 when the record is gone or another's.
const DELETE_SESSION_OF_USER: &str = r#"
local json = redis.call('GET', KEYS[1])
if not json or string.match(json, '^{"user_id":(%-?%d+)[,}]') ~= ARGV[1] then
  return 0
end
redis.call('SREM', KEYS[2], ARGV[2])
return redis.call('DEL', KEYS[1])
"#;

/// Sessions in Redis: each record as JSON under `{prefix}:sess:{key}` until its
/// expiry (`PXAT`, to the millisecond), and a set per user, `{prefix}:sessuser:{id}`,
/// of the user's session keys, so that [`SessionStore::delete_user`] finds them
/// without a scan. [`RedisConnection::sessions`] hands one out.
///
/// ```no_run
/// # async fn run(redis: portcullis::redis::RedisConnection, keyring: portcullis::keys::Keyring) {
/// use std::sync::Arc;
/// use portcullis::session::SessionConfig;
///
/// let layer = SessionConfig::default().layer(&keyring, Arc::new(redis.sessions()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    connection: RedisConnection,
}

impl RedisSessionStore {
    /// The store on `connection` (what [`RedisConnection::sessions`] hands out).
    pub fn new(connection: RedisConnection) -> Self {
        Self { connection }
    }

    /// Runs `script` (one of the Lua scripts above) and reads its integer answer.
    async fn run_script(
        &self,
        script: &fred::types::scripts::Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<i64, SessionStoreError> {
        self.connection
            .script(script, keys, args)
            .await
            .map_err(|failure| self.error(failure))
    }

    fn error(&self, failure: Failure) -> SessionStoreError {
        match failure {
            Failure::Timeout => SessionStoreError::Timeout(self.connection.timeout()),
            Failure::Redis(reason) => SessionStoreError::unavailable(format!("Redis: {reason}")),
        }
    }

    /// Runs [`SAVE_SESSION`]; `mode` is `XX` (only an existing record) or `ANY`.
    async fn write(
        &self,
        key: &str,
        record: &SessionRecord,
        expires_at: i64,
        mode: &str,
    ) -> Result<bool, SessionStoreError> {
        let mut keys = vec![self.record_key(key)];
        if let Some(user_id) = record.user_id {
            keys.push(self.user_index(user_id));
        }
        let args = vec![
            record.to_json()?,
            expires_at.to_string(),
            key.to_owned(),
            mode.to_owned(),
        ];
        Ok(self.run_script(script!(SAVE_SESSION), keys, args).await? == 1)
    }

    /// `{prefix}:sess:{key}`: the record (with an empty `key`, the prefix of them all).
    fn record_key(&self, key: &str) -> String {
        self.connection.key("sess", key)
    }

    /// `{prefix}:sessuser:{id}`: the user's session keys.
    fn user_index(&self, user_id: i64) -> String {
        self.connection.key("sessuser", &user_id.to_string())
    }
}

impl SessionStore for RedisSessionStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionRecord>, SessionStoreError>> {
        Box::pin(async move {
            let json: Option<String> = self
                .connection
                .run(self.connection.client().get(self.record_key(key)))
                .await
                .map_err(|failure| self.error(failure))?;
            Ok(json.and_then(|json| SessionRecord::from_json(&json)))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            self.write(key, record, expires_at, "ANY").await?;
            Ok(())
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        record: &'a SessionRecord,
        expires_at: i64,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        Box::pin(self.write(key, record, expires_at, "XX"))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SessionStoreError>> {
        Box::pin(async move {
            let keys = vec![self.record_key(key)];
            let args = vec![self.connection.key("sessuser", ""), key.to_owned()];
            self.run_script(script!(DELETE_SESSION), keys, args).await?;
            Ok(())
        })
    }

    fn delete_user<'a>(
        &'a self,
        user_id: i64,
        except: Option<&'a str>,
    ) -> BoxFuture<'a, Result<u64, SessionStoreError>> {
        Box::pin(async move {
            let keys = vec![self.user_index(user_id)];
            let args = vec![
                self.record_key(""),
                except.unwrap_or_default().to_owned(),
                user_id.to_string(),
            ];
            let removed = self
                .run_script(script!(DELETE_USER_SESSIONS), keys, args)
                .await?;
            Ok(u64::try_from(removed).unwrap_or_default())
        })
    }

    fn list_user<'a>(
        &'a self,
        user_id: i64,
    ) -> BoxFuture<'a, Result<Vec<(String, SessionRecord)>, SessionStoreError>> {
        Box::pin(async move {
            let keys = vec![self.user_index(user_id)];
            let args = vec![self.record_key(""), user_id.to_string()];
            let flat: Vec<String> = self
                .connection
                .script(script!(LIST_USER_SESSIONS), keys, args)
                .await
                .map_err(|failure| self.error(failure))?;
            Ok(flat
                .chunks_exact(2)
                .filter_map(|pair| {
                    let record = SessionRecord::from_json(&pair[1])?;
                    (record.user_id == Some(user_id)).then(|| (pair[0].clone(), record))
                })
                .collect())
        })
    }

    fn delete_of_user<'a>(
        &'a self,
        user_id: i64,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, SessionStoreError>> {
        Box::pin(async move {
            let keys = vec![self.record_key(key), self.user_index(user_id)];
            let args = vec![user_id.to_string(), key.to_owned()];
            Ok(self
                .run_script(script!(DELETE_SESSION_OF_USER), keys, args)
                .await?
                == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts that end or list one user's sessions read the owner from the start
    /// of the record's JSON.
    #[test]
    fn a_records_json_begins_with_its_user() {
        let mut record = SessionRecord::begun_now(Some(9_007_199_254_740_993));
        record.data.insert("user_id".into(), "1".into());
        assert!(record
            .to_json()
            .unwrap()
            .starts_with(r#"{"user_id":9007199254740993,"#));
        let anonymous = SessionRecord::begun_now(None).to_json().unwrap();
        assert!(anonymous.starts_with(r#"{"user_id":null,"#));
    }
}
