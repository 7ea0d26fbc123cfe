//! Diesel table definitions, kept in step with `migrations/` by hand (the diesel CLI is optional).

diesel::table! {
    jobs (job_id) {
        job_id -> Text,
        task_id -> Text,
        config_id -> Text,
        status -> Text,
        progress -> Double,
        message -> Nullable<Text>,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        exit_code -> Nullable<Integer>,
        duration_ms -> Nullable<BigInt>,
        timeout_seconds -> Double,
        pgid -> Nullable<Integer>,
        pid_start_time -> Nullable<BigInt>,
        created_at -> Text,
        started_at -> Nullable<Text>,
        finished_at -> Nullable<Text>,
        updated_at -> Text,
    }
}

diesel::table! {
    events (seq) {
        seq -> BigInt,
        topic -> Text,
        event -> Text,
        entity_id -> Text,
        data -> Text,
        narrative -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    audit (id) {
        id -> BigInt,
        actor -> Text,
        action -> Text,
        target -> Text,
        args -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    meta (key) {
        key -> Text,
        value -> Text,
    }
}
