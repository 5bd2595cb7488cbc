DROP TABLE trend_imports;
DROP TRIGGER images_blob_refs_change ON images;
DROP FUNCTION images_blob_refs();
DROP TABLE media_blobs;
DROP TRIGGER image_ratings_totals_change ON image_ratings;
DROP FUNCTION image_ratings_totals();
DROP TABLE image_ratings;
CREATE INDEX images_created_at_id_idx ON images (created_at DESC, id DESC);
DROP INDEX images_public_created_idx;
DROP INDEX images_owner_created_idx;
ALTER TABLE images DROP COLUMN rating_sum, DROP COLUMN rating_count, DROP COLUMN public,
    DROP COLUMN user_id;
ALTER TABLE users DROP COLUMN is_admin;
