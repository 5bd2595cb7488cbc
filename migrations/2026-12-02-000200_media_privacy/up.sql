-- Media privacy: `/media/` answers a file that a shared image uses as public and immutable,
-- and every other file as private, so `media_blobs` also counts the shared images using each
-- key. Unsharing moves an image to new keys (the old URL stops working; see
-- app::gallery::service::share), so an UPDATE of an image's keys or of `public` now moves
-- its references as well.
ALTER TABLE media_blobs
    ADD COLUMN public_refs INTEGER NOT NULL DEFAULT 0 CHECK (public_refs >= 0);

CREATE OR REPLACE FUNCTION images_blob_refs() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE media_blobs b SET refs = greatest(b.refs - d.n, 0),
                public_refs = CASE WHEN OLD.public THEN greatest(b.public_refs - d.n, 0)
                    ELSE b.public_refs END,
                updated_at = now()
            FROM (SELECT k, count(*) AS n FROM unnest(ARRAY[OLD.png_key, OLD.webp_320_key,
                OLD.webp_720_key, OLD.webp_full_key]) AS k GROUP BY k) d
            WHERE b.key = d.k;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO media_blobs (key, refs, public_refs)
            SELECT k, count(*), CASE WHEN NEW.public THEN count(*) ELSE 0 END
            FROM unnest(ARRAY[NEW.png_key, NEW.webp_320_key, NEW.webp_720_key,
                NEW.webp_full_key]) AS k GROUP BY k
        ON CONFLICT (key) DO UPDATE
            SET refs = media_blobs.refs + EXCLUDED.refs,
                public_refs = media_blobs.public_refs + EXCLUDED.public_refs,
                updated_at = now();
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER images_blob_refs_change ON images;
CREATE TRIGGER images_blob_refs_change
    AFTER INSERT OR DELETE
        OR UPDATE OF png_key, webp_320_key, webp_720_key, webp_full_key, public
    ON images
    FOR EACH ROW EXECUTE FUNCTION images_blob_refs();

UPDATE media_blobs b SET public_refs = p.n
    FROM (SELECT k, count(*) AS n FROM images,
            unnest(ARRAY[png_key, webp_320_key, webp_720_key, webp_full_key]) AS k
          WHERE public GROUP BY k) p
    WHERE b.key = p.k;
