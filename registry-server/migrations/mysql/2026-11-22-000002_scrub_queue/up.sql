-- The delayed-delete queue: one row per location of an image in pending_delete. The API adds
-- the rows in the transaction that soft-deletes the image; any glance-scrubber claims due rows
-- for a lease (claimed_until), so two scrubbers never take the same row and a crashed one's
-- rows are taken over once its lease lapses. `value` is the location as image_locations stores
-- it (encrypted with metadata_encryption_key when the API has one).
CREATE TABLE scrub_jobs (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL,
    value TEXT NOT NULL,
    due_at DATETIME(6) NOT NULL,
    claimed_by VARCHAR(255),
    claimed_until DATETIME(6),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at DATETIME(6) NOT NULL,
    CONSTRAINT fk_scrub_jobs_image_id FOREIGN KEY (image_id) REFERENCES images(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_scrub_jobs_due_at ON scrub_jobs (due_at);
CREATE INDEX ix_scrub_jobs_image_id ON scrub_jobs (image_id);
