"""The shipped nginx site: `nginx -t` accepts it with test paths and a self-signed certificate."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE_CONFIG = ROOT / "nginx" / "orderdesk-mcp.conf"
LIVE_DIR = "/etc/letsencrypt/live/mcp.example.com"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    assert found, "nginx is required: `make system-deps` installs it from Debian's packages"
    return found


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def make_self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@dataclass(frozen=True)
class NginxLayout:
    """A shipped site config rewritten to run unprivileged-ish under a temp dir, on loopback."""

    root: Path
    main_config: Path
    cert: Path
    http_port: int
    https_port: int

    @property
    def access_log(self) -> Path:
        return self.root / "logs" / "orderdesk-mcp.access.log"

    @property
    def error_log(self) -> Path:
        return self.root / "logs" / "orderdesk-mcp.error.log"


def _replace(text: str, old: str, new: str) -> str:
    # Fail loudly when the shipped file changes shape, instead of testing a stale rewrite.
    assert old in text, f"nginx/orderdesk-mcp.conf no longer contains {old!r}"
    return text.replace(old, new)


def prepare_nginx(root: Path, app_port: int) -> NginxLayout:
    """Rewrite the site for a temp dir: loopback ports only, test cert, logs under `root`."""
    for sub in ("logs", "www", "temp", "tls"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cert, key = make_self_signed_certificate(root / "tls")
    http_port, https_port = free_loopback_port(), free_loopback_port()
    site = SITE_CONFIG.read_text(encoding="utf-8")
    site = "\n".join(line for line in site.splitlines() if "listen [::]" not in line)
    site = _replace(site, "listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace(site, f"{LIVE_DIR}/fullchain.pem", str(cert))
    site = _replace(site, f"{LIVE_DIR}/privkey.pem", str(key))
    site = _replace(site, f"{LIVE_DIR}/chain.pem", str(cert))
    site = _replace(site, "/var/log/nginx", str(root / "logs"))
    site = _replace(site, "/var/www/letsencrypt", str(root / "www"))
    site = _replace(site, "server 127.0.0.1:8080;", f"server 127.0.0.1:{app_port};")
    # OCSP is never fetched for a self-signed certificate; keep even the resolver on loopback.
    site = _replace(site, "resolver 1.1.1.1 9.9.9.9", "resolver 127.0.0.1")
    (root / "site.conf").write_text(site, encoding="utf-8")
    temp = root / "temp"
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "logs" / "error.log"} warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {root / "site.conf"};
}}
"""
    main_config = root / "nginx.conf"
    main_config.write_text(main, encoding="utf-8")
    return NginxLayout(root, main_config, cert, http_port, https_port)


def test_nginx_accepts_the_shipped_site(tmp_path: Path) -> None:
    layout = prepare_nginx(tmp_path, app_port=free_loopback_port())
    result = subprocess.run(
        [nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(layout.main_config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_site_keeps_the_promised_policies() -> None:
    site = SITE_CONFIG.read_text(encoding="utf-8")
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in site
    assert "ssl_stapling on;" in site
    assert "Strict-Transport-Security" in site
    assert "client_max_body_size 1m;" in site
    # Slow and greedy clients stop at nginx (docs/DEPLOYMENT.md, "Slow and greedy clients").
    assert "client_header_timeout 15s;" in site
    assert "client_body_timeout 15s;" in site
    assert "limit_conn orderdesk_mcp_conn_per_ip 20;" in site
    # OAuth: discovery and the pages reach the app; /oauth/ has its own per-address zone.
    for location in (
        "location = /.well-known/oauth-protected-resource {",
        "location ^~ /.well-known/oauth-protected-resource/ {",
        "location = /.well-known/oauth-authorization-server {",
        "location ^~ /oauth/ {",
        "location ^~ /tenant/ {",
        "location ^~ /tenant/invite/ {",
        "location = /tenant {",
    ):
        assert location in site
    assert "zone=orderdesk_mcp_oauth_per_ip" in site
    assert "return 302 /tenant/stores;" in site.split("location = /tenant {", 1)[1].split("}")[0]
    assert "error_page 429 @orderdesk_mcp_429;" in site
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    log_format = site.split("log_format orderdesk_mcp", 1)[1].split(";", 1)[0]
    assert "$request " not in log_format  # $request would log the query string
    assert "$request_uri" not in log_format
    assert "$args" not in log_format
    assert "authorization" not in log_format.lower()
