"""A stand-in single-user server for spawner tests: it serves HTTP on --port the way
jupyterhub-singleuser does, or misbehaves according to $BEHAVIOUR."""
import http.server
import os
import sys
import time

behaviour = os.environ.get("BEHAVIOUR", "serve")
if behaviour == "crash":
    print("ModuleNotFoundError: No module named 'jupyterhub'", file=sys.stderr, flush=True)
    sys.exit(3)
if behaviour == "hang":
    time.sleep(3600)

port = int(next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--port=")))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("%s %s %s" % (os.environ["JUPYTERHUB_USER"], os.getcwd(), os.environ.get("JUPYTERHUB_SERVICE_URL"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
