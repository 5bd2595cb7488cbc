DROP INDEX generations_user_created_idx;
ALTER TABLE generations DROP COLUMN user_id;
ALTER TABLE users DROP COLUMN storage_bytes;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
