#!/usr/bin/python3
"""Django's command-line utility for the test peer.

Settings come from the JSON file named by PEER_CONFIG (see peer/settings.py), for example:

    PEER_CONFIG=/tmp/peer.json /usr/bin/python3 manage.py migrate
    PEER_CONFIG=/tmp/peer.json /usr/bin/python3 manage.py setup_peer
"""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
