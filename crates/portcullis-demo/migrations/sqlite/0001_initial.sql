-- Users, comments and uploaded-file metadata. Password hashes are PHC strings.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX comments_newest ON comments (created_at DESC, id DESC);

-- File ids are random 128-bit values, never sequential.
CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    owner_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    storage_name TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, created_at DESC);
