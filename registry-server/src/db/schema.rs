//! One diesel schema, valid on SQLite, PostgreSQL and MySQL/MariaDB (see the migrations).

diesel::table! {
    images (id) {
        id -> Text,
        name -> Nullable<Text>,
        disk_format -> Nullable<Text>,
        container_format -> Nullable<Text>,
        size -> Nullable<BigInt>,
        virtual_size -> Nullable<BigInt>,
        status -> Text,
        is_public -> Bool,
        checksum -> Nullable<Text>,
        min_disk -> Integer,
        min_ram -> Integer,
        owner -> Nullable<Text>,
        protected -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    image_properties (id) {
        id -> Integer,
        image_id -> Text,
        name -> Text,
        value -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    image_members (id) {
        id -> Integer,
        image_id -> Text,
        member -> Text,
        can_share -> Bool,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    image_locations (id) {
        id -> Integer,
        image_id -> Text,
        value -> Text,
        meta_data -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    image_tags (id) {
        id -> Integer,
        image_id -> Text,
        value -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    tasks (id) {
        id -> Text,
        #[sql_name = "type"]
        task_type -> Text,
        status -> Text,
        owner -> Text,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        deleted -> Bool,
    }
}

diesel::table! {
    task_info (task_id) {
        task_id -> Text,
        input -> Nullable<Text>,
        result -> Nullable<Text>,
        message -> Nullable<Text>,
    }
}

diesel::table! {
    /// Bytes granted to uploads in progress (`user_storage_quota`).
    image_reservations (image_id) {
        image_id -> Text,
        owner -> Text,
        bytes -> BigInt,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// The delayed-delete queue: locations of images in pending_delete, due at `due_at`.
    scrub_jobs (id) {
        id -> Integer,
        image_id -> Text,
        value -> Text,
        due_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::joinable!(image_properties -> images (image_id));
diesel::joinable!(image_members -> images (image_id));
diesel::joinable!(image_locations -> images (image_id));
diesel::joinable!(image_tags -> images (image_id));
diesel::joinable!(scrub_jobs -> images (image_id));
diesel::joinable!(task_info -> tasks (task_id));

diesel::allow_tables_to_appear_in_same_query!(
    images,
    image_properties,
    image_members,
    image_locations,
    image_tags,
    image_reservations,
    scrub_jobs,
    tasks,
    task_info
);
