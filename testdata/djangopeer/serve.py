#!/usr/bin/python3
"""Runs the test peer: migrates its SQLite database, creates the configured users and OAuth
application, then serves on 127.0.0.1 at a port the kernel picks, printing

    listening on http://127.0.0.1:<port>

on stdout once requests are accepted. Usage: serve.py <config.json>
"""
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ["PEER_CONFIG"] = os.path.abspath(sys.argv[1])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write("peer: %s\n" % (format % args))


def main():
    call_command("migrate", verbosity=0, interactive=False)
    call_command("setup_peer")
    server = make_server("127.0.0.1", 0, get_wsgi_application(), server_class=ThreadingServer, handler_class=QuietHandler)
    print("listening on http://127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
