-- Glance's schema (sqlalchemy-migrate version 34), plus indexes for the list queries.
CREATE TABLE images (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    name VARCHAR(255),
    disk_format VARCHAR(20),
    container_format VARCHAR(20),
    size BIGINT,
    virtual_size BIGINT,
    status VARCHAR(30) NOT NULL,
    is_public BOOLEAN NOT NULL DEFAULT FALSE,
    checksum VARCHAR(32),
    min_disk INTEGER NOT NULL DEFAULT 0,
    min_ram INTEGER NOT NULL DEFAULT 0,
    owner VARCHAR(255),
    protected BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX checksum_image_idx ON images (checksum);

-- Serves the default listing (live images, newest first) without a sort; single-column
-- indexes on deleted/is_public/status would mislead the planner into scanning and sorting.
CREATE INDEX ix_images_deleted_created_at ON images (deleted, created_at, id);

CREATE INDEX owner_image_idx ON images (owner);

CREATE INDEX ix_images_updated_at ON images (updated_at);

CREATE TABLE image_properties (
    id SERIAL PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL REFERENCES images(id),
    name VARCHAR(255) NOT NULL,
    value TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE UNIQUE INDEX ix_image_properties_image_id_name ON image_properties (image_id, name);

CREATE INDEX ix_image_properties_name_value ON image_properties (name, image_id);

CREATE TABLE image_members (
    id SERIAL PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL REFERENCES images(id),
    member VARCHAR(255) NOT NULL,
    can_share BOOLEAN NOT NULL DEFAULT FALSE,
    status VARCHAR(20) NOT NULL DEFAULT 'pending',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE UNIQUE INDEX image_members_image_id_member_deleted_at_key ON image_members (image_id, member, deleted_at);

CREATE INDEX ix_image_members_image_id_member ON image_members (image_id, member);

CREATE INDEX ix_image_members_member ON image_members (member, deleted);

CREATE TABLE image_locations (
    id SERIAL PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL REFERENCES images(id),
    value TEXT NOT NULL,
    meta_data TEXT,
    status VARCHAR(30) NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX ix_image_locations_image_id ON image_locations (image_id);

CREATE TABLE image_tags (
    id SERIAL PRIMARY KEY,
    image_id VARCHAR(36) NOT NULL REFERENCES images(id),
    value VARCHAR(255) NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX ix_image_tags_image_id ON image_tags (image_id);

CREATE INDEX ix_image_tags_image_id_tag_value ON image_tags (image_id, value);

CREATE TABLE tasks (
    id VARCHAR(36) PRIMARY KEY NOT NULL,
    type VARCHAR(30) NOT NULL,
    status VARCHAR(30) NOT NULL,
    owner VARCHAR(255) NOT NULL,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    deleted_at TIMESTAMP,
    deleted BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX ix_tasks_type ON tasks (type);

CREATE INDEX ix_tasks_status ON tasks (status);

CREATE INDEX ix_tasks_owner ON tasks (owner);

CREATE INDEX ix_tasks_updated_at ON tasks (updated_at);

CREATE TABLE task_info (
    task_id VARCHAR(36) PRIMARY KEY NOT NULL REFERENCES tasks(id),
    input TEXT,
    result TEXT,
    message TEXT
);
