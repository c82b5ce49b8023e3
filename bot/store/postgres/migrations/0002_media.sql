-- Media: the bytes of posts' images, GIFs and videos, kept by their SHA-256 (hex) so each
-- distinct file is kept once, in pieces of 1 MiB (never one huge value: a 512 MB video is
-- 512 rows, each read and written through the server's parameters).

CREATE TABLE media (
    digest    text PRIMARY KEY CHECK (digest ~ '^[0-9a-f]{64}$'),
    size      bigint NOT NULL CHECK (size >= 0),
    stored_at timestamptz NOT NULL DEFAULT now()  -- renewed by a put of the same bytes (retention's grace)
);
CREATE INDEX media_by_stored_at ON media (stored_at);

CREATE TABLE media_chunks (
    digest text NOT NULL REFERENCES media (digest) ON DELETE CASCADE,
    seq    integer NOT NULL CHECK (seq >= 0),
    data   bytea NOT NULL,
    PRIMARY KEY (digest, seq)
);
-- Images and videos are compressed already: keep the pieces out of line without trying again.
ALTER TABLE media_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
