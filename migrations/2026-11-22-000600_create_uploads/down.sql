ALTER TABLE generations DROP COLUMN brand;
DROP TABLE brands;
DROP TABLE upload_tickets;
DROP TRIGGER upload_blobs_media_refs_change ON upload_blobs;
DROP FUNCTION upload_blobs_media_refs();
DROP TABLE assets;
DROP FUNCTION assets_blob_refs();
DROP TABLE upload_blobs;
