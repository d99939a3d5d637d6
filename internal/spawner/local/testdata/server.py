"""A stand-in single-user server for spawner tests: it serves HTTP on the port of
$JUPYTERHUB_SERVICE_URL the way jupyterhub-singleuser does, or misbehaves according to
$BEHAVIOUR."""
import http.server
import os
import sys
import time
import urllib.parse

behaviour = os.environ.get("BEHAVIOUR", "serve")
if behaviour == "crash":
    print("ModuleNotFoundError: No module named 'jupyterhub'", file=sys.stderr, flush=True)
    sys.exit(3)
if behaviour == "hang":
    time.sleep(3600)
if behaviour == "slowbind":
    time.sleep(2)  # as long as jupyterhub-singleuser takes to bind its port

port = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"]).port


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
