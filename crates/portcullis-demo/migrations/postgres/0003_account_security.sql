-- Account security: a confirmed email address (and one awaiting confirmation), the
-- TOTP secret sealed under a keyring subkey (pending until one code proves it), the
-- last TOTP step accepted (a step is accepted once), recovery codes as keyed hashes,
-- and the security events each user can see.
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN pending_email TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN pending_totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- An address belongs to one account. Addresses are stored lower-cased.
CREATE UNIQUE INDEX users_email ON users (email) WHERE email IS NOT NULL;

CREATE TABLE recovery_codes (
    user_id   BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE security_events (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    at         TEXT NOT NULL,
    ip         TEXT,
    request_id TEXT
);
CREATE INDEX security_events_user ON security_events (user_id, id DESC);
