//! The tool table: every tool's name, definition (for `tools/list`), the example of valid arguments its
//! errors show, how its arguments parse, and its handler, in `tools/list` order. Adding a tool is adding an
//! entry here (its handler and argument type live in the module of its area).

use serde_json::json;

use super::args::{
    as_of_property, definition, id_property, parse, slo_policy_schema, Hints, READ_ONLY,
};
use super::canaries::{self, canary_schema, id_only, reason_property, ACTING, ENDING, REPEATABLE};
use super::jobs::{self, job_schema};
use super::models::{self, gate_schema, CHECKS_PAGE, MAX_CHECKS_PAGE};
use super::notes::{self, MAX_MESSAGE_BYTES};
use super::{evaluate, Tool};
use crate::canary::Status;
use crate::jobs::JobStatus;

pub(super) const TOOLS: &[Tool] = &[
    Tool {
        name: "run_eval",
        aliases: &[],
        definition: || {
            json!({
                "name": "run_eval",
                "title": "Run an evaluation",
                "description": "Start an eval task as a job. Returns at once with the jobId (follow it with job_status, \
                    or subscribe to the resource cockpit://job/<jobId>), or with wait:true when the job has ended. dryRun validates and \
                    records the job without running anything.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "taskId": id_property("Configured eval task, e.g. demo or probe"),
                        "configId": id_property("Configuration passed to the task, e.g. default"),
                        "wait": {"type": "boolean", "default": false, "description": "Reply when the job has ended"},
                        "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "description": "Run limit, at most the task's own"},
                        "dryRun": {"type": "boolean", "default": false, "description": "Validate and record the job without running anything"}
                    },
                    "required": ["taskId", "configId"],
                    "additionalProperties": false
                },
                "outputSchema": job_schema(),
                "annotations": {"title": "Run an evaluation", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false}
            })
        },
        example: jobs::RUN_EVAL_EXAMPLE,
        parses: |a| parse::<jobs::RunEvalArgs>(a, jobs::RUN_EVAL_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(jobs::run_eval(ctx, call)),
    },
    Tool {
        name: "job_status",
        aliases: &["status"],
        definition: || {
            json!({
                "name": "job_status",
                "title": "Job status",
                "description": "Status, progress, result or error of one job. Also callable as `status`.",
                "inputSchema": {
                    "type": "object",
                    "properties": {"jobId": id_property("Id returned by run_eval")},
                    "required": ["jobId"],
                    "additionalProperties": false
                },
                "outputSchema": job_schema(),
                "annotations": {"title": "Job status", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
            })
        },
        example: jobs::JOB_ID_EXAMPLE,
        parses: |a| parse::<jobs::JobIdArgs>(a, jobs::JOB_ID_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(jobs::job_status(ctx, call)),
    },
    Tool {
        name: "list_jobs",
        aliases: &[],
        definition: || {
            json!({
                "name": "list_jobs",
                "title": "List jobs",
                "description": "Jobs, newest first, optionally filtered by status and task.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": JobStatus::NAMES, "description": "Only jobs in this status"},
                        "taskId": id_property("Only jobs of this task"),
                        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50, "description": "At most this many, newest first"}
                    },
                    "additionalProperties": false
                },
                "outputSchema": {
                    "type": "object",
                    "properties": {"jobs": {"type": "array", "items": job_schema()}, "count": {"type": "integer"}, "asOf": as_of_property()},
                    "required": ["jobs", "count", "asOf"]
                },
                "annotations": {"title": "List jobs", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
            })
        },
        example: jobs::LIST_EXAMPLE,
        parses: |a| parse::<jobs::ListJobsArgs>(a, jobs::LIST_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(jobs::list_jobs(ctx, call)),
    },
    Tool {
        name: "cancel_job",
        aliases: &[],
        definition: || {
            json!({
                "name": "cancel_job",
                "title": "Cancel a job",
                "description": "Cancel a queued or running job: its process group gets SIGTERM, then SIGKILL after a \
                    grace period. Replies with the job once it has ended.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "jobId": id_property("Id returned by run_eval"),
                        "reason": {"type": "string", "maxLength": 500, "default": "cancelled by request", "description": "Why; recorded as the job's error"}
                    },
                    "required": ["jobId"],
                    "additionalProperties": false
                },
                "outputSchema": job_schema(),
                "annotations": {"title": "Cancel a job", "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false}
            })
        },
        example: jobs::CANCEL_EXAMPLE,
        parses: |a| parse::<jobs::CancelArgs>(a, jobs::CANCEL_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(jobs::cancel_job(ctx, call)),
    },
    Tool {
        name: "start_canary",
        aliases: &[],
        definition: || {
            definition(
                "start_canary",
                "Start a canary",
                "Move a model from one gate to another under SLO guard: every `interval` its SLIs at toGate are \
                 checked against sloPolicy; successesToPromote passing checks in a row promote it (model_gates), \
                 failureLimit failing ones or a critical breach roll it back. Follow it with canary_status, or subscribe \
                 to the resource cockpit://canary/<canaryId>. \
                 dryRun records verdicts without changing any gate. A repeated idempotencyKey returns the same canary.",
                (
                    json!({
                        "modelId": id_property("Model to promote, e.g. lukhas-v2"),
                        "fromGate": id_property("Gate it is at, e.g. stage"),
                        "toGate": id_property("Gate to move it to, e.g. production"),
                        "sloPolicy": slo_policy_schema(),
                        "dryRun": {"type": "boolean", "default": false, "description": "Record every verdict without moving any gate"},
                        "idempotencyKey": id_property("Makes retries safe: the same key returns the same canary")
                    }),
                    &["modelId", "fromGate", "toGate"],
                ),
                canary_schema(),
                Hints {
                    open_world: true,
                    ..ACTING
                },
            )
        },
        example: canaries::START_EXAMPLE,
        parses: |a| parse::<canaries::StartArgs>(a, canaries::START_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::start_canary(ctx, call)),
    },
    Tool {
        name: "abort_canary",
        aliases: &[],
        definition: || {
            definition(
                "abort_canary",
                "Abort a canary",
                "Roll a canary back now (reasonCode manual). Its actor stops at once; an ended canary never changes again.",
                (
                    json!({"canaryId": id_property("Id returned by start_canary"), "reason": reason_property("manual abort")}),
                    &["canaryId"],
                ),
                canary_schema(),
                ENDING,
            )
        },
        example: canaries::ABORT_EXAMPLE,
        parses: |a| parse::<canaries::ReasonArgs>(a, canaries::ABORT_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::act(ctx, call, "abort_canary")),
    },
    Tool {
        name: "canary_status",
        aliases: &[],
        definition: || {
            definition(
                "canary_status",
                "Canary status",
                "A canary's policy, status, counters, schedule and most recent checks.",
                id_only(),
                canary_schema(),
                READ_ONLY,
            )
        },
        example: canaries::ID_EXAMPLE,
        parses: |a| parse::<canaries::IdArgs>(a, canaries::ID_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::canary_status(ctx, call)),
    },
    Tool {
        name: "list_canaries",
        aliases: &[],
        definition: || {
            definition(
                "list_canaries",
                "List canaries",
                "Canaries, newest first, optionally filtered by status and model.",
                (
                    json!({
                        "status": {"type": "string", "enum": Status::ALL.map(Status::as_str), "description": "Only canaries in this status"},
                        "modelId": id_property("Only canaries of this model"),
                        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50, "description": "At most this many, newest first"}
                    }),
                    &[],
                ),
                json!({"type": "object", "properties": {"count": {"type": "integer"}, "canaries": {"type": "array", "items": canary_schema()}, "asOf": as_of_property()}, "required": ["count", "canaries", "asOf"]}),
                READ_ONLY,
            )
        },
        example: canaries::LIST_EXAMPLE,
        parses: |a| parse::<canaries::ListArgs>(a, canaries::LIST_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::list_canaries(ctx, call)),
    },
    Tool {
        name: "pause_canary",
        aliases: &[],
        definition: || {
            definition(
                "pause_canary",
                "Pause a canary",
                "Stop checking a running canary until resume_canary. Paused time counts toward its deadline.",
                id_only(),
                canary_schema(),
                REPEATABLE,
            )
        },
        example: canaries::ID_EXAMPLE,
        parses: |a| parse::<canaries::IdArgs>(a, canaries::ID_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::act(ctx, call, "pause_canary")),
    },
    Tool {
        name: "resume_canary",
        aliases: &[],
        definition: || {
            definition(
                "resume_canary",
                "Resume a canary",
                "Resume a paused or held canary; its pass and failure counters are kept.",
                id_only(),
                canary_schema(),
                REPEATABLE,
            )
        },
        example: canaries::ID_EXAMPLE,
        parses: |a| parse::<canaries::IdArgs>(a, canaries::ID_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::act(ctx, call, "resume_canary")),
    },
    Tool {
        name: "promote_canary",
        aliases: &[],
        definition: || {
            definition(
                "promote_canary",
                "Promote a canary by hand",
                "Promote now, whatever the checks say (reasonCode manual, audited). The model moves to toGate.",
                (
                    json!({"canaryId": id_property("Id returned by start_canary"), "reason": {"type": "string", "minLength": 1, "maxLength": 500, "description": "Why it is promoted by hand; recorded with the decision"}}),
                    &["canaryId", "reason"],
                ),
                canary_schema(),
                ENDING,
            )
        },
        example: canaries::PROMOTE_EXAMPLE,
        parses: |a| parse::<canaries::ReasonArgs>(a, canaries::PROMOTE_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(canaries::act(ctx, call, "promote_canary")),
    },
    Tool {
        name: "promote_model",
        aliases: &[],
        definition: || {
            definition(
                "promote_model",
                "Put a model at a gate",
                "Assign a model's gate by hand, without a canary (audited; writes gate_changed on model/<modelId>).",
                (
                    json!({"modelId": id_property("Model, e.g. lukhas-v2"), "gate": id_property("Gate, e.g. production")}),
                    &["modelId", "gate"],
                ),
                json!({"type": "object", "properties": {"modelId": {"type": "string"}, "gate": {"type": "string"}, "previousGate": {"type": ["string", "null"]}}, "required": ["modelId", "gate"]}),
                Hints {
                    read_only: false,
                    destructive: true,
                    idempotent: true,
                    open_world: false,
                },
            )
        },
        example: models::PROMOTE_EXAMPLE,
        parses: |a| parse::<models::PromoteArgs>(a, models::PROMOTE_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(models::promote_model(ctx, call)),
    },
    Tool {
        name: "model_gates",
        aliases: &[],
        definition: || {
            definition(
                "model_gates",
                "Model gates",
                "The gate each model is at (or one model's), and which canary put it there.",
                (json!({"modelId": id_property("Only this model")}), &[]),
                json!({"type": "object", "properties": {"models": {"type": "array", "items": gate_schema()}, "asOf": as_of_property()}, "required": ["models", "asOf"]}),
                READ_ONLY,
            )
        },
        example: models::GATES_EXAMPLE,
        parses: |a| parse::<models::GatesArgs>(a, models::GATES_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(models::model_gates(ctx, call)),
    },
    Tool {
        name: "why",
        aliases: &[],
        definition: || {
            definition(
                "why",
                "Why: the narrative trail",
                "The narrative audit trail of a job, canary or model, oldest first: what happened and why.",
                (
                    json!({"id": id_property("A jobId, canaryId or modelId")}),
                    &["id"],
                ),
                json!({"type": "object", "properties": {"id": {"type": "string"}, "topic": {"type": "string"}, "narrative": {"type": "array", "items": {"type": "string"}}}, "required": ["id", "topic", "narrative"]}),
                READ_ONLY,
            )
        },
        example: models::WHY_EXAMPLE,
        parses: |a| parse::<models::WhyArgs>(a, models::WHY_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(models::why(ctx, call)),
    },
    Tool {
        name: "why_math",
        aliases: &[],
        definition: || {
            definition(
                "why_math",
                "Why: the numbers",
                "For a canary: its thresholds, every check's observed values, verdict and reason, and the time to decision.",
                (
                    json!({
                        "id": id_property("A canaryId"),
                        "fromCheck": {"type": "integer", "minimum": 1, "default": 1, "description": "First check to show (1-based); nextFromCheck of the previous page"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_CHECKS_PAGE, "default": CHECKS_PAGE, "description": "Checks per page"}
                    }),
                    &["id"],
                ),
                json!({"type": "object", "properties": {"canaryId": {"type": "string"}, "thresholds": {"type": "object"}, "checks": {"type": "array"}, "decision": {"type": "object"}}, "required": ["canaryId", "thresholds", "checks", "decision"]}),
                READ_ONLY,
            )
        },
        example: models::WHY_MATH_EXAMPLE,
        parses: |a| parse::<models::WhyMathArgs>(a, models::WHY_MATH_EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(models::why_math(ctx, call)),
    },
    Tool {
        name: "evaluate_slo",
        aliases: &[],
        definition: || {
            definition(
                "evaluate_slo",
                "Evaluate an SLO once",
                "Run the SLO queries for a gate now and judge them against sloPolicy, exactly as one canary check would, \
                 without recording or changing anything. For preflight before start_canary, or what-if thresholds.",
                (
                    json!({
                        "gate": id_property("Gate whose traffic is measured, e.g. production"),
                        "modelId": id_property("Model, for $__model in the queries and its policy defaults"),
                        "sloPolicy": slo_policy_schema()
                    }),
                    &["gate"],
                ),
                json!({"type": "object", "properties": {
                    "verdict": {"type": "string", "enum": ["pass", "fail", "no_decision"]},
                    "reasonCode": {"type": "string"}, "values": {"type": "object"}, "raw": {"type": "object"},
                    "thresholds": {"type": "object"}, "query": {"type": "object"}, "evaluatedAt": {"type": "string"}
                }, "required": ["verdict", "reasonCode", "values"]}),
                Hints {
                    open_world: true,
                    ..READ_ONLY
                },
            )
        },
        example: evaluate::EXAMPLE,
        parses: |a| parse::<evaluate::EvaluateArgs>(a, evaluate::EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(evaluate::evaluate_slo(ctx, call)),
    },
    Tool {
        name: "publish_note",
        aliases: &[],
        definition: || {
            json!({
                "name": "publish_note",
                "title": "Publish a note",
                "description": "Publish an operator's note as event `note` on ops/<name> (any name) or on an existing \
                    job, canary or model topic (job/<jobId>, canary/<canaryId>, model/<modelId>). The message becomes the \
                    event's narrative line; data is carried as is. Subscribers of the topic, its pattern and * see it at \
                    once; it stays in the audit trail.",
                "inputSchema": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string", "description": "ops/<name>, job/<jobId>, canary/<canaryId> or model/<modelId>", "pattern": "^(ops|job|canary|model)/[A-Za-z0-9_.:-]{1,128}$"},
                        "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_BYTES, "description": "One line for humans, at most 1 KiB"},
                        "data": {"type": "object", "description": "Structured details, a JSON object of at most 4 KiB"}
                    },
                    "required": ["topic", "message"],
                    "additionalProperties": false
                },
                "outputSchema": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string"}, "event": {"const": "note"},
                        "seq": {"type": "integer", "description": "The event's id: in SSE frames and for Last-Event-ID"}
                    },
                    "required": ["topic", "event", "seq"]
                },
                "annotations": {"title": "Publish a note", "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false}
            })
        },
        example: notes::EXAMPLE,
        parses: |a| parse::<notes::NoteArgs>(a, notes::EXAMPLE).map(drop),
        handler: |ctx, call| Box::pin(notes::publish_note(ctx, call)),
    },
];
