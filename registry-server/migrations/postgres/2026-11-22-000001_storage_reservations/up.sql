-- Bytes granted to uploads in progress, so that one owner's concurrent uploads cannot
-- together pass user_storage_quota. A row lives while its image is `saving`.
CREATE TABLE image_reservations (
    image_id VARCHAR(36) PRIMARY KEY NOT NULL REFERENCES images(id),
    owner VARCHAR(255) NOT NULL,
    bytes BIGINT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE INDEX ix_image_reservations_owner ON image_reservations (owner);
