"""Access to your OHTK tenant's data from a notebook started by ohtkhub.

    import ohtk
    df = ohtk.export("incident-reports", from_="2026-01-01", tz="Asia/Bangkok")
    me = ohtk.get("me")
    path = ohtk.download("incident-reports", format="parquet")

The hub hands the notebook server the tenant's API URL and a way to fetch a
current access token, so no password is typed. Long sessions keep working:
the token is fetched again from the hub (which refreshes it with the tenant)
shortly before it expires.

Only the Python standard library is needed; with pandas installed, export()
returns a pandas.DataFrame, otherwise a list of dicts.
"""

import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["OHTKError", "api_url", "download", "export", "get", "tenant", "token"]

EXPORT_PREFIX = "/api/export/v1/"
# Fetch a new token when the current one expires within this many seconds.
REFRESH_MARGIN = 120

_lock = threading.Lock()
_cached = {"access_token": None, "expires_at": 0.0, "api_url": None, "tenant": None}


class OHTKError(Exception):
    """An error answered by the hub or the tenant's Export API."""

    def __init__(self, status, error, description=""):
        self.status = status
        self.error = error
        self.description = description
        text = "%s %s" % (status, error)
        if description:
            text += ": " + description
        super().__init__(text)


def _hub_token_url():
    api = os.environ.get("JUPYTERHUB_API_URL")
    user = os.environ.get("JUPYTERHUB_USER")
    if not api or not user:
        return None
    return "%s/users/%s/tenant-token" % (api.rstrip("/"), urllib.parse.quote(user, safe=""))


def _parse_expiry(value):
    if value in (None, ""):
        return time.time() + 300
    if isinstance(value, (int, float)):
        return float(value)
    from datetime import datetime

    text = str(value).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def _error_from(err):
    body = err.read()
    try:
        doc = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        doc = {}
    code = doc.get("error") or doc.get("message") or err.reason
    return OHTKError(err.code, code, doc.get("error_description", ""))


def _fetch_token():
    url = _hub_token_url()
    if url is None:
        tok = os.environ.get("OHTK_ACCESS_TOKEN")
        if not tok:
            raise OHTKError(0, "not_configured", "no hub (JUPYTERHUB_API_URL) and no OHTK_ACCESS_TOKEN")
        return {
            "access_token": tok,
            "expires_at": time.time() + 300,
            "api_url": os.environ.get("OHTK_API_URL"),
            "tenant": os.environ.get("OHTK_TENANT"),
        }
    req = urllib.request.Request(url, headers={"Authorization": "token " + os.environ.get("JUPYTERHUB_API_TOKEN", "")})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            doc = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        raise _error_from(err) from None
    return {
        "access_token": doc["access_token"],
        "expires_at": _parse_expiry(doc.get("expires_at")),
        "api_url": doc.get("api_url") or os.environ.get("OHTK_API_URL"),
        "tenant": doc.get("tenant") or os.environ.get("OHTK_TENANT"),
    }


def token(force=False):
    """Return a current access token for the tenant's API."""
    with _lock:
        if force or not _cached["access_token"] or _cached["expires_at"] - time.time() < REFRESH_MARGIN:
            _cached.update(_fetch_token())
        return _cached["access_token"]


def api_url():
    """Return the tenant's base URL (under which /api/export/v1/ lives)."""
    token()
    url = _cached["api_url"] or os.environ.get("OHTK_API_URL")
    if not url:
        raise OHTKError(0, "not_configured", "the tenant's API URL is unknown (OHTK_API_URL)")
    return url.rstrip("/")


def tenant():
    """Return the tenant key this notebook belongs to."""
    token()
    return _cached["tenant"] or os.environ.get("OHTK_TENANT")


def _camel(name):
    name = name.rstrip("_")  # from_ -> from
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _params(params):
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[_camel(key)] = str(value)
    return out


def _open(path, params):
    url = api_url() + EXPORT_PREFIX + path.lstrip("/")
    query = urllib.parse.urlencode(_params(params))
    if query:
        url += "?" + query
    for attempt in (0, 1):
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token(force=attempt > 0)})
        try:
            return urllib.request.urlopen(req, timeout=600)
        except urllib.error.HTTPError as err:
            if err.code == 401 and attempt == 0:
                continue
            raise _error_from(err) from None


def get(path, **params):
    """GET one Export API resource (e.g. "me", "authorities") and return the decoded JSON."""
    params.setdefault("format", "json")
    with _open(path, params) as resp:
        return json.loads(resp.read().decode("utf-8"))


def rows(resource, **filters):
    """Yield every row of an Export API resource, streamed as NDJSON (no row cap)."""
    filters["format"] = "ndjson"
    with _open(resource, filters) as resp:
        for line in resp:
            line = line.strip()
            if line:
                yield json.loads(line.decode("utf-8"))


def export(resource, **filters):
    """Return every row of a resource as a pandas.DataFrame (a list of dicts without pandas).

    Filters are the Export API's parameters; snake_case names are accepted
    (report_type_id=..., include_test=True, from_="2026-01-01").
    """
    data = list(rows(resource, **filters))
    try:
        import pandas
    except ImportError:
        return data
    frame = pandas.json_normalize(data, max_level=0) if data else pandas.DataFrame()
    for col in ("created_at", "updated_at", "incident_date"):
        if col in frame.columns:
            frame[col] = pandas.to_datetime(frame[col], utc=(col != "incident_date"), errors="coerce")
    return frame


def download(resource, path=None, format="xlsx", **filters):
    """Save every row of a resource to a file and return the file's path.

    format is "xlsx", "parquet", "csv" or "ndjson". The file is written to disk
    as it arrives, so it may be larger than memory. Without path it is named as
    the API names it, in the current directory. With pandas (and pyarrow):
    pandas.read_parquet(path), or pandas.read_excel(path, sheet_name=None) for
    every sheet (incident-reports/flat puts each subform on a sheet of its own).
    """
    filters["format"] = format
    with _open(resource, filters) as resp:
        if path is None:
            name = resp.headers.get_filename() or resource.replace("/", "-") + "." + format
            path = os.path.basename(name)
        with open(path, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
    return path
