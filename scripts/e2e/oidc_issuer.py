#!/usr/bin/env python3
"""A small OIDC issuer written with joserfc (not with the gateway's own code), run as its own
process so tests can stop and restart it and rotate its keys (GatewayTests'
OIDCIssuerFailureTests).

State lives in a directory (--state), read on every request, so the commands below change a
running issuer and survive its restart:

  oidc_issuer.py serve --state DIR --port PORT
      Serves, for every tenant T (an issuer path, "" for the root):
        GET /T/.well-known/openid-configuration  issuer http://127.0.0.1:PORT/T, jwks_uri /T/keys
        GET /T/keys                              the published public keys, with
                                                 Cache-Control: max-age=N when the tenant has one
      Prints "listening ISSUER" once it accepts connections; every request is logged to
      DIR/requests.log ("METHOD PATH").
  oidc_issuer.py add-key --state DIR [--tenant T] --kid KID [--alg ES256|RS256|EdDSA]
      Creates a key and publishes it.
  oidc_issuer.py remove-key --state DIR [--tenant T] --kid KID
      Unpublishes and forgets a key.
  oidc_issuer.py set --state DIR [--tenant T] [--max-age N | --no-max-age]
  oidc_issuer.py mint --state DIR [--tenant T] --kid KID --claims JSON
      Prints a compact JWT signed by KID (its alg) with the given claims, or one per line for
      a JSON list of claims (works while the issuer is down: the private keys are in DIR).
"""
import argparse
import fcntl
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key


def load(state):
    path = os.path.join(state, "tenants.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def save(state, tenants):
    os.makedirs(state, exist_ok=True)
    path = os.path.join(state, "tenants.json")
    with open(path + ".tmp", "w") as f:
        json.dump(tenants, f)
    os.replace(path + ".tmp", path)


def locked(state):
    os.makedirs(state, exist_ok=True)
    lock = open(os.path.join(state, ".lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def tenant_of(tenants, name):
    return tenants.setdefault(name, {"keys": [], "maxAge": None})


def generate(alg, kid):
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=params, private=True)
    if alg == "RS256":
        return RSAKey.generate_key(2048, parameters=params, private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params, private=True)
    raise SystemExit(f"unknown alg {alg}")


def serve(args):
    state = args.state

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def answer(self, code, body, headers=()):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            with open(os.path.join(state, "requests.log"), "a") as log:
                log.write(f"GET {self.path}\n")
            path = unquote(self.path.split("?", 1)[0])
            tenants = load(state)
            base = f"http://127.0.0.1:{args.port}"
            for name, tenant in tenants.items():
                prefix = "/" + name if name else ""
                if path == prefix + "/.well-known/openid-configuration":
                    return self.answer(200, {"issuer": base + prefix, "jwks_uri": base + prefix + "/keys",
                                             "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"]})
                if path == prefix + "/keys":
                    keys = [import_key(k["private"]).as_dict(private=False) for k in tenant["keys"]]
                    headers = [("Cache-Control", f"max-age={tenant['maxAge']}")] if tenant.get("maxAge") is not None else []
                    return self.answer(200, {"keys": keys}, headers)
            self.answer(404, {"error": "not found", "path": path})

    # Ends with the test that started it, even one that was killed before stopping it.
    parent = os.getppid()

    def watch_parent():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    # SIGTERM may come blocked or ignored from the parent (test runners): stop on it all the same.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening http://127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ["serve", "add-key", "remove-key", "set", "mint"]:
        p = sub.add_parser(name)
        p.add_argument("--state", required=True)
        p.add_argument("--tenant", default="")
        if name == "serve":
            p.add_argument("--port", type=int, required=True)
        if name in ("add-key", "remove-key", "mint"):
            p.add_argument("--kid", required=True)
        if name == "add-key":
            p.add_argument("--alg", default="ES256", choices=["ES256", "RS256", "EdDSA"])
        if name == "set":
            p.add_argument("--max-age", type=int)
            p.add_argument("--no-max-age", action="store_true")
        if name == "mint":
            p.add_argument("--claims", required=True)
    args = parser.parse_args()

    if args.command == "serve":
        return serve(args)
    with locked(args.state):
        tenants = load(args.state)
        tenant = tenant_of(tenants, args.tenant)
        if args.command == "add-key":
            key = generate(args.alg, args.kid)
            tenant["keys"] = [k for k in tenant["keys"] if k["kid"] != args.kid]
            tenant["keys"].append({"kid": args.kid, "alg": args.alg, "private": key.as_dict(private=True)})
        elif args.command == "remove-key":
            tenant["keys"] = [k for k in tenant["keys"] if k["kid"] != args.kid]
        elif args.command == "set":
            tenant["maxAge"] = None if args.no_max_age else args.max_age
        elif args.command == "mint":
            entry = next((k for k in tenant["keys"] if k["kid"] == args.kid), None)
            if entry is None:
                raise SystemExit(f"no key {args.kid} in tenant {args.tenant!r}")
            key = import_key(entry["private"])
            claims = json.loads(args.claims)
            for one in claims if isinstance(claims, list) else [claims]:
                print(jwt.encode({"alg": entry["alg"], "kid": args.kid, "typ": "JWT"}, one, key, algorithms=[entry["alg"]]))
            return
        save(args.state, tenants)


if __name__ == "__main__":
    sys.exit(main())
