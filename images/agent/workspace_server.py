"""The agent image's HTTP server on port 8080: /workspace as static files,
and /health, which answers 200 when every supervisord program runs and 503
(naming the ones that do not) otherwise. Python standard library only."""

import functools
import http.server
import json
import os
import subprocess
import sys

ROOT = os.environ.get("WORKSPACE_DIR", "/workspace")
PORT = int(os.environ.get("WORKSPACE_PORT", "8080"))
SUPERVISOR_CONF = "/etc/supervisor/conf.d/supervisord.conf"


def services():
    """{program: state} from supervisorctl, or None when it cannot tell."""
    try:
        p = subprocess.run(["supervisorctl", "-c", SUPERVISOR_CONF, "status"], capture_output=True,
                           text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    states = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 2:
            states[f[0]] = f[1]
    return states or None


class Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "sandboxd-agent"

    def do_GET(self):
        if self.path.split("?", 1)[0] == "/health":
            return self.health()
        return super().do_GET()

    def health(self):
        states = services()
        ok = states is not None and all(s == "RUNNING" for s in states.values())
        body = json.dumps({"status": "healthy" if ok else "unhealthy", "services": states}).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))


def main():
    os.makedirs(ROOT, exist_ok=True)
    handler = functools.partial(Handler, directory=ROOT)
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
