DROP TRIGGER images_blob_refs_change ON images;

CREATE OR REPLACE FUNCTION images_blob_refs() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO media_blobs (key, refs)
            SELECT k, count(*) FROM unnest(ARRAY[NEW.png_key, NEW.webp_320_key, NEW.webp_720_key,
                NEW.webp_full_key]) AS k GROUP BY k
        ON CONFLICT (key) DO UPDATE
            SET refs = media_blobs.refs + EXCLUDED.refs, updated_at = now();
    ELSE
        UPDATE media_blobs b SET refs = greatest(b.refs - d.n, 0), updated_at = now()
            FROM (SELECT k, count(*) AS n FROM unnest(ARRAY[OLD.png_key, OLD.webp_320_key,
                OLD.webp_720_key, OLD.webp_full_key]) AS k GROUP BY k) d
            WHERE b.key = d.k;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER images_blob_refs_change
    AFTER INSERT OR DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_blob_refs();

ALTER TABLE media_blobs DROP COLUMN public_refs;
