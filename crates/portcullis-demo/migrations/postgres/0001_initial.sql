-- Users, comments and uploaded-file metadata: the same tables as the SQLite
-- migration of the same number, in PostgreSQL's types. Keep the two in step.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE comments (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_newest ON comments (created_at DESC, id DESC);

-- File ids are random 128-bit values, never sequential.
CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    owner_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    storage_name TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, created_at DESC);
