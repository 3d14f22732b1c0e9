#!/usr/bin/env bash
# Install or upgrade orderdesk-mcp on a Debian/Ubuntu machine, idempotently.
#
#   sudo scripts/install.sh [--dry-run] [--public-host mcp.example.com] [--no-start]
#
# From this checkout it: installs python3-venv if missing; creates the system user
# orderdesk-mcp; copies the source to /opt/orderdesk-mcp/src and installs it into the venv
# /opt/orderdesk-mcp/venv; creates /etc/orderdesk-mcp/master-key (a fresh key, only if none
# exists) and /etc/orderdesk-mcp/orderdesk-mcp.env (only if none exists); installs and
# enables the systemd units and the backup and maintenance timers; runs `orderdesk-mcp db upgrade`; and
# (re)starts the service. Running it again upgrades the code and changes nothing else.
# --dry-run prints every step it would take and changes nothing. nginx and the certificate
# are separate steps: see docs/DEPLOYMENT.md.
set -euo pipefail

readonly APP=orderdesk-mcp
readonly SERVICE_USER=orderdesk-mcp
readonly PREFIX=/opt/orderdesk-mcp
readonly SRC_DIR="$PREFIX/src"
readonly VENV="$PREFIX/venv"
readonly ETC_DIR=/etc/orderdesk-mcp
readonly ENV_FILE="$ETC_DIR/orderdesk-mcp.env"
readonly KEY_FILE="$ETC_DIR/master-key"
readonly STATE_DIR=/var/lib/orderdesk-mcp
# ODMCP_UNIT_DIR: for the tests only (a --dry-run against a made-up unit directory).
readonly UNIT_DIR="${ODMCP_UNIT_DIR:-/etc/systemd/system}"
readonly UNITS=(orderdesk-mcp.service orderdesk-mcp@.service orderdesk-mcp-backup.service
    orderdesk-mcp-backup.timer orderdesk-mcp-maintain.service orderdesk-mcp-maintain.timer)
readonly ADMIN_COMMAND=/usr/local/sbin/orderdesk-mcp-admin

SOURCE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0
PUBLIC_HOST=""
START=1

usage() {
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --public-host)
            [[ $# -ge 2 ]] || { echo "error: --public-host needs a host name" >&2; exit 2; }
            PUBLIC_HOST="$2"
            shift
            ;;
        --no-start) START=0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ -n "$PUBLIC_HOST" && ! "$PUBLIC_HOST" =~ ^[A-Za-z0-9.-]+$ ]]; then
    echo "error: --public-host must be a bare host name such as mcp.example.com" >&2
    exit 2
fi

step() { echo "==> $*"; }

# Run a command, or with --dry-run only show it.
run() {
    if [[ $DRY_RUN -eq 1 ]]; then
        echo "    would run: $*"
    else
        "$@"
    fi
}

# Write stdin to a file with owner, group and mode set before any content lands.
write_file() {
    local path="$1" owner="$2" group="$3" mode="$4"
    if [[ $DRY_RUN -eq 1 ]]; then
        cat >/dev/null
        echo "    would write: $path ($owner:$group, mode $mode)"
        return
    fi
    local tmp
    tmp="$(mktemp "$path.XXXXXX")"
    chown "$owner:$group" "$tmp"
    chmod "$mode" "$tmp"
    cat >"$tmp"
    mv -f "$tmp" "$path"
}

# Report something created (or, in a dry run, that would be).
note() {
    if [[ $DRY_RUN -eq 1 ]]; then echo "    would create $*"; else echo "    created $*"; fi
}

random_base64() {
    head -c "$1" /dev/urandom | base64 -w0
}

if [[ $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
    echo "error: run as root (sudo $0), or add --dry-run to see the plan" >&2
    exit 1
fi
[[ $DRY_RUN -eq 1 ]] && echo "Dry run: nothing will be changed."

step "Python 3.11+ with venv"
if python3 -c 'import ensurepip, sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "    present: $(python3 --version)"
else
    run apt-get update
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv
fi

step "System user $SERVICE_USER"
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    echo "    exists"
else
    run useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell /usr/sbin/nologin --comment "orderdesk-mcp service" "$SERVICE_USER"
fi

step "Source in $SRC_DIR and virtualenv in $VENV"
run install -d -m 0755 "$PREFIX"
if [[ $DRY_RUN -eq 1 ]]; then
    echo "    would replace: $SRC_DIR with a fresh copy of $SOURCE_DIR (without .git, .venv, .tools, caches)"
else
    # A fresh copy swapped into place: files removed in this release (a migration, a module)
    # must not linger from the previous one, or an upgrade/rollback runs stale code.
    staging="$SRC_DIR.new"
    rm -rf "$staging" "$SRC_DIR.old"
    install -d -m 0755 "$staging"
    tar -C "$SOURCE_DIR" --exclude=./.git --exclude=./.venv --exclude=./.tools \
        --exclude='__pycache__' --exclude='*.egg-info' --exclude=./.mypy_cache \
        --exclude=./.ruff_cache --exclude=./.pytest_cache --exclude=./.hypothesis \
        --exclude=./build --exclude=./node_modules -cf - . | tar -C "$staging" --no-same-owner -xf -
    if [[ -d "$SRC_DIR" ]]; then
        mv "$SRC_DIR" "$SRC_DIR.old"
    fi
    mv "$staging" "$SRC_DIR"
    rm -rf "$SRC_DIR.old"
fi
if [[ -x "$VENV/bin/python" ]]; then
    echo "    venv exists"
else
    run python3 -m venv "$VENV"
fi
run "$VENV/bin/pip" install --quiet --upgrade pip
run "$VENV/bin/pip" install --quiet -r "$SRC_DIR/requirements.txt"
run "$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$SRC_DIR"

step "Configuration in $ETC_DIR"
run install -d -o root -g "$SERVICE_USER" -m 0750 "$ETC_DIR"
if [[ -e "$KEY_FILE" ]]; then
    echo "    master key exists: $KEY_FILE (kept)"
else
    # Read by systemd (LoadCredential) as root; the service sees it as a credential only.
    random_base64 32 | write_file "$KEY_FILE" root root 0600
    note "a fresh master key in $KEY_FILE: back it up now, apart from the database backups"
fi
if [[ -e "$ENV_FILE" ]]; then
    echo "    env file exists: $ENV_FILE (kept)"
else
    {
        sed "s|^#ORDERDESK_MCP_ADMIN_TOKEN=.*|ORDERDESK_MCP_ADMIN_TOKEN=$(random_base64 32 | tr '+/' '-_' | tr -d '=')|" \
            "$SOURCE_DIR/systemd/orderdesk-mcp.env.example" |
            if [[ -n "$PUBLIC_HOST" ]]; then
                sed "s|^#ORDERDESK_MCP_PUBLIC_HOSTS=.*|ORDERDESK_MCP_PUBLIC_HOSTS=$PUBLIC_HOST|"
            else
                cat
            fi
    } | write_file "$ENV_FILE" root "$SERVICE_USER" 0640
    note "$ENV_FILE with a fresh admin token; review it before going live"
fi
run install -d -o "$SERVICE_USER" -g "$SERVICE_USER" -m 0700 "$STATE_DIR"

step "systemd units"
for unit in "${UNITS[@]}"; do
    run install -m 0644 "$SOURCE_DIR/systemd/$unit" "$UNIT_DIR/$unit"
done
run systemctl daemon-reload
# A server group (enabled orderdesk-mcp@N instances, docs/DEPLOYMENT.md "Outgrowing one
# process") stays a group: enabling or restarting the lone unit, which conflicts with the
# instances, would stop all of them and leave one process serving.
shopt -s nullglob
GROUP_INSTANCES=()
for wanted in "$UNIT_DIR"/multi-user.target.wants/orderdesk-mcp@*.service; do
    GROUP_INSTANCES+=("$(basename "$wanted")")
done
shopt -u nullglob
if [[ ${#GROUP_INSTANCES[@]} -gt 0 ]]; then
    echo "    server group ${GROUP_INSTANCES[*]}: the lone orderdesk-mcp.service stays disabled"
    run systemctl enable orderdesk-mcp-backup.timer orderdesk-mcp-maintain.timer
else
    run systemctl enable orderdesk-mcp.service orderdesk-mcp-backup.timer orderdesk-mcp-maintain.timer
fi

step "Admin command $ADMIN_COMMAND"
# Operators run CLI commands as the service user with the service's env file and master key
# credential, exactly as the service sees them (files in the data dir stay the user's).
write_file "$ADMIN_COMMAND" root root 0755 <<ADMIN
#!/bin/sh
# orderdesk-mcp-admin: run \`orderdesk-mcp ARGS\` as the service would (written by install.sh).
exec systemd-run --quiet --pipe --wait --collect --service-type=exec \\
    -p User=$SERVICE_USER -p Group=$SERVICE_USER -p UMask=0077 \\
    -p Environment=ORDERDESK_MCP_DATA_DIR=$STATE_DIR \\
    -p EnvironmentFile=$ENV_FILE \\
    -p LoadCredential=master-key:$KEY_FILE \\
    -p WorkingDirectory=$STATE_DIR \\
    $VENV/bin/$APP "\$@"
ADMIN

step "Database schema"
run runuser -u "$SERVICE_USER" -- "$VENV/bin/$APP" --env-file "$ENV_FILE" db upgrade

if [[ $START -eq 1 ]]; then
    step "Start"
    if [[ ${#GROUP_INSTANCES[@]} -gt 0 ]]; then
        # One at a time, so the others keep serving on the shared port.
        for instance in "${GROUP_INSTANCES[@]}"; do
            run systemctl restart "$instance"
            run sleep 5
        done
    else
        run systemctl restart orderdesk-mcp.service
    fi
    run systemctl start orderdesk-mcp-backup.timer orderdesk-mcp-maintain.timer
fi

step "Done"
cat <<EOF
    Next (docs/DEPLOYMENT.md): nginx site and certificate, then a tenant and a store:
      sudo $ADMIN_COMMAND tenant create NAME
    Health: curl -s http://127.0.0.1:8080/health/ready
EOF
