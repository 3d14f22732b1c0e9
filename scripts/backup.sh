#!/usr/bin/env bash
# Take one orderdesk-mcp backup (verified, older ones pruned by age: ORDERDESK_MCP_BACKUP_KEEP_DAILY
# and _KEEP_WEEKLY), then prune the audit trail to its retention (ORDERDESK_MCP_AUDIT_RETENTION_DAYS,
# default 90), then, when ORDERDESK_MCP_BACKUP_S3_URL is set, seal the backup and upload it
# off-site; made for cron. Silent on success (one line per step to syslog), so cron mails only
# failures: then the failing command's output goes to stdout and the exit code is the
# command's. The prune runs only after a good backup, so the rows it deletes are still in
# that backup; the upload runs last, so a failed upload (the local backup is kept) still
# fails the run after all the local work.
#
#   # /etc/cron.d/orderdesk-mcp-backup (run as the service user, daily at 03:17)
#   17 3 * * * orderdesk-mcp /opt/orderdesk-mcp/src/scripts/backup.sh
#
# Environment (all optional; not ORDERDESK_MCP_* names, which are settings):
#   ODMCP_BIN          the orderdesk-mcp command (default /opt/orderdesk-mcp/venv/bin/orderdesk-mcp)
#   ODMCP_ENV_FILE     settings file (default /etc/orderdesk-mcp/orderdesk-mcp.env, if readable)
#   ODMCP_BACKUP_DEST  backup directory (default: <data dir>/backups)
#   ODMCP_BACKUP_KEEP  keep only this many newest backups, locally and remotely (default:
#                      retention by age from the settings)
# S3 credentials come the standard boto3 way (AWS_* variables or AWS_SHARED_CREDENTIALS_FILE),
# never from the settings file.
set -euo pipefail

bin="${ODMCP_BIN:-/opt/orderdesk-mcp/venv/bin/orderdesk-mcp}"
env_file="${ODMCP_ENV_FILE:-/etc/orderdesk-mcp/orderdesk-mcp.env}"
tag="orderdesk-mcp-backup"

common=()
if [[ -r "$env_file" ]]; then
    common+=(--env-file "$env_file")
fi
where=()
if [[ -n "${ODMCP_BACKUP_DEST:-}" ]]; then
    where+=(--dest "$ODMCP_BACKUP_DEST")
fi
if [[ -n "${ODMCP_BACKUP_KEEP:-}" ]]; then
    where+=(--keep "$ODMCP_BACKUP_KEEP")
fi

log() {
    # syslog/journal when there is one; a missing /dev/log must not turn success into mail.
    logger -t "$tag" -p "$1" -- "$2" 2>/dev/null || true
}

# run STEP ARGS...: one syslog line on success; on failure the output on stdout and exit.
run() {
    local step="$1" status=0 output
    shift
    output="$("$bin" "$@" 2>&1)" || status=$?
    if [[ $status -eq 0 ]]; then
        log user.info "${output%%$'\n'*}"
        return 0
    fi
    log user.err "$step failed (exit $status): ${output%%$'\n'*}"
    echo "orderdesk-mcp $step failed (exit $status) on $(hostname):"
    echo "$output"
    exit "$status"
}

run backup "${common[@]}" backup create "${where[@]}"
run "audit prune" "${common[@]}" audit prune
run "backup upload" "${common[@]}" backup upload --if-configured "${where[@]}"
