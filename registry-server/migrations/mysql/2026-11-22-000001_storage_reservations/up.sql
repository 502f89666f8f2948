-- Bytes granted to uploads in progress, so that one owner's concurrent uploads cannot
-- together pass user_storage_quota. A row lives while its image is `saving`.
CREATE TABLE image_reservations (
    image_id VARCHAR(36) PRIMARY KEY NOT NULL,
    owner VARCHAR(255) NOT NULL,
    bytes BIGINT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    CONSTRAINT fk_image_reservations_image_id FOREIGN KEY (image_id) REFERENCES images(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE INDEX ix_image_reservations_owner ON image_reservations (owner);
