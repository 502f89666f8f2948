-- The delayed-delete queue: one row per location of an image in pending_delete. The API adds
-- the rows in the transaction that soft-deletes the image; any glance-scrubber claims due rows
-- for a lease (claimed_until), so two scrubbers never take the same row and a crashed one's
-- rows are taken over once its lease lapses. `value` is the location as image_locations stores
-- it (encrypted with metadata_encryption_key when the API has one).
CREATE TABLE scrub_jobs (
    id SERIAL PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL REFERENCES images(id),
    value TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    claimed_by VARCHAR(255),
    claimed_until TIMESTAMP,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL
);

CREATE INDEX ix_scrub_jobs_due_at ON scrub_jobs (due_at);
CREATE INDEX ix_scrub_jobs_image_id ON scrub_jobs (image_id);
