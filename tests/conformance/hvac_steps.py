"""One python3-hvac (0.11) conformance step against the simulated Vault.

Usage: /usr/bin/python3 hvac_steps.py STEP
Steps: create, read, list, delete, cas, approle.

Reads SIM_VAULT_ADDR, SIM_VAULT_TOKEN, SIM_CA_FILE, CONF_VAULT_ROLE_ID, CONF_VAULT_SECRET_ID and
CONF_RUN (a word that keeps paths unique per run) from the environment. Each step sets up what it
needs, so a step can fail alone. Exits 0 when the step holds, 1 with a message when it does not.
"""
import os
import sys

import hvac
from hvac import exceptions

MOUNT = "secret"


def client(token=None):
    return hvac.Client(url=os.environ["SIM_VAULT_ADDR"], token=token,
                       verify=os.environ["SIM_CA_FILE"], timeout=10)


def root():
    return client(os.environ["SIM_VAULT_TOKEN"])


def path(name):
    return "conformance-%s/%s" % (os.environ.get("CONF_RUN", "run"), name)


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def is_dict(r, what):
    # hvac's JSONAdapter only turns an HTTP 200 into a dict; anything else is a Response.
    check(isinstance(r, dict), "%s returned %r (status %s), not a dict: the server must answer "
          "200 with a JSON body" % (what, r, getattr(r, "status_code", "?")))
    return r


def kv(c):
    return c.secrets.kv.v2


def step_create():
    c = root()
    r = is_dict(kv(c).create_or_update_secret(path("create"), secret={"user": "svc", "pw": "x1"},
                                              mount_point=MOUNT), "create_or_update_secret")
    check(r["data"]["version"] == 1, "first write should be version 1, got %r" % r["data"])
    r = is_dict(kv(c).create_or_update_secret(path("create"), secret={"user": "svc", "pw": "x2"},
                                              cas=1, mount_point=MOUNT), "write with cas=1")
    check(r["data"]["version"] == 2, "second write should be version 2, got %r" % r["data"])
    print("versions 1 and 2 written")


def step_read():
    c = root()
    kv(c).create_or_update_secret(path("read"), secret={"k": "v1"}, mount_point=MOUNT)
    kv(c).create_or_update_secret(path("read"), secret={"k": "v2"}, mount_point=MOUNT)
    r = is_dict(kv(c).read_secret_version(path("read"), mount_point=MOUNT), "read_secret_version")
    check(r["data"]["data"] == {"k": "v2"}, "latest data: %r" % r["data"])
    check(r["data"]["metadata"]["version"] == 2, "latest metadata: %r" % r["data"]["metadata"])
    r = is_dict(kv(c).read_secret_version(path("read"), version=1, mount_point=MOUNT),
                "read_secret_version(version=1)")
    check(r["data"]["data"] == {"k": "v1"}, "version 1 data: %r" % r["data"])
    try:
        kv(c).read_secret_version(path("read-missing"), mount_point=MOUNT)
    except exceptions.InvalidPath:
        pass
    else:
        raise AssertionError("reading a missing path should raise InvalidPath (404)")
    print("latest, version=1 and a missing path read as Vault answers them")


def step_list():
    c = root()
    kv(c).create_or_update_secret(path("list/leaf"), secret={"a": "1"}, mount_point=MOUNT)
    kv(c).create_or_update_secret(path("list/folder/inner"), secret={"b": "2"},
                                  mount_point=MOUNT)
    r = is_dict(kv(c).list_secrets(path("list"), mount_point=MOUNT), "list_secrets (LIST verb)")
    keys = sorted(r["data"]["keys"])
    check(keys == ["folder/", "leaf"], "keys: %r" % keys)
    print("keys:", keys)


def step_delete():
    c = root()
    kv(c).create_or_update_secret(path("delete"), secret={"a": "1"}, mount_point=MOUNT)
    r = kv(c).delete_metadata_and_all_versions(path("delete"), mount_point=MOUNT)
    status = getattr(r, "status_code", None)
    check(status == 204, "delete_metadata_and_all_versions: status %r, want 204" % status)
    try:
        kv(c).read_secret_version(path("delete"), mount_point=MOUNT)
    except exceptions.InvalidPath:
        pass
    else:
        raise AssertionError("the secret is still readable after delete_metadata_and_all_versions")
    print("deleted; reading it now raises InvalidPath")


def step_cas():
    c = root()
    kv(c).create_or_update_secret(path("cas"), secret={"a": "1"}, mount_point=MOUNT)
    try:
        kv(c).create_or_update_secret(path("cas"), secret={"a": "2"}, cas=7, mount_point=MOUNT)
    except exceptions.InvalidRequest as e:
        check("check-and-set" in str(e), "InvalidRequest without Vault's message: %s" % e)
        print("InvalidRequest:", e)
        return
    raise AssertionError("a cas mismatch should raise InvalidRequest (HTTP 400)")


def step_approle():
    c = client()
    r = is_dict(c.auth.approle.login(os.environ["CONF_VAULT_ROLE_ID"],
                                     os.environ["CONF_VAULT_SECRET_ID"]), "approle.login")
    check(r["auth"]["client_token"], "no auth.client_token in %r" % r)
    check(c.token == r["auth"]["client_token"], "hvac did not adopt the client token")
    check(c.is_authenticated() is True, "is_authenticated() is not True after approle login")
    check(client("conformance-bogus-token").is_authenticated() is False,
          "is_authenticated() with a bogus token should be False (Vault answers 403)")
    try:
        client().auth.approle.login(os.environ["CONF_VAULT_ROLE_ID"], "wrong-secret-id")
    except (exceptions.InvalidRequest, exceptions.Forbidden):
        pass
    else:
        raise AssertionError("approle login with a wrong secret_id should fail")
    print("approle login ok; bogus token not authenticated; wrong secret_id refused")


STEPS = {
    "create": step_create,
    "read": step_read,
    "list": step_list,
    "delete": step_delete,
    "cas": step_cas,
    "approle": step_approle,
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in STEPS:
        sys.exit("usage: hvac_steps.py {%s}" % ",".join(STEPS))
    try:
        STEPS[sys.argv[1]]()
    except (AssertionError, exceptions.VaultError) as e:
        print("%s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
