-- A username names one account whatever its case: `alice` and `Alice` cannot both
-- exist, and logging in looks names up by `lower(username)`, which this index serves.
-- The same index as the SQLite migration of the same number; keep the two in step.
-- Usernames are ASCII (the app refuses anything else), so lower() folds them alike
-- under every collation. A database that already holds two names differing only in
-- case stops this migration (and the app's start) with a uniqueness error: rename one
-- of them first.
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
