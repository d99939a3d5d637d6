-- A stable number per user, unique and never reused (not even after a user is deleted): the
-- local spawner runs each user's server under a uid derived from it.
ALTER TABLE hub_users ADD COLUMN number INTEGER;
UPDATE hub_users SET number = (SELECT count(*) FROM hub_users AS o
    WHERE o.created_at < hub_users.created_at OR (o.created_at = hub_users.created_at AND o.name <= hub_users.name));
CREATE UNIQUE INDEX hub_users_number ON hub_users (number);

CREATE TABLE hub_sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO hub_sequences (name, value) SELECT 'user_number', count(*) FROM hub_users;
