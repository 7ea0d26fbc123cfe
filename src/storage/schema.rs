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

// PostgreSQL only: the one counter row events take their seqs from (`events::append_all`).
diesel::table! {
    event_seq (id) {
        id -> SmallInt,
        last -> BigInt,
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

diesel::table! {
    canaries (id) {
        id -> Text,
        model_id -> Text,
        from_gate -> Text,
        to_gate -> Text,
        slo_policy -> Text,
        status -> Text,
        dry_run -> Bool,
        idempotency_key -> Nullable<Text>,
        reason_code -> Nullable<Text>,
        reason -> Nullable<Text>,
        checks -> Integer,
        consecutive_passes -> Integer,
        consecutive_failures -> Integer,
        consecutive_no_decision -> Integer,
        next_check_at -> Nullable<Text>,
        deadline_at -> Text,
        created_at -> Text,
        updated_at -> Text,
        finished_at -> Nullable<Text>,
    }
}

diesel::table! {
    canary_metrics (id) {
        id -> BigInt,
        canary_id -> Text,
        gate -> Text,
        latency_p95_ms -> Nullable<Double>,
        error_rate -> Nullable<Double>,
        requests -> Nullable<Double>,
        raw_latency -> Nullable<Text>,
        raw_error_rate -> Nullable<Text>,
        raw_requests -> Nullable<Text>,
        latency_threshold -> Double,
        error_rate_threshold -> Double,
        verdict -> Text,
        reason_code -> Text,
        query -> Text,
        evaluated_at -> Text,
        created_at -> Text,
        errors -> Nullable<Double>,
        raw_errors -> Nullable<Text>,
        error_rate_lower -> Nullable<Double>,
        error_rate_upper -> Nullable<Double>,
        newest_sample_at -> Nullable<Double>,
        raw_newest -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_outbox (event_seq) {
        event_seq -> BigInt,
        created_at -> Text,
    }
}

diesel::table! {
    model_gates (model_id) {
        model_id -> Text,
        gate -> Text,
        canary_id -> Nullable<Text>,
        updated_at -> Text,
    }
}

diesel::joinable!(canary_metrics -> canaries (canary_id));
diesel::allow_tables_to_appear_in_same_query!(canaries, canary_metrics);
