-- A username names one account whatever its case: `alice` and `Alice` cannot both
-- exist, and logging in looks names up by `lower(username)`, which this index serves.
-- Usernames are ASCII (the app refuses anything else), so SQLite's ASCII-only lower()
-- folds every one of them. A database that already holds two names differing only in
-- case stops this migration (and the app's start) with a uniqueness error: rename one
-- of them first.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
