//! The store conformance suite: every test runs once on SQLite and once on PostgreSQL.
//!
//! PostgreSQL tests need `HELVETIA_TEST_DATABASE_URL` (a role allowed to create databases);
//! each test gets a fresh database. The README's test command starts a server and sets it.

#![allow(clippy::unwrap_used)]

mod backend;
mod certificates;
mod deployments;
mod devices;
mod domains;
mod github;
mod github_users;
mod hooks;
mod images;
mod links;
mod metrics;
mod notifications;
mod oidc;
mod previews;
mod projects;
mod queue;
mod runtime;
mod sessions;
mod tokens;
mod upgrade;
mod users;
mod volumes;

/// Expands each listed `async fn(backend::TestDb)` into a `sqlite` and a `postgres` test.
macro_rules! conformance {
    ($($module:ident :: $test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = crate::backend::TestDb::sqlite().await;
                    crate::$module::$test(&db).await;
                    db.drop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let db = crate::backend::TestDb::postgres().await;
                    crate::$module::$test(&db).await;
                    db.drop().await;
                }
            )*
        }
    };
}

conformance!(
    notifications::channels_queue_what_they_subscribe_to_and_record_attempts,
    projects::create_list_get_delete,
    images::an_image_service_keeps_its_reference_and_its_sealed_login,
    domains::verified_domains_are_routed_once_per_name_and_aliases_redirect,
    domains::basic_auth_and_hsts_route_a_domain_apart_and_unverified_ones_are_rechecked,
    certificates::certificates_are_kept_per_subject_ordered_recorded_and_served,
    previews::a_preview_is_a_service_of_its_parent_with_its_own_hostname_and_variables,
    projects::names_are_unique,
    projects::other_teams_see_nothing,
    projects::services_crud,
    projects::migrations_are_idempotent,
    projects::a_service_changes_only_from_the_revision_it_was_read_at,
    deployments::create_enqueues_a_job,
    deployments::walks_the_state_machine,
    deployments::refuses_illegal_and_stale_transitions,
    deployments::going_live_retires_the_previous,
    deployments::newer_request_supersedes_queued,
    deployments::cancel,
    deployments::no_partial_writes_on_conflict,
    queue::claim_takes_oldest_and_leases,
    queue::expired_lease_is_claimed_again,
    queue::a_reclaim_by_the_same_worker_supersedes_its_first_claim,
    queue::two_workers_never_share_a_job,
    queue::one_running_job_per_service,
    queue::jobs_survive_a_restart,
    queue::heartbeat_reports_cancellation,
    tokens::bootstrap_happens_once,
    tokens::a_system_token_is_an_audited_admin_token,
    tokens::authenticate_revoke_expire,
    tokens::the_callers_own_last_admin_token_is_revoked_only_with_force,
    tokens::mutations_are_audited,
    tokens::the_audit_log_filters_by_action_actor_and_target,
    runtime::routing_table_follows_the_live_deployment,
    runtime::containers_of_running_deployments_are_wanted,
    runtime::networks_get_distinct_subnets,
    runtime::logs_append_in_order,
    runtime::log_retention_keeps_recent_and_the_last_per_service,
    metrics::samples_roll_up_once_and_expire,
    metrics::series_add_up_containers_and_filter,
    metrics::what_the_exposition_reads,
    volumes::add_list_remove_and_cascade,
    users::the_first_user_adopts_the_pre_accounts_team,
    users::later_users_get_their_own_teams,
    users::a_token_limited_to_a_team_acts_only_there,
    devices::a_device_code_is_redeemed_once_at_the_clock_given,
    github_users::a_github_state_works_once_and_a_github_id_links_one_user,
    links::a_link_works_once_and_not_after_it_expires,
    links::invitations_join_once_and_only_their_address,
    sessions::refresh_tokens_rotate_and_reuse_revokes_the_family,
    sessions::one_refresh_token_used_at_once_rotates_once,
    sessions::totp_steps_and_recovery_codes_work_once,
    sessions::failures_lock_and_a_password_change_ends_other_sessions,
    sessions::signing_keys_rotate_with_overlap,
    github::the_github_app_is_one_row_and_a_manifest_state_works_once,
    github::a_service_created_from_a_github_repository_is_found_by_its_id_until_its_repo_changes,
    oidc::trusts_belong_to_one_service_are_audited_and_go_with_it,
    hooks::push_settings_and_the_receiver_belong_to_the_team,
    hooks::the_delivery_log_finds_acted_on_deliveries_and_prunes,
    hooks::a_push_waits_for_its_checks_until_one_event_takes_it_or_its_deadline,
);
