-- Galleries, sharing, ratings, stored-file reference counts and imported trends.

-- Operators grant it with `socialcraft users grant-admin EMAIL`; admins may import trend feeds.
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT false;

-- Each image carries its owner (copied from its generation, so "My images" is one index
-- range), whether its owner shared it on Explore, and its rating totals (kept by a trigger on
-- `image_ratings`, so every path that rates, re-rates or deletes keeps them right).
ALTER TABLE images
    ADD COLUMN user_id UUID REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN public BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN rating_count INTEGER NOT NULL DEFAULT 0 CHECK (rating_count >= 0),
    ADD COLUMN rating_sum INTEGER NOT NULL DEFAULT 0 CHECK (rating_sum >= 0);

UPDATE images SET user_id = g.user_id FROM generations g WHERE g.id = images.generation_id;

-- The keyset indexes the two galleries page through: newest first, ties broken by id.
CREATE INDEX images_owner_created_idx ON images (user_id, created_at DESC, id DESC);
CREATE INDEX images_public_created_idx ON images (created_at DESC, id DESC) WHERE public;
-- The old all-images index served no query any more.
DROP INDEX images_created_at_id_idx;

-- One rating per user per image; rating again replaces it, clearing deletes it.
CREATE TABLE image_ratings (
    image_id UUID NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stars SMALLINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (image_id, user_id)
);

CREATE INDEX image_ratings_user_idx ON image_ratings (user_id);

-- Relative updates: concurrent ratings of one image each add their own change under the
-- image row's lock, so the totals never lose one.
CREATE FUNCTION image_ratings_totals() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE images SET rating_count = rating_count - 1, rating_sum = rating_sum - OLD.stars
            WHERE id = OLD.image_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE images SET rating_count = rating_count + 1, rating_sum = rating_sum + NEW.stars
            WHERE id = NEW.image_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER image_ratings_totals_change
    AFTER INSERT OR UPDATE OF stars OR DELETE ON image_ratings
    FOR EACH ROW EXECUTE FUNCTION image_ratings_totals();

-- Stored files and how many records use each. A file is deleted only when its count reaches
-- zero, so deleting one record never breaks another that shares its content (seeded images,
-- and de-duplicated uploads later). Image rows keep the counts through triggers, so cascades
-- (a deleted generation or account) are counted too. Rows at zero are garbage: the deleting
-- request removes their files, and the sweeper catches any it could not.
CREATE TABLE media_blobs (
    key TEXT PRIMARY KEY,
    refs INTEGER NOT NULL CHECK (refs >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX media_blobs_unreferenced_idx ON media_blobs (updated_at) WHERE refs = 0;

CREATE FUNCTION images_blob_refs() RETURNS trigger AS $$
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

INSERT INTO media_blobs (key, refs)
    SELECT k, count(*) FROM images,
        unnest(ARRAY[png_key, webp_320_key, webp_720_key, webp_full_key]) AS k
    GROUP BY k;

-- Trends imported from external feeds. Importing the same row again (same source, topic and
-- time) updates it, so a feed can be re-imported safely.
CREATE TABLE trend_imports (
    id BIGSERIAL PRIMARY KEY,
    topic TEXT NOT NULL CHECK (char_length(topic) BETWEEN 2 AND 40),
    hashtag TEXT NOT NULL CHECK (hashtag ~ '^#[a-z0-9_]{1,40}$'),
    source TEXT NOT NULL CHECK (source ~ '^[a-z0-9._-]{1,40}$'),
    score DOUBLE PRECISION NOT NULL CHECK (score >= 0),
    observed_at TIMESTAMPTZ NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (source, topic, observed_at)
);

CREATE INDEX trend_imports_observed_idx ON trend_imports (observed_at DESC);
