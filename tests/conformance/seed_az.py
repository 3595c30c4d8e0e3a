"""Prepares an AZURE_CONFIG_DIR so that az 2.45 sends nothing to Microsoft's hosts.

Usage: /usr/bin/python3 seed_az.py AZURE_CONFIG_DIR LOGIN_URL TENANT

Writes three files:
* config: telemetry, survey and error recommendations off (each of them calls out).
* versionCheck.json: today's version check, already done; a fresh config dir otherwise makes az
  send HEAD https://azure.microsoft.com and fetch setup.py from GitHub.
* msal_http_cache.bin: MSAL's persisted HTTP cache, with both discovery calls pre-answered.

az keeps MSAL's HTTP cache in $AZURE_CONFIG_DIR/msal_http_cache.bin (a pickled dict). For an
authority that is not a Microsoft host, MSAL 1.21 always asks login.microsoftonline.com for
instance discovery (when the app is built) and for authority aliases (before each token it does
not have yet); az has no switch to turn either off. This script runs MSAL itself with a fake HTTP
client that answers those two requests, so the cache keys are exactly the ones MSAL computes, and
writes the cache file. The instance-discovery answer points MSAL at the simulator's own
openid-configuration, the URL it would use with discovery off.

Every other request the fake client sees (openid-configuration, the token POST) is answered
with a placeholder and then removed from the cache, so az itself sends those to the simulator.
Cached responses are requests.Response objects because az unpickles them.
"""
import datetime
import json
import os
import pickle
import sys

import msal
import requests
from requests.structures import CaseInsensitiveDict

MICROSOFT = "https://login.microsoftonline.com/"


def response(url, status, body):
    r = requests.models.Response()
    r.status_code = status
    r.url = url
    r.encoding = "utf-8"
    r.headers = CaseInsensitiveDict({"Content-Type": "application/json; charset=utf-8"})
    r._content = json.dumps(body).encode("utf-8")
    return r


class FakeHttpClient:
    """Answers MSAL's requests without a network; records which URLs were asked."""

    def __init__(self, login_url, tenant):
        self.login_url = login_url
        self.tenant = tenant
        self.seen = []

    def get(self, url, params=None, headers=None, **kwargs):
        self.seen.append(("GET", url, params))
        base = self.login_url + "/" + self.tenant
        if url.startswith(MICROSOFT) and "discovery/instance" in url:
            if "api-version=1.1" in url:
                # Authority aliases: the groups of hosts that share tokens. The simulator is
                # in no group, so MSAL looks up tokens under its own host only.
                return response(url, 200, {
                    "tenant_discovery_endpoint": MICROSOFT +
                    "common/.well-known/openid-configuration",
                    "api-version": "1.1",
                    "metadata": [{
                        "preferred_network": "login.microsoftonline.com",
                        "preferred_cache": "login.windows.net",
                        "aliases": ["login.microsoftonline.com", "login.windows.net",
                                    "login.microsoft.com", "sts.windows.net"],
                    }],
                })
            return response(url, 200, {
                "tenant_discovery_endpoint": base + "/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [],
            })
        if url.endswith("/.well-known/openid-configuration"):
            return response(url, 200, {
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "token_endpoint": base + "/oauth2/v2.0/token",
                "issuer": base + "/v2.0",
            })
        raise RuntimeError("seed: unexpected GET " + url)

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        self.seen.append(("POST", url, None))
        raise RuntimeError("seed: unexpected POST " + url)

    def close(self):
        pass


AZ_CONFIG = """[core]
collect_telemetry = no
error_recommendation = off
survey_message = no
no_color = yes

[output]
show_survey_link = no
"""


def write_config(config_dir):
    with open(os.path.join(config_dir, "config"), "w") as f:
        f.write(AZ_CONFIG)


def write_version_check(config_dir):
    """The file az's handle_version_update reads; a day-old or empty one triggers the check."""
    from azure.cli.core import __version__
    from azure.cli.core.util import _get_local_versions
    versions = _get_local_versions()
    for v in versions.values():
        v["pypi"] = v["local"]
    versions.setdefault("core", {"local": __version__, "pypi": __version__})
    with open(os.path.join(config_dir, "versionCheck.json"), "w") as f:
        json.dump({"versions": versions, "update_time": str(datetime.datetime.now())}, f)


def write_msal_http_cache(cache_file, login_url, tenant):
    cache = {}
    fake = FakeHttpClient(login_url, tenant)
    app = msal.ConfidentialClientApplication(
        "00000000-0000-0000-0000-000000000000", client_credential="seed",
        authority=login_url + "/" + tenant, http_client=fake, http_cache=cache)
    # With no account, acquire_token_silent only looks in the (empty) token cache, after the
    # alias lookup az's ServicePrincipalCredential.get_token triggers the same way.
    app.acquire_token_silent(["https://management.core.windows.net//.default"], None)

    asked = [u for m, u, _ in fake.seen if u.startswith(MICROSOFT)]
    if len(asked) != 2:
        sys.exit("seed: expected 2 discovery requests to Microsoft, MSAL sent %r" % fake.seen)

    # Keep only the answers for Microsoft's host; the simulator answers everything else.
    index_key = next(k for k in cache if not k.startswith(("GET ", "POST ")))
    sequence, timestamps = cache[index_key]
    for key in [k for k in cache if k.startswith(("GET ", "POST "))]:
        if not key.startswith("GET " + MICROSOFT):
            del cache[key]
            timestamps.pop(key, None)
    # Entries left in the heap for removed keys are orphans MSAL skips.
    cache[index_key] = (sequence, timestamps)

    with open(cache_file, "wb") as f:
        pickle.dump(cache, f)


def main():
    config_dir, login_url, tenant = sys.argv[1:4]
    os.makedirs(config_dir, exist_ok=True)
    write_config(config_dir)
    write_version_check(config_dir)
    write_msal_http_cache(os.path.join(config_dir, "msal_http_cache.bin"),
                          login_url.rstrip("/"), tenant)


if __name__ == "__main__":
    main()
