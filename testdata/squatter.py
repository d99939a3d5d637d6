# Another user's process in the tests of the servers' port check: binds 127.0.0.1:<port>
# (argv[1]) and answers every GET with 200 "squatter". Prints "bound" once it listens.
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "8")
        self.end_headers()
        self.wfile.write(b"squatter")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("bound", flush=True)
server.serve_forever()
